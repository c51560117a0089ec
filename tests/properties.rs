//! Property tests with a fixed seed (every run generates the same cases): label selectors
//! agree with a simple reference matcher, field selectors and routes never panic, routes
//! accept exactly the generated valid paths, and quantities parse back to the number.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] fns: a failed step should fail the test loudly"
)]

use metrics_server_rs::api::quantity::{cpu_string, memory_string};
use metrics_server_rs::api::selectors::FieldSelector;
use metrics_server_rs::api::Route;
use metrics_server_rs::inventory::selector::LabelSelector;
use metrics_server_rs::inventory::Labels;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};

fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x6661_756c_7473_2121),
        failure_persistence: None,
        ..Config::default()
    }
}

// ---- label selectors -------------------------------------------------------------------

/// Few keys and values, so generated labels often meet generated requirements.
const KEYS: [&str; 5] = ["a", "app", "tier-2", "k8s.io_x", "example.com/role"];
const VALUES: [&str; 5] = ["", "x", "web", "v1.2", "a_b-c"];

/// One requirement, with its reference meaning.
#[derive(Debug, Clone)]
enum Req {
    Eq(usize, usize, bool),
    Ne(usize, usize),
    In(usize, Vec<usize>),
    NotIn(usize, Vec<usize>),
    Exists(usize),
    Absent(usize),
}

impl Req {
    fn render(&self, spaced: bool) -> String {
        let sp = if spaced { " " } else { "" };
        let set = |vs: &[usize]| {
            vs.iter()
                .map(|&v| VALUES[v])
                .collect::<Vec<_>>()
                .join(if spaced { ", " } else { "," })
        };
        match self {
            Req::Eq(k, v, double) => format!("{}{sp}{}{sp}{}", KEYS[*k], if *double { "==" } else { "=" }, VALUES[*v]),
            Req::Ne(k, v) => format!("{}{sp}!={sp}{}", KEYS[*k], VALUES[*v]),
            Req::In(k, vs) => format!("{} in{sp}({})", KEYS[*k], set(vs)),
            Req::NotIn(k, vs) => format!("{} notin{sp}({})", KEYS[*k], set(vs)),
            Req::Exists(k) => KEYS[*k].to_owned(),
            Req::Absent(k) => format!("!{}", KEYS[*k]),
        }
    }

    fn matches(&self, labels: &Labels) -> bool {
        let get = |k: &usize| labels.get(KEYS[*k]);
        match self {
            Req::Eq(k, v, _) => get(k) == Some(VALUES[*v]),
            Req::Ne(k, v) => get(k) != Some(VALUES[*v]),
            Req::In(k, vs) => get(k).is_some_and(|l| vs.iter().any(|&v| VALUES[v] == l)),
            Req::NotIn(k, vs) => get(k).is_none_or(|l| vs.iter().all(|&v| VALUES[v] != l)),
            Req::Exists(k) => get(k).is_some(),
            Req::Absent(k) => get(k).is_none(),
        }
    }
}

fn requirement() -> impl Strategy<Value = Req> {
    let key = 0..KEYS.len();
    let value = 0..VALUES.len();
    // Sets of non-empty values (a set of only empty values is rejected, as upstream does).
    let set = proptest::collection::vec(1..VALUES.len(), 1..4);
    prop_oneof![
        (key.clone(), value.clone(), any::<bool>()).prop_map(|(k, v, d)| Req::Eq(k, v, d)),
        (key.clone(), value).prop_map(|(k, v)| Req::Ne(k, v)),
        (key.clone(), set.clone()).prop_map(|(k, vs)| Req::In(k, vs)),
        (key.clone(), set).prop_map(|(k, vs)| Req::NotIn(k, vs)),
        key.clone().prop_map(Req::Exists),
        key.prop_map(Req::Absent),
    ]
}

