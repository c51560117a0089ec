//! A fake kube-apiserver over plain HTTP on loopback, for delegated authentication tests. It
//! answers TokenReviews and SubjectAccessReviews as the test decides (counting and recording
//! them), and serves the ConfigMap `kube-system/extension-apiserver-authentication` for get,
//! list and watch, streaming a watch event whenever the test changes it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const CM_PATH: &str = "/api/v1/namespaces/kube-system/configmaps";
const CM_NAME: &str = "extension-apiserver-authentication";

/// What a SubjectAccessReview answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Allow,
    Deny(String),
    NoOpinion,
    /// HTTP 500 with a body full of internal detail that must not reach clients.
    Fail,
}

/// Decides each SubjectAccessReview from its spec.
pub type AccessPolicy = Arc<dyn Fn(&Value) -> Access + Send + Sync>;

/// The body of a failing review: must never show up in a response of the server under test.
pub const SECRET_DETAIL: &str = "etcd-leader-10.0.0.3 is on fire";

struct State {
    /// token → (username, groups)
    tokens: BTreeMap<String, (String, Vec<String>)>,
    access: AccessPolicy,
    token_reviews: AtomicUsize,
    access_reviews: Mutex<Vec<Value>>,
    /// The ConfigMap's data (None: it does not exist) and its resourceVersion.
    configmap: watch::Sender<(Option<BTreeMap<String, String>>, u64)>,
}

/// A running fake; stops when dropped.
pub struct FakeApiServer {
    pub url: String,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeApiServer {
    /// Starts with `tokens` (token → user, groups), an access policy, and the ConfigMap data.
    pub async fn start(
        tokens: &[(&str, &str, &[&str])],
        access: AccessPolicy,
        configmap: Option<BTreeMap<String, String>>,
    ) -> Self {
        let tokens = tokens
            .iter()
            .map(|(t, u, g)| {
                (
                    (*t).to_owned(),
                    ((*u).to_owned(), g.iter().map(|g| (*g).to_owned()).collect()),
                )
            })
            .collect();
        let state = Arc::new(State {
            tokens,
            access,
            token_reviews: AtomicUsize::new(0),
            access_reviews: Mutex::new(Vec::new()),
            configmap: watch::Sender::new((configmap, 1)),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let state = served.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| answer(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        FakeApiServer { url, state, task }
    }

    /// A client of this fake, as `--authentication-kubeconfig` would make one.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    pub fn token_reviews(&self) -> usize {
        self.state.token_reviews.load(Ordering::SeqCst)
    }

    /// Every SubjectAccessReview spec received, in order.
    pub fn access_reviews(&self) -> Vec<Value> {
        self.state.access_reviews.lock().unwrap().clone()
    }

    /// Replaces the ConfigMap's data (None deletes it); watchers see the change.
    pub fn set_configmap(&self, data: Option<BTreeMap<String, String>>) {
        self.state.configmap.send_modify(|(current, version)| {
            *current = data;
            *version += 1;
        });
    }
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut body = serde_json::to_vec(value).unwrap();
    body.push(b'\n');
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)).boxed_unsync())
        .unwrap()
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    json_response(
        StatusCode::from_u16(code).unwrap(),
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}),
    )
}

fn configmap_json(data: &BTreeMap<String, String>, version: u64) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": CM_NAME, "namespace": "kube-system", "resourceVersion": version.to_string()},
        "data": data,
    })
}

async fn answer(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (head, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let path = head.uri.path();
    let query = head.uri.query().unwrap_or("");
    Ok(match (head.method.clone(), path) {
        (Method::POST, "/apis/authentication.k8s.io/v1/tokenreviews") => {
            state.token_reviews.fetch_add(1, Ordering::SeqCst);
            let review: Value = serde_json::from_slice(&body).unwrap();
            let token = review["spec"]["token"].as_str().unwrap_or("");
            let status = match state.tokens.get(token) {
                Some((user, groups)) => {
                    json!({"authenticated": true, "user": {"username": user, "uid": format!("uid-{user}"), "groups": groups}})
                }
                None => json!({"authenticated": false, "error": "invalid bearer token"}),
            };
            json_response(
                StatusCode::CREATED,
                &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                        "metadata": {}, "spec": review["spec"], "status": status}),
            )
        }
        (Method::POST, "/apis/authorization.k8s.io/v1/subjectaccessreviews") => {
            let review: Value = serde_json::from_slice(&body).unwrap();
            let spec = review["spec"].clone();
            state.access_reviews.lock().unwrap().push(spec.clone());
            let status = match (state.access)(&spec) {
                Access::Allow => json!({"allowed": true}),
                Access::Deny(reason) => json!({"allowed": false, "denied": true, "reason": reason}),
                Access::NoOpinion => json!({"allowed": false}),
                Access::Fail => return Ok(status(500, "InternalError", SECRET_DETAIL)),
            };
            json_response(
                StatusCode::CREATED,
                &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                        "metadata": {}, "spec": spec, "status": status}),
            )
        }
        (Method::GET, p) if p == format!("{CM_PATH}/{CM_NAME}") => {
            let (data, version) = state.configmap.borrow().clone();
            match data {
                Some(data) => json_response(StatusCode::OK, &configmap_json(&data, version)),
                None => status(404, "NotFound", &format!("configmaps \"{CM_NAME}\" not found")),
            }
        }
        (Method::GET, CM_PATH) if query.split('&').any(|kv| kv == "watch=true" || kv == "watch=1") => {
            let since = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("resourceVersion="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            watch(&state, since)
        }
        (Method::GET, CM_PATH) => {
            let (data, version) = state.configmap.borrow().clone();
            let items: Vec<Value> = data.iter().map(|d| configmap_json(d, version)).collect();
            json_response(
                StatusCode::OK,
                &json!({"apiVersion": "v1", "kind": "ConfigMapList",
                        "metadata": {"resourceVersion": version.to_string()}, "items": items}),
            )
        }
        _ => status(404, "NotFound", "the server could not find the requested resource"),
    })
}

/// A watch stream from resourceVersion `since`: the current state first if it is newer, then
/// one event per change.
fn watch(state: &State, since: u64) -> Response<Body> {
    let mut changes = state.configmap.subscribe();
    let last = if changes.borrow().1 > since {
        changes.mark_changed();
        None
    } else {
        changes.borrow().0.clone()
    };
    let events = futures_util::stream::unfold((changes, last), |(mut changes, last)| async move {
        changes.changed().await.ok()?;
        let (data, version) = changes.borrow_and_update().clone();
        let event = match (&last, &data) {
            (_, Some(d)) => {
                json!({"type": if last.is_some() {"MODIFIED"} else {"ADDED"}, "object": configmap_json(d, version)})
            }
            (Some(old), None) => json!({"type": "DELETED", "object": configmap_json(old, version)}),
            (None, None) => {
                json!({"type": "BOOKMARK", "object": {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"resourceVersion": version.to_string()}}})
            }
        };
        let mut line = serde_json::to_vec(&event).unwrap();
        line.push(b'\n');
        Some((Ok::<_, Infallible>(Frame::data(Bytes::from(line))), (changes, data)))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(StreamBody::new(events.boxed()).boxed_unsync())
        .unwrap()
}
