//! The cluster inventory's working copy: watch events applied to persistent maps. A relist is
//! built aside and swapped in whole when its last page arrives, so a snapshot never shows a
//! half-listed cluster; every other event is an O(log n) update. A pod relist is built as an
//! index directly, so its names are interned as they arrive and no second copy of the list
//! exists when it completes. Pure: no I/O, no logging
//! (the follower in `cluster.rs` does both), so the bench and unit tests drive it directly.

use std::sync::Arc;

use imbl::OrdMap;
use kube::runtime::watcher::Event;

use super::lean::{LeanNode, LeanPod};
use super::{NodeInfo, PodIndex, Snapshot};

type NodeMap = OrdMap<String, Arc<NodeInfo>>;

/// Nodes and running pods as the watches have reported them so far.
#[derive(Debug, Clone, Default)]
pub struct Mirror {
    nodes: NodeMap,
    pods: PodIndex,
    /// A node relist in progress (between `Init` and `InitDone`).
    nodes_relist: Option<NodeMap>,
    pods_relist: Option<PodIndex>,
}

impl Mirror {
    pub fn apply_node_event(&mut self, event: Event<LeanNode>) {
        match event {
            Event::Init => self.nodes_relist = Some(OrdMap::new()),
            Event::InitApply(node) => {
                if let (Some(relist), Some(info)) = (self.nodes_relist.as_mut(), node.into_info()) {
                    relist.insert(info.name.clone(), Arc::new(info));
                }
            }
            Event::InitDone => {
                if let Some(relist) = self.nodes_relist.take() {
                    self.nodes = relist;
                }
            }
            Event::Apply(node) => {
                // Kubelets update their Node's status every few minutes and on any change,
                // mostly in fields the server does not read: an update that changes nothing
                // here leaves the map as it is, so the scraper keeps its plan (it compares
                // maps by pointer) and readers keep sharing this one.
                if let Some(info) = node.into_info() {
                    if self.nodes.get(&info.name).is_none_or(|held| **held != info) {
                        self.nodes.insert(info.name.clone(), Arc::new(info));
                    }
                }
            }
            Event::Delete(node) => {
                if let Some(name) = node.name() {
                    self.nodes.remove(name);
                }
            }
        }
    }

    pub fn apply_pod_event(&mut self, event: Event<LeanPod>) {
        match event {
            Event::Init => self.pods_relist = Some(PodIndex::default()),
            Event::InitApply(pod) => {
                if let Some(relist) = self.pods_relist.as_mut() {
                    upsert_pod(relist, pod);
                }
            }
            Event::InitDone => {
                if let Some(relist) = self.pods_relist.take() {
                    self.pods = relist;
                }
            }
            Event::Apply(pod) => upsert_pod(&mut self.pods, pod),
            Event::Delete(pod) => {
                if let Some((namespace, name)) = pod.key() {
                    self.pods.remove(namespace, name);
                }
            }
        }
    }

    /// The current view: two O(1) clones of the persistent maps.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            nodes: self.nodes.clone(),
            pods: self.pods.clone(),
        }
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }
}

/// Inserts or replaces a pod; a pod with no node yet is removed (no kubelet reports it).
fn upsert_pod(pods: &mut PodIndex, pod: LeanPod) {
    let Some((namespace, name)) = pod.key().map(|(ns, n)| (ns.to_owned(), n.to_owned())) else {
        return;
    };
    match pod.into_info() {
        Some(info) => pods.insert(info),
        None => pods.remove(&namespace, &name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(namespace: &str, name: &str, node: &str) -> LeanPod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": namespace, "name": name, "resourceVersion": "1"},
            "spec": {"nodeName": node},
        }))
        .unwrap()
    }

    fn node(name: &str) -> LeanNode {
        serde_json::from_value(serde_json::json!({"metadata": {"name": name, "resourceVersion": "1"}})).unwrap()
    }

    fn pods(mirror: &Mirror) -> Vec<String> {
        mirror
            .snapshot()
            .all_pods()
            .map(|p| format!("{}/{}@{}", p.namespace, p.name, p.node_name))
            .collect()
    }

    #[test]
    fn a_relist_is_swapped_in_whole_when_it_completes() {
        let mut m = Mirror::default();
        m.apply_pod_event(Event::Init);
        m.apply_pod_event(Event::InitApply(pod("a", "p1", "n1")));
        m.apply_pod_event(Event::InitDone);
        m.apply_pod_event(Event::Apply(pod("a", "p2", "n1")));
        // A relist (after 410 Gone) that no longer holds p1: readers keep the old view until
        // the relist is complete, then see exactly the relist.
        m.apply_pod_event(Event::Init);
        m.apply_pod_event(Event::InitApply(pod("b", "p3", "n2")));
        assert_eq!(pods(&m), ["a/p1@n1", "a/p2@n1"]);
        m.apply_pod_event(Event::InitDone);
        assert_eq!(pods(&m), ["b/p3@n2"]);
    }

    #[test]
    fn an_interrupted_relist_is_discarded_by_the_next_one() {
        let mut m = Mirror::default();
        m.apply_node_event(Event::Init);
        m.apply_node_event(Event::InitApply(node("half")));
        // The list failed on its second page; the watcher starts over.
        m.apply_node_event(Event::Init);
        m.apply_node_event(Event::InitApply(node("n1")));
        m.apply_node_event(Event::InitDone);
        assert_eq!(m.snapshot().nodes.keys().collect::<Vec<_>>(), ["n1"]);
    }

    #[test]
    fn deletes_forget_and_a_recreated_pod_has_one_node() {
        let mut m = Mirror::default();
        m.apply_pod_event(Event::Init);
        m.apply_pod_event(Event::InitApply(pod("a", "p", "n1")));
        m.apply_pod_event(Event::InitDone);
        m.apply_pod_event(Event::Delete(pod("a", "p", "n1")));
        assert!(m.snapshot().pods.is_empty(), "an emptied namespace is dropped too");
        m.apply_pod_event(Event::Apply(pod("a", "p", "n2")));
        assert_eq!(pods(&m), ["a/p@n2"]);
        assert_eq!(m.pod_count(), 1);
    }

    fn node_at(name: &str, resource_version: &str, address: &str) -> LeanNode {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "resourceVersion": resource_version},
            "status": {
                "addresses": [{"type": "InternalIP", "address": address}],
                "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": resource_version}],
            },
        }))
        .unwrap()
    }

    #[test]
    fn a_node_update_that_changes_nothing_read_keeps_the_map_and_a_new_address_replaces_it() {
        let mut m = Mirror::default();
        m.apply_node_event(Event::Init);
        m.apply_node_event(Event::InitApply(node_at("n1", "1", "10.0.0.1")));
        m.apply_node_event(Event::InitDone);
        let before = m.snapshot().nodes;

        // A status heartbeat: new resourceVersion and conditions, same addresses.
        m.apply_node_event(Event::Apply(node_at("n1", "2", "10.0.0.1")));
        assert!(m.snapshot().nodes.ptr_eq(&before), "the scraper's plan stays valid");

        m.apply_node_event(Event::Apply(node_at("n1", "3", "10.0.0.2")));
        let after = m.snapshot().nodes;
        assert!(!after.ptr_eq(&before));
        let addresses: Vec<&str> = after["n1"].addresses.iter().map(|a| a.address.as_str()).collect();
        assert_eq!(addresses, ["10.0.0.2"]);
    }
}
