//! The process-wide table of label keys: a cluster's 150,000 pods repeat a few dozen keys
//! (`app.kubernetes.io/name`, `pod-template-hash`, …), which were ~70% of the label text held.
//! A [`super::Labels`] set refers to a key in this table by a small id instead of a copy.
//!
//! Keys are never removed, so an id stays valid for the life of the process and a set's
//! encoding of a key never changes (equal sets stay byte-equal). The table is capped: keys
//! beyond [`CAPACITY`] are not interned and the set holds them inline, so a stream of unique
//! keys costs at most the table's cap, never unbounded memory. Reading a key by id takes no
//! lock (a write-once slot); only interning a key not seen before takes the lock.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Ids are `1..=CAPACITY`; 0 means "not interned" in a set's header.
pub(super) const CAPACITY: usize = 4095;

/// Key text by id; slot 0 is never set.
static KEYS: [OnceLock<Box<str>>; CAPACITY + 1] = [const { OnceLock::new() }; CAPACITY + 1];

/// Id by key text, for interning. The text borrows from [`KEYS`], which is never freed.
static IDS: Mutex<Option<HashMap<&'static str, u16>>> = Mutex::new(None);

/// The id of `key`, interning it if the table has room; `None` when it is full (or its lock
/// was poisoned by a panic elsewhere): the caller then keeps the key inline.
pub(super) fn intern(key: &str) -> Option<u16> {
    let mut ids = IDS.lock().ok()?;
    let ids = ids.get_or_insert_with(HashMap::new);
    if let Some(&id) = ids.get(key) {
        return Some(id);
    }
    let id = ids.len() + 1;
    let slot = KEYS.get(id)?;
    let text: &'static str = slot.get_or_init(|| Box::from(key));
    let id = u16::try_from(id).ok()?;
    ids.insert(text, id);
    Some(id)
}

/// The text of key `id`; empty for an id never handed out (no set holds one).
pub(super) fn text(id: u16) -> &'static str {
    KEYS.get(usize::from(id)).and_then(OnceLock::get).map_or("", |key| key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_keeps_one_id_and_reads_back() {
        let id = intern("label-keys.test/a").unwrap();
        assert_eq!(intern("label-keys.test/a"), Some(id));
        assert_ne!(intern("label-keys.test/b"), Some(id));
        assert_eq!(text(id), "label-keys.test/a");
        assert_eq!(text(0), "");
    }
}
