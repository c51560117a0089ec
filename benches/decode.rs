//! Decode throughput in bytes per second: our decoder against `prometheus-parse` (the
//! differential test's reference) on the same body, in the same group, so the report gives
//! the ratio to a same-run baseline. Bodies: a busy node rendered by the sandbox (110 pods ×
//! 2 containers, the kubelet's default pod limit) and upstream's real 70-pod response.
//! Bodies are built before timing starts. The fleet bench's own body (30 pods × ~2
//! containers with the simulator's 17-digit counters) is the one the scrape CPU target is
//! about.
//!
//! `DECODE_ONLY=<n>` skips criterion and decodes the fleet body n times, for instruction counts:
//! `DECODE_ONLY=100 valgrind --tool=callgrind target/release/deps/decode-*` (subtract a
//! `DECODE_ONLY=0` run to leave out building the body).

use std::hint::black_box;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use metrics_server_rs::kubelet::{decode, Timestamp};
use metrics_server_rs::sandbox::exposition::{render_resource_metrics, SimContainer, SimNode};
use metrics_server_rs::sandbox::fleet::Fleet;
use prometheus_parse::Scrape;

const SCRAPE_MS: i64 = 1_795_344_895_238;

/// SplitMix64, so every run renders the same fleet.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A node with `pods` pods of `containers` containers, spread over 10 namespaces and 20
/// deployments, with kubelet-like names and values.
fn scenario(pods: usize, containers: usize, seed: u64) -> SimNode {
    const NAMES: [&str; 4] = ["app", "istio-proxy", "log-shipper", "metrics-exporter"];
    let mut rng = Seeded(seed);
    let mut sims = Vec::with_capacity(pods * containers);
    for p in 0..pods {
        let namespace = format!("team-{}", p % 10);
        let pod = format!(
            "deployment-{}-{:010x}-{:05x}",
            p % 20,
            rng.below(1 << 40),
            rng.below(1 << 20)
        );
        for name in NAMES.iter().cycle().take(containers) {
            sims.push(SimContainer {
                namespace: namespace.clone(),
                pod: pod.clone(),
                container: (*name).to_owned(),
                start_time_seconds: 1.795e9 + rng.below(10_000_000) as f64 / 1e3,
                cpu_seconds: rng.below(100_000_000_000) as f64 / 1e6,
                memory_bytes: (rng.below(500_000) * 4096) as f64,
            });
        }
    }
    sims.sort_by(|a, b| (&a.namespace, &a.pod, &a.container).cmp(&(&b.namespace, &b.pod, &b.container)));
    SimNode {
        cpu_seconds: 1_234_567.891_234,
        memory_bytes: 33_285_996_544.0,
        containers: sims,
    }
}

/// One node of the fleet bench's simulated cluster an hour after its epoch, as its kubelet
/// serves it.
fn fleet_body() -> Vec<u8> {
    let epoch = 1.795e9;
    let fleet = Fleet::generate(1, 30, 11, epoch);
    let mut body = Vec::new();
    if let Some(node) = fleet.nodes.first() {
        render_resource_metrics(&fleet.sample(node, epoch + 3_600.25), SCRAPE_MS, &mut body);
    }
    body
}

fn bench_decode(c: &mut Criterion) {
    let mut rendered = Vec::new();
    render_resource_metrics(&scenario(110, 2, 42), SCRAPE_MS, &mut rendered);
    let fleet = fleet_body();
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/kubelet/client_test-resourceResponse-70pods.txt"
    ))
    .unwrap_or_default();
    // prometheus-parse takes its default time as a chrono value; borrow one from its own output.
    let clock = Scrape::parse(std::iter::once(Ok(format!("clock 0 {SCRAPE_MS}"))))
        .ok()
        .and_then(|mut scrape| scrape.samples.pop())
        .map(|sample| sample.timestamp);
    let default_time = Timestamp::from_unix_millis(SCRAPE_MS);

    let mut group = c.benchmark_group("decode");
    for (scenario, body) in [
        ("fleet 30 pods", &fleet),
        ("110 pods x 2 containers", &rendered),
        ("70-pod fixture", &fixture),
    ] {
        let text = String::from_utf8_lossy(body).into_owned();
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("ours", scenario), body, |b, body| {
            b.iter(|| decode(black_box(body), default_time))
        });
        if let Some(clock) = clock {
            group.bench_with_input(BenchmarkId::new("prometheus-parse", scenario), &text, |b, text| {
                b.iter(|| Scrape::parse_at(black_box(text).lines().map(|l| Ok(l.to_owned())), clock))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_decode);

fn main() {
    match std::env::var("DECODE_ONLY").ok().and_then(|n| n.parse::<usize>().ok()) {
        Some(times) => {
            let body = fleet_body();
            let default_time = Timestamp::from_unix_millis(SCRAPE_MS);
            for _ in 0..times {
                black_box(decode(black_box(&body), default_time)).ok();
            }
        }
        None => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
