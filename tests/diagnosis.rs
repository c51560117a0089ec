//! Self-diagnosis end to end: `/debug/scrapes` read with the real `kubectl get --raw`, and
//! `/readyz` explaining each way the Metrics API can be unavailable, then recovering to
//! upstream's exact body.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a failed step should fail the test loudly"
)]

mod support;

use hyper::StatusCode;
use metrics_server_rs::inventory::selector::LabelSelector;
use metrics_server_rs::sandbox::kubelet_server::KubeletReply;
use support::{kubectl, pod, FakeKubelet, TestCluster, FIRST, SECOND};

/// Upstream's verbose readyz body once ready (spec §3.10), byte for byte.
const READY_VERBOSE: &str = "[+]ping ok\n[+]log ok\n[+]poststarthook/max-in-flight-filter ok\n\
[+]poststarthook/storage-object-count-tracker-hook ok\n[+]metric-storage-ready ok\n\
[+]metric-informer-sync ok\n[+]metadata-informer-sync ok\n[+]shutdown ok\nreadyz check passed\n";

/// The failing readyz body with `line` as the storage check's line.
fn readyz_failing(storage_line: &str) -> String {
    format!(
        "[+]ping ok\n[+]log ok\n[+]poststarthook/max-in-flight-filter ok\n\
         [+]poststarthook/storage-object-count-tracker-hook ok\n{storage_line}\n\
         [+]metric-informer-sync ok\n[+]metadata-informer-sync ok\n[+]shutdown ok\nreadyz check failed\n"
    )
}

