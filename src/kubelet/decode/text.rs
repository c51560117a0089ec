//! The Prometheus text exposition syntax, one line at a time, without allocating.
//!
//! This is the lexical half of [`super::decode`]: it splits a body into lines, recognises a
//! sample line (`name[{labels}] value [timestamp]`) and hands back borrowed pieces of it. It
//! knows which metric families the decoder wants and which labels those families need, so it
//! only builds the names it will use; every other label is still checked for syntax. What a
//! sample means (units, grouping, drop rules) is not its business.

use std::borrow::Cow;

use super::number::{parse_float, parse_timestamp};

/// What a malformed line got wrong; it fails the whole body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyntaxError {
    /// The line does not start with a metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
    MetricName,
    /// A label name is missing or not `[a-zA-Z_][a-zA-Z0-9_]*`.
    LabelName,
    /// The label set is not `{name="value", ...}`.
    LabelSyntax,
    /// A label value's closing quote is missing.
    UnterminatedLabelValue,
    /// A label value is not UTF-8.
    LabelValueUtf8,
    /// The sample has no value.
    MissingValue,
    /// The value is not a Go-style float.
    Value,
    /// The value overflows a float (Go's `ParseFloat` reports a range error).
    ValueOutOfRange,
    /// The timestamp is not an integer number of milliseconds that fits in an `i64`.
    Timestamp,
    /// The timestamp is negative, which the Prometheus parser rejects.
    NegativeTimestamp,
    /// Something follows the timestamp.
    TrailingText,
}

impl SyntaxError {
    fn as_str(self) -> &'static str {
        match self {
            SyntaxError::MetricName => "invalid metric name",
            SyntaxError::LabelName => "invalid label name",
            SyntaxError::LabelSyntax => "invalid label set",
            SyntaxError::UnterminatedLabelValue => "unterminated label value",
            SyntaxError::LabelValueUtf8 => "label value is not valid UTF-8",
            SyntaxError::MissingValue => "missing sample value",
            SyntaxError::Value => "invalid sample value",
            SyntaxError::ValueOutOfRange => "sample value out of range",
            SyntaxError::Timestamp => "invalid timestamp",
            SyntaxError::NegativeTimestamp => "negative timestamp",
            SyntaxError::TrailingText => "unexpected text after the sample",
        }
    }
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The series the decoder reads; anything else is [`Family::Other`] and only syntax-checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    NodeCpu,
    NodeMemory,
    NodeSwap,
    ContainerCpu,
    ContainerMemory,
    ContainerStart,
    ContainerSwap,
    PodCpu,
    PodMemory,
    PodSwap,
    Other,
}

impl Family {
    /// Exact match on the metric name: `node_cpu_usage_seconds_total_foo` is `Other`.
    fn of(name: &[u8]) -> Family {
        match name {
            b"node_cpu_usage_seconds_total" => Family::NodeCpu,
            b"node_memory_working_set_bytes" => Family::NodeMemory,
            b"node_swap_usage_bytes" => Family::NodeSwap,
            b"container_cpu_usage_seconds_total" => Family::ContainerCpu,
            b"container_memory_working_set_bytes" => Family::ContainerMemory,
            b"container_start_time_seconds" => Family::ContainerStart,
            b"container_swap_usage_bytes" => Family::ContainerSwap,
            b"pod_cpu_usage_seconds_total" => Family::PodCpu,
            b"pod_memory_working_set_bytes" => Family::PodMemory,
            b"pod_swap_usage_bytes" => Family::PodSwap,
            _ => Family::Other,
        }
    }

    /// Which of `namespace`, `pod`, `container` this family needs.
    fn wants(self, label: &[u8]) -> bool {
        use Family::*;
        match label {
            b"namespace" | b"pod" => matches!(
                self,
                ContainerCpu | ContainerMemory | ContainerStart | ContainerSwap | PodCpu | PodMemory | PodSwap
            ),
            b"container" => {
                matches!(self, ContainerCpu | ContainerMemory | ContainerStart | ContainerSwap)
            }
            _ => false,
        }
    }
}

/// The identifying labels of a sample; `None` when absent or empty. A repeated label: the last
/// one wins.
#[derive(Debug, Default)]
pub(super) struct Names<'a> {
    pub(super) namespace: Option<Cow<'a, str>>,
    pub(super) pod: Option<Cow<'a, str>>,
    pub(super) container: Option<Cow<'a, str>>,
}

/// One sample line, as written (no unit conversion).
#[derive(Debug)]
pub(super) struct Sample<'a> {
    pub(super) family: Family,
    pub(super) names: Names<'a>,
    pub(super) value: f64,
    pub(super) timestamp_ms: Option<i64>,
}

/// The lines of a body with their byte offsets; a final line without `\n` counts.
pub(super) fn lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut start = 0;
    std::iter::from_fn(move || {
        let rest = body.get(start..).filter(|rest| !rest.is_empty())?;
        let len = find_newline(rest).unwrap_or(rest.len());
        let line = (start, rest.get(..len).unwrap_or_default());
        start += len + 1;
        Some(line)
    })
}

