//! The HTTPS server: accept loop, TLS, HTTP/1.1 and HTTP/2, graceful shutdown, and routing.
//!
//! Every request first passes the [`Delegation`] gate when one is set ([`Server::with_auth`]):
//! authentication and authorization, answered 401/403/500 when refused. Then routing
//! ([`Server::route`]), a pure function of the request head, so every endpoint is testable
//! in-process ([`Server::respond`] runs both, and runs a request the [`Handler`] calls heavy,
//! a list of thousands of objects, on the blocking pool). Paths, in the order they are tried:
//!
//! | path | answer |
//! |---|---|
//! | `/healthz`, `/livez`, `/readyz` (+ `/<check>`) | [`HealthChecks`], any method |
//! | `/apis`, `/apis/<g>`, `/apis/<g>/<v>` | [`Discovery`]; other methods get a 405 Status |
//! | `/apis/<g>/<v>/…` of a served version | the [`Handler`], any method |
//! | `/version` | the version JSON; other methods get a 405 Status |
//! | `/metrics` | the metrics text, any method |
//! | `/`, `/index.html` | `{"paths":[…]}`, pretty-printed like Go's `WriteRawJSON` |
//! | anything else | the [`Handler`], else plain `404 page not found` |
//!
//! HEAD is routed as GET, then the body is dropped and its length kept in `Content-Length`.
//! The client certificate chain of each connection is kept for the gate ([`PeerChain`]).
//!
//! Before the gate, [`Server::serve`] applies the overload protections of [`Limits`]: a request
//! declaring a body over the cap gets 413 (bodies are never read), then max-in-flight
//! ([`inflight`](super::inflight)) answers 429 when no permit is free. The permit is held until
//! the response body has been handed over ([`outbound`](super::outbound)), and a client that
//! stops reading is cut off ([`stall`](super::stall)). An HTTP/2 connection's small frames are
//! gathered into one TLS record per pass ([`write_batch`](super::write_batch)).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body as _, Incoming};
use hyper::header::{HeaderValue, CONTENT_LENGTH};
use hyper::http::request::Parts;
use hyper::{Method, Request};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::inflight::{self, Admission, InFlight};
use super::outbound::{self, PermitBody, StreamExecutor};
use super::stall::StallGuard;
use super::write_batch::{self, WriteBatch};
use super::{
    content_type, not_found_page, ok_bytes, Body, Delegation, Discovery, Handler, HealthChecks, PeerChain, Response,
    Status,
};

/// Produces the `/metrics` exposition text on each scrape.
pub type MetricsText = Arc<dyn Fn() -> String + Send + Sync>;

