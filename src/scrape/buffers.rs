//! Body buffers for scrapes in flight, reused between scrapes so steady state allocates
//! nothing for bodies, and trimmed each cycle to what that cycle needed at once.
//!
//! Why the trim: the first two cycles scrape every node at once (up to
//! `--kubelet-max-concurrent-scrapes`, 256 by default), later ones one node after another. A
//! pool that kept every buffer it ever made would hold the burst's 256 bodies (~60 KB each at
//! 30 pods per node, ~15 MB) for good, while a spread cycle at 5,000 nodes has a handful in
//! flight.

use std::sync::{Mutex, MutexGuard};

/// A rare giant body's allocation is not kept.
const MAX_KEPT_CAPACITY: usize = 4 << 20;

/// The pool of body buffers.
#[derive(Debug, Default)]
pub struct BodyBuffers {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    free: Vec<Vec<u8>>,
    /// Buffers taken and not given back yet.
    in_use: usize,
    /// Most buffers in use at once since the last [`BodyBuffers::end_cycle`].
    peak: usize,
}

impl BodyBuffers {
    /// A free buffer (empty), or a new one.
    pub fn take(&self) -> Vec<u8> {
        let mut state = self.lock();
        state.in_use += 1;
        state.peak = state.peak.max(state.in_use);
        state.free.pop().unwrap_or_default()
    }

    /// Returns a buffer taken with [`take`](Self::take).
    pub fn give_back(&self, mut buffer: Vec<u8>) {
        if buffer.capacity() > MAX_KEPT_CAPACITY {
            buffer = Vec::new();
        }
        buffer.clear();
        let mut state = self.lock();
        state.in_use = state.in_use.saturating_sub(1);
        state.free.push(buffer);
    }

    /// Ends a cycle: keeps only as many buffers as were in use at once during it (counting
    /// those still out), and starts counting afresh.
    pub fn end_cycle(&self) {
        let mut state = self.lock();
        let keep = state.peak.saturating_sub(state.in_use);
        state.free.truncate(keep);
        state.free.shrink_to_fit();
        state.peak = state.in_use;
    }

    /// Free buffers kept now.
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.lock().free.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain counts and buffers, consistent after every statement.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(buffers: &BodyBuffers) -> Vec<u8> {
        let mut buffer = buffers.take();
        buffer.extend_from_slice(&[7; 1000]);
        buffer
    }

    #[test]
    fn a_buffer_given_back_is_reused_empty_with_its_capacity() {
        let buffers = BodyBuffers::default();
        let first = filled(&buffers);
        let capacity = first.capacity();
        buffers.give_back(first);
        let again = buffers.take();
        assert!(again.is_empty());
        assert_eq!(again.capacity(), capacity);
    }

    #[test]
    fn a_burst_cycle_keeps_its_buffers_until_a_calmer_cycle_ends() {
        let buffers = BodyBuffers::default();
        // A burst: 5 scrapes at once.
        let burst: Vec<_> = (0..5).map(|_| filled(&buffers)).collect();
        burst.into_iter().for_each(|b| buffers.give_back(b));
        buffers.end_cycle();
        assert_eq!(buffers.kept(), 5, "the next cycle may be a burst again");
        // A spread cycle: one at a time, twice.
        for _ in 0..2 {
            let b = filled(&buffers);
            buffers.give_back(b);
        }
        assert_eq!(buffers.kept(), 5, "nothing is dropped mid-cycle");
        buffers.end_cycle();
        assert_eq!(buffers.kept(), 1);
    }

    #[test]
    fn buffers_still_out_at_the_end_of_a_cycle_count_toward_the_next_one() {
        let buffers = BodyBuffers::default();
        let a = filled(&buffers);
        let b = filled(&buffers);
        let c = filled(&buffers);
        buffers.give_back(a);
        buffers.give_back(b);
        // `c` is still out (a scrape outliving its cycle): two were needed besides it.
        buffers.end_cycle();
        assert_eq!(buffers.kept(), 2);
        buffers.give_back(c);
        // Next cycle: nothing new taken; the peak was `c` alone.
        buffers.end_cycle();
        assert_eq!(buffers.kept(), 1);
    }

    #[test]
    fn a_giant_buffer_is_not_kept() {
        let buffers = BodyBuffers::default();
        let mut giant = buffers.take();
        giant.reserve(MAX_KEPT_CAPACITY + 1);
        buffers.give_back(giant);
        assert_eq!(buffers.take().capacity(), 0);
    }
}
