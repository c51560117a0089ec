//! The namespaced LIST, which finds its pods node by node, against a reference that asks the
//! store for each pod on its own (how it was served before): byte for byte and age for age, in
//! JSON and protobuf, with and without selectors, over a fleet with the cases that make a pod
//! go unserved: missing from its kubelet's report, no usage yet, a node never scraped, a stale
//! node, and a pod the inventory places on another node than the kubelet reporting it.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use crate::api::encode::{Document, Encode, PodItem};
use crate::api::selectors::ListOptions;
use crate::api::{age_seconds, json, pods, protobuf, ReadTime};
use crate::inventory::{Labels, PodInfo, Snapshot};
use crate::kubelet::{ContainerSample, NodeBatch, Point, Timestamp};
use crate::store::Store;

const RESOLUTION: Duration = Duration::from_secs(15);
const MAX_AGE: Duration = Duration::from_secs(30);
/// 2021-09-30T11:06:40Z: kubelet sample times.
const START: i64 = 1_633_000_000;
const NODES: usize = 12;
const NAMESPACES: [&str; 3] = ["apps", "kube-system", "monitoring"];
/// Never scraped: its pods are never served.
const UNSCRAPED: &str = "node-07";
/// Scraped once, long ago: stale at the read time.
const STALE: &str = "node-03";

/// 12 nodes, 3 namespaces, 10 pods per node, names drawn so that a namespace's pods sit on
/// most nodes and the order by name interleaves the nodes.
fn inventory() -> Snapshot {
    let mut state = 0x5eed_u64;
    let mut pods = Vec::new();
    for node in 0..NODES {
        for i in 0..10 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let r = state >> 33;
            let namespace = NAMESPACES[(r % 3) as usize];
            let app = ["web", "db", "cache"][((r >> 4) % 3) as usize];
            pods.push(PodInfo {
                namespace: namespace.into(),
                name: format!("{app}-{:05x}-{i}", (r >> 8) & 0xfffff).into(),
                labels: [("app", app), ("tier", if r % 2 == 0 { "front" } else { "back" })]
                    .into_iter()
                    .collect::<Labels>(),
                node_name: node_name(node).into(),
            });
        }
    }
    Snapshot::from_parts([], pods)
}

fn node_name(node: usize) -> String {
    format!("node-{node:02}")
}

