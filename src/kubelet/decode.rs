//! Decoding a kubelet `/metrics/resource` body (Prometheus text format) into a [`NodeBatch`].
//!
//! A pure function of the bytes and the scrape's request time, like upstream's decoder, with
//! the same units, timestamps and drop rules (spec §1.7). Like upstream it reads five
//! families: `node_cpu_usage_seconds_total`, `node_memory_working_set_bytes`,
//! `container_cpu_usage_seconds_total`, `container_memory_working_set_bytes` and
//! `container_start_time_seconds` (names matched on exact bytes). It reads the body in one
//! pass, borrows every name from it and allocates nothing per sample; the text syntax lives
//! in [`text`]. Differences from upstream, all on inputs a kubelet does not send:
//! - labels are parsed, not searched for, so a missing label skips the line instead of
//!   panicking, and an escaped value is unescaped;
//! - a NaN, infinite or negative value counts as a missing series instead of turning into an
//!   arbitrary integer;
//! - a line of the kubelet's other families (`pod_cpu_usage_seconds_total`,
//!   `pod_memory_working_set_bytes` and the three `*_swap_usage_bytes`) is skipped to its
//!   newline unread, as a comment is, so a malformed one does not fail the body, where
//!   upstream's parser rejects the whole body. We parse what we use: those lines are nearly
//!   half of a kubelet's sample lines, a kubelet never sends them malformed, and a bad series
//!   the store does not read should not blank the node's usage. A malformed line of one of
//!   the five families still fails the body with its line number, and so does a line with
//!   an unknown name: those are still checked, so a body that is not Prometheus text at all
//!   (an HTML error page, `garbage`) fails as a decode error instead of passing as an empty
//!   scrape.
//!
//! Fetching the body (size cap, gzip) belongs to the client, and rates to the store.

mod entries;
mod error;
mod number;
mod text;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use super::sample::{ContainerSample, NodeBatch, Point, Timestamp};
use entries::Entries;
pub use error::{DecodeError, SyntaxError};
use text::{Family, Labels, Names, Sample};

/// Decodes one kubelet response. `default_time` stamps samples that carry no timestamp.
///
/// The node point needs both CPU and memory, non-zero; a pod is kept only when every one of
/// its containers has both, non-zero (a container that only has a start time drops its pod).
/// For a repeated series the later line wins.
pub fn decode(body: &[u8], default_time: Timestamp) -> Result<NodeBatch<'_>, DecodeError> {
    let mut batch = Accumulator::new(default_time, body.len());
    let mut reader = text::Reader::new(body);
    loop {
        match reader.next_sample(|family| batch.expected_block(family)) {
            Ok(Some(sample)) => batch.add(sample),
            Ok(None) => break,
            Err((kind, offset)) => {
                let before = body.get(..offset).unwrap_or_default();
                let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
                return Err(DecodeError { line, kind });
            }
        }
    }
    Ok(batch.finish())
}

/// A value the store can use: finite and not negative. Anything else drops its series.
fn usable(value: f64) -> Option<f64> {
    (value.is_finite() && value >= 0.0).then_some(value)
}

fn core_nanoseconds(seconds: f64) -> u64 {
    (seconds * 1e9) as u64
}

fn bytes(value: f64) -> u64 {
    value as u64
}

/// (namespace, pod, container).
type ContainerKey<'a> = (Cow<'a, str>, Cow<'a, str>, Cow<'a, str>);

#[derive(Default)]
struct NodeAcc {
    cpu: Option<u64>,
    memory: Option<u64>,
    timestamp: Option<Timestamp>,
}

struct ContainerAcc<'a> {
    key: ContainerKey<'a>,
    /// The label block of the line that created it, as written: a later line with the same
    /// bytes is this container.
    block: &'a [u8],
    cpu: Option<u64>,
    memory: Option<u64>,
    start: Option<Timestamp>,
    timestamp: Option<Timestamp>,
    /// Set by `finish` when the container and all its pod's containers are complete.
    keep: bool,
}

impl ContainerAcc<'_> {
    fn complete(&self) -> bool {
        self.cpu.is_some_and(|c| c > 0) && self.memory.is_some_and(|m| m > 0)
    }
}

/// Groups samples by container. Kubelets write every family in the same container order, so
/// `next_container` guesses the entry after the last one hit (the first one after the last
/// entry) and the reader compares that entry's label block with the line's; [`Entries`] is
/// only searched when the line is not the guessed entry: once per entry for the first family.
struct Accumulator<'a> {
    default_time: Timestamp,
    node: NodeAcc,
    containers: Entries<ContainerKey<'a>, ContainerAcc<'a>>,
    next_container: usize,
}

