//! What one kubelet scrape yields: points in time with cumulative CPU and working-set memory.
//!
//! These types are produced by [`super::decode`] and consumed by the store. A decoded
//! [`NodeBatch`] borrows its names from the response body, so decoding allocates nothing per
//! sample; the store copies a name only when it sees a container for the first time.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An instant as nanoseconds since the Unix epoch. Kubelets stamp samples in milliseconds;
/// container start times arrive as float seconds. Zero means "unknown", as upstream's zero
/// `time.Time`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The unknown instant (upstream's zero time).
    pub const ZERO: Timestamp = Timestamp(0);

    /// From milliseconds since the epoch, as in a Prometheus sample timestamp.
    pub const fn from_unix_millis(ms: i64) -> Self {
        Timestamp(ms.saturating_mul(1_000_000))
    }

    /// From nanoseconds since the epoch.
    pub const fn from_unix_nanos(ns: i64) -> Self {
        Timestamp(ns)
    }

    /// From whole seconds since the epoch.
    pub const fn from_unix_seconds(s: i64) -> Self {
        Timestamp(s.saturating_mul(1_000_000_000))
    }

    /// The wall clock now, truncated to milliseconds: the default for samples without a
    /// timestamp, as upstream truncates its request time.
    pub fn now_millis() -> Self {
        Self::from_system_time(SystemTime::now()).truncated_to_millis()
    }

    /// From a wall-clock time; times before the epoch saturate to negative nanoseconds.
    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(-i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX)),
        }
    }

    /// The same instant with the sub-millisecond part dropped.
    pub const fn truncated_to_millis(self) -> Self {
        Timestamp(self.0 - self.0.rem_euclid(1_000_000))
    }

    pub const fn unix_nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch, rounded down (what the API prints).
    pub const fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self - earlier`, or `None` when `earlier` is not before `self`.
    pub fn duration_since(self, earlier: Timestamp) -> Option<Duration> {
        let delta = self.0.checked_sub(earlier.0)?;
        u64::try_from(delta).ok().map(Duration::from_nanos)
    }

    /// `self + d`, saturating.
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)))
    }
}

/// One sample of a node or container, in the units the store computes with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Point {
    /// When the container started; [`Timestamp::ZERO`] when unknown (always, for nodes).
    pub start_time: Timestamp,
    /// When the kubelet took the sample.
    pub timestamp: Timestamp,
    /// Cumulative CPU time in core-nanoseconds (seconds × 1e9, truncated).
    pub cpu_core_nanoseconds: u64,
    /// Working-set memory in bytes (truncated).
    pub memory_bytes: u64,
}

/// A container's complete point (both CPU and memory present and non-zero).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerSample<'a> {
    pub namespace: Cow<'a, str>,
    pub pod: Cow<'a, str>,
    pub container: Cow<'a, str>,
    pub point: Point,
}

/// What the store reads of one node's `/metrics/resource` response, after upstream's drop
/// rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeBatch<'a> {
    /// The node's own point; `None` when its CPU or memory is missing or zero.
    pub node: Option<Point>,
    /// Complete containers of complete pods, sorted by (namespace, pod, container). A pod is
    /// absent when any of its containers lacks CPU or memory, as upstream drops it.
    pub containers: Vec<ContainerSample<'a>>,
}