/// Prometheus text exposition format 0.0.4, as the Go client sends it.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Resource bounds of [`Server::serve`]; `Default` gives the documented values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most; accepting pauses at the cap. Default 1024 (upstream has no cap,
    /// only 400 requests in flight).
    pub max_connections: usize,
    /// Time for a client to finish the TLS handshake. Default 10 s.
    pub handshake_timeout: Duration,
    /// Time for an HTTP/1.1 client to send a request head. Default 32 s, upstream's
    /// `ReadHeaderTimeout`. hyper has no such timer for HTTP/2 (nor has Go): a client trickling
    /// an HTTP/2 header block holds one connection slot and at most `max_header_bytes`.
    pub header_read_timeout: Duration,
    /// How long shutdown waits for open connections before closing them. Default 60 s, upstream's
    /// shutdown timeout (the request timeout).
    pub shutdown_grace: Duration,
    /// How long after shutdown begins the server keeps accepting and serving normally while
    /// `/readyz` already fails, so load balancers stop sending traffic first. Default 0,
    /// upstream's `--shutdown-delay-duration`.
    pub shutdown_delay: Duration,
    /// GET and HEAD requests in flight at most (0: no limit); more get 429. Health paths are
    /// exempt. Default 400, upstream's `--max-requests-inflight`.
    pub max_requests_inflight: usize,
    /// Requests of any other method in flight at most (0: no limit); they are all refused
    /// (405/404), but cheaply. Default 200, upstream's `--max-mutating-requests-inflight`.
    pub max_mutating_requests_inflight: usize,
    /// Largest request head: HTTP/1.1 read buffer (over it: 431 and close; at least 8 KiB) and
    /// HTTP/2 `SETTINGS_MAX_HEADER_LIST_SIZE` (over it: 431 on the stream). Default 1 MiB, Go's
    /// `DefaultMaxHeaderBytes` as the apiserver sets it. hyper also caps its HTTP/1.1 write
    /// buffer with it, so a connection queues at most this much of a response.
    pub max_header_bytes: usize,
    /// Largest request body a client may declare in `Content-Length`; over it: 413 without
    /// reading. Default 1 MiB (the API takes no bodies; upstream reads up to 3 MiB for writes).
    pub max_request_body_bytes: u64,
    /// HTTP/2 streams open at once per connection. Default 250, Go's default, which upstream
    /// keeps (`--http2-max-streams-per-connection` 0).
    pub http2_max_streams: u32,
    /// A connection whose client accepts no byte of a pending write for this long is closed, and
    /// an HTTP/2 stream that cannot send any of its body for this long (flow control held shut)
    /// is reset; either releases the request's in-flight permit and buffers. Default 30 s
    /// (upstream has no write timeout).
    pub write_stall_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(32),
            shutdown_grace: Duration::from_secs(60),
            shutdown_delay: Duration::ZERO,
            max_requests_inflight: 400,
            max_mutating_requests_inflight: 200,
            max_header_bytes: 1 << 20,
            max_request_body_bytes: 1 << 20,
            http2_max_streams: 250,
            write_stall_timeout: Duration::from_secs(30),
        }
    }
}

/// The generic API server: routes requests and serves them over TLS.
pub struct Server {
    health: HealthChecks,
    discovery: Discovery,
    version_json: Bytes,
    metrics: MetricsText,
    handler: Arc<dyn Handler>,
    /// Paths listed by `/` besides the generic ones (e.g. `/openapi/v2` served by the handler).
    extra_paths: Vec<String>,
    /// `{"paths":[…]}`, encoded once.
    index_json: Bytes,
    limits: Limits,
    /// Max-in-flight permits, from `limits`.
    in_flight: InFlight,
    /// Authentication and authorization; `None` admits every request (sandbox, tests).
    auth: Option<Arc<Delegation>>,
    /// Connection builders per ALPN result: `h2`, or HTTP/1.1 for anything else.
    http1: auto::Builder<StreamExecutor>,
    http2: auto::Builder<StreamExecutor>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("health", &self.health)
            .field("discovery", &self.discovery)
            .field("extra_paths", &self.extra_paths)
            .field("limits", &self.limits)
            .field("auth", &self.auth.is_some())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server for these endpoints and application, with default [`Limits`].
    pub fn new(
        health: HealthChecks,
        discovery: Discovery,
        version_json: impl Into<Bytes>,
        metrics: MetricsText,
        handler: Arc<dyn Handler>,
    ) -> Self {
        let limits = Limits::default();
        let mut server = Self {
            http1: connection_builder(false, &limits),
            http2: connection_builder(true, &limits),
            health,
            discovery,
            version_json: version_json.into(),
            metrics,
            handler,
            extra_paths: Vec::new(),
            index_json: Bytes::new(),
            in_flight: in_flight(&limits),
            limits,
            auth: None,
        };
        server.index_json = server.encode_index();
        server
    }

