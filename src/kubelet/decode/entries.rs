//! The decoder's containers and pods, kept in first-seen order and found by key.
//!
//! A kubelet lists each family's series sorted by (namespace, pod, container), so the keys of
//! the first family arrive in ascending order. While they do, the entries stay sorted and a
//! lookup is a binary search (and a new key, greater than the last, is one comparison); a hash
//! map is built only when a key arrives out of order. The decoder rarely looks up at all: it
//! first tries the entry after the last one hit.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

pub(super) struct Entries<K, T> {
    items: Vec<T>,
    key_of: fn(&T) -> &K,
    /// `None` while `items` is sorted by key.
    index: Option<HashMap<K, usize, NameHashing>>,
}

impl<K: Ord + Hash + Clone, T> Entries<K, T> {
    pub(super) fn with_capacity(capacity: usize, key_of: fn(&T) -> &K) -> Self {
        Entries {
            items: Vec::with_capacity(capacity),
            key_of,
            index: None,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    pub(super) fn get(&self, at: usize) -> Option<&T> {
        self.items.get(at)
    }

    pub(super) fn get_mut(&mut self, at: usize) -> Option<&mut T> {
        self.items.get_mut(at)
    }

    /// Where the entry for `key` is, made by `make` (and appended) when there is none.
    pub(super) fn find_or_insert(&mut self, key: K, make: impl FnOnce(K) -> T) -> usize {
        let key_of = self.key_of;
        if let Some(index) = &mut self.index {
            let items = &mut self.items;
            return *index.entry(key).or_insert_with_key(|key| {
                items.push(make(key.clone()));
                items.len() - 1
            });
        }
        let ascending = self.items.last().is_none_or(|last| key_of(last) < &key);
        if !ascending {
            match self.items.binary_search_by(|item| key_of(item).cmp(&key)) {
                Ok(at) => return at,
                Err(_) => self.index = Some(self.build_index()),
            }
        }
        if let Some(index) = &mut self.index {
            index.insert(key.clone(), self.items.len());
        }
        self.items.push(make(key));
        self.items.len() - 1
    }

    /// The entries, in first-seen order.
    pub(super) fn into_vec(self) -> Vec<T> {
        self.items
    }

    fn build_index(&self) -> HashMap<K, usize, NameHashing> {
        let mut index = HashMap::with_capacity_and_hasher(self.items.capacity(), NameHashing::new());
        for (at, item) in self.items.iter().enumerate() {
            index.insert((self.key_of)(item).clone(), at);
        }
        index
    }
}

/// Hashes names for the index: a multiply-rotate mix over 8-byte words with a per-decode
/// random seed. SipHash cost a fifth of the whole decode here; this mix is not collision-proof
/// against a kubelet that crafts names to collide, but such a kubelet only slows its own
/// scrape, which the body size cap and the scrape timeout bound.
#[derive(Clone, Copy)]
struct NameHashing(u64);

impl NameHashing {
    fn new() -> Self {
        NameHashing(RandomState::new().hash_one(0x6e61_6d65_7321_u64))
    }
}

impl BuildHasher for NameHashing {
    type Hasher = NameHasher;

    fn build_hasher(&self) -> NameHasher {
        NameHasher(self.0)
    }
}

struct NameHasher(u64);

impl NameHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let tail = chunks.remainder();
        let mut word = [0u8; 8];
        if let Some(head) = word.get_mut(..tail.len()) {
            head.copy_from_slice(tail);
        }
        self.mix(u64::from_le_bytes(word) ^ (bytes.len() as u64).rotate_right(8));
    }

    fn write_u8(&mut self, byte: u8) {
        self.mix(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        // The low bits pick the bucket and the top seven tag it: spread every input bit.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^ (x >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Entries<u32, (u32, &'static str)> {
        Entries::with_capacity(4, |item| &item.0)
    }

    #[test]
    fn ascending_keys_are_appended_and_found_again() {
        let mut e = entries();
        assert_eq!(e.find_or_insert(1, |k| (k, "a")), 0);
        assert_eq!(e.find_or_insert(5, |k| (k, "b")), 1);
        assert_eq!(e.find_or_insert(9, |k| (k, "c")), 2);
        assert_eq!(e.find_or_insert(5, |k| (k, "again")), 1);
        assert_eq!(e.find_or_insert(1, |k| (k, "again")), 0);
        assert!(e.index.is_none(), "sorted keys need no map");
        assert_eq!(e.into_vec(), [(1, "a"), (5, "b"), (9, "c")]);
    }

    #[test]
    fn a_key_out_of_order_switches_to_the_map() {
        let mut e = entries();
        e.find_or_insert(5, |k| (k, "a"));
        e.find_or_insert(9, |k| (k, "b"));
        assert_eq!(e.find_or_insert(1, |k| (k, "c")), 2);
        assert_eq!(e.find_or_insert(12, |k| (k, "d")), 3);
        assert_eq!(e.find_or_insert(7, |k| (k, "e")), 4);
        for (key, at) in [(5, 0), (9, 1), (1, 2), (12, 3), (7, 4)] {
            assert_eq!(e.find_or_insert(key, |k| (k, "again")), at, "{key}");
        }
        assert_eq!(e.len(), 5);
        assert_eq!(e.get(4), Some(&(7, "e")));
    }
}
