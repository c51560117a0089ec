//! Self-metrics: upstream's `metrics_server_*` families (same names, types, labels, buckets
//! and HELP text) plus our own failure counts, encoded in the Prometheus text format.
//!
//! Per-node series are pruned when a node leaves the inventory (upstream leaks them, #1876).
//! Recording is cheap: one short lock per scrape, one per API response.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Prometheus' default buckets, as upstream uses for kubelet request durations.
const DEFAULT_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Cumulative-bucket histogram state.
#[derive(Debug, Clone)]
struct HistogramState {
    bounds: Vec<f64>,
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl HistogramState {
    fn new(bounds: Vec<f64>) -> Self {
        let counts = vec![0; bounds.len()];
        HistogramState {
            bounds,
            counts,
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, value: f64) {
        // The first bound at or above the value, by bisection.
        let bucket = self.bounds.partition_point(|b| *b < value);
        self.count_in(bucket, value, 1);
    }

    /// `times` observations of `value`, whose first bound at or above it is `bucket`'s (or
    /// none: past the last, or a NaN, which fails the check and counts only in sum and count).
    fn count_in(&mut self, bucket: usize, value: f64, times: u64) {
        if let (Some(bound), Some(count)) = (self.bounds.get(bucket), self.counts.get_mut(bucket)) {
            if value <= *bound {
                *count += times;
            }
        }
        self.sum += value * times as f64;
        self.count += times;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{}\"}} {}",
                go_float(*bound),
                go_float(cumulative as f64)
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            go_float(self.count as f64)
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", go_float(self.sum));
        let _ = writeln!(out, "{name}_count{braces} {}", go_float(self.count as f64));
    }
}

#[derive(Debug)]
struct NodeRequests {
    duration: HistogramState,
    last_request_unix_seconds: f64,
    /// Per-node scrape status (beyond upstream): failures since the last success, and when
    /// that success was (0 = never).
    consecutive_failures: u64,
    last_success_unix_seconds: f64,
}

/// Upstream's scrape-duration buckets for a resolution `t` (pkg/utils/monitoring.go).
pub fn buckets_for_scrape_duration(t: Duration) -> Vec<f64> {
    let t = t.as_secs_f64();
    let mut buckets = DEFAULT_BUCKETS.to_vec();
    if t > 10.0 {
        buckets.extend([10.0 + (t - 10.0) / 2.0, t, 1.5 * t, 2.0 * t]);
    } else if t < 10.0 && !buckets.iter().any(|b| (b - t).abs() < 0.005) {
        buckets.push(t);
        buckets.sort_by(f64::total_cmp);
    }
    buckets
}

/// Upstream's freshness buckets: `ExponentialBuckets(1, 1.364, 20)`.
fn freshness_buckets() -> Vec<f64> {
    let mut value = 1.0;
    (0..20)
        .map(|_| {
            let b = value;
            value *= 1.364;
            b
        })
        .collect()
}

/// The process's self-metrics.
#[derive(Debug)]
pub struct Telemetry {
    /// Per-node series, hashed: recorded on every scrape (5,000 times a period at 5,000
    /// nodes, where a tree's dozen string comparisons per lookup showed in the profile) and
    /// read, sorted by node, only when `/metrics` is scraped.
    kubelet: Mutex<HashMap<Box<str>, NodeRequests, foldhash::fast::RandomState>>,
    requests_succeeded: AtomicU64,
    requests_failed: AtomicU64,
    failures_by_reason: Mutex<BTreeMap<&'static str, u64>>,
    tick: Mutex<HistogramState>,
    freshness: Mutex<HistogramState>,
    freshness_observed: AtomicU64,
}

/// Counts of servable points, for `metrics_server_storage_points`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PointCounts {
    pub nodes: usize,
    pub containers: usize,
}

impl Telemetry {
    pub fn new(resolution: Duration) -> Self {
        Telemetry {
            kubelet: Mutex::default(),
            requests_succeeded: AtomicU64::new(0),
            requests_failed: AtomicU64::new(0),
            failures_by_reason: Mutex::default(),
            tick: Mutex::new(HistogramState::new(buckets_for_scrape_duration(resolution))),
            freshness: Mutex::new(HistogramState::new(freshness_buckets())),
            freshness_observed: AtomicU64::new(0),
        }
    }