/// What `node`'s kubelet reports in `cycle`, from the inventory's pods on it:
/// * every 4th pod is missing (never served);
/// * every 5th pod appears only from cycle 2 (no prev point yet: no usage);
/// * from node-05 on, it also reports the first pod of the node before it, as a kubelet does
///   for a pod that moved away (the inventory places it on the other node: never counted
///   here).
fn batch(snapshot: &Snapshot, node: usize, cycle: u32) -> NodeBatch<'static> {
    let scraped = Timestamp::from_unix_seconds(START).saturating_add(RESOLUTION * cycle);
    let on_node = snapshot.pods.on_node(&node_name(node));
    let moved = (node >= 5)
        .then(|| snapshot.pods.on_node(&node_name(node - 1)).first())
        .flatten();
    let reported = on_node
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 4 != 3 && (i % 5 != 4 || cycle >= 2))
        .map(|(_, pod)| pod)
        .chain(moved);
    let mut containers = Vec::new();
    for (i, pod) in reported.enumerate() {
        for (c, container) in ["app", "sidecar"].into_iter().enumerate() {
            containers.push(ContainerSample {
                namespace: Cow::Owned(pod.namespace.to_string()),
                pod: Cow::Owned(pod.name.to_string()),
                container: Cow::Borrowed(container),
                point: Point {
                    start_time: Timestamp::from_unix_seconds(START - 3600),
                    timestamp: scraped.saturating_add(Duration::from_millis(300 * i as u64 + 7 * node as u64)),
                    cpu_core_nanoseconds: u64::from(cycle) * 1_000_000_000 * (i as u64 + c as u64 + 1),
                    memory_bytes: ((i + node) as u64 + 1) << (20 + c),
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
    snapshot: Snapshot,
    store: Store,
    at: ReadTime,
}

impl Fixture {
    /// Two cycles applied to every node but the unscraped one; the stale node's last apply
    /// is more than MAX_AGE before the read.
    fn new() -> Self {
        let snapshot = inventory();
        let store = Store::new(RESOLUTION, MAX_AGE);
        let base = Instant::now();
        for cycle in 1..=2u32 {
            for node in 0..NODES {
                let name = node_name(node);
                if name == UNSCRAPED || (name == STALE && cycle == 2) {
                    continue;
                }
                let applied = base + RESOLUTION * cycle * 3;
                store.apply(&name, &batch(&snapshot, node, cycle), applied);
            }
        }
        let at = ReadTime {
            wall: Timestamp::from_unix_seconds(START + 40),
            monotonic: base + RESOLUTION * 6 + Duration::from_secs(1),
        };
        Fixture { snapshot, store, at }
    }

    /// The list as [`pods::list`] writes it: (body, ages).
    fn list<E: Encode>(&self, mut encoder: E, namespace: &str, options: &ListOptions) -> (Vec<u8>, Vec<f64>) {
        let (mut out, mut ages) = (Vec::new(), Vec::new());
        encoder.begin(&mut out, Document::PodMetricsList);
        pods::list(
            &self.snapshot,
            &self.store,
            Some(namespace),
            options,
            self.at,
            &mut encoder,
            &mut out,
            &mut ages,
        );
        let start = encoder.finish(&mut out);
        (out[start..].to_vec(), ages)
    }

    /// The reference: the namespace's pods by name, each looked up in the store on its own.
    fn reference<E: Encode>(&self, mut encoder: E, namespace: &str, options: &ListOptions) -> (Vec<u8>, Vec<f64>) {
        let (mut out, mut ages) = (Vec::new(), Vec::new());
        encoder.begin(&mut out, Document::PodMetricsList);
        let pods = self.snapshot.pods.namespace(namespace);
        for pod in pods.into_iter().flat_map(|by_name| by_name.values()) {
            let selected =
                options.fields.matches(&pod.name, Some(&pod.namespace)) && options.labels.matches(&pod.labels);
            if !selected {
                continue;
            }
            let at = self.at.monotonic;
            if let Some(usage) = self.store.pod_usage(&pod.node_name, namespace, &pod.name, at) {
                let item = PodItem {
                    namespace: &pod.namespace,
                    name: &pod.name,
                    labels: &pod.labels,
                    usage: &usage,
                };
                encoder.pod(&mut out, &item);
                ages.push(age_seconds(self.at, usage.timestamp));
            }
        }
        let start = encoder.finish(&mut out);
        (out[start..].to_vec(), ages)
    }

    /// Asserts both ways agree in JSON and protobuf; returns how many pods were served.
    fn agree(&self, namespace: &str, query: Option<&str>) -> usize {
        let options = ListOptions::from_query(query).expect("a valid query");
        let wall = self.at.wall;
        let json = || json::Encoder::new("metrics.k8s.io/v1beta1", wall);
        let (body, ages) = self.list(json(), namespace, &options);
        let (want_body, want_ages) = self.reference(json(), namespace, &options);
        assert_eq!(
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(&want_body),
            "JSON, {namespace} {query:?}"
        );
        assert_eq!(ages, want_ages, "ages, {namespace} {query:?}");
        let pb = || protobuf::Encoder::new("metrics.k8s.io/v1beta1", wall);
        let (body, _) = self.list(pb(), namespace, &options);
        let (want_body, _) = self.reference(pb(), namespace, &options);
        assert!(body == want_body, "protobuf, {namespace} {query:?}");
        ages.len()
    }

    /// How many pods of `namespace` the inventory holds, and on how many nodes.
    fn spread(&self, namespace: &str) -> (usize, usize) {
        let pods: Vec<_> = self
            .snapshot
            .pods
            .namespace(namespace)
            .into_iter()
            .flat_map(|by_name| by_name.values())
            .collect();
        let mut nodes: Vec<&str> = pods.iter().map(|p| &*p.node_name).collect();
        nodes.sort_unstable();
        nodes.dedup();
        (pods.len(), nodes.len())
    }
}

#[test]
fn a_namespace_on_many_nodes_lists_as_the_per_pod_lookup_did() {
    let f = Fixture::new();
    for namespace in NAMESPACES {
        let (held, nodes) = f.spread(namespace);
        assert!(nodes >= 10, "{namespace}: on {nodes} nodes");
        let served = f.agree(namespace, None);
        // Missing, not yet measured, unscraped and stale pods are left out; most are served.
        assert!(
            served >= held / 4 && served < held,
            "{namespace}: {served} of {held} served"
        );
    }
}

#[test]
fn selected_namespaced_lists_list_as_the_per_pod_lookup_did() {
    let f = Fixture::new();
    let queries = [
        "labelSelector=app%3Dweb",
        "labelSelector=app+in+%28db%2Ccache%29%2Ctier%21%3Dfront",
        "fieldSelector=metadata.namespace%3Dkube-system",
        "labelSelector=app%3Dnone",
    ];
    for namespace in NAMESPACES {
        for query in queries {
            f.agree(namespace, Some(query));
        }
        // One pod by name, wherever it sits in the namespace's order.
        let names: Vec<String> = f
            .snapshot
            .pods
            .namespace(namespace)
            .into_iter()
            .flat_map(|by_name| by_name.values())
            .map(|p| p.name.to_string())
            .collect();
        for name in names.iter().step_by(7) {
            f.agree(namespace, Some(&format!("fieldSelector=metadata.name%3D{name}")));
            f.agree(namespace, Some(&format!("fieldSelector=metadata.name%21%3D{name}")));
        }
    }
    assert_eq!(f.agree("kube-system", Some("labelSelector=app%3Dnone")), 0);
}

#[test]
fn an_unknown_namespace_lists_no_pod() {
    let f = Fixture::new();
    assert_eq!(f.agree("no-such-namespace", None), 0);
}

#[test]
fn pods_that_moved_missing_stale_or_unscraped_are_not_served() {
    let f = Fixture::new();
    let options = ListOptions::default();
    let mut served = Vec::new();
    for namespace in NAMESPACES {
        let (body, _) = f.list(
            json::Encoder::new("metrics.k8s.io/v1beta1", f.at.wall),
            namespace,
            &options,
        );
        let list: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        for item in list["items"].as_array().into_iter().flatten() {
            served.push(item["metadata"]["name"].as_str().unwrap_or_default().to_owned());
        }
    }
    let mut once = served.clone();
    once.sort_unstable();
    once.dedup();
    assert_eq!(
        once.len(),
        served.len(),
        "a pod reported by two kubelets is served once"
    );
    for (node, pods) in f.snapshot.pods.by_node() {
        for (i, pod) in pods.iter().enumerate() {
            let want = node != UNSCRAPED && node != STALE && i % 4 != 3 && i % 5 != 4;
            assert_eq!(served.contains(&pod.name.to_string()), want, "{node}: {}", pod.name);
        }
    }
}
