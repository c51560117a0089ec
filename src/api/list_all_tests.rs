//! The LIST of every pod from [`list_cache`](super::list_cache) against the direct encoder:
//! byte for byte and age for age, in JSON and protobuf, for every served version, across the
//! changes that must (or must not) re-encode a node's chunk.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::encode::{Document, EncodeChunks};
use super::list_cache::{ListStats, Slot};
use super::selectors::ListOptions;
use super::{api_version, json, pods, protobuf, MetricsApi, ReadTime, Route, VERSIONS};
use crate::apiserver::{Body, Representation};
use crate::inventory::fixed::FixedInventory;
use crate::inventory::selector::LabelSelector;
use crate::inventory::{Labels, PodInfo, Snapshot};
use crate::kubelet::{ContainerSample, NodeBatch, Point, Timestamp};
use crate::store::Store;
use crate::telemetry::Telemetry;

const RESOLUTION: Duration = Duration::from_secs(15);
const MAX_AGE: Duration = Duration::from_secs(30);
/// 2021-09-30T11:06:40Z: kubelet sample times.
const START: i64 = 1_633_000_000;

fn pod(namespace: &str, name: &str, node: &str, labels: &[(&str, &str)]) -> PodInfo {
    PodInfo {
        namespace: namespace.into(),
        name: name.into(),
        labels: labels.iter().copied().collect::<Labels>(),
        node_name: node.into(),
    }
}

/// Three nodes with three pods each (one label value needs escaping), and a tiny one on n0; `n2/ns-b/lonely` is in
/// the inventory but never reported by its kubelet.
fn inventory() -> Snapshot {
    let mut pods = wide_inventory(["n0", "n1", "n2"]);
    pods.push(pod("ns-b", "lonely", "n2", &[]));
    // A protobuf item under 128 bytes: its length takes one byte, not the two reserved.
    pods.push(pod("x", "p", "n0", &[]));
    Snapshot::from_parts([], pods)
}

/// Three pods on each of `nodes`, one label value needing escaping.
fn wide_inventory<'a>(nodes: impl IntoIterator<Item = &'a str>) -> Vec<PodInfo> {
    let mut pods = Vec::new();
    for node in nodes {
        for (namespace, name) in [("ns-a", "web"), ("ns-a", "db"), ("ns-b", "job")] {
            pods.push(pod(
                namespace,
                &format!("{name}-{node}"),
                node,
                &[("app", name), ("note", "<a&b>")],
            ));
        }
    }
    pods
}

/// What `node`'s kubelet reports in `cycle`: every inventory pod of it (but `lonely`) with two
/// containers, plus a pod the inventory does not know. Sample times differ per pod within a
/// second or two, so the chunk's runs of timestamps have more than one run.
fn batch(snapshot: &Snapshot, node: &str, cycle: u32) -> NodeBatch<'static> {
    let scraped = Timestamp::from_unix_seconds(START).saturating_add(RESOLUTION * cycle);
    let mut containers = Vec::new();
    let reported = snapshot
        .pods
        .on_node(node)
        .iter()
        .filter(|p| &*p.name != "lonely")
        .map(|p| (p.namespace.to_string(), p.name.to_string()))
        .chain([("ns-z".to_owned(), format!("unknown-{node}"))]);
    for (i, (namespace, name)) in reported.enumerate() {
        let containers_of_pod: &[&str] = if name == "p" { &["c"] } else { &["app", "sidecar"] };
        for (c, container) in containers_of_pod.iter().copied().enumerate() {
            containers.push(ContainerSample {
                namespace: Cow::Owned(namespace.clone()),
                pod: Cow::Owned(name.clone()),
                container: Cow::Borrowed(container),
                point: Point {
                    start_time: Timestamp::from_unix_seconds(START - 3600),
                    timestamp: scraped.saturating_add(Duration::from_millis(700 * i as u64)),
                    cpu_core_nanoseconds: u64::from(cycle) * 1_000_000_000 * (i as u64 + c as u64 + 1),
                    memory_bytes: (i as u64 + 1) << (20 + c),
                },
            });
        }
    }
    containers.sort_by(|a, b| (&a.namespace, &a.pod, &a.container).cmp(&(&b.namespace, &b.pod, &b.container)));
    NodeBatch {
        containers,
        ..NodeBatch::default()
    }
}

struct Fixture {
    inventory: Arc<FixedInventory>,
    store: Arc<Store>,
    /// When every node was last applied.
    applied: Instant,
}

