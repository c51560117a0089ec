//! Store tests through the public API: the storage vectors of spec §6.4 ([`vectors`]) and
//! readiness, staleness, forgetting and the points gauge ([`lifecycle`]), on shared fixtures.

mod lifecycle;
mod vectors;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::kubelet::{ContainerSample, NodeBatch, Point, Timestamp};

const RESOLUTION: Duration = Duration::from_secs(60);
const MAX_AGE: Duration = Duration::from_secs(120);
/// T = 2021-10-03T09:00:00Z.
const T_SECONDS: i64 = 1_633_251_600;
const CS: u64 = 1_000_000_000;
const MI: u64 = 1_048_576;

/// T + `offset` seconds.
fn at(offset: i64) -> Timestamp {
    Timestamp::from_unix_seconds(T_SECONDS + offset)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn point(start: Timestamp, ts: Timestamp, cpu: u64, memory: u64) -> Point {
    Point {
        start_time: start,
        timestamp: ts,
        cpu_core_nanoseconds: cpu,
        memory_bytes: memory,
    }
}

fn node_batch(p: Point) -> NodeBatch<'static> {
    NodeBatch {
        node: Some(p),
        ..NodeBatch::default()
    }
}

fn sample(namespace: &'static str, pod: &'static str, name: &'static str, p: Point) -> ContainerSample<'static> {
    ContainerSample {
        namespace: Cow::Borrowed(namespace),
        pod: Cow::Borrowed(pod),
        container: Cow::Borrowed(name),
        point: p,
    }
}

/// One container `ns1/pod1/container1` at this point.
fn pod_batch(p: Point) -> NodeBatch<'static> {
    containers_batch(vec![sample("ns1", "pod1", "container1", p)])
}

fn containers_batch(containers: Vec<ContainerSample<'static>>) -> NodeBatch<'static> {
    NodeBatch {
        containers,
        ..NodeBatch::default()
    }
}

fn usage(cpu_nanocores: u64, memory_bytes: u64) -> Usage {
    Usage {
        cpu_nanocores,
        memory_bytes,
    }
}

fn pod_usage(timestamp: Timestamp, window: Duration, containers: &[(&str, Usage)]) -> PodUsage {
    PodUsage {
        timestamp,
        window,
        containers: containers
            .iter()
            .map(|&(name, usage)| ContainerUsage {
                name: Arc::from(name),
                usage,
            })
            .collect(),
    }
}

/// A store and a clock: each apply happens one resolution after the previous one, and reads
/// happen at the time of the last apply.
struct Fixture {
    store: Store,
    now: Instant,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            store: Store::new(RESOLUTION, MAX_AGE),
            now: Instant::now(),
        }
    }

    fn apply(&mut self, node: &str, batch: NodeBatch<'_>) {
        self.now += RESOLUTION;
        self.store.apply(node, &batch, self.now);
    }

    fn node(&self, node: &str) -> Option<NodeUsage> {
        self.store.node_usage(node, self.now)
    }

    fn pods(&self, node: &str) -> Vec<(String, String, PodUsage)> {
        let Some(held) = self.store.node_pods(node, self.now) else {
            return Vec::new();
        };
        held.iter()
            .map(|(ns, pod, u)| (ns.to_owned(), pod.to_owned(), u.clone()))
            .collect()
    }

    fn pod1(&self) -> Option<PodUsage> {
        let pod = self.store.pod_usage("node1", "ns1", "pod1", self.now)?;
        Some(PodUsage::clone(&pod))
    }

    fn ready(&self) -> bool {
        self.store.is_ready(self.now)
    }
}

fn one_pod(usage: PodUsage) -> Vec<(String, String, PodUsage)> {
    vec![("ns1".to_owned(), "pod1".to_owned(), usage)]
}
