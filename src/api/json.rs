//! The JSON wire form of `NodeMetrics`, `PodMetrics` and their lists, written straight into a
//! byte buffer with the field order, escaping and quantity strings of the Go apiserver, and the
//! trailing newline its encoder (`json.Encoder.Encode`) adds.
//!
//! Hand-written rather than serde-derived: one pass, no intermediate strings per field, and
//! the exact bytes are visible here (the aggregator and clients compare nothing, but humans
//! diff upstream against us). The Table encoder reuses the object and metadata writers.

use super::encode::{Document, Encode, EncodeChunks, NodeItem, PodItem};
use super::go_duration::write_go_duration;
use super::quantity::{write_cpu, write_memory};
use super::rfc3339::write_rfc3339_seconds;
use crate::inventory::Labels;
use crate::kubelet::Timestamp;
use crate::store::Usage;

/// Writes `s` as a JSON string the way Go's encoding/json does, including its HTML-safe
/// escapes (`<`, `>`, `&`) and U+2028/U+2029.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    // Kubernetes names and label values never need escaping: copy them whole.
    if is_plain(s.as_bytes()) {
        out.extend_from_slice(s.as_bytes());
    } else {
        write_escaped(out, s);
    }
    out.push(b'"');
}

/// Whether no byte of `s` may need an escape: controls, `"`, `\`, `<`, `>`, `&`, and 0xE2,
/// the first byte of U+2028 and U+2029. Checks every byte without an early exit, so the
/// compiler turns it into vector compares (this runs for every name and label of a list).
fn is_plain(s: &[u8]) -> bool {
    !s.iter().fold(false, |care, &b| {
        care | (b < 0x20) | (b == b'"') | (b == b'\\') | (b == b'<') | (b == b'>') | (b == b'&') | (b == 0xE2)
    })
}

fn write_escaped(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape: Option<&[u8]> = match c {
            '"' => Some(b"\\\""),
            '\\' => Some(b"\\\\"),
            '\n' => Some(b"\\n"),
            '\r' => Some(b"\\r"),
            '\t' => Some(b"\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\u{0}'..='\u{1f}' => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
        }
        start = i + c.len_utf8();
    }
    out.extend_from_slice(&bytes[start..]);
}

/// `{"kind":<kind>,"apiVersion":<api_version>,"metadata":`, the start of every object.
fn object_start(api_version: &str, kind: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"{\"kind\":");
    write_str(&mut out, kind);
    out.extend_from_slice(b",\"apiVersion\":");
    write_str(&mut out, api_version);
    out.extend_from_slice(b",\"metadata\":");
    out
}

/// Per-response state: the values every item shares, the list separator, and scratch space.
#[derive(Debug)]
pub struct Encoder<'v> {
    /// `metrics.k8s.io/v1beta1` (or another served version).
    api_version: &'v str,
    /// Upstream sets `creationTimestamp` to the time the response is built; written once as a
    /// JSON value and copied into every item.
    created: Vec<u8>,
    list: bool,
    items: usize,
    scratch: String,
    /// The last timestamp written, as its quoted JSON value: a node's pods mostly share
    /// one second, so most items copy it instead of converting again.
    last_time: Option<(i64, Vec<u8>)>,
    /// `{"kind":"PodMetrics","apiVersion":"…","metadata":` and the same for NodeMetrics:
    /// written on first use, copied into every item.
    pod_start: Vec<u8>,
    node_start: Vec<u8>,
    /// Where each item's `creationTimestamp` value was written, while recorded for the
    /// LIST-all cache.
    created_offsets: Option<Vec<usize>>,
}

impl<'v> Encoder<'v> {
    pub fn new(api_version: &'v str, created: Timestamp) -> Self {
        let mut encoder = Encoder {
            api_version,
            created: Vec::new(),
            list: false,
            items: 0,
            scratch: String::with_capacity(32),
            last_time: None,
            pod_start: Vec::new(),
            node_start: Vec::new(),
            created_offsets: None,
        };
        let mut created_json = Vec::with_capacity(24);
        encoder.time(&mut created_json, created);
        encoder.created = created_json;
        encoder
    }

    /// A whole `NodeMetrics` object.
    pub fn write_node(&mut self, out: &mut Vec<u8>, node: &NodeItem<'_>) {
        if self.node_start.is_empty() {
            self.node_start = object_start(self.api_version, "NodeMetrics");
        }
        out.extend_from_slice(&self.node_start);
        let created_at = self.metadata(out, node.name, None, node.labels);
        self.created_written(created_at);
        self.sample(out, node.timestamp, node.window);
        out.extend_from_slice(b",\"usage\":");
        self.usage(out, node.usage);
        out.push(b'}');
    }

