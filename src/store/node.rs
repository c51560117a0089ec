//! Everything the store holds for one node, and how one [`NodeBatch`] turns the old state into
//! the new one.
//!
//! A [`NodeState`] is immutable once built: an apply builds the next state beside the current
//! one and the store swaps it in whole, so readers only ever clone an `Arc`. Pods and their
//! containers are kept sorted by name, which makes an apply a merge of two sorted lists (no
//! hashing, no allocation for a container already known) and a pod lookup a binary search.
//!
//! Memory is laid out flat, as 150k pods make every per-pod byte count: the containers of all
//! of a node's pods sit in one array (a pod holds the range of its own), and each container
//! names itself by an index into the node's table of distinct container names. The pods'
//! namespaces and names are one string per state, each namespace written once per run of its
//! pods: a pod holds two spans of it, 16 bytes and an allocation less than two shared names,
//! and a reader joining the inventory's pods with a node's walks one buffer in order.

use std::cmp::Ordering;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::window::{self, Window};
use super::{ContainerUsage, NodeUsage, PodUsage, Usage};
use crate::kubelet::{ContainerSample, NodeBatch, Timestamp};

/// One node's windows, the node's usage, and what readiness needs to know of its pods. A pod's
/// usage is computed from its windows when read ([`NodeState::pod_usage`]): holding it as
/// well would repeat what the windows hold (~110 bytes a pod).
#[derive(Debug)]
pub(super) struct NodeState {
    /// When the batch this state was built from was scraped.
    pub(super) applied_at: Instant,
    /// `None` when the last batch had no node point.
    window: Option<Window>,
    pub(super) usage: Option<NodeUsage>,
    /// Sorted by (namespace, name), one entry per pod of the last batch.
    pub(super) pods: Vec<PodState>,
    /// The text the pods' [`Span`]s point into.
    names: Box<str>,
    /// Every pod's containers, pod after pod (see [`PodState::containers`]).
    containers: Containers,
    /// How many pods have usage (for readiness).
    pub(super) served_pods: usize,
    /// How many containers have a prev point (for the storage points gauge).
    pub(super) containers_with_prev: usize,
}

#[derive(Debug)]
pub(super) struct PodState {
    namespace: Span,
    name: Span,
    /// Where this pod's containers start in [`NodeState::containers`]; sorted by name.
    first_container: u32,
    container_count: u32,
}

/// Where a piece of [`NodeState::names`] lies (a batch is a bounded HTTP body: its text is far
/// shorter than 4 GiB).
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// Appends `text` to `names`; where it lies.
    fn push(names: &mut String, text: &str) -> Span {
        let start = names.len();
        names.push_str(text);
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(names.len()).unwrap_or(u32::MAX),
        }
    }

    fn of(self, names: &str) -> &str {
        names.get(self.start as usize..self.end as usize).unwrap_or_default()
    }
}

impl PodState {
    /// The pod's (namespace, name), in the `names` of its state.
    fn key<'n>(&self, names: &'n str) -> (&'n str, &'n str) {
        (self.namespace.of(names), self.name.of(names))
    }

    fn containers(&self) -> Range<usize> {
        let first = self.first_container as usize;
        first..first + self.container_count as usize
    }
}

/// The containers of a node's pods, as parallel arrays (a window is 64 bytes, and a name index
/// beside it would pad it to 72), and the distinct names they use.
#[derive(Debug, Default)]
struct Containers {
    windows: Vec<Window>,
    /// Per window, its container's name as an index into `names`.
    name_ids: Vec<u32>,
    /// Each distinct container name of the node once: a node's pods mostly repeat a few
    /// (`app`, the sidecars). Rebuilt by every apply, so names no longer reported leave.
    names: Vec<Arc<str>>,
}

impl Containers {
    fn name(&self, container: usize) -> &str {
        self.name_arc(container).map_or("", |n| n)
    }

    fn name_arc(&self, container: usize) -> Option<&Arc<str>> {
        self.names.get(*self.name_ids.get(container)? as usize)
    }
}

/// The next state's containers, built from the old state's: names the old state held are
/// shared, and known names get their new index once per apply.
struct ContainersBuilder<'o> {
    old: &'o Containers,
    new: Containers,
    /// The new index of each old name, once given one.
    old_to_new: Vec<Option<u32>>,
}

impl<'o> ContainersBuilder<'o> {
    fn new(old: &'o Containers, capacity: usize) -> Self {
        ContainersBuilder {
            old,
            new: Containers {
                windows: Vec::with_capacity(capacity),
                name_ids: Vec::with_capacity(capacity),
                names: Vec::with_capacity(old.names.len()),
            },
            old_to_new: vec![None; old.names.len()],
        }
    }

