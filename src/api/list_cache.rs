//! The LIST of every pod from per-node chunks of encoded items, kept between lists.
//!
//! Why: a LIST of all 150,000 pods encodes every item again (~60% of its cost), yet what a
//! node's items say changes only when that node's store state is replaced (once per
//! resolution) or its pods in the inventory change. At 2 lists/s over 5,000 nodes scraped
//! every 15 s, ~95% of nodes are unchanged since the last list: their items are reused.
//!
//! Validity: a [`Chunk`] holds the encoded items of one node for one representation and
//! `apiVersion`, built from one store state ([`StateMark`]) and one inventory slice of that
//! node's pods (a `Weak` of the slice). Both are immutable and replaced whole on change, and
//! the chunk holds their allocations (not their contents), so no newer one can take their
//! address: the chunk is reused exactly while both are the same objects. Staleness is never
//! cached: [`Store::node_pods`] is asked for every node on every list, and a node past its
//! max age is left out as in the direct path.
//!
//! Serving: a list sends each chunk's bytes as they are kept, one shared `Bytes` piece per
//! node of the response body ([`crate::apiserver::Body`]); nothing is copied to build the
//! body. Each chunk starts with the representation's item separator, sliced off for the
//! response's first item, so separators need no pieces of their own.
//!
//! Per-response values: every item's `creationTimestamp` is the read time. A chunk records
//! where it sits in each item and keeps its bytes patched with the value it was last served
//! with. A list with the same value (lists within one second) shares them as they are; a list
//! with another value patches them in place when no response still holds them, else patches
//! a copy, which becomes the chunk's bytes (the response holding the old ones keeps them, so
//! each gets its own value). The value has a fixed width (JSON `"2026-11-22T19:37:11Z"` for
//! years 1000–9999; protobuf `Time` `08 <varint> 10 00`, with a 5-byte varint from 2^28 to
//! 2^35 seconds), so patching moves nothing; a chunk whose width differs from the response's
//! is re-encoded instead. Freshness ages come from each chunk's runs of equal sample
//! timestamps, one age per item, without reading the items.
//!
//! Memory: a slot keeps the chunks of the nodes its lists serve, and nothing else (a node past
//! its max age loses its chunk when a list skips it, and once a slot holds more chunks than a
//! list serves, those of nodes gone from the inventory are dropped): about one copy of the
//! last LIST-all body of that representation and version (~460 bytes per pod as JSON, ~260
//! as protobuf) plus ~24 bytes per item of bookkeeping (its `creationTimestamp` offset and
//! sample time): ~72 MB for JSON at 150,000 pods. Responses share those bytes rather than
//! holding their own; a list at another second while an earlier response is still being sent
//! copies the chunks that response holds (a second body until it is sent, as before). Slots
//! are filled only for the representations actually listed.
//!
//! Concurrency: a slot is a concurrent map of chunks. A list looks up each node's chunk and
//! publishes one it built at once, so concurrent lists share the encoding: they alternate
//! direction, and two lists on a cold cache (the first after start or after an idle release,
//! or after a whole cycle without lists) each build about half and meet in the middle. Before
//! this, each built every chunk itself: at 150,000 pods the two concurrent lists the fleet
//! bench makes spent ~0.4 CPU-s on a cold cache instead of ~0.2. A chunk's served bytes sit
//! behind their own mutex, held to share or patch them. A list that publishes a chunk for an
//! older state than a concurrent one only costs the next list a rebuild.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use bytes::{Bytes, BytesMut};
use dashmap::DashMap;

use super::encode::{Document, EncodeChunks, PodItem};
use super::{age_seconds, ReadTime};
use crate::inventory::pod_index::NodePods as InventoryPods;
use crate::inventory::Snapshot;
use crate::kubelet::Timestamp;
use crate::store::{NodePods as StorePods, PodUsage, StateMark, Store};

