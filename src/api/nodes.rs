//! NodeMetrics: get and list. A node is served when the inventory knows it and the store has
//! fresh usage for it; lists are in name order.

use super::encode::{Encode, NodeItem};
use super::selectors::FieldSelector;
use super::{age_seconds, ApiError, ReadTime};
use crate::inventory::selector::LabelSelector;
use crate::inventory::Snapshot;
use crate::store::Store;

#[allow(clippy::too_many_arguments)] // a read's inputs and outputs, spelled out for the hot path
pub fn list(
    snapshot: &Snapshot,
    store: &Store,
    labels: &LabelSelector,
    fields: &FieldSelector,
    at: ReadTime,
    encoder: &mut impl Encode,
    out: &mut Vec<u8>,
    ages: &mut Vec<f64>,
) {
    for node in snapshot.nodes.values() {
        if !fields.matches(&node.name, None) || !labels.matches(&node.labels) {
            continue;
        }
        let Some(usage) = store.node_usage(&node.name, at.monotonic) else {
            continue;
        };
        encoder.node(
            out,
            &NodeItem {
                name: &node.name,
                labels: &node.labels,
                timestamp: usage.timestamp,
                window: usage.window,
                usage: usage.usage,
            },
        );
        ages.push(age_seconds(at, usage.timestamp));
    }
}

pub fn get(
    snapshot: &Snapshot,
    store: &Store,
    name: &str,
    at: ReadTime,
    encoder: &mut impl Encode,
    out: &mut Vec<u8>,
    ages: &mut Vec<f64>,
) -> Result<(), ApiError> {
    let node = snapshot
        .nodes
        .get(name)
        .ok_or_else(|| ApiError::NodeNotFound(name.to_owned()))?;
    let usage = store
        .node_usage(name, at.monotonic)
        .ok_or_else(|| ApiError::NodeMetricsNotFound(name.to_owned()))?;
    encoder.node(
        out,
        &NodeItem {
            name: &node.name,
            labels: &node.labels,
            timestamp: usage.timestamp,
            window: usage.window,
            usage: usage.usage,
        },
    );
    ages.push(age_seconds(at, usage.timestamp));
    Ok(())
}
