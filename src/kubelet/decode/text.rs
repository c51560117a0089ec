//! The Prometheus text exposition syntax, read in one pass without allocating.
//!
//! This is the lexical half of [`super::decode`]: it walks the body, skips blank lines and
//! comments, recognises each sample line (`name[{labels}] value [timestamp]`) and hands back
//! borrowed pieces of it. It knows which metric families the decoder wants and which labels
//! those families need. A line of a kubelet family the decoder does not read (pod and swap
//! series) is skipped whole, as a comment is, without being read; of any other line it only
//! builds the names it will use (every other label is still checked for syntax, and label
//! values are checked as UTF-8 once per block read; a block the caller expected is not read
//! at all). Unknown names are still read and checked, so a body that is not Prometheus text
//! at all still fails. Long runs are searched eight bytes at a time, skipped lines with one
//! vectorised search for their end. What a sample means (units, grouping, drop rules) is not
//! its business.

use std::borrow::Cow;

use super::error::SyntaxError;
use super::number::{read_float, read_timestamp};

/// The series the decoder reads, as upstream does (spec §1.7); anything else is
/// [`Family::Other`], only syntax-checked, unless it is an unread kubelet family
/// ([`unread_starting_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    NodeCpu,
    NodeMemory,
    ContainerCpu,
    ContainerMemory,
    ContainerStart,
    Other,
}

/// The kubelet's `/metrics/resource` families the decoder does not read, by first byte: their
/// lines (nearly half the sample lines of a kubelet body) are skipped unread.
fn unread_starting_with(byte: u8) -> &'static [&'static [u8]] {
    match byte {
        b'p' => &[
            b"pod_cpu_usage_seconds_total",
            b"pod_memory_working_set_bytes",
            b"pod_swap_usage_bytes",
        ],
        b'c' => &[b"container_swap_usage_bytes"],
        b'n' => &[b"node_swap_usage_bytes"],
        _ => &[],
    }
}

/// Whether `rest` starts with the metric name `name`, exactly: the name runs to `{`, a blank
/// or the end of the line, so `node_cpu_usage_seconds_total_foo` is another name.
fn starts_with_name(rest: &[u8], name: &[u8]) -> bool {
    rest.starts_with(name) && matches!(rest.get(name.len()), None | Some(b'{' | b' ' | b'\t' | b'\n'))
}

impl Family {
    /// The metric name, empty for `Other`.
    fn name(self) -> &'static [u8] {
        match self {
            Family::NodeCpu => b"node_cpu_usage_seconds_total",
            Family::NodeMemory => b"node_memory_working_set_bytes",
            Family::ContainerCpu => b"container_cpu_usage_seconds_total",
            Family::ContainerMemory => b"container_memory_working_set_bytes",
            Family::ContainerStart => b"container_start_time_seconds",
            Family::Other => b"",
        }
    }

    /// The families whose name starts with `byte`, so that a line of another family is
    /// usually told apart by its first byte.
    fn starting_with(byte: u8) -> &'static [Family] {
        match byte {
            b'c' => &[Family::ContainerCpu, Family::ContainerMemory, Family::ContainerStart],
            b'n' => &[Family::NodeCpu, Family::NodeMemory],
            _ => &[],
        }
    }

    /// Whether this family is identified by `label`: container families by all three names,
    /// node families by none.
    fn wants(self, label: Label) -> bool {
        let container = matches!(
            self,
            Family::ContainerCpu | Family::ContainerMemory | Family::ContainerStart
        );
        container && label != Label::Other
    }
}

/// The labels the decoder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Namespace,
    Pod,
    Container,
    Other,
}

/// The identifying labels of a sample; `None` when absent or empty. A repeated label: the last
/// one wins.
#[derive(Debug, Default)]
pub(super) struct Names<'a> {
    pub(super) namespace: Option<Cow<'a, str>>,
    pub(super) pod: Option<Cow<'a, str>>,
    pub(super) container: Option<Cow<'a, str>>,
}

/// What a sample line's labels say.
#[derive(Debug)]
pub(super) enum Labels<'a> {
    /// The label block is byte for byte the one the caller expected, so it names what that
    /// block named; it was not read again.
    AsExpected,
    /// The block was read: its names, and the block as written (`{` through `}`, empty when
    /// the line has none) for the caller to expect next time.
    Read { names: Names<'a>, block: &'a [u8] },
}

