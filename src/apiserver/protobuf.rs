//! Protobuf wire primitives and the Kubernetes protobuf envelope, written by hand (spec §10).
//!
//! The apiserver's protobuf body is the magic `k8s\0` followed by a `runtime.Unknown` message:
//! `typeMeta` (1: apiVersion = 1, kind = 2), `raw` (2: the object's own encoding),
//! `contentEncoding` (3) and `contentType` (4). The Go serializer (`NestedMarshalTo`) always
//! writes fields 3 and 4, even empty, so every envelope ends with `1a 00 22 00`.
//!
//! Go's generated (gogo) marshallers treat proto2 `optional` scalars as always present: every
//! non-pointer string and integer field is written, empty or zero (tag plus a zero length or a
//! zero varint), and every non-pointer message field is written even when it encodes to
//! nothing. Maps are written as repeated entries (key = 1, value = 2) in sorted key order.
//! Varints are minimal; negative `int32`/`int64` values are sign-extended to ten bytes. The
//! writers here follow those rules, so callers reproduce Go's bytes by writing every field Go
//! writes, in field-number order.
//!
//! Nested messages whose length is not known up front are written in place: [`begin`] reserves
//! one length byte ([`begin_wide`] two, for list items) and [`end`] shifts the bytes written
//! since only when the minimal varint of the length needs a different width. The envelope reserves five bytes for `raw`'s length and moves its
//! short prefix instead of the body, so [`Envelope::finish`] never copies a large document.

/// `k8s\0`, the first four bytes of every Kubernetes protobuf body.
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// Wire type 0: varint.
const VARINT: u8 = 0;
/// Wire type 2: length-delimited.
const LEN: u8 = 2;

/// The key byte of a field; every field number used by these messages is below 16.
const fn key(field: u8, wire: u8) -> u8 {
    (field << 3) | wire
}