/// One node's encoded items for one representation and `apiVersion`.
#[derive(Debug)]
struct Chunk {
    /// The store state the items were built from.
    state: StateMark,
    /// The inventory's slice of the node's pods they were built from.
    pods: Weak<[Arc<crate::inventory::PodInfo>]>,
    /// The items as last served, each preceded by the representation's separator.
    served: Mutex<Served>,
    /// Length of the separator before the first item.
    separator: usize,
    /// Width of the `creationTimestamp` value the items were encoded with.
    created_width: usize,
    /// Where each item's `creationTimestamp` value starts in the served bytes.
    created_at: Box<[usize]>,
    /// The items' sample timestamps, newest first, each with how many items have it: the
    /// ages of a list then come in ascending order, which the freshness histogram takes in one
    /// pass ([`crate::telemetry::Telemetry::freshness_runs`]).
    samples: Box<[(Timestamp, usize)]>,
}

/// A chunk's bytes and the `creationTimestamp` value they carry.
#[derive(Debug)]
struct Served {
    bytes: Bytes,
    created: Vec<u8>,
}

impl Chunk {
    fn is_for(&self, state: &StorePods, pods: &InventoryPods, created_width: usize) -> bool {
        self.created_width == created_width
            && self.state.is(state)
            && std::ptr::addr_eq(self.pods.as_ptr(), Arc::as_ptr(pods))
    }

    fn items(&self) -> usize {
        self.created_at.len()
    }

    /// Encodes the node's served pods as list items, in the direct path's order.
    fn build<E: EncodeChunks>(new_encoder: &impl Fn() -> E, state: &StorePods, pods: &InventoryPods) -> Self {
        let mut encoder = new_encoder();
        let mut out = Vec::new();
        // The list's header is written and dropped: the items are encoded exactly as in a
        // list (separators, nested item framing), and do not depend on where they sit.
        encoder.begin(&mut out, Document::PodMetricsList);
        let body = out.len();
        encoder.record_created_offsets();
        let mut samples: Vec<(Timestamp, usize)> = Vec::new();
        let mut cursor = state.cursor();
        let mut usage = PodUsage::default();
        for pod in pods.iter() {
            if !cursor.seek_into(&pod.namespace, &pod.name, &mut usage) {
                continue;
            }
            encoder.pod(
                &mut out,
                &PodItem {
                    namespace: &pod.namespace,
                    name: &pod.name,
                    labels: &pod.labels,
                    usage: &usage,
                },
            );
            match samples.last_mut() {
                Some((timestamp, items)) if *timestamp == usage.timestamp => *items += 1,
                _ => samples.push((usage.timestamp, 1)),
            }
        }
        samples.sort_unstable_by_key(|&(timestamp, _)| std::cmp::Reverse(timestamp));
        samples.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 += later.1;
            }
            same
        });
        // The separator goes first, so any chunk can follow another; the first one of a list
        // is sent without it.
        let separator = encoder.item_separator();
        let mut bytes = Vec::with_capacity(separator.len() + out.len() - body);
        bytes.extend_from_slice(separator);
        bytes.extend_from_slice(&out[body..]);
        let shift = separator.len();
        let created_at = encoder
            .take_created_offsets()
            .into_iter()
            .map(|at| at - body + shift)
            .collect();
        Chunk {
            state: state.mark(),
            pods: Arc::downgrade(pods),
            served: Mutex::new(Served {
                bytes: Bytes::from(bytes),
                created: encoder.created().to_vec(),
            }),
            separator: shift,
            created_width: encoder.created().len(),
            created_at,
            samples: samples.into(),
        }
    }

    /// The chunk's bytes carrying `created` (of the chunk's width) in every item: shared as
    /// last served when they carry it already, else patched in place if no response holds
    /// them, or patched in a copy that replaces them.
    fn bytes_with(&self, created: &[u8]) -> Bytes {
        let mut served = self.lock_served();
        if served.created != created {
            let mut bytes = match std::mem::take(&mut served.bytes).try_into_mut() {
                Ok(unique) => unique,
                // A response still being sent holds them: it keeps its value, we copy.
                Err(shared) => BytesMut::from(&shared[..]),
            };
            for &offset in &self.created_at {
                // Every offset was recorded inside this chunk for a value of this width.
                if let Some(value) = bytes.get_mut(offset..offset + created.len()) {
                    value.copy_from_slice(created);
                }
            }
            served.bytes = bytes.freeze();
            served.created.clear();
            served.created.extend_from_slice(created);
        }
        served.bytes.clone()
    }

    fn lock_served(&self) -> MutexGuard<'_, Served> {
        // Nothing in the patch panics (every offset is checked), so a poisoned lock's content
        // is still whole.
        self.served.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Keyed by node name, which comes from the API server, not from clients: no DoS-resistant
