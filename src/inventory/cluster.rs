//! The inventory from the Kubernetes API: watches of Nodes (all) and Pods (running ones, by a
//! server-side field selector), kept as persistent maps so publishing a snapshot after every
//! batch of events is an O(1) clone even at 150k pods.
//!
//! kube-runtime's watcher resumes dropped watches and relists on `410 Gone`; [`backoff`] paces
//! its retries while the API server is unreachable; [`Mirror`] builds a relist aside and swaps
//! it in whole. Until both first lists complete, `/readyz` names the informer still missing.
//!
//! [`backoff`]: super::backoff

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use futures_util::{FutureExt, Stream, StreamExt};
use kube::runtime::watcher::{self, Event};
use kube::Api;
use tokio::sync::watch;

use super::backoff::paced;
use super::lean::{LeanNode, LeanPod};
use super::mirror::Mirror;
use super::{Inventory, Snapshot};

/// Upstream's pod informer lists only running pods (pkg/server/informer.go).
const RUNNING_PODS: &str = "status.phase=Running";

/// An inventory kept current by watches.
#[derive(Debug)]
pub struct ClusterInventory {
    current: RwLock<Arc<Snapshot>>,
    nodes_synced: AtomicBool,
    pods_synced: AtomicBool,
    /// The last watch failure while the API server fails; cleared when data flows again.
    api_error: Mutex<Option<String>>,
    /// Bumped after every published change; tests and callers wait on it instead of sleeping.
    generation: watch::Sender<u64>,
    /// The API server's URL, for log lines an operator can act on.
    server: String,
}

impl ClusterInventory {
    /// Starts watching through `client`; the returned inventory fills in as lists arrive.
    pub fn start(client: kube::Client, server: String) -> Arc<Self> {
        let inventory = Arc::new(Self::empty(server));
        let nodes = paced(watcher::watcher(
            Api::<LeanNode>::all(client.clone()),
            watcher::Config::default(),
        ))
        .map(|e| e.map(Change::Node));
        let pods = paced(watcher::watcher(
            Api::<LeanPod>::all(client),
            watcher::Config::default().fields(RUNNING_PODS),
        ))
        .map(|e| e.map(Change::Pod));
        tokio::spawn(
            inventory
                .clone()
                .follow(Box::pin(futures_util::stream::select(nodes, pods))),
        );
        inventory
    }

    fn empty(server: String) -> Self {
        ClusterInventory {
            server,
            current: RwLock::default(),
            nodes_synced: AtomicBool::new(false),
            pods_synced: AtomicBool::new(false),
            api_error: Mutex::new(None),
            generation: watch::Sender::new(0),
        }
    }

    /// A receiver that changes whenever a new snapshot is published (or a failure recorded).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Resolves once both first lists have completed (at once if they have).
    pub async fn synced(&self) {
        let mut changes = self.changes();
        // The flags are set before the change is published, so no wake-up is lost.
        while !self.has_synced() {
            if changes.changed().await.is_err() {
                return; // the sender lives in `self`: unreachable while we are borrowed
            }
        }
    }

    /// Why watching the API server fails right now, if it does.
    pub fn api_error(&self) -> Option<String> {
        self.api_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn follow(self: Arc<Self>, mut events: impl Stream<Item = Result<Change, watcher::Error>> + Unpin) {
        let mut mirror = Mirror::default();
        while let Some(event) = events.next().await {
            self.handle(&mut mirror, event);
            // Apply whatever else is already here before publishing once.
            while let Some(Some(event)) = events.next().now_or_never() {
                self.handle(&mut mirror, event);
            }
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(mirror.snapshot());
            self.generation.send_modify(|g| *g += 1);
        }
    }

    fn handle(&self, mirror: &mut Mirror, event: Result<Change, watcher::Error>) {
        let change = match event {
            Ok(change) => change,
            Err(error) => return self.failed(&error),
        };
        // `Init` starts every attempt, including ones about to fail: only data proves the API
        // server is back.
        if !matches!(change, Change::Node(Event::Init) | Change::Pod(Event::Init)) {
            self.recovered();
        }
        match change {
            Change::Node(event) => {
                let listed = matches!(event, Event::InitDone);
                mirror.apply_node_event(event);
                if listed && !self.nodes_synced.swap(true, Ordering::AcqRel) {
                    tracing::info!(nodes = mirror.node_count(), "Node inventory synced");
                }
            }
            Change::Pod(event) => {
                let listed = matches!(event, Event::InitDone);
                mirror.apply_pod_event(event);
                if listed && !self.pods_synced.swap(true, Ordering::AcqRel) {
                    tracing::info!(pods = mirror.pod_count(), "Pod inventory synced");
                }
            }
        }
    }

    /// Logs a failure once per distinct cause, not once per retry.
    fn failed(&self, error: &watcher::Error) {
        // 410 Gone is the protocol working: the watch fell behind and the watcher relists.
        if let watcher::Error::WatchError(status) = error {
            if status.code == 410 {
                tracing::info!(server = %self.server, "A watch expired (410 Gone); relisting");
                return;
            }
        }
        let text = error_chain(error);
        let mut last = self.api_error.lock().unwrap_or_else(|e| e.into_inner());
        if last.as_deref() != Some(&text) {
            tracing::warn!(
                server = %self.server,
                error = %text,
                "Watching the Kubernetes API failed; serving the last known inventory and retrying with backoff"
            );
            *last = Some(text);
        }
    }

    fn recovered(&self) {
        let mut last = self.api_error.lock().unwrap_or_else(|e| e.into_inner());
        if last.take().is_some() {
            tracing::info!(server = %self.server, "Watching the Kubernetes API recovered");
        }
    }
}

impl Inventory for ClusterInventory {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn has_synced(&self) -> bool {
        self.unsynced().is_none()
    }

    fn unsynced(&self) -> Option<&'static str> {
        if !self.nodes_synced.load(Ordering::Acquire) {
            Some("node")
        } else if !self.pods_synced.load(Ordering::Acquire) {
            Some("pod")
        } else {
            None
        }
    }

    fn last_error(&self) -> Option<String> {
        self.api_error()
    }
}

enum Change {
    Node(Event<LeanNode>),
    Pod(Event<LeanPod>),
}

/// The error and its causes on one line ("failed to list: connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}
