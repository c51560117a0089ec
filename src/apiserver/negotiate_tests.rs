use hyper::header::HeaderValue;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use super::*;

const API: &[Format] = &[Format::Json, Format::Table];
const ALL: &[Format] = &[Format::Json, Format::Table, Format::Protobuf];
const KUBECTL_TABLE: &str =
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
const TABLE_V1: Representation = Representation::Table {
    version: TableVersion::V1,
};

fn pick(accept: &str, offers: &[Format]) -> Result<Representation, NotAcceptable> {
    negotiate(Some(accept), offers)
}

#[test]
fn missing_or_blank_header_means_json() {
    assert_eq!(negotiate(None, API), Ok(Representation::Json));
    assert_eq!(pick("  ", API), Ok(Representation::Json));
    assert_eq!(negotiate(None, &[Format::Protobuf]), Ok(Representation::Protobuf));
}

#[test]
fn json_and_wildcards_mean_json() {
    for accept in [
        "application/json",
        "*/*",
        "application/*",
        "*",
        "Application/JSON; charset=utf-8",
        "application/json, */*",
    ] {
        assert_eq!(pick(accept, API), Ok(Representation::Json), "{accept}");
    }
}

#[test]
fn kubectl_table_request_gets_a_v1_table() {
    assert_eq!(pick(KUBECTL_TABLE, API), Ok(TABLE_V1));
    let beta = "application/json;as=Table;v=v1beta1;g=meta.k8s.io";
    let want = Representation::Table {
        version: TableVersion::V1beta1,
    };
    assert_eq!(pick(beta, API), Ok(want));
    // The Table parameters may come in any order and spacing.
    assert_eq!(
        pick("application/json; g=meta.k8s.io; v=v1; as=Table", API),
        Ok(TABLE_V1)
    );
}

#[test]
fn table_falls_back_to_json_when_the_caller_cannot_convert() {
    assert_eq!(pick(KUBECTL_TABLE, &[Format::Json]), Ok(Representation::Json));
}

#[test]
fn unknown_conversions_are_not_acceptable() {
    for accept in [
        "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
        "application/json;as=Table;v=v2;g=meta.k8s.io",
        "application/json;as=Table;v=v1;g=other.io",
        "application/json;as=Table",
        "application/json;g=meta.k8s.io;v=v1",
        "application/json;as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io",
        "application/json;stream=watch",
        "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io",
    ] {
        assert!(pick(accept, ALL).is_err(), "{accept}");
    }
}

const KUBECTL_DISCOVERY: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
const DISCOVERY: &[Format] = &[Format::Json, Format::AggregatedDiscovery];

#[test]
fn aggregated_discovery_request_falls_back_to_legacy_json() {
    assert_eq!(pick(KUBECTL_DISCOVERY, &[Format::Json]), Ok(Representation::Json));
}

#[test]
fn aggregated_discovery_is_chosen_where_offered_in_either_version() {
    let v2 = Representation::AggregatedDiscovery {
        version: DiscoveryVersion::V2,
    };
    assert_eq!(pick(KUBECTL_DISCOVERY, DISCOVERY), Ok(v2));
    let beta = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    assert_eq!(
        pick(beta, DISCOVERY),
        Ok(Representation::AggregatedDiscovery {
            version: DiscoveryVersion::V2beta1
        })
    );
    // The protobuf form is not produced: the JSON clause after it is taken.
    let proto_first = "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
    assert_eq!(pick(proto_first, DISCOVERY), Ok(v2));
    for unknown in [
        "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList",
        "application/json;g=other.io;v=v2;as=APIGroupDiscoveryList",
    ] {
        assert!(pick(unknown, DISCOVERY).is_err(), "{unknown}");
    }
    assert_eq!(
        Representation::AggregatedDiscovery {
            version: DiscoveryVersion::V2beta1
        }
        .content_type(),
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
    );
}

#[test]
fn protobuf_only_when_offered() {
    let accept = "application/vnd.kubernetes.protobuf";
    assert_eq!(pick(accept, ALL), Ok(Representation::Protobuf));
    assert!(pick(accept, API).is_err());
    let with_fallback = "application/vnd.kubernetes.protobuf, application/json";
    assert_eq!(pick(with_fallback, API), Ok(Representation::Json));
    assert_eq!(pick(with_fallback, ALL), Ok(Representation::Protobuf));
}

#[test]
fn higher_q_wins_over_header_order() {
    let accept = "application/json;q=0.5, application/vnd.kubernetes.protobuf";
    assert_eq!(pick(accept, ALL), Ok(Representation::Protobuf));
}

#[test]
fn concrete_types_win_over_wildcards_at_equal_q() {
    let accept = "*/*, application/vnd.kubernetes.protobuf";
    assert_eq!(pick(accept, ALL), Ok(Representation::Protobuf));
    let accept = "*/*, application/json;as=Table;v=v1;g=meta.k8s.io";
    assert_eq!(pick(accept, ALL), Ok(TABLE_V1));
}

