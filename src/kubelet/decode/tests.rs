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
        ("node_cpu_usage_seconds_total{a=b} 1", SyntaxError::LabelSyntax),
        ("node_cpu_usage_seconds_total{a=\"b\",,} 1", SyntaxError::LabelName),
        ("node_cpu_usage_seconds_total{1a=\"b\"} 1", SyntaxError::LabelName),
        (
            "container_start_time_seconds{a=\"b\" c=\"d\"} 1",
            SyntaxError::LabelSyntax,
        ),
        ("x{a=b} 1", SyntaxError::LabelSyntax),
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
    let body = b"node_cpu_usage_seconds_total{a=\"\xff\"} 1\n";
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
fn a_non_utf8_value_fails_its_line_before_a_later_syntax_error() {
    // Values are checked once per label block; the first fault of the line still decides.
    let cases: [(&[u8], SyntaxError); 5] = [
        (b"{a=\"\xff\",b=c} 1\n", SyntaxError::LabelValueUtf8),
        (b"{a=\"\xff\",b=\"c\n", SyntaxError::LabelValueUtf8),
        (b"{a=\"ok\",b=\"\xff\n", SyntaxError::UnterminatedLabelValue),
        (b"{a=\"ok\",\xff=\"c\"} 1\n", SyntaxError::LabelName),
        (b"{a=\"\xc3\xa9\"} one\n", SyntaxError::Value),
    ];
    for (line, kind) in cases {
        let mut body = b"node_memory_working_set_bytes 1\nnode_cpu_usage_seconds_total".to_vec();
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

/// A node with one complete container in pod `p`: the lines every skipping test wraps.
fn wanted_lines() -> String {
    let labels = "{container=\"c\",namespace=\"n\",pod=\"p\"}";
    format!(
        "{CPU}{labels} 1 1000\n{MEM}{labels} 2 1000\n\
         node_cpu_usage_seconds_total 3 1000\nnode_memory_working_set_bytes 4 1000\n"
    )
}

fn wanted_batch() -> NodeBatch<'static> {
    let point = |cpu: u64, memory: u64| Point {
        start_time: Timestamp::ZERO,
        timestamp: ms(1000),
        cpu_core_nanoseconds: cpu * 1_000_000_000,
        memory_bytes: memory,
    };
    NodeBatch {
        node: Some(point(3, 4)),
        containers: vec![container("n", "p", "c", point(1, 2))],
    }
}

#[test]
fn malformed_lines_of_unread_kubelet_families_are_skipped_unread() {
    // Upstream's parser would reject these bodies; we do not read those families at all.
    let skipped = [
        "pod_cpu_usage_seconds_total{namespace=\"n\",pod=\"p\" 1",
        "pod_memory_working_set_bytes{namespace=\"n\",pod=\"p\"} one",
        "pod_swap_usage_bytes{namespace=\"n\",pod=\"p\u{e9}",
        "container_swap_usage_bytes{container=\"c\",namespace=\"n\",pod=\"p\"} 1 10.5",
        "node_swap_usage_bytes -",
        "node_swap_usage_bytes",
    ];
    for line in skipped {
        let body = format!("{line}\n{}{line}\n", wanted_lines());
        assert_eq!(decoded(body.as_bytes()), wanted_batch(), "{line}");
    }
    let mut body = b"pod_cpu_usage_seconds_total{namespace=\"\xff\"} 1\n".to_vec();
    body.extend_from_slice(wanted_lines().as_bytes());
    assert_eq!(decoded(&body), wanted_batch());
}

#[test]
fn malformed_lines_with_unknown_names_still_fail_the_body() {
    // So that a body that is not Prometheus text at all is a decode error, not an empty scrape.
    for (line, kind) in [
        ("garbage", SyntaxError::MissingValue),
        ("this is not prometheus text", SyntaxError::Value),
        ("<html><body>502 Bad Gateway</body></html>", SyntaxError::MetricName),
        ("pod_swap_usage_bytes_x{a=b} 1", SyntaxError::LabelSyntax),
    ] {
        let body = format!("{}{line}\n", wanted_lines());
        assert_eq!(error(body.as_bytes()), DecodeError { line: 5, kind }, "{line}");
    }
}

#[test]
fn a_malformed_line_of_a_read_family_after_skipped_lines_names_its_line() {
    let body = format!(
        "pod_cpu_usage_seconds_total{{namespace=\"n\",pod=\"p\"}} 1\n\
         container_swap_usage_bytes{{bad\n\
         # HELP x\n\
         {CPU}{{container=\"c\",namespace=\"n\",pod=\"p\"}} one\n{}",
        wanted_lines()
    );
    let want = DecodeError {
        line: 4,
        kind: SyntaxError::Value,
    };
    assert_eq!(error(body.as_bytes()), want);
}

#[test]
fn a_name_extending_a_read_family_is_another_family() {
    let longer = [
        "container_cpu_usage_seconds_total_x{container=\"c\",namespace=\"n\",pod=\"p\"} 9",
        "container_memory_working_set_bytes:x{container=\"c\",namespace=\"n\",pod=\"p\"} 9",
        "container_start_time_seconds_total{container=\"c\",namespace=\"n\",pod=\"p\"} 9",
        "node_cpu_usage_seconds_total_x 9",
        "node_memory_working_set_bytesx{} 9",
    ];
    for line in longer {
        let body = format!("{}{line}\n", wanted_lines());
        assert_eq!(decoded(body.as_bytes()), wanted_batch(), "{line}");
    }
}

#[test]
fn a_read_family_after_many_skipped_lines_is_read() {
    let mut body = String::new();
    for i in 0..500 {
        body.push_str(&format!(
            "pod_cpu_usage_seconds_total{{namespace=\"n\",pod=\"p{i}\"}} {i} 1000\n\
             container_swap_usage_bytes{{container=\"c\",namespace=\"n\",pod=\"p{i}\"}} 0 1000\n"
        ));
    }
    body.push_str(&wanted_lines());
    assert_eq!(decoded(body.as_bytes()), wanted_batch());
}

#[test]
fn a_skipped_last_line_needs_no_newline() {
    for last in [
        "pod_swap_usage_bytes{namespace=\"n\",pod=\"p\"} 0",
        "pod_swap_usage_bytes{",
        "node_swap_usage_bytes",
    ] {
        let body = format!("{}{last}", wanted_lines());
        assert_eq!(decoded(body.as_bytes()), wanted_batch(), "{last}");
    }
}

#[test]
fn skipped_lines_do_not_disturb_the_guessed_container() {
    // A pod line between container lines carries a container's label block; it must neither
    // count as that container nor move the guess of which container comes next.
    let a = "{container=\"a\",namespace=\"n\",pod=\"p\"}";
    let b = "{container=\"b\",namespace=\"n\",pod=\"p\"}";
    let body = format!(
        "{CPU}{a} 1\n{CPU}{b} 2\npod_cpu_usage_seconds_total{a} 5\n\
         {MEM}{a} 10\npod_memory_working_set_bytes{b} 6\n{MEM}{b} 20\n"
    );
    let points: Vec<_> = decoded(body.as_bytes())
        .containers
        .iter()
        .map(|c| {
            (
                c.container.to_string(),
                c.point.cpu_core_nanoseconds,
                c.point.memory_bytes,
            )
        })
        .collect();
    let want = [("a".to_owned(), 1_000_000_000, 10), ("b".to_owned(), 2_000_000_000, 20)];
    assert_eq!(points, want);
}
