//! One test per kubelet response in ../shared/fixtures/kubelet, read byte for byte, with the
//! expected values written out (upstream's decode_test.go vectors, spec §6.3).

use super::*;
use std::borrow::Cow;

macro_rules! fixture {
    ($file:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/fixtures/kubelet/",
            $file
        ))
    };
}

/// The scrape's request time in upstream's "without timestamp" vector: 2077-07-07T07:07:07Z.
pub(super) const DEFAULT_TIME: Timestamp = Timestamp::from_unix_seconds(3_392_867_227);

pub(super) fn ms(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(ms)
}

pub(super) fn decoded(body: &[u8]) -> NodeBatch<'_> {
    decode(body, DEFAULT_TIME).unwrap()
}

pub(super) fn error(body: &[u8]) -> DecodeError {
    decode(body, DEFAULT_TIME).unwrap_err()
}

pub(super) fn container(ns: &str, pod: &str, name: &str, point: Point) -> ContainerSample<'static> {
    ContainerSample {
        namespace: Cow::Owned(ns.to_owned()),
        pod: Cow::Owned(pod.to_owned()),
        container: Cow::Owned(name.to_owned()),
        point,
    }
}

fn node1(timestamp: Timestamp) -> Point {
    Point {
        start_time: Timestamp::ZERO,
        timestamp,
        cpu_core_nanoseconds: 357_354_910_000,
        memory_bytes: 1_616_273_408,
    }
}

fn coredns(timestamp: Timestamp) -> ContainerSample<'static> {
    let point = Point {
        start_time: Timestamp::from_unix_seconds(1_633_252_712),
        timestamp,
        cpu_core_nanoseconds: 4_710_169_000,
        memory_bytes: 12_533_760,
    };
    container("kube-system", "coredns-558bd4d5db-4dpjz", "coredns", point)
}

#[test]
fn normal_response_yields_node_and_container_points() {
    let batch = decoded(fixture!("decode_test-01-normal.txt"));
    let want = NodeBatch {
        node: Some(node1(ms(1_633_253_809_720))),
        containers: vec![coredns(ms(1_633_253_812_125))],
    };
    assert_eq!(batch, want);
}

#[test]
fn names_borrow_from_the_body() {
    let batch = decoded(fixture!("decode_test-01-normal.txt"));
    let c = &batch.containers[0];
    assert!(matches!(
        (&c.namespace, &c.pod, &c.container),
        (Cow::Borrowed(_), Cow::Borrowed(_), Cow::Borrowed(_))
    ));
}

#[test]
fn samples_without_timestamp_take_the_default_time() {
    let batch = decoded(fixture!("decode_test-02-without-timestamp-uses-defaulttime.txt"));
    let want = NodeBatch {
        node: Some(node1(DEFAULT_TIME)),
        containers: vec![coredns(DEFAULT_TIME)],
    };
    assert_eq!(batch, want);
}

#[test]
fn containers_only_response_has_no_node() {
    let batch = decoded(fixture!("decode_test-03-single-node--containers-only.txt"));
    let want = NodeBatch {
        containers: vec![coredns(ms(1_633_253_812_125))],
        ..NodeBatch::default()
    };
    assert_eq!(batch, want);
}

#[test]
fn container_without_cpu_drops_its_pod() {
    let body = fixture!("decode_test-04-no-container-cpu-drops-container-metrics.txt");
    assert_eq!(decoded(body), NodeBatch::default());
}

#[test]
fn container_with_zero_cpu_drops_its_pod() {
    let body = fixture!("decode_test-05-empty-container-cpu-drops-container-metrics.txt");
    assert_eq!(decoded(body), NodeBatch::default());
}

#[test]
fn container_without_memory_drops_its_pod() {
    let body = fixture!("decode_test-06-no-container-memory-drops-container-metrics.txt");
    assert_eq!(decoded(body), NodeBatch::default());
}

