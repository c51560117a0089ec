//! A Kubernetes API server double: list and watch of Nodes and Pods over HTTPS, as much of the
//! protocol as kube-runtime's watcher uses, driven by the test.
//!
//! - `GET /api/v1/{nodes,pods}` lists (`NodeList`/`PodList` with `metadata.resourceVersion`),
//!   honouring `fieldSelector` (`path=value`, `path!=value`) and `limit`/`continue` (a page cap
//!   can force pagination even when the client asks for 500).
//! - `?watch=true&resourceVersion=N` streams newline-delimited events: history after N is
//!   replayed, then live events follow. Field selectors turn an object entering or leaving the
//!   selection into `ADDED`/`DELETED`, as the real server does.
//! - The test adds, modifies and deletes objects (each bumps one global resourceVersion), sends
//!   bookmarks, drops every open watch, compacts history (a watch from before it gets an
//!   `ERROR` event with a 410 Status), and can hold lists or watches at the door.
//! - Every request is recorded, and tests wait for the one they expect rather than sleep.
//!
//! Not modelled: protobuf, label selectors on lists (recorded, not applied), writes, other
//! resources (404), authentication (the `Authorization` header is recorded, not checked).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] fns: a failed step should fail the test loudly"
)]

mod objects;
mod serve;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use metrics_server_rs::sandbox::kubelet_tls;
use metrics_server_rs::sandbox::pki::TestCa;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

#[allow(unused_imports, reason = "each test binary uses a different part of the helpers")]
pub use objects::{kube_client, load_kube_config, node_object, pod_object, write_kubeconfig, KubeAuth};
use serve::{change_line, event_line, handle, FieldSelector};

/// The two resources the double serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Nodes,
    Pods,
}

impl Resource {
    fn from_path(path: &str) -> Option<Self> {
        match path {
            "/api/v1/nodes" => Some(Resource::Nodes),
            "/api/v1/pods" => Some(Resource::Pods),
            _ => None,
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Resource::Nodes => "Node",
            Resource::Pods => "Pod",
        }
    }
}

/// List or watch: what a held gate stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    List,
    Watch,
}

/// One request as the double received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Decoded query parameters.
    pub query: BTreeMap<String, String>,
    pub authorization: Option<String>,
}

impl Recorded {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    pub fn resource(&self) -> Option<Resource> {
        Resource::from_path(&self.path)
    }

    pub fn verb(&self) -> Verb {
        if matches!(self.param("watch"), Some("true" | "1")) {
            Verb::Watch
        } else {
            Verb::List
        }
    }

    pub fn is(&self, resource: Resource, verb: Verb) -> bool {
        self.resource() == Some(resource) && self.verb() == verb
    }
}

/// A change, kept so that resumed watches can be replayed what they missed.
#[derive(Debug, Clone)]
struct Change {
    resource_version: u64,
    resource: Resource,
    /// The object before the change, to tell whether it was in a watch's selection.
    before: Option<Value>,
    /// After the change; `None` when deleted.
    after: Option<Value>,
    /// What a watch is sent: `after`, or for a deletion the last state at this version.
    object: Value,
}

#[derive(Debug)]
struct OpenWatch {
    resource: Resource,
    selector: FieldSelector,
    bookmarks: bool,
    events: mpsc::UnboundedSender<Bytes>,
}

/// The rest of a paginated list, as of the version its first page was served at.
#[derive(Debug)]
struct Continuation {
    resource_version: u64,
    remaining: Vec<Value>,
}

#[derive(Debug, Default)]
struct State {
    resource_version: u64,
    /// Watches from a version older than this get 410 Gone.
    compacted_at: u64,
    objects: HashMap<Resource, BTreeMap<String, Value>>,
    history: Vec<Change>,
    watches: Vec<OpenWatch>,
    page_cap: Option<usize>,
    continuations: HashMap<String, Continuation>,
    next_token: u64,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    requests: watch::Sender<Vec<Recorded>>,
    /// Watch requests whose stream is open and registered for live events.
    opened: watch::Sender<Vec<Recorded>>,
    held: watch::Sender<HashSet<(Resource, Verb)>>,
}

