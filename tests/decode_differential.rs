//! Differential test of the kubelet decoder: our zero-copy `decode` must give exactly what a
//! reference gives when the same rules (the five families read, exact names, units, drop
//! rules, later line wins) are applied to the samples `prometheus-parse` reads. The inputs
//! hold no malformed line, so the one rule the reference cannot check (a malformed line of a
//! family we skip does not fail the body, where `prometheus-parse` may reject it) does not
//! arise here; the unit tests cover it. Inputs: every kubelet fixture, then
//! seeded random fleets rendered by the sandbox's exposition writer and then varied (labels
//! reordered, timestamps dropped, duplicates, unknown series, exponent and special values).
//! Last, any bytes at all must decode to `Ok` or `Err`, never a panic.
//!
//! Where `prometheus-parse` is wrong we do not follow it: it reads a negative timestamp as a
//! date in year 1 instead of rejecting the line, so for that fixture we only check that our
//! decoder fails. It is also lenient in ways the generated inputs avoid (it skips unparsable
//! lines and splits labels on `,` and `=` without honouring quotes), so generated names use
//! only `[a-z0-9-]`.

#![allow(clippy::unwrap_used, reason = "test helpers: a failed unwrap is a failed test")]

use std::collections::BTreeMap;
use std::path::Path;

use metrics_server_rs::kubelet::{decode, ContainerSample, NodeBatch, Point, Timestamp};
use metrics_server_rs::sandbox::exposition::{render_resource_metrics, SimContainer, SimNode};
use prometheus_parse::{Scrape, Value};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestRunner};

/// The scrape's request time: 2077-07-07T07:07:07Z, in milliseconds as upstream truncates it.
const DEFAULT_MS: i64 = 3_392_867_227_000;

fn fixtures_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/kubelet"))
}

/// A fixed seed: every run generates the same cases.
fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x6b75_6265_6c65_7421),
        failure_persistence: None,
        ..Config::default()
    })
}

/// Our decoder's rules, written a second time over `prometheus-parse` samples with ordered maps.
fn reference(body: &str, default_ms: i64) -> NodeBatch<'static> {
    // prometheus-parse wants its default time as a chrono value; get one from the parser itself
    // rather than depend on chrono directly.
    let clock = Scrape::parse(std::iter::once(Ok(format!("clock 0 {default_ms}"))))
        .unwrap()
        .samples
        .remove(0)
        .timestamp;
    let scrape = Scrape::parse_at(body.lines().map(|l| Ok(l.to_owned())), clock).unwrap();

    #[derive(Default)]
    struct Series {
        cpu: Option<u64>,
        memory: Option<u64>,
        start: Option<i64>,
        ms: Option<i64>,
    }
    let mut node = Series::default();
    let mut containers: BTreeMap<(String, String, String), Series> = BTreeMap::new();
    for sample in scrape.samples {
        let (Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) = sample.value else {
            continue;
        };
        let ok = v.is_finite() && v >= 0.0;
        let cpu = ok.then_some((v * 1e9) as u64);
        let bytes = ok.then_some(v as u64);
        let ms = sample.timestamp.timestamp_millis();
        let label = |k: &str| sample.labels.get(k).filter(|v| !v.is_empty()).map(str::to_owned);
        let metric = sample.metric.as_str();
        if let Some(family) = metric.strip_prefix("node_") {
            match family {
                "cpu_usage_seconds_total" => node.cpu = cpu,
                "memory_working_set_bytes" => node.memory = bytes,
                _ => continue,
            }
            if ok {
                node.ms = Some(ms);
            }
        } else if let Some(family) = metric.strip_prefix("container_") {
            if !matches!(
                family,
                "cpu_usage_seconds_total" | "memory_working_set_bytes" | "start_time_seconds"
            ) {
                continue;
            }
            let (Some(ns), Some(pod), Some(name)) = (label("namespace"), label("pod"), label("container")) else {
                continue;
            };
            let c = containers.entry((ns, pod, name)).or_default();
            match family {
                "cpu_usage_seconds_total" => c.cpu = cpu,
                "memory_working_set_bytes" => c.memory = bytes,
                _ => c.start = ok.then_some((v * 1e9) as i64),
            }
            if ok && family != "start_time_seconds" {
                c.ms = Some(ms);
            }
        }
    }

    let at = |ms: Option<i64>| Timestamp::from_unix_millis(ms.unwrap_or(default_ms));
    let complete = |s: &Series| s.cpu.is_some_and(|c| c > 0) && s.memory.is_some_and(|m| m > 0);
    let point = |s: &Series| Point {
        start_time: Timestamp::from_unix_nanos(s.start.unwrap_or(0)),
        timestamp: at(s.ms),
        cpu_core_nanoseconds: s.cpu.unwrap_or(0),
        memory_bytes: s.memory.unwrap_or(0),
    };
    let containers: Vec<_> = containers.into_iter().collect();
    let mut batch = NodeBatch {
        node: complete(&node).then(|| Point {
            start_time: Timestamp::ZERO,
            ..point(&node)
        }),
        containers: Vec::new(),
    };
    for pod in containers.chunk_by(|((a, b, _), _), ((c, d, _), _)| (a, b) == (c, d)) {
        if pod.iter().all(|(_, c)| complete(c)) {
            batch
                .containers
                .extend(pod.iter().map(|((ns, pod, name), c)| ContainerSample {
                    namespace: ns.clone().into(),
                    pod: pod.clone().into(),
                    container: name.clone().into(),
                    point: point(c),
                }));
        }
    }
    batch
}

