//! A small time-to-live cache for review answers (TokenReview, SubjectAccessReview), with an
//! injected clock and one fetch in flight per key.
//!
//! Concurrent misses for one key wait on a single fetch rather than each asking the API server
//! (a burst of requests with a new token costs one TokenReview). A failed fetch is not cached:
//! the next caller tries again. The cache is bounded: when it grows past its capacity, expired
//! entries are dropped, and if that is not enough, everything is. It does not decide what to
//! cache; the caller keys it and picks each answer's TTL.

use std::borrow::Borrow;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use tokio::sync::OnceCell;

/// Where caches read the time: `Instant::now` in production, a hand-moved clock in tests.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The monotonic system clock.
pub fn system_clock() -> Clock {
    Arc::new(Instant::now)
}

/// An answer and the moment it stops being valid.
type Stamped<V> = (V, Instant);

/// Answers keyed by `K`, each valid for the TTL chosen when it was fetched.
pub(crate) struct TtlCache<K, V> {
    entries: DashMap<K, Arc<OnceCell<Stamped<V>>>>,
    capacity: usize,
    clock: Clock,
}

impl<K: Eq + Hash, V> std::fmt::Debug for TtlCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtlCache")
            .field("entries", &self.entries.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<K, V> TtlCache<K, V>
where
    K: Eq + Hash + Clone,
    V: Clone,
{
    pub(crate) fn new(capacity: usize, clock: Clock) -> Self {
        Self {
            entries: DashMap::new(),
            capacity: capacity.max(1),
            clock,
        }
    }

    /// The cached answer for `key`, or the one `fetch` produces, cached for `ttl(&answer)`
    /// (a zero TTL is not cached). An `Err` from `fetch` is returned and not cached.
    pub(crate) async fn get_or_fetch<E, Fut>(
        &self,
        key: K,
        ttl: impl Fn(&V) -> Duration,
        fetch: impl FnOnce() -> Fut,
    ) -> Result<V, E>
    where
        Fut: Future<Output = Result<V, E>>,
    {
        self.get_or_fetch_by(&key, ttl, fetch).await
    }

    /// [`get_or_fetch`](Self::get_or_fetch) by a borrowed key (e.g. `&[u8]` for `Vec<u8>`
    /// keys), made owned only when it is inserted.
    pub(crate) async fn get_or_fetch_by<Q, E, Fut>(
        &self,
        key: &Q,
        ttl: impl Fn(&V) -> Duration,
        fetch: impl FnOnce() -> Fut,
    ) -> Result<V, E>
    where
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        K: Borrow<Q>,
        Fut: Future<Output = Result<V, E>>,
    {
        let now = (self.clock)();
        let slot = self.slot(key, now);
        if let Some((value, _)) = slot.get() {
            // `slot` found it unexpired at `now`: a hit reads the clock once.
            return Ok(value.clone());
        }
        let (value, expires) = slot
            .get_or_try_init(|| async {
                let value = fetch().await?;
                let expires = (self.clock)() + ttl(&value);
                Ok::<_, E>((value, expires))
            })
            .await?
            .clone();
        if expires <= (self.clock)() {
            // A zero TTL (or a clock that moved past it already): do not keep it.
            self.entries.remove_if(key, |_, s| Arc::ptr_eq(s, &slot));
        }
        Ok(value)
    }

    /// The slot for `key`: the current one unless it holds an expired answer. The map's guard
    /// is released before returning, so no lock is held while a fetch runs. The key is made
    /// owned only to insert it: a hit (every request but the first per TTL) copies nothing.
    fn slot<Q>(&self, key: &Q, now: Instant) -> Arc<OnceCell<Stamped<V>>>
    where
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        K: Borrow<Q>,
    {
        if let Some(slot) = self.entries.get(key) {
            if !is_expired(&slot, now) {
                return slot.clone();
            }
        }
        if self.entries.len() >= self.capacity {
            self.shrink(now);
        }
        match self.entries.entry(key.to_owned()) {
            Entry::Occupied(mut occupied) => {
                if is_expired(occupied.get(), now) {
                    occupied.insert(Arc::default());
                }
                occupied.get().clone()
            }
            Entry::Vacant(vacant) => vacant.insert(Arc::default()).clone(),
        }
    }

    /// Drops expired answers; if the cache is still full, drops everything.
    fn shrink(&self, now: Instant) {
        self.entries.retain(|_, slot| !is_expired(slot, now));
        if self.entries.len() >= self.capacity {
            self.entries.clear();
        }
    }

    /// Entries held, fetched or in flight (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

fn is_expired<V>(slot: &OnceCell<Stamped<V>>, now: Instant) -> bool {
    slot.get().is_some_and(|(_, expires)| *expires <= now)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::*;

    /// A clock that moves only when the test says so.
    fn manual_clock() -> (Clock, Arc<Mutex<Instant>>) {
        let now = Arc::new(Mutex::new(Instant::now()));
        let read = now.clone();
        (Arc::new(move || *read.lock().unwrap()), now)
    }

    async fn fetch_counted(
        cache: &TtlCache<&'static str, u32>,
        calls: &AtomicUsize,
        key: &'static str,
    ) -> Result<u32, ()> {
        cache
            .get_or_fetch(
                key,
                |_| Duration::from_secs(10),
                || async {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    Ok(u32::try_from(n).unwrap())
                },
            )
            .await
    }

    #[tokio::test]
    async fn an_answer_is_reused_until_its_ttl_passes() {
        let (clock, now) = manual_clock();
        let cache = TtlCache::new(16, clock);
        let calls = AtomicUsize::new(0);
        assert_eq!(fetch_counted(&cache, &calls, "a").await, Ok(0));
        *now.lock().unwrap() += Duration::from_secs(9);
        assert_eq!(fetch_counted(&cache, &calls, "a").await, Ok(0));
        *now.lock().unwrap() += Duration::from_secs(1);
        assert_eq!(fetch_counted(&cache, &calls, "a").await, Ok(1));
        assert_eq!(fetch_counted(&cache, &calls, "b").await, Ok(2));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failed_fetch_is_not_cached() {
        let (clock, _now) = manual_clock();
        let cache: TtlCache<&str, u32> = TtlCache::new(16, clock);
        let failed = cache
            .get_or_fetch("a", |_| Duration::from_secs(10), || async { Err::<u32, _>("down") })
            .await;
        assert_eq!(failed, Err("down"));
        let ok = cache
            .get_or_fetch("a", |_| Duration::from_secs(10), || async { Ok::<_, &str>(7) })
            .await;
        assert_eq!(ok, Ok(7));
    }

    #[tokio::test]
    async fn a_zero_ttl_answer_is_not_kept() {
        let (clock, _now) = manual_clock();
        let cache = TtlCache::new(16, clock);
        let calls = AtomicUsize::new(0);
        for expected in 0..2 {
            let got = cache
                .get_or_fetch(
                    "a",
                    |_| Duration::ZERO,
                    || async { Ok::<_, ()>(calls.fetch_add(1, Ordering::SeqCst)) },
                )
                .await;
            assert_eq!(got, Ok(expected));
        }
        assert_eq!(cache.len(), 0);
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_fetch() {
        let (clock, _now) = manual_clock();
        let cache = TtlCache::new(16, clock);
        let calls = AtomicUsize::new(0);
        let (release, wait) = tokio::sync::watch::channel(false);
        let fetch = || {
            let mut wait = wait.clone();
            let calls = &calls;
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let _ = wait.wait_for(|go| *go).await;
                Ok::<_, ()>(5)
            }
        };
        let a = cache.get_or_fetch("k", |_| Duration::from_secs(1), fetch);
        let b = cache.get_or_fetch("k", |_| Duration::from_secs(1), fetch);
        let opened = async {
            tokio::task::yield_now().await;
            release.send_replace(true);
        };
        let (a, b, ()) = tokio::join!(a, b, opened);
        assert_eq!((a, b), (Ok(5), Ok(5)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_full_cache_drops_expired_entries_first_then_everything() {
        let (clock, now) = manual_clock();
        let cache = TtlCache::new(2, clock);
        let calls = AtomicUsize::new(0);
        fetch_counted(&cache, &calls, "a").await.unwrap();
        *now.lock().unwrap() += Duration::from_secs(20);
        fetch_counted(&cache, &calls, "b").await.unwrap();
        fetch_counted(&cache, &calls, "c").await.unwrap();
        assert_eq!(cache.len(), 2, "the expired entry made room");
        fetch_counted(&cache, &calls, "d").await.unwrap();
        assert_eq!(cache.len(), 1, "nothing expired: cleared, then d added");
    }
}
