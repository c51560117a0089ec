//! The protobuf wire form (`application/vnd.kubernetes.protobuf`) of `NodeMetrics`,
//! `PodMetrics` and their lists, byte for byte as the Go apiserver writes them (spec §10).
//!
//! Every body is the envelope of [`crate::apiserver::protobuf`] around the object. Field
//! numbers and presence follow `k8s.io/metrics` and `k8s.io/apimachinery`'s generated code:
//!
//! * `NodeMetrics`: metadata = 1, timestamp = 2, window = 3, usage = 4 (map entries sorted by
//!   resource name: `cpu`, then `memory`). `PodMetrics`: the same with containers = 4, each
//!   `ContainerMetrics{name = 1, usage = 2}`. Lists: metadata = 1 (`ListMeta`), items = 2.
//! * `ObjectMeta` carries every scalar Go writes: name = 1, generateName = 2 (empty),
//!   namespace = 3 (empty for nodes), selfLink = 4, uid = 5, resourceVersion = 6 (empty),
//!   generation = 7 (0), creationTimestamp = 8, then labels = 11 as sorted entries. Pointer and
//!   repeated fields (deletionTimestamp, annotations, …) are absent.
//! * `ListMeta`: selfLink = 1, resourceVersion = 2, continue = 3, all empty; no
//!   remainingItemCount.
//! * `Time`: seconds = 1 and nanos = 2, with nanos always 0 (the API keeps whole seconds), and
//!   an empty message for the zero time. `Duration`: duration = 1 in nanoseconds.
//! * `Quantity`: string = 1, the canonical quantity string also used in JSON.

use std::time::Duration;

use super::encode::{Document, Encode, EncodeChunks, NodeItem, PodItem};
use super::quantity::{write_cpu, write_memory};
use crate::apiserver::protobuf::{self as pb, Envelope, Nested};
use crate::inventory::Labels;
use crate::kubelet::Timestamp;
use crate::store::Usage;

/// Per-response state: the envelope, the shared creation time, the open list, scratch space.
#[derive(Debug)]
pub struct Encoder<'v> {
    api_version: &'v str,
    /// `creationTimestamp` (the response time), encoded once as a `Time` message body.
    created: Vec<u8>,
    envelope: Option<Envelope>,
    list: bool,
    scratch: String,
    /// Where each item's `creationTimestamp` body was written, while recorded for the
    /// LIST-all cache.
    created_offsets: Option<Vec<usize>>,
}

impl<'v> Encoder<'v> {
    pub fn new(api_version: &'v str, created: Timestamp) -> Self {
        let mut created_time = Vec::with_capacity(12);
        time_body(&mut created_time, created);
        Encoder {
            api_version,
            created: created_time,
            envelope: None,
            list: false,
            scratch: String::with_capacity(32),
            created_offsets: None,
        }
    }

    /// Opens a list item (field 2 of a list) or, for a get, nothing: the object's fields are
    /// the envelope's `raw` itself.
    fn open_item(&self, out: &mut Vec<u8>) -> Option<Nested> {
        // An item is a few hundred bytes: two length bytes spare moving it when it closes.
        self.list.then(|| pb::begin_wide(out, 2))
    }

    fn object_meta(&mut self, out: &mut Vec<u8>, name: &str, namespace: &str, labels: &Labels) {
        let meta = pb::begin(out, 1);
        pb::put_str(out, 1, name);
        pb::put_str(out, 2, "");
        pb::put_str(out, 3, namespace);
        pb::put_str(out, 4, "");
        pb::put_str(out, 5, "");
        pb::put_str(out, 6, "");
        pb::put_int(out, 7, 0);
        pb::put_bytes(out, 8, &self.created);
        if let Some(offsets) = &mut self.created_offsets {
            offsets.push(out.len() - self.created.len());
        }
        for (k, v) in labels.iter() {
            pb::put_string_entry(out, 11, k, v);
        }
        pb::end(out, meta);
    }

    /// Closes a list item. `end` moves the item's bytes when its length takes other than the
    /// two bytes reserved (under 128 or over 16,383 bytes): the recorded creationTimestamp
    /// offset moves with them.
    fn end_item(&mut self, out: &mut Vec<u8>, item: Nested) {
        let before = out.len();
        pb::end(out, item);
        let after = out.len();
        if let Some(last) = self.created_offsets.as_mut().and_then(|offsets| offsets.last_mut()) {
            *last = (*last + after).saturating_sub(before);
        }
    }

