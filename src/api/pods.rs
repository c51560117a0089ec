//! PodMetrics: get and list. A pod is served when the inventory knows it (running, on a node)
//! and the store has fresh usage for it from that node's kubelet; a pod reported by any other
//! kubelet is never served, so a pod re-created on another node is never counted twice.

use super::encode::{Encode, PodItem};
use super::selectors::ListOptions;
use super::{age_seconds, ApiError, ReadTime};
use crate::inventory::Snapshot;
use crate::store::Store;

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
    let namespaces: Box<dyn Iterator<Item = _>> = match namespace {
        Some(ns) => Box::new(snapshot.pods.get_key_value(ns).into_iter()),
        None => Box::new(snapshot.pods.iter()),
    };
    for (ns, pods) in namespaces {
        for pod in pods.values() {
            if !options.fields.matches(&pod.name, Some(ns)) || !options.labels.matches(&pod.labels) {
                continue;
            }
            let Some(usage) = store.pod_usage(&pod.node_name, ns, &pod.name, at.monotonic) else {
                continue;
            };
            encoder.pod(
                out,
                &PodItem {
                    namespace: ns,
                    name: &pod.name,
                    labels: &pod.labels,
                    usage: &usage,
                },
            );
            ages.push(age_seconds(at, usage.timestamp));
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
