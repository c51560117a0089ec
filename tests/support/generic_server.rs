//! The generic apiserver on loopback TLS with a test handler, and raw HTTP/1.1 and HTTP/2
//! clients for it: the scaffolding of `tests/apiserver_tls.rs` and `tests/overload.rs`.
//! Included by `#[path]`, so those tests do not build the metrics pipeline helpers of
//! `support/mod.rs`.
#![allow(
    clippy::unwrap_used,
    dead_code,
    reason = "test helpers: a failed step should fail the test loudly; not every test uses each helper"
)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Method, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use metrics_server_rs::apiserver::{
    load_or_generate, server_config, ApiGroup, ApiResource, ApiVersion, CertifiedKeyPair, Discovery, Handler,
    HealthChecks, Limits, MetricsText, Server, TlsVersion,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Guards against a hang; never stands in for a signal.
pub(crate) const GUARD: Duration = Duration::from_secs(20);

/// `metrics.k8s.io/v1beta1` with one resource, `nodes`, as discovery lists it.
pub(crate) fn nodes_group() -> ApiGroup {
    ApiGroup {
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
    }
}

/// A server serving on 127.0.0.1 with a self-signed certificate.
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    pub(crate) server: Arc<Server>,
    pub(crate) pair: CertifiedKeyPair,
    stop: Option<oneshot::Sender<()>>,
    pub(crate) served: JoinHandle<std::io::Result<()>>,
    _certs: tempfile::TempDir,
}

/// Serves `handler` behind `health`, with `nodes_group` in discovery and `limits`.
pub(crate) async fn start(health: HealthChecks, handler: Arc<dyn Handler>, limits: Limits) -> Running {
    let certs = tempfile::tempdir().unwrap();
    let pair = load_or_generate(None, None, certs.path(), &[]).unwrap();
    let tls = server_config(&pair, TlsVersion::Tls12, true).unwrap();
    let metrics: MetricsText = Arc::new(String::new);
    let server = Server::new(
        health,
        Discovery::new(vec![nodes_group()]).unwrap(),
        "{}",
        metrics,
        handler,
    )
    .with_limits(limits);
    let server = Arc::new(server);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(server.clone().serve(listener, tls, async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        server,
        pair,
        stop: Some(stop),
        served,
        _certs: certs,
    }
}

impl Running {
    /// What SIGTERM does in `main`: completes the server's shutdown future.
    pub(crate) fn stop(&mut self) {
        self.stop.take().unwrap().send(()).unwrap();
    }
}

pub(crate) async fn guarded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen"))
}

/// A TLS connection trusting the server's certificate, offering `alpn` (which the server must
/// pick). `receive_buffer` fixes the socket's receive buffer before connecting, so the kernel
/// cannot grow it and the server's writes back up.
pub(crate) async fn tls_connect(run: &Running, alpn: &[u8], receive_buffer: Option<u32>) -> TlsStream<TcpStream> {
    let mut roots = RootCertStore::empty();
    roots.add(run.pair.cert_chain()[0].clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(bytes) = receive_buffer {
        socket.set_recv_buffer_size(bytes).unwrap();
    }
    let tcp = socket.connect(run.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
    tls
}

/// Sends requests on one connection.
pub(crate) enum Client {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

/// A client over a fresh connection (HTTP/2 when `h2`), and the task driving that connection:
/// it ends when the connection closes and panics if the connection fails.
pub(crate) async fn client(run: &Running, h2: bool) -> (Client, JoinHandle<()>) {
    if h2 {
        let io = TokioIo::new(tls_connect(run, b"h2", None).await);
        let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        (Client::H2(send), tokio::spawn(async move { conn.await.unwrap() }))
    } else {
        let io = TokioIo::new(tls_connect(run, b"http/1.1", None).await);
        let (send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        (Client::H1(send), tokio::spawn(async move { conn.await.unwrap() }))
    }
}

impl Client {
    pub(crate) async fn send(&mut self, req: Request<Empty<Bytes>>) -> hyper::Response<hyper::body::Incoming> {
        match self {
            Self::H1(send) => send.send_request(req).await.unwrap(),
            Self::H2(send) => send.send_request(req).await.unwrap(),
        }
    }

    /// `method path`: status, headers and the whole body as text.
    pub(crate) async fn call(&mut self, method: Method, path: &str) -> (u16, hyper::HeaderMap, String) {
        let req = Request::builder()
            .method(method)
            .uri(format!("https://localhost{path}"))
            .body(Empty::new())
            .unwrap();
        let (head, body) = self.send(req).await.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            head.status.as_u16(),
            head.headers,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }
}