impl Fixture {
    fn new() -> Self {
        Fixture::of(inventory())
    }

    /// Every node of `snapshot` scraped twice.
    fn of(snapshot: Snapshot) -> Self {
        let store = Arc::new(Store::new(RESOLUTION, MAX_AGE));
        let applied = Instant::now();
        let nodes: Vec<Arc<str>> = snapshot
            .pods
            .by_node_shared()
            .map(|(node, _)| Arc::clone(node))
            .collect();
        for cycle in 1..=2 {
            for node in &nodes {
                store.apply(node, &batch(&snapshot, node, cycle), applied);
            }
        }
        Fixture {
            inventory: Arc::new(FixedInventory::new(snapshot)),
            store,
            applied,
        }
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        crate::inventory::Inventory::snapshot(&*self.inventory)
    }

    /// A read `seconds` after the fixture's applies, wall time `wall` seconds after START.
    fn at(&self, wall: i64, seconds: u64) -> ReadTime {
        ReadTime {
            wall: Timestamp::from_unix_seconds(START + wall),
            monotonic: self.applied + Duration::from_secs(seconds),
        }
    }
}

/// One list both ways: (cached bytes, cached ages, what the cache did), (direct bytes, ages).
/// Ages are sorted: the freshness histogram does not see their order, and a chunk gives its
/// ages newest first rather than in item order.
type Both = ((Vec<u8>, Vec<f64>, ListStats), (Vec<u8>, Vec<f64>));

fn list_with<E: EncodeChunks>(f: &Fixture, slot: &Slot, at: ReadTime, new_encoder: impl Fn() -> E) -> Both {
    let snapshot = f.snapshot();
    let (mut out, mut items, mut ages) = (Vec::new(), Vec::new(), Vec::new());
    let mut encoder = new_encoder();
    encoder.begin(&mut out, Document::PodMetricsList);
    let stats = slot.list_pods(&snapshot, &f.store, at, &encoder, &new_encoder, &mut items, &mut ages);
    let (start, items_at) = encoder.finish_around(&mut out, items.iter().map(Bytes::len).sum());
    // What the body sends: header, the pieces, footer.
    let mut sent = out[start..items_at].to_vec();
    items.iter().for_each(|piece| sent.extend_from_slice(piece));
    sent.extend_from_slice(&out[items_at..]);
    let mut ages: Vec<f64> = ages
        .iter()
        .flat_map(|&(age, items)| std::iter::repeat_n(age, items as usize))
        .collect();
    ages.sort_by(f64::total_cmp);
    let cached = (sent, ages, stats);

    let (mut out, mut ages) = (Vec::new(), Vec::new());
    let mut encoder = new_encoder();
    encoder.begin(&mut out, Document::PodMetricsList);
    pods::list(
        &snapshot,
        &f.store,
        None,
        &ListOptions::default(),
        at,
        &mut encoder,
        &mut out,
        &mut ages,
    );
    let start = encoder.finish(&mut out);
    ages.sort_by(f64::total_cmp);
    (cached, (out[start..].to_vec(), ages))
}

/// The four cache slots (JSON and protobuf, each version), each with its own lister.
struct Slots {
    slots: [Slot; 4],
}

impl Slots {
    fn new() -> Self {
        Slots {
            slots: Default::default(),
        }
    }

    /// Lists through every slot and asserts each matches the direct encoder exactly; returns
    /// what the cache did in each slot.
    #[track_caller]
    fn list(&self, f: &Fixture, at: ReadTime) -> [ListStats; 4] {
        let mut stats = [ListStats::default(); 4];
        for (i, version) in VERSIONS.into_iter().enumerate() {
            let api_version = api_version(version);
            let json = list_with(f, &self.slots[i], at, || json::Encoder::new(&api_version, at.wall));
            let pb = list_with(f, &self.slots[2 + i], at, || {
                protobuf::Encoder::new(&api_version, at.wall)
            });
            for (name, ((bytes, ages, s), (want_bytes, want_ages))) in [("json", json), ("protobuf", pb)] {
                assert!(
                    bytes == want_bytes,
                    "{name} {version}: cached list differs from the direct one"
                );
                assert_eq!(ages, want_ages, "{name} {version}: ages");
                assert!(!want_ages.is_empty(), "{name} {version}: some pod is served");
                stats[if name == "json" { i } else { 2 + i }] = s;
            }
        }
        stats
    }
}