/// The running double; it stops serving (and closes its connections) when dropped.
#[derive(Debug)]
pub struct KubeApi {
    shared: Arc<Shared>,
    address: SocketAddr,
    ca_pem: String,
    task: JoinHandle<()>,
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl KubeApi {
    /// Serves on 127.0.0.1 with a certificate for that address signed by `ca`.
    pub async fn start(ca: &TestCa) -> KubeApi {
        Self::start_on(ca, "127.0.0.1:0".parse().unwrap()).await
    }

    /// Serves on `address` (a port reserved earlier, for tests where the API comes up late).
    pub async fn start_on(ca: &TestCa, address: SocketAddr) -> KubeApi {
        let leaf = ca.issue("kube-apiserver", &[&address.ip().to_string()]).unwrap();
        let tls = kubelet_tls(&leaf.cert_pem, &leaf.key_pem).unwrap();
        let listener = TcpListener::bind(address).await.unwrap();
        let address = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            requests: watch::Sender::new(Vec::new()),
            opened: watch::Sender::new(Vec::new()),
            held: watch::Sender::new(HashSet::new()),
        });
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            // Connections live in this set, so aborting the task closes them all.
            let mut connections = JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                while connections.try_join_next().is_some() {}
                let (tls, shared) = (tls.clone(), serving.clone());
                connections.spawn(async move {
                    let Ok(stream) = tls.accept(tcp).await else { return };
                    let service = hyper::service::service_fn(move |request| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(&shared, request).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        KubeApi {
            shared,
            address,
            ca_pem: ca.cert_pem(),
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The CA that signed the serving certificate (for a kubeconfig's `certificate-authority-data`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.state().resource_version
    }

    /// Creates or replaces a Node (ADDED or MODIFIED); returns the new resourceVersion.
    pub fn apply_node(&self, node: Value) -> u64 {
        self.apply(Resource::Nodes, node)
    }

    /// Creates or replaces a Pod (ADDED or MODIFIED); returns the new resourceVersion.
    pub fn apply_pod(&self, pod: Value) -> u64 {
        self.apply(Resource::Pods, pod)
    }

    pub fn delete_node(&self, name: &str) -> u64 {
        self.delete(Resource::Nodes, name.to_owned())
    }

    pub fn delete_pod(&self, namespace: &str, name: &str) -> u64 {
        self.delete(Resource::Pods, format!("{namespace}/{name}"))
    }

    /// Sends a BOOKMARK at the current resourceVersion to every open watch of `resource` that
    /// asked for bookmarks; returns that version.
    pub fn bookmark(&self, resource: Resource) -> u64 {
        let state = self.state();
        let line = event_line(
            "BOOKMARK",
            &json!({"kind": resource.kind(), "apiVersion": "v1",
                    "metadata": {"resourceVersion": state.resource_version.to_string()}}),
        );
        for watch in state.watches.iter().filter(|w| w.resource == resource && w.bookmarks) {
            let _ = watch.events.send(line.clone());
        }
        state.resource_version
    }

    /// Ends every open watch stream (as an API server restart or a load balancer would).
    pub fn drop_watches(&self) {
        self.state().watches.clear();
    }

    /// Forgets the history up to now: a watch resuming from an older version gets 410 Gone.
    pub fn compact(&self) {
        let mut state = self.state();
        state.compacted_at = state.resource_version;
        state.history.clear();
    }

    /// Serves lists in pages of at most `cap` objects, whatever `limit` the client asks for.
    pub fn set_page_cap(&self, cap: usize) {
        self.state().page_cap = Some(cap);
    }

    /// Requests of this kind wait at the door (recorded, unanswered) until released.
    pub fn hold(&self, resource: Resource, verb: Verb) {
        self.shared.held.send_modify(|held| {
            held.insert((resource, verb));
        });
    }

    pub fn release(&self, resource: Resource, verb: Verb) {
        self.shared.held.send_modify(|held| {
            held.remove(&(resource, verb));
        });
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.borrow().clone()
    }

    /// Waits (guarded by a timeout) until `n` requests matching `matches` have arrived;
    /// returns them in arrival order.
    pub async fn wait_for_requests(&self, what: &str, n: usize, matches: impl Fn(&Recorded) -> bool) -> Vec<Recorded> {
        wait_for(&self.shared.requests, what, n, matches).await
    }

    /// Waits until `n` watches of `resource` have been opened (registered for live events,
    /// their replay already queued); returns them in order.
    pub async fn wait_for_open_watches(&self, resource: Resource, n: usize) -> Vec<Recorded> {
        wait_for(&self.shared.opened, &format!("{n} open {resource:?} watches"), n, |r| {
            r.is(resource, Verb::Watch)
        })
        .await
    }

    /// The requests so far that match.
    pub fn matching(&self, matches: impl Fn(&Recorded) -> bool) -> Vec<Recorded> {
        self.shared
            .requests
            .borrow()
            .iter()
            .filter(|r| matches(r))
            .cloned()
            .collect()
    }

    /// How many requests match so far.
    pub fn count(&self, matches: impl Fn(&Recorded) -> bool) -> usize {
        self.shared.requests.borrow().iter().filter(|r| matches(r)).count()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap()
    }

    fn apply(&self, resource: Resource, mut object: Value) -> u64 {
        let key = object_key(&object);
        let mut state = self.state();
        state.resource_version += 1;
        let version = state.resource_version;
        let metadata = object["metadata"].as_object_mut().expect("objects have metadata");
        metadata.insert("resourceVersion".into(), version.to_string().into());
        metadata.entry("uid").or_insert_with(|| format!("uid-{key}").into());
        metadata
            .entry("creationTimestamp")
            .or_insert_with(|| "2021-10-03T09:00:00Z".into());
        let before = state.objects.entry(resource).or_default().insert(key, object.clone());
        state.record(Change {
            resource_version: version,
            resource,
            before,
            after: Some(object.clone()),
            object,
        });
        version
    }

    fn delete(&self, resource: Resource, key: String) -> u64 {
        let mut state = self.state();
        let before = state
            .objects
            .entry(resource)
            .or_default()
            .remove(&key)
            .unwrap_or_else(|| panic!("deleting {key}, which the double does not hold"));
        state.resource_version += 1;
        let version = state.resource_version;
        let mut object = before.clone();
        object["metadata"]["resourceVersion"] = version.to_string().into();
        state.record(Change {
            resource_version: version,
            resource,
            before: Some(before),
            after: None,
            object,
        });
        version
    }
}

impl State {
    /// Sends a change to the open watches it concerns and keeps it for resumed ones.
    fn record(&mut self, change: Change) {
        for watch in self.watches.iter().filter(|w| w.resource == change.resource) {
            if let Some(line) = change_line(&change, &watch.selector) {
                let _ = watch.events.send(line);
            }
        }
        self.watches.retain(|w| !w.events.is_closed());
        self.history.push(change);
    }
}

/// Waits on `log` until `n` of its entries match, with a timeout as the failure guard.
async fn wait_for(
    log: &watch::Sender<Vec<Recorded>>,
    what: &str,
    n: usize,
    matches: impl Fn(&Recorded) -> bool,
) -> Vec<Recorded> {
    let mut log = log.subscribe();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        let seen = log
            .wait_for(|all| all.iter().filter(|r| matches(r)).count() >= n)
            .await
            .unwrap();
        seen.iter().filter(|r| matches(r)).cloned().collect::<Vec<_>>()
    })
    .await;
    match found {
        Ok(found) => found,
        Err(_) => panic!("the API double never saw {what}; requests: {:#?}", log.borrow().clone()),
    }
}

fn object_key(object: &Value) -> String {
    let name = object["metadata"]["name"].as_str().expect("objects have a name");
    match object["metadata"]["namespace"].as_str() {
        Some(namespace) => format!("{namespace}/{name}"),
        None => name.to_owned(),
    }
}
