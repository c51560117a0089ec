//! Which nodes and pods exist: the one side input that both the scraper (whom to scrape, at
//! which address) and the API (which objects to serve, with which labels) need.
//!
//! The seam is one trait with a cheap, consistent [`Snapshot`]. The sandbox and tests use
//! [`fixed::FixedInventory`]; a cluster inventory fills the same snapshot from watches.

mod backoff;
pub mod cluster;
pub mod fixed;
mod label_keys;
pub mod labels;
pub mod lean;
pub mod mirror;
pub mod pod_index;
pub mod selector;

use std::fmt;
use std::sync::Arc;

use imbl::OrdMap;

pub use pod_index::PodIndex;

pub use labels::Labels;

/// What the server needs to know of a Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub labels: Labels,
    /// `status.addresses` in the node's own order.
    pub addresses: Vec<NodeAddress>,
    /// `status.daemonEndpoints.kubeletEndpoint.Port`; 0 when the node does not report it.
    pub kubelet_status_port: u16,
}

/// One entry of a node's `status.addresses`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddress {
    /// `Hostname`, `InternalDNS`, `InternalIP`, `ExternalDNS` or `ExternalIP`.
    pub address_type: String,
    pub address: String,
}

/// What the server needs to know of a running Pod.
///
/// The names are shared strings: a [`PodIndex`] points every pod of a namespace or a node at
/// one allocation of that name, and keys its by-name map with the pod's own `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub labels: Labels,
    /// `spec.nodeName`: the only node whose kubelet may report this pod.
    pub node_name: Arc<str>,
}

/// A consistent view of the inventory at one moment. Readers hold an `Arc` to it; the maps
/// are persistent (structurally shared), so a writer derives the next snapshot from the last
/// in O(log n) per change and publishes it whole.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub nodes: OrdMap<String, Arc<NodeInfo>>,
    /// Running pods by namespace then name, and by node.
    pub pods: PodIndex,
}

impl Snapshot {
    pub fn pod(&self, namespace: &str, name: &str) -> Option<&Arc<PodInfo>> {
        self.pods.get(namespace, name)
    }

    /// Every pod, in (namespace, name) order.
    pub fn all_pods(&self) -> impl Iterator<Item = &Arc<PodInfo>> {
        self.pods.iter()
    }

    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// Builds a snapshot from lists, keeping the last of any duplicate.
    pub fn from_parts(nodes: impl IntoIterator<Item = NodeInfo>, pods: impl IntoIterator<Item = PodInfo>) -> Self {
        let mut snapshot = Snapshot::default();
        for node in nodes {
            snapshot.nodes.insert(node.name.clone(), Arc::new(node));
        }
        snapshot.pods = PodIndex::from_pods(pods);
        snapshot
    }
}

/// The inventory seam.
pub trait Inventory: Send + Sync + fmt::Debug + 'static {
    /// The current view; cheap (an `Arc` clone).
    fn snapshot(&self) -> Arc<Snapshot>;
    /// Whether the first complete view has arrived (upstream: informer caches synced).
    fn has_synced(&self) -> bool;
    /// Which informer has not synced yet (`"node"` or `"pod"`), for `/readyz`'s message.
    fn unsynced(&self) -> Option<&'static str> {
        if self.has_synced() {
            None
        } else {
            Some("node")
        }
    }
    /// Why keeping the inventory current fails right now (the last list/watch error), for
    /// `/readyz`'s explanation; `None` while it works or cannot fail.
    fn last_error(&self) -> Option<String> {
        None
    }
}
