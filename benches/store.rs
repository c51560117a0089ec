//! Store hot paths on a named fleet from a seeded generator: one full scrape cycle of applies,
//! and the LIST read path (`node_pods` over every node). Throughput is in pods.
//!
//! Batches borrow their names from the fleet, as decoded batches borrow from response bodies;
//! building them is setup and is not timed. Every timed apply is a steady-state cycle: each
//! container is known and gets a new, later point with more CPU.
//!
//! Before timing, it prints what the store keeps per pod: resident set growth
//! (`/proc/self/status` VmRSS) over three cycles of applies whose batches were built
//! beforehand, so the growth is the store's own state, including what churn fragments.

use std::borrow::Cow;
use std::cell::Cell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use metrics_server_rs::kubelet::{ContainerSample, NodeBatch, Point, Timestamp};
use metrics_server_rs::store::Store;

const RESOLUTION: Duration = Duration::from_secs(60);
const SEED: u64 = 0x5eed_5707;

/// A fleet scenario: names fixed, usage drawn from a seeded generator per cycle.
struct Fleet {
    name: &'static str,
    nodes: Vec<String>,
    /// (namespace, pod, containers) per node, sorted as the decoder sorts.
    pods: Vec<Vec<(String, String, Vec<String>)>>,
    rng: Cell<u64>,
}

impl Fleet {
    fn new(name: &'static str, nodes: usize, pods_per_node: usize, containers: usize) -> Fleet {
        let rng = Cell::new(SEED);
        let pods = (0..nodes)
            .map(|_| {
                let mut node_pods: Vec<_> = (0..pods_per_node)
                    .map(|_| {
                        let r = next(&rng);
                        let namespace = format!("namespace-{}", r % 10);
                        let pod = format!("deployment-{}-{:010x}", (r >> 8) % 100, r >> 24);
                        let names = (0..containers).map(|c| format!("container-{c}")).collect();
                        (namespace, pod, names)
                    })
                    .collect();
                node_pods.sort();
                node_pods
            })
            .collect();
        Fleet {
            name,
            nodes: (0..nodes).map(|n| format!("node-{n:05}")).collect(),
            pods,
            rng,
        }
    }

    fn pod_count(&self) -> u64 {
        self.pods.iter().map(|p| p.len() as u64).sum()
    }

    /// Every node's batch for scrape cycle `cycle` (≥ 1): timestamps one resolution apart,
    /// cumulative CPU growing, memory varying.
    fn cycle(&self, cycle: u64) -> Vec<NodeBatch<'_>> {
        let start = Timestamp::from_unix_seconds(1_633_000_000);
        let scraped = start.saturating_add(RESOLUTION * u32::try_from(cycle).unwrap_or(u32::MAX));
        let point = |rng: u64| Point {
            start_time: start,
            timestamp: scraped.saturating_add(Duration::from_millis(rng % 1000)),
            cpu_core_nanoseconds: cycle * 60_000_000_000 + (rng >> 10) % 1_000_000_000,
            memory_bytes: (rng >> 20) % (4 << 30),
        };
        self.pods
            .iter()
            .map(|pods| NodeBatch {
                node: Some(point(next(&self.rng))),
                containers: pods
                    .iter()
                    .flat_map(|(namespace, pod, containers)| containers.iter().map(move |c| (namespace, pod, c)))
                    .map(|(namespace, pod, container)| ContainerSample {
                        namespace: Cow::Borrowed(namespace),
                        pod: Cow::Borrowed(pod),
                        container: Cow::Borrowed(container),
                        point: point(next(&self.rng)),
                    })
                    .collect(),
            })
            .collect()
    }
}

/// splitmix64: small, seeded, good enough for test data.
fn next(state: &Cell<u64>) -> u64 {
    let s = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
    state.set(s);
    let mut z = s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn apply_cycle(store: &Store, fleet: &Fleet, batches: &[NodeBatch<'_>], at: Instant) {
    for (node, batch) in fleet.nodes.iter().zip(batches) {
        store.apply(node, batch, at);
    }
}

/// Resident bytes per pod the store holds in the steady state (three cycles applied).
#[allow(clippy::print_stdout, reason = "a report: its output is the result")]
fn report_memory(fleet: &Fleet) {
    let store = Store::new(RESOLUTION, 2 * RESOLUTION);
    let cycles: Vec<_> = (1..=3).map(|cycle| fleet.cycle(cycle)).collect();
    let before = rss_bytes();
    for batches in &cycles {
        apply_cycle(&store, fleet, batches, Instant::now());
    }
    let growth = rss_bytes().saturating_sub(before);
    let pods = fleet.pod_count();
    println!(
        "store memory, {}: RSS growth {:.1} MiB, {} B/pod",
        fleet.name,
        growth as f64 / f64::from(1 << 20),
        growth / pods
    );
    black_box(&store);
}

/// VmRSS from `/proc/self/status`, in bytes (0 where there is no procfs).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn bench_store(c: &mut Criterion) {
    let fleet = Fleet::new("5000 nodes x 30 pods x 2 containers", 5_000, 30, 2);
    report_memory(&fleet);
    let store = Store::new(RESOLUTION, 2 * RESOLUTION);
    let cycle = Cell::new(0);
    let mut next_cycle = || {
        cycle.set(cycle.get() + 1);
        fleet.cycle(cycle.get())
    };
    // Two cycles so every node and container has a prev point: the steady state.
    for _ in 0..2 {
        apply_cycle(&store, &fleet, &next_cycle(), Instant::now());
    }

    let mut group = c.benchmark_group(fleet.name);
    group.throughput(Throughput::Elements(fleet.pod_count()));
    group.sample_size(10);

    group.bench_function("apply one scrape cycle", |b| {
        b.iter_batched(
            &mut next_cycle,
            |batches| {
                apply_cycle(&store, &fleet, &batches, Instant::now());
                batches
            },
            BatchSize::PerIteration,
        );
    });

    let now = Instant::now();
    let read_all = || {
        let (mut pods, mut containers) = (0u64, 0usize);
        for node in &fleet.nodes {
            for (_, _, usage) in store.node_pods(node, now).iter().flat_map(|held| held.iter()) {
                pods += 1;
                containers += usage.containers.len();
            }
        }
        (pods, containers)
    };
    group.bench_function("node_pods over every node", |b| b.iter(|| black_box(read_all())));
    assert_eq!(read_all().0, fleet.pod_count(), "every pod is served");
    group.finish();
}

criterion_group!(benches, bench_store);
criterion_main!(benches);
