//! The kubelet fault matrix: one healthy kubelet beside one faulty one per case. After two
//! scrape cycles the healthy node and its pod are still served with exact values, the faulty
//! node is not (or, for bad series, only the bad series' pod is dropped), `/metrics` counts
//! each failed scrape under its reason, and the scrape status holds the consecutive failures.
//!
//! What the cases settle, beyond "drop that node and keep the rest":
//! * An empty body is a valid, empty exposition: a successful scrape with nothing to serve.
//! * A connection closed before the TLS handshake is `connect`; one cut after the headers is
//!   `body`; a kubelet that stalls (before the handshake or mid-body) is `timeout`.
//! * NaN, infinite and negative values and decreasing counters drop only their series' pod or
//!   node point, and are not failed scrapes: the body was valid.
//! * Timestamps are the kubelet's own, as upstream serves them: a kubelet clock in 2100 or
//!   1970 still yields the right rate over the right window. A clock that jumps back yields
//!   no window until two ordered points arrive; times past 2262 saturate and yield none; a
//!   timestamp that is not an i64 of milliseconds makes the body invalid (`decode`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] fns: a failed step should fail the test loudly"
)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use metrics_server_rs::inventory::fixed::FixedInventory;
use metrics_server_rs::inventory::{NodeAddress, NodeInfo, Snapshot};
use metrics_server_rs::kubelet::client::ClientConfig;
use metrics_server_rs::sandbox::kubelet_server::KubeletReply;
use metrics_server_rs::sandbox::kubelet_tls;
use metrics_server_rs::sandbox::pki::TestCa;
use support::{labels, mask_creation_timestamps, pod, FakeKubelet, Kubelets, ServerOptions, TestCluster};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// 2021-10-03T09:36:40Z in milliseconds.
const T0: i64 = 1_633_253_800_000;

const API: &str = "/apis/metrics.k8s.io/v1beta1";

