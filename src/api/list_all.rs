//! What the LIST of every pod keeps between lists, and when it lets go of it.
//!
//! The per-node chunks ([`super::list_cache`]) hold about one copy of a LIST-all body per
//! representation and version listed (~72 MB at 150,000 pods as JSON); responses send those
//! bytes rather than copies of them. That pays only while lists keep coming: a chunk is worth
//! keeping for at most one resolution, since every node is scraped again by then. So once no LIST-all has come for `idle_after` (twice the
//! resolution), everything is dropped, and a process that served one `kubectl top pod -A`
//! goes back to its steady memory.
//!
//! The release is driven by one sleeping task, started by the first list after a release
//! (never while idle, so an API that is never listed runs nothing), which ends once it has
//! released.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::list_cache::Slot;
use super::VERSIONS;

/// The LIST-all's cache: one slot per representation (JSON, protobuf) and version, and when a
/// list last used them.
#[derive(Debug)]
pub struct ListAllCache {
    slots: [Slot; 2 * VERSIONS.len()],
    idle_after: Duration,
    last_used: Mutex<Option<Instant>>,
    /// Whether a release task is sleeping; at most one is.
    releasing: AtomicBool,
}

impl ListAllCache {
    pub fn new(idle_after: Duration) -> Self {
        ListAllCache {
            slots: Default::default(),
            idle_after,
            last_used: Mutex::new(None),
            releasing: AtomicBool::new(false),
        }
    }

    /// The slot of representation `format` (0 JSON, 1 protobuf) and the `version`-th of
    /// [`VERSIONS`].
    pub fn slot(&self, format: usize, version: usize) -> Option<&Slot> {
        self.slots.get(format * VERSIONS.len() + version)
    }

    /// Notes a list at `now`, and makes sure a release task will look at the cache later.
    pub fn used(self: &Arc<Self>, now: Instant) {
        *self.lock_last_used() = Some(now);
        if self.releasing.swap(true, Ordering::AcqRel) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(release_when_idle(Arc::downgrade(self)));
            }
            // Outside a runtime (benches, in-process callers) nothing is ever released.
            Err(_) => self.releasing.store(false, Ordering::Release),
        }
    }

    /// Drops every chunk when no list has come for `idle_after` by
    /// `now`; otherwise keeps them and says how long until they would be idle.
    pub fn release_if_idle(&self, now: Instant) -> Result<(), Duration> {
        let last_used = *self.lock_last_used();
        let idle_for = last_used.map_or(self.idle_after, |used| now.saturating_duration_since(used));
        if idle_for < self.idle_after {
            return Err(self.idle_after - idle_for);
        }
        for slot in &self.slots {
            slot.clear();
        }
        Ok(())
    }

    fn lock_last_used(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // A poisoned lock only means a holder panicked between two plain assignments.
        self.last_used.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Sleeps until the cache has been idle long enough, releases it, and ends; ends early if the
/// API is gone.
async fn release_when_idle(cache: Weak<ListAllCache>) {
    let mut wait = cache.upgrade().map_or(Duration::ZERO, |c| c.idle_after);
    loop {
        tokio::time::sleep(wait).await;
        let Some(cache) = cache.upgrade() else { return };
        match cache.release_if_idle(Instant::now()) {
            Err(remaining) => wait = remaining,
            Ok(()) => {
                cache.releasing.store(false, Ordering::Release);
                // A list that came between the release and the flag found a task still
                // sleeping and started none: look after its cache too.
                let touched = cache.release_if_idle(Instant::now()).is_err();
                if !touched || cache.releasing.swap(true, Ordering::AcqRel) {
                    return;
                }
                wait = cache.idle_after;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(30);

    #[test]
    fn nothing_is_released_before_the_last_list_is_idle_long_enough() {
        let cache = Arc::new(ListAllCache::new(IDLE));
        let listed = Instant::now();
        cache.used(listed);
        assert_eq!(
            cache.release_if_idle(listed + Duration::from_secs(10)),
            Err(Duration::from_secs(20))
        );
        assert_eq!(cache.release_if_idle(listed + IDLE), Ok(()));
    }
}
