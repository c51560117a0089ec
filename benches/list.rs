//! LIST-all encoding, the VPA recommender's minute-by-minute read: every PodMetrics of a named
//! fleet (5,000 nodes × 30 pods × 2 containers = 150,000 pods) as JSON and as protobuf, through
//! `MetricsApi::read` (inventory walk, store lookups, encoding, freshness telemetry). Throughput
//! is in pods. Setup (fleet, inventory, two applied scrape cycles per node) is not timed; the
//! read time is fixed so the data never goes stale mid-run.
//!
//! On a shared machine wall time is noise; instructions are not. Before the benchmarks run, the
//! setup reads LIST-all once as JSON and once as protobuf, so a filter that matches nothing
//! counts exactly those two reads:
//! `valgrind --tool=callgrind --toggle-collect='metrics_server_rs::api::MetricsApi::read'
//! target/release/deps/list-<hash> --bench no-such-bench`.

use std::borrow::Cow;
use std::cell::Cell;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use metrics_server_rs::api::{MetricsApi, ReadTime, Route};
use metrics_server_rs::apiserver::Representation;
use metrics_server_rs::inventory::fixed::FixedInventory;
use metrics_server_rs::inventory::selector::LabelSelector;
use metrics_server_rs::inventory::{Labels, NodeInfo, PodInfo, Snapshot};
use metrics_server_rs::kubelet::{ContainerSample, NodeBatch, Point, Timestamp};
use metrics_server_rs::store::Store;
use metrics_server_rs::telemetry::Telemetry;

const RESOLUTION: Duration = Duration::from_secs(60);
const SEED: u64 = 0x5eed_1157;

/// splitmix64: small, seeded, good enough for test data.
fn next(state: &Cell<u64>) -> u64 {
    let s = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
    state.set(s);
    let mut z = s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn labels(pairs: &[(&str, String)]) -> Labels {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

/// A fleet: nodes with typical labels, pods with a deployment's labels, all on a store that
/// has applied two scrape cycles (so every container has a rate).
struct Fleet {
    name: &'static str,
    pods: u64,
    api: MetricsApi,
}

fn fleet(name: &'static str, nodes: usize, pods_per_node: usize, containers: usize) -> Fleet {
    let rng = Cell::new(SEED);
    let mut node_infos = Vec::with_capacity(nodes);
    let mut pod_infos = Vec::with_capacity(nodes * pods_per_node);
    for n in 0..nodes {
        let node = format!("node-{n:05}");
        node_infos.push(NodeInfo {
            name: node.clone(),
            labels: labels(&[
                ("kubernetes.io/hostname", node.clone()),
                ("kubernetes.io/os", "linux".to_owned()),
                ("node.kubernetes.io/instance-type", "m5.2xlarge".to_owned()),
                ("topology.kubernetes.io/zone", format!("zone-{}", n % 3)),
            ]),
            addresses: Vec::new(),
            kubelet_status_port: 0,
        });
        for _ in 0..pods_per_node {
            let r = next(&rng);
            let app = format!("deployment-{}", (r >> 8) % 100);
            pod_infos.push(PodInfo {
                namespace: format!("namespace-{}", r % 10).into(),
                name: format!("{app}-{:010x}", r >> 24).into(),
                labels: labels(&[("app", app), ("pod-template-hash", format!("{:08x}", r >> 32))]),
                node_name: node.as_str().into(),
            });
        }
    }
    let by_node: Vec<(String, Vec<PodInfo>)> = node_infos
        .iter()
        .zip(pod_infos.chunks(pods_per_node))
        .map(|(n, pods)| (n.name.clone(), pods.to_vec()))
        .collect();
    let snapshot = Snapshot::from_parts(node_infos, pod_infos);
    let store = Arc::new(Store::new(RESOLUTION, 2 * RESOLUTION));
    let start = Timestamp::from_unix_seconds(1_633_000_000);
    let container_names: Vec<String> = (0..containers).map(|c| format!("container-{c}")).collect();
    for cycle in 1..=2u32 {
        let scraped = start.saturating_add(RESOLUTION * cycle);
        let point = |r: u64| Point {
            start_time: start,
            timestamp: scraped.saturating_add(Duration::from_millis(r % 1000)),
            cpu_core_nanoseconds: u64::from(cycle) * 60_000_000_000 + (r >> 10) % 1_000_000_000,
            memory_bytes: (r >> 20) % (4 << 30),
        };
        for (node, pods) in &by_node {
            let mut samples: Vec<ContainerSample<'_>> = pods
                .iter()
                .flat_map(|p| container_names.iter().map(move |c| (p, c)))
                .map(|(p, c)| ContainerSample {
                    namespace: Cow::Borrowed(&p.namespace),
                    pod: Cow::Borrowed(&p.name),
                    container: Cow::Borrowed(c),
                    point: point(next(&rng)),
                    swap_bytes: None,
                })
                .collect();
            samples.sort_by(|a, b| (&a.namespace, &a.pod, &a.container).cmp(&(&b.namespace, &b.pod, &b.container)));
            let batch = NodeBatch {
                node: Some(point(next(&rng))),
                containers: samples,
                ..NodeBatch::default()
            };
            store.apply(node, &batch, Instant::now());
        }
    }
    let pods = snapshot.pod_count() as u64;
    let api = MetricsApi::new(
        Arc::new(FixedInventory::new(snapshot)),
        store,
        Arc::new(Telemetry::new(RESOLUTION)),
        LabelSelector::default(),
    );
    Fleet { name, pods, api }
}

fn bench_list(c: &mut Criterion) {
    let fleet = fleet("5000 nodes x 30 pods x 2 containers", 5_000, 30, 2);
    // One read time for the whole run: the store's data stays fresh however long it takes.
    let at = ReadTime::now();
    let route = Route::ListPods { namespace: None };
    let read = |representation| {
        fleet
            .api
            .read("v1beta1", &route, None, at, representation)
            .unwrap_or_default()
    };
    for (name, representation) in [("json", Representation::Json), ("protobuf", Representation::Protobuf)] {
        let body = read(representation);
        assert!(body.len() > 1000, "{name}: every pod is served");
        eprintln!(
            "{}: LIST all pods as {name}: {} bytes ({:.1} bytes per pod)",
            fleet.name,
            body.len(),
            body.len() as f64 / fleet.pods as f64
        );
    }

    let mut group = c.benchmark_group(fleet.name);
    group.throughput(Throughput::Elements(fleet.pods));
    group.sample_size(10);
    group.bench_function("LIST all pods as JSON", |b| {
        b.iter(|| black_box(read(Representation::Json)).len());
    });
    group.bench_function("LIST all pods as protobuf", |b| {
        b.iter(|| black_box(read(Representation::Protobuf)).len());
    });
    group.finish();
}

criterion_group!(benches, bench_list);
criterion_main!(benches);