    /// Appends a container the old state held as `old_container`.
    fn push_known(&mut self, old_container: usize, window: Window) {
        let old_id = self.old.name_ids.get(old_container).map_or(0, |&id| id as usize);
        let id = match self.old_to_new.get(old_id).copied().flatten() {
            Some(id) => id,
            None => {
                let name = self.old.names.get(old_id).map_or_else(|| Arc::from(""), Arc::clone);
                let id = self.push_name(name);
                if let Some(slot) = self.old_to_new.get_mut(old_id) {
                    *slot = Some(id);
                }
                id
            }
        };
        self.push(id, window);
    }

    /// Appends a container the old state did not hold under this pod. Its name is shared with
    /// any container of the node, old or new, that has it; a linear scan of the node's few
    /// distinct names, run only for new containers.
    fn push_new(&mut self, name: &str, window: Window) {
        let id = match self.new.names.iter().position(|n| **n == *name) {
            Some(id) => id as u32,
            None => match self.old.names.iter().position(|n| **n == *name) {
                Some(old_id) => {
                    let id = self.push_name(Arc::clone(&self.old.names[old_id]));
                    self.old_to_new[old_id] = Some(id);
                    id
                }
                None => self.push_name(Arc::from(name)),
            },
        };
        self.push(id, window);
    }

    fn push_name(&mut self, name: Arc<str>) -> u32 {
        self.new.names.push(name);
        (self.new.names.len() - 1) as u32
    }

    fn push(&mut self, name_id: u32, window: Window) {
        self.new.windows.push(window);
        self.new.name_ids.push(name_id);
    }

    fn len(&self) -> usize {
        self.new.windows.len()
    }
}

impl NodeState {
    /// The state after `batch`, given the state before it (`None` for a node not held).
    /// Pods absent from `batch` are gone; container names already held are shared, not copied.
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
        let no_containers = Containers::default();
        let (old_pods, old_containers) = old.map_or((&[][..], &no_containers), |o| (&o.pods[..], &o.containers));
        let old_names = old.map_or("", |o| &o.names);
        let mut containers = ContainersBuilder::new(old_containers, samples.len());
        let mut old_cursor = 0;
        let mut pods: Vec<PodState> = Vec::with_capacity(old_pods.len());
        let mut names = String::with_capacity(old_names.len());
        let mut last_namespace: Option<Span> = None;
        let mut served_pods = 0;
        for group in samples.chunk_by(|a, b| a.namespace == b.namespace && a.pod == b.pod) {
            let (namespace, pod) = (&*group[0].namespace, &*group[0].pod);
            let old_pod = seek(old_pods, &mut old_cursor, |p| p.key(old_names).cmp(&(namespace, pod)));
            let first = containers.len();
            advance_containers(old_pod, &mut containers, group, resolution);
            let range = first..containers.len();
            // Computed here only to count servable pods and to log, once per scrape, why a
            // container is skipped; readers compute it again without logging.
            let servable = walk_usage(
                &containers.new,
                range.clone(),
                |_, _| {},
                |i, error| {
                    let container = containers.new.name(i);
                    tracing::debug!(
                        node, namespace, pod, container, %error,
                        "skipping container usage metric"
                    );
                },
            )
            .is_some();
            served_pods += usize::from(servable);
            // Pods of one namespace are adjacent: their namespace is written once.
            let namespace = match last_namespace {
                Some(span) if span.of(&names) == namespace => span,
                _ => *last_namespace.insert(Span::push(&mut names, namespace)),
            };
            pods.push(PodState {
                namespace,
                name: Span::push(&mut names, pod),
                // A batch is a bounded HTTP body: far fewer than 2^32 containers.
                first_container: u32::try_from(range.start).unwrap_or(u32::MAX),
                container_count: u32::try_from(range.len()).unwrap_or(0),
            });
        }
        let containers = containers.new;

