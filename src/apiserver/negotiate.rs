//! Picks a response representation from the `Accept` header, as the apiserver's negotiation does
//! (spec §3.7, §3.8).
//!
//! Clauses are ranked like the apiserver's `goautoneg`: higher `q` first, then concrete types
//! before `type/*` before `*/*`, then header order; the first clause the caller can produce wins.
//! Unlike the apiserver, a clause with `q=0` (or an unreadable `q`) is never chosen, as RFC 9110
//! requires. Parameters `as`, `g` and `v` ask for a conversion: over JSON,
//! `as=Table;g=meta.k8s.io;v=v1|v1beta1` and (for `/apis`)
//! `as=APIGroupDiscoveryList;g=apidiscovery.k8s.io;v=v2|v2beta1` are known, each only where the
//! caller offers it; `g`/`v` without `as`, or a non-empty `stream`, make a clause unacceptable;
//! other parameters (`charset`, `pretty`, …) are ignored.
//! Like Go (`Header.Get`), only the first `Accept` field line counts. Encoding the chosen
//! representation is the caller's job.

use std::fmt;

use hyper::header::{HeaderMap, ACCEPT};

use super::Status;

/// What a caller can produce, in no particular order (the server's order is JSON, protobuf).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `application/json`.
    Json,
    /// `meta.k8s.io` Table rendered as JSON (`kubectl get`).
    Table,
    /// `application/vnd.kubernetes.protobuf`.
    Protobuf,
    /// `apidiscovery.k8s.io` APIGroupDiscoveryList rendered as JSON (aggregated discovery).
    AggregatedDiscovery,
}

/// The `meta.k8s.io` version a Table was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableVersion {
    V1,
    V1beta1,
}

impl TableVersion {
    /// `v1` or `v1beta1`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V1beta1 => "v1beta1",
        }
    }
}

/// The `apidiscovery.k8s.io` version aggregated discovery was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiscoveryVersion {
    V2,
    V2beta1,
}

impl DiscoveryVersion {
    /// `v2` or `v2beta1`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2 => "v2",
            Self::V2beta1 => "v2beta1",
        }
    }
}

/// The representation the response must use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Representation {
    Json,
    Table { version: TableVersion },
    Protobuf,
    AggregatedDiscovery { version: DiscoveryVersion },
}

impl Representation {
    /// The response's `Content-Type`: a Table is plain `application/json`, as upstream sends;
    /// aggregated discovery names its kind, as the apiserver's discovery handler does.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json | Self::Table { .. } => JSON,
            Self::Protobuf => PROTOBUF,
            Self::AggregatedDiscovery {
                version: DiscoveryVersion::V2,
            } => "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            Self::AggregatedDiscovery {
                version: DiscoveryVersion::V2beta1,
            } => "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
        }
    }
}

const JSON: &str = "application/json";
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// No clause of the `Accept` header names something the caller can produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAcceptable {
    accepted: Vec<&'static str>,
}

impl fmt::Display for NotAcceptable {
    /// The apiserver's `errNotAcceptable` text, listing the media types we can produce.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "only the following media types are accepted: {}",
            self.accepted.join(", ")
        )
    }
}

impl std::error::Error for NotAcceptable {}

impl NotAcceptable {
    /// The 406 `NotAcceptable` Status for this error.
    pub fn into_status(self) -> Status {
        Status::not_acceptable(self.to_string())
    }
}

/// Negotiates from a request's headers (first `Accept` line; unreadable bytes match nothing).
pub fn negotiate_headers(headers: &HeaderMap, offers: &[Format]) -> Result<Representation, NotAcceptable> {
    match headers.get(ACCEPT) {
        None => negotiate(None, offers),
        Some(v) => negotiate(Some(v.to_str().unwrap_or("\u{0}")), offers),
    }
}