fn label_set() -> impl Strategy<Value = Labels> {
    proptest::collection::btree_map(
        (0..KEYS.len()).prop_map(|k| KEYS[k].to_owned()),
        (0..VALUES.len()).prop_map(|v| VALUES[v].to_owned()),
        0..KEYS.len(),
    )
    .prop_map(Labels::from_iter)
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn label_selector_parse_never_panics(text in ".{0,40}") {
        let _ = LabelSelector::parse(&text);
    }

    #[test]
    fn label_selector_parse_never_panics_on_near_miss_syntax(
        text in r"[a-z!=(), ]{0,12}(in|notin|==|!=|=|<|>)?[a-z0-9(), .]{0,12}"
    ) {
        let _ = LabelSelector::parse(&text);
    }

    #[test]
    fn label_selector_agrees_with_the_reference(
        reqs in proptest::collection::vec(requirement(), 1..4),
        spaced in any::<bool>(),
        labels in label_set(),
    ) {
        let text = reqs.iter().map(|r| r.render(spaced)).collect::<Vec<_>>().join(if spaced { ", " } else { "," });
        let selector = LabelSelector::parse(&text);
        prop_assert!(selector.is_ok(), "{:?} rejected: {:?}", text, selector);
        let want = reqs.iter().all(|r| r.matches(&labels));
        prop_assert_eq!(selector.unwrap().matches(&labels), want, "{:?} on {:?}", text, labels);
    }

    #[test]
    fn field_selector_parse_never_panics(text in r"(.|\\|,|=|!){0,40}") {
        let _ = FieldSelector::parse(&text);
    }

    #[test]
    fn field_selector_agrees_with_the_reference(
        terms in proptest::collection::vec((any::<bool>(), any::<bool>(), "[a-z0-9-]{0,4}"), 0..3),
        name in "[a-z0-9-]{0,4}",
        namespace in proptest::option::of("[a-z0-9-]{0,4}"),
    ) {
        let text = terms
            .iter()
            .map(|(on_name, equal, v)| {
                let field = if *on_name { "metadata.name" } else { "metadata.namespace" };
                format!("{field}{}{v}", if *equal { "=" } else { "!=" })
            })
            .collect::<Vec<_>>()
            .join(",");
        let selector = FieldSelector::parse(&text);
        prop_assert!(selector.is_ok(), "{:?} rejected", text);
        let want = terms.iter().all(|(on_name, equal, v)| {
            let actual = if *on_name { name.as_str() } else { namespace.as_deref().unwrap_or("") };
            (actual == v) == *equal
        });
        prop_assert_eq!(selector.unwrap().matches(&name, namespace.as_deref()), want, "{:?}", text);
    }
}

// ---- routes ----------------------------------------------------------------------------

/// The route a path should yield, by a second reading of the API's URL layout.
fn reference_route(path: &str) -> Option<(&str, Route<'_>)> {
    let rest = path.strip_prefix("/apis/metrics.k8s.io/")?;
    let mut segments: Vec<&str> = rest.split('/').collect();
    let version = segments.remove(0);
    if version != "v1beta1" && version != "v1" {
        return None;
    }
    let ok = |s: &&str| !s.is_empty();
    let route = match segments[..] {
        ["nodes"] => Route::ListNodes,
        ["nodes", n] if ok(&n) => Route::GetNode(n),
        ["pods"] => Route::ListPods { namespace: None },
        ["namespaces", ns, "pods"] if ok(&ns) => Route::ListPods { namespace: Some(ns) },
        ["namespaces", ns, "pods", n] if ok(&ns) && ok(&n) => Route::GetPod { namespace: ns, name: n },
        _ => return None,
    };
    Some((version, route))
}

/// Paths assembled from the words routes are made of, plus odd ones.
fn path_like() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("apis".to_owned()),
        Just("metrics.k8s.io".to_owned()),
        Just("v1beta1".to_owned()),
        Just("v1".to_owned()),
        Just("v2".to_owned()),
        Just("nodes".to_owned()),
        Just("pods".to_owned()),
        Just("namespaces".to_owned()),
        Just(String::new()),
        "[a-z0-9.%-]{1,6}",
    ];
    let prefix = prop_oneof![
        3 => Just("/apis/metrics.k8s.io/".to_owned()),
        1 => Just("/".to_owned()),
        1 => Just(String::new()),
    ];
    (prefix, proptest::collection::vec(segment, 0..6)).prop_map(|(p, s)| p + &s.join("/"))
}

