//! Aggregated discovery: one `APIGroupDiscoveryList` on `/apis` describing every group,
//! version and resource, for clients that ask for
//! `application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList` (or `v2beta1`).
//! [`super::discovery`] decides when it is served; this file encodes and answers it.
//!
//! The document follows the `apidiscovery.k8s.io/v2` Go types field by field:
//! * `APIGroupDiscoveryList`: `kind`, `apiVersion`, `metadata` (`ListMeta`, empty: `{}`),
//!   `items`.
//! * `APIGroupDiscovery`: no `kind`/`apiVersion` (empty and omitted), `metadata` with only
//!   `name` (a zero `creationTimestamp` is omitted since apimachinery 1.33), `versions` in
//!   preference order (for `v1`, `v1beta1` also the kube-aware order upstream sorts by).
//! * `APIVersionDiscovery`: `version`, `resources` (omitted when empty), `freshness`
//!   (`Current` for groups served locally).
//! * `APIResourceDiscovery`: `resource`, `responseKind` (`group`, `version`, `kind`: the
//!   installer only fills group and version for storage that names another group version, so
//!   they are `""` here, as upstream sends them), `scope` (`Cluster` or `Namespaced`),
//!   `singularResource` (always written, `""` here), `verbs` (sorted); `shortNames`,
//!   `categories` and `subresources` are empty and omitted.
//!
//! The `Content-Type` names the kind (`application/json;g=apidiscovery.k8s.io;v=v2;as=…`), and
//! like upstream the answer carries an `ETag` (quoted uppercase hex SHA-512 of the body) and
//! `Vary: Accept`, and a matching `If-None-Match` gets 304.

use bytes::Bytes;
use hyper::header::{HeaderValue, ETAG, IF_NONE_MATCH, VARY};
use serde::Serialize;

use super::discovery::{ApiGroup, Error, Result};
use super::negotiate::{DiscoveryVersion, Representation};
use super::{json, ok_bytes, Body, Response};

/// The encoded `APIGroupDiscoveryList` of one `apidiscovery.k8s.io` version.
#[derive(Debug, Clone)]
pub(crate) struct Aggregated {
    version: DiscoveryVersion,
    body: Bytes,
    etag: String,
}

impl Aggregated {
    pub(crate) fn new(groups: &[ApiGroup], version: DiscoveryVersion) -> Result<Self> {
        let items: Vec<WireGroupDiscovery<'_>> = groups.iter().map(WireGroupDiscovery::new).collect();
        let list = WireDiscoveryList {
            kind: "APIGroupDiscoveryList",
            api_version: match version {
                DiscoveryVersion::V2 => "apidiscovery.k8s.io/v2",
                DiscoveryVersion::V2beta1 => "apidiscovery.k8s.io/v2beta1",
            },
            metadata: Empty {},
            items: &items,
        };
        let body = json::to_vec_line(&list).map_err(|source| Error::Encode {
            group: String::new(),
            source,
        })?;
        let etag = etag_of(&body);
        Ok(Aggregated {
            version,
            body: body.into(),
            etag,
        })
    }

    /// The document, or 304 when the request's `If-None-Match` names it.
    pub(crate) fn respond(&self, req: &hyper::http::request::Parts) -> Response {
        let representation = Representation::AggregatedDiscovery { version: self.version };
        let mut resp = if req
            .headers
            .get(IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == self.etag.as_bytes())
        {
            let mut resp = Response::new(Body::default());
            *resp.status_mut() = hyper::StatusCode::NOT_MODIFIED;
            resp
        } else {
            ok_bytes(representation.content_type(), self.body.clone())
        };
        let headers = resp.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&self.etag) {
            headers.insert(ETAG, value);
        }
        headers.insert(VARY, HeaderValue::from_static("Accept"));
        resp
    }
}

/// `"<uppercase hex SHA-512>"`, the apiserver's discovery ETag form.
fn etag_of(body: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA512, body);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    format!("\"{hex}\"")
}

// ---- wire types (apidiscovery.k8s.io/v2), fields in Go's order ----------------------------

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct WireDiscoveryList<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: Empty,
    items: &'a [WireGroupDiscovery<'a>],
}

#[derive(Serialize)]
struct NameOnly<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct WireGroupDiscovery<'a> {
    metadata: NameOnly<'a>,
    versions: Vec<WireVersionDiscovery<'a>>,
}

#[derive(Serialize)]
struct WireVersionDiscovery<'a> {
    version: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    resources: Vec<WireResourceDiscovery<'a>>,
    freshness: &'static str,
}

#[derive(Serialize)]
struct WireResourceDiscovery<'a> {
    resource: &'a str,
    #[serde(rename = "responseKind")]
    response_kind: WireGroupVersionKind<'a>,
    scope: &'static str,
    #[serde(rename = "singularResource")]
    singular_resource: &'a str,
    verbs: Vec<&'a str>,
}

#[derive(Serialize)]
struct WireGroupVersionKind<'a> {
    group: &'static str,
    version: &'static str,
    kind: &'a str,
}

impl<'a> WireGroupDiscovery<'a> {
    fn new(group: &'a ApiGroup) -> Self {
        let versions = group
            .versions
            .iter()
            .map(|v| WireVersionDiscovery {
                version: &v.version,
                resources: v
                    .resources
                    .iter()
                    .map(|r| {
                        let mut verbs: Vec<&str> = r.verbs.iter().map(String::as_str).collect();
                        verbs.sort_unstable();
                        WireResourceDiscovery {
                            resource: &r.name,
                            response_kind: WireGroupVersionKind {
                                group: "",
                                version: "",
                                kind: &r.kind,
                            },
                            scope: if r.namespaced { "Namespaced" } else { "Cluster" },
                            singular_resource: &r.singular_name,
                            verbs,
                        }
                    })
                    .collect(),
                freshness: "Current",
            })
            .collect();
        WireGroupDiscovery {
            metadata: NameOnly { name: &group.name },
            versions,
        }
    }
}