    /// One kubelet request, success or failure (upstream records both).
    pub fn kubelet_request(&self, node: &str, took: Duration, failure: Option<&'static str>, ended: SystemTime) {
        match failure {
            None => self.requests_succeeded.fetch_add(1, Ordering::Relaxed),
            Some(reason) => {
                *lock(&self.failures_by_reason).entry(reason).or_default() += 1;
                self.requests_failed.fetch_add(1, Ordering::Relaxed)
            }
        };
        let ended = ended.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as f64;
        let mut nodes = lock(&self.kubelet);
        let entry = match nodes.get_mut(node) {
            Some(entry) => entry,
            None => nodes.entry(node.into()).or_insert_with(|| NodeRequests {
                duration: HistogramState::new(DEFAULT_BUCKETS.to_vec()),
                last_request_unix_seconds: 0.0,
                consecutive_failures: 0,
                last_success_unix_seconds: 0.0,
            }),
        };
        entry.duration.observe(took.as_secs_f64());
        entry.last_request_unix_seconds = ended;
        if failure.is_some() {
            entry.consecutive_failures += 1;
        } else {
            entry.consecutive_failures = 0;
            entry.last_success_unix_seconds = ended;
        }
    }

    /// Drops per-node series of nodes that left.
    pub fn retain_nodes(&self, keep: impl Fn(&str) -> bool) {
        lock(&self.kubelet).retain(|name, _| keep(name));
    }

    pub fn tick(&self, took: Duration) {
        lock(&self.tick).observe(took.as_secs_f64());
    }

    /// Ages (now − sample timestamp, seconds) of the items one API response returned.
    pub fn freshness(&self, ages_seconds: impl IntoIterator<Item = f64>) {
        let mut state = lock(&self.freshness);
        for age in ages_seconds {
            state.observe(age);
        }
        self.freshness_observed.store(1, Ordering::Relaxed);
    }

