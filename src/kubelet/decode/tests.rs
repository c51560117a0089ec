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

/// Four containers in two pods, each family listing them in its own order and spelling: the
/// fast path (a line repeating the guessed entry's label block) and the map must agree.
#[test]
fn families_in_another_order_or_spelling_group_the_same() {
    let body = format!(
        "{CPU}{{container=\"a\",namespace=\"n\",pod=\"p\"}} 1 1000\n\
         {CPU}{{container=\"b\",namespace=\"n\",pod=\"p\"}} 2 1000\n\
         {CPU}{{container=\"a\",namespace=\"n\",pod=\"q\"}} 3 1000\n\
         {CPU}{{container=\"b\",namespace=\"n\",pod=\"q\"}} 4 1000\n\
         {MEM}{{container=\"b\",namespace=\"n\",pod=\"q\"}} 40 2000\n\
         {MEM}{{container=\"a\",namespace=\"n\",pod=\"q\"}} 30 2000\n\
         {MEM}{{pod=\"p\",namespace=\"n\",container=\"b\"}} 20 2000\n\
         {MEM}{{container=\"a\", namespace=\"n\", pod=\"p\"}} 10 2000\n\
         container_start_time_seconds{{container=\"a\",namespace=\"n\",pod=\"q\"}} 5\n\
         container_start_time_seconds{{container=\"b\",namespace=\"n\",pod=\"q\"}} 6\n\
         container_start_time_seconds{{container=\"a\",namespace=\"n\",pod=\"p\"}} 7\n\
         container_start_time_seconds{{container=\"b\",namespace=\"n\",pod=\"p\"}} 8\n"
    );
    let point = |cpu: u64, memory: u64, start: i64| Point {
        start_time: Timestamp::from_unix_seconds(start),
        timestamp: ms(2000),
        cpu_core_nanoseconds: cpu * 1_000_000_000,
        memory_bytes: memory,
    };
    let want = vec![
        container("n", "p", "a", point(1, 10, 7)),
        container("n", "p", "b", point(2, 20, 8)),
        container("n", "q", "a", point(3, 30, 5)),
        container("n", "q", "b", point(4, 40, 6)),
    ];
    assert_eq!(decoded(body.as_bytes()).containers, want);
}

#[test]
fn pod_series_wrap_around_to_the_first_pod() {
    let body = "pod_cpu_usage_seconds_total{namespace=\"n\",pod=\"p\"} 1 1000\n\
                pod_cpu_usage_seconds_total{namespace=\"n\",pod=\"q\"} 2 1000\n\
                pod_memory_working_set_bytes{namespace=\"n\",pod=\"p\"} 10 2000\n\
                pod_memory_working_set_bytes{namespace=\"n\",pod=\"q\"} 20 2000\n\
                pod_cpu_usage_seconds_total{namespace=\"n\",pod=\"p\"} 3 3000\n";
    let pod = |name: &str, cpu: u64, memory: u64, at: i64| PodSample {
        namespace: "n".into(),
        pod: name.to_owned().into(),
        timestamp: ms(at),
        cpu_core_nanoseconds: Some(cpu * 1_000_000_000),
        memory_bytes: Some(memory),
        swap_bytes: None,
    };
    let want = vec![pod("p", 3, 10, 3000), pod("q", 2, 20, 2000)];
    assert_eq!(decoded(body.as_bytes()).pods, want);
}

#[test]
fn a_repeated_escaped_block_is_the_same_owned_container() {
    let labels = "{container=\"c\",namespace=\"ns\",pod=\"a\\\"b\"}";
    let body = format!("{CPU}{labels} 1\n{MEM}{labels} 2\n{CPU}{labels} 3\n");
    let batch = decoded(body.as_bytes());
    assert_eq!(batch.containers.len(), 1);
    assert!(matches!(&batch.containers[0].pod, Cow::Owned(p) if p == "a\"b"));
    assert_eq!(batch.containers[0].point.cpu_core_nanoseconds, 3_000_000_000);
    assert_eq!(batch.containers[0].point.memory_bytes, 2);
}

