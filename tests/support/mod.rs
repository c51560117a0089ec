//! Shared helpers for integration tests: fake kubelets over real TLS, the real server on
//! 127.0.0.1:0 with its own certificate, an HTTPS client, and `kubectl` as a real client.
#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses a different part of the helpers"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] fns: a failed step should fail the test loudly"
)]

pub mod fake_apiserver;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_server_rs::apiserver::TlsVersion;
use metrics_server_rs::app::{App, AppConfig, ServingConfig};
use metrics_server_rs::inventory::fixed::FixedInventory;
use metrics_server_rs::inventory::selector::LabelSelector;
use metrics_server_rs::inventory::{Labels, NodeAddress, NodeInfo, PodInfo, Snapshot};
use metrics_server_rs::kubelet::address::AddressResolver;
use metrics_server_rs::kubelet::client::{BearerToken, ClientConfig, Secret, ServerVerification};
use metrics_server_rs::sandbox::kubelet_server::{self, KubeletReply, Responder};
use metrics_server_rs::sandbox::kubelet_tls;
use metrics_server_rs::sandbox::pki::TestCa;
use metrics_server_rs::scrape::Scraper;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const TOKEN: &str = "test-kubelet-token";

/// A kubelet body from `../shared/fixtures/kubelet/`, byte for byte.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/kubelet")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// What one fake kubelet answers, request after request (the last answer repeats).
#[derive(Debug, Clone)]
pub struct FakeKubelet {
    pub node: String,
    pub node_labels: Labels,
    pub replies: Vec<KubeletReply>,
}

impl FakeKubelet {
    pub fn ok(node: &str, bodies: &[&str]) -> Self {
        FakeKubelet {
            node: node.to_owned(),
            node_labels: Labels::new(),
            replies: bodies
                .iter()
                .map(|b| KubeletReply {
                    status: StatusCode::OK,
                    body: b.as_bytes().to_vec(),
                })
                .collect(),
        }
    }

    pub fn failing(node: &str, status: StatusCode, body: &str) -> Self {
        FakeKubelet {
            node: node.to_owned(),
            node_labels: Labels::new(),
            replies: vec![KubeletReply {
                status,
                body: body.as_bytes().to_vec(),
            }],
        }
    }

    pub fn with_labels(mut self, pairs: &[(&str, &str)]) -> Self {
        self.node_labels = labels(pairs);
        self
    }
}

pub fn pod(namespace: &str, name: &str, node: &str, label_pairs: &[(&str, &str)]) -> PodInfo {
    PodInfo {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        labels: labels(label_pairs),
        node_name: node.to_owned(),
    }
}

/// The real server in front of fake kubelets; scrape cycles run when the test says so.
pub struct TestCluster {
    pub address: std::net::SocketAddr,
    pub scraper: Arc<Scraper>,
    pub inventory: Arc<FixedInventory>,
    pub kubelet_requests: Vec<Arc<AtomicUsize>>,
    pub cert_dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    kubelets: Vec<JoinHandle<()>>,
}

impl TestCluster {
    pub async fn start(kubelets: Vec<FakeKubelet>, pods: Vec<PodInfo>) -> TestCluster {
        Self::start_with(kubelets, pods, LabelSelector::default()).await
    }

