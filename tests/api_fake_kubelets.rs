//! The real server against fake kubelets over TLS: exact JSON, Status errors, selectors,
//! readiness and failure isolation, with every value computed from the bodies below.

mod support;

use hyper::{Method, StatusCode};
use support::{mask_creation_timestamps, pod, FakeKubelet, TestCluster, FIRST, SECOND};

/// node1's first answer, at T0 = 1633253800000 ms (2021-10-03T09:36:40Z). Values are exact in
/// binary so the expected rates are exact: node 357.5 → 367.5 core-s over 10 s = 1 core.
const NODE1_FIRST: &str = r#"# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 357.5 1633253800000
node_memory_working_set_bytes 1.616273408e+09 1633253800000
container_cpu_usage_seconds_total{container="coredns",namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"} 4.75 1633253802000
container_memory_working_set_bytes{container="coredns",namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"} 1.253376e+07 1633253802000
container_start_time_seconds{container="coredns",namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"} 1.633252712e+9 1633253802000
container_cpu_usage_seconds_total{container="istio-proxy",namespace="default",pod="web-1"} 1 1633253802000
container_memory_working_set_bytes{container="istio-proxy",namespace="default",pod="web-1"} 20971520 1633253802000
container_cpu_usage_seconds_total{container="app",namespace="default",pod="web-1"} 10 1633253802000
container_memory_working_set_bytes{container="app",namespace="default",pod="web-1"} 104857600 1633253802000
container_cpu_usage_seconds_total{container="c",namespace="default",pod="moved"} 1 1633253802000
container_memory_working_set_bytes{container="c",namespace="default",pod="moved"} 1048576 1633253802000
container_cpu_usage_seconds_total{container="c",namespace="default",pod="ghost"} 1 1633253802000
container_memory_working_set_bytes{container="c",namespace="default",pod="ghost"} 1048576 1633253802000
"#;

/// 10 s later: node +10 core-s (1 core); coredns +5 (500m); app +2.5 (250m); istio-proxy +0.25 (25m).
const NODE1_SECOND: &str = r#"node_cpu_usage_seconds_total 367.5 1633253810000
node_memory_working_set_bytes 1.616273408e+09 1633253810000
container_cpu_usage_seconds_total{container="coredns",namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"} 9.75 1633253812000
container_memory_working_set_bytes{container="coredns",namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"} 1.253376e+07 1633253812000
container_start_time_seconds{container="coredns",namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"} 1.633252712e+9 1633253812000
container_cpu_usage_seconds_total{container="istio-proxy",namespace="default",pod="web-1"} 1.25 1633253812000
container_memory_working_set_bytes{container="istio-proxy",namespace="default",pod="web-1"} 20971520 1633253812000
container_cpu_usage_seconds_total{container="app",namespace="default",pod="web-1"} 12.5 1633253812000
container_memory_working_set_bytes{container="app",namespace="default",pod="web-1"} 104857600 1633253812000
container_cpu_usage_seconds_total{container="c",namespace="default",pod="moved"} 2 1633253812000
container_memory_working_set_bytes{container="c",namespace="default",pod="moved"} 1048576 1633253812000
container_cpu_usage_seconds_total{container="c",namespace="default",pod="ghost"} 2 1633253812000
container_memory_working_set_bytes{container="c",namespace="default",pod="ghost"} 1048576 1633253812000
"#;

const NODE1_JSON: &str = r#"{"kind":"NodeMetrics","apiVersion":"metrics.k8s.io/v1beta1","metadata":{"name":"node1","creationTimestamp":"<now>","labels":{"kubernetes.io/hostname":"node1"}},"timestamp":"2021-10-03T09:36:50Z","window":"10s","usage":{"cpu":"1","memory":"1578392Ki"}}"#;
const COREDNS_JSON: &str = r#"{"kind":"PodMetrics","apiVersion":"metrics.k8s.io/v1beta1","metadata":{"name":"coredns-558bd4d5db-4dpjz","namespace":"kube-system","creationTimestamp":"<now>","labels":{"k8s-app":"kube-dns"}},"timestamp":"2021-10-03T09:36:52Z","window":"10s","containers":[{"name":"coredns","usage":{"cpu":"500m","memory":"12240Ki"}}]}"#;
const WEB_JSON: &str = r#"{"kind":"PodMetrics","apiVersion":"metrics.k8s.io/v1beta1","metadata":{"name":"web-1","namespace":"default","creationTimestamp":"<now>","labels":{"app":"web"}},"timestamp":"2021-10-03T09:36:52Z","window":"10s","containers":[{"name":"app","usage":{"cpu":"250m","memory":"100Mi"}},{"name":"istio-proxy","usage":{"cpu":"25m","memory":"20Mi"}}]}"#;

/// node1 healthy; node2 answers 500; node3 answers garbage. Inventory: coredns and web-1 on
/// node1, `moved` on node2 (though node1's kubelet still reports it), `orphan` on node3;
/// `ghost` is reported by node1 but unknown to the inventory.
async fn cluster() -> TestCluster {
    TestCluster::start(
        vec![
            FakeKubelet::ok("node1", &[NODE1_FIRST, NODE1_SECOND]).with_labels(&[("kubernetes.io/hostname", "node1")]),
            FakeKubelet::failing("node2", StatusCode::INTERNAL_SERVER_ERROR, "boom"),
            FakeKubelet::failing("node3", StatusCode::OK, "this is not prometheus text\n"),
        ],
        vec![
            pod(
                "kube-system",
                "coredns-558bd4d5db-4dpjz",
                "node1",
                &[("k8s-app", "kube-dns")],
            ),
            pod("default", "web-1", "node1", &[("app", "web")]),
            pod("default", "moved", "node2", &[("app", "web")]),
            pod("default", "orphan", "node3", &[]),
        ],
    )
    .await
}

async fn scraped_twice() -> TestCluster {
    let c = cluster().await;
    c.scrape().await;
    c.scrape().await;
    c
}

#[tokio::test]
async fn node_metrics_are_served_as_upstream_json() {
    let c = scraped_twice().await;
    let reply = c.get("/apis/metrics.k8s.io/v1beta1/nodes/node1").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    assert_eq!(mask_creation_timestamps(&reply.body), format!("{NODE1_JSON}\n"));

    let list = c.get("/apis/metrics.k8s.io/v1beta1/nodes").await;
    assert_eq!(
        mask_creation_timestamps(&list.body),
        format!(
            r#"{{"kind":"NodeMetricsList","apiVersion":"metrics.k8s.io/v1beta1","metadata":{{}},"items":[{NODE1_JSON}]}}"#
        ) + "\n"
    );
}

#[tokio::test]
async fn pod_metrics_are_served_as_upstream_json_in_namespace_order() {
    let c = scraped_twice().await;
    let reply = c
        .get("/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods/coredns-558bd4d5db-4dpjz")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(mask_creation_timestamps(&reply.body), format!("{COREDNS_JSON}\n"));

    let all = c.get("/apis/metrics.k8s.io/v1beta1/pods").await;
    assert_eq!(
        mask_creation_timestamps(&all.body),
        format!(
            r#"{{"kind":"PodMetricsList","apiVersion":"metrics.k8s.io/v1beta1","metadata":{{}},"items":[{WEB_JSON},{COREDNS_JSON}]}}"#
        ) + "\n"
    );
    let one_namespace = c.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods").await;
    assert_eq!(
        mask_creation_timestamps(&one_namespace.body),
        format!(
            r#"{{"kind":"PodMetricsList","apiVersion":"metrics.k8s.io/v1beta1","metadata":{{}},"items":[{WEB_JSON}]}}"#
        ) + "\n"
    );
}

#[tokio::test]
async fn a_pod_is_served_only_from_the_kubelet_of_its_inventory_node() {
    let c = scraped_twice().await;
    // node1's kubelet reports `moved`, but the inventory places it on node2 (which fails).
    let moved = c
        .get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/moved")
        .await;
    assert_eq!(moved.status, StatusCode::NOT_FOUND);
    assert_eq!(
        moved.body,
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"podmetrics.metrics.k8s.io \\\"default/moved\\\" not found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"default/moved\",\"group\":\"metrics.k8s.io\",\"kind\":\"podmetrics\"},\"code\":404}\n"
    );
    // `ghost` is reported but not in the inventory (not running, or unknown).
    let ghost = c
        .get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/ghost")
        .await;
    assert_eq!(
        ghost.body,
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"pods \\\"ghost\\\" not found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"ghost\",\"kind\":\"pods\"},\"code\":404}\n"
    );
}

#[tokio::test]
async fn missing_nodes_get_upstreams_not_found_status() {
    let c = scraped_twice().await;
    let unknown = c.get("/apis/metrics.k8s.io/v1beta1/nodes/nope").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.body,
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"node \\\"nope\\\" not found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"nope\",\"kind\":\"node\"},\"code\":404}\n"
    );
    let failing = c.get("/apis/metrics.k8s.io/v1beta1/nodes/node2").await;
    assert_eq!(
        failing.body,
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"nodemetrics.metrics.k8s.io \\\"node2\\\" not found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"node2\",\"group\":\"metrics.k8s.io\",\"kind\":\"nodemetrics\"},\"code\":404}\n"
    );
}

#[tokio::test]
async fn failing_kubelets_are_counted_by_reason_and_spare_the_others() {
    let c = scraped_twice().await;
    let metrics = c.get("/metrics").await.body;
    assert!(
        metrics.contains("metrics_server_kubelet_request_total{success=\"false\"} 4\n"),
        "{metrics}"
    );
    assert!(metrics.contains("metrics_server_kubelet_request_total{success=\"true\"} 2\n"));
    assert!(metrics.contains("metrics_server_kubelet_scrape_failures_total{reason=\"http_status\"} 2\n"));
    assert!(metrics.contains("metrics_server_kubelet_scrape_failures_total{reason=\"decode\"} 2\n"));
    assert!(metrics.contains("metrics_server_storage_points{type=\"node\"} 1\n"));
    // coredns, app, istio-proxy, moved/c and ghost/c hold a previous point.
    assert!(metrics.contains("metrics_server_storage_points{type=\"container\"} 5\n"));
    assert!(metrics.contains("metrics_server_kubelet_last_request_time_seconds{node=\"node3\"}"));
}

#[tokio::test]
async fn selectors_filter_lists_and_bad_ones_are_400() {
    let c = scraped_twice().await;
    let by_label = c.get("/apis/metrics.k8s.io/v1beta1/pods?labelSelector=app%3Dweb").await;
    assert_eq!(
        mask_creation_timestamps(&by_label.body),
        format!(
            r#"{{"kind":"PodMetricsList","apiVersion":"metrics.k8s.io/v1beta1","metadata":{{}},"items":[{WEB_JSON}]}}"#
        ) + "\n"
    );
    let by_field = c
        .get("/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=metadata.namespace%3Dkube-system")
        .await;
    assert_eq!(
        mask_creation_timestamps(&by_field.body),
        format!(
            r#"{{"kind":"PodMetricsList","apiVersion":"metrics.k8s.io/v1beta1","metadata":{{}},"items":[{COREDNS_JSON}]}}"#
        ) + "\n"
    );
    let none = c
        .get("/apis/metrics.k8s.io/v1beta1/nodes?fieldSelector=metadata.name%3Dnode2")
        .await;
    assert_eq!(
        none.body,
        "{\"kind\":\"NodeMetricsList\",\"apiVersion\":\"metrics.k8s.io/v1beta1\",\"metadata\":{},\"items\":[]}\n"
    );

    let bad_field = c
        .get("/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=spec.nodeName%3Dnode1")
        .await;
    assert_eq!(bad_field.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad_field.body,
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"\\\"spec.nodeName\\\" is not a known field selector: only \\\"metadata.name\\\", \\\"metadata.namespace\\\"\",\"reason\":\"BadRequest\",\"code\":400}\n"
    );
    let bad_label = c
        .get("/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=a%3D%3D%3Db")
        .await;
    assert_eq!(bad_label.status, StatusCode::BAD_REQUEST);
    assert!(
        bad_label.body.contains("\"reason\":\"BadRequest\""),
        "{}",
        bad_label.body
    );
}

#[tokio::test]
async fn watch_and_writes_are_refused_as_upstream_does() {
    let c = scraped_twice().await;
    let watch = c.get("/apis/metrics.k8s.io/v1beta1/nodes?watch=true").await;
    assert_eq!(watch.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        watch.body,
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"watch is not supported on resources of kind \\\"nodes.metrics.k8s.io\\\"\",\"reason\":\"MethodNotAllowed\",\"details\":{\"group\":\"metrics.k8s.io\",\"kind\":\"nodes\"},\"code\":405}\n"
    );
    let delete = c
        .request(
            Method::DELETE,
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web-1",
        )
        .await;
    assert_eq!(delete.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        delete.body,
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"the server does not allow this method on the requested resource\",\"reason\":\"MethodNotAllowed\",\"details\":{},\"code\":405}\n"
    );
}

#[tokio::test]
async fn readiness_waits_for_two_scrapes() {
    let c = cluster().await;
    let before = c.get("/readyz?verbose").await;
    assert_eq!(before.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        before
            .body
            .contains("[-]metric-storage-ready failed: no metrics to serve: waiting for the first scrape of 3 nodes\n"),
        "{}",
        before.body
    );
    c.scrape().await;
    assert_eq!(c.get("/readyz").await.status, StatusCode::INTERNAL_SERVER_ERROR);
    c.scrape().await;
    let after = c.get("/readyz?verbose").await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(
        after.body,
        "[+]ping ok\n[+]log ok\n[+]poststarthook/max-in-flight-filter ok\n[+]poststarthook/storage-object-count-tracker-hook ok\n[+]metric-storage-ready ok\n[+]metric-informer-sync ok\n[+]metadata-informer-sync ok\n[+]shutdown ok\nreadyz check passed\n"
    );
    c.stop().await;
}

#[tokio::test]
async fn discovery_lists_the_metrics_resources() {
    let c = cluster().await;
    let resources = c.get("/apis/metrics.k8s.io/v1beta1").await;
    assert_eq!(
        resources.body.trim_end(),
        r#"{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"metrics.k8s.io/v1beta1","resources":[{"name":"nodes","singularName":"","namespaced":false,"kind":"NodeMetrics","verbs":["get","list"]},{"name":"pods","singularName":"","namespaced":true,"kind":"PodMetrics","verbs":["get","list"]}]}"#
    );
    let group = c.get("/apis/metrics.k8s.io").await;
    assert_eq!(
        group.body.trim_end(),
        r#"{"kind":"APIGroup","apiVersion":"v1","name":"metrics.k8s.io","versions":[{"groupVersion":"metrics.k8s.io/v1","version":"v1"},{"groupVersion":"metrics.k8s.io/v1beta1","version":"v1beta1"}],"preferredVersion":{"groupVersion":"metrics.k8s.io/v1","version":"v1"}}"#
    );
}

#[tokio::test]
async fn node_selector_limits_scrapes_and_lists() {
    let c = TestCluster::start_with(
        vec![
            FakeKubelet::ok("node1", &[NODE1_FIRST, NODE1_SECOND]).with_labels(&[("pool", "a")]),
            FakeKubelet::ok("node9", &[NODE1_FIRST, NODE1_SECOND]).with_labels(&[("metrics-server-skip", "true")]),
        ],
        vec![],
        metrics_server_rs::inventory::selector::LabelSelector::parse("metrics-server-skip!=true").unwrap(),
    )
    .await;
    c.scrape().await;
    c.scrape().await;
    assert_eq!(
        c.kubelet_requests[1].load(std::sync::atomic::Ordering::SeqCst),
        0,
        "node9 must never be scraped"
    );
    let list = c.get("/apis/metrics.k8s.io/v1beta1/nodes").await;
    assert!(
        list.body.contains("\"name\":\"node1\"") && !list.body.contains("node9"),
        "{}",
        list.body
    );
    let skipped = c.get("/apis/metrics.k8s.io/v1beta1/nodes/node9").await;
    assert_eq!(skipped.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_node_that_leaves_the_inventory_is_no_longer_scraped_or_served_and_one_that_returns_is() {
    use metrics_server_rs::inventory::Inventory;
    use std::sync::atomic::Ordering::SeqCst;
    let c = TestCluster::start(
        vec![
            FakeKubelet::ok("node1", &[NODE1_FIRST, NODE1_SECOND]),
            FakeKubelet::ok("node2", &[NODE1_FIRST, NODE1_SECOND]),
        ],
        vec![],
    )
    .await;
    c.scrape().await;
    c.scrape().await;
    let requests = |i: usize| c.kubelet_requests[i].load(SeqCst);
    assert_eq!((requests(0), requests(1)), (2, 2));
    let node2 = c.get("/apis/metrics.k8s.io/v1beta1/nodes/node2").await;
    assert_eq!(node2.status, StatusCode::OK, "{}", node2.body);

    let full = (*c.inventory.snapshot()).clone();
    let mut without_node2 = full.clone();
    without_node2.nodes.remove("node2");
    c.inventory.set(without_node2);
    c.scrape().await;
    assert_eq!((requests(0), requests(1)), (3, 2), "node2 left: only node1 is scraped");
    assert!(c.scrape_status.get("node2").is_none(), "its scrape status went with it");
    let gone = c.get("/apis/metrics.k8s.io/v1beta1/nodes/node2").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.body);

    c.inventory.set(full);
    c.scrape().await;
    assert_eq!((requests(0), requests(1)), (4, 3), "node2 is back in the next cycle");
    assert!(c
        .scrape_status
        .get("node2")
        .is_some_and(|s| s.consecutive_successes == 1));
}

/// Items of a list as `namespace/name`, in the order served.
fn item_names(body: &str) -> Vec<String> {
    let list: serde_json::Value = serde_json::from_str(body).expect("a JSON list");
    let items = list["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .map(|item| {
            let meta = &item["metadata"];
            format!(
                "{}/{}",
                meta["namespace"].as_str().unwrap_or("?"),
                meta["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[tokio::test]
async fn a_list_of_every_pod_is_grouped_by_node_and_a_namespace_list_is_by_name() {
    let renamed = |body: &str| body.replace("web-1", "api-0").replace("coredns-1", "dns-0");
    let (b_first, b_second) = (renamed(FIRST), renamed(SECOND));
    let c = TestCluster::start(
        vec![
            FakeKubelet::ok("node-a", &[FIRST, SECOND]),
            FakeKubelet::ok("node-b", &[&b_first, &b_second]),
        ],
        vec![
            pod("default", "web-1", "node-a", &[]),
            pod("kube-system", "coredns-1", "node-a", &[]),
            pod("default", "api-0", "node-b", &[]),
            pod("kube-system", "dns-0", "node-b", &[]),
        ],
    )
    .await;
    c.scrape().await;
    c.scrape().await;

    let all = c.get("/apis/metrics.k8s.io/v1beta1/pods").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(
        item_names(&all.body),
        [
            "default/web-1",
            "kube-system/coredns-1",
            "default/api-0",
            "kube-system/dns-0"
        ],
        "nodes by name, then each node's pods by namespace and name"
    );
    let default = c.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods").await;
    assert_eq!(item_names(&default.body), ["default/api-0", "default/web-1"]);
}