fn valid_route() -> impl Strategy<Value = String> {
    let name = "[a-z0-9][a-z0-9.-]{0,10}";
    let version = prop_oneof![Just("v1beta1"), Just("v1")];
    (version, 0..5usize, name, name).prop_map(|(v, kind, ns, n)| {
        let tail = match kind {
            0 => "nodes".to_owned(),
            1 => format!("nodes/{n}"),
            2 => "pods".to_owned(),
            3 => format!("namespaces/{ns}/pods"),
            _ => format!("namespaces/{ns}/pods/{n}"),
        };
        format!("/apis/metrics.k8s.io/{v}/{tail}")
    })
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn route_parse_never_panics(path in "\\PC{0,60}") {
        let _ = Route::parse(&path);
    }

    #[test]
    fn route_parse_agrees_with_the_reference(path in path_like()) {
        prop_assert_eq!(Route::parse(&path), reference_route(&path), "{:?}", path);
    }

    #[test]
    fn route_parse_accepts_every_valid_path(path in valid_route()) {
        let parsed = Route::parse(&path);
        prop_assert!(parsed.is_some(), "{:?}", path);
        prop_assert_eq!(parsed, reference_route(&path));
    }
}

// ---- quantities ------------------------------------------------------------------------

/// Reads a canonical quantity back as an integer number of base units (`base` is the
/// exponent of the unit: −9 for nanocores, 0 for bytes). Any suffix of either kind is read.
fn read_quantity(s: &str, base: i32) -> u128 {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, suffix) = s.split_at(end);
    assert!(!digits.is_empty() && (digits == "0" || !digits.starts_with('0')), "{s}");
    let mantissa: u128 = digits.parse().unwrap();
    let binary = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    if let Some(i) = binary.iter().position(|b| *b == suffix) {
        return mantissa << (10 * (i + 1));
    }
    let exponent = match suffix {
        "n" => -9,
        "u" => -6,
        "m" => -3,
        "" => 0,
        "k" => 3,
        "M" => 6,
        "G" => 9,
        "T" => 12,
        "P" => 15,
        "E" => 18,
        other => panic!("unknown suffix {other:?} in {s}"),
    } - base;
    assert!(exponent >= 0, "{s} is finer than the base unit");
    mantissa * 10u128.pow(exponent.unsigned_abs())
}

/// What an upstream `int64` quantity keeps of `v`: above `i64::MAX` the last digit is lost.
fn kept(v: u64) -> u128 {
    if v > i64::MAX as u64 {
        u128::from(v / 10) * 10
    } else {
        u128::from(v)
    }
}

/// Anywhere in u64, with boundaries (powers of 2, 10 and 1024, ±1, around `i64::MAX`) weighted up.
fn any_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => any::<u64>(),
        1 => (0u32..64, -1i8..=1).prop_map(|(k, d)| (1u64 << k).wrapping_add_signed(i64::from(d))),
        1 => (0u32..20, -1i8..=1).prop_map(|(k, d)| 10u64.pow(k).wrapping_add_signed(i64::from(d))),
        1 => (1u64..2000, 0u32..7).prop_map(|(m, k)| m.saturating_mul(1u64 << (10 * k))),
        1 => (-5i64..=5).prop_map(|d| (i64::MAX as u64).wrapping_add_signed(d)),
    ]
}

proptest! {
    #![proptest_config(config(5000))]

    #[test]
    fn cpu_strings_read_back_to_the_nanocores(v in any_u64()) {
        let s = cpu_string(v);
        prop_assert_eq!(read_quantity(&s, -9), kept(v), "{}", s);
    }

    #[test]
    fn memory_strings_read_back_to_the_bytes(v in any_u64()) {
        let s = memory_string(v);
        prop_assert_eq!(read_quantity(&s, 0), kept(v), "{}", s);
    }
}
