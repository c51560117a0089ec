//! A reused response buffer for the LIST of every pod.
//!
//! At 150,000 pods that body is ~68 MB of JSON. A fresh buffer per list costs a page fault and
//! a page clear for every 4 KiB of it, and an unmap when the body is dropped: about a quarter
//! of a list served from [`super::list_cache`]. The body is handed to the server as `Bytes`
//! whose owner gives the buffer back here when the last reference drops, and the next list
//! writes into pages already mapped.
//!
//! Memory: at most two buffers are kept (the largest given back), so two lists in flight at
//! once (a dashboard and a `kubectl top pod -A`, or the aggregator's retries) both write into
//! mapped pages; a list that finds none (the first ones, or a third at once) allocates its
//! own. [`super::list_all`] frees them once lists stop.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

/// How many buffers are kept.
const KEPT: usize = 2;

/// The kept buffers.
#[derive(Debug, Default)]
pub struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    /// An empty buffer: the largest kept one if any (its capacity still mapped), else new.
    pub fn take(&self) -> Vec<u8> {
        let mut free = self.lock();
        let largest = (0..free.len()).max_by_key(|&i| free[i].capacity());
        let mut buffer = largest.map(|i| free.swap_remove(i)).unwrap_or_default();
        buffer.clear();
        buffer
    }

    /// `buffer` as `Bytes` that return it to `pool` once dropped.
    pub fn into_bytes(pool: &Arc<BufferPool>, buffer: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            buffer,
            pool: Arc::clone(pool),
        })
    }

    /// Frees the kept buffers (see [`super::list_all`]); one lent out comes back as usual.
    pub fn release(&self) {
        self.lock().clear();
    }

    fn give_back(&self, buffer: Vec<u8>) {
        let mut free = self.lock();
        free.push(buffer);
        if free.len() > KEPT {
            let smallest = (0..free.len()).min_by_key(|&i| free[i].capacity());
            if let Some(i) = smallest {
                free.swap_remove(i);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // A poisoned lock only means a holder panicked between two plain assignments.
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A response body's owner: gives its buffer back to the pool when the body is dropped.
#[derive(Debug)]
struct Pooled {
    buffer: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buffer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_body_lends_its_buffer_to_the_next_list() {
        let pool = Arc::new(BufferPool::default());
        let mut buffer = pool.take();
        buffer.extend_from_slice(b"first body");
        let capacity = buffer.capacity();
        let body = BufferPool::into_bytes(&pool, buffer).slice(6..);
        assert_eq!(&body[..], b"body");
        // Still referenced: the next list gets a new buffer.
        assert_eq!(pool.take().capacity(), 0);
        drop(body);
        let reused = pool.take();
        assert!(reused.is_empty());
        assert_eq!(reused.capacity(), capacity);
    }

    #[test]
    fn the_two_largest_buffers_given_back_are_kept_and_lent_largest_first() {
        let pool = Arc::new(BufferPool::default());
        let bodies = [10, 1000, 100].map(|capacity| BufferPool::into_bytes(&pool, Vec::with_capacity(capacity)));
        drop(bodies);
        assert_eq!(pool.take().capacity(), 1000);
        assert_eq!(pool.take().capacity(), 100);
        assert_eq!(pool.take().capacity(), 0);
    }
}
