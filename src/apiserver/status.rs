//! `metav1.Status`: the one shape every API error takes on the wire (spec §3.5).
//!
//! Constructors mirror apimachinery's `errors.New…` helpers, so callers pass the parts (group,
//! resource, name) and get upstream's message and details. The body is JSON, or protobuf (§10)
//! when the client negotiated protobuf, as the apiserver answers `kubectl top` and the HPA. This
//! file does not decide which error a failure becomes: callers map their typed errors onto a
//! constructor.

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::StatusCode;
use serde::{Serialize, Serializer};

use super::negotiate::Representation;
use super::protobuf::{self as pb, Envelope};
use super::{content_type, json, Body, Response};

/// A failed request, serialized with Go's field order and omissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: EmptyListMeta,
    status: &'static str,
    /// Human-readable description, e.g. `node "n1" not found`.
    pub message: String,
    /// Machine-readable reason; [`StatusReason::Unknown`] is omitted, as Go omits `""`.
    #[serde(skip_serializing_if = "StatusReason::is_unknown")]
    pub reason: StatusReason,
    /// Extra data about the resource; omitted when `None`, `{}` when present but empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    /// The HTTP status code, also sent as the response's status.
    pub code: u16,
}

/// `metadata` of a Status: always `{}` here (no resourceVersion, no continue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
struct EmptyListMeta {}

/// `metav1.StatusReason` values used by this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusReason {
    /// Go's empty reason: an error the server did not classify (serialized by omission).
    Unknown,
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    NotAcceptable,
    RequestEntityTooLarge,
    TooManyRequests,
    InternalError,
    ServiceUnavailable,
}

impl StatusReason {
    /// The wire spelling (`""` for [`StatusReason::Unknown`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "",
            Self::BadRequest => "BadRequest",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "NotFound",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::NotAcceptable => "NotAcceptable",
            Self::RequestEntityTooLarge => "RequestEntityTooLarge",
            Self::TooManyRequests => "TooManyRequests",
            Self::InternalError => "InternalError",
            Self::ServiceUnavailable => "ServiceUnavailable",
        }
    }

    fn is_unknown(&self) -> bool {
        *self == Self::Unknown
    }
}

impl Serialize for StatusReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// `metav1.StatusDetails`; every empty field is omitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatusDetails {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// The resource (e.g. `nodemetrics`), which Go stores in a field named `kind`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
    #[serde(rename = "retryAfterSeconds", skip_serializing_if = "is_zero")]
    pub retry_after_seconds: u32,
}

