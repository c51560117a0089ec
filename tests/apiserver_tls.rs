//! The generic apiserver over real TLS on loopback: HTTP/1.1 and HTTP/2 by ALPN, exact health
//! bodies, graceful shutdown, and the serving certificate kept in `--cert-dir`.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a failed step should fail the test loudly"
)]

#[path = "support/generic_server.rs"]
mod generic_server;

use std::sync::Arc;
use std::time::Duration;

use hyper::http::request::Parts;
use hyper::Method;
use metrics_server_rs::apiserver::{load_or_generate, Handler, HealthChecks, Limits, Response};
use tokio::net::TcpStream;

use generic_server::{client, guarded, tls_connect, Running};

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

async fn start() -> Running {
    start_with(Limits::default()).await
}

async fn start_with(limits: Limits) -> Running {
    let health = HealthChecks::builder()
        .readyz("metric-storage-ready", || Ok(()))
        .readyz("metric-informer-sync", || Ok(()))
        .livez("metric-collection-timely", || Ok(()))
        .all("metadata-informer-sync", || Ok(()))
        .build()
        .unwrap();
    generic_server::start(health, Arc::new(NoApi), limits).await
}

async fn health_over(h2: bool) {
    let mut run = start().await;
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
    run.stop();
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
    let mut run = start().await;
    let mut plain = TcpStream::connect(run.addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (mut client, _conn) = guarded("connecting", client(&run, false)).await;
    assert_eq!(guarded("GET /livez", client.call(Method::GET, "/livez")).await.0, 200);
    run.stop();
    guarded("server shutdown", run.served).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_stuck_client_cannot_hold_shutdown_past_the_grace_period() {
    use tokio::io::AsyncWriteExt as _;
    let limits = Limits {
        shutdown_grace: Duration::from_millis(200),
        ..Limits::default()
    };
    let mut run = start_with(limits).await;
    let mut stuck = guarded("connecting", tls_connect(&run, b"http/1.1", None)).await;
    // Half a request head: the connection is busy, not idle, so a graceful close must wait.
    stuck.write_all(b"GET /healthz HTTP/1.1\r\nHost: loc").await.unwrap();
    stuck.flush().await.unwrap();
    let (mut client, _conn) = guarded("connecting", client(&run, false)).await;
    assert_eq!(
        guarded("GET /healthz", client.call(Method::GET, "/healthz")).await.0,
        200
    );
    run.stop();
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
