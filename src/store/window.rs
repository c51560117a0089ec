//! One node's or container's window: its last point and, when upstream's rules allow, the
//! point before it; and the usage such a pair yields (spec §2.2–§2.4).
//!
//! Pure functions of points: no clocks, no maps, no logging. Which window belongs to which
//! node or container is [`super::node`]'s business.

use std::time::Duration;

use super::{NodeUsage, Usage};
use crate::kubelet::{Point, Timestamp};

/// A container younger than this gets no synthetic previous point (upstream's
/// `freshContainerMinMetricsResolution`).
pub(super) const FRESH_CONTAINER_MIN_AGE: Duration = Duration::from_secs(10);

/// Why a pair of points yields no usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum Error {
    #[error("unexpected decrease in startTime of node/container")]
    StartTimeDecreased,
    #[error("unexpected decrease in cumulative CPU usage value")]
    CpuDecreased,
    #[error("previous point is not older than the last one")]
    EmptyWindow,
}

/// The last point of a node or container, and the one usage is measured from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Window {
    pub(super) last: Point,
    pub(super) prev: Option<Prev>,
}

/// The point usage is measured from, without its memory: usage takes the memory of the last
/// point, so the prev's was never read (8 bytes per container, 150k pods × 2 of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Prev {
    pub(super) start_time: Timestamp,
    pub(super) timestamp: Timestamp,
    pub(super) cpu_core_nanoseconds: u64,
}

impl From<Point> for Prev {
    fn from(p: Point) -> Prev {
        Prev {
            start_time: p.start_time,
            timestamp: p.timestamp,
            cpu_core_nanoseconds: p.cpu_core_nanoseconds,
        }
    }
}

impl Window {
    /// A node's window after `new` arrives (§2.2): the old last point becomes prev if `new` is
    /// strictly later; otherwise the old prev survives if it is strictly earlier than `new`.
    pub(super) fn advance_node(old: Option<&Window>, new: Point) -> Window {
        Window {
            last: new,
            prev: old.and_then(|w| w.prev_for(new)),
        }
    }

    /// A container's window after `new` arrives (§2.3). A container between 10s and one
    /// resolution old is measured from its start (a synthetic point with zero CPU), on every
    /// scrape while in that band. Otherwise the node rule applies, unless the container
    /// restarted since the old last point (`new.start_time ≥ old last timestamp`): then there
    /// is no prev this cycle.
    ///
    /// Unlike upstream, a container that has no old prev never inherits a zero point, so no
    /// ~292-year window can arise (§2.3 [Q]).
    pub(super) fn advance_container(old: Option<&Window>, new: Point, resolution: Duration) -> Window {
        let prev = fresh_start_point(new, resolution).or_else(|| {
            old.filter(|w| new.start_time < w.last.timestamp)
                .and_then(|w| w.prev_for(new))
        });
        Window { last: new, prev }
    }

    fn prev_for(&self, new: Point) -> Option<Prev> {
        if new.timestamp > self.last.timestamp {
            Some(Prev::from(self.last))
        } else {
            self.prev.filter(|p| p.timestamp < new.timestamp)
        }
    }

    /// Usage over the window, or `None` when there is no prev point.
    pub(super) fn usage(&self) -> Option<Result<NodeUsage, Error>> {
        self.prev.map(|prev| rate(&self.last, &prev))
    }
}

/// The synthetic start point of a container aged in `[10s, resolution)`.
fn fresh_start_point(new: Point, resolution: Duration) -> Option<Prev> {
    let age = new.timestamp.duration_since(new.start_time)?;
    (age >= FRESH_CONTAINER_MIN_AGE && age < resolution).then_some(Prev {
        start_time: new.start_time,
        timestamp: new.start_time,
        cpu_core_nanoseconds: 0,
    })
}

