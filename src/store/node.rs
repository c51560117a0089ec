//! Everything the store holds for one node, and how one [`NodeBatch`] turns the old state into
//! the new one.
//!
//! A [`NodeState`] is immutable once built: an apply builds the next state beside the current
//! one and the store swaps it in whole, so readers only ever clone an `Arc`. Pods and their
//! containers are kept sorted by name, which makes an apply a merge of two sorted lists (no
//! hashing, no allocation for a container already known) and a pod lookup a binary search.

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::window::Window;
use super::{ContainerUsage, NodeUsage, PodUsage};
use crate::kubelet::{ContainerSample, NodeBatch};

/// One node's windows and the usage they yielded when it was last applied.
#[derive(Debug)]
pub(super) struct NodeState {
    /// When the batch this state was built from was scraped.
    pub(super) applied_at: Instant,
    /// `None` when the last batch had no node point.
    window: Option<Window>,
    pub(super) usage: Option<NodeUsage>,
    /// Sorted by (namespace, name), one entry per pod of the last batch.
    pub(super) pods: Vec<PodState>,
    /// How many pods have usage (for readiness).
    pub(super) served_pods: usize,
    /// How many containers have a prev point (for the storage points gauge).
    pub(super) containers_with_prev: usize,
}

#[derive(Debug)]
pub(super) struct PodState {
    pub(super) namespace: Arc<str>,
    pub(super) name: Arc<str>,
    /// Sorted by name.
    containers: Box<[ContainerState]>,
    /// Inline: one allocation fewer per pod and per apply than an `Arc` of its own; readers
    /// that need it past the map lookup hold the node's state instead.
    pub(super) usage: Option<PodUsage>,
}

#[derive(Debug)]
struct ContainerState {
    name: Arc<str>,
    window: Window,
}

impl NodeState {
    /// The state after `batch`, given the state before it (`None` for a node not held).
    /// Pods absent from `batch` are gone; names already held are shared, not copied.
    pub(super) fn advance(
        node: &str,
        old: Option<&NodeState>,
        batch: &NodeBatch<'_>,
        applied_at: Instant,
        resolution: Duration,
    ) -> NodeState {
        let window = batch
            .node
            .map(|new| Window::advance_node(old.and_then(|o| o.window.as_ref()), new));
        let usage = window.and_then(|w| match w.usage()? {
            Ok(usage) => Some(usage),
            Err(error) => {
                tracing::debug!(node, %error, "skipping node usage metric");
                None
            }
        });

        let samples = sorted_samples(&batch.containers);
        let old_pods = old.map_or(&[][..], |o| &o.pods[..]);
        let mut old_cursor = 0;
        let mut pods: Vec<PodState> = Vec::with_capacity(old_pods.len());
        for group in samples.chunk_by(|a, b| a.namespace == b.namespace && a.pod == b.pod) {
            let (namespace, pod) = (&*group[0].namespace, &*group[0].pod);
            let old_pod = seek(old_pods, &mut old_cursor, |p| {
                (&*p.namespace, &*p.name).cmp(&(namespace, pod))
            });
            let containers = advance_containers(old_pod, old_pods, &pods, group, resolution);
            let usage = pod_usage(node, namespace, pod, &containers);
            pods.push(PodState {
                // Reuse held names; pods of one namespace are adjacent, so share theirs.
                namespace: old_pod
                    .map(|p| &p.namespace)
                    .or_else(|| pods.last().map(|p| &p.namespace))
                    .filter(|held| ***held == *namespace)
                    .map_or_else(|| Arc::from(namespace), Arc::clone),
                name: old_pod.map_or_else(|| Arc::from(pod), |p| Arc::clone(&p.name)),
                containers,
                usage,
            });
        }

        NodeState {
            applied_at,
            window,
            usage,
            served_pods: pods.iter().filter(|p| p.usage.is_some()).count(),
            containers_with_prev: pods
                .iter()
                .flat_map(|p| p.containers.iter())
                .filter(|c| c.window.prev.is_some())
                .count(),
            pods,
        }
    }

    /// Whether this state may still be served at `now`.
    pub(super) fn is_fresh(&self, now: Instant, max_age: Duration) -> bool {
        now.saturating_duration_since(self.applied_at) <= max_age
    }

    /// Whether the node point has a prev (for the storage points gauge).
    pub(super) fn node_has_prev(&self) -> bool {
        self.window.is_some_and(|w| w.prev.is_some())
    }

