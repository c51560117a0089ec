//! LIST-all encoding, the VPA recommender's minute-by-minute read: every PodMetrics of a named
//! fleet (5,000 nodes × 30 pods × 2 containers = 150,000 pods) as JSON and as protobuf, through
//! `MetricsApi::read` (inventory walk, store lookups, encoding, freshness telemetry). Throughput
//! is in pods. Setup (fleet, inventory, two applied scrape cycles per node) is not timed; the
//! read time is fixed so the data never goes stale mid-run.
//!
//! Each representation is read three ways:
//! * `direct`: with a field selector that matches every pod, which bypasses the LIST-all cache
//!   (`api::list_cache`) and encodes every item, as every LIST did before it;
//! * `cold`: a fresh API (empty cache) per read: every node's chunk is built;
//! * `warm`: the same API read after ~5% of the nodes got a new scrape (applied untimed), as
//!   at 2 lists/s with 5,000 nodes scraped every 15 s: 95% of the chunks are sent as kept.
//!
//! On a shared machine wall time is noise; instructions are not. Before the benchmarks run, the
//! setup reads LIST-all as JSON then protobuf, each cold, then warm with 5% changed, then
//! direct, so a filter that matches nothing counts exactly those six reads:
//! `valgrind --tool=callgrind --toggle-collect='metrics_server_rs::api::MetricsApi::read'
//! target/release/deps/list-<hash> --bench no-such-bench` (callgrind_annotate shows each
//! read's share under its caller).
//!
//! Warm lists alone (nothing changed since the last one) are counted by
//! `--toggle-collect='*warm_reads*'`: each representation at the last list's read time (its
//! chunks serve as they are), then a second later (every item's `creationTimestamp` changes).
//!
//! The same fleet also serves the reads an HPA and `kubectl top pod -n NS` make: LIST of one
//! namespace (a tenth of the pods, on nearly every node), the same with a label selector (one
//! deployment: ~150 pods), and GET of one pod. Their instructions are counted by running the
//! functions that make them once, untimed, before the benchmarks:
//! `valgrind --tool=callgrind --toggle-collect='*namespace_reads*'` (or `'*pod_gets*'`) with
//! the same `--bench no-such-bench`.

use std::borrow::Cow;
use std::cell::Cell;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use metrics_server_rs::api::{MetricsApi, ReadTime, Route};
use metrics_server_rs::apiserver::{Body, Representation};
use metrics_server_rs::inventory::fixed::FixedInventory;
use metrics_server_rs::inventory::selector::LabelSelector;
use metrics_server_rs::inventory::{Inventory, Labels, NodeInfo, PodInfo, Snapshot};
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
    inventory: Arc<FixedInventory>,
    store: Arc<Store>,
    api: MetricsApi,
    /// Each node's pods, for later scrapes.
    by_node: Vec<(String, Vec<PodInfo>)>,
    container_names: Vec<String>,
    rng: Cell<u64>,
    /// The last scrape cycle applied to any node.
    cycle: Cell<u32>,
    /// Where the next [`Fleet::scrape_some`] starts, so each call changes other nodes.
    next_node: Cell<usize>,
}

/// What `node`'s kubelet reports in `cycle` (from the fleet's start).
fn node_batch<'p>(pods: &'p [PodInfo], container_names: &'p [String], cycle: u32, rng: &Cell<u64>) -> NodeBatch<'p> {
    let start = Timestamp::from_unix_seconds(1_633_000_000);
    let scraped = start.saturating_add(RESOLUTION * cycle);
    let point = |r: u64| Point {
        start_time: start,
        timestamp: scraped.saturating_add(Duration::from_millis(r % 1000)),
        cpu_core_nanoseconds: u64::from(cycle) * 60_000_000_000 + (r >> 10) % 1_000_000_000,
        memory_bytes: (r >> 20) % (4 << 30),
    };
    let mut samples: Vec<ContainerSample<'_>> = pods
        .iter()
        .flat_map(|p| container_names.iter().map(move |c| (p, c)))
        .map(|(p, c)| ContainerSample {
            namespace: Cow::Borrowed(&p.namespace),
            pod: Cow::Borrowed(&p.name),
            container: Cow::Borrowed(c),
            point: point(next(rng)),
        })
        .collect();
    samples.sort_by(|a, b| (&a.namespace, &a.pod, &a.container).cmp(&(&b.namespace, &b.pod, &b.container)));
    NodeBatch {
        node: Some(point(next(rng))),
        containers: samples,
    }
}

