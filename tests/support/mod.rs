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
pub mod generic_server;
pub mod kube_api;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_server_rs::apiserver::TlsVersion;
use metrics_server_rs::app::{App, AppConfig, ServingConfig};
use metrics_server_rs::inventory::fixed::FixedInventory;
use metrics_server_rs::inventory::selector::LabelSelector;
use metrics_server_rs::inventory::{Inventory, Labels, NodeAddress, NodeInfo, PodInfo, Snapshot};
use metrics_server_rs::kubelet::address::AddressResolver;
use metrics_server_rs::kubelet::client::{BearerToken, ClientConfig, Secret, ServerVerification};
use metrics_server_rs::sandbox::kubelet_server::{self, KubeletReply, Responder};
use metrics_server_rs::sandbox::kubelet_tls;
use metrics_server_rs::sandbox::pki::TestCa;
use metrics_server_rs::scrape::status::ScrapeStatus;
use metrics_server_rs::scrape::Scraper;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub const TOKEN: &str = "test-kubelet-token";

/// A kubelet (node1) with web-1 (app, istio-proxy) and coredns-1, at 1700000000000 ms.
pub const FIRST: &str = "node_cpu_usage_seconds_total 100 1700000000000
node_memory_working_set_bytes 2147483648 1700000000000
container_cpu_usage_seconds_total{container=\"app\",namespace=\"default\",pod=\"web-1\"} 10 1700000000000
container_memory_working_set_bytes{container=\"app\",namespace=\"default\",pod=\"web-1\"} 104857600 1700000000000
container_cpu_usage_seconds_total{container=\"istio-proxy\",namespace=\"default\",pod=\"web-1\"} 1 1700000000000
container_memory_working_set_bytes{container=\"istio-proxy\",namespace=\"default\",pod=\"web-1\"} 20971520 1700000000000
container_cpu_usage_seconds_total{container=\"coredns\",namespace=\"kube-system\",pod=\"coredns-1\"} 4.75 1700000000000
container_memory_working_set_bytes{container=\"coredns\",namespace=\"kube-system\",pod=\"coredns-1\"} 1.253376e+07 1700000000000
";
/// 10 s later (1700000010 = 2023-11-14T22:13:30Z): node 2 cores, app 250m, istio-proxy 25m,
/// coredns 500m; memory unchanged.
pub const SECOND: &str = "node_cpu_usage_seconds_total 120 1700000010000
node_memory_working_set_bytes 2147483648 1700000010000
container_cpu_usage_seconds_total{container=\"app\",namespace=\"default\",pod=\"web-1\"} 12.5 1700000010000
container_memory_working_set_bytes{container=\"app\",namespace=\"default\",pod=\"web-1\"} 104857600 1700000010000
container_cpu_usage_seconds_total{container=\"istio-proxy\",namespace=\"default\",pod=\"web-1\"} 1.25 1700000010000
container_memory_working_set_bytes{container=\"istio-proxy\",namespace=\"default\",pod=\"web-1\"} 20971520 1700000010000
container_cpu_usage_seconds_total{container=\"coredns\",namespace=\"kube-system\",pod=\"coredns-1\"} 9.75 1700000010000
container_memory_working_set_bytes{container=\"coredns\",namespace=\"kube-system\",pod=\"coredns-1\"} 1.253376e+07 1700000010000
";

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

/// One fake kubelet: what it answers, request after request (the last answer repeats), where
/// it listens, which token it demands, and which names its serving certificate carries.
#[derive(Debug, Clone)]
pub struct FakeKubelet {
    pub node: String,
    pub node_labels: Labels,
    pub replies: Vec<KubeletReply>,
    /// 127.0.0.1 unless a test needs another loopback address (all of 127/8 reaches lo).
    pub ip: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// The bearer token demanded; `None` accepts any. Every `Authorization` seen is recorded.
    pub token: Option<String>,
    /// Names in the serving certificate (IP literals become IP SANs); empty means `ip`.
    pub cert_names: Vec<String>,
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
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            token: Some(TOKEN.to_owned()),
            cert_names: Vec::new(),
        }
    }

    pub fn failing(node: &str, status: StatusCode, body: &str) -> Self {
        let mut kubelet = Self::ok(node, &[body]);
        kubelet.replies[0].status = status;
        kubelet
    }

    pub fn with_labels(mut self, pairs: &[(&str, &str)]) -> Self {
        self.node_labels = labels(pairs);
        self
    }

    /// Listens on `ip:port` (port 0: any free one).
    pub fn at(mut self, ip: &str, port: u16) -> Self {
        self.ip = ip.parse().unwrap();
        self.port = port;
        self
    }

    pub fn accepting_any_token(mut self) -> Self {
        self.token = None;
        self
    }

    pub fn with_cert_names(mut self, names: &[&str]) -> Self {
        self.cert_names = names.iter().map(|n| (*n).to_owned()).collect();
        self
    }
}

/// A fake kubelet that is listening.
#[derive(Debug, Clone)]
pub struct RunningKubelet {
    pub node: String,
    pub node_labels: Labels,
    pub address: SocketAddr,
    /// Authorised `/metrics/resource` requests answered.
    pub requests: Arc<AtomicUsize>,
    /// The same count, to wait on.
    answered: watch::Sender<usize>,
    /// Every `Authorization` header received, in order.
    pub authorizations: Arc<Mutex<Vec<String>>>,
}

impl RunningKubelet {
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn authorizations(&self) -> Vec<String> {
        self.authorizations.lock().unwrap().clone()
    }

    /// Waits (guarded by a timeout) until `n` requests have been answered.
    pub async fn wait_for_requests(&self, n: usize) {
        let mut answered = self.answered.subscribe();
        let waited = tokio::time::timeout(Duration::from_secs(20), answered.wait_for(|count| *count >= n)).await;
        assert!(
            matches!(waited, Ok(Ok(_))),
            "{} answered {} of {n} requests",
            self.node,
            self.requests()
        );
    }
}

/// Fake kubelets over TLS with certificates from one CA; stopped when dropped.
#[derive(Debug, Default)]
pub struct Kubelets {
    pub running: Vec<RunningKubelet>,
    tasks: Vec<JoinHandle<()>>,
}

impl Kubelets {
    pub async fn start(ca: &TestCa, specs: Vec<FakeKubelet>) -> Kubelets {
        let mut kubelets = Kubelets::default();
        kubelets.add(ca, specs).await;
        kubelets
    }

    /// Starts more kubelets (e.g. on a port only known once the first ones listen).
    pub async fn add(&mut self, ca: &TestCa, specs: Vec<FakeKubelet>) {
        for kubelet in specs {
            let names: Vec<String> = if kubelet.cert_names.is_empty() {
                vec![kubelet.ip.to_string()]
            } else {
                kubelet.cert_names.clone()
            };
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let leaf = ca.issue("kubelet", &names).unwrap();
            let tls = kubelet_tls(&leaf.cert_pem, &leaf.key_pem).unwrap();
            let listener = TcpListener::bind(SocketAddr::new(kubelet.ip, kubelet.port))
                .await
                .unwrap_or_else(|e| panic!("binding a fake kubelet on {}:{}: {e}", kubelet.ip, kubelet.port));
            let address = listener.local_addr().unwrap();
            let requests = Arc::new(AtomicUsize::new(0));
            let authorizations = Arc::new(Mutex::new(Vec::new()));
            let answered = watch::Sender::new(0);
            let (count, seen, signal) = (requests.clone(), authorizations.clone(), answered.clone());
            let replies = kubelet.replies.clone();
            let expected = kubelet.token.as_ref().map(|t| format!("Bearer {t}"));
            let respond: Responder = Arc::new(move |path, auth| {
                seen.lock().unwrap().push(auth.unwrap_or_default().to_owned());
                let authorised = match &expected {
                    Some(expected) => auth == Some(expected.as_str()),
                    None => auth.is_some_and(|a| a.starts_with("Bearer ")),
                };
                if path != "/metrics/resource" || !authorised {
                    return KubeletReply {
                        status: StatusCode::UNAUTHORIZED,
                        body: b"Unauthorized".to_vec(),
                    };
                }
                let n = count.fetch_add(1, Ordering::SeqCst);
                signal.send_replace(n + 1);
                replies[n.min(replies.len() - 1)].clone()
            });
            self.tasks
                .push(tokio::spawn(kubelet_server::serve(listener, tls, respond)));
            self.running.push(RunningKubelet {
                node: kubelet.node,
                node_labels: kubelet.node_labels,
                address,
                requests,
                answered,
                authorizations,
            });
        }
    }

    pub fn get(&self, node: &str) -> &RunningKubelet {
        self.running
            .iter()
            .find(|k| k.node == node)
            .unwrap_or_else(|| panic!("no fake kubelet for {node}"))
    }
}

impl Drop for Kubelets {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

pub fn pod(namespace: &str, name: &str, node: &str, label_pairs: &[(&str, &str)]) -> PodInfo {
    PodInfo {
        namespace: namespace.into(),
        name: name.into(),
        labels: labels(label_pairs),
        node_name: node.into(),
    }
}

/// How the server under test reaches kubelets, and which nodes it scrapes.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub node_selector: LabelSelector,
    pub addresses: AddressResolver,
    pub kubelet: ClientConfig,
}

impl ServerOptions {
    /// Kubelets at their InternalIP and node status port, verified against `ca`, sent [`TOKEN`].
    pub fn trusting(ca: &TestCa) -> Self {
        ServerOptions {
            node_selector: LabelSelector::default(),
            addresses: AddressResolver::new(vec!["InternalIP".into()], 10250, true, false),
            kubelet: ClientConfig {
                verification: ServerVerification::CaPem(ca.cert_pem().into_bytes()),
                client_cert_pem: None,
                bearer_token: Some(BearerToken::Static(Secret::new(TOKEN))),
                request_timeout: Duration::from_secs(5),
                max_body_bytes: 1 << 20,
                idle_timeout: Duration::from_secs(120),
            },
        }
    }
}

/// The real server in front of fake kubelets; scrape cycles run when the test says so. The
/// inventory is a [`FixedInventory`] the test sets, or any other (the cluster inventory).
pub struct TestCluster<I = FixedInventory> {
    pub address: SocketAddr,
    pub scraper: Arc<Scraper>,
    pub scrape_status: Arc<ScrapeStatus>,
    pub inventory: Arc<I>,
    pub kubelets: Kubelets,
    pub kubelet_requests: Vec<Arc<AtomicUsize>>,
    pub cert_dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestCluster<FixedInventory> {
    pub async fn start(kubelets: Vec<FakeKubelet>, pods: Vec<PodInfo>) -> Self {
        Self::start_with(kubelets, pods, LabelSelector::default()).await
    }

    /// Nodes are the kubelets, at 127.0.0.1 with their port as the node status port.
    pub async fn start_with(kubelets: Vec<FakeKubelet>, pods: Vec<PodInfo>, node_selector: LabelSelector) -> Self {
        let ca = TestCa::new("test kubelet CA").unwrap();
        let kubelets = Kubelets::start(&ca, kubelets).await;
        let nodes = kubelets.running.iter().map(|k| NodeInfo {
            name: k.node.clone(),
            labels: k.node_labels.clone(),
            addresses: vec![NodeAddress {
                address_type: "InternalIP".into(),
                address: k.address.ip().to_string(),
            }],
            kubelet_status_port: k.address.port(),
        });
        let inventory = Arc::new(FixedInventory::new(Snapshot::from_parts(nodes, pods)));
        let options = ServerOptions {
            node_selector,
            ..ServerOptions::trusting(&ca)
        };
        Self::serve(kubelets, inventory, options).await
    }
}

impl<I: Inventory> TestCluster<I> {
    /// Builds the real server on 127.0.0.1:0 over `inventory` and serves it (no scrape loop).
    pub async fn serve(kubelets: Kubelets, inventory: Arc<I>, options: ServerOptions) -> Self {
        Self::launch(kubelets, inventory, options, None).await
    }

    /// Like [`serve`](Self::serve), but with the real scrape loop (`App::run_after`): its first
    /// cycle starts when `scrape_from` resolves, the next one a resolution (60 s) later.
    pub async fn run_after(
        kubelets: Kubelets,
        inventory: Arc<I>,
        options: ServerOptions,
        scrape_from: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        Self::launch(kubelets, inventory, options, Some(Box::pin(scrape_from))).await
    }

    async fn launch(
        kubelets: Kubelets,
        inventory: Arc<I>,
        options: ServerOptions,
        scrape_from: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    ) -> Self {
        let cert_dir = tempfile::tempdir().unwrap();
        let config = AppConfig {
            resolution: Duration::from_secs(60),
            request_timeout: Duration::from_secs(5),
            max_concurrent_scrapes: 8,
            node_selector: options.node_selector,
            addresses: options.addresses,
            kubelet: options.kubelet,
            serving: ServingConfig {
                bind: "127.0.0.1:0".parse().unwrap(),
                cert_file: None,
                key_file: None,
                cert_dir: cert_dir.path().to_owned(),
                tls_min_version: TlsVersion::default(),
                tls_cipher_suites: None,
                http2: true,
                auth: None,
                limits: Default::default(),
            },
        };
        let app = App::build(config, inventory.clone()).await.unwrap();
        let address = app.local_addr().unwrap();
        let scraper = app.scraper.clone();
        let scrape_status = app.scrape_status.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = rx.await;
        };
        let server = match scrape_from {
            None => tokio::spawn(app.serve(shutdown)),
            Some(scrape_from) => tokio::spawn(app.run_after(scrape_from, shutdown)),
        };
        TestCluster {
            address,
            scraper,
            scrape_status,
            inventory,
            kubelet_requests: kubelets.running.iter().map(|k| k.requests.clone()).collect(),
            kubelets,
            cert_dir,
            shutdown: Some(tx),
            server: Some(server),
        }
    }
}

impl<I> TestCluster<I> {
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

impl<I> Drop for TestCluster<I> {
    fn drop(&mut self) {
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
    address: SocketAddr,
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
