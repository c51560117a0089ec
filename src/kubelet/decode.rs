//! Decoding a kubelet `/metrics/resource` body (Prometheus text format) into a [`NodeBatch`].
//! PLACEHOLDER: being written.

use super::sample::{NodeBatch, Timestamp};

/// Why a body could not be decoded; the whole node's batch is dropped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("failed parsing metrics: line {line}: {reason}")]
pub struct DecodeError {
    /// 1-based line number in the body.
    pub line: usize,
    pub reason: &'static str,
}

/// Decodes one kubelet response. `default_time` stamps samples that carry no timestamp.
pub fn decode(body: &[u8], default_time: Timestamp) -> Result<NodeBatch<'_>, DecodeError> {
    let _ = (body, default_time);
    Ok(NodeBatch::default())
}
