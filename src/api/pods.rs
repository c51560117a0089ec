//! PodMetrics: get and list. A pod is served when the inventory knows it (running, on a node)
//! and the store has fresh usage for it from that node's kubelet; a pod reported by any other
//! kubelet is never served, so a pod re-created on another node is never counted twice.

use super::encode::{Encode, PodItem};
use super::selectors::ListOptions;
use super::{age_seconds, ApiError, ReadTime};
use crate::inventory::{PodInfo, Snapshot};
use crate::store::{PodUsage, Store};

/// Lists pods, one namespace or all of them.
///
/// A namespaced list walks that namespace by name and looks each pod up in the store. A list
/// of every pod walks the inventory node by node (nodes by name, each node's pods by namespace
/// and name): one store lookup per node and a forward merge over its pods, which is what makes
/// listing 150,000 pods cheap. Upstream's order is random in both cases; ours is stable.
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
        Some(ns) => {
            for pod in snapshot
                .pods
                .namespace(ns)
                .into_iter()
                .flat_map(|by_name| by_name.values())
            {
                if !selected(pod) {
                    continue;
                }
                if let Some(usage) = store.pod_usage(&pod.node_name, ns, &pod.name, at.monotonic) {
                    emit(pod, &usage);
                }
            }
        }
        None => {
            for (node, pods) in snapshot.pods.by_node() {
                let Some(held) = store.node_pods(node, at.monotonic) else {
                    continue;
                };
                let mut cursor = held.cursor();
                for pod in pods.iter().filter(|pod| selected(pod)) {
                    if let Some(usage) = cursor.seek(&pod.namespace, &pod.name) {
                        emit(pod, &usage);
                    }
                }
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