#[test]
fn a_repeated_block_still_checks_the_rest_of_its_line() {
    let labels = "{container=\"c\",namespace=\"n\",pod=\"p\"}";
    for (line, kind) in [
        (format!("{MEM}{labels}x 1"), SyntaxError::Value),
        (format!("{MEM}{labels}"), SyntaxError::MissingValue),
        (format!("{MEM}{labels} 1 2 3"), SyntaxError::TrailingText),
        (format!("{MEM}{labels},pod=\"q\"}} 1"), SyntaxError::Value),
    ] {
        let body = format!("{CPU}{labels} 1\n{line}\n");
        let e = error(body.as_bytes());
        assert_eq!((e.line, e.kind), (2, kind), "{line}");
    }
}

#[test]
fn a_pod_line_does_not_take_a_container_block() {
    // The same bytes name a container in a container family and a pod in a pod family.
    let labels = "{container=\"c\",namespace=\"n\",pod=\"p\"}";
    let body = format!(
        "{CPU}{labels} 1\n{MEM}{labels} 2\npod_cpu_usage_seconds_total{labels} 5\n\
         pod_memory_working_set_bytes{{namespace=\"n\",pod=\"p\"}} 6\n"
    );
    let batch = decoded(body.as_bytes());
    assert_eq!(batch.containers.len(), 1);
    let pods: Vec<_> = batch
        .pods
        .iter()
        .map(|p| (p.pod.as_ref(), p.cpu_core_nanoseconds, p.memory_bytes))
        .collect();
    assert_eq!(pods, [("p", Some(5_000_000_000), Some(6))]);
}

#[test]
fn a_non_utf8_value_fails_its_line_before_a_later_syntax_error() {
    // Values are checked once per label block; the first fault of the line still decides.
    let cases: [(&[u8], SyntaxError); 5] = [
        (b"x{a=\"\xff\",b=c} 1\n", SyntaxError::LabelValueUtf8),
        (b"x{a=\"\xff\",b=\"c\n", SyntaxError::LabelValueUtf8),
        (b"x{a=\"ok\",b=\"\xff\n", SyntaxError::UnterminatedLabelValue),
        (b"x{a=\"ok\",\xff=\"c\"} 1\n", SyntaxError::LabelName),
        (b"x{a=\"\xc3\xa9\"} one\n", SyntaxError::Value),
    ];
    for (line, kind) in cases {
        let mut body = b"node_memory_working_set_bytes 1\n".to_vec();
        body.extend_from_slice(line);
        assert_eq!(
            error(&body),
            DecodeError { line: 2, kind },
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn wanted_lines_after_skipped_comments_are_read() {
    // Comment lines are skipped whole, whatever they hold, including at the end of the body
    // without a newline.
    let body = format!(
        "# HELP {CPU} {{container=\"x\"}} \"quoted\n#\n# TYPE {CPU} counter\n\
         {CPU}{{container=\"c\",namespace=\"n\",pod=\"p\u{e9}\"}} 1.5 1000\n\
         # HELP {MEM} {{\n{MEM}{{container=\"c\",namespace=\"n\",pod=\"p\u{e9}\"}} 2 1000\n# trailing"
    );
    let point = Point {
        start_time: Timestamp::ZERO,
        timestamp: ms(1000),
        cpu_core_nanoseconds: 1_500_000_000,
        memory_bytes: 2,
    };
    assert_eq!(
        decoded(body.as_bytes()).containers,
        vec![container("n", "p\u{e9}", "c", point)]
    );
}

#[test]
fn crlf_line_ends_fail_the_body_as_before() {
    // A carriage return is not a blank in the text format: it is part of the last token.
    let body = b"node_cpu_usage_seconds_total 1\r\nnode_memory_working_set_bytes 1\n";
    assert_eq!(
        error(body),
        DecodeError {
            line: 1,
            kind: SyntaxError::Value
        }
    );
    let body = b"node_cpu_usage_seconds_total 1 1000\r\n";
    assert_eq!(
        error(body),
        DecodeError {
            line: 1,
            kind: SyntaxError::Timestamp
        }
    );
}