impl Fleet {
    /// A new API over the same inventory and store: its LIST-all cache is empty.
    fn fresh_api(&self) -> MetricsApi {
        MetricsApi::new(
            Arc::clone(&self.inventory) as Arc<dyn Inventory>,
            Arc::clone(&self.store),
            Arc::new(Telemetry::new(RESOLUTION)),
            LabelSelector::default(),
        )
    }

    /// Applies a new scrape to `share` of the nodes (the next ones after the last call).
    fn scrape_some(&self, share: f64) {
        let count = ((self.by_node.len() as f64 * share).ceil() as usize).max(1);
        let cycle = self.cycle.get() + 1;
        self.cycle.set(cycle);
        for i in 0..count {
            let (node, pods) = &self.by_node[(self.next_node.get() + i) % self.by_node.len()];
            let batch = node_batch(pods, &self.container_names, cycle, &self.rng);
            self.store.apply(node, &batch, Instant::now());
        }
        self.next_node.set((self.next_node.get() + count) % self.by_node.len());
    }
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
    let container_names: Vec<String> = (0..containers).map(|c| format!("container-{c}")).collect();
    for cycle in 1..=2u32 {
        for (node, pods) in &by_node {
            store.apply(node, &node_batch(pods, &container_names, cycle, &rng), Instant::now());
        }
    }
    let pods = snapshot.pod_count() as u64;
    let inventory = Arc::new(FixedInventory::new(snapshot));
    let api = MetricsApi::new(
        Arc::clone(&inventory) as Arc<dyn Inventory>,
        Arc::clone(&store),
        Arc::new(Telemetry::new(RESOLUTION)),
        LabelSelector::default(),
    );
    Fleet {
        name,
        pods,
        inventory,
        store,
        api,
        by_node,
        container_names,
        rng,
        cycle: Cell::new(2),
        next_node: Cell::new(0),
    }
}

/// A field selector every pod matches: the read takes the direct (uncached) path.
const EVERY_POD: &str = "fieldSelector=metadata.name%21%3D";
/// Nodes re-scraped between two warm lists: 2 lists/s, 5,000 nodes every 15 s.
const CHANGED_SHARE: f64 = 0.05;

fn bench_list(c: &mut Criterion) {
    let fleet = fleet("5000 nodes x 30 pods x 2 containers", 5_000, 30, 2);
    // One read time for the whole run: the store's data stays fresh however long it takes.
    let at = ReadTime::now();
    let route = Route::ListPods { namespace: None };
    let read = |api: &MetricsApi, query, representation| {
        api.read("v1beta1", &route, query, at, representation)
            .unwrap_or_default()
    };
    let formats = [("JSON", Representation::Json), ("protobuf", Representation::Protobuf)];
    for (name, representation) in formats {
        let cold = read(&fleet.fresh_api(), None, representation);
        read(&fleet.api, None, representation);
        fleet.scrape_some(CHANGED_SHARE);
        let warm = read(&fleet.api, None, representation);
        let direct = read(&fleet.api, Some(EVERY_POD), representation);
        assert!(cold.len() > 1000, "{name}: every pod is served");
        assert!(
            warm.to_bytes() == direct.to_bytes(),
            "{name}: the cached list is the direct one"
        );
        eprintln!(
            "{}: LIST all pods as {name}: {} bytes ({:.1} bytes per pod)",
            fleet.name,
            direct.len(),
            direct.len() as f64 / fleet.pods as f64
        );
    }

    let warm = warm_reads(&fleet.api, at);
    assert!(warm > 1000, "every pod is served");

    let mut group = c.benchmark_group(fleet.name);
    group.throughput(Throughput::Elements(fleet.pods));
    group.sample_size(10);
    for (name, representation) in formats {
        group.bench_function(format!("LIST all pods as {name}, direct"), |b| {
            b.iter(|| black_box(read(&fleet.api, Some(EVERY_POD), representation)).len());
        });
        group.bench_function(format!("LIST all pods as {name}, cold cache"), |b| {
            b.iter_batched(
                || fleet.fresh_api(),
                // The API (and its cache) is returned, so dropping it is not timed.
                |api| {
                    let len = black_box(read(&api, None, representation)).len();
                    (api, len)
                },
                BatchSize::PerIteration,
            );
        });
        group.bench_function(
            format!("LIST all pods as {name}, warm cache, 5% of nodes changed"),
            |b| {
                b.iter_batched(
                    || fleet.scrape_some(CHANGED_SHARE),
                    |()| black_box(read(&fleet.api, None, representation)).len(),
                    BatchSize::PerIteration,
                );
            },
        );
    }
    group.finish();
    bench_namespace(c, &fleet, at);
}