    /// timestamp = 2, window = 3.
    fn sample(out: &mut Vec<u8>, timestamp: Timestamp, window: Duration) {
        let time = pb::begin(out, 2);
        time_body(out, timestamp);
        pb::end(out, time);
        let duration = pb::begin(out, 3);
        let nanos = i64::try_from(window.as_nanos()).unwrap_or(i64::MAX);
        pb::put_int(out, 1, nanos);
        pb::end(out, duration);
    }

    /// The `ResourceList` map as entries of `field`, sorted: `cpu`, `memory`.
    fn usage(&mut self, out: &mut Vec<u8>, field: u8, usage: Usage) {
        self.scratch.clear();
        write_cpu(usage.cpu_nanocores, &mut self.scratch);
        quantity_entry(out, field, "cpu", &self.scratch);
        self.scratch.clear();
        write_memory(usage.memory_bytes, &mut self.scratch);
        quantity_entry(out, field, "memory", &self.scratch);
    }
}

/// One `map<string, Quantity>` entry.
fn quantity_entry(out: &mut Vec<u8>, field: u8, name: &str, quantity: &str) {
    let entry = pb::begin(out, field);
    pb::put_str(out, 1, name);
    let value = pb::begin(out, 2);
    pb::put_str(out, 1, quantity);
    pb::end(out, value);
    pb::end(out, entry);
}

/// The fields of a `Time`: seconds and a zero nanos, or nothing for the zero time.
fn time_body(out: &mut Vec<u8>, t: Timestamp) {
    if !t.is_zero() {
        pb::put_int(out, 1, t.unix_seconds());
        pb::put_int(out, 2, 0);
    }
}

impl EncodeChunks for Encoder<'_> {
    fn created(&self) -> &[u8] {
        &self.created
    }

    fn record_created_offsets(&mut self) {
        self.created_offsets = Some(Vec::new());
    }

    fn take_created_offsets(&mut self) -> Vec<usize> {
        self.created_offsets.take().unwrap_or_default()
    }

    fn item_separator(&self) -> &'static [u8] {
        b""
    }

    fn finish_around(&mut self, out: &mut Vec<u8>, items: usize) -> (usize, usize) {
        match self.envelope.take() {
            Some(envelope) => envelope.finish_around(out, items),
            // `begin` was never called: nothing to close.
            None => (0, out.len()),
        }
    }
}