/// hash needed, and foldhash costs a fraction of SipHash for the lookup per node a list makes.
type ChunkMap = DashMap<Arc<str>, Arc<Chunk>, foldhash::fast::RandomState>;

/// The chunks of one representation and `apiVersion`.
#[derive(Debug, Default)]
pub struct Slot {
    chunks: ChunkMap,
    /// Lists begun, to alternate the direction in which they build chunks.
    lists: AtomicUsize,
}

/// What a cached list did, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListStats {
    /// Nodes whose chunk was served from the cache.
    pub reused: usize,
    /// Nodes whose chunk was encoded for this list.
    pub built: usize,
}

impl Slot {
    /// Drops every chunk (see [`super::list_all`]).
    pub fn clear(&self) {
        self.chunks.clear();
    }

    /// The items of every pod, node by node as [`super::pods::list`] writes them for all
    /// namespaces without selectors, as pieces appended to `items`, to be sent between
    /// `encoder`'s `begin` and `finish_around`, which the caller writes. `new_encoder` makes
    /// an encoder like `encoder` for building chunks.
    #[allow(clippy::too_many_arguments)] // a read's inputs and outputs, spelled out for the hot path
    pub fn list_pods<E: EncodeChunks>(
        &self,
        snapshot: &Snapshot,
        store: &Store,
        at: ReadTime,
        encoder: &E,
        new_encoder: impl Fn() -> E,
        items: &mut Vec<Bytes>,
        ages: &mut Vec<(f64, u64)>,
    ) -> ListStats {
        let created = encoder.created();
        // Staleness is the read's, never the cache's: a node past its max age is left out,
        // and its chunk dropped.
        let mut nodes = Vec::with_capacity(self.chunks.len());
        for (node, pods) in snapshot.pods.by_node_shared() {
            match store.node_pods(node, at.monotonic) {
                Some(state) => nodes.push((node, pods, state)),
                None => drop(self.chunks.remove(&**node)),
            }
        }
        // Nodes that left the inventory leave nothing behind.
        if self.chunks.len() > nodes.len() {
            self.chunks.retain(|node, _| !snapshot.pods.on_node(node).is_empty());
        }

        // Every chunk built is published at once, so a concurrent list finds it. Lists
        // alternate direction, so two lists that start on a cold cache (or one a whole cycle
        // old) build half of it each, meeting in the middle, instead of both building all.
        let mut stats = ListStats::default();
        let mut resolve = |(node, pods, state): &(&Arc<str>, &InventoryPods, StorePods)| {
            let cached = self.chunks.get(&***node).and_then(|chunk| {
                chunk
                    .is_for(state, pods, created.len())
                    .then(|| Arc::clone(chunk.value()))
            });
            match cached {
                Some(chunk) => {
                    stats.reused += 1;
                    chunk
                }
                None => {
                    stats.built += 1;
                    let chunk = Arc::new(Chunk::build(&new_encoder, state, pods));
                    self.chunks.insert(Arc::clone(node), Arc::clone(&chunk));
                    chunk
                }
            }
        };
        let listed: Vec<Arc<Chunk>> = if self.lists.fetch_add(1, Ordering::Relaxed) % 2 == 0 {
            nodes.iter().map(&mut resolve).collect()
        } else {
            let mut backwards: Vec<Arc<Chunk>> = nodes.iter().rev().map(&mut resolve).collect();
            backwards.reverse();
            backwards
        };
        drop(nodes);

        items.reserve(listed.len());
        ages.reserve(listed.iter().map(|c| c.samples.len()).sum());
        let mut first = true;
        for chunk in listed.iter().filter(|c| c.items() > 0) {
            let bytes = chunk.bytes_with(created);
            items.push(if first { bytes.slice(chunk.separator..) } else { bytes });
            first = false;
            // One age per run of equal sample times, with its item count: the histogram
            // takes a run in one step instead of one observation per pod.
            ages.extend(
                chunk
                    .samples
                    .iter()
                    .map(|&(timestamp, items)| (age_seconds(at, timestamp), items as u64)),
            );
        }
        stats
    }
}