    /// Replaces the resource bounds.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.http1 = connection_builder(false, &limits);
        self.http2 = connection_builder(true, &limits);
        self.in_flight = in_flight(&limits);
        self.limits = limits;
        self
    }

    /// Puts the delegated authentication and authorization gate in front of every request.
    #[must_use]
    pub fn with_auth(mut self, auth: Arc<Delegation>) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Lists more paths in the `/` index (paths the handler serves outside `/apis`).
    #[must_use]
    pub fn with_listed_paths(mut self, paths: impl IntoIterator<Item = String>) -> Self {
        self.extra_paths.extend(paths);
        self.index_json = self.encode_index();
        self
    }

    /// The health checks, e.g. to begin shutdown from elsewhere.
    pub fn health(&self) -> &HealthChecks {
        &self.health
    }

    /// GET and HEAD requests holding an in-flight permit now, response bodies still being sent
    /// included (0 when unlimited).
    pub fn reads_in_flight(&self) -> usize {
        self.in_flight.reads_in_flight()
    }

    fn encode_index(&self) -> Bytes {
        let mut paths = self.health.listed_paths();
        paths.extend(self.discovery.listed_paths());
        paths.extend(["/metrics".to_owned(), "/version".to_owned()]);
        paths.extend(self.extra_paths.iter().cloned());
        paths.sort();
        paths.dedup();
        let index = serde_json::json!({ "paths": paths });
        // A map of strings always serializes; an empty body is the impossible fallback.
        serde_json::to_vec_pretty(&index).map(Bytes::from).unwrap_or_default()
    }

    /// What [`Server::serve`] answers: the body cap, then max-in-flight, then
    /// [`Server::respond`]; the permit rides on the body until it is sent.
    async fn respond_limited(&self, req: &Parts, peer: &PeerChain) -> hyper::Response<PermitBody> {
        if let Some(refused) = inflight::oversized_body(req, self.limits.max_request_body_bytes) {
            return outbound::attach(head_aware(req, refused), None);
        }
        let permit = match self.in_flight.admit(req) {
            Admission::Admitted(permit) => permit,
            Admission::Rejected => {
                tracing::debug!(method = %req.method, path = req.uri.path(), "too many requests in flight");
                return outbound::attach(head_aware(req, inflight::too_many_requests()), None);
            }
        };
        let resp = self.respond(req, peer).await;
        outbound::attach(resp, permit)
    }

    /// Answers one request from a connection whose client presented `peer`: the gate (if any),
    /// then [`Server::route`].
    pub async fn respond(&self, req: &Parts, peer: &PeerChain) -> Response {
        if let Some(auth) = &self.auth {
            if let Err(rejection) = auth.admit(req, peer).await {
                return head_aware(req, rejection.into_response());
            }
        }
        let resp = match self.route_get(req) {
            Routed::Answered(resp) => resp,
            Routed::ToHandler if self.handler.is_heavy(req) => self.handle_on_blocking_pool(req).await,
            Routed::ToHandler => self.handle(req),
        };
        head_aware(req, resp)
    }

    /// Answers one request from its head, without the gate, on the calling thread; HEAD gets
    /// GET's headers without the body.
    pub fn route(&self, req: &Parts) -> Response {
        let resp = match self.route_get(req) {
            Routed::Answered(resp) => resp,
            Routed::ToHandler => self.handle(req),
        };
        head_aware(req, resp)
    }

    fn route_get(&self, req: &Parts) -> Routed {
        let path = req.uri.path();
        if let Some(resp) = self.health.respond(path, req.uri.query()) {
            return Routed::Answered(resp);
        }
        let read = req.method == Method::GET || req.method == Method::HEAD;
        if let Some(resp) = self.discovery.respond(req) {
            return Routed::Answered(if read || resp.status() == hyper::StatusCode::NOT_FOUND {
                resp
            } else {
                Status::method_not_allowed().into_response()
            });
        }
        if let Some((group, version)) = group_version_prefix(path) {
            if !self.discovery.serves(group, version) {
                return Routed::Answered(not_found_page());
            }
            return Routed::ToHandler;
        }
        Routed::Answered(match path {
            "/version" if read => ok_bytes(content_type::JSON, self.version_json.clone()),
            "/version" => Status::method_not_allowed().into_response(),
            "/metrics" => ok_bytes(METRICS_CONTENT_TYPE, (self.metrics)().into()),
            "/" | "/index.html" => ok_bytes(content_type::JSON, self.index_json.clone()),
            _ => return Routed::ToHandler,
        })
    }

    fn handle(&self, req: &Parts) -> Response {
        self.handler.handle(req).unwrap_or_else(not_found_page)
    }

    /// Runs the handler on tokio's blocking pool, for a request it says is heavy: a LIST of
    /// 150,000 pods holds a thread for tens of milliseconds (a cold one for over 100), and an
    /// API worker held that long leaves every other connection queued on it waiting (the
    /// HPA's GETs among them), as tokio never preempts a task. On a thread of its own, the
    /// encoding is time-sliced by the kernel with everything else.
    async fn handle_on_blocking_pool(&self, req: &Parts) -> Response {
        let handler = Arc::clone(&self.handler);
        let head = copy_head(req);
        match tokio::task::spawn_blocking(move || handler.handle(&head)).await {
            Ok(resp) => resp.unwrap_or_else(not_found_page),
            Err(error) => {
                tracing::error!(path = req.uri.path(), %error, "the handler failed");
                Status::internal_error("an internal error occurred while answering the request").into_response()
            }
        }
    }

    /// Serves HTTPS on `listener` until `shutdown` completes, then: fails readyz at once, serves
    /// on normally for [`Limits::shutdown_delay`], stops accepting, lets open connections finish
    /// (HTTP/2 GOAWAY, HTTP/1.1 close after the current response; responses being sent are sent
    /// whole) for at most [`Limits::shutdown_grace`], closes the rest, and returns.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let acceptor = TlsAcceptor::from(tls);
        let permits = Arc::new(Semaphore::new(self.limits.max_connections));
        // Tells every connection task to finish gracefully.
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections = JoinSet::new();
        let delay = self.limits.shutdown_delay;
        // Readiness fails the moment shutdown is asked for; accepting stops after the delay.
        let shutdown = async {
            shutdown.await;
            self.health.begin_shutdown();
            if !delay.is_zero() {
                tracing::info!(?delay, "shutting down: serving on until the shutdown delay is over");
                tokio::time::sleep(delay).await;
            }
        };
        tokio::pin!(shutdown);
        tracing::info!(address = ?listener.local_addr().ok(), "serving securely");
        loop {
            let permit = tokio::select! {
                biased;
                () = &mut shutdown => break,
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_closed) => break,
                },
            };
            let accepted = tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            while let Some(done) = connections.try_join_next() {
                log_panic(done);
            }
            match accepted {
                Ok((tcp, peer)) => {
                    let task = self
                        .clone()
                        .connection(acceptor.clone(), tcp, peer, stop_rx.clone(), permit);
                    connections.spawn(task);
                }
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    }
                }
            }
        }
        self.health.begin_shutdown();
        drop(listener);
        tracing::info!(connections = connections.len(), "shutting down: draining connections");
        stop_tx.send_replace(true);
        let drain = async {
            while let Some(done) = connections.join_next().await {
                log_panic(done);
            }
        };
        if tokio::time::timeout(self.limits.shutdown_grace, drain).await.is_err() {
            tracing::warn!(
                connections = connections.len(),
                "shutdown grace period over: closing connections"
            );
            connections.shutdown().await;
        }
        Ok(())
    }

    /// One client connection: handshake, then HTTP until the client leaves or shutdown ends it.
    async fn connection(
        self: Arc<Self>,
        acceptor: TlsAcceptor,
        tcp: TcpStream,
        peer: SocketAddr,
        mut stop: watch::Receiver<bool>,
        _permit: OwnedSemaphorePermit,
    ) {
        // As Go's net package does for every connection: a response's last small segment must
        // not wait for the client to acknowledge the previous ones (Nagle), nor HTTP/2 frames
        // flushed while earlier ones are unacknowledged.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, %error, "setting TCP_NODELAY failed");
        }
        let tcp = StallGuard::new(tcp, self.limits.write_stall_timeout);
        let handshake = tokio::time::timeout(self.limits.handshake_timeout, acceptor.accept(tcp));
        let tls = tokio::select! {
            done = handshake => match done {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_elapsed) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            },
            () = stopped(&mut stop) => return,
        };
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
        let builder = if h2 { &self.http2 } else { &self.http1 };
        let chain = Arc::new(PeerChain::new(tls.get_ref().1.peer_certificates()));
        let server = self.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let (server, chain) = (server.clone(), chain.clone());
            async move {
                // The body is never read: hyper neither buffers it nor sends `100 Continue`.
                let (head, _body) = req.into_parts();
                Ok::<_, Infallible>(server.respond_limited(&head, &chain).await)
            }
        });
        // HTTP/2 answers many streams per pass: their frames leave together (see write_batch).
        let gather = if h2 { write_batch::RECORD } else { 0 };
        let conn = builder.serve_connection(TokioIo::new(WriteBatch::new(tls, gather)), service);
        tokio::pin!(conn);
        let ended = tokio::select! {
            ended = conn.as_mut() => ended,
            () = stopped(&mut stop) => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(error) = ended {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
    }
}

