//! The fleet the cluster-mode tests share: kubelet bodies with exact rates and the JSON they
//! must produce, the objects the API double serves, and waits on the inventory.

use std::sync::Arc;
use std::time::Duration;

use metrics_server_rs::inventory::cluster::ClusterInventory;
use metrics_server_rs::inventory::{Inventory, Snapshot};
use metrics_server_rs::sandbox::pki::TestCa;
use serde_json::Value;

use crate::support::kube_api::{
    kube_client, node_object, pod_object, write_kubeconfig, KubeApi, KubeAuth, Recorded, Resource, Verb,
};
use crate::support::{FakeKubelet, Kubelets, RunningKubelet, ServerOptions, TestCluster};

pub(crate) const API_TOKEN: &str = "api-token";

// ---------------------------------------------------------------------------------------------
// Kubelet bodies and the JSON they must produce.

/// Scrape k of any fake kubelet happens at T0 + 10 s * k, T0 = 2021-10-03T09:36:40Z.
pub(crate) const T0_MS: u64 = 1_633_253_800_000;

/// What one kubelet reports: its node's steady usage and its containers'
/// `(namespace, pod, container, millicores, memory bytes)`. Millicores are multiples of 125 so
/// every counter is exact in binary and every rate exact.
pub(crate) struct Usage<'a> {
    pub(crate) node_millicores: u64,
    pub(crate) node_memory: u64,
    pub(crate) containers: &'a [(&'a str, &'a str, &'a str, u64, u64)],
}

/// Twelve successive bodies at a steady rate (the last repeats if scraped more often).
pub(crate) fn kubelet(node: &str, usage: &Usage<'_>) -> FakeKubelet {
    kubelet_from(node, usage, 0)
}

/// Like [`kubelet`], for a kubelet whose first answer is scrape `first` of the fleet's clock.
pub(crate) fn kubelet_from(node: &str, usage: &Usage<'_>, first: u64) -> FakeKubelet {
    let bodies: Vec<String> = (first..first + 12).map(|k| body(k, usage)).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    FakeKubelet::ok(node, &refs)
}

pub(crate) fn body(k: u64, usage: &Usage<'_>) -> String {
    let t = T0_MS + 10_000 * k;
    // Cumulative core-seconds: 100 at T0, then millicores/100 more every 10 s.
    let counter = |millicores: u64| (100_000 + 10 * k * millicores) as f64 / 1000.0;
    let mut text = format!(
        "node_cpu_usage_seconds_total {} {t}\nnode_memory_working_set_bytes {} {t}\n",
        counter(usage.node_millicores),
        usage.node_memory
    );
    for (namespace, pod, container, millicores, memory) in usage.containers {
        let labels = format!(r#"container="{container}",namespace="{namespace}",pod="{pod}""#);
        text += &format!(
            "container_cpu_usage_seconds_total{{{labels}}} {} {t}\ncontainer_memory_working_set_bytes{{{labels}}} {memory} {t}\n",
            counter(*millicores)
        );
    }
    text
}

/// The sample time of scrape `k` (0-based), as the API prints it.
pub(crate) fn at_scrape(k: u64) -> &'static str {
    [
        "2021-10-03T09:36:40Z",
        "2021-10-03T09:36:50Z",
        "2021-10-03T09:37:00Z",
        "2021-10-03T09:37:10Z",
    ][k as usize]
}

pub(crate) fn node_json(name: &str, labels: &str, timestamp: &str, cpu: &str, memory: &str) -> String {
    format!(
        r#"{{"kind":"NodeMetrics","apiVersion":"metrics.k8s.io/v1beta1","metadata":{{"name":"{name}","creationTimestamp":"<now>","labels":{labels}}},"timestamp":"{timestamp}","window":"10s","usage":{{"cpu":"{cpu}","memory":"{memory}"}}}}"#
    )
}

