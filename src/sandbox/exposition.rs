//! Writes the `/metrics/resource` body a newer kubelet would serve for a simulated node.
//!
//! The layout follows a kubelet's: `# HELP` and `# TYPE` for every family, families sorted by
//! name, containers in the order given, pod series summed from their containers, swap always
//! zero, start times and `resource_scrape_error` without a timestamp. Values are written as the
//! shortest text that reads back to the same float. The simulated kubelets serve it, and the
//! decoder's benches and tests read it; what the numbers are (growth, noise) is up to the
//! caller.

use std::io::Write as _;

/// One container's cumulative counters as the simulated kubelet reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct SimContainer {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// Unix seconds; written without a timestamp, like the kubelet does.
    pub start_time_seconds: f64,
    /// Cumulative CPU time in core-seconds.
    pub cpu_seconds: f64,
    /// Working-set memory in bytes.
    pub memory_bytes: f64,
}

/// A simulated node: its own counters and its containers.
#[derive(Debug, Clone, PartialEq)]
pub struct SimNode {
    /// Cumulative CPU time in core-seconds.
    pub cpu_seconds: f64,
    /// Working-set memory in bytes.
    pub memory_bytes: f64,
    /// Sorted by (namespace, pod, container): pod series are summed over adjacent containers
    /// of the same pod, so an unsorted list reports a split pod twice.
    pub containers: Vec<SimContainer>,
}

const CONTAINER_CPU: &str = "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n# TYPE container_cpu_usage_seconds_total counter\n";
const CONTAINER_MEMORY: &str = "# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes\n# TYPE container_memory_working_set_bytes gauge\n";
const CONTAINER_START: &str = "# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds\n# TYPE container_start_time_seconds gauge\n";
const CONTAINER_SWAP: &str = "# HELP container_swap_usage_bytes [ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems\n# TYPE container_swap_usage_bytes gauge\n";
const NODE_CPU: &str = "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n# TYPE node_cpu_usage_seconds_total counter\n";
const NODE_MEMORY: &str = "# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes\n# TYPE node_memory_working_set_bytes gauge\n";
const NODE_SWAP: &str = "# HELP node_swap_usage_bytes [ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems\n# TYPE node_swap_usage_bytes gauge\n";
const POD_CPU: &str = "# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds\n# TYPE pod_cpu_usage_seconds_total counter\n";
const POD_MEMORY: &str = "# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes\n# TYPE pod_memory_working_set_bytes gauge\n";
const POD_SWAP: &str = "# HELP pod_swap_usage_bytes [ALPHA] Current amount of the pod swap usage in bytes. Reported only on non-windows systems\n# TYPE pod_swap_usage_bytes gauge\n";
const SCRAPE_ERROR: &str = "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE resource_scrape_error gauge\nresource_scrape_error 0\n";

/// Appends the body for `node`, every sample (but start times) stamped `timestamp_ms`.
pub fn render_resource_metrics(node: &SimNode, timestamp_ms: i64, out: &mut Vec<u8>) {
    let mut ts = itoa::Buffer::new();
    let ts = ts.format(timestamp_ms).as_bytes();
    let containers = &node.containers;

    out.extend_from_slice(CONTAINER_CPU.as_bytes());
    for c in containers {
        container_line(
            out,
            "container_cpu_usage_seconds_total",
            c,
            Value::Float(c.cpu_seconds),
            Some(ts),
        );
    }
    out.extend_from_slice(CONTAINER_MEMORY.as_bytes());
    for c in containers {
        container_line(
            out,
            "container_memory_working_set_bytes",
            c,
            Value::Float(c.memory_bytes),
            Some(ts),
        );
    }
    out.extend_from_slice(CONTAINER_START.as_bytes());
    for c in containers {
        container_line(
            out,
            "container_start_time_seconds",
            c,
            Value::Float(c.start_time_seconds),
            None,
        );
    }
    out.extend_from_slice(CONTAINER_SWAP.as_bytes());
    for c in containers {
        container_line(out, "container_swap_usage_bytes", c, Value::Zero, Some(ts));
    }

    out.extend_from_slice(NODE_CPU.as_bytes());
    sample(
        out,
        "node_cpu_usage_seconds_total",
        Value::Float(node.cpu_seconds),
        Some(ts),
    );
    out.extend_from_slice(NODE_MEMORY.as_bytes());
    sample(
        out,
        "node_memory_working_set_bytes",
        Value::Float(node.memory_bytes),
        Some(ts),
    );
    out.extend_from_slice(NODE_SWAP.as_bytes());
    sample(out, "node_swap_usage_bytes", Value::Zero, Some(ts));

    let pods = || containers.chunk_by(|a, b| a.namespace == b.namespace && a.pod == b.pod);
    out.extend_from_slice(POD_CPU.as_bytes());
    for pod in pods() {
        let cpu = pod.iter().map(|c| c.cpu_seconds).fold(0.0, |a, b| a + b);
        pod_line(out, "pod_cpu_usage_seconds_total", pod, Value::Float(cpu), ts);
    }
    out.extend_from_slice(POD_MEMORY.as_bytes());
    for pod in pods() {
        let memory = pod.iter().map(|c| c.memory_bytes).fold(0.0, |a, b| a + b);
        pod_line(out, "pod_memory_working_set_bytes", pod, Value::Float(memory), ts);
    }
    out.extend_from_slice(POD_SWAP.as_bytes());
    for pod in pods() {
        pod_line(out, "pod_swap_usage_bytes", pod, Value::Zero, ts);
    }
    out.extend_from_slice(SCRAPE_ERROR.as_bytes());
}