/// Usage between `prev` and `last` (§2.4): the CPU rate truncated to whole nanocores, the last
/// memory, stamped with the last timestamp. An empty window (identical timestamps) is an error
/// rather than a division by zero.
pub(super) fn rate(last: &Point, prev: &Prev) -> Result<NodeUsage, Error> {
    if last.start_time < prev.start_time {
        return Err(Error::StartTimeDecreased);
    }
    let cpu = last
        .cpu_core_nanoseconds
        .checked_sub(prev.cpu_core_nanoseconds)
        .ok_or(Error::CpuDecreased)?;
    let window = last
        .timestamp
        .duration_since(prev.timestamp)
        .filter(|w| !w.is_zero())
        .ok_or(Error::EmptyWindow)?;
    Ok(NodeUsage {
        timestamp: last.timestamp,
        window,
        usage: Usage {
            // As upstream: float64 division, truncated (saturating in Rust) to uint64.
            cpu_nanocores: (cpu as f64 / window.as_secs_f64()) as u64,
            memory_bytes: last.memory_bytes,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timestamp = Timestamp::from_unix_seconds(1_633_251_600);
    const RESOLUTION: Duration = Duration::from_secs(60);

    fn point(start: Timestamp, ts: Timestamp, cpu: u64, mem: u64) -> Point {
        Point {
            start_time: start,
            timestamp: ts,
            cpu_core_nanoseconds: cpu,
            memory_bytes: mem,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn rate_divides_cpu_by_the_window_and_keeps_the_last_memory() {
        // Upstream types_test: 200 core-ns over 10ms is 20000 nanocores.
        let last = point(T, T.saturating_add(ms(20)), 500, 600);
        let prev = point(T, T.saturating_add(ms(10)), 300, 400);
        let usage = rate(&last, &prev.into()).unwrap();
        assert_eq!(usage.timestamp, T.saturating_add(ms(20)));
        assert_eq!(usage.window, ms(10));
        assert_eq!(
            usage.usage,
            Usage {
                cpu_nanocores: 20_000,
                memory_bytes: 600
            }
        );
    }

    #[test]
    fn rate_truncates_fractional_nanocores() {
        let last = point(T, T.saturating_add(ms(3_000)), 10, 1);
        let prev = point(T, T, 0, 1);
        assert_eq!(rate(&last, &prev.into()).unwrap().usage.cpu_nanocores, 3);
    }

    #[test]
    fn rate_rejects_a_start_time_decrease() {
        let last = point(T, T.saturating_add(ms(20)), 500, 600);
        let prev = point(T.saturating_add(ms(1)), T.saturating_add(ms(10)), 300, 400);
        assert_eq!(rate(&last, &prev.into()), Err(Error::StartTimeDecreased));
    }

    #[test]
    fn rate_rejects_a_cpu_decrease() {
        let last = point(T, T.saturating_add(ms(20)), 200, 600);
        let prev = point(T, T.saturating_add(ms(10)), 300, 400);
        assert_eq!(rate(&last, &prev.into()), Err(Error::CpuDecreased));
    }

    #[test]
    fn rate_rejects_identical_timestamps() {
        let p = point(T, T.saturating_add(ms(10)), 300, 400);
        assert_eq!(rate(&p, &p.into()), Err(Error::EmptyWindow));
    }

    #[test]
    fn fresh_band_starts_at_10s_and_ends_before_one_resolution() {
        let aged = |age: Duration| {
            let new = point(T, T.saturating_add(age), 7, 9);
            Window::advance_container(None, new, RESOLUTION).prev
        };
        assert_eq!(aged(ms(9_999)), None);
        assert_eq!(aged(ms(10_000)), Some(point(T, T, 0, 9).into()));
        assert_eq!(aged(ms(59_999)), Some(point(T, T, 0, 9).into()));
        assert_eq!(aged(RESOLUTION), None);
    }

    #[test]
    fn restarted_container_outside_the_fresh_band_has_no_prev() {
        let old = Window::advance_container(None, point(T, T.saturating_add(ms(100_000)), 5, 1), RESOLUTION);
        let restarted = point(T.saturating_add(ms(100_000)), T.saturating_add(ms(200_000)), 1, 1);
        let w = Window::advance_container(Some(&old), restarted, RESOLUTION);
        assert_eq!(w.prev, None);
    }

    #[test]
    fn container_without_old_prev_never_inherits_a_zero_point() {
        // Upstream [Q]: a repeated timestamp with no old prev would store a zero point.
        let first = point(T, T.saturating_add(ms(100_000)), 5, 1);
        let old = Window::advance_container(None, first, RESOLUTION);
        let w = Window::advance_container(Some(&old), first, RESOLUTION);
        assert_eq!(w.prev, None);
        assert!(w.usage().is_none());
    }

    #[test]
    fn node_keeps_an_older_prev_when_the_new_point_is_out_of_order() {
        let p1 = point(Timestamp::ZERO, T.saturating_add(ms(15_000)), 10, 1);
        let p2 = point(Timestamp::ZERO, T.saturating_add(ms(35_000)), 50, 4);
        let p3 = point(Timestamp::ZERO, T.saturating_add(ms(25_000)), 35, 2);
        let w = Window::advance_node(None, p1);
        let w = Window::advance_node(Some(&w), p2);
        let w = Window::advance_node(Some(&w), p3);
        assert_eq!(
            w,
            Window {
                last: p3,
                prev: Some(p1.into())
            }
        );
    }
}