#[test]
fn zero_or_unreadable_q_is_never_chosen() {
    assert!(pick("application/json;q=0", API).is_err());
    assert!(pick("application/json;q=0.0, text/html", API).is_err());
    assert!(pick("application/json;q=abc", API).is_err());
    assert_eq!(pick("*/*;q=0, application/json;q=0.1", API), Ok(Representation::Json));
}

#[test]
fn not_acceptable_lists_what_the_caller_produces() {
    let err = pick("text/html", API).unwrap_err();
    assert_eq!(
        err.to_string(),
        "only the following media types are accepted: application/json"
    );
    let err = pick("text/html", ALL).unwrap_err();
    assert_eq!(
        err.to_string(),
        "only the following media types are accepted: application/json, application/vnd.kubernetes.protobuf"
    );
    let status = pick("text/html", API).unwrap_err().into_status();
    assert_eq!(status.code, 406);
    assert_eq!(status.reason, crate::apiserver::StatusReason::NotAcceptable);
}

#[test]
fn only_the_first_accept_line_counts() {
    let mut headers = HeaderMap::new();
    headers.append(ACCEPT, HeaderValue::from_static("text/html"));
    headers.append(ACCEPT, HeaderValue::from_static("application/json"));
    assert!(negotiate_headers(&headers, API).is_err());
    assert_eq!(negotiate_headers(&HeaderMap::new(), API), Ok(Representation::Json));
}

#[test]
fn content_types() {
    assert_eq!(Representation::Json.content_type(), "application/json");
    assert_eq!(TABLE_V1.content_type(), "application/json");
    assert_eq!(
        Representation::Protobuf.content_type(),
        "application/vnd.kubernetes.protobuf"
    );
}

// ---- properties -------------------------------------------------------------------------------

/// Media ranges with (producible representation or none, specificity).
const RANGES: &[(&str, Option<Representation>, u8)] = &[
    ("application/json", Some(Representation::Json), 2),
    ("application/vnd.kubernetes.protobuf", Some(Representation::Protobuf), 2),
    ("application/json;as=Table;v=v1;g=meta.k8s.io", Some(TABLE_V1), 2),
    ("text/html", None, 2),
    ("application/*", Some(Representation::Json), 1),
    ("*/*", Some(Representation::Json), 0),
];
const QS: &[(&str, f32)] = &[
    ("", 1.0),
    (";q=1", 1.0),
    (";q=0.5", 0.5),
    (";q=0.1", 0.1),
    (";q=0", 0.0),
];

fn header(clauses: &[(usize, usize)]) -> String {
    let parts: Vec<String> = clauses
        .iter()
        .map(|&(r, q)| format!("{}{}", RANGES[r].0, QS[q].0))
        .collect();
    parts.join(", ")
}

/// The reference answer with every offer available: best (q, specificity), earliest on ties.
fn model(clauses: &[(usize, usize)]) -> Option<Representation> {
    let mut best: Option<(f32, u8, Representation)> = None;
    for &(r, q) in clauses {
        let (_, rep, spec) = RANGES[r];
        let q = QS[q].1;
        if let (Some(rep), true) = (rep, q > 0.0) {
            if best.is_none_or(|(bq, bs, _)| (q, spec) > (bq, bs)) {
                best = Some((q, spec, rep));
            }
        }
    }
    best.map(|(_, _, rep)| rep)
}

fn config() -> Config {
    Config {
        rng_seed: RngSeed::Fixed(0x6e65_676f),
        cases: 512,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn agrees_with_the_ranking_model(clauses in prop::collection::vec((0..RANGES.len(), 0..QS.len()), 1..6)) {
        prop_assert_eq!(pick(&header(&clauses), ALL).ok(), model(&clauses));
    }

    #[test]
    fn zero_q_clauses_change_nothing(
        clauses in prop::collection::vec((0..RANGES.len(), 0..QS.len() - 1), 1..5),
        zeros in prop::collection::vec(0..RANGES.len(), 0..3),
    ) {
        let mut with_zeros = clauses.clone();
        with_zeros.extend(zeros.iter().map(|&r| (r, QS.len() - 1)));
        prop_assert_eq!(pick(&header(&with_zeros), API), pick(&header(&clauses), API));
    }

    #[test]
    fn the_answer_is_always_something_offered(accept in "[a-z/*;=,. 0-9]{0,40}", mask in 1u8..8) {
        let offers: Vec<Format> = ALL.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, f)| *f).collect();
        if let Ok(rep) = pick(&accept, &offers) {
            let format = match rep {
                Representation::Json => Format::Json,
                Representation::Table { .. } => Format::Table,
                Representation::Protobuf => Format::Protobuf,
                Representation::AggregatedDiscovery { .. } => Format::AggregatedDiscovery,
            };
            prop_assert!(offers.contains(&format));
        }
    }

    #[test]
    fn a_trailing_wildcard_always_succeeds(clauses in prop::collection::vec((0..RANGES.len(), 0..QS.len()), 0..4)) {
        let accept = format!("{}, */*;q=0.01", header(&clauses));
        prop_assert!(pick(accept.trim_start_matches(", "), API).is_ok());
    }
}
