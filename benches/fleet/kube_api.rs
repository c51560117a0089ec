//! A lean Kubernetes API double for the simulator: exactly what the server asks of an API
//! server in cluster mode, sized for 150,000 pods.
//!
//! - `GET /api/v1/{nodes,pods}`: lists in pages (`limit`/`continue`, as kube-runtime's watcher
//!   asks for 500 at a time), and `watch=true` streams from a resourceVersion: missed changes
//!   are replayed from a bounded history (older: an `ERROR` 410, and the watcher relists),
//!   BOOKMARKs every 30 s when asked, and the stream ends after `timeoutSeconds` as a real API
//!   server's does. Every pod is Running, so the `status.phase=Running` field selector the
//!   server sends selects them all and is not evaluated.
//! - TokenReview (the bench token is user `fleet-bench`) and SubjectAccessReview (allowed),
//!   for the server's delegated authentication of our API clients.
//! - The `kube-system/extension-apiserver-authentication` ConfigMap (no client CA: bearer
//!   tokens only), for get, list and watch.
//!
//! Objects are kept serialized: a list page is a concatenation, not 150,000 serializations.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::Result;

const CM_PATH: &str = "/api/v1/namespaces/kube-system/configmaps";
const CM_NAME: &str = "extension-apiserver-authentication";
const BOOKMARK_EVERY: Duration = Duration::from_secs(30);
/// Watch streams end after this when the client does not say (a real server's default range).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Nodes,
    Pods,
}

impl Resource {
    fn kind(self) -> &'static str {
        match self {
            Resource::Nodes => "Node",
            Resource::Pods => "Pod",
        }
    }
}

#[derive(Debug)]
struct OpenWatch {
    resource: Resource,
    bookmarks: bool,
    events: mpsc::UnboundedSender<Bytes>,
}

#[derive(Debug)]
struct State {
    resource_version: u64,
    nodes: BTreeMap<String, Bytes>,
    pods: BTreeMap<String, Bytes>,
    /// Recent changes as watch lines, to replay to watches resuming from an older version.
    history: VecDeque<(u64, Resource, Bytes)>,
    history_cap: usize,
    /// Watches from before this version get 410 Gone (their changes are no longer kept).
    oldest_replayable: u64,
    watches: Vec<OpenWatch>,
}

/// The double's state, shared by its connections and the simulator (which drives churn).
#[derive(Debug)]
pub(crate) struct KubeApi {
    state: Mutex<State>,
    token: String,
}