#[test]
fn container_with_zero_memory_drops_its_pod() {
    let body = fixture!("decode_test-07-empty-container-memory-drops-container-metrics.txt");
    assert_eq!(decoded(body), NodeBatch::default());
}

#[test]
fn node_only_response_has_no_containers() {
    let batch = decoded(fixture!("decode_test-08-single-node--node-only.txt"));
    let want = NodeBatch {
        node: Some(node1(ms(1_633_253_809_720))),
        ..NodeBatch::default()
    };
    assert_eq!(batch, want);
}

#[test]
fn node_without_cpu_is_dropped() {
    assert_eq!(
        decoded(fixture!("decode_test-09-no-node-cpu-drops-metric.txt")),
        NodeBatch::default()
    );
}

#[test]
fn node_with_zero_cpu_is_dropped() {
    assert_eq!(
        decoded(fixture!("decode_test-10-empty-node-cpu-drops-metric.txt")),
        NodeBatch::default()
    );
}

#[test]
fn node_without_memory_is_dropped() {
    assert_eq!(
        decoded(fixture!("decode_test-11-no-node-memory-drops-metrics.txt")),
        NodeBatch::default()
    );
}

#[test]
fn node_with_zero_memory_is_dropped() {
    assert_eq!(
        decoded(fixture!("decode_test-12-empty-node-memory-drops-metric.txt")),
        NodeBatch::default()
    );
}

#[test]
fn negative_timestamp_fails_the_whole_node() {
    let err = error(fixture!("decode_test-13-containing-an-incorrect-timestamp.txt"));
    assert_eq!(
        err,
        DecodeError {
            line: 4,
            kind: SyntaxError::NegativeTimestamp
        }
    );
    assert_eq!(err.to_string(), "failed parsing metrics: line 4: negative timestamp");
}

#[test]
fn seventy_pod_response_yields_one_node_and_seventy_pods() {
    let batch = decoded(fixture!("client_test-resourceResponse-70pods.txt"));
    assert_eq!(batch.node, Some(node1(ms(1_633_253_809_720))));
    assert_eq!(batch.containers.len(), 70);
    let pods = batch
        .containers
        .chunk_by(|a, b| (&a.namespace, &a.pod) == (&b.namespace, &b.pod))
        .count();
    assert_eq!(pods, 70);
    let mut first = coredns(ms(1_633_253_812_125));
    first.point.start_time = Timestamp::ZERO;
    assert_eq!(batch.containers[0], first);
    let kjc9p = Point {
        start_time: Timestamp::ZERO,
        timestamp: ms(1_633_253_814_708),
        cpu_core_nanoseconds: 4_612_431_000,
        memory_bytes: 11_841_536,
    };
    assert_eq!(
        batch.containers[1],
        container("kube-system", "coredns-558bd4d5db-kjc9p", "coredns", kjc9p)
    );
}

#[test]
fn newer_kubelet_series_skip_swap_and_pod_sums() {
    let batch = decoded(fixture!("synthetic-newer-kubelet-series.txt"));
    let at = ms(1_795_344_895_238);
    let node = Point {
        start_time: Timestamp::ZERO,
        timestamp: at,
        cpu_core_nanoseconds: 1_001_500_000_000,
        memory_bytes: 1_073_741_824,
    };
    assert_eq!(batch.node, Some(node));
    let start = Timestamp::from_unix_nanos(1_795_341_292_238_010_112);
    let point = |cpu, memory| Point {
        start_time: start,
        timestamp: at,
        cpu_core_nanoseconds: cpu,
        memory_bytes: memory,
    };
    let want = vec![
        container("default", "web-1", "app", point(750_000_000, 104_857_600)),
        container("default", "web-1", "istio-proxy", point(30_000_000, 20_971_520)),
        container(
            "kube-system",
            "coredns-7db6d8ff4d-xk2p9",
            "coredns",
            point(9_000_000, 13_447_168),
        ),
    ];
    assert_eq!(batch.containers, want);
}
