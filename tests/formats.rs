//! Everything beyond plain JSON, against the real server over TLS: protobuf decoded by an
//! independent decoder (prost, with the Kubernetes messages declared by hand below), Table
//! and aggregated discovery byte for byte, `metrics.k8s.io/v1`, and the OpenAPI documents
//! checked by a real OpenAPI validator.
#![allow(
    clippy::unwrap_used,
    reason = "helpers outside #[test] fns: a failed step should fail the test loudly"
)]

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use prost::Message;
use support::{mask_creation_timestamps, pod, FakeKubelet, TestCluster, FIRST, SECOND};

const SAMPLE_SECONDS: i64 = 1_700_000_010;

/// What `kubectl top` (client-go's metrics client, kubectl 1.32) sends.
const KUBECTL_TOP_ACCEPT: &str = "application/vnd.kubernetes.protobuf, */*";
/// What `kubectl get` sends for server-side printing.
const KUBECTL_TABLE_ACCEPT: &str =
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

async fn cluster() -> TestCluster {
    let c = TestCluster::start(
        vec![FakeKubelet::ok("node1", &[FIRST, SECOND]).with_labels(&[("kubernetes.io/hostname", "node1")])],
        vec![
            pod("default", "web-1", "node1", &[("app", "web"), ("tier", "front")]),
            pod("kube-system", "coredns-1", "node1", &[]),
        ],
    )
    .await;
    c.scrape().await;
    c.scrape().await;
    c
}

// ---- the Kubernetes protobuf messages, declared independently of the server's encoder ----
// Every scalar is `optional` so the tests see which fields are on the wire, empty or not.