/// Where the first `\n` is: eight bytes at a time (a zero-byte test on `word ^ "\n\n…"`).
fn find_newline(hay: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = ONES * b'\n' as u64;
    let mut chunks = hay.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ NEWLINES;
        // The lowest flagged byte is exact; only bytes above a true match can be false hits.
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let tail = chunks.remainder().iter().position(|&b| b == b'\n')?;
    Some(offset + tail)
}

/// One line: `Ok(None)` for a blank line or a comment (`# HELP`, `# TYPE` or any other).
pub(super) fn parse_line(line: &[u8]) -> Result<Option<Sample<'_>>, SyntaxError> {
    let mut p = Cursor { line, pos: 0 };
    p.skip_blanks();
    match p.peek() {
        None | Some(b'#') => Ok(None),
        Some(_) => p.sample().map(Some),
    }
}

struct Cursor<'a> {
    line: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.line.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.peek() == Some(byte);
        self.pos += usize::from(hit);
        hit
    }

    fn skip_blanks(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        self.line.get(start..self.pos).unwrap_or_default()
    }

    fn sample(&mut self) -> Result<Sample<'a>, SyntaxError> {
        let name = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
        if name.first().is_none_or(u8::is_ascii_digit) {
            return Err(SyntaxError::MetricName);
        }
        let family = Family::of(name);
        let mut names = Names::default();
        let spaced = self.skip_blanks();
        if self.eat(b'{') {
            self.labels(family, &mut names)?;
            self.skip_blanks();
        } else if !spaced && self.peek().is_some() {
            return Err(SyntaxError::MetricName);
        }
        let value = self.take_while(|b| b != b' ' && b != b'\t');
        if value.is_empty() {
            return Err(SyntaxError::MissingValue);
        }
        let value = parse_float(value)?;
        self.skip_blanks();
        let timestamp_ms = match self.take_while(|b| b != b' ' && b != b'\t') {
            [] => None,
            token => Some(parse_timestamp(token)?),
        };
        self.skip_blanks();
        if self.peek().is_some() {
            return Err(SyntaxError::TrailingText);
        }
        Ok(Sample {
            family,
            names,
            value,
            timestamp_ms,
        })
    }

    /// After `{`: `name="value"` pairs, comma-separated, optional trailing comma, then `}`.
    fn labels(&mut self, family: Family, names: &mut Names<'a>) -> Result<(), SyntaxError> {
        loop {
            self.skip_blanks();
            if self.eat(b'}') {
                return Ok(());
            }
            let label = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_');
            if label.first().is_none_or(u8::is_ascii_digit) {
                return Err(SyntaxError::LabelName);
            }
            self.skip_blanks();
            if !self.eat(b'=') {
                return Err(SyntaxError::LabelSyntax);
            }
            self.skip_blanks();
            if !self.eat(b'"') {
                return Err(SyntaxError::LabelSyntax);
            }
            let value = self.label_value(family.wants(label))?;
            match label {
                b"namespace" if value.is_some() => names.namespace = non_empty(value),
                b"pod" if value.is_some() => names.pod = non_empty(value),
                b"container" if value.is_some() => names.container = non_empty(value),
                _ => {}
            }
            self.skip_blanks();
            if !self.eat(b',') {
                return if self.eat(b'}') {
                    Ok(())
                } else {
                    Err(SyntaxError::LabelSyntax)
                };
            }
        }
    }

    /// After the opening quote, through the closing one. Builds the value only when `keep`;
    /// borrows it unless it holds an escape.
    fn label_value(&mut self, keep: bool) -> Result<Option<Cow<'a, str>>, SyntaxError> {
        let start = self.pos;
        let mut escaped = false;
        loop {
            match self.peek() {
                None => return Err(SyntaxError::UnterminatedLabelValue),
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    self.pos += 2;
                }
                Some(_) => self.pos += 1,
            }
        }
        let raw = self.line.get(start..self.pos).unwrap_or_default();
        self.pos += 1;
        let text = std::str::from_utf8(raw).map_err(|_| SyntaxError::LabelValueUtf8)?;
        Ok(keep.then(|| match escaped {
            false => Cow::Borrowed(text),
            true => Cow::Owned(unescape(text)),
        }))
    }
}

/// An empty label value counts as a missing label.
fn non_empty(value: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    value.filter(|v| !v.is_empty())
}

/// `\\`, `\"` and `\n` as the text format defines them; any other escape stays as written, as
/// the Prometheus parser leaves it.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('n') => out.push('\n'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_on_newline_and_keep_a_last_unterminated_line() {
        let body = b"a 1\n\nsome_longer_metric_name 2\nlast 3";
        let got: Vec<_> = lines(body).collect();
        let want: Vec<(usize, &[u8])> = vec![
            (0, b"a 1"),
            (4, b""),
            (5, b"some_longer_metric_name 2"),
            (31, b"last 3"),
        ];
        assert_eq!(got, want);
        assert_eq!(lines(b"").count(), 0);
        assert_eq!(lines(b"x 1\n").count(), 1);
    }

    #[test]
    fn unknown_escapes_are_kept_as_written() {
        assert_eq!(unescape(r#"a\\b\"c\nd\te"#), "a\\b\"c\nd\\te");
    }
}