#[test]
fn every_fixture_decodes_like_the_reference() {
    let mut files: Vec<_> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "fixtures missing: {files:?}");
    let default_time = Timestamp::from_unix_millis(DEFAULT_MS);
    for path in files {
        let body = std::fs::read(&path).unwrap();
        let ours = decode(&body, default_time);
        let text = std::str::from_utf8(&body).unwrap();
        if path.ends_with("decode_test-13-containing-an-incorrect-timestamp.txt") {
            // The reference's mistake: it accepts -62135596800000 ms as 0001-01-01.
            let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
            assert_eq!(scrape.samples[0].timestamp.to_string(), "0001-01-01 00:00:00 UTC");
            assert!(ours.is_err(), "{}: a negative timestamp must fail", path.display());
            continue;
        }
        assert_eq!(ours.unwrap(), reference(text, DEFAULT_MS), "{}", path.display());
    }
}

/// Values as a kubelet could write them, plus zeros, extremes and values that drop a series.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => (1u64..10_000_000_000_000).prop_map(|n| n as f64 / 1000.0),
        4 => (1u64..4_000_000).prop_map(|n| n as f64 * 4096.0),
        1 => Just(0.0),
        1 => prop::num::f64::POSITIVE | prop::num::f64::NORMAL,
        1 => prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(-2.5), Just(4e-10)],
    ]
}

fn fleet() -> impl Strategy<Value = SimNode> {
    let name = "[a-z][a-z0-9-]{0,11}";
    let namespace = prop_oneof![Just("default".to_owned()), Just("kube-system".to_owned()), "[a-z]{1,6}"];
    let pod = (
        namespace,
        name,
        prop::collection::vec((name, value(), value(), value()), 1..4),
    );
    (value(), value(), prop::collection::vec(pod, 0..25)).prop_map(|(cpu, memory, pods)| {
        let mut containers: Vec<SimContainer> = pods
            .into_iter()
            .flat_map(|(ns, pod, cs)| {
                cs.into_iter().map(move |(container, start, cpu, memory)| SimContainer {
                    namespace: ns.clone(),
                    pod: pod.clone(),
                    container,
                    start_time_seconds: start,
                    cpu_seconds: cpu,
                    memory_bytes: memory,
                })
            })
            .collect();
        containers.sort_by(|a, b| (&a.namespace, &a.pod, &a.container).cmp(&(&b.namespace, &b.pod, &b.container)));
        containers.dedup_by(|a, b| (&a.namespace, &a.pod, &a.container) == (&b.namespace, &b.pod, &b.container));
        SimNode {
            cpu_seconds: cpu,
            memory_bytes: memory,
            containers,
        }
    })
}

/// How to disturb a rendered body; the choices within are drawn from `seed`.
#[derive(Debug, Clone)]
struct Variations {
    seed: u64,
    /// Percent of sample lines that lose their timestamp, are rewritten in exponent form, and
    /// have their labels shuffled.
    strip_timestamp: u8,
    exponent: u8,
    shuffle_labels: u8,
    duplicates: usize,
    dropped: usize,
    ghosts: usize,
    extras: usize,
    final_newline: bool,
}

fn variations() -> impl Strategy<Value = Variations> {
    let percents = (0u8..=100, 0u8..=100, 0u8..=100);
    let counts = (0usize..6, 0usize..4, 0usize..3, 0usize..6);
    (any::<u64>(), any::<bool>(), percents, counts).prop_map(
        |(seed, final_newline, (strip_timestamp, exponent, shuffle_labels), counts)| {
            let (duplicates, dropped, ghosts, extras) = counts;
            Variations {
                seed,
                strip_timestamp,
                exponent,
                shuffle_labels,
                duplicates,
                dropped,
                ghosts,
                extras,
                final_newline,
            }
        },
    )
}

/// SplitMix64: a few lines of deterministic choice, seeded by proptest.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn percent(&mut self, p: u8) -> bool {
        self.below(100) < usize::from(p)
    }
}

