//! Running pods, indexed two ways: by (namespace, name) for gets and namespaced lists, and by
//! node for the LIST of every pod, which walks the store one node at a time (one store lookup
//! per node and a forward merge over its pods, instead of a hash and a binary search per pod).
//!
//! Both indexes are persistent maps, so a snapshot is an O(1) clone and one change is
//! O(log n). A node's pods are a small sorted slice, rebuilt whole when one of them changes:
//! a node holds tens of pods, so copying its slice is cheaper than another map level, and it
//! costs one pointer per pod.
//!
//! Names are interned: every pod of a namespace shares the index's one allocation of that
//! namespace's name, every pod of a node the node's, and a namespace's pods are a set ordered
//! by the pod's own name, with no key beside it. At 150k pods that is one string per pod (its
//! name) instead of four, and one pointer per pod in the by-name index instead of two.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::sync::Arc;

use imbl::{OrdMap, OrdSet};

use super::PodInfo;

/// A node's pods, sorted by (namespace, name).
pub type NodePods = Arc<[Arc<PodInfo>]>;

/// One namespace's pods, by name.
#[derive(Debug, Clone, Default)]
pub struct NamespacePods(OrdSet<ByName>);

impl NamespacePods {
    pub fn get(&self, name: &str) -> Option<&Arc<PodInfo>> {
        self.0.get(name).map(|pod| &pod.0)
    }