fn all(reused: usize, built: usize) -> [ListStats; 4] {
    [ListStats { reused, built }; 4]
}

#[test]
fn a_cached_list_is_the_direct_list_and_a_repeat_reuses_every_node() {
    let f = Fixture::new();
    let slots = Slots::new();
    assert_eq!(slots.list(&f, f.at(40, 1)), all(0, 3));
    assert_eq!(slots.list(&f, f.at(40, 1)), all(3, 0));
    // Every reported pod the inventory knows, ages 40 s after samples taken up to 2.1 s late.
    let ((_, ages, _), _) = list_with(&f, &Slot::default(), f.at(40, 1), || {
        json::Encoder::new("metrics.k8s.io/v1", Timestamp::from_unix_seconds(START + 40))
    });
    assert_eq!(ages, [7.9, 8.6, 8.6, 8.6, 9.3, 9.3, 9.3, 10.0, 10.0, 10.0]);
}

#[test]
fn a_later_read_patches_creation_time_and_ages_into_reused_items() {
    let f = Fixture::new();
    let slots = Slots::new();
    slots.list(&f, f.at(40, 1));
    // Another second, another day: creationTimestamp and every age change, no item is rebuilt.
    assert_eq!(slots.list(&f, f.at(41, 2)), all(3, 0));
    assert_eq!(slots.list(&f, f.at(40 + 86_400, 3)), all(3, 0));
}

#[test]
fn two_lists_on_a_cold_cache_at_once_encode_each_node_about_once_between_them() {
    const NODES: usize = 400;
    let names: Vec<String> = (0..NODES).map(|i| format!("node-{i:03}")).collect();
    let f = Fixture::of(Snapshot::from_parts(
        [],
        wide_inventory(names.iter().map(String::as_str)),
    ));
    let slot = Slot::default();
    let at = f.at(40, 1);
    let start = std::sync::Barrier::new(2);
    let api_version = api_version(VERSIONS[0]);
    let encoder = || json::Encoder::new(&api_version, at.wall);
    let list = || {
        start.wait();
        list_with(&f, &slot, at, encoder)
    };
    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(list);
        let second = s.spawn(list);
        (first.join(), second.join())
    });
    let mut built = 0;
    for result in [first, second] {
        let Ok(((bytes, ages, stats), (want_bytes, want_ages))) = result else {
            panic!("a list panicked");
        };
        assert!(
            bytes == want_bytes,
            "a concurrent cached list differs from the direct one"
        );
        assert_eq!(ages, want_ages);
        assert_eq!(stats.reused + stats.built, NODES);
        built += stats.built;
    }
    // They go opposite ways and publish what they build, so only where they meet (or while
    // both look at the same node) is a node encoded twice. Listing one after the other, the
    // second reuses every node: the same total.
    assert!(
        (NODES..=NODES + 2).contains(&built),
        "{built} chunks built for {NODES} nodes"
    );
}

#[test]
fn a_new_store_state_rebuilds_only_its_node() {
    let f = Fixture::new();
    let slots = Slots::new();
    slots.list(&f, f.at(40, 1));
    f.store.apply("n1", &batch(&f.snapshot(), "n1", 3), f.applied);
    assert_eq!(slots.list(&f, f.at(55, 1)), all(2, 1));
    assert_eq!(slots.list(&f, f.at(56, 1)), all(3, 0));
}

#[test]
fn pods_added_removed_or_relabelled_rebuild_only_their_node() {
    let f = Fixture::new();
    let slots = Slots::new();
    slots.list(&f, f.at(40, 1));

    // Added: n0's kubelet reports it after the next scrape; until then it is not served.
    let mut snapshot = (*f.snapshot()).clone();
    snapshot.pods.insert(pod("ns-a", "new", "n0", &[("app", "new")]));
    f.inventory.set(snapshot.clone());
    assert_eq!(slots.list(&f, f.at(41, 1)), all(2, 1));
    f.store.apply("n0", &batch(&snapshot, "n0", 3), f.applied);
    assert_eq!(slots.list(&f, f.at(42, 1)), all(2, 1));

    // Removed from n1: no longer listed, though its kubelet still reports it.
    snapshot.pods.remove("ns-a", "db-n1");
    f.inventory.set(snapshot.clone());
    assert_eq!(slots.list(&f, f.at(43, 1)), all(2, 1));

    // Relabelled on n2.
    snapshot
        .pods
        .insert(pod("ns-b", "job-n2", "n2", &[("app", "job"), ("tier", "batch")]));
    f.inventory.set(snapshot);
    assert_eq!(slots.list(&f, f.at(44, 1)), all(2, 1));
    assert_eq!(slots.list(&f, f.at(45, 1)), all(3, 0));
}