    /// Where the pod is in [`NodeState::pods`], if held.
    pub(super) fn pod_position(&self, namespace: &str, name: &str) -> Option<usize> {
        self.pods
            .binary_search_by(|p| (&*p.namespace, &*p.name).cmp(&(namespace, name)))
            .ok()
    }
}

/// The pod's containers after `samples`. A container the pod already had keeps its name; a
/// new one shares the name of any container of the node, old or built this apply, that has
/// it: a node's pods mostly repeat a few container names (`app`, the sidecars).
fn advance_containers(
    old_pod: Option<&PodState>,
    old_pods: &[PodState],
    built: &[PodState],
    samples: &[&ContainerSample<'_>],
    resolution: Duration,
) -> Box<[ContainerState]> {
    let old = old_pod.map_or(&[][..], |p| &p.containers[..]);
    let mut cursor = 0;
    samples
        .iter()
        .map(|sample| {
            let held = seek(old, &mut cursor, |c| (*c.name).cmp(&*sample.container));
            ContainerState {
                name: held.map_or_else(
                    || shared_name(old_pods, built, &sample.container),
                    |c| Arc::clone(&c.name),
                ),
                window: Window::advance_container(held.map(|c| &c.window), sample.point, resolution),
            }
        })
        .collect()
}

/// An allocation of container name `name` held by any of `pods`, or a new one. Only new
/// containers ask, so in the steady state this never runs; a linear scan finds a common name
/// within the first pods and costs a node's container count when the name is new.
fn shared_name(old_pods: &[PodState], built: &[PodState], name: &str) -> Arc<str> {
    old_pods
        .iter()
        .chain(built)
        .flat_map(|p| p.containers.iter())
        .find(|c| *c.name == *name)
        .map_or_else(|| Arc::from(name), |c| Arc::clone(&c.name))
}

/// A pod's usage (§2.5), or `None` when any container lacks a prev point.
///
/// A container whose usage cannot be computed is left out. **Deliberate difference from
/// upstream:** when that leaves no container at all, the pod is omitted; upstream serves it
/// with no containers, a null timestamp and a `0s` window, which an HPA reads as zero usage.
/// The pod's timestamp and window are those of the container with the earliest last
/// timestamp; among ties the first by name wins.
fn pod_usage(node: &str, namespace: &str, pod: &str, containers: &[ContainerState]) -> Option<PodUsage> {
    let mut served = Vec::with_capacity(containers.len());
    let mut earliest: Option<NodeUsage> = None;
    for c in containers {
        match c.window.usage()? {
            Ok(u) => {
                served.push(ContainerUsage {
                    name: Arc::clone(&c.name),
                    usage: u.usage,
                });
                if earliest.is_none_or(|e| u.timestamp < e.timestamp) {
                    earliest = Some(u);
                }
            }
            Err(error) => {
                let container = &*c.name;
                tracing::debug!(
                    node, namespace, pod, container, %error,
                    "skipping container usage metric"
                );
            }
        }
    }
    let earliest = earliest?;
    Some(PodUsage {
        timestamp: earliest.timestamp,
        window: earliest.window,
        containers: served,
    })
}

/// The batch's containers in (namespace, pod, container) order with one sample per key, the
/// last one winning as a map assignment would. The decoder already sorts, so normally this
/// costs one check.
fn sorted_samples<'b, 'a>(containers: &'b [ContainerSample<'a>]) -> Vec<&'b ContainerSample<'a>> {
    let mut samples: Vec<_> = containers.iter().collect();
    if !samples.is_sorted_by(|a, b| key(a) < key(b)) {
        samples.sort_by(|a, b| key(a).cmp(&key(b)));
        samples.dedup_by(|later, kept| {
            let same = key(later) == key(kept);
            if same {
                *kept = *later;
            }
            same
        });
    }
    samples
}

fn key<'s>(s: &'s ContainerSample<'_>) -> (&'s str, &'s str, &'s str) {
    (&s.namespace, &s.pod, &s.container)
}

/// Moves `cursor` past every item of sorted `items` ordered before the sought key (`order`
/// compares an item with it) and returns the item equal to it, if any.
pub(super) fn seek<'t, T>(items: &'t [T], cursor: &mut usize, order: impl Fn(&T) -> Ordering) -> Option<&'t T> {
    while let Some(item) = items.get(*cursor) {
        match order(item) {
            Ordering::Less => *cursor += 1,
            Ordering::Equal => {
                *cursor += 1;
                return Some(item);
            }
            Ordering::Greater => return None,
        }
    }
    None
}