impl Encode for Encoder<'_> {
    fn begin(&mut self, out: &mut Vec<u8>, document: Document) {
        self.envelope = Some(Envelope::begin(out, self.api_version, document.kind()));
        self.list = document.is_list();
        if self.list {
            let list_meta = pb::begin(out, 1);
            for field in 1..=3 {
                pb::put_str(out, field, "");
            }
            pb::end(out, list_meta);
        }
    }

    fn node(&mut self, out: &mut Vec<u8>, node: &NodeItem<'_>) {
        let item = self.open_item(out);
        self.object_meta(out, node.name, "", node.labels);
        Self::sample(out, node.timestamp, node.window);
        self.usage(out, 4, node.usage);
        if let Some(item) = item {
            self.end_item(out, item);
        }
    }

    fn pod(&mut self, out: &mut Vec<u8>, pod: &PodItem<'_>) {
        let item = self.open_item(out);
        self.object_meta(out, pod.name, pod.namespace, pod.labels);
        Self::sample(out, pod.usage.timestamp, pod.usage.window);
        for container in &pod.usage.containers {
            let nested = pb::begin(out, 4);
            pb::put_str(out, 1, &container.name);
            self.usage(out, 2, container.usage);
            pb::end(out, nested);
        }
        if let Some(item) = item {
            self.end_item(out, item);
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> usize {
        match self.envelope.take() {
            Some(envelope) => envelope.finish(out),
            // `begin` was never called: nothing to close.
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ContainerUsage, PodUsage};

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// Every byte of a small NodeMetrics, spelled out field by field.
    #[test]
    fn node_metrics_bytes_match_gos_layout() {
        let created = Timestamp::from_unix_seconds(1_633_253_900);
        let mut e = Encoder::new("metrics.k8s.io/v1", created);
        let mut out = Vec::new();
        e.begin(&mut out, Document::NodeMetrics);
        e.node(
            &mut out,
            &NodeItem {
                name: "n1",
                labels: &labels(&[("b", "2"), ("a", "1")]),
                timestamp: Timestamp::from_unix_millis(1_633_253_810_500),
                window: Duration::from_secs(10),
                usage: Usage {
                    cpu_nanocores: 1_000_000_000,
                    memory_bytes: 5 << 20,
                },
            },
        );
        let start = e.finish(&mut out);
        let body = &out[start..];

        let mut raw = vec![0x0a, 42, 0x0a, 2, b'n', b'1'];
        raw.extend_from_slice(&[0x12, 0, 0x1a, 0, 0x22, 0, 0x2a, 0, 0x32, 0, 0x38, 0]);
        raw.extend_from_slice(&[0x42, 8, 0x08, 0x8c, 0xf4, 0xe5, 0x8a, 0x06, 0x10, 0]);
        raw.extend_from_slice(&[0x5a, 6, 0x0a, 1, b'a', 0x12, 1, b'1']);
        raw.extend_from_slice(&[0x5a, 6, 0x0a, 1, b'b', 0x12, 1, b'2']);
        // timestamp 1633253810 (the half second dropped), window 10 s.
        raw.extend_from_slice(&[0x12, 8, 0x08, 0xb2, 0xf3, 0xe5, 0x8a, 0x06, 0x10, 0]);
        raw.extend_from_slice(&[0x1a, 6, 0x08, 0x80, 0xc8, 0xaf, 0xa0, 0x25]);
        raw.extend_from_slice(&[0x22, 10, 0x0a, 3, b'c', b'p', b'u', 0x12, 3, 0x0a, 1, b'1']);
        raw.extend_from_slice(&[0x22, 15, 0x0a, 6]);
        raw.extend_from_slice(b"memory");
        raw.extend_from_slice(&[0x12, 5, 0x0a, 3, b'5', b'M', b'i']);

        let mut want = b"k8s\0".to_vec();
        want.extend_from_slice(&[0x0a, 32, 0x0a, 17]);
        want.extend_from_slice(b"metrics.k8s.io/v1");
        want.extend_from_slice(&[0x12, 11]);
        want.extend_from_slice(b"NodeMetrics");
        want.extend_from_slice(&[0x12, raw.len() as u8]);
        want.extend_from_slice(&raw);
        want.extend_from_slice(&[0x1a, 0, 0x22, 0]);
        assert_eq!(body, want.as_slice());
    }

    #[test]
    fn empty_lists_carry_only_empty_list_meta() {
        let mut e = Encoder::new("metrics.k8s.io/v1beta1", Timestamp::from_unix_seconds(1));
        let mut out = Vec::new();
        e.begin(&mut out, Document::PodMetricsList);
        let start = e.finish(&mut out);
        let body = &out[start..];
        let raw_at = 4 + 2 + 2 + 22 + 2 + 14;
        assert_eq!(&body[raw_at..raw_at + 2], [0x12, 8]);
        assert_eq!(
            &body[raw_at + 2..],
            [0x0a, 6, 0x0a, 0, 0x12, 0, 0x1a, 0, 0x1a, 0, 0x22, 0]
        );
    }

    #[test]
    fn pods_list_containers_in_order_and_zero_times_are_empty() {
        let usage = PodUsage {
            timestamp: Timestamp::ZERO,
            window: Duration::from_millis(1500),
            containers: vec![ContainerUsage {
                name: "c".into(),
                usage: Usage {
                    cpu_nanocores: 0,
                    memory_bytes: 0,
                },
            }],
        };
        let mut e = Encoder::new("v", Timestamp::from_unix_seconds(1));
        let mut out = Vec::new();
        e.begin(&mut out, Document::PodMetrics);
        e.pod(
            &mut out,
            &PodItem {
                namespace: "ns",
                name: "p",
                labels: &Labels::new(),
                usage: &usage,
            },
        );
        let start = e.finish(&mut out);
        let body = &out[start..];
        let tail: &[u8] = &[
            0x12, 0, // zero timestamp: an empty Time
            0x1a, 6, 0x08, 0x80, 0xde, 0xa0, 0xcb, 0x05, // 1.5 s
            0x22, 30, 0x0a, 1, b'c', // container c
            0x12, 10, 0x0a, 3, b'c', b'p', b'u', 0x12, 3, 0x0a, 1, b'0', //
            0x12, 13, 0x0a, 6, b'm', b'e', b'm', b'o', b'r', b'y', 0x12, 3, 0x0a, 1, b'0', //
            0x1a, 0, 0x22, 0,
        ];
        assert!(body.ends_with(tail), "{body:x?}");
        // ObjectMeta: name "p", empty generateName, namespace "ns".
        let meta_at = body.len() - tail.len() - 25;
        assert_eq!(&body[meta_at..meta_at + 9], [0x0a, 23, 0x0a, 1, b'p', 0x12, 0, 0x1a, 2]);
    }
}
