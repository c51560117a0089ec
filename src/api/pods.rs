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
use crate::store::{OwnedPodCursor, PodUsage, Store};

/// Lists pods, one namespace or all of them.
///
/// Both look each node up in the store once, then find its pods with a forward merge, instead
/// of a hash and a binary search per pod, which is what makes listing 150,000 pods cheap. A
/// list of every pod walks the inventory node by node (nodes by name, each node's pods by
/// namespace and name); a namespaced list walks the namespace by pod name with a cursor per
/// node. Upstream's order is random in both cases; ours is stable.
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

/// The namespaced list: the namespace's pods by name, each found with a cursor over its node's
/// pods, one per node, made when the node's first pod comes up: a node's pods of one namespace
/// come up in name order, which is the store's order within one namespace, so each cursor
/// only moves forward. One store lookup per node, not per pod.
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
    // A node is keyed by its name's allocation: the inventory holds one per node (and the
    // snapshot keeps them all alive meanwhile), so nothing hashes names. Were a node's name
    // ever held twice, the node would get two cursors: two lookups, the same output.
    let mut cursors: foldhash::HashMap<usize, Option<OwnedPodCursor>> = foldhash::HashMap::default();
    let mut usage = PodUsage::default();
    for pod in in_namespace.values().filter(|pod| selected(pod)) {
        let node = Arc::as_ptr(&pod.node_name).cast::<u8>() as usize;
        let cursor = cursors.entry(node).or_insert_with(|| {
            let held = store.node_pods(&pod.node_name, at.monotonic)?;
            Some(held.into_namespace_cursor(namespace))
        });
        if let Some(cursor) = cursor {
            if cursor.seek_into(namespace, &pod.name, &mut usage) {
                emit(pod, &usage);
            }
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
