//! The JSON wire form of `NodeMetrics`, `PodMetrics` and their lists, written straight into a
//! byte buffer with the field order, escaping and quantity strings of the Go apiserver.
//!
//! Hand-written rather than serde-derived: one pass, no intermediate strings per field, and
//! the exact bytes are visible here (the aggregator and clients compare nothing, but humans
//! diff upstream against us).

use std::time::Duration;

use super::go_duration::write_go_duration;
use super::quantity::{write_cpu, write_memory};
use super::rfc3339::write_rfc3339_seconds;
use crate::inventory::Labels;
use crate::kubelet::Timestamp;
use crate::store::{PodUsage, Usage};

/// Writes `s` as a JSON string the way Go's encoding/json does, including its HTML-safe
/// escapes (`<`, `>`, `&`) and U+2028/U+2029.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
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
    out.push(b'"');
}

/// Per-response scratch space and the values every item shares.
#[derive(Debug)]
pub struct Encoder<'v> {
    /// `metrics.k8s.io/v1beta1` (or another served version).
    pub api_version: &'v str,
    /// Upstream sets `creationTimestamp` to the time the response is built.
    pub created: Timestamp,
    scratch: String,
}

impl<'v> Encoder<'v> {
    pub fn new(api_version: &'v str, created: Timestamp) -> Self {
        Encoder {
            api_version,
            created,
            scratch: String::with_capacity(32),
        }
    }

    pub fn list_start(&self, out: &mut Vec<u8>, kind: &str) {
        out.extend_from_slice(b"{\"kind\":");
        write_str(out, kind);
        out.extend_from_slice(b",\"apiVersion\":");
        write_str(out, self.api_version);
        out.extend_from_slice(b",\"metadata\":{},\"items\":[");
    }

    pub fn list_end(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"]}");
    }

    pub fn node_metrics(
        &mut self,
        out: &mut Vec<u8>,
        name: &str,
        labels: &Labels,
        timestamp: Timestamp,
        window: Duration,
        usage: Usage,
    ) {
        self.object_start(out, "NodeMetrics", name, None, labels, timestamp, window);
        out.extend_from_slice(b",\"usage\":");
        self.usage(out, usage);
        out.push(b'}');
    }

    pub fn pod_metrics(&mut self, out: &mut Vec<u8>, namespace: &str, name: &str, labels: &Labels, pod: &PodUsage) {
        self.object_start(
            out,
            "PodMetrics",
            name,
            Some(namespace),
            labels,
            pod.timestamp,
            pod.window,
        );
        out.extend_from_slice(b",\"containers\":[");
        for (i, container) in pod.containers.iter().enumerate() {
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

    #[allow(clippy::too_many_arguments)] // the fields of ObjectMeta plus the window, in wire order
    fn object_start(
        &mut self,
        out: &mut Vec<u8>,
        kind: &str,
        name: &str,
        namespace: Option<&str>,
        labels: &Labels,
        timestamp: Timestamp,
        window: Duration,
    ) {
        out.extend_from_slice(b"{\"kind\":");
        write_str(out, kind);
        out.extend_from_slice(b",\"apiVersion\":");
        write_str(out, self.api_version);
        out.extend_from_slice(b",\"metadata\":{\"name\":");
        write_str(out, name);
        if let Some(namespace) = namespace {
            out.extend_from_slice(b",\"namespace\":");
            write_str(out, namespace);
        }
        out.extend_from_slice(b",\"creationTimestamp\":");
        self.time(out, self.created);
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
        out.extend_from_slice(b"},\"timestamp\":");
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
        self.scratch.clear();
        write_rfc3339_seconds(t, &mut self.scratch);
        out.push(b'"');
        out.extend_from_slice(self.scratch.as_bytes());
        out.push(b'"');
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
    }
}