#[test]
fn a_node_that_leaves_is_dropped_and_one_that_returns_is_rebuilt() {
    let f = Fixture::new();
    let slots = Slots::new();
    slots.list(&f, f.at(40, 1));
    let full = (*f.snapshot()).clone();
    let mut without_n2 = full.clone();
    for p in full.pods.on_node("n2") {
        without_n2.pods.remove(&p.namespace, &p.name);
    }
    f.inventory.set(without_n2);
    assert_eq!(slots.list(&f, f.at(41, 1)), all(2, 0));
    // Its chunk was dropped with it: back with the same pods and state, it is encoded again.
    f.inventory.set(full);
    assert_eq!(slots.list(&f, f.at(42, 1)), all(2, 1));
}

#[test]
fn a_stale_node_is_left_out_per_read_and_served_again_when_fresh() {
    let f = Fixture::new();
    let slots = Slots::new();
    slots.list(&f, f.at(40, 1));
    // 40 s after the applies every node is past MAX_AGE; n1 alone is scraped again at 35 s.
    let later = f.applied + Duration::from_secs(35);
    f.store.apply("n1", &batch(&f.snapshot(), "n1", 3), later);
    assert_eq!(slots.list(&f, f.at(80, 40)), all(0, 1));
    // Read at the earlier time again: the others, left out of the last list, left the cache
    // with it and are encoded again.
    assert_eq!(slots.list(&f, f.at(41, 2)), all(1, 2));
}

#[test]
fn a_creation_time_of_another_width_is_encoded_not_patched() {
    let f = Fixture::new();
    let slots = Slots::new();
    slots.list(&f, f.at(40, 1));
    // The zero time is `null` in JSON and an empty Time in protobuf.
    let zero = ReadTime {
        wall: Timestamp::ZERO,
        monotonic: f.applied,
    };
    assert_eq!(slots.list(&f, zero), all(0, 3));
    assert_eq!(slots.list(&f, f.at(40, 1)), all(0, 3));
}

fn api(f: &Fixture) -> MetricsApi {
    MetricsApi::new(
        Arc::clone(&f.inventory) as Arc<dyn crate::inventory::Inventory>,
        Arc::clone(&f.store),
        Arc::new(Telemetry::new(RESOLUTION)),
        LabelSelector::default(),
    )
}

const LIST_ALL: Route<'static> = Route::ListPods { namespace: None };
/// A field selector that matches every pod: the read takes the direct path.
const EVERY_POD: Option<&str> = Some("fieldSelector=metadata.name%21%3D");

/// LIST-all through the cache, checked against the direct path at the same time.
#[track_caller]
fn list_all(api: &MetricsApi, at: ReadTime, representation: Representation) -> Body {
    let cached = api.read(VERSIONS[0], &LIST_ALL, None, at, representation).unwrap();
    let direct = api.read(VERSIONS[0], &LIST_ALL, EVERY_POD, at, representation).unwrap();
    assert_eq!(cached.to_bytes(), direct.to_bytes(), "{representation:?}");
    cached
}

/// Where each node's piece of a LIST-all body lies (between the header and the footer).
fn node_pieces(body: &Body) -> Vec<*const u8> {
    let pieces: Vec<&Bytes> = body.pieces().collect();
    pieces[1..pieces.len() - 1].iter().map(|p| p.as_ptr()).collect()
}

#[test]
fn lists_at_different_times_while_an_earlier_response_is_held_each_get_their_own_bytes() {
    for representation in [Representation::Json, Representation::Protobuf] {
        let f = Fixture::new();
        let api = api(&f);
        let (t1, t2) = (f.at(40, 1), f.at(41, 1));
        let first = list_all(&api, t1, representation);
        let sent_first = first.to_bytes();
        // The chunks are held by `first`: the later list patches copies.
        let second = list_all(&api, t2, representation);
        assert_ne!(first.to_bytes(), second.to_bytes(), "{representation:?}");
        assert_eq!(
            first.to_bytes(),
            sent_first,
            "{representation:?}: the held response is untouched"
        );
        assert!(node_pieces(&first)
            .iter()
            .zip(node_pieces(&second))
            .all(|(a, b)| *a != b));
        // Back to the first time while both are held: a third set of bytes, still correct.
        let third = list_all(&api, t1, representation);
        assert_eq!(third.to_bytes(), sent_first, "{representation:?}");
        assert_eq!(second.to_bytes(), list_all(&api, t2, representation).to_bytes());
    }
}