/// HTTP/2 flow-control windows we advertise: the spec's initial 64 KiB, since request bodies are
/// never read (hyper's default would let each stream send us 1 MiB to buffer).
const HTTP2_WINDOW: u32 = 65_535;

/// hyper refuses an HTTP/1.1 buffer under 8 KiB.
const MIN_HTTP1_BUFFER: usize = 8 * 1024;

fn in_flight(limits: &Limits) -> InFlight {
    InFlight::new(limits.max_requests_inflight, limits.max_mutating_requests_inflight)
}

/// An HTTP/1.1-only or HTTP/2-only builder: the protocol is known from ALPN, as in Go.
fn connection_builder(h2: bool, limits: &Limits) -> auto::Builder<StreamExecutor> {
    let mut builder = auto::Builder::new(StreamExecutor {
        stall_timeout: limits.write_stall_timeout,
    });
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HTTP1_BUFFER));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(limits.http2_max_streams)
        .initial_stream_window_size(HTTP2_WINDOW)
        .initial_connection_window_size(HTTP2_WINDOW);
    if h2 {
        builder.http2_only()
    } else {
        builder.http1_only()
    }
}

/// `(group, version)` of `/apis/<group>/<version>/<more>`, where `<more>` may be empty.
fn group_version_prefix(path: &str) -> Option<(&str, &str)> {
    let mut segments = path.strip_prefix("/apis/")?.splitn(3, '/');
    let (group, version, _more) = (segments.next()?, segments.next()?, segments.next()?);
    Some((group, version))
}