/// `containers`: `(name, cpu, memory)` in the order the API lists them.
pub(crate) fn pod_json(
    namespace: &str,
    name: &str,
    labels: &str,
    timestamp: &str,
    containers: &[(&str, &str, &str)],
) -> String {
    let containers: Vec<String> = containers
        .iter()
        .map(|(c, cpu, memory)| format!(r#"{{"name":"{c}","usage":{{"cpu":"{cpu}","memory":"{memory}"}}}}"#))
        .collect();
    format!(
        r#"{{"kind":"PodMetrics","apiVersion":"metrics.k8s.io/v1beta1","metadata":{{"name":"{name}","namespace":"{namespace}","creationTimestamp":"<now>","labels":{labels}}},"timestamp":"{timestamp}","window":"10s","containers":[{}]}}"#,
        containers.join(",")
    )
}

/// A whole list body as the server sends it (Go's encoder ends every JSON body with `\n`).
pub(crate) fn list_json(kind: &str, items: &[String]) -> String {
    format!(
        "{{\"kind\":\"{kind}\",\"apiVersion\":\"metrics.k8s.io/v1beta1\",\"metadata\":{{}},\"items\":[{}]}}\n",
        items.join(",")
    )
}

pub(crate) fn not_found(message: &str, details: &str) -> String {
    format!(
        "{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"Failure\",\"message\":{},\"reason\":\"NotFound\",\"details\":{details},\"code\":404}}\n",
        Value::from(message)
    )
}

// ---------------------------------------------------------------------------------------------
// The fleet most tests use.

pub(crate) const COREDNS: &str = "coredns-5d78c9869d-7xkqp";
pub(crate) const WEB: &str = "web-frontend-7c5d8f6b9-x2k9p";
pub(crate) const API: &str = "orders-api-6f9c8d7b5-q2w3e";
pub(crate) const BATCH: &str = "nightly-report-28817640-5gq7m";

/// node-a runs coredns and the web frontend; node-b runs the orders API and a finished batch
/// pod that its kubelet still reports (upstream's pod informer lists only Running pods).
pub(crate) fn fleet() -> Vec<FakeKubelet> {
    vec![
        kubelet(
            "node-a",
            &Usage {
                node_millicores: 1000,
                node_memory: 2 << 30,
                containers: &[
                    ("kube-system", COREDNS, "coredns", 125, 10 << 20),
                    ("shop", WEB, "istio-proxy", 125, 50 << 20),
                    ("shop", WEB, "nginx", 500, 100 << 20),
                ],
            },
        ),
        kubelet(
            "node-b",
            &Usage {
                node_millicores: 2500,
                node_memory: 3 << 30,
                containers: &[
                    ("shop", API, "api", 750, 200 << 20),
                    ("batch", BATCH, "report", 1000, 20 << 20),
                ],
            },
        ),
    ]
}

pub(crate) fn node_a_json(timestamp: &str) -> String {
    node_json("node-a", r#"{"pool":"blue"}"#, timestamp, "1", "2Gi")
}
pub(crate) fn node_b_json(timestamp: &str) -> String {
    node_json("node-b", r#"{"pool":"green"}"#, timestamp, "2500m", "3Gi")
}
pub(crate) fn coredns_json(timestamp: &str) -> String {
    pod_json(
        "kube-system",
        COREDNS,
        r#"{"k8s-app":"kube-dns","pod-template-hash":"5d78c9869d"}"#,
        timestamp,
        &[("coredns", "125m", "10Mi")],
    )
}
pub(crate) fn web_json(timestamp: &str) -> String {
    pod_json(
        "shop",
        WEB,
        r#"{"app.kubernetes.io/name":"web-frontend","app.kubernetes.io/part-of":"shop","pod-template-hash":"7c5d8f6b9"}"#,
        timestamp,
        &[("istio-proxy", "125m", "50Mi"), ("nginx", "500m", "100Mi")],
    )
}
pub(crate) fn api_json(timestamp: &str) -> String {
    pod_json(
        "shop",
        API,
        r#"{"app.kubernetes.io/name":"orders-api","app.kubernetes.io/part-of":"shop","pod-template-hash":"6f9c8d7b5","tier":"backend"}"#,
        timestamp,
        &[("api", "750m", "200Mi")],
    )
}

pub(crate) fn web_pod(node: &str) -> Value {
    pod_object(
        "shop",
        WEB,
        node,
        &[
            ("app.kubernetes.io/name", "web-frontend"),
            ("app.kubernetes.io/part-of", "shop"),
            ("pod-template-hash", "7c5d8f6b9"),
        ],
        "Running",
    )
}

pub(crate) fn api_pod(node: &str) -> Value {
    pod_object(
        "shop",
        API,
        node,
        &[
            ("app.kubernetes.io/name", "orders-api"),
            ("app.kubernetes.io/part-of", "shop"),
            ("pod-template-hash", "6f9c8d7b5"),
            ("tier", "backend"),
        ],
        "Running",
    )
}

/// The node object for a fake kubelet: its address as InternalIP, its port as status port.
pub(crate) fn node_for(kubelet: &RunningKubelet, pool: &str) -> Value {
    node_object(
        &kubelet.node,
        &[("pool", pool)],
        &[
            ("InternalIP", &kubelet.address.ip().to_string()),
            ("Hostname", &kubelet.node),
        ],
        kubelet.address.port(),
    )
}

/// Puts the fleet's nodes and pods into the double: two Running pods on node-a, one Running
/// and one Succeeded on node-b, and one Pending pod not yet scheduled.
pub(crate) fn populate(api: &KubeApi, kubelets: &Kubelets) {
    api.apply_node(node_for(kubelets.get("node-a"), "blue"));
    api.apply_node(node_for(kubelets.get("node-b"), "green"));
    api.apply_pod(pod_object(
        "kube-system",
        COREDNS,
        "node-a",
        &[("k8s-app", "kube-dns"), ("pod-template-hash", "5d78c9869d")],
        "Running",
    ));
    api.apply_pod(web_pod("node-a"));
    api.apply_pod(api_pod("node-b"));
    api.apply_pod(pod_object(
        "batch",
        BATCH,
        "node-b",
        &[("job-name", "nightly-report-28817640")],
        "Succeeded",
    ));
    api.apply_pod(pod_object("shop", "web-frontend-7c5d8f6b9-pend1", "", &[], "Pending"));
}

/// A kubeconfig for the double (bearer token, inline CA) and an inventory following it.
pub(crate) async fn follow(api: &KubeApi, dir: &tempfile::TempDir) -> (kube::Config, Arc<ClusterInventory>) {
    let path = write_kubeconfig(dir.path(), &api.url(), api.ca_pem(), &KubeAuth::Token(API_TOKEN.into()));
    let (config, client) = kube_client(&path).await;
    let inventory = ClusterInventory::start(client, api.url());
    (config, inventory)
}

/// Waits on the inventory's change signal until `done` holds.
pub(crate) async fn wait_until(
    inventory: &ClusterInventory,
    what: &str,
    done: impl Fn(&ClusterInventory, &Snapshot) -> bool,
) {
    let mut changes = inventory.changes();
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if done(inventory, &inventory.snapshot()) {
                return;
            }
            changes.changed().await.unwrap();
        }
    })
    .await;
    if waited.is_err() {
        panic!(
            "timed out waiting until {what}; inventory: {:?}, synced: {}, API error: {:?}",
            inventory.snapshot(),
            inventory.has_synced(),
            inventory.api_error()
        );
    }
}

pub(crate) async fn synced(inventory: &ClusterInventory) {
    if tokio::time::timeout(Duration::from_secs(20), inventory.synced())
        .await
        .is_err()
    {
        panic!(
            "the inventory never synced; unsynced: {:?}, API error: {:?}",
            inventory.unsynced(),
            inventory.api_error()
        );
    }
}

pub(crate) fn pod_names(snapshot: &Snapshot) -> Vec<String> {
    snapshot
        .all_pods()
        .map(|p| format!("{}/{} on {}", p.namespace, p.name, p.node_name))
        .collect()
}

pub(crate) fn node_names(snapshot: &Snapshot) -> Vec<String> {
    snapshot.nodes.keys().cloned().collect()
}

/// The standard setup: fleet, double, synced inventory, server; scraped twice.
pub(crate) struct Running {
    pub(crate) api: KubeApi,
    pub(crate) cluster: TestCluster<ClusterInventory>,
    /// The CA the API double's certificate comes from (to bring it back after a test stops it).
    pub(crate) ca: TestCa,
    pub(crate) _dir: tempfile::TempDir,
}

pub(crate) async fn running_fleet() -> Running {
    let ca = TestCa::new("cluster CA").unwrap();
    let kubelets = Kubelets::start(&ca, fleet()).await;
    let api = KubeApi::start(&ca).await;
    populate(&api, &kubelets);
    let dir = tempfile::tempdir().unwrap();
    let (_, inventory) = follow(&api, &dir).await;
    synced(&inventory).await;
    let cluster = TestCluster::serve(kubelets, inventory, ServerOptions::trusting(&ca)).await;
    cluster.scrape().await;
    cluster.scrape().await;
    Running {
        api,
        cluster,
        ca,
        _dir: dir,
    }
}

pub(crate) fn is_watch(resource: Resource) -> impl Fn(&Recorded) -> bool {
    move |r| r.is(resource, Verb::Watch)
}

pub(crate) fn is_list(resource: Resource) -> impl Fn(&Recorded) -> bool {
    move |r| r.is(resource, Verb::List)
}
