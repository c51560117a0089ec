//! Running pods, indexed two ways: by (namespace, name) for gets and namespaced lists, and by
//! node for the LIST of every pod, which walks the store one node at a time (one store lookup
//! per node and a forward merge over its pods, instead of a hash and a binary search per pod).
//!
//! Both indexes are persistent maps, so a snapshot is an O(1) clone and one change is
//! O(log n). A node's pods are a small sorted slice, rebuilt whole when one of them changes:
//! a node holds tens of pods, so copying its slice is cheaper than another map level, and it
//! costs one pointer per pod.

use std::collections::BTreeMap;
use std::sync::Arc;

use imbl::OrdMap;

use super::PodInfo;

/// A node's pods, sorted by (namespace, name).
pub type NodePods = Arc<[Arc<PodInfo>]>;

/// Running pods by namespace then name, and by node.
#[derive(Debug, Clone, Default)]
pub struct PodIndex {
    by_namespace: OrdMap<String, OrdMap<String, Arc<PodInfo>>>,
    by_node: OrdMap<String, NodePods>,
    len: usize,
}

impl PodIndex {
    /// Builds the index from a list, keeping the last of any duplicate (namespace, name).
    pub fn from_pods(pods: impl IntoIterator<Item = PodInfo>) -> Self {
        let mut unique: BTreeMap<(String, String), PodInfo> = BTreeMap::new();
        for pod in pods {
            unique.insert((pod.namespace.clone(), pod.name.clone()), pod);
        }
        let mut index = PodIndex::default();
        let mut by_node: BTreeMap<String, Vec<Arc<PodInfo>>> = BTreeMap::new();
        for ((namespace, name), pod) in unique {
            let pod = Arc::new(pod);
            by_node.entry(pod.node_name.clone()).or_default().push(Arc::clone(&pod));
            index.by_namespace.entry(namespace).or_default().insert(name, pod);
            index.len += 1;
        }
        // Entries came in (namespace, name) order, so every node's list is already sorted.
        index.by_node = by_node
            .into_iter()
            .map(|(node, pods)| (node, NodePods::from(pods)))
            .collect();
        index
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<&Arc<PodInfo>> {
        self.by_namespace.get(namespace)?.get(name)
    }

    /// The pods of one namespace, by name.
    pub fn namespace(&self, namespace: &str) -> Option<&OrdMap<String, Arc<PodInfo>>> {
        self.by_namespace.get(namespace)
    }

    /// Every pod, in (namespace, name) order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<PodInfo>> {
        self.by_namespace.values().flat_map(|by_name| by_name.values())
    }

    /// Every node that has pods, by name, with its pods in (namespace, name) order.
    pub fn by_node(&self) -> impl Iterator<Item = (&str, &[Arc<PodInfo>])> {
        self.by_node.iter().map(|(node, pods)| (node.as_str(), &pods[..]))
    }

    /// The pods on `node`, in (namespace, name) order.
    pub fn on_node(&self, node: &str) -> &[Arc<PodInfo>] {
        self.by_node.get(node).map_or(&[], |pods| &pods[..])
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Inserts or replaces a pod; a pod that moved is taken off its old node.
    pub fn insert(&mut self, pod: PodInfo) {
        let pod = Arc::new(pod);
        let previous = self
            .by_namespace
            .entry(pod.namespace.clone())
            .or_default()
            .insert(pod.name.clone(), Arc::clone(&pod));
        match previous {
            Some(old) => self.take_off_node(&old),
            None => self.len += 1,
        }
        let mut pods: Vec<Arc<PodInfo>> = self.on_node(&pod.node_name).to_vec();
        let at = pods.partition_point(|p| key(p) < key(&pod));
        pods.insert(at, Arc::clone(&pod));
        self.by_node.insert(pod.node_name.clone(), NodePods::from(pods));
    }

    /// Removes a pod if held; an emptied namespace or node is dropped too.
    pub fn remove(&mut self, namespace: &str, name: &str) {
        let Some(by_name) = self.by_namespace.get_mut(namespace) else {
            return;
        };
        let Some(old) = by_name.remove(name) else {
            return;
        };
        if by_name.is_empty() {
            self.by_namespace.remove(namespace);
        }
        self.len -= 1;
        self.take_off_node(&old);
    }

    fn take_off_node(&mut self, pod: &PodInfo) {
        let pods: Vec<Arc<PodInfo>> = self
            .on_node(&pod.node_name)
            .iter()
            .filter(|p| key(p) != key(pod))
            .cloned()
            .collect();
        if pods.is_empty() {
            self.by_node.remove(&pod.node_name);
        } else {
            self.by_node.insert(pod.node_name.clone(), NodePods::from(pods));
        }
    }
}

fn key(pod: &PodInfo) -> (&str, &str) {
    (&pod.namespace, &pod.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(namespace: &str, name: &str, node: &str) -> PodInfo {
        PodInfo {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            labels: Default::default(),
            node_name: node.to_owned(),
        }
    }

    fn nodes(index: &PodIndex) -> Vec<String> {
        index
            .by_node()
            .map(|(node, pods)| {
                let names: Vec<String> = pods.iter().map(|p| format!("{}/{}", p.namespace, p.name)).collect();
                format!("{node}: {}", names.join(" "))
            })
            .collect()
    }

    #[test]
    fn both_indexes_agree_after_inserts_moves_and_removes() {
        let mut index = PodIndex::from_pods([pod("b", "p1", "n1"), pod("a", "p2", "n1"), pod("a", "p1", "n2")]);
        assert_eq!(nodes(&index), ["n1: a/p2 b/p1", "n2: a/p1"]);
        index.insert(pod("a", "p0", "n1"));
        index.insert(pod("a", "p1", "n1")); // moved from n2, which empties
        assert_eq!(nodes(&index), ["n1: a/p0 a/p1 a/p2 b/p1"]);
        assert_eq!(index.len(), 4);
        index.remove("b", "p1");
        index.remove("b", "p1");
        index.remove("nope", "p1");
        assert_eq!(nodes(&index), ["n1: a/p0 a/p1 a/p2"]);
        assert_eq!(index.len(), 3);
        assert!(index.namespace("b").is_none(), "an emptied namespace is dropped");
        let all: Vec<&str> = index.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(all, ["p0", "p1", "p2"]);
        assert_eq!(index.get("a", "p1").map(|p| p.node_name.as_str()), Some("n1"));
    }

    #[test]
    fn a_list_keeps_the_last_duplicate() {
        let index = PodIndex::from_pods([pod("a", "p", "n1"), pod("a", "p", "n2")]);
        assert_eq!(nodes(&index), ["n2: a/p"]);
        assert_eq!(index.len(), 1);
    }
}