impl KubeApi {
    /// `nodes` and `pods` are objects without a resourceVersion; each gets its own.
    pub(crate) fn new(token: &str, nodes: Vec<Value>, pods: Vec<Value>) -> Result<Arc<KubeApi>> {
        let history_cap = 1000 + pods.len();
        let mut state = State {
            resource_version: 1000,
            nodes: BTreeMap::new(),
            pods: BTreeMap::new(),
            history: VecDeque::new(),
            history_cap,
            oldest_replayable: 1000,
            watches: Vec::new(),
        };
        for (resource, objects) in [(Resource::Nodes, nodes), (Resource::Pods, pods)] {
            for mut object in objects {
                state.resource_version += 1;
                let key = stamp(&mut object, state.resource_version)?;
                let bytes = Bytes::from(serde_json::to_vec(&object)?);
                state.map(resource).insert(key, bytes);
            }
        }
        state.oldest_replayable = state.resource_version;
        Ok(Arc::new(KubeApi {
            state: Mutex::new(state),
            token: token.to_owned(),
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking connection task must not take the whole double down with it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Deletes the pod `deleted` (its last state) and adds `added`, as a ReplicaSet replacing a
    /// pod would: two events for every open pod watch.
    pub(crate) fn replace_pod(&self, deleted: Value, added: Value) -> Result<()> {
        let mut state = self.state();
        for (kind, mut object) in [("DELETED", deleted), ("ADDED", added)] {
            state.resource_version += 1;
            let key = stamp(&mut object, state.resource_version)?;
            let bytes = Bytes::from(serde_json::to_vec(&object)?);
            if kind == "DELETED" {
                state.pods.remove(&key);
            } else {
                state.pods.insert(key, bytes.clone());
            }
            let line = event_line(kind, &bytes);
            let version = state.resource_version;
            state.publish(Resource::Pods, version, line);
        }
        Ok(())
    }

    /// Serves HTTPS on `listener` until the process exits.
    pub(crate) async fn serve(self: Arc<Self>, listener: TcpListener, tls: TlsAcceptor) {
        tokio::spawn(bookmarks(self.clone()));
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (api, tls) = (self.clone(), tls.clone());
            tokio::spawn(async move {
                let Ok(stream) = tls.accept(tcp).await else { return };
                let service = hyper::service::service_fn(move |request| {
                    let api = api.clone();
                    async move { Ok::<_, Infallible>(api.handle(request).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        let authorized = request
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            == Some(self.token.as_str());
        if !authorized {
            return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
        }
        let (head, body) = request.into_parts();
        let query = parse_query(head.uri.query().unwrap_or(""));
        let watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
        match (&head.method, head.uri.path()) {
            (&Method::POST, "/apis/authentication.k8s.io/v1/tokenreviews") => {
                let review = read_json(body).await;
                let token = review["spec"]["token"].as_str().unwrap_or("");
                let status = if token == self.token {
                    json!({"authenticated": true, "user": {"username": "fleet-bench", "uid": "fleet-bench",
                           "groups": ["system:authenticated"]}})
                } else {
                    json!({"authenticated": false, "error": "invalid bearer token"})
                };
                json_value(
                    StatusCode::CREATED,
                    &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "metadata": {},
                            "spec": review["spec"], "status": status}),
                )
            }
            (&Method::POST, "/apis/authorization.k8s.io/v1/subjectaccessreviews") => {
                let review = read_json(body).await;
                json_value(
                    StatusCode::CREATED,
                    &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "metadata": {},
                            "spec": review["spec"], "status": {"allowed": true}}),
                )
            }
            (&Method::GET, path) if path == format!("{CM_PATH}/{CM_NAME}") => json_value(StatusCode::OK, &configmap()),
            (&Method::GET, CM_PATH) if watch => {
                // The ConfigMap never changes: an open, silent stream until the timeout.
                let (events, receiver) = mpsc::unbounded_channel();
                stream_response(receiver, watch_timeout(&query), Some(events))
            }
            (&Method::GET, CM_PATH) => json_value(
                StatusCode::OK,
                &json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "1"},
                        "items": [configmap()]}),
            ),
            (&Method::GET, "/api/v1/nodes") => self.list_or_watch(Resource::Nodes, watch, &query),
            (&Method::GET, "/api/v1/pods") => self.list_or_watch(Resource::Pods, watch, &query),
            _ => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
            ),
        }
    }

    fn list_or_watch(&self, resource: Resource, watch: bool, query: &BTreeMap<String, String>) -> Response<Body> {
        let mut state = self.state();
        if watch {
            return state.watch(resource, query);
        }
        // `continue` is "<version>/<last key served>": the next page starts after that key, so
        // pages stay consistent while pods churn (a real server serves a snapshot; close enough
        // for a list that only happens at start-up or after a 410).
        let (version, after) = match query.get("continue").filter(|c| !c.is_empty()) {
            Some(token) => match token.split_once('/') {
                Some((version, key)) => (version.to_owned(), Some(key.to_owned())),
                None => return status(StatusCode::BAD_REQUEST, "BadRequest", "malformed continue token"),
            },
            None => (state.resource_version.to_string(), None),
        };
        let limit = query
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0)
            .unwrap_or(usize::MAX);
        let objects = state.map(resource);
        let start = match &after {
            Some(key) => Bound::Excluded(key.clone()),
            None => Bound::Unbounded,
        };
        let mut page = objects.range((start, Bound::Unbounded));
        let mut body = Vec::with_capacity(limit.min(objects.len()) * 512 + 256);
        body.extend_from_slice(b"{\"kind\":\"");
        body.extend_from_slice(resource.kind().as_bytes());
        body.extend_from_slice(b"List\",\"apiVersion\":\"v1\",\"items\":[");
        let mut last = None;
        for (n, (key, object)) in page.by_ref().take(limit).enumerate() {
            if n > 0 {
                body.push(b',');
            }
            body.extend_from_slice(object);
            last = Some(key);
        }
        body.extend_from_slice(b"],\"metadata\":");
        let mut metadata = json!({"resourceVersion": version});
        if let (Some(last), Some(_)) = (last, page.next()) {
            metadata["continue"] = format!("{version}/{last}").into();
        }
        body.extend_from_slice(metadata.to_string().as_bytes());
        body.push(b'}');
        json_response(StatusCode::OK, body)
    }
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

impl State {
    fn map(&mut self, resource: Resource) -> &mut BTreeMap<String, Bytes> {
        match resource {
            Resource::Nodes => &mut self.nodes,
            Resource::Pods => &mut self.pods,
        }
    }

    fn publish(&mut self, resource: Resource, version: u64, line: Bytes) {
        self.watches.retain(|w| !w.events.is_closed());
        for watch in self.watches.iter().filter(|w| w.resource == resource) {
            let _ = watch.events.send(line.clone());
        }
        self.history.push_back((version, resource, line));
        while self.history.len() > self.history_cap {
            if let Some((dropped, _, _)) = self.history.pop_front() {
                self.oldest_replayable = dropped;
            }
        }
    }

    fn watch(&mut self, resource: Resource, query: &BTreeMap<String, String>) -> Response<Body> {
        let (events, receiver) = mpsc::unbounded_channel::<Bytes>();
        let from = query
            .get("resourceVersion")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if from == 0 {
            // No version: the current state as ADDED events, then changes.
            for object in self.map(resource).values() {
                let _ = events.send(event_line("ADDED", object));
            }
        } else if from < self.oldest_replayable {
            let gone = json!({"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("too old resource version: {from} ({})", self.oldest_replayable),
                "reason": "Expired", "code": 410}});
            let mut line = gone.to_string().into_bytes();
            line.push(b'\n');
            let _ = events.send(Bytes::from(line));
            drop(events);
            return stream_response(receiver, Duration::ZERO, None);
        } else {
            for (_, _, line) in self
                .history
                .iter()
                .filter(|(version, r, _)| *r == resource && *version > from)
            {
                let _ = events.send(line.clone());
            }
        }
        self.watches.push(OpenWatch {
            resource,
            bookmarks: query.get("allowWatchBookmarks").map(String::as_str) == Some("true"),
            events,
        });
        stream_response(receiver, watch_timeout(query), None)
    }
}

/// Sends every open watch that asked for them a BOOKMARK at the current version, forever.
async fn bookmarks(api: Arc<KubeApi>) {
    let mut tick = tokio::time::interval(BOOKMARK_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        let mut state = api.state();
        state.watches.retain(|w| !w.events.is_closed());
        let version = state.resource_version.to_string();
        for watch in state.watches.iter().filter(|w| w.bookmarks) {
            let bookmark = json!({"type": "BOOKMARK", "object": {"kind": watch.resource.kind(), "apiVersion": "v1",
                                  "metadata": {"resourceVersion": version}}});
            let mut line = bookmark.to_string().into_bytes();
            line.push(b'\n');
            let _ = watch.events.send(Bytes::from(line));
        }
    }
}

/// Sets `metadata.resourceVersion` (and a uid and creation time once); returns the object's key.
fn stamp(object: &mut Value, version: u64) -> Result<String> {
    let metadata = object["metadata"].as_object_mut().ok_or("an object without metadata")?;
    let name = metadata
        .get("name")
        .and_then(Value::as_str)
        .ok_or("an object without a name")?;
    let key = match metadata.get("namespace").and_then(Value::as_str) {
        Some(namespace) => format!("{namespace}/{name}"),
        None => name.to_owned(),
    };
    metadata.insert("resourceVersion".into(), version.to_string().into());
    metadata.entry("uid").or_insert_with(|| format!("uid-{key}").into());
    metadata
        .entry("creationTimestamp")
        .or_insert_with(|| "2026-01-05T09:00:00Z".into());
    Ok(key)
}

fn event_line(kind: &str, object: &[u8]) -> Bytes {
    let mut line = Vec::with_capacity(object.len() + 32);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    line.extend_from_slice(object);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

fn configmap() -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": CM_NAME, "namespace": "kube-system", "resourceVersion": "1"},
           "data": {}})
}