/// Picks the representation for an `Accept` value (`None` or blank: the first producible of
/// JSON, protobuf).
pub fn negotiate(accept: Option<&str>, offers: &[Format]) -> Result<Representation, NotAcceptable> {
    let accept = accept.map(str::trim).unwrap_or("");
    if accept.is_empty() {
        if offers.contains(&Format::Json) {
            return Ok(Representation::Json);
        }
        if offers.contains(&Format::Protobuf) {
            return Ok(Representation::Protobuf);
        }
        return Err(not_acceptable(offers));
    }
    let mut clauses: Vec<Clause<'_>> = accept.split(',').filter_map(Clause::parse).collect();
    // Stable: equal rank keeps header order.
    clauses.sort_by(|a, b| b.q.total_cmp(&a.q).then(b.specificity.cmp(&a.specificity)));
    clauses
        .iter()
        .filter(|c| c.q > 0.0)
        .find_map(|c| c.pick(offers))
        .ok_or_else(|| not_acceptable(offers))
}

fn not_acceptable(offers: &[Format]) -> NotAcceptable {
    let mut accepted = Vec::new();
    if offers
        .iter()
        .any(|f| matches!(f, Format::Json | Format::Table | Format::AggregatedDiscovery))
    {
        accepted.push(JSON);
    }
    if offers.contains(&Format::Protobuf) {
        accepted.push(PROTOBUF);
    }
    NotAcceptable { accepted }
}

/// One media range of the header.
#[derive(Debug)]
struct Clause<'a> {
    kind: &'a str,
    subtype: &'a str,
    /// 2 for `type/subtype`, 1 for `type/*`, 0 for `*/*`.
    specificity: u8,
    q: f32,
    params: Vec<(&'a str, &'a str)>,
}

impl<'a> Clause<'a> {
    fn parse(part: &'a str) -> Option<Self> {
        let mut pieces = part.split(';');
        let range = pieces.next()?.trim();
        let (kind, subtype) = match range.split_once('/') {
            Some((t, s)) => (t.trim(), s.trim()),
            None if range == "*" => ("*", "*"),
            None => return None,
        };
        if kind.is_empty() || subtype.is_empty() || (kind == "*" && subtype != "*") {
            return None;
        }
        let specificity = match (kind, subtype) {
            ("*", _) => 0,
            (_, "*") => 1,
            _ => 2,
        };
        let mut q = 1.0_f32;
        let mut params = Vec::new();
        for param in pieces {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim().trim_matches('"'));
            if name.eq_ignore_ascii_case("q") {
                q = value
                    .parse::<f32>()
                    .ok()
                    .filter(|q| q.is_finite() && *q >= 0.0)
                    .unwrap_or(0.0);
            } else {
                params.push((name, value));
            }
        }
        Some(Self {
            kind,
            subtype,
            specificity,
            q,
            params,
        })
    }

    fn param(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    fn matches(&self, kind: &str, subtype: &str) -> bool {
        (self.kind == "*" || self.kind.eq_ignore_ascii_case(kind))
            && (self.subtype == "*" || self.subtype.eq_ignore_ascii_case(subtype))
    }

    /// The representation this clause selects among the offers, if any.
    fn pick(&self, offers: &[Format]) -> Option<Representation> {
        if self.param("stream").is_some_and(|s| !s.is_empty()) {
            return None;
        }
        let (as_kind, group, version) = (self.param("as"), self.param("g"), self.param("v"));
        let json = self.matches("application", "json");
        match as_kind {
            None if group.is_some() || version.is_some() => None,
            None if json && offers.contains(&Format::Json) => Some(Representation::Json),
            None if self.matches("application", "vnd.kubernetes.protobuf") && offers.contains(&Format::Protobuf) => {
                Some(Representation::Protobuf)
            }
            None => None,
            Some("Table") if json && group == Some("meta.k8s.io") && offers.contains(&Format::Table) => {
                let version = match version? {
                    "v1" => TableVersion::V1,
                    "v1beta1" => TableVersion::V1beta1,
                    _ => return None,
                };
                Some(Representation::Table { version })
            }
            Some("APIGroupDiscoveryList")
                if json && group == Some("apidiscovery.k8s.io") && offers.contains(&Format::AggregatedDiscovery) =>
            {
                let version = match version? {
                    "v2" => DiscoveryVersion::V2,
                    "v2beta1" => DiscoveryVersion::V2beta1,
                    _ => return None,
                };
                Some(Representation::AggregatedDiscovery { version })
            }
            Some(_) => None,
        }
    }
}

#[cfg(test)]
#[path = "negotiate_tests.rs"]
mod tests;
