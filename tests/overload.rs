//! Overload protection and graceful shutdown of the generic server, over real TLS on loopback:
//! max-in-flight (429 with kube's exact body, health exempt, recovery), header and body caps,
//! clients that stop reading, and SIGTERM-style draining with the shutdown delay.
//!
//! Requests are held in flight deterministically by a client that reads only the head of a
//! response much larger than every buffer between server and client (hyper's write buffer, TLS,
//! the socket buffers with the client's receive buffer pinned small): the server cannot finish
//! sending it, so its permit stays taken until the client reads on or goes away. Waits are
//! conditions polled under a generous guard, never sleeps that hope.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a failed step should fail the test loudly"
)]

#[path = "support/generic_server.rs"]
mod generic_server;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::http::request::Parts;
use hyper::{Method, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use metrics_server_rs::apiserver::{Handler, HealthChecks, Limits, Response};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use generic_server::{client, guarded, tls_connect, Running};

const NODES: &str = "/apis/metrics.k8s.io/v1beta1/nodes";
const NODES_BODY: &str = "{\"kind\":\"NodeMetricsList\"}\n";
/// Served by the handler outside `/apis`: far more than can sit in buffers (hyper ≤ 1 MiB, the
/// server's socket ≤ `tcp_wmem` max, usually 4 MiB, the client's pinned to [`CLIENT_RCVBUF`]).
const BIG: &str = "/big";
const BIG_LEN: usize = 24 << 20;
const CLIENT_RCVBUF: u32 = 16 * 1024;

const TOO_MANY: &str = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Too many requests, please try again later.\",\"reason\":\"TooManyRequests\",\"details\":{\"retryAfterSeconds\":1},\"code\":429}\n";

fn big_body() -> Bytes {
    static BODY: OnceLock<Bytes> = OnceLock::new();
    BODY.get_or_init(|| (0..BIG_LEN).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into())
        .clone()
}

struct FakeApi;

impl Handler for FakeApi {
    fn handle(&self, req: &Parts) -> Option<Response> {
        let ok = |body: Bytes| {
            let mut resp = Response::new(body.into());
            resp.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            resp
        };
        match req.uri.path() {
            NODES if req.method == Method::GET || req.method == Method::HEAD => {
                Some(ok(Bytes::from_static(NODES_BODY.as_bytes())))
            }
            NODES => Some(
                metrics_server_rs::apiserver::Status::method_not_supported("metrics.k8s.io", "nodes", "create")
                    .into_response(),
            ),
            BIG => Some(ok(big_body())),
            _ => None,
        }
    }
}

async fn start(limits: Limits) -> Running {
    generic_server::start(HealthChecks::builder().build().unwrap(), Arc::new(FakeApi), limits).await
}

/// Polls `condition` until it holds; the guard only turns a hang into a failure.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    guarded(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// One request on a fresh connection (HTTP/2 when `h2`).
async fn call(run: &Running, h2: bool, method: Method, path: &str) -> (u16, hyper::HeaderMap, String) {
    let (mut client, _conn) = guarded("connecting", client(run, h2)).await;
    guarded(path, client.call(method, path)).await
}

/// An HTTP/1.1 client that asked for [`BIG`] and read no further than the response head.
struct NonReader {
    tls: TlsStream<TcpStream>,
    /// Body bytes that came in with the head.
    already: usize,
}

async fn non_reader(run: &Running) -> NonReader {
    let mut tls = guarded("connecting", tls_connect(run, b"http/1.1", Some(CLIENT_RCVBUF))).await;
    tls.write_all(format!("GET {BIG} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let (head, already) = guarded("response head", read_head(&mut tls)).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains(&format!("content-length: {BIG_LEN}\r\n")), "{head}");
    NonReader {
        tls,
        already: already.len(),
    }
}

impl NonReader {
    /// Reads on to the end of the body, or of the connection if it ends first: how many body
    /// bytes arrived in all.
    async fn read_rest(mut self) -> usize {
        let mut buf = vec![0; 256 * 1024];
        let mut total = self.already;
        while total < BIG_LEN {
            match self.tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        total
    }
}

/// Reads a response head byte-wise-safe: returns the head and whatever followed it.
async fn read_head(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> (String, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = got.split_off(end + 4);
            return (String::from_utf8(got).unwrap().to_lowercase_headers(), rest);
        }
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed before the response head");
        got.extend_from_slice(&buf[..n]);
    }
}

/// Header names lower-cased, the status line kept, for simple `contains` checks.
trait LowercaseHeaders {
    fn to_lowercase_headers(self) -> String;
}

impl LowercaseHeaders for String {
    fn to_lowercase_headers(self) -> String {
        let mut lines = self.split("\r\n");
        let mut out = lines.next().unwrap_or_default().to_owned();
        for line in lines {
            out.push_str("\r\n");
            match line.split_once(':') {
                Some((name, value)) => {
                    out.push_str(&name.to_ascii_lowercase());
                    out.push(':');
                    out.push_str(value);
                }
                None => out.push_str(line),
            }
        }
        out
    }
}

/// Sends raw HTTP/1.1 `request` on a new connection; the response head and body (by
/// `Content-Length`), or `None` if the server closed the connection without a complete answer.
async fn raw(run: &Running, request: &[u8]) -> Option<(String, String)> {
    let mut tls = guarded("connecting", tls_connect(run, b"http/1.1", None)).await;
    tls.write_all(request).await.ok()?;
    let mut got = Vec::new();
    guarded("raw response", async {
        let mut buf = [0; 4096];
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end + 4])
                    .into_owned()
                    .to_lowercase_headers();
                let len: usize = head
                    .split("\r\n")
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if got.len() >= end + 4 + len {
                    let body = String::from_utf8_lossy(&got[end + 4..end + 4 + len]).into_owned();
                    return Some((head, body));
                }
            }
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
}

fn limits(max_reads: usize) -> Limits {
    Limits {
        max_requests_inflight: max_reads,
        ..Limits::default()
    }
}

#[tokio::test]
async fn requests_over_the_limit_get_kubes_429_while_health_answers_and_all_recovers() {
    const K: usize = 3;
    let mut run = start(limits(K)).await;
    let mut held = Vec::new();
    for _ in 0..K {
        held.push(non_reader(&run).await);
    }
    // The handler has long returned; the unsent bodies keep their permits.
    assert_eq!(run.server.reads_in_flight(), K);

    // Exactly the overflow is refused, over either protocol, concurrently.
    let overflow: Vec<_> = (0..6)
        .map(|i| {
            let (addr_run, h2) = (&run, i % 2 == 0);
            async move { call(addr_run, h2, Method::GET, NODES).await }
        })
        .collect();
    for (code, headers, body) in futures_util::future::join_all(overflow).await {
        assert_eq!(code, 429);
        assert_eq!(headers["retry-after"], "1");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(body, TOO_MANY);
    }
    let (code, headers, body) = call(&run, false, Method::HEAD, NODES).await;
    assert_eq!((code, body.as_str()), (429, ""));
    assert_eq!(headers["retry-after"], "1");

    // Probes never wait for a permit.
    for path in [
        "/healthz",
        "/livez",
        "/readyz",
        "/readyz/shutdown",
        "/healthz/poststarthook/max-in-flight-filter",
    ] {
        assert_eq!(call(&run, true, Method::GET, path).await.0, 200, "{path}");
    }
    assert_eq!(run.server.reads_in_flight(), K);

    // One reader finishes its body: the whole of it arrives, and its permit comes back.
    let first = held.pop().unwrap();
    assert_eq!(guarded("reading the body", first.read_rest()).await, BIG_LEN);
    // The others hang up: their connections die and release theirs.
    drop(held);
    eventually("every permit returned", || run.server.reads_in_flight() == 0).await;
    let (code, _, body) = call(&run, true, Method::GET, NODES).await;
    assert_eq!((code, body.as_str()), (200, NODES_BODY));

    run.stop();
    guarded("server shutdown", run.served).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_client_that_stops_reading_blocks_nobody_and_is_cut_off() {
    let mut run = start(Limits {
        write_stall_timeout: Duration::from_millis(300),
        ..limits(2)
    })
    .await;
    let stuck = non_reader(&run).await;
    assert_eq!(run.server.reads_in_flight(), 1);
    let (code, _, body) = call(&run, false, Method::GET, NODES).await;
    assert_eq!((code, body.as_str()), (200, NODES_BODY));

    // No byte accepted for the stall timeout: the server closes the connection, dropping the
    // buffered body and the permit.
    eventually("the stalled response released", || run.server.reads_in_flight() == 0).await;
    let received = guarded("reading what was sent", stuck.read_rest()).await;
    assert!(
        received < BIG_LEN,
        "the connection was cut: {received} of {BIG_LEN} bytes"
    );

    run.stop();
    guarded("server shutdown", run.served).await.unwrap().unwrap();
}

#[tokio::test]
async fn an_http2_stream_held_shut_by_flow_control_is_reset_and_its_connection_lives_on() {
    let mut run = start(Limits {
        write_stall_timeout: Duration::from_millis(300),
        ..limits(2)
    })
    .await;
    let io = TokioIo::new(guarded("connecting", tls_connect(&run, b"h2", None)).await);
    // The client keeps reading frames but never grants more than the first 64 KiB of the body.
    let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(65_535)
        .handshake(io)
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get(format!("https://localhost{BIG}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = guarded("response head", send.send_request(req)).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(run.server.reads_in_flight(), 1);

    eventually("the stalled stream released", || run.server.reads_in_flight() == 0).await;
    let read = guarded("reading the reset body", resp.into_body().collect()).await;
    assert!(read.is_err(), "the stream was reset, not completed");
    // Only the stream was given up; the connection still serves.
    let req = Request::get(format!("https://localhost{NODES}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = guarded("second request", send.send_request(req)).await.unwrap();
    assert_eq!(resp.status(), 200);

    run.stop();
    guarded("server shutdown", run.served).await.unwrap().unwrap();
}

#[tokio::test]
async fn request_heads_over_the_cap_are_refused() {
    let mut run = start(Limits {
        max_header_bytes: 16 * 1024,
        ..Limits::default()
    })
    .await;
    let header = |len: usize| "a".repeat(len);

    // HTTP/2: 431 on the stream (h2's answer to a header list over SETTINGS_MAX_HEADER_LIST_SIZE).
    let (mut h2, _conn) = guarded("connecting", client(&run, true)).await;
    let req = |len: usize| {
        Request::get(format!("https://localhost{NODES}"))
            .header("x-padding", header(len))
            .body(Empty::new())
            .unwrap()
    };
    assert_eq!(guarded("big head", h2.send(req(32 * 1024))).await.status(), 431);
    assert_eq!(guarded("small head", h2.send(req(8 * 1024))).await.status(), 200);

    // HTTP/1.1: hyper answers 431 and closes, or (when the close overtakes the answer) just
    // closes; either way no 200.
    let big = format!(
        "GET {NODES} HTTP/1.1\r\nHost: localhost\r\nX-Padding: {}\r\n\r\n",
        header(32 * 1024)
    );
    if let Some((head, _)) = raw(&run, big.as_bytes()).await {
        assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
    }
    let small = format!(
        "GET {NODES} HTTP/1.1\r\nHost: localhost\r\nX-Padding: {}\r\n\r\n",
        header(8 * 1024)
    );
    let (head, body) = raw(&run, small.as_bytes()).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(body, NODES_BODY);

    run.stop();
    guarded("server shutdown", run.served).await.unwrap().unwrap();
}

#[tokio::test]
async fn bodies_are_refused_from_their_head_without_being_read() {
    let mut run = start(Limits {
        max_request_body_bytes: 1024,
        ..Limits::default()
    })
    .await;
    // The bodies are never sent: an answer proves the server did not wait for them.
    let (head, body) = raw(
        &run,
        format!("POST {NODES} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10485760\r\nExpect: 100-continue\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    assert!(head.starts_with("HTTP/1.1 413 "), "{head}");
    assert_eq!(
        body,
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Request entity too large: limit is 1024\",\"reason\":\"RequestEntityTooLarge\",\"code\":413}\n"
    );
    let (head, body) = raw(
        &run,
        format!("POST {NODES} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    assert!(head.starts_with("HTTP/1.1 405 "), "{head}");
    assert!(body.contains("\"reason\":\"MethodNotAllowed\""), "{body}");
    // Neither took a read permit, and nothing is left in flight.
    assert_eq!(run.server.reads_in_flight(), 0);

    run.stop();
    guarded("server shutdown", run.served).await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_fails_readiness_then_drains_a_response_in_flight() {
    let mut run = start(limits(10)).await;
    let in_flight = non_reader(&run).await;
    assert_eq!(run.server.reads_in_flight(), 1);

    run.stop();
    eventually("shutdown begun", || run.server.health().is_shutting_down()).await;
    let readyz = Request::get("/readyz?verbose").body(()).unwrap().into_parts().0;
    let resp = run.server.route(&readyz);
    assert_eq!(resp.status(), 500);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        body.ends_with("[-]shutdown failed: process is shutting down\nreadyz check failed\n"),
        "{body}"
    );
    // No new connections...
    eventually("the listener closed", || {
        std::net::TcpStream::connect_timeout(&run.addr, Duration::from_secs(1)).is_err()
    })
    .await;
    // ...but the response that was being sent is sent whole.
    assert_eq!(run.server.reads_in_flight(), 1);
    assert!(!run.served.is_finished(), "waits for the response in flight");
    assert_eq!(guarded("reading the body", in_flight.read_rest()).await, BIG_LEN);
    guarded("server shutdown", run.served).await.unwrap().unwrap();
    assert_eq!(run.server.reads_in_flight(), 0);
}

#[tokio::test]
async fn during_the_shutdown_delay_readyz_fails_and_everything_else_is_served() {
    let mut run = start(Limits {
        // Long enough to never end during the test: the server is aborted instead.
        shutdown_delay: Duration::from_secs(3600),
        ..Limits::default()
    })
    .await;
    let (mut open, _conn) = guarded("connecting", client(&run, false)).await;
    run.stop();
    eventually("shutdown begun", || run.server.health().is_shutting_down()).await;

    let (code, _, body) = guarded("readyz", open.call(Method::GET, "/readyz?verbose")).await;
    assert_eq!(code, 500);
    assert_eq!(
        body,
        "[+]ping ok\n[+]log ok\n[+]poststarthook/max-in-flight-filter ok\n\
         [+]poststarthook/storage-object-count-tracker-hook ok\n[-]shutdown failed: process is shutting down\n\
         readyz check failed\n"
    );
    assert_eq!(guarded("livez", open.call(Method::GET, "/livez")).await.0, 200);
    assert_eq!(guarded("healthz", open.call(Method::GET, "/healthz")).await.0, 200);
    assert_eq!(guarded("nodes", open.call(Method::GET, NODES)).await.0, 200);
    // New connections are still accepted while the delay lasts.
    assert_eq!(call(&run, true, Method::GET, NODES).await.0, 200);
    assert_eq!(call(&run, true, Method::GET, "/readyz").await.0, 500);
    run.served.abort();
}

#[test]
fn the_binary_refuses_negative_limits_with_upstreams_message() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_metrics-server"))
        .args([
            "--sandbox",
            "--max-requests-inflight=-1",
            "--shutdown-delay-duration=-1s",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    // Upstream prints the first error only.
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error: --max-requests-inflight can not be negative value\n"
    );
}