    /// [`freshness`](Self::freshness) for ages given as (age, how many items have it): a
    /// LIST of every pod has one age per node and scrape, not one per pod.
    ///
    /// Runs in ascending order of age (as each node's chunk gives them) are placed by walking
    /// the buckets forward from the previous run's; the walk starts over wherever an age is
    /// lower than the one before, so any order gives the same histogram.
    pub fn freshness_runs(&self, runs: impl IntoIterator<Item = (f64, u64)>) {
        let mut state = lock(&self.freshness);
        let mut bucket = 0;
        let mut previous = f64::NEG_INFINITY;
        for (age, items) in runs {
            // False for a NaN on either side too: it starts over, and finds no bucket below.
            let in_order = age >= previous;
            if !in_order {
                bucket = 0;
            }
            previous = age;
            while state.bounds.get(bucket).is_some_and(|b| *b < age) {
                bucket += 1;
            }
            state.count_in(bucket, age, items);
        }
        self.freshness_observed.store(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self, points: PointCounts) -> String {
        let mut out = String::with_capacity(4096);
        let name = "metrics_server_api_metric_freshness_seconds";
        header(&mut out, name, "Freshness of metrics exported", "histogram");
        if self.freshness_observed.load(Ordering::Relaxed) != 0 {
            lock(&self.freshness).write(&mut out, name, "");
        }

        let name = "metrics_server_kubelet_last_request_time_seconds";
        header(
            &mut out,
            name,
            "Time of last request performed to Kubelet API since unix epoch in seconds",
            "gauge",
        );
        let held = lock(&self.kubelet);
        let mut nodes: Vec<(&str, &NodeRequests)> = held.iter().map(|(node, stats)| (&**node, stats)).collect();
        nodes.sort_unstable_by_key(|(node, _)| *node);
        for (node, stats) in nodes.iter() {
            let _ = writeln!(
                out,
                "{name}{{node=\"{}\"}} {}",
                escape_label(node),
                go_float(stats.last_request_unix_seconds)
            );
        }
        let name = "metrics_server_kubelet_request_duration_seconds";
        header(
            &mut out,
            name,
            "Duration of requests to Kubelet API in seconds",
            "histogram",
        );
        for (node, stats) in nodes.iter() {
            stats
                .duration
                .write(&mut out, name, &format!("node=\"{}\"", escape_label(node)));
        }
        let name = "metrics_server_kubelet_scrape_consecutive_failures";
        header(
            &mut out,
            name,
            "Failed scrapes of the node since its last successful one",
            "gauge",
        );
        for (node, stats) in nodes.iter() {
            let _ = writeln!(
                out,
                "{name}{{node=\"{}\"}} {}",
                escape_label(node),
                go_float(stats.consecutive_failures as f64)
            );
        }
        let name = "metrics_server_kubelet_last_success_time_seconds";
        header(
            &mut out,
            name,
            "Time of the node's last successful scrape since unix epoch in seconds (0: never)",
            "gauge",
        );
        for (node, stats) in nodes.iter() {
            let _ = writeln!(
                out,
                "{name}{{node=\"{}\"}} {}",
                escape_label(node),
                go_float(stats.last_success_unix_seconds)
            );
        }
        drop(nodes);
        drop(held);

        let name = "metrics_server_kubelet_request_total";
        header(&mut out, name, "Number of requests sent to Kubelet API", "counter");
        let _ = writeln!(
            out,
            "{name}{{success=\"false\"}} {}",
            go_float(self.requests_failed.load(Ordering::Relaxed) as f64)
        );
        let _ = writeln!(
            out,
            "{name}{{success=\"true\"}} {}",
            go_float(self.requests_succeeded.load(Ordering::Relaxed) as f64)
        );

        let name = "metrics_server_kubelet_scrape_failures_total";
        header(&mut out, name, "Number of failed kubelet scrapes, by reason", "counter");
        for (reason, count) in lock(&self.failures_by_reason).iter() {
            let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {}", go_float(*count as f64));
        }

        let name = "metrics_server_manager_tick_duration_seconds";
        header(
            &mut out,
            name,
            "The total time spent collecting and storing metrics in seconds.",
            "histogram",
        );
        lock(&self.tick).write(&mut out, name, "");

        let name = "metrics_server_storage_points";
        header(&mut out, name, "Number of metrics points stored.", "gauge");
        let _ = writeln!(
            out,
            "{name}{{type=\"container\"}} {}",
            go_float(points.containers as f64)
        );
        let _ = writeln!(out, "{name}{{type=\"node\"}} {}", go_float(points.nodes as f64));
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} [ALPHA] {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a telemetry lock leaves counts that are still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Formats a float as Go's `strconv.FormatFloat(f, 'g', -1, 64)`, which the Prometheus
/// client uses: shortest digits, exponent form when the exponent is < -4 or ≥ 6
/// (Go decides with precision 6 when asked for the shortest form). Counts go through it too,
/// as the Prometheus text encoder writes every sample value as a float.
pub fn go_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if value == 0.0 {
        return "0".into();
    }
    // Rust's `{:e}` is the shortest round-trip form: "d.ddde±x".
    let sci = format!("{value:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..6).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_matches_strconv_g_shortest() {
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(0.005), "0.005");
        assert_eq!(go_float(1.8604960000000004), "1.8604960000000004");
        assert_eq!(go_float(123_456.0), "123456");
        assert_eq!(go_float(1_000_000.0), "1e+06");
        assert_eq!(go_float(1_795_344_895.0), "1.795344895e+09");
        assert_eq!(go_float(-6.21355968e10), "-6.21355968e+10");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(f64::INFINITY), "+Inf");
    }

    #[test]
    fn scrape_duration_buckets_follow_the_resolution() {
        let b15 = buckets_for_scrape_duration(Duration::from_secs(15));
        assert_eq!(&b15[10..], [10.0, 12.5, 15.0, 22.5, 30.0]);
        let b60 = buckets_for_scrape_duration(Duration::from_secs(60));
        assert_eq!(&b60[10..], [10.0, 35.0, 60.0, 90.0, 120.0]);
        assert_eq!(buckets_for_scrape_duration(Duration::from_secs(10)), DEFAULT_BUCKETS);
    }

    #[test]
    fn freshness_buckets_are_upstreams() {
        let b = freshness_buckets();
        assert_eq!(b.len(), 20);
        assert_eq!(go_float(b[2]), "1.8604960000000004");
        assert_eq!(go_float(b[19]), "364.31163045936864");
    }

