//! How a body fails to decode: the line and what was wrong with it. Any malformed line fails
//! the whole body, as upstream's parser does, except a line of a kubelet family the decoder
//! does not read (pod and swap series), which is skipped unread.

/// Why a body could not be decoded; the whole node's batch is dropped, as upstream does.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
#[error("failed parsing metrics: line {line}: {kind}")]
pub struct DecodeError {
    /// 1-based line number in the body.
    pub line: usize,
    pub kind: SyntaxError,
}

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