/// A `/metrics/resource` body: node CPU (core-seconds) and memory at `node_ms`, then one line
/// per container `(namespace, pod, container, cpu, memory, ms)`; values are written verbatim.
fn body(node_cpu: &str, node_memory: &str, node_ms: i64, containers: &[(&str, &str, &str, &str, &str, i64)]) -> String {
    let mut out = format!(
        "node_cpu_usage_seconds_total {node_cpu} {node_ms}\nnode_memory_working_set_bytes {node_memory} {node_ms}\n"
    );
    for (namespace, pod, container, cpu, memory, ms) in containers {
        let labels = format!(r#"{{container="{container}",namespace="{namespace}",pod="{pod}"}}"#);
        out.push_str(&format!("container_cpu_usage_seconds_total{labels} {cpu} {ms}\n"));
        out.push_str(&format!("container_memory_working_set_bytes{labels} {memory} {ms}\n"));
    }
    out
}

/// node1's two answers: 100 → 110 core-s over 10 s (1 core), 1 GiB; `web`'s container
/// 1 → 1.5 core-s over 10 s (50m), 100 MiB.
fn healthy() -> FakeKubelet {
    let first = body(
        "100",
        "1073741824",
        T0,
        &[("default", "web", "app", "1", "104857600", T0 + 2000)],
    );
    let second = body(
        "110",
        "1073741824",
        T0 + 10_000,
        &[("default", "web", "app", "1.5", "104857600", T0 + 12_000)],
    );
    FakeKubelet::ok("node1", &[&first, &second]).with_labels(&[("role", "healthy")])
}

const NODE1_JSON: &str = r#"{"kind":"NodeMetrics","apiVersion":"metrics.k8s.io/v1beta1","metadata":{"name":"node1","creationTimestamp":"<now>","labels":{"role":"healthy"}},"timestamp":"2021-10-03T09:36:50Z","window":"10s","usage":{"cpu":"1","memory":"1Gi"}}"#;
const WEB_JSON: &str = r#"{"kind":"PodMetrics","apiVersion":"metrics.k8s.io/v1beta1","metadata":{"name":"web","namespace":"default","creationTimestamp":"<now>","labels":{"app":"web"}},"timestamp":"2021-10-03T09:36:52Z","window":"10s","containers":[{"name":"app","usage":{"cpu":"50m","memory":"100Mi"}}]}"#;

/// How the faulty node is reached.
enum Faulty {
    /// A fake kubelet with a certificate from the CA the server trusts.
    Kubelet(FakeKubelet),
    /// A fake kubelet with a certificate from a CA the server does not know.
    OtherCa(FakeKubelet),
    /// A bare TCP listener (its accept loop is the test's business).
    Raw(SocketAddr),
    /// A TLS server (trusted certificate) that reads the request, writes `response` verbatim,
    /// then closes the connection, or holds it open when `hold` is set.
    Wire { response: &'static [u8], hold: bool },
}

/// node1 (healthy) and node2 (faulty), pods `web` on node1 and `victim` (plus `extra` pods) on
/// node2; `client` adjusts the kubelet client (timeout, size cap).
async fn cluster(faulty: Faulty, extra_pods: &[&str], client: impl FnOnce(&mut ClientConfig)) -> TestCluster {
    let ca = TestCa::new("fault matrix CA").unwrap();
    let mut kubelets = Kubelets::start(&ca, vec![healthy()]).await;
    let node2_address = match faulty {
        Faulty::Kubelet(k) => {
            kubelets.add(&ca, vec![k]).await;
            kubelets.get("node2").address
        }
        Faulty::OtherCa(k) => {
            let stranger = TestCa::new("a CA nobody trusts").unwrap();
            kubelets.add(&stranger, vec![k]).await;
            kubelets.get("node2").address
        }
        Faulty::Raw(address) => address,
        Faulty::Wire { response, hold } => wire_server(&ca, response, hold).await,
    };
    let node = |name: &str, node_labels, address: SocketAddr| NodeInfo {
        name: name.to_owned(),
        labels: node_labels,
        addresses: vec![NodeAddress {
            address_type: "InternalIP".into(),
            address: address.ip().to_string(),
        }],
        kubelet_status_port: address.port(),
    };
    let nodes = vec![
        node("node1", labels(&[("role", "healthy")]), kubelets.get("node1").address),
        node("node2", labels(&[("role", "faulty")]), node2_address),
    ];
    let mut pods = vec![
        pod("default", "web", "node1", &[("app", "web")]),
        pod("default", "victim", "node2", &[("app", "victim")]),
    ];
    pods.extend(
        extra_pods
            .iter()
            .map(|name| pod("default", name, "node2", &[("app", name)])),
    );
    let inventory = Arc::new(FixedInventory::new(Snapshot::from_parts(nodes, pods)));
    let mut options = ServerOptions::trusting(&ca);
    client(&mut options.kubelet);
    TestCluster::serve(kubelets, inventory, options).await
}

/// See [`Faulty::Wire`]; returns where it listens.
async fn wire_server(ca: &TestCa, response: &'static [u8], hold: bool) -> SocketAddr {
    let leaf = ca.issue("kubelet", &["127.0.0.1"]).unwrap();
    let tls = kubelet_tls(&leaf.cert_pem, &leaf.key_pem).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tls = tls.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = tls.accept(tcp).await else { return };
                let (mut seen, mut buf) = (Vec::new(), [0u8; 4096]);
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(response).await;
                let _ = stream.flush().await;
                if hold {
                    std::future::pending::<()>().await;
                }
            });
        }
    });
    address
}

fn defaults(_: &mut ClientConfig) {}

async fn scraped_twice(c: TestCluster) -> TestCluster {
    c.scrape().await;
    c.scrape().await;
    c
}