/// LIST-all from a warm cache with nothing changed, as JSON then protobuf, each at `at` then a
/// second later (callgrind counts this function); returns the bytes served.
#[inline(never)]
fn warm_reads(api: &MetricsApi, at: ReadTime) -> usize {
    let route = Route::ListPods { namespace: None };
    let later = ReadTime {
        wall: at.wall.saturating_add(Duration::from_secs(1)),
        monotonic: at.monotonic,
    };
    let mut served = 0;
    for representation in [Representation::Json, Representation::Protobuf] {
        for at in [at, later] {
            let body = api.read("v1beta1", &route, None, at, representation);
            served += body.map_or(0, |b| black_box(b).len());
        }
    }
    served
}

/// The namespace every namespaced read lists: a tenth of the fleet's pods.
const NAMESPACE: &str = "namespace-3";
/// One deployment of [`NAMESPACE`]: about a hundredth of its pods.
const ONE_DEPLOYMENT: &str = "labelSelector=app%3Ddeployment-7";
/// Pods read one at a time by [`pod_gets`].
const GETS: usize = 1_000;

/// A namespaced LIST, as JSON, with and without a label selector.
fn namespace_read(fleet: &Fleet, at: ReadTime, query: Option<&str>) -> Body {
    let route = Route::ListPods {
        namespace: Some(NAMESPACE),
    };
    fleet
        .api
        .read("v1beta1", &route, query, at, Representation::Json)
        .unwrap_or_default()
}

/// One LIST of [`NAMESPACE`] and one with a label selector (callgrind counts this function).
#[inline(never)]
fn namespace_reads(fleet: &Fleet, at: ReadTime) -> (usize, usize) {
    let all = namespace_read(fleet, at, None).len();
    let selected = namespace_read(fleet, at, Some(ONE_DEPLOYMENT)).len();
    (all, selected)
}

/// GETs of [`GETS`] pods spread over the fleet (callgrind counts this function): how many
/// were served.
#[inline(never)]
fn pod_gets(fleet: &Fleet, at: ReadTime, pods: &[(String, String)]) -> usize {
    pods.iter()
        .filter(|(namespace, name)| {
            let route = Route::GetPod { namespace, name };
            let body = fleet.api.read("v1beta1", &route, None, at, Representation::Json);
            body.is_ok_and(|b| !black_box(b).is_empty())
        })
        .count()
}

fn bench_namespace(c: &mut Criterion, fleet: &Fleet, at: ReadTime) {
    let step = fleet.by_node.len() / GETS;
    let pods: Vec<(String, String)> = (0..GETS)
        .filter_map(|i| fleet.by_node.get(i * step).and_then(|(_, pods)| pods.get(i % 30)))
        .map(|p| (p.namespace.to_string(), p.name.to_string()))
        .collect();
    let (all, selected) = namespace_reads(fleet, at);
    assert!(
        all > selected && selected > 1000,
        "the namespace and the deployment are served"
    );
    assert_eq!(pod_gets(fleet, at, &pods), GETS, "every pod is served");
    eprintln!(
        "{}: LIST {NAMESPACE} as JSON: {all} bytes; with {ONE_DEPLOYMENT}: {selected} bytes",
        fleet.name
    );

    let mut group = c.benchmark_group(fleet.name);
    group.sample_size(10);
    group.bench_function(format!("LIST {NAMESPACE} as JSON"), |b| {
        b.iter(|| black_box(namespace_read(fleet, at, None)).len());
    });
    group.bench_function(format!("LIST {NAMESPACE} as JSON, {ONE_DEPLOYMENT}"), |b| {
        b.iter(|| black_box(namespace_read(fleet, at, Some(ONE_DEPLOYMENT))).len());
    });
    group.throughput(Throughput::Elements(pods.len() as u64));
    group.bench_function(format!("GET {GETS} pods as JSON"), |b| {
        b.iter(|| black_box(pod_gets(fleet, at, &pods)));
    });
    group.finish();
}

criterion_group!(benches, bench_list);
criterion_main!(benches);