const EXTRA_LINES: &[&str] = &[
    "container_swap_limit_bytes{container=\"x\",namespace=\"y\",pod=\"z\"} 0 1633253812125",
    "node_cpu_usage_seconds_total_foo 5",
    "pod_cpu_usage_seconds_total_bar{namespace=\"a\",pod=\"b\"} 1",
    "scrape_error 0",
    "# a free comment { \" }",
    "",
    "container_cpu_usage_seconds_total{namespace=\"a\",pod=\"b\"} 1 5",
    "container_memory_working_set_bytes{container=\"\",namespace=\"a\",pod=\"b\"} 1 5",
    "pod_memory_working_set_bytes{pod=\"b\"} 7",
    "node_memory_working_set_bytes{extra=\"label\"} 42 17",
    "container_start_time_seconds{container=\"late\",namespace=\"default\",pod=\"web\"} 1.5e9",
    "pod_cpu_usage_seconds_total{namespace=\"\",pod=\"b\"} 1",
    "container_cpu_usage_seconds_total{container=\"\",namespace=\"a\",pod=\"b\"} 1 5\n\
     container_memory_working_set_bytes{container=\"\",namespace=\"a\",pod=\"b\"} 1 5",
    "container_cpu_usage_seconds_total{pod=\"extra\",namespace=\"zz\",container=\"c\"} 2\n\
     container_memory_working_set_bytes{container=\"c\",pod=\"extra\",namespace=\"zz\"} 3 9\n\
     pod_swap_usage_bytes{namespace=\"zz\",pod=\"extra\"} 0 11",
];

/// The same sample line with another value (and its timestamp, if any).
fn with_value(line: &str, value: &str) -> String {
    let (series, rest) = match line.rfind('}') {
        Some(end) => line.split_at(end + 1),
        None => line.split_at(line.find([' ', '\t']).unwrap_or(line.len())),
    };
    let timestamp = rest.split_whitespace().nth(1).unwrap_or("");
    format!("{series} {value} {timestamp}").trim_end().to_owned()
}

/// Rewrites one sample line: labels shuffled, value in another spelling, timestamp dropped.
fn vary_line(line: &str, v: &Variations, dice: &mut Dice) -> String {
    let (series, rest) = match line.rfind('}') {
        Some(end) => line.split_at(end + 1),
        None => line.split_at(line.find(' ').unwrap_or(line.len())),
    };
    let mut series = series.to_owned();
    if let (Some(open), true) = (series.find('{'), dice.percent(v.shuffle_labels)) {
        let mut labels: Vec<&str> = series[open + 1..series.len() - 1].split(',').collect();
        for i in (1..labels.len()).rev() {
            labels.swap(i, dice.below(i + 1));
        }
        let trailing = if dice.percent(30) { "," } else { "" };
        series = format!("{}{{{}{trailing}}}", &series[..open], labels.join(","));
    }
    let mut tokens = rest.split_whitespace();
    let mut value = tokens.next().unwrap_or("0").to_owned();
    let timestamp = tokens.next();
    if dice.percent(v.exponent) {
        value = match value.parse::<f64>() {
            Ok(x) if x.is_nan() => ["nan", "NaN", "NAN"][dice.below(3)].to_owned(),
            Ok(x) if x.is_infinite() => ["+Inf", "inf", "+infinity"][dice.below(3)].to_owned(),
            Ok(x) => {
                let e = format!("{x:e}");
                let (mantissa, exp) = e.split_once('e').unwrap();
                let exp: i32 = exp.parse().unwrap();
                match dice.below(3) {
                    0 => e,
                    1 => format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs()),
                    _ => format!("{mantissa}E{exp}"),
                }
            }
            Err(_) => value,
        };
    }
    let gap = [" ", "\t", "  "][dice.below(3)];
    match timestamp {
        Some(ts) if !dice.percent(v.strip_timestamp) => format!("{series}{gap}{value}{gap}{ts}"),
        _ => format!("{series}{gap}{value}"),
    }
}

