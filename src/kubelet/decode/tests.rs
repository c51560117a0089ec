//! Decoding behaviour on hand-written bodies: syntax, names, drop rules, errors.

use super::*;
use std::borrow::Cow;

use super::fixture_tests::{container, decoded, error, ms, DEFAULT_TIME};

const CPU: &str = "container_cpu_usage_seconds_total";
const MEM: &str = "container_memory_working_set_bytes";

#[test]
fn empty_body_is_an_empty_batch() {
    assert_eq!(decoded(b""), NodeBatch::default());
    assert_eq!(decoded(b"\n\n  \n"), NodeBatch::default());
}

#[test]
fn label_order_spacing_and_trailing_comma_do_not_matter() {
    let body = format!(
        "{CPU}{{pod=\"p\",container=\"c\",namespace=\"ns\"}} 1 1000\n\
         {MEM} {{ namespace = \"ns\" ,\tcontainer=\"c\", pod=\"p\", }}\t2\t1000  \n"
    );
    let batch = decoded(body.as_bytes());
    let point = Point {
        start_time: Timestamp::ZERO,
        timestamp: ms(1000),
        cpu_core_nanoseconds: 1_000_000_000,
        memory_bytes: 2,
    };
    assert_eq!(batch.containers, vec![container("ns", "p", "c", point)]);
}

#[test]
fn escaped_label_values_are_unescaped_and_owned() {
    let body = format!(
        "{CPU}{{namespace=\"ns\",pod=\"a\\\"b\\\\c\\nd\",container=\"c\"}} 1\n\
         {MEM}{{namespace=\"ns\",pod=\"a\\\"b\\\\c\\nd\",container=\"c\"}} 1\n"
    );
    let batch = decoded(body.as_bytes());
    assert_eq!(batch.containers.len(), 1);
    assert!(matches!(&batch.containers[0].pod, Cow::Owned(p) if p == "a\"b\\c\nd"));
    assert!(matches!(batch.containers[0].namespace, Cow::Borrowed("ns")));
}

#[test]
fn comments_and_unknown_series_are_ignored() {
    let body = "# HELP anything at all { \" \n#TYPE x counter\n  # indented comment\n\
                unknown_metric{a=\"b\"} NaN\nscrape_error 1\n\
                node_cpu_usage_seconds_total 1\nnode_memory_working_set_bytes 1\n";
    let want = Point {
        start_time: Timestamp::ZERO,
        timestamp: DEFAULT_TIME,
        cpu_core_nanoseconds: 1_000_000_000,
        memory_bytes: 1,
    };
    assert_eq!(decoded(body.as_bytes()).node, Some(want));
}

#[test]
fn metric_names_match_exactly() {
    let body = "node_cpu_usage_seconds_total_foo 1\nnode_memory_working_set_bytes 1\n\
                xnode_cpu_usage_seconds_total 1\n";
    assert_eq!(decoded(body.as_bytes()).node, None);
}

#[test]
fn nan_infinite_or_negative_values_drop_the_series_not_the_body() {
    for bad in ["NaN", "+Inf", "-Inf", "-1", "nan", "-infinity"] {
        let body = format!(
            "node_cpu_usage_seconds_total {bad}\nnode_memory_working_set_bytes 1\n\
             {CPU}{{namespace=\"n\",pod=\"p\",container=\"a\"}} 1\n\
             {MEM}{{namespace=\"n\",pod=\"p\",container=\"a\"}} 1\n\
             {CPU}{{namespace=\"n\",pod=\"p\",container=\"b\"}} 1\n\
             {MEM}{{namespace=\"n\",pod=\"p\",container=\"b\"}} {bad}\n\
             {CPU}{{namespace=\"n\",pod=\"q\",container=\"a\"}} 1\n\
             {MEM}{{namespace=\"n\",pod=\"q\",container=\"a\"}} 1\n"
        );
        let batch = decoded(body.as_bytes());
        assert_eq!(batch.node, None, "{bad}");
        let pods: Vec<_> = batch.containers.iter().map(|c| c.pod.as_ref()).collect();
        assert_eq!(pods, ["q"], "{bad}");
    }
}

#[test]
fn a_later_duplicate_line_wins() {
    let body = "node_cpu_usage_seconds_total 1 1000\nnode_memory_working_set_bytes 1 1000\n\
                node_cpu_usage_seconds_total 2 3000\nnode_memory_working_set_bytes 0 2000\n\
                node_memory_working_set_bytes 5 2000\n";
    let want = Point {
        start_time: Timestamp::ZERO,
        timestamp: ms(2000),
        cpu_core_nanoseconds: 2_000_000_000,
        memory_bytes: 5,
    };
    assert_eq!(decoded(body.as_bytes()).node, Some(want));
}

