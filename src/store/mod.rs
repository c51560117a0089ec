//! The in-memory windowed store: for every node, the last two usable points of the node and
//! of each of its containers, and the usage (CPU rate, memory) they yield.
//!
//! The scraper applies one node's [`NodeBatch`] at a time; the store replaces everything it
//! held for that node (pods the kubelet no longer reports vanish), and serves its usage to the
//! API until it is older than the staleness bound: the node's is computed once per apply, a
//! pod's from its containers' windows when read (a few subtractions and divisions, cheaper
//! than holding it for 150k pods). It knows nothing of the inventory: callers ask for a node
//! or pod and forget nodes that leave.
//!
//! Differences from upstream, all deliberate (spec §2):
//! * state is kept per node, not as one global batch, so a failed scrape of one node does not
//!   touch the others, and a node's data outlives one failed scrape: it is served while its
//!   last apply is at most `max_age` old (callers pass two resolutions), where upstream blanks
//!   it at once;
//! * containers of a pod are sorted by name, where upstream's order is random;
//! * a pod whose every container fails the usage computation is omitted, where upstream serves
//!   it with no containers and a null timestamp;
//! * a container never measures from a zero point, so no ~292-year windows appear.
//!
//! Concurrency: each node's state is an immutable [`node::NodeState`] behind an `Arc`. An
//! apply builds the next state outside any lock and swaps it in with a short write; a read
//! clones the `Arc` and releases the map at once, except a single pod's, which computes its
//! usage (a binary search, a few divisions) under the shard's read lock.

mod node;
mod window;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use crate::kubelet::{NodeBatch, Timestamp};
use node::NodeState;

/// The hasher of the node map (see [`Store`]'s `nodes`): seeded per store.
type NodeHasher = foldhash::fast::RandomState;

/// Resource usage of a node or container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Average CPU use over the window, in billionths of a core.
    pub cpu_nanocores: u64,
    /// Working-set memory at the end of the window, in bytes.
    pub memory_bytes: u64,
}

/// A node's usage as served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeUsage {
    /// Kubelet time of the last point.
    pub timestamp: Timestamp,
    /// Time between the two points the CPU rate was measured over.
    pub window: Duration,
    pub usage: Usage,
}

/// One container's usage within a [`PodUsage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerUsage {
    pub name: Arc<str>,
    pub usage: Usage,
}

/// A pod's usage as served. The default (no containers) is a buffer for the `*_into` reads,
/// which reuse its containers' allocation from pod to pod.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodUsage {
    /// The earliest last-point time among the containers (first by name among ties).
    pub timestamp: Timestamp,
    /// The window of that same container.
    pub window: Duration,
    /// Never empty; sorted by name.
    pub containers: Vec<ContainerUsage>,
}

impl PodUsage {
    fn with_capacity(containers: usize) -> Self {
        PodUsage {
            containers: Vec::with_capacity(containers),
            ..PodUsage::default()
        }
    }
}

/// Points that can yield usage: for `metrics_server_storage_points{type="node"|"container"}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoredPoints {
    /// Nodes whose window has a prev point.
    pub nodes: usize,
    /// Containers whose window has a prev point.
    pub containers: usize,
}

/// The store; share it as `Arc<Store>`.
#[derive(Debug)]
pub struct Store {
    /// The scrape period: containers younger than this are measured from their start.
    resolution: Duration,
    /// How long after its last apply a node's data is still served.
    max_age: Duration,
    /// Keyed by node name. Node names come from the API server, which the server trusts, so
    /// they need no DoS-resistant hash: foldhash costs a fraction of the default SipHash on
    /// every read (a GET of one pod, a LIST's lookup of each node).
    nodes: DashMap<Arc<str>, Arc<NodeState>, NodeHasher>,
    /// The last readiness reported by [`Store::is_ready`], to log changes only.
    readiness: AtomicU8,
}

impl Store {
    pub fn new(resolution: Duration, max_age: Duration) -> Self {
        Store {
            resolution,
            max_age,
            nodes: DashMap::with_hasher(NodeHasher::default()),
            readiness: AtomicU8::new(Readiness::Unknown as u8),
        }
    }