impl<'a> Accumulator<'a> {
    /// Sized for a kubelet body of `body_len` bytes, which spends some 500 bytes per container
    /// (four lines, plus its share of the pod lines).
    fn new(default_time: Timestamp, body_len: usize) -> Self {
        let containers = (body_len / 512).min(1 << 16);
        Accumulator {
            default_time,
            node: NodeAcc::default(),
            containers: Entries::with_capacity(containers, |c| &c.key),
            next_container: 0,
        }
    }

    fn add(&mut self, sample: Sample<'a>) {
        let at = sample
            .timestamp_ms
            .map_or(self.default_time, Timestamp::from_unix_millis);
        let value = usable(sample.value);
        let stamp = |timestamp: &mut Option<Timestamp>| {
            if value.is_some() {
                *timestamp = Some(at);
            }
        };
        let labels = sample.labels;
        match sample.family {
            Family::NodeCpu => {
                self.node.cpu = value.map(core_nanoseconds);
                stamp(&mut self.node.timestamp);
            }
            Family::NodeMemory => {
                self.node.memory = value.map(bytes);
                stamp(&mut self.node.timestamp);
            }
            family @ (Family::ContainerCpu | Family::ContainerMemory | Family::ContainerStart) => {
                let Some(c) = self.container(labels) else {
                    return;
                };
                match family {
                    Family::ContainerCpu => {
                        c.cpu = value.map(core_nanoseconds);
                        stamp(&mut c.timestamp);
                    }
                    Family::ContainerMemory => {
                        c.memory = value.map(bytes);
                        stamp(&mut c.timestamp);
                    }
                    _ => c.start = value.map(|s| Timestamp::from_unix_nanos((s * 1e9) as i64)),
                }
            }
            Family::Other => {}
        }
    }

    /// The block the next line of `family` most likely repeats: that of the entry after the
    /// last one hit, or of the first entry once the last was hit. Empty when there is none.
    fn expected_block(&self, family: Family) -> &'a [u8] {
        let block = match family {
            Family::ContainerCpu | Family::ContainerMemory | Family::ContainerStart => self
                .containers
                .get(guess(self.next_container, self.containers.len()))
                .map(|c| c.block),
            Family::NodeCpu | Family::NodeMemory | Family::Other => None,
        };
        block.unwrap_or_default()
    }

    /// The container a line names; `None` when a name is missing.
    fn container(&mut self, labels: Labels<'a>) -> Option<&mut ContainerAcc<'a>> {
        let guess = guess(self.next_container, self.containers.len());
        let index = match labels {
            Labels::AsExpected => guess,
            Labels::Read { names, block } => {
                let Names {
                    namespace: Some(ns),
                    pod: Some(pod),
                    container: Some(name),
                } = names
                else {
                    return None;
                };
                let key = (ns, pod, name);
                match self.containers.get(guess) {
                    Some(c) if c.key == key => guess,
                    _ => self.containers.find_or_insert(key, |key| ContainerAcc {
                        key,
                        block,
                        cpu: None,
                        memory: None,
                        start: None,
                        timestamp: None,
                        keep: false,
                    }),
                }
            }
        };
        self.next_container = index + 1;
        self.containers.get_mut(index)
    }

    fn finish(self) -> NodeBatch<'a> {
        let default_time = self.default_time;
        let node = match self.node {
            NodeAcc {
                cpu: Some(cpu),
                memory: Some(memory),
                timestamp,
                ..
            } if cpu > 0 && memory > 0 => Some(Point {
                start_time: Timestamp::ZERO,
                timestamp: timestamp.unwrap_or(default_time),
                cpu_core_nanoseconds: cpu,
                memory_bytes: memory,
            }),
            _ => None,
        };

        let mut containers = self.containers.into_vec();
        if !containers.is_sorted_by(|a, b| a.key <= b.key) {
            containers.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        }
        for pod in containers.chunk_by_mut(|a, b| a.key.0 == b.key.0 && a.key.1 == b.key.1) {
            let keep = pod.iter().all(ContainerAcc::complete);
            pod.iter_mut().for_each(|c| c.keep = keep);
        }
        let containers = containers
            .into_iter()
            .filter(|c| c.keep)
            .map(|c| ContainerSample {
                namespace: c.key.0,
                pod: c.key.1,
                container: c.key.2,
                point: Point {
                    start_time: c.start.unwrap_or(Timestamp::ZERO),
                    timestamp: c.timestamp.unwrap_or(default_time),
                    cpu_core_nanoseconds: c.cpu.unwrap_or_default(),
                    memory_bytes: c.memory.unwrap_or_default(),
                },
            })
            .collect();

        NodeBatch { node, containers }
    }
}

/// The entry after the last one hit, wrapping to the first: the next family starts over.
fn guess(next: usize, len: usize) -> usize {
    if next < len {
        next
    } else {
        0
    }
}