#[derive(Clone, Copy)]
enum Value {
    Float(f64),
    /// Swap: the kubelet writes a plain `0`.
    Zero,
}

fn container_line(out: &mut Vec<u8>, name: &str, c: &SimContainer, value: Value, ts: Option<&[u8]>) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"{container=\"");
    label_value(out, &c.container);
    out.extend_from_slice(b"\",namespace=\"");
    label_value(out, &c.namespace);
    out.extend_from_slice(b"\",pod=\"");
    label_value(out, &c.pod);
    out.push(b'"');
    sample(out, "}", value, ts);
}

fn pod_line(out: &mut Vec<u8>, name: &str, pod: &[SimContainer], value: Value, ts: &[u8]) {
    let Some(first) = pod.first() else { return };
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"{namespace=\"");
    label_value(out, &first.namespace);
    out.extend_from_slice(b"\",pod=\"");
    label_value(out, &first.pod);
    out.push(b'"');
    sample(out, "}", value, Some(ts));
}

/// `head value[ timestamp]\n`.
fn sample(out: &mut Vec<u8>, head: &str, value: Value, ts: Option<&[u8]>) {
    out.extend_from_slice(head.as_bytes());
    out.push(b' ');
    match value {
        Value::Zero => out.push(b'0'),
        Value::Float(v) if v.is_nan() => out.extend_from_slice(b"NaN"),
        Value::Float(v) if v.is_infinite() => {
            out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
        }
        // Writing into a Vec cannot fail. `{:?}` is the shortest text that reads back
        // exactly, with `.0` on integral values and an exponent outside 1e-5..1e16.
        Value::Float(v) => drop(write!(out, "{v:?}")),
    }
    if let Some(ts) = ts {
        out.push(b' ');
        out.extend_from_slice(ts);
    }
    out.push(b'\n');
}

/// The text format's escapes: backslash, double quote, newline.
fn label_value(out: &mut Vec<u8>, value: &str) {
    for &b in value.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(ns: &str, pod: &str, name: &str, cpu: f64, memory: f64) -> SimContainer {
        SimContainer {
            namespace: ns.to_owned(),
            pod: pod.to_owned(),
            container: name.to_owned(),
            start_time_seconds: 1795341292.2380102,
            cpu_seconds: cpu,
            memory_bytes: memory,
        }
    }

    #[test]
    fn renders_the_synthetic_fixture_byte_for_byte() {
        let node = SimNode {
            cpu_seconds: 1001.5,
            memory_bytes: 1073741824.0,
            containers: vec![
                container("default", "web-1", "app", 0.75, 104857600.0),
                container("default", "web-1", "istio-proxy", 0.03, 20971520.0),
                container(
                    "kube-system",
                    "coredns-7db6d8ff4d-xk2p9",
                    "coredns",
                    0.009000000000000001,
                    13447168.0,
                ),
            ],
        };
        let mut out = Vec::new();
        render_resource_metrics(&node, 1795344895238, &mut out);
        let want = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/fixtures/kubelet/synthetic-newer-kubelet-series.txt"
        ));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(want.to_vec()).unwrap()
        );
    }

    #[test]
    fn special_values_and_label_escapes_use_the_text_format_spelling() {
        let mut c = container("n", "a\"b\\c\nd", "x", f64::NAN, f64::INFINITY);
        c.start_time_seconds = 1e9;
        let node = SimNode {
            cpu_seconds: f64::NEG_INFINITY,
            memory_bytes: 1e300,
            containers: vec![c],
        };
        let mut out = Vec::new();
        render_resource_metrics(&node, 0, &mut out);
        let text = String::from_utf8(out).unwrap();
        let cpu = "container_cpu_usage_seconds_total{container=\"x\",namespace=\"n\",pod=\"a\\\"b\\\\c\\nd\"} NaN 0\n";
        assert!(text.contains(cpu), "{text}");
        assert!(text.contains("} +Inf 0\n"));
        assert!(text.contains("} 1000000000.0\n"));
        assert!(text.contains("node_cpu_usage_seconds_total -Inf 0\n"));
        assert!(text.contains("node_memory_working_set_bytes 1e300 0\n"));
    }

    #[test]
    fn an_empty_node_still_has_every_family() {
        let node = SimNode {
            cpu_seconds: 0.0,
            memory_bytes: 0.0,
            containers: vec![],
        };
        let mut out = Vec::new();
        render_resource_metrics(&node, 5, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("# TYPE ").count(), 11);
        assert!(text.ends_with("resource_scrape_error 0\n"));
    }
}
