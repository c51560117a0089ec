//! A reused response buffer for the LIST of every pod.
//!
//! At 150,000 pods that body is ~68 MB of JSON. A fresh buffer per list costs a page fault and
//! a page clear for every 4 KiB of it, and an unmap when the body is dropped: about a quarter
//! of a list served from [`super::list_cache`]. The body is handed to the server as `Bytes`
//! whose owner gives the buffer back here when the last reference drops, and the next list
//! writes into pages already mapped.
//!
//! Memory: at most one buffer is kept (the largest given back), so this holds one LIST-all
//! body's capacity from the first list on; a list that finds none (the first, or one that
//! overlaps another) allocates its own.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

/// The kept buffer, if any.
#[derive(Debug, Default)]
pub struct BufferPool {
    free: Mutex<Option<Vec<u8>>>,
}

impl BufferPool {
    /// An empty buffer: the kept one if there is one (its capacity still mapped), else new.
    pub fn take(&self) -> Vec<u8> {
        let mut buffer = self.lock().take().unwrap_or_default();
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

    /// Frees the kept buffer (see [`super::list_all`]); one lent out comes back as usual.
    pub fn release(&self) {
        self.lock().take();
    }

    fn give_back(&self, buffer: Vec<u8>) {
        let mut free = self.lock();
        if free.as_ref().is_none_or(|kept| kept.capacity() < buffer.capacity()) {
            *free = Some(buffer);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<u8>>> {
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
    fn only_the_largest_buffer_given_back_is_kept() {
        let pool = Arc::new(BufferPool::default());
        let small = BufferPool::into_bytes(&pool, Vec::with_capacity(10));
        let large = BufferPool::into_bytes(&pool, Vec::with_capacity(1000));
        drop(large);
        drop(small);
        assert_eq!(pool.take().capacity(), 1000);
        assert_eq!(pool.take().capacity(), 0);
    }
}