    #[test]
    fn a_kubelet_request_is_exposed_as_upstream_does() {
        let t = Telemetry::new(Duration::from_secs(15));
        t.kubelet_request(
            "node1",
            Duration::from_secs(1),
            None,
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        );
        let text = t.encode(PointCounts {
            nodes: 1,
            containers: 2,
        });
        assert!(text.contains("metrics_server_kubelet_request_duration_seconds_bucket{node=\"node1\",le=\"0.5\"} 0\n"));
        assert!(text.contains("metrics_server_kubelet_request_duration_seconds_bucket{node=\"node1\",le=\"1\"} 1\n"));
        assert!(text.contains("metrics_server_kubelet_request_duration_seconds_sum{node=\"node1\"} 1\n"));
        assert!(text.contains("metrics_server_kubelet_request_total{success=\"true\"} 1\n"));
        assert!(text.contains("metrics_server_kubelet_last_request_time_seconds{node=\"node1\"} 1.7e+09\n"));
        assert!(text.contains("metrics_server_storage_points{type=\"container\"} 2\n"));
        assert!(text.contains("# HELP metrics_server_storage_points [ALPHA] Number of metrics points stored.\n"));
        // No freshness series until the API has served something.
        assert!(!text.contains("metrics_server_api_metric_freshness_seconds_count"));
    }

    #[test]
    fn an_observation_lands_in_the_first_bucket_at_or_above_it() {
        let mut h = HistogramState::new(vec![1.0, 2.0, 4.0]);
        for value in [0.5, 1.0, 1.5, 4.0, 4.5, f64::NAN, -1.0] {
            h.observe(value);
        }
        // 4.5 is only in +Inf (the count); NaN too, and it poisons the sum as in Go.
        assert_eq!(h.counts, vec![3, 1, 1]);
        assert_eq!(h.count, 7);
        assert!(h.sum.is_nan());
    }

    #[test]
    fn freshness_runs_expose_what_one_observation_per_item_does() {
        let counts = PointCounts::default();
        let (each, runs) = (
            Telemetry::new(Duration::from_secs(15)),
            Telemetry::new(Duration::from_secs(15)),
        );
        each.freshness([1.5, 1.5, 1.5, 20.0, 0.25]);
        // Ascending within a node's runs, starting over at the next node's.
        runs.freshness_runs([(1.5, 3), (20.0, 1), (0.25, 1)]);
        assert_eq!(each.encode(counts), runs.encode(counts));
        let text = runs.encode(counts);
        assert!(text.contains("metrics_server_api_metric_freshness_seconds_bucket{le=\"1\"} 1\n"));
        assert!(text.contains("metrics_server_api_metric_freshness_seconds_bucket{le=\"1.8604960000000004\"} 4\n"));
        assert!(text.contains("metrics_server_api_metric_freshness_seconds_sum 24.75\n"));
        assert!(text.contains("metrics_server_api_metric_freshness_seconds_count 5\n"));
    }

    #[test]
    fn freshness_runs_in_any_order_match_one_observation_each() {
        let bounds = freshness_buckets();
        // Exact bounds, values between and beyond them, repeats, descents and a NaN.
        let mut ages: Vec<f64> = vec![bounds[3], bounds[3], 0.0, bounds[0], 400.0, f64::NAN, 2.0];
        let mut x = 0.37_f64;
        for _ in 0..500 {
            x = (x * 7.13 + 0.91) % 380.0;
            ages.push(x);
        }
        ages.extend(bounds.iter().rev());
        let counts = PointCounts::default();
        let (each, runs) = (
            Telemetry::new(Duration::from_secs(15)),
            Telemetry::new(Duration::from_secs(15)),
        );
        each.freshness(ages.iter().copied());
        runs.freshness_runs(ages.iter().map(|&age| (age, 1)));
        assert_eq!(each.encode(counts), runs.encode(counts));
    }

    #[test]
    fn per_node_series_leave_with_the_node() {
        let t = Telemetry::new(Duration::from_secs(15));
        t.kubelet_request("gone", Duration::from_millis(3), Some("timeout"), SystemTime::now());
        t.retain_nodes(|n| n != "gone");
        t.kubelet_request("stays", Duration::from_millis(3), Some("tls"), SystemTime::now());
        t.kubelet_request("stays", Duration::from_millis(3), Some("tls"), SystemTime::now());
        let text = t.encode(PointCounts::default());
        assert!(!text.contains("node=\"gone\""));
        assert!(text.contains("metrics_server_kubelet_scrape_consecutive_failures{node=\"stays\"} 2\n"));
        assert!(text.contains("metrics_server_kubelet_last_success_time_seconds{node=\"stays\"} 0\n"));
        assert!(text.contains("metrics_server_kubelet_scrape_failures_total{reason=\"timeout\"} 1\n"));
    }
}