    /// Replaces everything held for `node` with this batch (pods absent from it vanish),
    /// advancing each node/container window by upstream's rules, and recomputes that node's
    /// usage and its count of servable pods once.
    ///
    /// Applies for one node are expected one at a time; if two do race, neither is lost: the
    /// later swap sees the earlier one and is rebuilt on top of it.
    ///
    /// Returns how many pods the batch reported (counted here, where the batch is grouped by
    /// pod anyway, rather than by a second pass over it).
    pub fn apply(&self, node: &str, batch: &NodeBatch<'_>, scraped_at: Instant) -> usize {
        let mut base = self.held(node);
        loop {
            let old = base.as_ref().map(|(_, state)| &**state);
            let next = Arc::new(NodeState::advance(node, old, batch, scraped_at, self.resolution));
            let pods = next.pods.len();
            let key = base
                .as_ref()
                .map_or_else(|| Arc::from(node), |(key, _)| Arc::clone(key));
            // Swap in only if the state we built on is still the current one. The replaced
            // state is freed when `base` drops, after the shard lock is released.
            match self.nodes.entry(key) {
                Entry::Occupied(mut current) => {
                    if base.as_ref().is_some_and(|(_, s)| Arc::ptr_eq(s, current.get())) {
                        current.insert(next);
                        return pods;
                    }
                    base = Some((Arc::clone(current.key()), Arc::clone(current.get())));
                }
                Entry::Vacant(slot) => {
                    if base.is_none() {
                        slot.insert(next);
                        return pods;
                    }
                    // Forgotten meanwhile: start again as a new node.
                    base = None;
                }
            }
        }
    }

    /// Drops everything held for `node`.
    pub fn forget_node(&self, node: &str) {
        self.nodes.remove(node);
    }

    /// Drops every node for which `keep` is false. `keep` runs with no lock held.
    pub fn retain_nodes(&self, keep: impl Fn(&str) -> bool) {
        let held: Vec<Arc<str>> = self.nodes.iter().map(|e| Arc::clone(e.key())).collect();
        for node in held.iter().filter(|node| !keep(node)) {
            self.nodes.remove(node);
        }
    }

    /// Usage if the node's last successful apply is not older than max_age at `now`.
    pub fn node_usage(&self, node: &str, now: Instant) -> Option<NodeUsage> {
        self.fresh(node, now)?.usage
    }

    /// The pod's usage, if it was in the node's last batch, has usage, and is fresh at `now`.
    pub fn pod_usage(&self, node: &str, namespace: &str, pod: &str, now: Instant) -> Option<PodUsage> {
        let entry = self.nodes.get(node)?;
        // Read under the shard's read lock, held for one binary search and a few divisions:
        // cheaper than taking and dropping a reference to the state; an apply's swap into
        // this shard waits at most that long.
        let state = entry.value();
        if !state.is_fresh(now, self.max_age) {
            return None;
        }
        state.pod_usage(state.pod_position(namespace, pod)?)
    }

    /// The pods held for `node` if its data is fresh at `now`, for a LIST: one map lookup per
    /// node, then a forward merge (a cursor) over its pods.
    pub fn node_pods(&self, node: &str, now: Instant) -> Option<NodePods> {
        self.fresh(node, now).map(NodePods)
    }

    /// Upstream readiness: at least one node with usage and at least one pod with usage
    /// (fresh at `now`). A change is logged once.
    pub fn is_ready(&self, now: Instant) -> bool {
        let (mut nodes, mut pods) = (false, false);
        for entry in self.nodes.iter() {
            let state = entry.value();
            if state.is_fresh(now, self.max_age) {
                nodes |= state.usage.is_some();
                pods |= state.served_pods > 0;
                if nodes && pods {
                    break;
                }
            }
        }
        let readiness = Readiness::of(nodes, pods);
        if self.readiness.swap(readiness as u8, Ordering::Relaxed) != readiness as u8 {
            readiness.log();
        }
        readiness == Readiness::Ready
    }

    /// Servable points, for `metrics_server_storage_points{type="node"|"container"}`: number
    /// of nodes and containers that have a prev point. Counts what is held, stale or not,
    /// until the node is forgotten.
    pub fn points(&self) -> StoredPoints {
        self.nodes.iter().fold(StoredPoints::default(), |mut points, entry| {
            points.nodes += usize::from(entry.node_has_prev());
            points.containers += entry.containers_with_prev;
            points
        })
    }

    fn held(&self, node: &str) -> Option<(Arc<str>, Arc<NodeState>)> {
        let entry = self.nodes.get(node)?;
        Some((Arc::clone(entry.key()), Arc::clone(entry.value())))
    }

    fn fresh(&self, node: &str, now: Instant) -> Option<Arc<NodeState>> {
        let state = Arc::clone(self.nodes.get(node)?.value());
        state.is_fresh(now, self.max_age).then_some(state)
    }
}

/// One node's pods as held at one moment (see [`Store::node_pods`]). The same object always
/// yields the same usage: it is computed from the node's immutable windows on each read.
#[derive(Debug)]
pub struct NodePods(Arc<NodeState>);

