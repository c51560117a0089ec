//! The seam between the read paths ([`super::nodes`], [`super::pods`]) and the wire formats
//! ([`super::json`], [`super::protobuf`], [`super::table`]): the read paths find what to serve
//! and hand each item to an [`Encode`]r, which writes one response document.

use std::time::Duration;

use crate::inventory::Labels;
use crate::kubelet::Timestamp;
use crate::store::{PodUsage, Usage};

/// The document a response holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    NodeMetrics,
    NodeMetricsList,
    PodMetrics,
    PodMetricsList,
}

impl Document {
    /// The Kubernetes kind.
    pub fn kind(self) -> &'static str {
        match self {
            Self::NodeMetrics => "NodeMetrics",
            Self::NodeMetricsList => "NodeMetricsList",
            Self::PodMetrics => "PodMetrics",
            Self::PodMetricsList => "PodMetricsList",
        }
    }

    pub fn is_list(self) -> bool {
        matches!(self, Self::NodeMetricsList | Self::PodMetricsList)
    }
}

/// One NodeMetrics: the inventory's name and labels, the store's usage.
#[derive(Debug, Clone, Copy)]
pub struct NodeItem<'a> {
    pub name: &'a str,
    pub labels: &'a Labels,
    /// Kubelet time of the last point.
    pub timestamp: Timestamp,
    pub window: Duration,
    pub usage: Usage,
}

/// One PodMetrics.
#[derive(Debug, Clone, Copy)]
pub struct PodItem<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub labels: &'a Labels,
    pub usage: &'a PodUsage,
}

/// Writes one response document: [`begin`](Encode::begin), then every item (exactly one for
/// a get), then [`finish`](Encode::finish).
pub trait Encode {
    fn begin(&mut self, out: &mut Vec<u8>, document: Document);
    fn node(&mut self, out: &mut Vec<u8>, node: &NodeItem<'_>);
    fn pod(&mut self, out: &mut Vec<u8>, pod: &PodItem<'_>);
    /// Ends the document and returns the index in `out` where it starts (a protobuf envelope
    /// may leave a few bytes of slack before it).
    fn finish(&mut self, out: &mut Vec<u8>) -> usize;
}

/// An [`Encode`]r whose list items can be kept per node and sent again in a later list (see
/// [`super::list_cache`]). Its items depend on nothing but their own inputs and the response's
/// `creationTimestamp`, written as the same [`created`](EncodeChunks::created) bytes into
/// every item; in particular not on where in the list they sit.
pub trait EncodeChunks: Encode {
    /// The bytes every item carries as its `creationTimestamp` value.
    fn created(&self) -> &[u8];
    /// Starts recording where each item's [`created`](EncodeChunks::created) bytes go in `out`.
    fn record_created_offsets(&mut self);
    /// The positions recorded since [`record_created_offsets`](EncodeChunks::record_created_offsets),
    /// in item order; recording stops.
    fn take_created_offsets(&mut self) -> Vec<usize>;
    /// What a list writes between two items.
    fn item_separator(&self) -> &'static [u8];
    /// Ends a list whose items (`items` bytes) are not in `out` but sent between what `out`
    /// holds (the header [`begin`](Encode::begin) wrote) and what this writes (the footer).
    /// Returns where the document starts in `out` and where the items go.
    fn finish_around(&mut self, out: &mut Vec<u8>, items: usize) -> (usize, usize);
}

/// A pod's usage summed over its containers, as the Table shows it.
pub fn pod_total(pod: &PodUsage) -> Usage {
    pod.containers.iter().fold(
        Usage {
            cpu_nanocores: 0,
            memory_bytes: 0,
        },
        |sum, c| Usage {
            cpu_nanocores: sum.cpu_nanocores.saturating_add(c.usage.cpu_nanocores),
            memory_bytes: sum.memory_bytes.saturating_add(c.usage.memory_bytes),
        },
    )
}