fn vary(body: &str, v: &Variations) -> String {
    let mut dice = Dice(v.seed);
    let is_sample = |l: &str| !l.is_empty() && !l.starts_with('#');
    let mut lines: Vec<String> = body
        .lines()
        .map(|l| {
            if is_sample(l) {
                vary_line(l, v, &mut dice)
            } else {
                l.to_owned()
            }
        })
        .collect();
    for _ in 0..v.dropped {
        let samples: Vec<usize> = (0..lines.len()).filter(|&i| is_sample(&lines[i])).collect();
        if !samples.is_empty() {
            lines.remove(samples[dice.below(samples.len())]);
        }
    }
    for _ in 0..v.duplicates {
        let samples: Vec<usize> = (0..lines.len()).filter(|&i| is_sample(&lines[i])).collect();
        if samples.is_empty() {
            break;
        }
        let mut copy = lines[samples[dice.below(samples.len())]].clone();
        if dice.percent(50) {
            copy = with_value(&copy, ["0", "NaN", "7", "1.5e3", "-1"][dice.below(5)]);
        }
        let at = dice.below(lines.len() + 1);
        lines.insert(at, copy);
    }
    for n in 0..v.ghosts {
        // Another container in an existing pod with only a swap line (ignored) or only a start
        // time (drops the pod).
        let samples: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].starts_with("container_cpu_usage_seconds_total"))
            .collect();
        if samples.is_empty() {
            break;
        }
        let line = &lines[samples[dice.below(samples.len())]];
        let family = ["container_swap_usage_bytes", "container_start_time_seconds"][dice.below(2)];
        let ghost = line.replacen("container_cpu_usage_seconds_total", family, 1).replacen(
            "container=\"",
            &format!("container=\"ghost-{n}-"),
            1,
        );
        let at = dice.below(lines.len() + 1);
        lines.insert(at, ghost);
    }
    for _ in 0..v.extras {
        let extra = EXTRA_LINES[dice.below(EXTRA_LINES.len())].to_owned();
        let at = dice.below(lines.len() + 1);
        lines.insert(at, extra);
    }
    let mut out = lines.join("\n");
    if v.final_newline {
        out.push('\n');
    }
    out
}

#[test]
fn generated_fleets_decode_like_the_reference() {
    let input = (fleet(), 0i64..5_000_000_000_000, variations());
    runner(256)
        .run(&input, |(node, timestamp_ms, v)| {
            let mut body = Vec::new();
            render_resource_metrics(&node, timestamp_ms, &mut body);
            let body = vary(std::str::from_utf8(&body).unwrap(), &v);
            let ours = decode(body.as_bytes(), Timestamp::from_unix_millis(DEFAULT_MS));
            prop_assert_eq!(ours, Ok(reference(&body, DEFAULT_MS)), "body:\n{}", body);
            Ok(())
        })
        .unwrap();
}

/// Properties every successful decode has, whatever the input.
fn check_invariants(batch: &NodeBatch<'_>) -> Result<(), TestCaseError> {
    let key = |c: &ContainerSample<'_>| -> (String, String, String) {
        (c.namespace.to_string(), c.pod.to_string(), c.container.to_string())
    };
    prop_assert!(batch.containers.windows(2).all(|w| key(&w[0]) < key(&w[1])));
    prop_assert!(batch
        .containers
        .iter()
        .all(|c| c.point.cpu_core_nanoseconds > 0 && c.point.memory_bytes > 0));
    if let Some(node) = batch.node {
        prop_assert!(node.cpu_core_nanoseconds > 0 && node.memory_bytes > 0);
    }
    Ok(())
}

fn never_panics(input: impl Strategy<Value = Vec<u8>>, cases: u32) {
    runner(cases)
        .run(&input, |bytes| match decode(&bytes, Timestamp::ZERO) {
            Ok(batch) => check_invariants(&batch),
            Err(err) => {
                prop_assert!(err.to_string().starts_with("failed parsing metrics: line "));
                prop_assert!(err.line >= 1 && err.line <= 1 + bytes.iter().filter(|&&b| b == b'\n').count());
                Ok(())
            }
        })
        .unwrap();
}

#[test]
fn arbitrary_bytes_never_panic() {
    never_panics(prop::collection::vec(any::<u8>(), 0..2048), 1024);
}

#[test]
fn token_soup_never_panics() {
    const TOKENS: &[&str] = &[
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "node_cpu_usage_seconds_total",
        "pod_swap_usage_bytes",
        "container",
        "namespace",
        "pod",
        "x",
        "{",
        "}",
        "=",
        ",",
        "\"",
        "\\",
        "\\\"",
        " ",
        "\t",
        "\n",
        "#",
        "# HELP ",
        "1",
        "-1",
        "0.5",
        "1e9",
        "E",
        "e+",
        ".",
        "NaN",
        "+Inf",
        "-",
        "9223372036854775808",
        "1633253812125",
        "\u{e9}",
        "\u{0}",
    ];
    let soup =
        prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|tokens| tokens.concat().into_bytes());
    never_panics(soup, 1024);
}

#[test]
fn mutated_bodies_never_panic() {
    let mutated = (
        fleet(),
        prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8),
    )
        .prop_map(|(node, edits)| {
            let mut body = Vec::new();
            render_resource_metrics(&node, 1_633_253_812_125, &mut body);
            for (at, byte, op) in edits {
                let at = at % (body.len() + 1);
                match op {
                    0 => body.insert(at, byte),
                    1 if at < body.len() => body[at] = byte,
                    _ if at < body.len() => drop(body.remove(at)),
                    _ => {}
                }
            }
            body
        });
    never_panics(mutated, 256);
}
