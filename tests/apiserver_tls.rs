//! The generic apiserver over real TLS on loopback: HTTP/1.1 and HTTP/2 by ALPN, exact health
//! bodies, graceful shutdown, and the serving certificate kept in `--cert-dir`.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a failed step should fail the test loudly"
)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::http::request::Parts;
use hyper::{Method, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use metrics_server_rs::apiserver::{
    load_or_generate, server_config, ApiGroup, ApiResource, ApiVersion, CertifiedKeyPair, Discovery, Handler,
    HealthChecks, Limits, MetricsText, Response, Server, TlsVersion,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Guards against a hang; never stands in for a signal.
const GUARD: Duration = Duration::from_secs(20);

const READYZ_VERBOSE: &str = "[+]ping ok
[+]log ok
[+]poststarthook/max-in-flight-filter ok
[+]poststarthook/storage-object-count-tracker-hook ok
[+]metric-storage-ready ok
[+]metric-informer-sync ok
[+]metadata-informer-sync ok
[+]shutdown ok
readyz check passed
";

/// The application's side: nothing beyond the generic endpoints.
struct NoApi;

impl Handler for NoApi {
    fn handle(&self, _req: &Parts) -> Option<Response> {
        None
    }
}

struct Running {
    addr: std::net::SocketAddr,
    pair: CertifiedKeyPair,
    stop: oneshot::Sender<()>,
    served: JoinHandle<std::io::Result<()>>,
    _certs: tempfile::TempDir,
}

async fn start() -> Running {
    start_with(Limits::default()).await
}

async fn start_with(limits: Limits) -> Running {
    let certs = tempfile::tempdir().unwrap();
    let pair = load_or_generate(None, None, certs.path(), &[]).unwrap();
    let tls = server_config(&pair, TlsVersion::Tls12, true).unwrap();
    let health = HealthChecks::builder()
        .readyz("metric-storage-ready", || Ok(()))
        .readyz("metric-informer-sync", || Ok(()))
        .livez("metric-collection-timely", || Ok(()))
        .all("metadata-informer-sync", || Ok(()))
        .build()
        .unwrap();
    let group = ApiGroup {
        name: "metrics.k8s.io".into(),
        versions: vec![ApiVersion {
            version: "v1beta1".into(),
            resources: vec![ApiResource {
                name: "nodes".into(),
                singular_name: String::new(),
                namespaced: false,
                kind: "NodeMetrics".into(),
                verbs: vec!["get".into(), "list".into()],
            }],
        }],
        preferred_version: "v1beta1".into(),
    };
    let metrics: MetricsText = Arc::new(String::new);
    let server = Server::new(
        health,
        Discovery::new(vec![group]).unwrap(),
        "{}",
        metrics,
        Arc::new(NoApi),
    )
    .with_limits(limits);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(Arc::new(server).serve(listener, tls, async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        pair,
        stop,
        served,
        _certs: certs,
    }
}

async fn tls_connect(run: &Running, alpn: &[u8]) -> TlsStream<TcpStream> {
    let mut roots = RootCertStore::empty();
    roots.add(run.pair.cert_chain()[0].clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(run.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
    tls
}

/// Sends requests on one connection; the connection itself runs as a task.
enum Client {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

async fn client(run: &Running, h2: bool) -> (Client, JoinHandle<()>) {
    if h2 {
        let io = TokioIo::new(tls_connect(run, b"h2").await);
        let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        (Client::H2(send), tokio::spawn(async move { conn.await.unwrap() }))
    } else {
        let io = TokioIo::new(tls_connect(run, b"http/1.1").await);
        let (send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        (Client::H1(send), tokio::spawn(async move { conn.await.unwrap() }))
    }
}

impl Client {
    async fn call(&mut self, method: Method, path: &str) -> (u16, hyper::HeaderMap, String) {
        let uri = format!("https://localhost{path}");
        let req = Request::builder().method(method).uri(uri).body(Empty::new()).unwrap();
        let resp = match self {
            Self::H1(send) => send.send_request(req).await.unwrap(),
            Self::H2(send) => send.send_request(req).await.unwrap(),
        };
        let (head, body) = resp.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            head.status.as_u16(),
            head.headers,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }
}

async fn guarded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish"))
}

async fn health_over(h2: bool) {
    let run = start().await;
    let (mut client, conn) = guarded("connecting", client(&run, h2)).await;
    let (code, headers, body) = guarded("GET /healthz", client.call(Method::GET, "/healthz")).await;
    assert_eq!((code, body.as_str()), (200, "ok"));
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let (code, _, body) = guarded("GET /readyz?verbose", client.call(Method::GET, "/readyz?verbose")).await;
    assert_eq!((code, body.as_str()), (200, READYZ_VERBOSE));
    let (code, headers, body) = guarded("HEAD /readyz?verbose", client.call(Method::HEAD, "/readyz?verbose")).await;
    assert_eq!((code, body.as_str()), (200, ""));
    assert_eq!(headers["content-length"], READYZ_VERBOSE.len().to_string().as_str());
    let (code, _, body) = guarded("GET /nope", client.call(Method::GET, "/nope")).await;
    assert_eq!((code, body.as_str()), (404, "404 page not found\n"));

    // Shutdown with the client's connection still open: the server closes it and returns.
    run.stop.send(()).unwrap();
    guarded("server shutdown", run.served).await.unwrap().unwrap();
    guarded("client connection close", conn).await.unwrap();
}

#[tokio::test]
async fn serves_health_over_http1_and_shuts_down_gracefully() {
    health_over(false).await;
}

#[tokio::test]
async fn serves_health_over_http2_and_shuts_down_gracefully() {
    health_over(true).await;
}

#[tokio::test]
async fn a_failed_handshake_does_not_stop_the_server() {
    use tokio::io::AsyncWriteExt as _;
    let run = start().await;
    let mut plain = TcpStream::connect(run.addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (mut client, _conn) = guarded("connecting", client(&run, false)).await;
    assert_eq!(guarded("GET /livez", client.call(Method::GET, "/livez")).await.0, 200);
    run.stop.send(()).unwrap();
    guarded("server shutdown", run.served).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_stuck_client_cannot_hold_shutdown_past_the_grace_period() {
    use tokio::io::AsyncWriteExt as _;
    let limits = Limits {
        shutdown_grace: Duration::from_millis(200),
        ..Limits::default()
    };
    let run = start_with(limits).await;
    let mut stuck = guarded("connecting", tls_connect(&run, b"http/1.1")).await;
    // Half a request head: the connection is busy, not idle, so a graceful close must wait.
    stuck.write_all(b"GET /healthz HTTP/1.1\r\nHost: loc").await.unwrap();
    stuck.flush().await.unwrap();
    let (mut client, _conn) = guarded("connecting", client(&run, false)).await;
    assert_eq!(
        guarded("GET /healthz", client.call(Method::GET, "/healthz")).await.0,
        200
    );
    run.stop.send(()).unwrap();
    guarded("server shutdown", run.served).await.unwrap().unwrap();
}

#[test]
fn load_or_generate_reuses_the_pair_in_cert_dir() {
    let certs = tempfile::tempdir().unwrap();
    let first = load_or_generate(None, None, certs.path(), &["10.96.0.1".to_owned()]).unwrap();
    let crt = std::fs::read(certs.path().join("apiserver.crt")).unwrap();
    let key = std::fs::read(certs.path().join("apiserver.key")).unwrap();
    let second = load_or_generate(None, None, certs.path(), &[]).unwrap();
    assert_eq!(first.cert_chain(), second.cert_chain());
    assert_eq!(first.key().secret_der(), second.key().secret_der());
    assert_eq!(std::fs::read(certs.path().join("apiserver.crt")).unwrap(), crt);
    assert_eq!(std::fs::read(certs.path().join("apiserver.key")).unwrap(), key);
}
