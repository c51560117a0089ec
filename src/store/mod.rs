//! PLACEHOLDER (replaced by the store branch): the interface only.
#![allow(dead_code, unused_variables, missing_docs, clippy::all)]
use std::sync::Arc;
use std::time::{Duration, Instant};
use crate::kubelet::{NodeBatch, Timestamp};
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage { pub cpu_nanocores: u64, pub memory_bytes: u64 }
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeUsage { pub timestamp: Timestamp, pub window: Duration, pub usage: Usage }
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerUsage { pub name: Arc<str>, pub usage: Usage }
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodUsage { pub timestamp: Timestamp, pub window: Duration, pub containers: Vec<ContainerUsage> }
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct StoredPoints { pub nodes: usize, pub containers: usize }
#[derive(Debug, Default)]
pub struct Store;
impl Store {
    pub fn new(resolution: Duration, max_age: Duration) -> Self { Store }
    pub fn apply(&self, node: &str, batch: &NodeBatch<'_>, scraped_at: Instant) {}
    pub fn forget_node(&self, node: &str) {}
    pub fn retain_nodes(&self, keep: impl Fn(&str) -> bool) {}
    pub fn node_usage(&self, node: &str, now: Instant) -> Option<NodeUsage> { None }
    pub fn pod_usage(&self, node: &str, namespace: &str, pod: &str, now: Instant) -> Option<Arc<PodUsage>> { None }
    pub fn for_each_pod(&self, node: &str, now: Instant, f: impl FnMut(&str, &str, &Arc<PodUsage>)) {}
    pub fn is_ready(&self, now: Instant) -> bool { false }
    pub fn points(&self) -> StoredPoints { StoredPoints::default() }
}