#[test]
fn container_with_only_a_start_time_drops_its_pod_but_swap_alone_does_not() {
    let body = format!(
        "{CPU}{{namespace=\"n\",pod=\"p\",container=\"a\"}} 1\n\
         {MEM}{{namespace=\"n\",pod=\"p\",container=\"a\"}} 1\n\
         container_swap_usage_bytes{{namespace=\"n\",pod=\"p\",container=\"ghost\"}} 0\n\
         {CPU}{{namespace=\"n\",pod=\"q\",container=\"a\"}} 1\n\
         {MEM}{{namespace=\"n\",pod=\"q\",container=\"a\"}} 1\n\
         container_start_time_seconds{{namespace=\"n\",pod=\"q\",container=\"init\"}} 1\n"
    );
    let pods: Vec<_> = decoded(body.as_bytes()).containers.into_iter().map(|c| c.pod).collect();
    assert_eq!(pods, ["p"]);
}

#[test]
fn lines_missing_a_name_label_are_skipped() {
    let body = format!(
        "{CPU}{{namespace=\"n\",pod=\"p\"}} 1\n{MEM}{{pod=\"p\",container=\"a\"}} 1\n\
         {CPU}{{namespace=\"n\",pod=\"\",container=\"a\"}} 1\npod_cpu_usage_seconds_total 1\n"
    );
    assert_eq!(decoded(body.as_bytes()), NodeBatch::default());
}

#[test]
fn malformed_lines_fail_the_body_and_name_the_line() {
    for (line, kind) in [
        (
            "container_cpu_usage_seconds_total{namespace=\"n\",pod=\"p",
            SyntaxError::UnterminatedLabelValue,
        ),
        (
            "container_cpu_usage_seconds_total{namespace=\"n\"",
            SyntaxError::LabelSyntax,
        ),
        (
            "container_cpu_usage_seconds_total{namespace=\"n\"} ",
            SyntaxError::MissingValue,
        ),
        ("node_cpu_usage_seconds_total", SyntaxError::MissingValue),
        ("node_cpu_usage_seconds_total 1 1000 x", SyntaxError::TrailingText),
        ("node_cpu_usage_seconds_total 1 10.5", SyntaxError::Timestamp),
        ("node_cpu_usage_seconds_total one", SyntaxError::Value),
        ("node_cpu_usage_seconds_total 1e999", SyntaxError::ValueOutOfRange),
        ("x{a=b} 1", SyntaxError::LabelSyntax),
        ("x{a=\"b\",,} 1", SyntaxError::LabelName),
        ("x{1a=\"b\"} 1", SyntaxError::LabelName),
        ("x{a=\"b\" c=\"d\"} 1", SyntaxError::LabelSyntax),
        ("1x 1", SyntaxError::MetricName),
        ("x-y 1", SyntaxError::MetricName),
        ("{a=\"b\"} 1", SyntaxError::MetricName),
    ] {
        let body = format!("\nnode_memory_working_set_bytes 1\n{line}\n");
        assert_eq!(error(body.as_bytes()), DecodeError { line: 3, kind }, "{line}");
    }
}

#[test]
fn non_utf8_outside_label_values_is_ignored() {
    let mut body = b"# HELP \xff\xfe comments are not read\n".to_vec();
    let labels = "{namespace=\"n\u{e9}\",pod=\"p\",container=\"c\"}";
    body.extend_from_slice(format!("{CPU}{labels} 1\n{MEM}{labels} 1\n").as_bytes());
    let batch = decoded(&body);
    assert_eq!(batch.containers.len(), 1);
    assert_eq!(batch.containers[0].namespace, "n\u{e9}");
}

#[test]
fn non_utf8_label_values_fail_the_body() {
    let body = b"x{a=\"\xff\"} 1\n";
    assert_eq!(error(body).kind, SyntaxError::LabelValueUtf8);
}

#[test]
fn truncated_line_fails_the_body() {
    let body = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/kubelet/decode_test-01-normal.txt"
    ));
    let label = b"namespace=\"kube-sys";
    let mid_label = body.windows(label.len()).position(|w| w == label).unwrap() + label.len();
    let err = error(&body[..mid_label]);
    assert_eq!(
        err,
        DecodeError {
            line: 4,
            kind: SyntaxError::UnterminatedLabelValue
        }
    );
    let after_labels = body.iter().position(|&b| b == b'}').unwrap() + 1;
    let err = error(&body[..after_labels]);
    assert_eq!(
        err,
        DecodeError {
            line: 4,
            kind: SyntaxError::MissingValue
        }
    );
}
