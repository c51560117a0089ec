//! PodMetrics: get and list. A pod is served when the inventory knows it (running, on a node)
//! and the store has fresh usage for it from that node's kubelet; a pod reported by any other
//! kubelet is never served, so a pod re-created on another node is never counted twice.

use std::sync::Arc;

#[cfg(test)]
#[path = "pods_tests.rs"]
mod tests;

use super::encode::{Encode, PodItem};
use super::selectors::ListOptions;
use super::{age_seconds, ApiError, ReadTime};
use crate::inventory::{PodInfo, Snapshot};
use crate::store::{NodePods, PodSlot, PodUsage, Store};

/// Lists pods, one namespace or all of them.
///
/// Both walk the store one node at a time: one store lookup per node, then a forward merge
/// over its pods, instead of a hash and a binary search per pod, which is what makes listing
/// 150,000 pods cheap. A list of every pod walks the inventory node by node (nodes by name,
/// each node's pods by namespace and name) and writes pods as it finds them; a namespaced list
/// is ordered by pod name, so it finds its pods node by node and writes them in name order.
/// Upstream's order is random in both cases; ours is stable.
#[allow(clippy::too_many_arguments)] // a read's inputs and outputs, spelled out for the hot path
pub fn list(
    snapshot: &Snapshot,
    store: &Store,
    namespace: Option<&str>,
    options: &ListOptions,
    at: ReadTime,
    encoder: &mut impl Encode,
    out: &mut Vec<u8>,
    ages: &mut Vec<f64>,
) {
    let selected =
        |pod: &PodInfo| options.fields.matches(&pod.name, Some(&pod.namespace)) && options.labels.matches(&pod.labels);
    let mut emit = |pod: &PodInfo, usage: &PodUsage| {
        encoder.pod(
            out,
            &PodItem {
                namespace: &pod.namespace,
                name: &pod.name,
                labels: &pod.labels,
                usage,
            },
        );
        ages.push(age_seconds(at, usage.timestamp));
    };
    match namespace {
        Some(ns) => list_namespace(snapshot, store, ns, selected, at, emit),
        None => {
            let mut usage = PodUsage::default();
            for (node, pods) in snapshot.pods.by_node() {
                let Some(held) = store.node_pods(node, at.monotonic) else {
                    continue;
                };
                let mut cursor = held.cursor();
                for pod in pods.iter().filter(|pod| selected(pod)) {
                    if cursor.seek_into(&pod.namespace, &pod.name, &mut usage) {
                        emit(pod, &usage);
                    }
                }
            }
        }
    }
}

/// The namespaced list: the namespace's selected pods by name are grouped by node, each node
/// is looked up once and its pods found with a cursor (in name order within a node, which is
/// the store's order within one namespace), then every pod found is emitted in name order.
fn list_namespace(
    snapshot: &Snapshot,
    store: &Store,
    namespace: &str,
    selected: impl Fn(&PodInfo) -> bool,
    at: ReadTime,
    mut emit: impl FnMut(&PodInfo, &PodUsage),
) {
    let Some(in_namespace) = snapshot.pods.namespace(namespace) else {
        return;
    };
    let pods: Vec<&PodInfo> = in_namespace
        .values()
        .map(|pod| &**pod)
        .filter(|pod| selected(pod))
        .collect();
    // (node, index in `pods`), grouped by node. A node is keyed by its name's allocation: the
    // inventory holds one per node, so sorting integers groups the pods without comparing
    // names. Were a node's name ever held twice, its pods would form two groups: two lookups
    // of the same node, the same output.
    let mut by_node: Vec<(usize, usize)> = pods
        .iter()
        .enumerate()
        .map(|(index, pod)| (Arc::as_ptr(&pod.node_name).cast::<u8>() as usize, index))
        .collect();
    by_node.sort_unstable();
    // Each pod's node (an index into `held`) and where that node holds it.
    let mut found: Vec<Option<(usize, PodSlot)>> = vec![None; pods.len()];
    let mut held: Vec<NodePods> = Vec::new();
    for group in by_node.chunk_by(|a, b| a.0 == b.0) {
        let Some(node) = group.first().and_then(|&(_, index)| pods.get(index)) else {
            continue;
        };
        let Some(node_pods) = store.node_pods(&node.node_name, at.monotonic) else {
            continue;
        };
        let mut cursor = node_pods.namespace_cursor(namespace);
        for &(_, index) in group {
            if let (Some(pod), Some(slot)) = (pods.get(index), found.get_mut(index)) {
                *slot = cursor.find(namespace, &pod.name).map(|at| (held.len(), at));
            }
        }
        held.push(node_pods);
    }
    let mut usage = PodUsage::default();
    for (pod, found) in pods.iter().zip(&found) {
        let Some((node, slot)) = *found else {
            continue;
        };
        if held.get(node).is_some_and(|node| node.usage_into(slot, &mut usage)) {
            emit(pod, &usage);
        }
    }
}

#[allow(clippy::too_many_arguments)] // a read's inputs and outputs, spelled out for the hot path
pub fn get(
    snapshot: &Snapshot,
    store: &Store,
    namespace: &str,
    name: &str,
    at: ReadTime,
    encoder: &mut impl Encode,
    out: &mut Vec<u8>,
    ages: &mut Vec<f64>,
) -> Result<(), ApiError> {
    let pod = snapshot.pod(namespace, name).ok_or_else(|| ApiError::PodNotFound {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    })?;
    let usage = store
        .pod_usage(&pod.node_name, namespace, name, at.monotonic)
        .ok_or_else(|| ApiError::PodMetricsNotFound {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })?;
    encoder.pod(
        out,
        &PodItem {
            namespace,
            name,
            labels: &pod.labels,
            usage: &usage,
        },
    );
    ages.push(age_seconds(at, usage.timestamp));
    Ok(())
}