/// Where the value of a wanted label is in the body, between its quotes.
#[derive(Debug, Clone, Copy)]
struct Value {
    start: usize,
    end: usize,
    escaped: bool,
}

impl Value {
    /// The value, unescaped, from `block`, the label block (starting at body offset
    /// `block_start`) checked as UTF-8. An empty value counts as a missing label.
    fn text(self, block: &str, block_start: usize) -> Option<Cow<'_, str>> {
        // The quotes around it are ASCII, so both ends are character boundaries.
        let text = block.get(self.start.checked_sub(block_start)?..self.end.checked_sub(block_start)?)?;
        match (text.is_empty(), self.escaped) {
            (true, _) => None,
            (false, false) => Some(Cow::Borrowed(text)),
            (false, true) => Some(Cow::Owned(unescape(text))),
        }
    }
}

/// The wanted labels of a block as it is read; a repeated label: the last one wins.
#[derive(Debug, Default)]
struct Found {
    namespace: Option<Value>,
    pod: Option<Value>,
    container: Option<Value>,
    /// The end of the last value read (the block's start before any).
    values_end: usize,
}

/// One sample line, as written (no unit conversion).
#[derive(Debug)]
pub(super) struct Sample<'a> {
    pub(super) family: Family,
    pub(super) labels: Labels<'a>,
    pub(super) value: f64,
    pub(super) timestamp_ms: Option<i64>,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The bytes of `word` equal to `byte`, flagged in their high bit. Only the lowest flag is
/// sure: a borrow out of a true match can flag the bytes above it.
fn flag(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Where the first of `bytes` is, eight bytes at a time.
fn find_any<const N: usize>(hay: &[u8], bytes: [u8; N]) -> Option<usize> {
    let mut chunks = hay.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let found = bytes.iter().fold(0, |found, &b| found | flag(word, b));
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let tail = chunks.remainder().iter().position(|c| bytes.contains(c))?;
    Some(offset + tail)
}

/// Byte classes for names: metric names are `[a-zA-Z0-9_:]`, label names `[a-zA-Z0-9_]`
/// (neither may start with a digit, checked apart).
const METRIC_NAME: u8 = 1;
const LABEL_NAME: u8 = 2;
static CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        if b.is_ascii_alphanumeric() || b == b'_' {
            table[i] = METRIC_NAME | LABEL_NAME;
        } else if b == b':' {
            table[i] = METRIC_NAME;
        }
        i += 1;
    }
    table
};

fn is_metric_name(name: &[u8]) -> bool {
    name.first().is_some_and(|b| !b.is_ascii_digit()) && name.iter().all(|&b| CLASS[usize::from(b)] & METRIC_NAME != 0)
}

/// Reads the samples of a body in order, skipping blank lines, comments (`# HELP`, `# TYPE`
/// or any other) and the lines of unread kubelet families ([`unread_starting_with`]). It walks the body once: each scan
/// stops at the end of its line.
pub(super) struct Reader<'a> {
    body: &'a [u8],
    pos: usize,
    /// The previous sample's family: kubelets group samples by family, so it is checked first.
    last: Family,
}

impl<'a> Reader<'a> {
    pub(super) fn new(body: &'a [u8]) -> Self {
        Reader {
            body,
            pos: 0,
            // Only a first guess: a kubelet's body starts with the container families.
            last: Family::ContainerCpu,
        }
    }

