//! Kubernetes labels, stored compactly: every pod carries a few, and at 150,000 pods a map per
//! pod (a B-tree node of eleven slots plus a heap string per key and value, ~650 bytes for
//! two labels) was half the inventory's memory. Here a label set is one allocation, a string
//! holding its size, per label a key id and the end offsets of its key and value, then the
//! text back to back, and none at all when empty. Keys are mostly not stored in the set at
//! all: a cluster repeats a few dozen keys, which the process-wide [`super::label_keys`]
//! table holds once, so a set names them by id (~90 bytes for four labels instead of ~180).
//! The numbers are written as fixed-width ASCII so the whole set stays one `str` with no
//! unsafe code. Keys are sorted, as Go prints map keys.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::label_keys;

/// A set of labels, sorted by key, each key once.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels {
    /// `n (id₁ keyend₁ valueend₁) … (idₙ keyendₙ valueendₙ) key₁ value₁ key₂ value₂ …`: the
    /// number of labels; per label its key's id in the key table (0 when the key is held
    /// inline) and where its key and value end in `text`; then the text of inline keys and of
    /// values with no separators, keys ascending. An interned key's inline text is empty.
    /// Empty for no labels.
    text: Box<str>,
}

/// Characters per offset in a label set's header: six bits each, so a set's text may be up
/// to 16 MiB (an object, labels and all, is at most a few MiB).
const DIGITS: usize = 4;
/// Characters per key id: 12 bits, the key table's capacity.
const ID_DIGITS: usize = 2;
/// Header characters per label: key id, key end, value end.
const ENTRY: usize = ID_DIGITS + 2 * DIGITS;
const DIGIT_BITS: u32 = 6;
const NUMBER_LIMIT: usize = 1 << (DIGITS as u32 * DIGIT_BITS);
const _: () = assert!(label_keys::CAPACITY < 1 << (ID_DIGITS as u32 * DIGIT_BITS));

/// Appends `n` (below 64^`digits`) as `digits` characters in `'0'..='o'`.
fn push_number(text: &mut String, n: usize, digits: usize) {
    for digit in (0..digits as u32).rev() {
        let bits = (n >> (digit * DIGIT_BITS)) & ((1 << DIGIT_BITS) - 1);
        text.push(char::from(b'0' + bits as u8));
    }
}

/// The `digits`-wide number at byte `at` of a header; 0 past the end.
fn number_at(text: &str, at: usize, digits: usize) -> usize {
    text.as_bytes().get(at..at + digits).map_or(0, |digits| {
        digits.iter().fold(0, |n, &d| {
            (n << DIGIT_BITS) | usize::from(d.wrapping_sub(b'0') & ((1 << DIGIT_BITS) - 1))
        })
    })
}