impl NodePods {
    /// Every servable pod (namespace, name, usage), in (namespace, name) order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, PodUsage)> {
        let state = &*self.0;
        (0..state.pods.len()).filter_map(move |position| {
            let (namespace, name) = state.key(state.pods.get(position)?);
            Some((namespace, name, state.pod_usage(position)?))
        })
    }

    /// A cursor for looking pods up in (namespace, name) order.
    pub fn cursor(&self) -> PodCursor<'_> {
        PodCursor {
            state: &self.0,
            next: 0,
        }
    }

    /// A cursor over pods of `namespace` only, by name, that owns these pods: a reader that
    /// visits pods in another order than the store's (a namespaced LIST goes by name) keeps
    /// one per node. It starts at the namespace's first pod (a binary search), not at the
    /// node's first.
    pub fn into_namespace_cursor(self, namespace: &str) -> OwnedPodCursor {
        let next = self.0.namespace_start(namespace);
        OwnedPodCursor { pods: self, next }
    }

    /// A mark of this exact state that does not keep its data alive (for the API's cache of
    /// encoded lists: an apply always swaps in a new state).
    pub fn mark(&self) -> StateMark {
        StateMark(Arc::downgrade(&self.0))
    }
}

/// Names one state of a node (see [`NodePods::mark`]). It holds the state's allocation, not its
/// pods, so no later state can reuse the address: [`StateMark::is`] is identity, never a guess.
#[derive(Debug, Clone)]
pub struct StateMark(Weak<NodeState>);

impl StateMark {
    /// Whether `pods` is the state this mark was taken of.
    pub fn is(&self, pods: &NodePods) -> bool {
        std::ptr::eq(self.0.as_ptr(), Arc::as_ptr(&pods.0))
    }
}

/// Looks up pods of one node in ascending (namespace, name) order, each lookup starting where
/// the last one ended: a merge of two sorted lists, linear in their lengths overall.
#[derive(Debug)]
pub struct PodCursor<'s> {
    state: &'s NodeState,
    next: usize,
}

impl PodCursor<'_> {
    /// Writes the pod's usage over `usage`, reusing its allocation; `false` when the pod is not
    /// held or has no usage. Asking for a key that sorts before the previous one finds nothing.
    pub fn seek_into(&mut self, namespace: &str, name: &str, usage: &mut PodUsage) -> bool {
        find(self.state, &mut self.next, namespace, name).is_some_and(|at| self.state.pod_usage_into(at, usage))
    }
}

/// A [`PodCursor`] that owns its node's pods (see [`NodePods::into_namespace_cursor`]).
#[derive(Debug)]
pub struct OwnedPodCursor {
    pods: NodePods,
    next: usize,
}

impl OwnedPodCursor {
    /// As [`PodCursor::seek_into`].
    pub fn seek_into(&mut self, namespace: &str, name: &str, usage: &mut PodUsage) -> bool {
        let state = &*self.pods.0;
        find(state, &mut self.next, namespace, name).is_some_and(|at| state.pod_usage_into(at, usage))
    }
}

/// Where the pod is in `state`'s pods, looking from `next` on, which it moves past the pods
/// ordered before it.
fn find(state: &NodeState, next: &mut usize, namespace: &str, name: &str) -> Option<usize> {
    node::seek(&state.pods, next, |p| state.key(p).cmp(&(namespace, name)))?;
    next.checked_sub(1)
}

/// What [`Store::is_ready`] last saw, with the likely cause when not ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Readiness {
    Unknown,
    Ready,
    NodesMissing,
    PodsMissing,
    BothMissing,
}

impl Readiness {
    fn of(nodes: bool, pods: bool) -> Self {
        match (nodes, pods) {
            (true, true) => Readiness::Ready,
            (false, true) => Readiness::NodesMissing,
            (true, false) => Readiness::PodsMissing,
            (false, false) => Readiness::BothMissing,
        }
    }

    fn log(self) {
        match self {
            Readiness::Ready => tracing::info!("metric storage is ready"),
            Readiness::NodesMissing => tracing::info!(
                "metric storage is not ready: node metrics are missing, \
                 this may indicate a kubelet or node issue"
            ),
            Readiness::PodsMissing => tracing::info!(
                "metric storage is not ready: pod metrics are missing, \
                 this may indicate a container-runtime or kubelet issue"
            ),
            Readiness::BothMissing => tracing::info!(
                "metric storage is not ready: no node or pod metrics, \
                 this may indicate the scrapes are failing"
            ),
            Readiness::Unknown => {}
        }
    }
}