/// `metav1.StatusCause`; every empty field is omitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatusCause {
    /// Go's `Type`, serialized as `reason`.
    #[serde(rename = "reason", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub field: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Status {
    /// A failure with the given code, reason and message and no details.
    pub fn new(code: u16, reason: StatusReason, message: impl Into<String>) -> Self {
        Self {
            kind: "Status",
            api_version: "v1",
            metadata: EmptyListMeta {},
            status: "Failure",
            message: message.into(),
            reason,
            details: None,
            code,
        }
    }

    /// Replaces the details.
    #[must_use]
    pub fn with_details(mut self, details: StatusDetails) -> Self {
        self.details = Some(details);
        self
    }

    /// 404 `<resource>[.<group>] "<name>" not found` (Go's `NewNotFound`). `kind` is the
    /// resource as it appears in errors: `nodemetrics`, `node`, `pods`, `podmetrics`.
    pub fn not_found(group: &str, kind: &str, name: &str) -> Self {
        let message = format!("{} {} not found", qualified(group, kind), go_quote(name));
        Self::new(404, StatusReason::NotFound, message).with_details(details(group, kind, name))
    }

    /// 400 with the message as given (Go's `NewBadRequest`).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, StatusReason::BadRequest, message)
    }

    /// 405 `<action> is not supported on resources of kind "<kind>[.<group>]"` (Go's
    /// `NewMethodNotSupported`), e.g. `watch` on `nodes`.
    pub fn method_not_supported(group: &str, kind: &str, action: &str) -> Self {
        let message = format!(
            "{action} is not supported on resources of kind {}",
            go_quote(&qualified(group, kind))
        );
        Self::new(405, StatusReason::MethodNotAllowed, message).with_details(details(group, kind, ""))
    }

    /// 405 for a method a route does not serve, as the apiserver turns go-restful's 405 into a
    /// Status (generic message, empty details).
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            StatusReason::MethodNotAllowed,
            "the server does not allow this method on the requested resource",
        )
        .with_details(StatusDetails::default())
    }

    /// 406 with the message as given.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, StatusReason::NotAcceptable, message)
    }

    /// 403 (Go's `NewForbidden`): `forbidden: <why>` without a resource, else
    /// `<kind>[.<group>] ["<name>" ]is forbidden: <why>`.
    pub fn forbidden(group: &str, kind: &str, name: &str, why: &str) -> Self {
        let message = match (group.is_empty() && kind.is_empty(), name.is_empty()) {
            (true, _) => format!("forbidden: {why}"),
            (false, true) => format!("{} is forbidden: {why}", qualified(group, kind)),
            (false, false) => {
                format!("{} {} is forbidden: {why}", qualified(group, kind), go_quote(name))
            }
        };
        Self::new(403, StatusReason::Forbidden, message).with_details(details(group, kind, name))
    }

    /// 401 with the message as given (the apiserver sends `Unauthorized`).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, StatusReason::Unauthorized, message)
    }

    /// 429 asking the client to come back after `retry_after_seconds` (`NewTooManyRequests`).
    pub fn too_many_requests(message: impl Into<String>, retry_after_seconds: u32) -> Self {
        Self::new(429, StatusReason::TooManyRequests, message).with_details(StatusDetails {
            retry_after_seconds,
            ..StatusDetails::default()
        })
    }

    /// 413 for a request body over `limit` bytes (`NewRequestEntityTooLargeError`).
    pub fn request_entity_too_large(limit: u64) -> Self {
        Self::new(
            413,
            StatusReason::RequestEntityTooLarge,
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 500 for an unclassified error: the message as given and no reason, as the apiserver
    /// answers a plain Go error.
    pub fn internal_error(message: impl Into<String>) -> Self {
        Self::new(500, StatusReason::Unknown, message)
    }

    /// The JSON document, without the trailing newline the wire form has.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing strings and integers cannot fail; keep a valid body if it ever does.
        json::to_vec(self).unwrap_or_else(|_| FALLBACK.to_vec())
    }

    /// The protobuf body: the `k8s\0` envelope naming `v1`/`Status` (Status is unversioned, so
    /// the apiserver labels it `v1` whatever the request's group), then `metav1.Status` with
    /// every field Go writes: empty `ListMeta` strings, `status`, `message`, `reason` (empty
    /// when unknown), `details` only when present, and `code`.
    pub fn to_protobuf(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.message.len());
        let envelope = Envelope::begin(&mut out, self.api_version, self.kind);
        let list_meta = pb::begin(&mut out, 1);
        for field in 1..=3 {
            pb::put_str(&mut out, field, "");
        }
        pb::end(&mut out, list_meta);
        pb::put_str(&mut out, 2, self.status);
        pb::put_str(&mut out, 3, &self.message);
        pb::put_str(&mut out, 4, self.reason.as_str());
        if let Some(details) = &self.details {
            let nested = pb::begin(&mut out, 5);
            pb::put_str(&mut out, 1, &details.name);
            pb::put_str(&mut out, 2, &details.group);
            pb::put_str(&mut out, 3, &details.kind);
            for cause in &details.causes {
                let c = pb::begin(&mut out, 4);
                pb::put_str(&mut out, 1, &cause.kind);
                pb::put_str(&mut out, 2, &cause.message);
                pb::put_str(&mut out, 3, &cause.field);
                pb::end(&mut out, c);
            }
            pb::put_int(&mut out, 5, i64::from(details.retry_after_seconds));
            pb::put_str(&mut out, 6, &details.uid);
            pb::end(&mut out, nested);
        }
        pb::put_int(&mut out, 6, i64::from(self.code));
        envelope.finish_compact(&mut out);
        out
    }

    /// `application/json` response with this Status (plus `\n`) and its code.
    pub fn into_response(self) -> Response {
        let mut body = self.to_json();
        body.push(b'\n');
        self.response(body, content_type::JSON)
    }

    /// The response in the client's negotiated representation: protobuf when it asked for
    /// protobuf, else JSON (a Table request's errors are plain JSON Status, as upstream).
    pub fn into_negotiated_response(self, representation: Representation) -> Response {
        match representation {
            Representation::Protobuf => {
                let body = self.to_protobuf();
                self.response(body, content_type::PROTOBUF)
            }
            _ => self.into_response(),
        }
    }

    fn response(&self, body: Vec<u8>, content_type: &'static str) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = Response::new(Body::new(body.into()));
        *resp.status_mut() = code;
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        resp
    }
}

const FALLBACK: &[u8] =
    br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"internal error","code":500}"#;

fn details(group: &str, kind: &str, name: &str) -> StatusDetails {
    StatusDetails {
        name: name.to_owned(),
        group: group.to_owned(),
        kind: kind.to_owned(),
        ..StatusDetails::default()
    }
}

/// `schema.GroupResource.String()`: `resource.group`, or `resource` when the group is empty.
fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    }
}

/// Go's `%q`: a double-quoted string with Go escapes for quotes and unprintable characters.
pub(crate) fn go_quote(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