    /// The pods, by name.
    pub fn values(&self) -> impl Iterator<Item = &Arc<PodInfo>> {
        self.0.iter().map(|pod| &pod.0)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A pod as an element of its namespace's set: equal and ordered by name alone, and found by
/// name as a `&str`.
#[derive(Debug, Clone)]
struct ByName(Arc<PodInfo>);

impl Borrow<str> for ByName {
    fn borrow(&self) -> &str {
        &self.0.name
    }
}

impl PartialEq for ByName {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for ByName {}

impl PartialOrd for ByName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByName {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.name.cmp(&other.0.name)
    }
}

/// Running pods by namespace then name, and by node.
#[derive(Debug, Clone, Default)]
pub struct PodIndex {
    by_namespace: OrdMap<Arc<str>, NamespacePods>,
    by_node: OrdMap<Arc<str>, NodePods>,
    len: usize,
}

impl PodIndex {
    /// Builds the index from a list, keeping the last of any duplicate (namespace, name).
    /// Each pod goes through [`insert`](Self::insert), as a relist's pods do, so names are
    /// interned by the one path that does it.
    pub fn from_pods(pods: impl IntoIterator<Item = PodInfo>) -> Self {
        let mut index = PodIndex::default();
        for pod in pods {
            index.insert(pod);
        }
        index
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<&Arc<PodInfo>> {
        self.by_namespace.get(namespace)?.get(name)
    }

    /// The pods of one namespace, by name.
    pub fn namespace(&self, namespace: &str) -> Option<&NamespacePods> {
        self.by_namespace.get(namespace)
    }

    /// Every pod, in (namespace, name) order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<PodInfo>> {
        self.by_namespace.values().flat_map(|by_name| by_name.values())
    }

    /// Every node that has pods, by name, with its pods in (namespace, name) order.
    pub fn by_node(&self) -> impl Iterator<Item = (&str, &[Arc<PodInfo>])> {
        self.by_node.iter().map(|(node, pods)| (&**node, &pods[..]))
    }

    /// [`by_node`](Self::by_node) with each node's shared slice: it is replaced whole when one
    /// of the node's pods changes, so its identity says the node's pods are unchanged.
    pub fn by_node_shared(&self) -> impl Iterator<Item = (&Arc<str>, &NodePods)> {
        self.by_node.iter()
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
    pub fn insert(&mut self, mut pod: PodInfo) {
        self.intern(&mut pod);
        let pod = Arc::new(pod);
        let previous = self
            .by_namespace
            .entry(Arc::clone(&pod.namespace))
            .or_default()
            .0
            .insert(ByName(Arc::clone(&pod)));
        match previous {
            Some(ByName(old)) => self.take_off_node(&old),
            None => self.len += 1,
        }
        let mut pods: Vec<Arc<PodInfo>> = self.on_node(&pod.node_name).to_vec();
        let at = pods.partition_point(|p| key(p) < key(&pod));
        pods.insert(at, Arc::clone(&pod));
        self.by_node.insert(Arc::clone(&pod.node_name), NodePods::from(pods));
    }

    /// Removes a pod if held; an emptied namespace or node is dropped too.
    pub fn remove(&mut self, namespace: &str, name: &str) {
        let Some(by_name) = self.by_namespace.get_mut(namespace) else {
            return;
        };
        let Some(ByName(old)) = by_name.0.remove(name) else {
            return;
        };
        if by_name.is_empty() {
            self.by_namespace.remove(namespace);
        }
        self.len -= 1;
        self.take_off_node(&old);
    }

    /// Points the pod's names at the allocations the index already holds for them: its
    /// namespace's, its node's, and (for a pod being replaced) its own name's.
    fn intern(&self, pod: &mut PodInfo) {
        if let Some((namespace, by_name)) = self.by_namespace.get_key_value(&*pod.namespace) {
            pod.namespace = Arc::clone(namespace);
            if let Some(held) = by_name.get(&pod.name) {
                pod.name = Arc::clone(&held.name);
            }
        }
        if let Some((node, _)) = self.by_node.get_key_value(&*pod.node_name) {
            pod.node_name = Arc::clone(node);
        }
    }

    fn take_off_node(&mut self, pod: &PodInfo) {
        let pods: Vec<Arc<PodInfo>> = self
            .on_node(&pod.node_name)
            .iter()
            .filter(|p| key(p) != key(pod))
            .cloned()
            .collect();
        if pods.is_empty() {
            self.by_node.remove(&*pod.node_name);
        } else {
            self.by_node.insert(Arc::clone(&pod.node_name), NodePods::from(pods));
        }
    }
}

fn key(pod: &PodInfo) -> (&str, &str) {
    (&pod.namespace, &pod.name)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn pod(namespace: &str, name: &str, node: &str) -> PodInfo {
        PodInfo {
            namespace: namespace.into(),
            name: name.into(),
            labels: Default::default(),
            node_name: node.into(),
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
        let all: Vec<&str> = index.iter().map(|p| &*p.name).collect();
        assert_eq!(all, ["p0", "p1", "p2"]);
        assert_eq!(index.get("a", "p1").map(|p| &*p.node_name), Some("n1"));
    }

    #[test]
    fn a_replaced_pod_is_served_with_its_new_labels() {
        let mut index = PodIndex::from_pods([pod("a", "p", "n1")]);
        let mut relabelled = pod("a", "p", "n1");
        relabelled.labels.insert("tier", "web");
        index.insert(relabelled);
        assert_eq!(index.len(), 1);
        assert_eq!(index.get("a", "p").and_then(|p| p.labels.get("tier")), Some("web"));
        let listed: Vec<Option<&str>> = index.iter().map(|p| p.labels.get("tier")).collect();
        assert_eq!(listed, [Some("web")]);
        assert_eq!(index.on_node("n1").len(), 1);
    }

    #[test]
    fn a_list_keeps_the_last_duplicate() {
        let index = PodIndex::from_pods([pod("a", "p", "n1"), pod("a", "p", "n2")]);
        assert_eq!(nodes(&index), ["n2: a/p"]);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn pods_share_one_allocation_per_namespace_node_and_name() {
        let mut index = PodIndex::from_pods([pod("a", "p1", "n1"), pod("a", "p2", "n1"), pod("b", "p3", "n1")]);
        index.insert(pod("a", "p4", "n1"));
        index.insert(pod("a", "p1", "n1")); // replaced, as a label edit does
        let pods: Vec<&Arc<PodInfo>> = index.iter().collect();
        assert_eq!(pods.len(), 4);
        let node = &pods[0].node_name;
        assert!(pods.iter().all(|p| Arc::ptr_eq(&p.node_name, node)));
        let in_a: Vec<_> = pods.iter().filter(|p| &*p.namespace == "a").collect();
        assert_eq!(in_a.len(), 3);
        assert!(in_a.iter().all(|p| Arc::ptr_eq(&p.namespace, &in_a[0].namespace)));
        let (held_namespace, _) = index.by_namespace.get_key_value("a").unwrap();
        assert!(Arc::ptr_eq(held_namespace, &in_a[0].namespace));
        let replaced = index.get("a", "p1").map(|p| Arc::clone(&p.name));
        index.insert(pod("a", "p1", "n1"));
        let again = index.get("a", "p1").map(|p| Arc::clone(&p.name));
        assert!(
            replaced.zip(again).is_some_and(|(a, b)| Arc::ptr_eq(&a, &b)),
            "a replaced pod keeps its name"
        );
    }

    #[test]
    fn a_churn_sequence_keeps_lookups_exact() {
        // A model: (namespace, name) -> node, against which every lookup is checked.
        let mut model: BTreeMap<(String, String), String> = BTreeMap::new();
        let mut index = PodIndex::default();
        let mut state = 7u64;
        for step in 0..2_000u64 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let r = state >> 33;
            let namespace = format!("ns-{}", r % 3);
            let name = format!("pod-{}", (r >> 4) % 40);
            let node = format!("node-{}", (r >> 12) % 5);
            if step % 4 == 3 {
                index.remove(&namespace, &name);
                model.remove(&(namespace, name));
            } else {
                index.insert(pod(&namespace, &name, &node));
                model.insert((namespace, name), node);
            }
        }
        assert_eq!(index.len(), model.len());
        let held: Vec<(String, String, String)> = index
            .iter()
            .map(|p| (p.namespace.to_string(), p.name.to_string(), p.node_name.to_string()))
            .collect();
        let want: Vec<(String, String, String)> = model
            .iter()
            .map(|((ns, n), node)| (ns.clone(), n.clone(), node.clone()))
            .collect();
        assert_eq!(held, want);
        for ((namespace, name), node) in &model {
            assert_eq!(index.get(namespace, name).map(|p| &*p.node_name), Some(node.as_str()));
        }
        let mut by_node: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for ((namespace, name), node) in &model {
            by_node.entry(node).or_default().push((namespace, name));
        }
        let held_by_node: BTreeMap<&str, Vec<(&str, &str)>> = index
            .by_node()
            .map(|(node, pods)| (node, pods.iter().map(|p| key(p)).collect()))
            .collect();
        assert_eq!(held_by_node, by_node);
    }
}