/// Bytes a minimal varint of `v` takes (1..=10).
pub fn varint_len(v: u64) -> usize {
    // 64 significant bits at most, 7 per byte; zero still takes one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends `v` as a minimal varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A varint field (`int64`, `int32`, `bool`…); negative values are sign-extended, as Go's
/// `uint64(v)` does.
pub fn put_int(out: &mut Vec<u8>, field: u8, v: i64) {
    out.push(key(field, VARINT));
    put_varint(out, v as u64);
}

/// A length-delimited field holding `bytes` (a string or pre-encoded message).
pub fn put_bytes(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push(key(field, LEN));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A string field, written even when empty.
pub fn put_str(out: &mut Vec<u8>, field: u8, s: &str) {
    put_bytes(out, field, s.as_bytes());
}

/// One `map<string, string>` entry: key = 1, value = 2.
pub fn put_string_entry(out: &mut Vec<u8>, field: u8, k: &str, v: &str) {
    let entry = begin(out, field);
    put_str(out, 1, k);
    put_str(out, 2, v);
    end(out, entry);
}

/// A length-delimited field opened by [`begin`] and not yet closed.
#[derive(Debug)]
#[must_use = "a nested message must be closed with `end`"]
pub struct Nested {
    /// Index of the first reserved length byte.
    at: usize,
    /// Length bytes reserved: the expected width of the length's varint.
    width: usize,
}

/// Opens a nested message (or any length-delimited field) of unknown length.
pub fn begin(out: &mut Vec<u8>, field: u8) -> Nested {
    begin_reserving(out, field, 1)
}

/// Opens a nested message expected to take 128 to 16,383 bytes, such as a list item: its
/// length gets two bytes up front, so [`end`] shifts nothing in the usual case.
pub fn begin_wide(out: &mut Vec<u8>, field: u8) -> Nested {
    begin_reserving(out, field, 2)
}

fn begin_reserving(out: &mut Vec<u8>, field: u8, width: usize) -> Nested {
    out.push(key(field, LEN));
    let at = out.len();
    out.resize(at + width, 0);
    Nested { at, width }
}

/// Closes a nested message: writes its length as a minimal varint, moving the bytes written
/// since [`begin`] when the reserved room was too small or too large.
pub fn end(out: &mut Vec<u8>, nested: Nested) {
    let body = nested.at + nested.width;
    let len = out.len() - body;
    if len < 0x80 && nested.width == 1 {
        out[nested.at] = len as u8;
        return;
    }
    let width = varint_len(len as u64);
    let old_end = out.len();
    if width > nested.width {
        out.resize(old_end + width - nested.width, 0);
        out.copy_within(body..old_end, nested.at + width);
    } else if width < nested.width {
        out.copy_within(body..old_end, nested.at + width);
        out.truncate(old_end - (nested.width - width));
    }
    let mut varint = [0u8; 10];
    let n = write_varint_into(&mut varint, len as u64);
    out[nested.at..nested.at + n].copy_from_slice(&varint[..n]);
}

fn write_varint_into(buf: &mut [u8; 10], mut v: u64) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        buf[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    buf[i] = v as u8;
    i + 1
}

/// Room kept for `raw`'s length: five varint bytes cover bodies below 32 GiB.
const RAW_LEN_ROOM: usize = 5;

/// A protobuf body being written: magic and `typeMeta` are out, `raw` is open.
#[derive(Debug)]
#[must_use = "an envelope must be closed with `finish`"]
pub struct Envelope {
    /// Where the body (the magic) starts before [`Envelope::finish`] moves it.
    start: usize,
    /// Where the reserved length bytes of `raw` start.
    raw_len_at: usize,
}

impl Envelope {
    /// Writes the magic, `typeMeta{apiVersion, kind}` and the key of `raw`; the object's own
    /// fields follow.
    pub fn begin(out: &mut Vec<u8>, api_version: &str, kind: &str) -> Self {
        let start = out.len();
        out.extend_from_slice(&MAGIC);
        let type_meta = begin(out, 1);
        put_str(out, 1, api_version);
        put_str(out, 2, kind);
        end(out, type_meta);
        out.push(key(2, LEN));
        let raw_len_at = out.len();
        out.extend_from_slice(&[0; RAW_LEN_ROOM]);
        Envelope { start, raw_len_at }
    }

    /// Closes `raw`, writes the empty `contentEncoding` and `contentType`, and returns the
    /// index in `out` where the body now starts (the bytes before it are slack).
    pub fn finish(self, out: &mut Vec<u8>) -> usize {
        self.finish_around(out, 0).0
    }

    /// [`Envelope::finish`] for a body whose last `outside` bytes of `raw` are not in `out`
    /// (a LIST's items, sent from where they are kept): returns where the body starts and
    /// where in `out` those bytes go, between what `out` held and the fields written now.
    pub fn finish_around(self, out: &mut Vec<u8>, outside: usize) -> (usize, usize) {
        let raw_start = self.raw_len_at + RAW_LEN_ROOM;
        let raw_len = (out.len() - raw_start + outside) as u64;
        let width = varint_len(raw_len);
        let start = if width <= RAW_LEN_ROOM {
            // Right-align the length against the raw bytes and slide the short prefix after it.
            let slack = RAW_LEN_ROOM - width;
            out.copy_within(self.start..self.raw_len_at, self.start + slack);
            let mut varint = [0u8; 10];
            write_varint_into(&mut varint, raw_len);
            out[raw_start - width..raw_start].copy_from_slice(&varint[..width]);
            self.start + slack
        } else {
            // A body of 32 GiB or more: make room by moving it (never happens in practice).
            let mut varint = Vec::with_capacity(10);
            put_varint(&mut varint, raw_len);
            out.splice(self.raw_len_at..raw_start, varint);
            self.start
        };
        let outside_at = out.len();
        put_str(out, 3, "");
        put_str(out, 4, "");
        (start, outside_at)
    }

    /// [`Envelope::finish`], then drops the slack so the body starts at index 0 of `out`
    /// (for small bodies, where the copy does not matter).
    pub fn finish_compact(self, out: &mut Vec<u8>) {
        let start = self.finish(out);
        out.drain(..start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_minimal_and_negative_ints_take_ten_bytes() {
        let enc = |v: u64| {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            out
        };
        assert_eq!(enc(0), [0]);
        assert_eq!(enc(127), [0x7f]);
        assert_eq!(enc(128), [0x80, 1]);
        assert_eq!(enc(300), [0xac, 0x02]);
        assert_eq!(enc(u64::MAX).len(), 10);
        let mut out = Vec::new();
        put_int(&mut out, 6, -1);
        assert_eq!(out, [0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    }

    #[test]
    fn nested_lengths_are_minimal_varints_whatever_room_was_reserved() {
        for n in [0usize, 1, 127, 128, 300, 16_383, 16_384, 20_000, 3_000_000] {
            let mut want = vec![0xee, 0x12];
            put_varint(&mut want, n as u64);
            want.extend((0..n).map(|i| i as u8));
            for open in [begin, begin_wide] {
                let mut out = vec![0xee];
                let nested = open(&mut out, 2);
                out.extend((0..n).map(|i| i as u8));
                end(&mut out, nested);
                assert_eq!(out, want, "{n}");
            }
        }
    }

    #[test]
    fn envelope_matches_gos_unknown_layout() {
        let mut out = Vec::new();
        let envelope = Envelope::begin(&mut out, "v1", "Status");
        out.extend_from_slice(&[0x30, 0x01]);
        let start = envelope.finish(&mut out);
        let body = &out[start..];
        let mut want = b"k8s\0".to_vec();
        want.extend_from_slice(&[0x0a, 0x0c, 0x0a, 0x02, b'v', b'1', 0x12, 0x06]);
        want.extend_from_slice(b"Status");
        want.extend_from_slice(&[0x12, 0x02, 0x30, 0x01, 0x1a, 0x00, 0x22, 0x00]);
        assert_eq!(body, want.as_slice());
    }

    #[test]
    fn envelope_lengths_of_every_width_are_minimal() {
        for n in [0usize, 127, 128, 16_383, 16_384, 2_097_152] {
            let mut out = vec![9, 9];
            let envelope = Envelope::begin(&mut out, "a/v", "K");
            out.extend(std::iter::repeat_n(1u8, n));
            let start = envelope.finish(&mut out);
            let body = &out[start..];
            let prefix_len = 4 + 2 + 8 + 1;
            assert_eq!(&body[..4], b"k8s\0");
            let mut want_len = Vec::new();
            put_varint(&mut want_len, n as u64);
            assert_eq!(
                &body[prefix_len..prefix_len + want_len.len()],
                want_len.as_slice(),
                "{n}"
            );
            assert_eq!(body.len(), prefix_len + want_len.len() + n + 4, "{n}");
            assert_eq!(&body[body.len() - 4..], [0x1a, 0, 0x22, 0]);
        }
    }
}