/// `kubectl get --raw <path>`: its stdout.
async fn kubectl_raw(c: &TestCluster, path: &'static str) -> String {
    let cache = tempfile::tempdir().unwrap();
    let url = c.url();
    let out = tokio::task::spawn_blocking(move || kubectl(&url, cache.path(), &["get", "--raw", path]))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl get --raw {path} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Replaces time and duration values (one key per line in the pretty JSON) with `<time>` and
/// `<duration>` after checking their shape, so the rest compares exactly.
fn mask_times(json: &str) -> String {
    let mut out = String::new();
    for line in json.lines() {
        let masked = ["lastSuccessTime", "time", "lastCycleStart"]
            .iter()
            .map(|k| (k, "<time>"))
            .chain(
                ["lastScrapeDuration", "lastCycleDuration"]
                    .iter()
                    .map(|k| (k, "<duration>")),
            )
            .find_map(|(key, mask)| {
                let prefix = format!("\"{key}\": \"");
                let start = line.find(&prefix)?;
                let value = line[start + prefix.len()..].split('"').next()?;
                if mask == "<time>" {
                    assert!(value.len() == 20 && value.ends_with('Z'), "bad time {value}");
                } else {
                    assert!(value.ends_with('s'), "bad duration {value}");
                }
                Some(line.replacen(value, mask, 1))
            });
        out.push_str(masked.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_scrapes_shows_every_nodes_last_scrape_through_kubectl() {
    let c = TestCluster::start(
        vec![
            FakeKubelet::ok("node1", &[FIRST, SECOND]),
            FakeKubelet::failing("node2", StatusCode::INTERNAL_SERVER_ERROR, "secret kubelet body"),
            FakeKubelet::ok("node3", &[FIRST]).with_cert_names(&["not-this-node.example"]),
        ],
        vec![pod("default", "web-1", "node1", &[])],
    )
    .await;
    c.scrape().await;
    c.scrape().await;
    let url = |node: &str| format!("https://{}/metrics/resource", c.kubelets.get(node).address);
    let tls_message = c.scrape_status.get("node3").unwrap().last_error.unwrap().1;
    assert!(
        tls_message.starts_with("TLS handshake with kubelet failed"),
        "{tls_message}"
    );

    let body = mask_times(&kubectl_raw(&c, "/debug/scrapes").await);
    let expected = format!(
        r#"{{
  "summary": {{
    "nodes": 3,
    "healthy": 1,
    "failing": 2,
    "pending": 0,
    "failingByReason": {{
      "http_status": 1,
      "tls": 1
    }},
    "resolution": "1m0s",
    "nodeSelector": "",
    "cycles": 2,
    "lastCycleStart": "<time>",
    "lastCycleDuration": "<duration>",
    "inventorySynced": true,
    "inventoryError": null,
    "storeReady": true
  }},
  "nodes": [
    {{
      "name": "node1",
      "state": "healthy",
      "address": "{node1}",
      "lastSuccessTime": "<time>",
      "lastError": null,
      "consecutiveFailures": 0,
      "pods": 2,
      "lastScrapeDuration": "<duration>"
    }},
    {{
      "name": "node2",
      "state": "failing",
      "address": "{node2}",
      "lastSuccessTime": null,
      "lastError": {{
        "reason": "http_status",
        "message": "request failed, status: \"500 Internal Server Error\"",
        "time": "<time>"
      }},
      "consecutiveFailures": 2,
      "pods": null,
      "lastScrapeDuration": "<duration>"
    }},
    {{
      "name": "node3",
      "state": "failing",
      "address": "{node3}",
      "lastSuccessTime": null,
      "lastError": {{
        "reason": "tls",
        "message": {tls},
        "time": "<time>"
      }},
      "consecutiveFailures": 2,
      "pods": null,
      "lastScrapeDuration": "<duration>"
    }}
  ]
}}
"#,
        node1 = url("node1"),
        node2 = url("node2"),
        node3 = url("node3"),
        tls = serde_json::to_string(&tls_message).unwrap(),
    );
    assert_eq!(body, expected);
    // No kubelet body or credential leaks into the document.
    assert!(!body.contains("secret kubelet body") && !body.contains(support::TOKEN));

    // `?node=` keeps one node and the whole summary.
    let one: serde_json::Value = serde_json::from_str(&kubectl_raw(&c, "/debug/scrapes?node=node2").await).unwrap();
    let names: Vec<&str> = one["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["node2"]);
    assert_eq!(one["summary"]["nodes"], 3);

    let index = c.get("/").await.body;
    assert!(index.contains("\"/debug/scrapes\""), "{index}");
    let post = c.request(hyper::Method::POST, "/debug/scrapes").await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_explains_each_state_then_recovers_to_upstreams_exact_body() {
    let mut kubelet = FakeKubelet::ok("node1", &[FIRST, FIRST, SECOND]);
    kubelet.replies[0] = KubeletReply {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: b"boom".to_vec(),
    };
    let c = TestCluster::start(
        vec![kubelet],
        vec![
            pod("default", "web-1", "node1", &[]),
            pod("kube-system", "coredns-1", "node1", &[]),
        ],
    )
    .await;
    let storage_line = "[-]metric-storage-ready failed: ";
    let expect = |reason: &str| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            readyz_failing(&format!("{storage_line}{reason}")),
        )
    };
    let readyz = || async {
        let r = c.get("/readyz?verbose").await;
        (r.status, r.body)
    };

    assert_eq!(
        readyz().await,
        expect("no metrics to serve: waiting for the first scrape of 1 node")
    );
    c.scrape().await;
    let failing = "no metrics to serve: every scrape is failing: 1 node http_status \
                   (request failed, status: \"500 Internal Server Error\"), see /debug/scrapes";
    assert_eq!(readyz().await, expect(failing));
    // Without `verbose`, the failure body is the same (kube's rule); one check shows alone.
    assert_eq!(c.get("/readyz").await.body, expect(failing).1);
    let one = c.get("/readyz/metric-storage-ready").await;
    assert_eq!(
        (one.status, one.body),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal server error: {failing}\n")
        )
    );
    c.scrape().await;
    assert_eq!(
        readyz().await,
        expect("no metrics to serve: waiting for the second scrape of 1 node")
    );
    c.scrape().await;
    assert_eq!(readyz().await, (StatusCode::OK, READY_VERBOSE.to_owned()));
    assert_eq!(c.get("/readyz").await.body, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_names_a_node_selector_that_matches_nothing() {
    let c = TestCluster::start_with(
        vec![FakeKubelet::ok("node1", &[FIRST, SECOND])],
        vec![],
        LabelSelector::parse("pool=gpu").unwrap(),
    )
    .await;
    c.scrape().await;
    let r = c.get("/readyz?verbose").await;
    assert_eq!(
        (r.status, r.body),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            readyz_failing(
                "[-]metric-storage-ready failed: no metrics to serve: no nodes in the inventory match \
                 the node selector \"pool=gpu\" (1 node listed)"
            )
        )
    );
    let report: serde_json::Value = serde_json::from_str(&c.get("/debug/scrapes").await.body).unwrap();
    assert_eq!(report["summary"]["nodeSelector"], "pool=gpu");
    assert_eq!(report["nodes"], serde_json::json!([]));
}

/// `kubectl get --raw <path> --token=<token>`: exit success, stdout, stderr.
async fn kubectl_as(url: String, token: &'static str, path: &'static str) -> (bool, String, String) {
    let cache = tempfile::tempdir().unwrap();
    let token = format!("--token={token}");
    let out = tokio::task::spawn_blocking(move || kubectl(&url, cache.path(), &["get", "--raw", path, &token]))
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_scrapes_is_authorized_like_any_other_path() {
    use std::sync::Arc;

    use metrics_server_rs::apiserver::{Delegation, DelegationOptions};
    use metrics_server_rs::app::App;
    use metrics_server_rs::inventory::fixed::FixedInventory;
    use serde_json::Value;
    use support::fake_apiserver::{Access, FakeApiServer};

    let tokens: &[(&str, &str, &[&str])] = &[
        ("alice-token", "alice", &["system:authenticated"]),
        ("bob-token", "bob", &["system:authenticated"]),
    ];
    let policy = Arc::new(|spec: &Value| match spec["user"].as_str() {
        Some("alice") => Access::Allow,
        _ => Access::NoOpinion,
    });
    let fake = FakeApiServer::start(tokens, policy, None).await;
    let mut options = DelegationOptions::default();
    options.trust.skip_lookup = true;
    let clock: metrics_server_rs::apiserver::cache::Clock = Arc::new(std::time::Instant::now);
    let delegation = Delegation::start(&options, fake.client(), fake.client(), clock)
        .await
        .unwrap();
    let ca = metrics_server_rs::sandbox::pki::TestCa::new("kubelet CA").unwrap();
    let server = support::ServerOptions::trusting(&ca);
    let cert_dir = tempfile::tempdir().unwrap();
    let config = metrics_server_rs::app::AppConfig {
        resolution: std::time::Duration::from_secs(60),
        request_timeout: std::time::Duration::from_secs(5),
        max_concurrent_scrapes: 1,
        node_selector: server.node_selector,
        addresses: server.addresses,
        kubelet: server.kubelet,
        serving: metrics_server_rs::app::ServingConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            cert_file: None,
            key_file: None,
            cert_dir: cert_dir.path().to_owned(),
            tls_min_version: Default::default(),
            tls_cipher_suites: None,
            http2: true,
            auth: Some(Arc::new(delegation)),
            limits: Default::default(),
        },
    };
    let app = App::build(config, Arc::new(FixedInventory::default())).await.unwrap();
    let address = app.local_addr().unwrap();
    let cert = app.serving_cert_file().to_owned();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.serve(async move {
        let _ = stopped.await;
    }));
    let url = format!("https://{address}");

    let (ok, body, _) = kubectl_as(url.clone(), "alice-token", "/debug/scrapes").await;
    assert!(ok && body.contains("\"summary\""), "{body}");
    let review = fake.access_reviews().last().cloned().unwrap();
    assert_eq!(
        review["nonResourceAttributes"],
        serde_json::json!({"path": "/debug/scrapes", "verb": "get"})
    );
    assert_eq!(
        kubectl_as(url.clone(), "bob-token", "/debug/scrapes").await,
        (
            false,
            String::new(),
            "Error from server (Forbidden): forbidden: User \"bob\" cannot get path \"/debug/scrapes\"\n".to_owned()
        )
    );
    let (ok, _, stderr) = kubectl_as(url, "no-such-token", "/debug/scrapes").await;
    assert!(!ok && stderr.contains("(Unauthorized)"), "{stderr}");
    // Without credentials the caller is system:anonymous, whom the policy does not allow.
    let anonymous = support::https_request(address, &cert, hyper::Method::GET, "/debug/scrapes", None).await;
    assert_eq!(anonymous.status, StatusCode::FORBIDDEN);
    assert_eq!(
        anonymous.body,
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"forbidden: User \
         \\\"system:anonymous\\\" cannot get path \\\"/debug/scrapes\\\"\",\"reason\":\"Forbidden\",\"details\":{},\"code\":403}\n"
    );
}