/// (a) node1 and `web` are served with exact values.
async fn assert_healthy_served(c: &TestCluster) {
    let reply = c.get(&format!("{API}/nodes/node1")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(mask_creation_timestamps(&reply.body), format!("{NODE1_JSON}\n"));
    let reply = c.get(&format!("{API}/namespaces/default/pods/web")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(mask_creation_timestamps(&reply.body), format!("{WEB_JSON}\n"));
}

/// (b) node2 and its pods are not served; the lists hold exactly node1 and `web`.
async fn assert_faulty_not_served(c: &TestCluster) {
    assert_eq!(c.get(&format!("{API}/nodes/node2")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        c.get(&format!("{API}/namespaces/default/pods/victim")).await.status,
        StatusCode::NOT_FOUND
    );
    let nodes = c.get(&format!("{API}/nodes")).await;
    assert_eq!(
        mask_creation_timestamps(&nodes.body),
        format!(
            r#"{{"kind":"NodeMetricsList","apiVersion":"metrics.k8s.io/v1beta1","metadata":{{}},"items":[{NODE1_JSON}]}}"#
        ) + "\n"
    );
    let pods = c.get(&format!("{API}/pods")).await;
    assert_eq!(
        mask_creation_timestamps(&pods.body),
        format!(
            r#"{{"kind":"PodMetricsList","apiVersion":"metrics.k8s.io/v1beta1","metadata":{{}},"items":[{WEB_JSON}]}}"#
        ) + "\n"
    );
}

/// Every `metrics_server_kubelet_scrape_failures_total` line in `/metrics`.
async fn failure_lines(c: &TestCluster) -> Vec<String> {
    let reply = c.get("/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    reply
        .body
        .lines()
        .filter(|l| l.starts_with("metrics_server_kubelet_scrape_failures_total{"))
        .map(str::to_owned)
        .collect()
}

/// (c) and (d): both cycles failed under `reason` for node2, and only for node2.
async fn assert_failed_twice(c: &TestCluster, reason: &str) {
    assert_eq!(
        failure_lines(c).await,
        [format!(
            "metrics_server_kubelet_scrape_failures_total{{reason=\"{reason}\"}} 2"
        )]
    );
    let state = c.scrape_status.get("node2").expect("node2 was scraped");
    assert_eq!(state.consecutive_failures, 2);
    assert_eq!(state.last_success, None);
    let (label, message) = state.last_error.expect("node2 is failing");
    assert_eq!(label, reason, "{message}");
    let address = state.address.expect("the address used is recorded");
    assert!(
        address.starts_with("https://127.0.0.1:") && address.ends_with("/metrics/resource"),
        "{address}"
    );
    let healthy = c.scrape_status.get("node1").expect("node1 was scraped");
    assert_eq!(healthy.consecutive_failures, 0);
    assert!(healthy.last_success.is_some());
}

/// The whole matrix row for a node2 that fails every scrape with `reason`.
async fn failing_case(faulty: Faulty, client: impl FnOnce(&mut ClientConfig), reason: &str) {
    let c = scraped_twice(cluster(faulty, &[], client).await).await;
    assert_healthy_served(&c).await;
    assert_faulty_not_served(&c).await;
    assert_failed_twice(&c, reason).await;
}

/// A valid body for node2, so a case only differs from health by its fault.
fn node2_body() -> String {
    body("5", "2048", T0, &[("default", "victim", "c", "1", "4096", T0)])
}

#[tokio::test]
async fn status_500_is_counted_as_http_status() {
    let k = FakeKubelet::failing("node2", StatusCode::INTERNAL_SERVER_ERROR, "boom");
    failing_case(Faulty::Kubelet(k), defaults, "http_status").await;
}

#[tokio::test]
async fn status_401_from_a_wrong_token_is_counted_as_http_status() {
    let mut k = FakeKubelet::ok("node2", &[&node2_body()]);
    k.token = Some("another-token".into());
    failing_case(Faulty::Kubelet(k), defaults, "http_status").await;
}

#[tokio::test]
async fn status_403_is_counted_as_http_status() {
    let k = FakeKubelet::failing("node2", StatusCode::FORBIDDEN, "Forbidden (user=system:serviceaccount)");
    failing_case(Faulty::Kubelet(k), defaults, "http_status").await;
}

#[tokio::test]
async fn garbage_body_is_counted_as_decode() {
    let k = FakeKubelet::ok("node2", &["<html><body>502 Bad Gateway</body></html>\n"]);
    failing_case(Faulty::Kubelet(k), defaults, "decode").await;
}

#[tokio::test]
async fn body_truncated_mid_sample_is_counted_as_decode() {
    let full = node2_body();
    let cut = full.find("namespace=\"def").unwrap() + "namespace=\"def".len();
    let k = FakeKubelet::ok("node2", &[&full[..cut]]);
    failing_case(Faulty::Kubelet(k), defaults, "decode").await;
}

#[tokio::test]
async fn body_over_the_size_cap_is_counted_as_too_large() {
    // node1's bodies are under 600 bytes; node2's is a valid body padded to ~8 KiB.
    let padded = "# padding padding padding padding padding padding padding\n".repeat(140) + &node2_body();
    let k = FakeKubelet::ok("node2", &[&padded]);
    failing_case(Faulty::Kubelet(k), |c| c.max_body_bytes = 1024, "too_large").await;
}

#[tokio::test]
async fn certificate_without_the_address_is_counted_as_tls() {
    let k = FakeKubelet::ok("node2", &[&node2_body()]).with_cert_names(&["node2.example.internal"]);
    failing_case(Faulty::Kubelet(k), defaults, "tls").await;
}

#[tokio::test]
async fn certificate_from_an_unknown_ca_is_counted_as_tls() {
    let k = FakeKubelet::ok("node2", &[&node2_body()]);
    failing_case(Faulty::OtherCa(k), defaults, "tls").await;
}

#[tokio::test]
async fn kubelet_slower_than_the_timeout_is_counted_as_timeout() {
    // Accepts connections and never answers: the TLS handshake (and so the request) stalls.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let _stall = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let timeout = |c: &mut ClientConfig| c.request_timeout = Duration::from_secs(3);
    failing_case(Faulty::Raw(address), timeout, "timeout").await;
}

#[tokio::test]
async fn connection_closed_at_accept_is_counted_as_connect() {
    // Accepts and closes before the TLS handshake (what a reset by a proxy or a dying kubelet
    // looks like to the client): nothing was exchanged yet, so it is a connect failure.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let _closer = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    failing_case(Faulty::Raw(address), defaults, "connect").await;
}

/// Headers and half a body, then the connection drops: the body is cut on the wire.
const CUT_ON_THE_WIRE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1000\r\n\r\nnode_cpu_usage_seconds_total 5 1633253800000\nnode_memory_wor";

#[tokio::test]
async fn connection_dropped_mid_body_is_counted_as_body() {
    let wire = Faulty::Wire {
        response: CUT_ON_THE_WIRE,
        hold: false,
    };
    failing_case(wire, defaults, "body").await;
}

#[tokio::test]
async fn kubelet_stalling_mid_body_is_counted_as_timeout() {
    // The handshake and headers arrive; the rest of the body never does.
    let wire = Faulty::Wire {
        response: CUT_ON_THE_WIRE,
        hold: true,
    };
    let timeout = |c: &mut ClientConfig| c.request_timeout = Duration::from_secs(3);
    failing_case(wire, timeout, "timeout").await;
}

#[tokio::test]
async fn refused_connection_is_counted_as_connect() {
    // A port that was free a moment ago and has no listener now.
    let address = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    failing_case(Faulty::Raw(address), defaults, "connect").await;
}

#[tokio::test]
async fn empty_body_is_a_successful_scrape_with_nothing_to_serve() {
    let k = FakeKubelet::ok("node2", &[""]);
    let c = scraped_twice(cluster(Faulty::Kubelet(k), &[], defaults).await).await;
    assert_healthy_served(&c).await;
    assert_faulty_not_served(&c).await;
    // Not a failure: the kubelet answered 200 with a valid (empty) exposition.
    assert_eq!(failure_lines(&c).await, Vec::<String>::new());
    let state = c.scrape_status.get("node2").unwrap();
    assert_eq!(state.consecutive_failures, 0);
    assert!(state.last_success.is_some());
}

/// node2 as served, or the status when it is not.
async fn node2(c: &TestCluster) -> Result<String, StatusCode> {
    let reply = c.get(&format!("{API}/nodes/node2")).await;
    match reply.status {
        StatusCode::OK => Ok(mask_creation_timestamps(&reply.body)),
        status => Err(status),
    }
}

fn node2_json(timestamp: &str, cpu: &str) -> String {
    format!(
        r#"{{"kind":"NodeMetrics","apiVersion":"metrics.k8s.io/v1beta1","metadata":{{"name":"node2","creationTimestamp":"<now>","labels":{{"role":"faulty"}}}},"timestamp":"{timestamp}","window":"10s","usage":{{"cpu":"{cpu}","memory":"2Mi"}}}}"#
    ) + "\n"
}

fn pod_json(name: &str, timestamp: &str, cpu: &str) -> String {
    format!(
        r#"{{"kind":"PodMetrics","apiVersion":"metrics.k8s.io/v1beta1","metadata":{{"name":"{name}","namespace":"default","creationTimestamp":"<now>","labels":{{"app":"{name}"}}}},"timestamp":"{timestamp}","window":"10s","containers":[{{"name":"c","usage":{{"cpu":"{cpu}","memory":"4Ki"}}}}]}}"#
    )
}

/// A scrape that succeeded and left node2 healthy in the status and uncounted in `/metrics`.
async fn assert_no_failures(c: &TestCluster) {
    assert_eq!(failure_lines(c).await, Vec::<String>::new());
    for node in ["node1", "node2"] {
        let state = c.scrape_status.get(node).unwrap();
        assert_eq!(state.consecutive_failures, 0, "{node}");
        assert!(state.last_success.is_some(), "{node}");
    }
}

#[tokio::test]
async fn nan_negative_and_decreasing_values_drop_only_their_pods() {
    // Containers at T0+1 s, then T0+11 s. `victim` is sound (1 → 1.5: 50m); `nan` has a NaN
    // CPU, `negative` a negative memory, `decreasing` a CPU counter going 5 → 3.
    let at = |ms: i64, victim: &'static str, decreasing: &'static str| {
        let mut text = body(
            if ms == T0 + 1000 { "50" } else { "55" },
            "2097152",
            ms - 1000,
            &[
                ("default", "victim", "c", victim, "4096", ms),
                ("default", "nan", "c", "NaN", "4096", ms),
                ("default", "negative", "c", "1", "-1", ms),
                ("default", "decreasing", "c", decreasing, "4096", ms),
            ],
        );
        text.push_str(&format!(
            "container_cpu_usage_seconds_total{{container=\"c\",namespace=\"default\",pod=\"inf\"}} +Inf {ms}\n\
             container_memory_working_set_bytes{{container=\"c\",namespace=\"default\",pod=\"inf\"}} 4096 {ms}\n"
        ));
        text
    };
    let k = FakeKubelet::ok("node2", &[&at(T0 + 1000, "1", "5"), &at(T0 + 11_000, "1.5", "3")]);
    let bad = ["nan", "negative", "decreasing", "inf"];
    let c = scraped_twice(cluster(Faulty::Kubelet(k), &bad, defaults).await).await;
    assert_healthy_served(&c).await;
    // node2: 50 → 55 core-s over 10 s.
    assert_eq!(node2(&c).await, Ok(node2_json("2021-10-03T09:36:50Z", "500m")));
    let victim = c.get(&format!("{API}/namespaces/default/pods/victim")).await;
    assert_eq!(
        mask_creation_timestamps(&victim.body),
        pod_json("victim", "2021-10-03T09:36:51Z", "50m") + "\n"
    );
    for name in bad {
        let reply = c.get(&format!("{API}/namespaces/default/pods/{name}")).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{name}: {}", reply.body);
    }
    let pods = c.get(&format!("{API}/namespaces/default/pods")).await;
    assert_eq!(
        mask_creation_timestamps(&pods.body),
        format!(
            r#"{{"kind":"PodMetricsList","apiVersion":"metrics.k8s.io/v1beta1","metadata":{{}},"items":[{},{WEB_JSON}]}}"#,
            pod_json("victim", "2021-10-03T09:36:51Z", "50m")
        ) + "\n"
    );
    // Bad series are the kubelet's data, not a failed scrape.
    assert_no_failures(&c).await;
}

#[tokio::test]
async fn nan_node_value_drops_only_the_node_point() {
    let first = body(
        "NaN",
        "2097152",
        T0,
        &[("default", "victim", "c", "1", "4096", T0 + 1000)],
    );
    let second = body(
        "NaN",
        "2097152",
        T0 + 10_000,
        &[("default", "victim", "c", "1.5", "4096", T0 + 11_000)],
    );
    let k = FakeKubelet::ok("node2", &[&first, &second]);
    let c = scraped_twice(cluster(Faulty::Kubelet(k), &[], defaults).await).await;
    assert_healthy_served(&c).await;
    assert_eq!(node2(&c).await, Err(StatusCode::NOT_FOUND));
    let victim = c.get(&format!("{API}/namespaces/default/pods/victim")).await;
    assert_eq!(
        mask_creation_timestamps(&victim.body),
        pod_json("victim", "2021-10-03T09:36:51Z", "50m") + "\n"
    );
    assert_no_failures(&c).await;
}

#[tokio::test]
async fn duplicate_series_the_later_line_wins() {
    // Each body repeats node2's CPU and victim's CPU; the first copy is a decoy.
    let with_decoys = |node_cpu: &str, victim_cpu: &str, ms: i64| {
        let decoy = format!(
            "node_cpu_usage_seconds_total 999 {ms}\n\
             container_cpu_usage_seconds_total{{container=\"c\",namespace=\"default\",pod=\"victim\"}} 999 {}\n",
            ms + 1000
        );
        decoy
            + &body(
                node_cpu,
                "2097152",
                ms,
                &[("default", "victim", "c", victim_cpu, "4096", ms + 1000)],
            )
    };
    let k = FakeKubelet::ok(
        "node2",
        &[&with_decoys("50", "1", T0), &with_decoys("55", "1.5", T0 + 10_000)],
    );
    let c = scraped_twice(cluster(Faulty::Kubelet(k), &[], defaults).await).await;
    assert_healthy_served(&c).await;
    assert_eq!(node2(&c).await, Ok(node2_json("2021-10-03T09:36:50Z", "500m")));
    let victim = c.get(&format!("{API}/namespaces/default/pods/victim")).await;
    assert_eq!(
        mask_creation_timestamps(&victim.body),
        pod_json("victim", "2021-10-03T09:36:51Z", "50m") + "\n"
    );
    assert_no_failures(&c).await;
}

/// node2 reporting its own clock at `first` then `first + 10 s` (milliseconds).
fn clocked(first: i64) -> FakeKubelet {
    let at = |cpu, victim, ms: i64| body(cpu, "2097152", ms, &[("default", "victim", "c", victim, "4096", ms)]);
    FakeKubelet::ok("node2", &[&at("50", "1", first), &at("55", "1.5", first + 10_000)])
}

/// Timestamps are the kubelet's own, as upstream reports them: a window is the difference of
/// two of them, so a kubelet whose clock is far off still yields the right rates over a
/// 10 s window, stamped with its (odd) time.
#[tokio::test]
async fn timestamps_from_the_future_are_reported_as_the_kubelet_sent_them() {
    // 2100-01-01T00:00:00Z.
    let c = scraped_twice(cluster(Faulty::Kubelet(clocked(4_102_444_800_000)), &[], defaults).await).await;
    assert_healthy_served(&c).await;
    assert_eq!(node2(&c).await, Ok(node2_json("2100-01-01T00:00:10Z", "500m")));
    let victim = c.get(&format!("{API}/namespaces/default/pods/victim")).await;
    assert_eq!(
        mask_creation_timestamps(&victim.body),
        pod_json("victim", "2100-01-01T00:00:10Z", "50m") + "\n"
    );
    assert_no_failures(&c).await;
}

#[tokio::test]
async fn timestamps_from_the_far_past_are_reported_as_the_kubelet_sent_them() {
    // One second after the Unix epoch.
    let c = scraped_twice(cluster(Faulty::Kubelet(clocked(1000)), &[], defaults).await).await;
    assert_healthy_served(&c).await;
    assert_eq!(node2(&c).await, Ok(node2_json("1970-01-01T00:00:11Z", "500m")));
    assert_no_failures(&c).await;
}

/// A kubelet clock that jumps back gives no window at all (never a negative one) until two
/// points in order arrive again.
#[tokio::test]
async fn a_clock_jumping_back_serves_nothing_until_two_ordered_points() {
    let at = |cpu, victim, ms: i64| body(cpu, "2097152", ms, &[("default", "victim", "c", victim, "4096", ms)]);
    let k = FakeKubelet::ok(
        "node2",
        &[
            &at("40", "0.5", 4_102_444_800_000),
            &at("50", "1", T0),
            &at("55", "1.5", T0 + 10_000),
        ],
    );
    let c = scraped_twice(cluster(Faulty::Kubelet(k), &[], defaults).await).await;
    assert_healthy_served(&c).await;
    assert_faulty_not_served(&c).await;
    assert_no_failures(&c).await;
    c.scrape().await;
    assert_eq!(node2(&c).await, Ok(node2_json("2021-10-03T09:36:50Z", "500m")));
    let victim = c.get(&format!("{API}/namespaces/default/pods/victim")).await;
    assert_eq!(
        mask_creation_timestamps(&victim.body),
        pod_json("victim", "2021-10-03T09:36:50Z", "50m") + "\n"
    );
}

/// Timestamps are nanoseconds in an i64 (1677–2262); a later kubelet time saturates at the
/// end of that range. Two saturated points are equal, so there is no window: node2 and its
/// pod are simply not served (never a made-up rate, never a zero or negative window), and it
/// is not a failed scrape: the body was valid.
#[tokio::test]
async fn timestamps_beyond_the_year_2262_give_no_window() {
    // 10000-01-01T00:00:00Z, then 10 s later.
    let c = scraped_twice(cluster(Faulty::Kubelet(clocked(253_402_300_800_000)), &[], defaults).await).await;
    assert_healthy_served(&c).await;
    assert_faulty_not_served(&c).await;
    assert_no_failures(&c).await;
}

#[tokio::test]
async fn timestamps_at_the_end_of_i64_milliseconds_give_no_window() {
    let at = |cpu, ms: i64| body(cpu, "2048", ms, &[("default", "victim", "c", cpu, "4096", ms)]);
    let k = FakeKubelet::ok("node2", &[&at("1", i64::MAX - 10_000), &at("2", i64::MAX)]);
    let c = scraped_twice(cluster(Faulty::Kubelet(k), &[], defaults).await).await;
    assert_healthy_served(&c).await;
    assert_faulty_not_served(&c).await;
    assert_no_failures(&c).await;
}

/// A timestamp that is not an i64 of milliseconds at all makes the body invalid.
#[tokio::test]
async fn timestamp_beyond_i64_milliseconds_is_counted_as_decode() {
    let k = FakeKubelet::ok(
        "node2",
        &["node_cpu_usage_seconds_total 1 99999999999999999999\nnode_memory_working_set_bytes 2048 99999999999999999999\n"],
    );
    failing_case(Faulty::Kubelet(k), defaults, "decode").await;
}

/// A node failing for a while and then recovering: the status counts the failures, then
/// resets on success; `/metrics` keeps the failures counted.
#[tokio::test]
async fn a_failing_node_recovers_and_its_status_resets() {
    let fail = KubeletReply {
        status: StatusCode::SERVICE_UNAVAILABLE,
        body: b"starting".to_vec(),
    };
    let ok = |text: String| KubeletReply {
        status: StatusCode::OK,
        body: text.into_bytes(),
    };
    let mut k = FakeKubelet::ok("node2", &[]);
    k.replies = vec![
        fail.clone(),
        fail,
        ok(body("50", "2097152", T0, &[])),
        ok(body("55", "2097152", T0 + 10_000, &[])),
    ];
    let c = scraped_twice(cluster(Faulty::Kubelet(k), &[], defaults).await).await;
    assert_failed_twice(&c, "http_status").await;
    c.scrape().await;
    // One point only: nothing to serve yet, but the scrape succeeded.
    assert_eq!(node2(&c).await, Err(StatusCode::NOT_FOUND));
    let state = c.scrape_status.get("node2").unwrap();
    assert_eq!((state.consecutive_failures, state.last_error), (0, None));
    assert!(state.last_success.is_some());
    c.scrape().await;
    assert_eq!(node2(&c).await, Ok(node2_json("2021-10-03T09:36:50Z", "500m")));
    assert_eq!(
        failure_lines(&c).await,
        ["metrics_server_kubelet_scrape_failures_total{reason=\"http_status\"} 2"]
    );
}

/// Log lines written while a test holds the guard.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines_with(&self, text: &str) -> usize {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(text))
            .count()
    }
}

/// Logged once per change of state: three 503s are one warning, a garbage body (another
/// reason) a second one, the recovery one info line, and the healthy node nothing.
#[tokio::test]
async fn failures_are_logged_once_per_change_of_state() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime has one thread, so the scrape tasks log through this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);
    // tracing caches whether a log line is wanted when it is first reached. With one
    // dispatcher registered it asks only the reaching thread's: a test on another thread
    // (no subscriber) reaching the scrape warning first would turn it off for this one too.
    // With a second dispatcher registered, it asks all of them.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let reply = |status, text: &str| KubeletReply {
        status,
        body: text.as_bytes().to_vec(),
    };
    let mut k = FakeKubelet::ok("node2", &[]);
    k.replies = vec![
        reply(StatusCode::SERVICE_UNAVAILABLE, "starting"),
        reply(StatusCode::SERVICE_UNAVAILABLE, "starting"),
        reply(StatusCode::SERVICE_UNAVAILABLE, "starting"),
        reply(StatusCode::OK, "garbage\n"),
        reply(StatusCode::OK, &body("50", "2097152", T0, &[])),
        reply(StatusCode::OK, &body("55", "2097152", T0 + 10_000, &[])),
    ];
    let c = cluster(Faulty::Kubelet(k), &[], defaults).await;
    for _ in 0..3 {
        c.scrape().await;
    }
    assert_eq!(captured.lines_with("Failed to scrape node"), 1);
    assert_eq!(captured.lines_with("reason=\"http_status\""), 1);
    c.scrape().await;
    assert_eq!(captured.lines_with("Failed to scrape node"), 2);
    assert_eq!(captured.lines_with("reason=\"decode\""), 1);
    c.scrape().await;
    c.scrape().await;
    assert_eq!(captured.lines_with("Failed to scrape node"), 2);
    assert_eq!(captured.lines_with("Scraping node recovered"), 1);
    assert_eq!(captured.lines_with("node1"), 0);
    assert_eq!(c.scrape_status.get("node2").unwrap().consecutive_failures, 0);
}