impl Labels {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        number_at(&self.text, 0, DIGITS)
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// `(key, value)` pairs by key.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        (0..self.len()).map(|i| self.pair(i))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = low + (high - low) / 2;
            let (k, v) = self.pair(mid);
            match k.cmp(key) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return Some(v),
            }
        }
        None
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets one label (rebuilding the set: for construction, not hot paths).
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let mut pairs: Vec<(String, String)> = self.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        pairs.push((key.into(), value.into()));
        *self = pairs.into_iter().collect();
    }

    fn pair(&self, i: usize) -> (&str, &str) {
        let entry = DIGITS + ENTRY * i;
        let id = number_at(&self.text, entry, ID_DIGITS);
        let key_start = match i.checked_sub(1) {
            Some(before) => number_at(&self.text, DIGITS + ENTRY * before + ID_DIGITS + DIGITS, DIGITS),
            None => DIGITS + ENTRY * self.len(),
        };
        let key_end = number_at(&self.text, entry + ID_DIGITS, DIGITS);
        let value_end = number_at(&self.text, entry + ID_DIGITS + DIGITS, DIGITS);
        let key = match u16::try_from(id) {
            Ok(id) if id != 0 => label_keys::text(id),
            _ => self.text.get(key_start..key_end).unwrap_or_default(),
        };
        (key, self.text.get(key_end..value_end).unwrap_or_default())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Labels {
    /// Sorts by key; of repeated keys the last wins, as inserting into a map would.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut pairs: Vec<(K, V)> = pairs.into_iter().collect();
        // Stable, so repeated keys keep their order and the last is kept below.
        pairs.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        // Of repeated keys, the last.
        let kept: Vec<(&str, &str)> = pairs
            .iter()
            .enumerate()
            .filter(|(i, (key, _))| pairs.get(i + 1).is_none_or(|next| next.0.as_ref() != key.as_ref()))
            .map(|(_, (key, value))| (key.as_ref(), value.as_ref()))
            .collect();
        // Each key's id, or 0 to hold it inline (the key table is full).
        let ids: Vec<usize> = kept
            .iter()
            .map(|(key, _)| label_keys::intern(key).map_or(0, usize::from))
            .collect();
        let inline = |(id, key): (&usize, &&str)| if *id == 0 { key.len() } else { 0 };
        let header = DIGITS + ENTRY * kept.len();
        let size = header
            + ids.iter().zip(kept.iter().map(|(k, _)| k)).map(inline).sum::<usize>()
            + kept.iter().map(|(_, v)| v.len()).sum::<usize>();
        // Objects are at most a few MiB; a label set past the limit cannot come from an API
        // server. Such a set is kept empty rather than cut at an arbitrary label.
        if kept.is_empty() || size >= NUMBER_LIMIT {
            return Labels::default();
        }
        let mut text = String::with_capacity(size);
        push_number(&mut text, kept.len(), DIGITS);
        let mut end = header;
        for (id, (key, value)) in ids.iter().zip(&kept) {
            push_number(&mut text, *id, ID_DIGITS);
            end += inline((id, key));
            push_number(&mut text, end, DIGITS);
            end += value.len();
            push_number(&mut text, end, DIGITS);
        }
        for (id, (key, value)) in ids.iter().zip(&kept) {
            if *id == 0 {
                text.push_str(key);
            }
            text.push_str(value);
        }
        Labels {
            text: text.into_boxed_str(),
        }
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LabelsVisitor;
        impl<'de> Visitor<'de> for LabelsVisitor {
            type Value = Labels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of label keys to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
                let mut pairs: Vec<(String, String)> = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(pairs.into_iter().collect())
            }
        }
        deserializer.deserialize_map(LabelsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_come_back_sorted_with_the_last_of_a_repeated_key() {
        let labels: Labels = [("tier", "web"), ("app", "a"), ("tier", "db"), ("z", "")]
            .into_iter()
            .collect();
        assert_eq!(
            labels.iter().collect::<Vec<_>>(),
            [("app", "a"), ("tier", "db"), ("z", "")]
        );
        assert_eq!(labels.len(), 3);
        assert_eq!(labels.get("tier"), Some("db"));
        assert_eq!(labels.get("z"), Some(""));
        assert_eq!(labels.get("zz"), None);
        assert_eq!(labels.get(""), None);
        assert!(labels.contains_key("app"));
        assert_eq!(format!("{labels:?}"), r#"{"app": "a", "tier": "db", "z": ""}"#);
    }

    #[test]
    fn empty_sets_hold_nothing_and_insert_keeps_order() {
        let mut labels = Labels::new();
        assert!(labels.is_empty());
        assert_eq!(labels.iter().count(), 0);
        assert_eq!(labels.get("a"), None);
        labels.insert("b", "2");
        labels.insert("a", "1");
        labels.insert("b", "3");
        assert_eq!(labels.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "3")]);
    }

    #[test]
    fn json_maps_round_trip() {
        let labels: Labels = serde_json::from_str(r#"{"k8s-app":"kube-dns","a":"é<&>"}"#).unwrap();
        assert_eq!(
            labels.iter().collect::<Vec<_>>(),
            [("a", "é<&>"), ("k8s-app", "kube-dns")]
        );
        assert_eq!(
            serde_json::to_string(&labels).unwrap(),
            r#"{"a":"é<&>","k8s-app":"kube-dns"}"#
        );
        assert!(serde_json::from_str::<Labels>(r#"["not a map"]"#).is_err());
    }

    #[test]
    fn a_set_is_one_string_that_no_label_text_can_confuse() {
        let long = "v".repeat(70_000);
        let labels: Labels = [("k", long.as_str()), ("0000", "0001"), ("", "")].into_iter().collect();
        assert_eq!(
            labels.iter().collect::<Vec<_>>(),
            [("", ""), ("0000", "0001"), ("k", long.as_str())]
        );
        assert_eq!(labels.get("k").map(str::len), Some(70_000));
        assert_eq!(labels.get(""), Some(""));
        let empty: Labels = Vec::<(String, String)>::new().into_iter().collect();
        assert_eq!(empty, Labels::new());
        assert!(empty.is_empty());
    }

    #[test]
    fn keys_past_the_key_table_capacity_are_held_inline_and_read_back_the_same() {
        // More unique keys than the table holds: the later ones stay inline, whichever test
        // filled the table first, and every set still reads back exactly.
        let sets: Vec<(String, Labels)> = (0..label_keys::CAPACITY + 100)
            .map(|i| {
                let key = format!("capacity.test/key-{i:05}");
                let labels: Labels = [(key.as_str(), "v"), ("app", "web")].into_iter().collect();
                (key, labels)
            })
            .collect();
        for (key, labels) in &sets {
            assert_eq!(labels.iter().collect::<Vec<_>>(), [("app", "web"), (key.as_str(), "v")]);
            assert_eq!(labels.get(key), Some("v"));
            let again: Labels = [(key.as_str(), "v"), ("app", "web")].into_iter().collect();
            assert_eq!(&again, labels, "a key is encoded the same way every time");
        }
        let (last_key, last) = &sets[sets.len() - 1];
        assert!(
            last.text.contains(last_key.as_str()),
            "held inline once the table is full"
        );
        assert!(!last.text.contains("app"), "an interned key is not");
    }
}