#[test]
fn lists_at_one_time_share_the_chunks_and_a_later_list_patches_them_in_place() {
    for representation in [Representation::Json, Representation::Protobuf] {
        let f = Fixture::new();
        let api = api(&f);
        let first = list_all(&api, f.at(40, 1), representation);
        let again = list_all(&api, f.at(40, 1), representation);
        let shared = node_pieces(&first);
        assert_eq!(shared.len(), 3, "a piece per node");
        assert_eq!(
            node_pieces(&again),
            shared,
            "{representation:?}: the same bytes, not copies"
        );
        drop((first, again));
        // No response holds them any more: the next second is written over them.
        let later = list_all(&api, f.at(41, 1), representation);
        assert_eq!(node_pieces(&later), shared, "{representation:?}: patched in place");
    }
}

#[test]
fn read_serves_list_all_from_the_cache_with_the_direct_bytes() {
    let f = Fixture::new();
    let api = api(&f);
    let route = LIST_ALL;
    let everything = EVERY_POD;
    for at in [f.at(40, 1), f.at(41, 2)] {
        for version in VERSIONS {
            for representation in [Representation::Json, Representation::Protobuf] {
                let cached = api.read(version, &route, None, at, representation).unwrap();
                let direct = api.read(version, &route, everything, at, representation).unwrap();
                assert_eq!(cached.pieces().count(), 2 + 3, "header, a piece per node, footer");
                assert_eq!(cached.to_bytes(), direct.to_bytes(), "{version} {representation:?}");
                assert!(cached.len() > 100);
            }
        }
    }
}

#[test]
fn an_idle_list_all_cache_drops_its_chunks_and_the_next_list_rebuilds_every_node() {
    let f = Fixture::new();
    let idle = Duration::from_secs(30);
    let cache = Arc::new(super::list_all::ListAllCache::new(idle));
    let at = f.at(40, 1);
    let api_version = api_version(VERSIONS[1]);
    let list = || {
        let slot = cache.slot(0, 1).expect("the JSON v1beta1 slot");
        let ((bytes, _, stats), (direct, _)) = list_with(&f, slot, at, || json::Encoder::new(&api_version, at.wall));
        assert!(bytes == direct, "cached list differs from the direct one");
        stats
    };
    assert_eq!(list(), ListStats { reused: 0, built: 3 });
    cache.used(at.monotonic);
    assert!(cache.release_if_idle(at.monotonic + idle / 2).is_err());
    assert_eq!(list(), ListStats { reused: 3, built: 0 }, "kept while lists come");

    assert_eq!(cache.release_if_idle(at.monotonic + idle), Ok(()));
    assert_eq!(list(), ListStats { reused: 0, built: 3 }, "dropped once idle");
}

#[test]
fn a_list_that_may_walk_more_than_a_thousand_objects_is_heavy_and_nothing_else_is() {
    use crate::apiserver::Handler;
    // 400 nodes with 3 pods each: 800 in ns-a, 400 in ns-b.
    let names: Vec<String> = (0..400).map(|n| format!("n{n:03}")).collect();
    let f = Fixture::of(Snapshot::from_parts(
        [],
        wide_inventory(names.iter().map(String::as_str)),
    ));
    let api = api(&f);
    let heavy = |path: &str| {
        let uri = format!("/apis/metrics.k8s.io/v1beta1/{path}");
        let (head, ()) = hyper::Request::get(uri).body(()).unwrap().into_parts();
        api.is_heavy(&head)
    };
    assert!(heavy("pods"), "1,200 pods");
    assert!(
        heavy("pods?labelSelector=app%3Dweb"),
        "a selector still walks every pod"
    );
    assert!(!heavy("namespaces/ns-a/pods"), "800 pods");
    assert!(!heavy("namespaces/ns-c/pods"), "no such namespace");
    assert!(!heavy("namespaces/ns-a/pods/web-n001"));
    assert!(!heavy("nodes"), "the inventory has no Node objects here");
    assert!(!heavy("nodes/n001"));
    assert!(!heavy("unknown"));
}
