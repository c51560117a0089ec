//! Retry pacing for the watches, as client-go's reflector paces them: 0.8 s doubling to 30 s,
//! each with up to 100% jitter, reset by data.
//!
//! kube-runtime's own `default_backoff` resets on every `Ok`, and its watcher yields `Ok(Init)`
//! at the start of every list attempt, including each one that is about to fail; against an API
//! server that is down, that backoff never grows past its first step (a retry every ~1 s per
//! watch, forever). Here `Init` does not count as data.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use kube::runtime::watcher::{self, Event};

/// client-go's reflector backoff (tools/cache/reflector.go: 800ms initial, 30s cap, factor 2,
/// jitter 1.0).
const FIRST: Duration = Duration::from_millis(800);
const CAP: Duration = Duration::from_secs(30);

/// The delay sequence: `next` grows it, `reset` starts it over.
#[derive(Debug)]
pub(crate) struct Delays {
    base: Duration,
    jitter: RandomState,
    drawn: u64,
}

impl Default for Delays {
    fn default() -> Self {
        Delays {
            base: FIRST,
            jitter: RandomState::new(),
            drawn: 0,
        }
    }
}

impl Delays {
    /// The next pause: the current step plus up to 100% jitter, then the step doubles (capped).
    pub(crate) fn next(&mut self) -> Duration {
        self.drawn += 1;
        // 53 random bits as a fraction in [0, 1); RandomState is seeded randomly per process.
        let fraction = (self.jitter.hash_one(self.drawn) >> 11) as f64 / (1u64 << 53) as f64;
        let pause = self.base.mul_f64(1.0 + fraction);
        self.base = (self.base * 2).min(CAP);
        pause
    }

    pub(crate) fn reset(&mut self) {
        self.base = FIRST;
    }

    /// What to wait before polling again after `item`: an error backs off, data resets, and
    /// `Init` (an attempt starting, not yet a success) leaves the sequence as it is.
    pub(crate) fn after<K>(&mut self, item: &Result<Event<K>, watcher::Error>) -> Option<Duration> {
        match item {
            Err(_) => Some(self.next()),
            Ok(Event::Init) => None,
            Ok(_) => {
                self.reset();
                None
            }
        }
    }
}

/// `events`, paused after each error as [`Delays`] says.
pub(crate) fn paced<K, S>(events: S) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: Send + 'static,
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
{
    let start = (events.boxed(), Delays::default(), None::<Duration>);
    futures_util::stream::unfold(start, |(mut events, mut delays, pause)| async move {
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
        let item = events.next().await?;
        let pause = delays.after(&item);
        Some((item, (events, delays, pause)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> Result<Event<()>, watcher::Error> {
        Err(watcher::Error::NoResourceVersion)
    }

    #[test]
    fn an_api_down_at_start_is_retried_ever_more_slowly_up_to_the_cap() {
        let mut delays = Delays::default();
        let mut pauses = Vec::new();
        for _ in 0..8 {
            // What the watcher yields per attempt while the API is unreachable.
            assert_eq!(delays.after(&Ok(Event::<()>::Init)), None);
            pauses.push(delays.after(&failed()).unwrap());
        }
        let steps = [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0];
        for (pause, step) in pauses.iter().zip(steps) {
            let s = pause.as_secs_f64();
            assert!(s >= step && s < 2.0 * step + 1e-9, "{pauses:?}");
        }
    }

    #[test]
    fn data_starts_the_sequence_over() {
        let mut delays = Delays::default();
        delays.after(&failed());
        delays.after(&failed());
        assert_eq!(delays.after(&Ok(Event::InitApply(()))), None);
        let pause = delays.after(&failed()).unwrap().as_secs_f64();
        assert!((0.8..1.6).contains(&pause), "{pause}");
    }
}