    /// A whole `PodMetrics` object.
    pub fn write_pod(&mut self, out: &mut Vec<u8>, pod: &PodItem<'_>) {
        if self.pod_start.is_empty() {
            self.pod_start = object_start(self.api_version, "PodMetrics");
        }
        out.extend_from_slice(&self.pod_start);
        let created_at = self.metadata(out, pod.name, Some(pod.namespace), pod.labels);
        self.created_written(created_at);
        self.sample(out, pod.usage.timestamp, pod.usage.window);
        out.extend_from_slice(b",\"containers\":[");
        for (i, container) in pod.usage.containers.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"name\":");
            write_str(out, &container.name);
            out.extend_from_slice(b",\"usage\":");
            self.usage(out, container.usage);
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    }

    /// `ObjectMeta` as served: name, namespace, creationTimestamp, labels (when any).
    pub fn write_metadata(&self, out: &mut Vec<u8>, name: &str, namespace: Option<&str>, labels: &Labels) {
        self.metadata(out, name, namespace, labels);
    }

    /// [`write_metadata`](Self::write_metadata), returning where the `creationTimestamp`
    /// value starts in `out`.
    fn metadata(&self, out: &mut Vec<u8>, name: &str, namespace: Option<&str>, labels: &Labels) -> usize {
        out.extend_from_slice(b"{\"name\":");
        write_str(out, name);
        if let Some(namespace) = namespace {
            out.extend_from_slice(b",\"namespace\":");
            write_str(out, namespace);
        }
        out.extend_from_slice(b",\"creationTimestamp\":");
        let created_at = out.len();
        out.extend_from_slice(&self.created);
        if !labels.is_empty() {
            out.extend_from_slice(b",\"labels\":{");
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write_str(out, v);
            }
            out.push(b'}');
        }
        out.push(b'}');
        created_at
    }

    fn created_written(&mut self, at: usize) {
        if let Some(offsets) = &mut self.created_offsets {
            offsets.push(at);
        }
    }

    /// `,"timestamp":…,"window":"…"`.
    fn sample(&mut self, out: &mut Vec<u8>, timestamp: Timestamp, window: std::time::Duration) {
        out.extend_from_slice(b",\"timestamp\":");
        self.time(out, timestamp);
        out.extend_from_slice(b",\"window\":\"");
        self.scratch.clear();
        write_go_duration(window, &mut self.scratch);
        out.extend_from_slice(self.scratch.as_bytes());
        out.push(b'"');
    }

    fn time(&mut self, out: &mut Vec<u8>, t: Timestamp) {
        // Go's zero time.Time is written as null.
        if t.is_zero() {
            out.extend_from_slice(b"null");
            return;
        }
        let seconds = t.unix_seconds();
        if let Some((last, json)) = &self.last_time {
            if *last == seconds {
                out.extend_from_slice(json);
                return;
            }
        }
        self.scratch.clear();
        write_rfc3339_seconds(t, &mut self.scratch);
        let json = [b"\"", self.scratch.as_bytes(), b"\""].concat();
        out.extend_from_slice(&json);
        self.last_time = Some((seconds, json));
    }

    fn usage(&mut self, out: &mut Vec<u8>, usage: Usage) {
        out.extend_from_slice(b"{\"cpu\":\"");
        self.scratch.clear();
        write_cpu(usage.cpu_nanocores, &mut self.scratch);
        out.extend_from_slice(self.scratch.as_bytes());
        out.extend_from_slice(b"\",\"memory\":\"");
        self.scratch.clear();
        write_memory(usage.memory_bytes, &mut self.scratch);
        out.extend_from_slice(self.scratch.as_bytes());
        out.extend_from_slice(b"\"}");
    }

    fn separate(&mut self, out: &mut Vec<u8>) {
        if self.items > 0 {
            out.push(b',');
        }
        self.items += 1;
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
        b","
    }

    fn finish_around(&mut self, out: &mut Vec<u8>, _items: usize) -> (usize, usize) {
        // The footer does not depend on the items.
        let items_at = out.len();
        (self.finish(out), items_at)
    }
}

impl Encode for Encoder<'_> {
    fn begin(&mut self, out: &mut Vec<u8>, document: Document) {
        self.list = document.is_list();
        if self.list {
            out.extend_from_slice(b"{\"kind\":");
            write_str(out, document.kind());
            out.extend_from_slice(b",\"apiVersion\":");
            write_str(out, self.api_version);
            out.extend_from_slice(b",\"metadata\":{},\"items\":[");
        }
    }

    fn node(&mut self, out: &mut Vec<u8>, node: &NodeItem<'_>) {
        self.separate(out);
        self.write_node(out, node);
    }

    fn pod(&mut self, out: &mut Vec<u8>, pod: &PodItem<'_>) {
        self.separate(out);
        self.write_pod(out, pod);
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> usize {
        if self.list {
            out.extend_from_slice(b"]}");
        }
        out.push(b'\n');
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_str(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_go_does() {
        assert_eq!(json_str("plain-name.1"), "\"plain-name.1\"");
        assert_eq!(json_str("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(json_str("<&>"), "\"\\u003c\\u0026\\u003e\"");
        assert_eq!(json_str("\u{1}é\u{2028}"), "\"\\u0001é\\u2028\"");
        assert_eq!(json_str("a→b\u{2029}"), "\"a→b\\u2029\"");
    }

    #[test]
    fn a_special_byte_anywhere_in_a_long_string_is_escaped() {
        let plain = "kubernetes.io-metadata.name-0123456789";
        assert_eq!(json_str(plain), format!("\"{plain}\""));
        for (special, escaped) in [
            ("\"", "\\\""),
            ("\\", "\\\\"),
            ("<", "\\u003c"),
            (">", "\\u003e"),
            ("&", "\\u0026"),
            ("\u{1f}", "\\u001f"),
            ("\u{2028}", "\\u2028"),
        ] {
            for at in [0, 7, 8, 17, plain.len()] {
                let input = format!("{}{special}{}", &plain[..at], &plain[at..]);
                let want = format!("\"{}{escaped}{}\"", &plain[..at], &plain[at..]);
                assert_eq!(json_str(&input), want, "{special:?} at {at}");
            }
        }
    }

    #[test]
    fn an_empty_list_has_empty_items_and_a_trailing_newline() {
        let mut out = Vec::new();
        let mut e = Encoder::new("metrics.k8s.io/v1", Timestamp::from_unix_seconds(1));
        e.begin(&mut out, Document::PodMetricsList);
        assert_eq!(e.finish(&mut out), 0);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"kind\":\"PodMetricsList\",\"apiVersion\":\"metrics.k8s.io/v1\",\"metadata\":{},\"items\":[]}\n"
        );
    }
}
