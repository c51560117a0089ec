//! The OpenAPI documents of the metrics API, built and encoded once at start-up:
//!
//! | path | document |
//! |---|---|
//! | `/openapi/v2` | Swagger 2.0 (JSON) with every served path and the definitions they use |
//! | `/openapi/v3` | the discovery document: `{"paths":{"apis/metrics.k8s.io/v1":{"serverRelativeURL":"…?hash=…"},…}}` |
//! | `/openapi/v3/apis/metrics.k8s.io/<version>` | OpenAPI 3.0 for one group version, with `components.schemas` |
//!
//! The aggregator merges `/openapi/v2` into the cluster's document and proxies the v3 group
//! versions, which `kubectl explain` reads. As upstream: `info.title` is
//! `Kubernetes metrics-server`; each document carries an `ETag` (the uppercase hex SHA-512 of
//! its bytes) and answers a matching `If-None-Match` with 304; a v3 group version asked for
//! with the current `?hash=` is immutable (`Cache-Control: public, immutable`), and with a stale
//! hash is redirected (301) to the current one. Only JSON is served: a request for the protobuf
//! form of `/openapi/v2` also gets JSON.

pub(crate) mod paths;
pub(crate) mod schemas;

use bytes::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, ETAG, IF_NONE_MATCH, LOCATION, VARY};
use hyper::http::request::Parts;
use hyper::{Method, StatusCode};
use serde_json::{json, Map, Value};

use super::GROUP;
use crate::apiserver::{Body, Response, Status};

/// Which OpenAPI version a document is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    V2,
    V3,
}

/// Upstream's document title.
pub const TITLE: &str = "Kubernetes metrics-server";

/// The served OpenAPI documents.
#[derive(Debug, Clone)]
pub struct Documents {
    v2: Encoded,
    v3_discovery: Encoded,
    /// (`apis/metrics.k8s.io/<version>`, document).
    v3: Vec<(String, Encoded)>,
}

#[derive(Debug, Clone)]
struct Encoded {
    body: Bytes,
    /// Uppercase hex SHA-512 of `body`.
    hash: String,
}

impl Encoded {
    fn new(document: &Value) -> Self {
        // A tree of strings, arrays and maps always serializes; empty is the impossible fallback.
        let body = serde_json::to_vec(document).unwrap_or_default();
        let digest = ring::digest::digest(&ring::digest::SHA512, &body);
        let hash = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        Encoded {
            body: body.into(),
            hash,
        }
    }
}

fn info() -> Value {
    json!({"title": TITLE, "version": concat!("v", env!("CARGO_PKG_VERSION"))})
}

const BEARER: &str = "BearerToken";

fn bearer_scheme() -> Value {
    json!({"type": "apiKey", "in": "header", "name": "authorization", "description": "Bearer Token authentication"})
}

/// Every schema the documents for `versions` need, keyed by name.
fn schemas(flavor: Flavor, versions: &[&'static str]) -> Map<String, Value> {
    let mut defs: Vec<schemas::Definition> = schemas::meta_definitions();
    for version in versions {
        defs.extend(schemas::metrics_definitions(version));
    }
    defs.iter()
        .map(|d| (d.name.clone(), schemas::render(flavor, d)))
        .collect()
}

/// The Swagger 2.0 document for all `versions`.
pub fn v2_document(versions: &[&'static str]) -> Value {
    let mut paths = Map::new();
    for version in versions {
        paths.extend(paths::paths(Flavor::V2, version));
    }
    json!({
        "swagger": "2.0",
        "info": info(),
        "paths": paths,
        "definitions": schemas(Flavor::V2, versions),
        "securityDefinitions": {BEARER: bearer_scheme()},
        "security": [{BEARER: []}],
    })
}

/// The OpenAPI 3.0 document of one group version.
pub fn v3_document(version: &'static str) -> Value {
    json!({
        "openapi": "3.0.0",
        "info": info(),
        "paths": paths::paths(Flavor::V3, version),
        "components": {
            "schemas": schemas(Flavor::V3, &[version]),
            "securitySchemes": {BEARER: bearer_scheme()},
        },
        "security": [{BEARER: []}],
    })
}

impl Documents {
    /// Builds and encodes the documents of the served `versions`.
    pub fn new(versions: &[&'static str]) -> Self {
        let v3: Vec<(String, Encoded)> = versions
            .iter()
            .map(|v| (format!("apis/{GROUP}/{v}"), Encoded::new(&v3_document(v))))
            .collect();
        let discovery: Map<String, Value> = v3
            .iter()
            .map(|(path, doc)| {
                let url = format!("/openapi/v3/{path}?hash={}", doc.hash);
                (path.clone(), json!({ "serverRelativeURL": url }))
            })
            .collect();
        Documents {
            v2: Encoded::new(&v2_document(versions)),
            v3_discovery: Encoded::new(&json!({ "paths": discovery })),
            v3,
        }
    }

    /// Paths for the `/` index.
    pub fn listed_paths() -> Vec<String> {
        vec!["/openapi/v2".to_owned(), "/openapi/v3".to_owned()]
    }

    /// Answers `/openapi/v2`, `/openapi/v3` and `/openapi/v3/<group version>`; `None` for
    /// any other path.
    pub fn respond(&self, req: &Parts) -> Option<Response> {
        let path = req.uri.path();
        let (doc, immutable) = match path {
            "/openapi/v2" => (&self.v2, false),
            "/openapi/v3" | "/openapi/v3/" => (&self.v3_discovery, false),
            _ => {
                let gv = path.strip_prefix("/openapi/v3/")?;
                let (_, doc) = self.v3.iter().find(|(p, _)| p == gv)?;
                let asked = req.uri.query().and_then(|q| {
                    super::selectors::form_pairs(q)
                        .find(|(k, _)| k == "hash")
                        .map(|(_, v)| v.into_owned())
                });
                match asked {
                    Some(hash) if hash != doc.hash => return Some(redirect(path, &doc.hash)),
                    Some(_) => (doc, true),
                    None => (doc, false),
                }
            }
        };
        if req.method != Method::GET && req.method != Method::HEAD {
            return Some(Status::method_not_allowed().into_response());
        }
        let etag = format!("\"{}\"", doc.hash);
        let unchanged = req
            .headers
            .get(IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == etag.as_bytes());
        let mut resp = if unchanged {
            let mut resp = Response::new(Body::default());
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            resp
        } else {
            crate::apiserver::ok_bytes("application/json", doc.body.clone())
        };
        let headers = resp.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&etag) {
            headers.insert(ETAG, value);
        }
        if immutable {
            headers.insert(VARY, HeaderValue::from_static("Accept"));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("public, immutable"));
        }
        Some(resp)
    }

    /// The encoded Swagger 2.0 document.
    pub fn v2_json(&self) -> &Bytes {
        &self.v2.body
    }

    /// The encoded v3 discovery document.
    pub fn v3_discovery_json(&self) -> &Bytes {
        &self.v3_discovery.body
    }

    /// The encoded v3 document of `apis/metrics.k8s.io/<version>`.
    pub fn v3_json(&self, group_version_path: &str) -> Option<&Bytes> {
        self.v3
            .iter()
            .find(|(p, _)| p == group_version_path)
            .map(|(_, d)| &d.body)
    }
}

/// 301 to the same document with the current hash, as upstream answers a stale one.
fn redirect(path: &str, hash: &str) -> Response {
    let mut resp = Response::new(Body::default());
    *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
    if let Ok(location) = HeaderValue::from_str(&format!("{path}?hash={hash}")) {
        resp.headers_mut().insert(LOCATION, location);
    }
    resp
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