fn watch_timeout(query: &BTreeMap<String, String>) -> Duration {
    query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs)
}

/// A newline-delimited event stream that ends when its producers go away or at `timeout`;
/// `hold` (a watch with no producer) keeps it silent and open until the timeout.
fn stream_response(
    receiver: mpsc::UnboundedReceiver<Bytes>,
    timeout: Duration,
    hold: Option<mpsc::UnboundedSender<Bytes>>,
) -> Response<Body> {
    let deadline = tokio::time::Instant::now() + timeout;
    let stream = futures_util::stream::unfold((receiver, hold), move |(mut receiver, hold)| async move {
        // Replayed events go out even when the deadline is zero (a 410 then the end).
        if let Ok(line) = receiver.try_recv() {
            return Some((Ok::<_, Infallible>(Frame::data(line)), (receiver, hold)));
        }
        if hold.is_some() {
            tokio::time::sleep_until(deadline).await;
            return None;
        }
        let line = tokio::select! {
            line = receiver.recv() => line,
            () = tokio::time::sleep_until(deadline) => None,
        };
        line.map(|line| (Ok(Frame::data(line)), (receiver, hold)))
    });
    let mut response = Response::new(StreamBody::new(stream.boxed()).boxed_unsync());
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn json_response(code: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
    *response.status_mut() = code;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn json_value(code: StatusCode, value: &Value) -> Response<Body> {
    json_response(code, value.to_string().into_bytes())
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    json_value(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code.as_u16()}),
    )
}

async fn read_json(body: Incoming) -> Value {
    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
            (decode(k), decode(v))
        })
        .collect()
}

/// Binds the double on 127.0.0.1 (a random port).
pub(crate) async fn bind() -> Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    Ok((listener, address))
}