        NodeState {
            applied_at,
            window,
            usage,
            served_pods,
            containers_with_prev: containers.windows.iter().filter(|w| w.prev.is_some()).count(),
            pods,
            names: names.into_boxed_str(),
            containers,
        }
    }

    /// The pod's (namespace, name).
    pub(super) fn key(&self, pod: &PodState) -> (&str, &str) {
        pod.key(&self.names)
    }

    /// Whether this state may still be served at `now`.
    pub(super) fn is_fresh(&self, now: Instant, max_age: Duration) -> bool {
        now.saturating_duration_since(self.applied_at) <= max_age
    }

    /// Whether the node point has a prev (for the storage points gauge).
    pub(super) fn node_has_prev(&self) -> bool {
        self.window.is_some_and(|w| w.prev.is_some())
    }

    /// The usage of the pod at `position` in [`NodeState::pods`], if it has any.
    pub(super) fn pod_usage(&self, position: usize) -> Option<PodUsage> {
        let count = self.pods.get(position)?.container_count as usize;
        let mut usage = PodUsage::with_capacity(count);
        self.pod_usage_into(position, &mut usage).then_some(usage)
    }

    /// [`NodeState::pod_usage`] written over `usage`, reusing its containers' allocation:
    /// `false` (and `usage` unspecified) when the pod has none.
    pub(super) fn pod_usage_into(&self, position: usize, usage: &mut PodUsage) -> bool {
        let Some(pod) = self.pods.get(position) else {
            return false;
        };
        let containers = &self.containers;
        let served = &mut usage.containers;
        served.clear();
        let walked = walk_usage(
            containers,
            pod.containers(),
            |i, usage| {
                served.push(ContainerUsage {
                    name: containers.name_arc(i).map_or_else(|| Arc::from(""), Arc::clone),
                    usage,
                });
            },
            |_, _| {},
        );
        let Some((timestamp, window)) = walked else {
            return false;
        };
        usage.timestamp = timestamp;
        usage.window = window;
        true
    }

    /// Where the first pod of `namespace` is (or would be) in [`NodeState::pods`].
    pub(super) fn namespace_start(&self, namespace: &str) -> usize {
        self.pods.partition_point(|p| p.namespace.of(&self.names) < namespace)
    }

    /// Where the pod is in [`NodeState::pods`], if held.
    pub(super) fn pod_position(&self, namespace: &str, name: &str) -> Option<usize> {
        self.pods.binary_search_by(|p| self.key(p).cmp(&(namespace, name))).ok()
    }
}

/// Appends the pod's containers after `samples`. A container the pod already had keeps its
/// window's history and its name. In the steady state the batch lists the same containers
/// in the same order, so each is found at the cursor with one comparison.
fn advance_containers(
    old_pod: Option<&PodState>,
    containers: &mut ContainersBuilder<'_>,
    samples: &[&ContainerSample<'_>],
    resolution: Duration,
) {
    let old = containers.old;
    let held = old_pod.map_or(0..0, PodState::containers);
    let mut cursor = held.start;
    for sample in samples {
        let mut at = cursor;
        let found = seek_index(held.end, &mut at, |i| old.name(i).cmp(&sample.container));
        cursor = at;
        let old_window = found.and_then(|i| old.windows.get(i));
        let window = Window::advance_container(old_window, sample.point, resolution);
        match found {
            Some(i) => containers.push_known(i, window),
            None => containers.push_new(&sample.container, window),
        }
    }
}

/// A pod's usage (§2.5) from its containers' windows at `range`: calls `served` with each
/// container that has usage, in name order, and `failed` with each whose usage cannot be
/// computed, and returns the pod's timestamp and window; `None` when any container lacks a
/// prev point.
///
/// A container whose usage cannot be computed is left out. **Deliberate difference from
/// upstream:** when that leaves no container at all, the pod is omitted; upstream serves it
/// with no containers, a null timestamp and a `0s` window, which an HPA reads as zero usage.
/// The pod's timestamp and window are those of the container with the earliest last
/// timestamp; among ties the first by name wins.
fn walk_usage(
    containers: &Containers,
    range: Range<usize>,
    mut served: impl FnMut(usize, Usage),
    mut failed: impl FnMut(usize, window::Error),
) -> Option<(Timestamp, Duration)> {
    let mut earliest: Option<NodeUsage> = None;
    for i in range {
        match containers.windows.get(i)?.usage()? {
            Ok(u) => {
                served(i, u.usage);
                if earliest.is_none_or(|e| u.timestamp < e.timestamp) {
                    earliest = Some(u);
                }
            }
            Err(error) => failed(i, error),
        }
    }
    earliest.map(|e| (e.timestamp, e.window))
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

/// [`seek`] over the indices `*cursor..end` of a sorted sequence: moves `cursor` past every
/// index ordered before the sought key and returns the index equal to it, if any.
fn seek_index(end: usize, cursor: &mut usize, order: impl Fn(usize) -> Ordering) -> Option<usize> {
    while *cursor < end {
        match order(*cursor) {
            Ordering::Less => *cursor += 1,
            Ordering::Equal => {
                *cursor += 1;
                return Some(*cursor - 1);
            }
            Ordering::Greater => return None,
        }
    }
    None
}