    pub async fn start_with(kubelets: Vec<FakeKubelet>, pods: Vec<PodInfo>, node_selector: LabelSelector) -> Self {
        let ca = TestCa::new("test kubelet CA").unwrap();
        let leaf = ca.issue("kubelet", &["127.0.0.1"]).unwrap();
        let tls = kubelet_tls(&leaf.cert_pem, &leaf.key_pem).unwrap();
        let mut nodes = Vec::new();
        let mut counters = Vec::new();
        let mut tasks = Vec::new();
        for kubelet in kubelets {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let count = Arc::new(AtomicUsize::new(0));
            counters.push(count.clone());
            let replies = kubelet.replies.clone();
            let expected = format!("Bearer {TOKEN}");
            let respond: Responder = Arc::new(move |path, auth| {
                if path != "/metrics/resource" || auth != Some(expected.as_str()) {
                    return KubeletReply {
                        status: StatusCode::UNAUTHORIZED,
                        body: b"Unauthorized".to_vec(),
                    };
                }
                let n = count.fetch_add(1, Ordering::SeqCst);
                replies[n.min(replies.len() - 1)].clone()
            });
            tasks.push(tokio::spawn(kubelet_server::serve(listener, tls.clone(), respond)));
            nodes.push(NodeInfo {
                name: kubelet.node.clone(),
                labels: kubelet.node_labels.clone(),
                addresses: vec![NodeAddress {
                    address_type: "InternalIP".into(),
                    address: "127.0.0.1".into(),
                }],
                kubelet_status_port: port,
            });
        }
        let inventory = Arc::new(FixedInventory::new(Snapshot::from_parts(nodes, pods)));
        let cert_dir = tempfile::tempdir().unwrap();
        let config = AppConfig {
            resolution: Duration::from_secs(60),
            request_timeout: Duration::from_secs(5),
            max_concurrent_scrapes: 8,
            node_selector,
            addresses: AddressResolver::new(vec!["InternalIP".into()], 10250, true, false),
            kubelet: ClientConfig {
                verification: ServerVerification::CaPem(ca.cert_pem().into_bytes()),
                client_cert_pem: None,
                bearer_token: Some(BearerToken::Static(Secret::new(TOKEN))),
                request_timeout: Duration::from_secs(5),
                max_body_bytes: 1 << 20,
                idle_timeout: Duration::from_secs(120),
            },
            serving: ServingConfig {
                bind: "127.0.0.1:0".parse().unwrap(),
                cert_file: None,
                key_file: None,
                cert_dir: cert_dir.path().to_owned(),
                tls_min_version: TlsVersion::default(),
                tls_cipher_suites: None,
                http2: true,
                auth: None,
            },
        };
        let app = App::build(config, inventory.clone()).await.unwrap();
        let address = app.local_addr().unwrap();
        let scraper = app.scraper.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.serve(async move {
            let _ = rx.await;
        }));
        TestCluster {
            address,
            scraper,
            inventory,
            kubelet_requests: counters,
            cert_dir,
            shutdown: Some(tx),
            server: Some(server),
            kubelets: tasks,
        }
    }

    /// One full scrape cycle over every node; returns when every scrape has ended.
    pub async fn scrape(&self) {
        self.scraper.clone().run_cycle(Duration::ZERO).await;
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.address)
    }

    pub async fn get(&self, path: &str) -> Reply {
        https_request(
            self.address,
            &self.cert_dir.path().join("apiserver.crt"),
            Method::GET,
            path,
            None,
        )
        .await
    }

    pub async fn get_accept(&self, path: &str, accept: &str) -> Reply {
        https_request(
            self.address,
            &self.cert_dir.path().join("apiserver.crt"),
            Method::GET,
            path,
            Some(accept),
        )
        .await
    }

    pub async fn request(&self, method: Method, path: &str) -> Reply {
        https_request(
            self.address,
            &self.cert_dir.path().join("apiserver.crt"),
            method,
            path,
            None,
        )
        .await
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(30), server)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for k in &self.kubelets {
            k.abort();
        }
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}

/// A response: body as text (lossy, for JSON and plain text) and as bytes (for protobuf).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub headers: hyper::HeaderMap,
    pub body: String,
    pub bytes: Vec<u8>,
}

/// One HTTPS request over a fresh HTTP/1.1 connection, trusting the server's own certificate.
pub async fn https_request(
    address: std::net::SocketAddr,
    cert_file: &Path,
    method: Method,
    path: &str,
    accept: Option<&str>,
) -> Reply {
    let pem = std::fs::read(cert_file).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(address).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(connection);
    let mut request = Request::builder().method(method).uri(path).header("host", "localhost");
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = headers.get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        content_type,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        bytes: body.to_vec(),
    }
}

/// Runs the real `kubectl` against `server`, with no kubeconfig and a private cache.
/// `KUBECONFIG` points at a file that does not exist, so no user configuration leaks in.
pub fn kubectl(server: &str, cache_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("kubectl")
        .env("KUBECONFIG", cache_dir.join("no-kubeconfig"))
        .env("HOME", cache_dir)
        .arg(format!("--server={server}"))
        .arg("--insecure-skip-tls-verify")
        // Without credentials kubectl prompts for a username; the server ignores the token.
        .arg("--token=test")
        .arg(format!("--cache-dir={}", cache_dir.display()))
        .args(args)
        .output()
        .expect("kubectl must be on PATH")
}

/// `kubectl`'s table output as rows of whitespace-separated cells.
pub fn table_rows(stdout: &[u8]) -> Vec<Vec<String>> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter(|r| !r.is_empty())
        .collect()
}

/// Replaces the value of every `"creationTimestamp":"…"` (the response time, by upstream's
/// design) with `<now>` after checking it is an RFC 3339 UTC time, so the rest compares exactly.
pub fn mask_creation_timestamps(json: &str) -> String {
    let key = "\"creationTimestamp\":\"";
    let mut out = String::with_capacity(json.len());
    let mut rest = json;
    while let Some(i) = rest.find(key) {
        out.push_str(&rest[..i + key.len()]);
        let after = &rest[i + key.len()..];
        let end = after.find('"').unwrap();
        let value = &after[..end];
        assert!(
            value.len() == 20 && value.ends_with('Z') && value.as_bytes()[10] == b'T',
            "bad time {value}"
        );
        out.push_str("<now>");
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}
