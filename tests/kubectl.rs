//! The real `kubectl` (v1.32) as a client: `top pod` (protobuf), `get` (Table), `explain`
//! (OpenAPI v3), `version`, `get --raw`, and the README's sandbox
//! command end to end, including a graceful SIGTERM.
#![allow(
    clippy::unwrap_used,
    reason = "helpers outside #[test] fns: a failed step should fail the test loudly"
)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use metrics_server_rs::sandbox::fleet::Fleet;
use support::{kubectl, mask_creation_timestamps, pod, table_rows, FakeKubelet, TestCluster, FIRST, SECOND};

async fn cluster() -> TestCluster {
    let c = TestCluster::start(
        vec![FakeKubelet::ok("node1", &[FIRST, SECOND])],
        vec![
            pod("default", "web-1", "node1", &[("app", "web")]),
            pod("kube-system", "coredns-1", "node1", &[]),
        ],
    )
    .await;
    c.scrape().await;
    c.scrape().await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_top_pod_shows_rates_and_summed_memory() {
    let c = cluster().await;
    let out = run_kubectl(&c, &["top", "pod", "-A"]).await;
    // web-1: 250m + 25m, 100Mi + 20Mi; coredns: 500m, 12533760 B = 11.95Mi, which kubectl floors.
    assert_eq!(
        table_rows(&out.stdout),
        [
            vec!["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"],
            vec!["default", "web-1", "275m", "120Mi"],
            vec!["kube-system", "coredns-1", "500m", "11Mi"],
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_top_pod_containers_and_selectors() {
    let c = cluster().await;
    let out = run_kubectl(&c, &["top", "pod", "-n", "default", "-l", "app=web", "--containers"]).await;
    assert_eq!(
        table_rows(&out.stdout),
        [
            vec!["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"],
            vec!["web-1", "app", "250m", "100Mi"],
            vec!["web-1", "istio-proxy", "25m", "20Mi"],
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_raw_sees_the_same_json_as_a_direct_client() {
    let c = cluster().await;
    let direct = c.get("/apis/metrics.k8s.io/v1beta1/nodes/node1").await.body;
    let out = run_kubectl(&c, &["get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/node1"]).await;
    let via_kubectl = String::from_utf8(out.stdout).unwrap();
    // kubectl prints the body as served, trailing newline included.
    assert_eq!(
        mask_creation_timestamps(&via_kubectl),
        mask_creation_timestamps(&direct)
    );
    // 20 core-s over 10 s.
    assert!(direct.contains(r#""usage":{"cpu":"2","memory":"2Gi"}"#), "{direct}");
}

/// The README's first command, for real: the binary in sandbox mode, read by kubectl, then
/// stopped with SIGTERM, which must drain and exit 0.
#[test]
fn sandbox_binary_serves_kubectl_top_and_stops_cleanly_on_sigterm() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cert_dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_metrics-server"))
        .args(["--sandbox", "--sandbox-nodes=2", "--sandbox-pods-per-node=3"])
        .arg(format!("--secure-port={port}"))
        .arg(format!("--cert-dir={}", cert_dir.path().display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The banner tells how to query; it is printed once the listener is bound.
    let mut banner = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    while !banner.contains("curl -k") {
        assert!(
            stdout.read_line(&mut banner).unwrap() > 0,
            "sandbox exited early: {banner}"
        );
    }
    // The banner's own command, verbatim: kubectl with the kubeconfig the sandbox wrote, which
    // verifies the server's certificate.
    let command = banner
        .lines()
        .map(str::trim)
        .find(|l| l.ends_with("top pod -A"))
        .unwrap();
    let kubeconfig = command.split_whitespace().nth(1).unwrap();
    assert!(kubeconfig.starts_with("--kubeconfig="), "{banner}");
    let run = |args: &[&str]| {
        Command::new("kubectl")
            .env("HOME", cert_dir.path())
            .arg(kubeconfig)
            .args(args)
            .output()
            .unwrap()
    };

    // Ready after two scrapes: the first is immediate, the second one resolution (10 s) later.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = run(&["get", "--raw", "/readyz"]);
        if ready.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "sandbox never became ready");
        // Poll interval between readiness probes; the deadline above is the failure guard.
        std::thread::park_timeout(Duration::from_millis(500));
    }
    // Every pod, once each node has two points: wait for the full list, not just readiness.
    let fleet = Fleet::generate(2, 3, 0x5eed, 0.0);
    let pods_expected = fleet.nodes.iter().map(|n| n.pods.len()).sum::<usize>();
    let out = loop {
        let out = run(&["top", "pod", "-A"]);
        assert!(
            out.status.success(),
            "kubectl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if table_rows(&out.stdout).len() == pods_expected + 1 || Instant::now() > deadline {
            break out;
        }
        std::thread::park_timeout(Duration::from_millis(500));
    };
    let rows = table_rows(&out.stdout);
    let mut expected: Vec<(String, String)> = fleet
        .nodes
        .iter()
        .flat_map(|n| n.pods.iter().map(|p| (p.namespace.clone(), p.name.clone())))
        .collect();
    expected.sort();
    let got: Vec<(String, String)> = rows[1..].iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    assert_eq!(got, expected);
    for row in &rows[1..] {
        assert!(row[2].ends_with('m') && row[2] != "0m", "cpu {row:?}");
        assert!(row[3].ends_with("Mi") && row[3] != "0Mi", "memory {row:?}");
    }

    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}

/// Runs kubectl against the cluster in a private cache directory.
async fn run_kubectl(c: &TestCluster, args: &'static [&'static str]) -> std::process::Output {
    let cache = tempfile::tempdir().unwrap();
    let url = c.url();
    let out = tokio::task::spawn_blocking(move || kubectl(&url, cache.path(), args))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_nodemetrics_prints_upstreams_table_columns() {
    let c = cluster().await;
    let out = run_kubectl(&c, &["get", "nodemetrics"]).await;
    assert_eq!(
        table_rows(&out.stdout),
        [
            vec!["NAME", "CPU", "MEMORY", "WINDOW"],
            vec!["node1", "2", "2Gi", "10s"]
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_podmetrics_across_namespaces_filters_by_label() {
    let c = cluster().await;
    let out = run_kubectl(&c, &["get", "podmetrics", "-A", "-l", "app=web"]).await;
    assert_eq!(
        table_rows(&out.stdout),
        [
            vec!["NAMESPACE", "NAME", "CPU", "MEMORY", "WINDOW"],
            vec!["default", "web-1", "275m", "120Mi", "10s"]
        ]
    );
    let all = run_kubectl(&c, &["get", "podmetrics.v1beta1.metrics.k8s.io", "-A"]).await;
    assert_eq!(
        table_rows(&all.stdout)[1..],
        [
            vec!["default", "web-1", "275m", "120Mi", "10s"],
            vec!["kube-system", "coredns-1", "500m", "12240Ki", "10s"]
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_reads_the_openapi_v3_schema() {
    let c = cluster().await;
    let out = run_kubectl(&c, &["explain", "podmetrics", "--api-version=metrics.k8s.io/v1beta1"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "KIND:       PodMetrics",
        "VERSION:    v1beta1",
        "Resource usage of a pod, per container.",
        "containers\t<[]ContainerMetrics>",
        "metadata\t<ObjectMeta>",
        "timestamp\t<string> -required-",
        "window\t<string> -required-",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let field = run_kubectl(&c, &["explain", "nodemetrics.usage"]).await;
    let text = String::from_utf8_lossy(&field.stdout);
    assert!(text.contains("VERSION:    v1\n"), "{text}");
    // Quantity is a string schema, so kubectl shows the map by its value type.
    assert!(text.contains("FIELD: usage <map[string]string>"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_version_reads_the_servers_own_version() {
    let c = cluster().await;
    let out = run_kubectl(&c, &["version"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(concat!("Server Version: v", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
}

/// kubectl 1.32 finds the API through aggregated discovery and reads `top` as protobuf; its
/// `-v=8` log shows both answers' content types (the rows prove the protobuf decoded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_top_reads_protobuf_found_through_aggregated_discovery() {
    let c = cluster().await;
    let out = run_kubectl(&c, &["top", "pod", "-A", "-v=8"]).await;
    assert_eq!(
        table_rows(&out.stdout),
        [
            vec!["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"],
            vec!["default", "web-1", "275m", "120Mi"],
            vec!["kube-system", "coredns-1", "500m", "11Mi"],
        ]
    );
    let log = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "Accept: application/vnd.kubernetes.protobuf, */*",
        "Content-Type: application/vnd.kubernetes.protobuf",
        "Content-Type: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
    ] {
        assert!(log.contains(expected), "missing {expected:?} in:\n{log}");
    }
}