/// Where [`Server::route_get`] sends a request.
enum Routed {
    /// The server answered it itself.
    Answered(Response),
    /// The [`Handler`] answers it.
    ToHandler,
}

/// A copy of a request head, for a handler running on another thread (the head's
/// extensions are not copied: nothing here sets any).
fn copy_head(req: &Parts) -> Parts {
    let (mut head, ()) = Request::new(()).into_parts();
    head.method = req.method.clone();
    head.uri = req.uri.clone();
    head.version = req.version;
    head.headers = req.headers.clone();
    head
}

/// `resp`, without its body when `req` is a HEAD.
fn head_aware(req: &Parts, resp: Response) -> Response {
    if req.method == Method::HEAD {
        head_only(resp)
    } else {
        resp
    }
}

/// Keeps status and headers, records the body length, drops the body.
fn head_only(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    if let Some(len) = body.size_hint().exact() {
        parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    Response::from_parts(parts, Body::default())
}

/// Completes once shutdown is signalled (or the signal's sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, never held across an await.
    let _ = stop.wait_for(|stop| *stop).await;
}

fn log_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(error) = done {
        if error.is_panic() {
            tracing::error!(%error, "connection task panicked");
        }
    }
}

#[cfg(test)]
#[path = "serve_tests.rs"]
mod tests;