#[derive(Clone, PartialEq, Message)]
struct Unknown {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", optional, tag = "2")]
    raw: Option<Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    content_encoding: Option<String>,
    #[prost(string, optional, tag = "4")]
    content_type: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct TypeMeta {
    #[prost(string, optional, tag = "1")]
    api_version: Option<String>,
    #[prost(string, optional, tag = "2")]
    kind: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct ObjectMeta {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    generate_name: Option<String>,
    #[prost(string, optional, tag = "3")]
    namespace: Option<String>,
    #[prost(string, optional, tag = "4")]
    self_link: Option<String>,
    #[prost(string, optional, tag = "5")]
    uid: Option<String>,
    #[prost(string, optional, tag = "6")]
    resource_version: Option<String>,
    #[prost(int64, optional, tag = "7")]
    generation: Option<i64>,
    #[prost(message, optional, tag = "8")]
    creation_timestamp: Option<Time>,
    #[prost(message, optional, tag = "9")]
    deletion_timestamp: Option<Time>,
    #[prost(btree_map = "string, string", tag = "11")]
    labels: BTreeMap<String, String>,
    #[prost(btree_map = "string, string", tag = "12")]
    annotations: BTreeMap<String, String>,
}

#[derive(Clone, PartialEq, Message)]
struct ListMeta {
    #[prost(string, optional, tag = "1")]
    self_link: Option<String>,
    #[prost(string, optional, tag = "2")]
    resource_version: Option<String>,
    #[prost(string, optional, tag = "3")]
    r#continue: Option<String>,
    #[prost(int64, optional, tag = "4")]
    remaining_item_count: Option<i64>,
}

#[derive(Clone, PartialEq, Message)]
struct Time {
    #[prost(int64, optional, tag = "1")]
    seconds: Option<i64>,
    #[prost(int32, optional, tag = "2")]
    nanos: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
struct Duration {
    #[prost(int64, optional, tag = "1")]
    duration: Option<i64>,
}

#[derive(Clone, PartialEq, Message)]
struct Quantity {
    #[prost(string, optional, tag = "1")]
    string: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct NodeMetrics {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    timestamp: Option<Time>,
    #[prost(message, optional, tag = "3")]
    window: Option<Duration>,
    #[prost(btree_map = "string, message", tag = "4")]
    usage: BTreeMap<String, Quantity>,
}

#[derive(Clone, PartialEq, Message)]
struct NodeMetricsList {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ListMeta>,
    #[prost(message, repeated, tag = "2")]
    items: Vec<NodeMetrics>,
}

#[derive(Clone, PartialEq, Message)]
struct ContainerMetrics {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(btree_map = "string, message", tag = "2")]
    usage: BTreeMap<String, Quantity>,
}

#[derive(Clone, PartialEq, Message)]
struct PodMetrics {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    timestamp: Option<Time>,
    #[prost(message, optional, tag = "3")]
    window: Option<Duration>,
    #[prost(message, repeated, tag = "4")]
    containers: Vec<ContainerMetrics>,
}

#[derive(Clone, PartialEq, Message)]
struct PodMetricsList {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ListMeta>,
    #[prost(message, repeated, tag = "2")]
    items: Vec<PodMetrics>,
}

#[derive(Clone, PartialEq, Message)]
struct Status {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ListMeta>,
    #[prost(string, optional, tag = "2")]
    status: Option<String>,
    #[prost(string, optional, tag = "3")]
    message: Option<String>,
    #[prost(string, optional, tag = "4")]
    reason: Option<String>,
    #[prost(message, optional, tag = "5")]
    details: Option<StatusDetails>,
    #[prost(int32, optional, tag = "6")]
    code: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
struct StatusDetails {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    group: Option<String>,
    #[prost(string, optional, tag = "3")]
    kind: Option<String>,
    #[prost(int32, optional, tag = "5")]
    retry_after_seconds: Option<i32>,
    #[prost(string, optional, tag = "6")]
    uid: Option<String>,
}

/// Checks the `k8s\0` envelope and returns `(apiVersion, kind, raw)`.
fn unwrap_envelope(body: &[u8]) -> (String, String, Vec<u8>) {
    let rest = body.strip_prefix(b"k8s\0").expect("protobuf magic");
    let unknown = Unknown::decode(rest).unwrap();
    // Go always writes the empty contentEncoding and contentType.
    assert_eq!(unknown.content_encoding.as_deref(), Some(""));
    assert_eq!(unknown.content_type.as_deref(), Some(""));
    let type_meta = unknown.type_meta.unwrap();
    (
        type_meta.api_version.unwrap(),
        type_meta.kind.unwrap(),
        unknown.raw.unwrap(),
    )
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Quantity { string: s(v) }))
        .collect()
}

/// The ObjectMeta every item has: the scalars Go always writes, and creationTimestamp = now.
fn check_meta(meta: &ObjectMeta, name: &str, namespace: &str, labels: &[(&str, &str)], before: i64) {
    assert_eq!(meta.name, s(name));
    assert_eq!(meta.namespace, s(namespace));
    for empty in [&meta.generate_name, &meta.self_link, &meta.uid, &meta.resource_version] {
        assert_eq!(empty.as_deref(), Some(""));
    }
    assert_eq!(meta.generation, Some(0));
    let created = meta.creation_timestamp.as_ref().unwrap();
    assert!(created.seconds.unwrap() >= before, "{created:?}");
    assert_eq!(created.nanos, Some(0));
    assert_eq!(meta.deletion_timestamp, None);
    assert!(meta.annotations.is_empty());
    let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    assert_eq!(meta.labels, want);
}

fn check_empty_list_meta(meta: Option<ListMeta>) {
    assert_eq!(
        meta,
        Some(ListMeta {
            self_link: s(""),
            resource_version: s(""),
            r#continue: s(""),
            remaining_item_count: None,
        })
    );
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn kubectl_tops_accept_header_gets_protobuf_node_metrics_that_decode_exactly() {
    let c = cluster().await;
    let before = unix_now();
    let reply = c
        .get_accept("/apis/metrics.k8s.io/v1beta1/nodes", KUBECTL_TOP_ACCEPT)
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type.as_deref(), Some(PROTOBUF));
    let (api_version, kind, raw) = unwrap_envelope(&reply.bytes);
    assert_eq!(
        (api_version.as_str(), kind.as_str()),
        ("metrics.k8s.io/v1beta1", "NodeMetricsList")
    );
    let list = NodeMetricsList::decode(raw.as_slice()).unwrap();
    check_empty_list_meta(list.metadata);
    assert_eq!(list.items.len(), 1);
    let node = &list.items[0];
    check_meta(
        node.metadata.as_ref().unwrap(),
        "node1",
        "",
        &[("kubernetes.io/hostname", "node1")],
        before,
    );
    assert_eq!(
        node.timestamp,
        Some(Time {
            seconds: Some(SAMPLE_SECONDS),
            nanos: Some(0)
        })
    );
    assert_eq!(
        node.window,
        Some(Duration {
            duration: Some(10_000_000_000)
        })
    );
    assert_eq!(node.usage, quantities(&[("cpu", "2"), ("memory", "2Gi")]));

    // A get is the object itself in the envelope, here in v1.
    let one = c.get_accept("/apis/metrics.k8s.io/v1/nodes/node1", PROTOBUF).await;
    let (api_version, kind, raw) = unwrap_envelope(&one.bytes);
    assert_eq!(
        (api_version.as_str(), kind.as_str()),
        ("metrics.k8s.io/v1", "NodeMetrics")
    );
    let decoded = NodeMetrics::decode(raw.as_slice()).unwrap();
    assert_eq!(decoded.usage, node.usage);
    assert_eq!(decoded.timestamp, node.timestamp);
}

#[tokio::test]
async fn protobuf_pod_metrics_decode_with_containers_in_order() {
    let c = cluster().await;
    let before = unix_now();
    let reply = c
        .get_accept("/apis/metrics.k8s.io/v1beta1/pods", KUBECTL_TOP_ACCEPT)
        .await;
    assert_eq!(reply.content_type.as_deref(), Some(PROTOBUF));
    let (api_version, kind, raw) = unwrap_envelope(&reply.bytes);
    assert_eq!(
        (api_version.as_str(), kind.as_str()),
        ("metrics.k8s.io/v1beta1", "PodMetricsList")
    );
    let list = PodMetricsList::decode(raw.as_slice()).unwrap();
    check_empty_list_meta(list.metadata);
    let [web, coredns] = list.items.as_slice() else {
        panic!("two pods expected: {:?}", list.items)
    };
    check_meta(
        web.metadata.as_ref().unwrap(),
        "web-1",
        "default",
        &[("app", "web"), ("tier", "front")],
        before,
    );
    check_meta(
        coredns.metadata.as_ref().unwrap(),
        "coredns-1",
        "kube-system",
        &[],
        before,
    );
    for p in [web, coredns] {
        assert_eq!(p.timestamp.as_ref().unwrap().seconds, Some(SAMPLE_SECONDS));
        assert_eq!(p.window.as_ref().unwrap().duration, Some(10_000_000_000));
    }
    let containers = |p: &PodMetrics| -> Vec<(String, BTreeMap<String, Quantity>)> {
        p.containers
            .iter()
            .map(|c| (c.name.clone().unwrap(), c.usage.clone()))
            .collect()
    };
    assert_eq!(
        containers(web),
        [
            ("app".to_owned(), quantities(&[("cpu", "250m"), ("memory", "100Mi")])),
            (
                "istio-proxy".to_owned(),
                quantities(&[("cpu", "25m"), ("memory", "20Mi")])
            ),
        ]
    );
    assert_eq!(
        containers(coredns),
        [(
            "coredns".to_owned(),
            quantities(&[("cpu", "500m"), ("memory", "12240Ki")])
        )]
    );
}

#[tokio::test]
async fn errors_come_back_as_protobuf_status_when_protobuf_was_asked() {
    let c = cluster().await;
    let reply = c
        .get_accept(
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nope",
            KUBECTL_TOP_ACCEPT,
        )
        .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.content_type.as_deref(), Some(PROTOBUF));
    let (api_version, kind, raw) = unwrap_envelope(&reply.bytes);
    assert_eq!((api_version.as_str(), kind.as_str()), ("v1", "Status"));
    let status = Status::decode(raw.as_slice()).unwrap();
    check_empty_list_meta(status.metadata);
    assert_eq!(status.status, s("Failure"));
    assert_eq!(status.message, s("pods \"nope\" not found"));
    assert_eq!(status.reason, s("NotFound"));
    assert_eq!(status.code, Some(404));
    assert_eq!(
        status.details,
        Some(StatusDetails {
            name: s("nope"),
            group: s(""),
            kind: s("pods"),
            retry_after_seconds: Some(0),
            uid: s(""),
        })
    );
    // The protobuf-first header other clients send gets the same.
    let fallback = c
        .get_accept(
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nope",
            "application/vnd.kubernetes.protobuf, application/json",
        )
        .await;
    assert_eq!(fallback.bytes, reply.bytes);
    // JSON clients keep the JSON Status.
    let json = c.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nope").await;
    assert_eq!(json.content_type.as_deref(), Some("application/json"));
    assert!(json.body.starts_with("{\"kind\":\"Status\""), "{}", json.body);
}

const COLUMNS: &str = r#"[{"name":"Name","type":"string","format":"name","description":"Name of the resource","priority":0},{"name":"cpu","type":"string","format":"quantity","description":"","priority":0},{"name":"memory","type":"string","format":"quantity","description":"","priority":0},{"name":"Window","type":"string","format":"duration","description":"","priority":0}]"#;

#[tokio::test]
async fn kubectl_gets_table_request_gets_upstreams_table_bytes() {
    let c = cluster().await;
    let nodes = c
        .get_accept("/apis/metrics.k8s.io/v1/nodes", KUBECTL_TABLE_ACCEPT)
        .await;
    assert_eq!(nodes.status, 200);
    assert_eq!(nodes.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        mask_creation_timestamps(&nodes.body),
        format!(
            r#"{{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{{}},"columnDefinitions":{COLUMNS},"rows":[{{"cells":["node1","2","2Gi","10s"],"object":{{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{{"name":"node1","creationTimestamp":"<now>","labels":{{"kubernetes.io/hostname":"node1"}}}}}}}}]}}"#
        ) + "\n"
    );

    let pods = c
        .get_accept("/apis/metrics.k8s.io/v1beta1/pods", KUBECTL_TABLE_ACCEPT)
        .await;
    assert_eq!(
        mask_creation_timestamps(&pods.body),
        format!(
            r#"{{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{{}},"columnDefinitions":{COLUMNS},"rows":[{{"cells":["web-1","275m","120Mi","10s"],"object":{{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{{"name":"web-1","namespace":"default","creationTimestamp":"<now>","labels":{{"app":"web","tier":"front"}}}}}}}},{{"cells":["coredns-1","500m","12240Ki","10s"],"object":{{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{{"name":"coredns-1","namespace":"kube-system","creationTimestamp":"<now>"}}}}}}]}}"#
        ) + "\n"
    );
}

#[tokio::test]
async fn tables_serve_gets_v1beta1_empty_lists_and_include_object_choices() {
    let c = cluster().await;
    let beta = "application/json;as=Table;v=v1beta1;g=meta.k8s.io";
    let one = c
        .get_accept("/apis/metrics.k8s.io/v1/namespaces/kube-system/pods/coredns-1", beta)
        .await;
    assert_eq!(
        mask_creation_timestamps(&one.body),
        format!(
            r#"{{"kind":"Table","apiVersion":"meta.k8s.io/v1beta1","metadata":{{}},"columnDefinitions":{COLUMNS},"rows":[{{"cells":["coredns-1","500m","12240Ki","10s"],"object":{{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1beta1","metadata":{{"name":"coredns-1","namespace":"kube-system","creationTimestamp":"<now>"}}}}}}]}}"#
        ) + "\n"
    );
    let empty = c
        .get_accept(
            "/apis/metrics.k8s.io/v1/pods?labelSelector=app%3Dnone",
            KUBECTL_TABLE_ACCEPT,
        )
        .await;
    assert_eq!(
        empty.body,
        "{\"kind\":\"Table\",\"apiVersion\":\"meta.k8s.io/v1\",\"metadata\":{},\"columnDefinitions\":null,\"rows\":null}\n"
    );
    let none = c
        .get_accept("/apis/metrics.k8s.io/v1/nodes?includeObject=None", KUBECTL_TABLE_ACCEPT)
        .await;
    assert!(
        none.body
            .ends_with("\"cells\":[\"node1\",\"2\",\"2Gi\",\"10s\"],\"object\":null}]}\n"),
        "{}",
        none.body
    );
    let object = c
        .get_accept(
            "/apis/metrics.k8s.io/v1/nodes?includeObject=Object",
            KUBECTL_TABLE_ACCEPT,
        )
        .await;
    assert!(
        object
            .body
            .contains(",\"object\":{\"kind\":\"NodeMetrics\",\"apiVersion\":\"metrics.k8s.io/v1\","),
        "{}",
        object.body
    );
    let bad = c
        .get_accept(
            "/apis/metrics.k8s.io/v1/nodes?includeObject=Everything",
            KUBECTL_TABLE_ACCEPT,
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body
            .contains("\"message\":\"unrecognized includeObject value: \\\"Everything\\\"\""),
        "{}",
        bad.body
    );
}

#[tokio::test]
async fn v1_serves_the_same_objects_as_v1beta1() {
    let c = cluster().await;
    let v1 = c.get("/apis/metrics.k8s.io/v1/namespaces/default/pods/web-1").await;
    let beta = c
        .get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web-1")
        .await;
    assert_eq!(v1.status, 200);
    assert_eq!(
        mask_creation_timestamps(&v1.body),
        mask_creation_timestamps(&beta.body).replace("metrics.k8s.io/v1beta1", "metrics.k8s.io/v1")
    );
    assert!(v1
        .body
        .starts_with("{\"kind\":\"PodMetrics\",\"apiVersion\":\"metrics.k8s.io/v1\","));
}

#[tokio::test]
async fn discovery_prefers_v1_in_legacy_and_aggregated_form() {
    let c = cluster().await;
    let legacy = c.get("/apis").await;
    assert_eq!(
        legacy.body,
        "{\"kind\":\"APIGroupList\",\"apiVersion\":\"v1\",\"groups\":[{\"name\":\"metrics.k8s.io\",\"versions\":[{\"groupVersion\":\"metrics.k8s.io/v1\",\"version\":\"v1\"},{\"groupVersion\":\"metrics.k8s.io/v1beta1\",\"version\":\"v1beta1\"}],\"preferredVersion\":{\"groupVersion\":\"metrics.k8s.io/v1\",\"version\":\"v1\"}}]}\n"
    );
    let accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    let aggregated = c.get_accept("/apis", accept).await;
    assert_eq!(
        aggregated.content_type.as_deref(),
        Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    );
    let resources = r#"[{"resource":"nodes","responseKind":{"group":"","version":"","kind":"NodeMetrics"},"scope":"Cluster","singularResource":"","verbs":["get","list"]},{"resource":"pods","responseKind":{"group":"","version":"","kind":"PodMetrics"},"scope":"Namespaced","singularResource":"","verbs":["get","list"]}]"#;
    assert_eq!(
        aggregated.body,
        format!(
            r#"{{"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","metadata":{{}},"items":[{{"metadata":{{"name":"metrics.k8s.io"}},"versions":[{{"version":"v1","resources":{resources},"freshness":"Current"}},{{"version":"v1beta1","resources":{resources},"freshness":"Current"}}]}}]}}"#
        ) + "\n"
    );
    assert!(aggregated.headers.contains_key("etag"));
    let v1 = c.get("/apis/metrics.k8s.io/v1").await;
    assert!(
        v1.body
            .starts_with("{\"kind\":\"APIResourceList\",\"apiVersion\":\"v1\",\"groupVersion\":\"metrics.k8s.io/v1\","),
        "{}",
        v1.body
    );
}

/// Validates `document` with the Python `openapi-spec-validator` (installed by `.ci/run`).
fn validate_openapi(document: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, document).unwrap();
    let script =
        "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(open(sys.argv[1])))\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("python3 must be on PATH (with openapi-spec-validator: see .ci/run)");
    assert!(
        out.status.success(),
        "openapi-spec-validator rejected the document: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn openapi_documents_are_served_listed_and_valid() {
    let c = cluster().await;
    let v2 = c.get("/openapi/v2").await;
    assert_eq!(v2.status, 200);
    assert_eq!(v2.content_type.as_deref(), Some("application/json"));
    let doc: serde_json::Value = serde_json::from_slice(&v2.bytes).unwrap();
    assert_eq!(doc["info"]["title"], "Kubernetes metrics-server");
    assert!(doc["definitions"]["io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics"].is_object());
    validate_openapi(&v2.bytes);

    let discovery: serde_json::Value = serde_json::from_slice(&c.get("/openapi/v3").await.bytes).unwrap();
    for version in ["v1", "v1beta1"] {
        let url = discovery["paths"][format!("apis/metrics.k8s.io/{version}")]["serverRelativeURL"]
            .as_str()
            .unwrap();
        let v3 = c.get(url).await;
        assert_eq!(v3.status, 200, "{url}");
        assert_eq!(v3.headers.get("cache-control").unwrap(), "public, immutable");
        let doc: serde_json::Value = serde_json::from_slice(&v3.bytes).unwrap();
        assert!(
            doc["components"]["schemas"][format!("io.k8s.metrics.pkg.apis.metrics.{version}.NodeMetrics")].is_object()
        );
        validate_openapi(&v3.bytes);
    }
    let index = c.get("/").await.body;
    assert!(
        index.contains("\"/openapi/v2\"") && index.contains("\"/openapi/v3\""),
        "{index}"
    );
}