    /// The next sample, `Ok(None)` at the end of the body. An error comes with the offset of
    /// its line's first byte.
    ///
    /// `expected_block` gives, for a family, the label block the caller guesses the line
    /// repeats (empty for no guess). Kubelets write each family's series in the same order,
    /// so one comparison of borrowed bytes usually replaces reading the labels: the same
    /// bytes always read as the same names, and the caller already has those.
    ///
    /// Always inlined into its one caller's loop: returning the sample through memory and
    /// the call itself cost 7% of a decode (callgrind, the fleet body).
    #[inline(always)]
    pub(super) fn next_sample(
        &mut self,
        expected_block: impl FnOnce(Family) -> &'a [u8],
    ) -> Result<Option<Sample<'a>>, (SyntaxError, usize)> {
        loop {
            let line_start = self.pos;
            self.skip_blanks();
            match self.peek() {
                None => return Ok(None),
                Some(b'\n') => self.pos += 1,
                Some(b'#') => self.skip_line(),
                Some(_) => {
                    let family = match self.wanted_family() {
                        Some(family) => family,
                        None => match self.other_name() {
                            Ok(Some(())) => Family::Other,
                            Ok(None) => {
                                self.skip_line();
                                continue;
                            }
                            Err(e) => return Err((e, line_start)),
                        },
                    };
                    return self
                        .sample(family, expected_block)
                        .map(Some)
                        .map_err(|e| (e, line_start));
                }
            }
        }
    }

    /// Skips through the end of the line, unread: comments (a fifth of a kubelet body) and
    /// the samples of unread kubelet families. One vectorised search for the newline.
    fn skip_line(&mut self) {
        let rest = self.rest();
        self.pos += memchr::memchr(b'\n', rest).map_or(rest.len(), |at| at + 1);
    }

    /// The wanted family whose name is at the cursor, which it then moves past; `None` for
    /// any other line. The name must match exactly: it runs to `{`, a blank or the end of the
    /// line, so `node_cpu_usage_seconds_total_foo` is another family. The previous line's
    /// family is the likeliest. Also inlined: it runs for every sample line.
    #[inline(always)]
    fn wanted_family(&mut self) -> Option<Family> {
        let rest = self.rest();
        let is = |family: Family| starts_with_name(rest, family.name());
        let family = if is(self.last) {
            self.last
        } else {
            let first = rest.first().copied().unwrap_or_default();
            let family = Family::starting_with(first).iter().copied().find(|&f| is(f))?;
            self.last = family;
            family
        };
        self.pos += family.name().len();
        Some(family)
    }

    /// The name of a line that is not of a wanted family: `Ok(None)` (cursor unmoved) for an
    /// unread kubelet family, whose line is skipped; else checked and moved past.
    fn other_name(&mut self) -> Result<Option<()>, SyntaxError> {
        let rest = self.rest();
        let first = rest.first().copied().unwrap_or_default();
        if unread_starting_with(first)
            .iter()
            .any(|name| starts_with_name(rest, name))
        {
            return Ok(None);
        }
        let len = find_any(rest, [b'{', b' ', b'\t', b'\n']).unwrap_or(rest.len());
        let name = rest.get(..len).unwrap_or_default();
        if !is_metric_name(name) {
            return Err(SyntaxError::MetricName);
        }
        self.pos += len;
        Ok(Some(()))
    }

    fn peek(&self) -> Option<u8> {
        self.body.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.peek() == Some(byte);
        self.pos += usize::from(hit);
        hit
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn rest(&self) -> &'a [u8] {
        self.body.get(self.pos..).unwrap_or_default()
    }

    /// The run of label-name bytes at the cursor.
    fn take_label_name(&mut self) -> &'a [u8] {
        let rest = self.rest();
        let len = rest
            .iter()
            .position(|&b| CLASS[usize::from(b)] & LABEL_NAME == 0)
            .unwrap_or(rest.len());
        self.pos += len;
        rest.get(..len).unwrap_or_default()
    }

    /// The rest of a sample line of `family`, after its name.
    ///
    /// Always inlined, as [`Self::next_sample`] is, and so are the per-line steps it calls
    /// (name, label block, value, timestamp): the whole line is read in the decode loop with
    /// its cursor in registers. Left to itself the compiler split them differently in each
    /// build, at up to 12% more instructions per decode (callgrind, the fleet body).
    #[inline(always)]
    fn sample(
        &mut self,
        family: Family,
        expected_block: impl FnOnce(Family) -> &'a [u8],
    ) -> Result<Sample<'a>, SyntaxError> {
        self.skip_blanks();
        let labels = self.label_block(family, expected_block)?;
        self.skip_blanks();
        let (value, len) = read_float(self.rest())?;
        self.pos += len;
        self.skip_blanks();
        let (timestamp_ms, len) = read_timestamp(self.rest())?;
        self.pos += len;
        self.skip_blanks();
        match self.peek() {
            None => {}
            Some(b'\n') => self.pos += 1,
            Some(_) => return Err(SyntaxError::TrailingText),
        }
        Ok(Sample {
            family,
            labels,
            value,
            timestamp_ms,
        })
    }

    /// The label block at the cursor, if any. A block that starts with the expected one is
    /// that block: reading stops at the first `}` outside a quoted value, so the bytes after
    /// it cannot change what the block says.
    #[inline(always)]
    fn label_block(
        &mut self,
        family: Family,
        expected_block: impl FnOnce(Family) -> &'a [u8],
    ) -> Result<Labels<'a>, SyntaxError> {
        let start = self.pos;
        if self.peek() != Some(b'{') {
            return Ok(Labels::Read {
                names: Names::default(),
                block: &[],
            });
        }
        let expected = match family {
            Family::Other => &[],
            _ => expected_block(family),
        };
        if !expected.is_empty() && self.rest().starts_with(expected) {
            self.pos += expected.len();
            return Ok(Labels::AsExpected);
        }
        self.pos += 1;
        let mut found = Found {
            values_end: start,
            ..Found::default()
        };
        let read = self.labels(family, &mut found);
        // Only label values may hold non-ASCII bytes (anything else is a syntax error), so
        // checking the block once checks every value read so far. A value that is not UTF-8
        // fails the line before a syntax error after it, as value by value would.
        let checked = match read {
            Ok(()) => self.pos,
            Err(_) => found.values_end,
        };
        let text = self
            .body
            .get(start..checked)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .ok_or(SyntaxError::LabelValueUtf8)?;
        read?;
        let block = self.body.get(start..self.pos).unwrap_or_default();
        let names = Names {
            namespace: found.namespace.and_then(|v| v.text(text, start)),
            pod: found.pod.and_then(|v| v.text(text, start)),
            container: found.container.and_then(|v| v.text(text, start)),
        };
        Ok(Labels::Read { names, block })
    }

    /// After `{`: `name="value"` pairs, comma-separated, optional trailing comma, then `}`.
    fn labels(&mut self, family: Family, found: &mut Found) -> Result<(), SyntaxError> {
        loop {
            self.skip_blanks();
            if self.eat(b'}') {
                return Ok(());
            }
            let label = self.label_name()?;
            let value = self.label_value()?;
            found.values_end = value.end;
            if family.wants(label) {
                match label {
                    Label::Namespace => found.namespace = Some(value),
                    Label::Pod => found.pod = Some(value),
                    Label::Container => found.container = Some(value),
                    Label::Other => {}
                }
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

    /// A label's name, `=` and the value's opening quote.
    fn label_name(&mut self) -> Result<Label, SyntaxError> {
        const EXACT: [(&[u8], Label); 3] = [
            (b"container=\"", Label::Container),
            (b"namespace=\"", Label::Namespace),
            (b"pod=\"", Label::Pod),
        ];
        let rest = self.rest();
        if let Some((prefix, label)) = EXACT.iter().find(|(prefix, _)| rest.starts_with(prefix)) {
            self.pos += prefix.len();
            return Ok(*label);
        }
        let name = self.take_label_name();
        if name.first().is_none_or(u8::is_ascii_digit) {
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
        Ok(match name {
            b"namespace" => Label::Namespace,
            b"pod" => Label::Pod,
            b"container" => Label::Container,
            _ => Label::Other,
        })
    }

    /// After the opening quote, through the closing one: where the value is, as written.
    fn label_value(&mut self) -> Result<Value, SyntaxError> {
        let start = self.pos;
        let mut escaped = false;
        loop {
            let Some(at) = find_any(self.rest(), [b'"', b'\\', b'\n']) else {
                return Err(SyntaxError::UnterminatedLabelValue);
            };
            self.pos += at;
            match (self.peek(), self.body.get(self.pos + 1)) {
                (Some(b'"'), _) => break,
                (Some(b'\\'), Some(&next)) if next != b'\n' => {
                    escaped = true;
                    self.pos += 2;
                }
                _ => return Err(SyntaxError::UnterminatedLabelValue),
            }
        }
        let end = self.pos;
        self.pos += 1;
        Ok(Value { start, end, escaped })
    }
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
    fn find_any_reports_the_first_of_its_bytes() {
        let hay = b"0123456789abcdef\"\\xyz";
        for start in 0..hay.len() {
            let want = hay[start..].iter().position(|&b| b == b'"' || b == b'\\');
            assert_eq!(find_any(&hay[start..], [b'"', b'\\']), want, "from {start}");
        }
        // A borrow out of a matching byte must not hide a later byte or invent an earlier one.
        assert_eq!(find_any(b"\x01\x01\"\x01\x01\x01\x01\x01", [b'"', b'\x00']), Some(2));
        assert_eq!(find_any(b"aaaaaaaaaaaaaaaaaaaaaaa", [b'"', b'\\']), None);
    }

    #[test]
    fn unknown_escapes_are_kept_as_written() {
        assert_eq!(unescape(r#"a\\b\"c\nd\te"#), "a\\b\"c\nd\\te");
    }
}
