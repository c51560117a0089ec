//! Discovery: legacy `/apis`, `/apis/<group>`, `/apis/<group>/<version>` (§3.1, §3.2), and
//! aggregated discovery ([`super::aggregated`]) on `/apis` when `Accept` asks for
//! `application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList` (or `v2beta1`); any
//! other acceptable `Accept` gets the legacy `APIGroupList`, as the apiserver's wrapper does.
//!
//! The application describes its groups once; every document is encoded at construction and
//! served from shared bytes. Verbs are sorted, as the apiserver's installer sorts them.
//! Resource paths below a version are the application's, not this file's.

use bytes::Bytes;
use serde::Serialize;

use super::aggregated::Aggregated;
use super::negotiate::{negotiate_headers, DiscoveryVersion, Format, Representation};
use super::{content_type, json, ok_bytes, Response};

/// An API group as the application serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiGroup {
    /// e.g. `metrics.k8s.io`.
    pub name: String,
    /// In the order clients should prefer them.
    pub versions: Vec<ApiVersion>,
    /// One of `versions`, e.g. `v1beta1`.
    pub preferred_version: String,
}

/// One version of a group and the resources it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersion {
    pub version: String,
    pub resources: Vec<ApiResource>,
}

/// One resource as listed in `APIResourceList`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResource {
    /// The plural URL segment, e.g. `nodes`.
    pub name: String,
    /// Upstream leaves it empty for metrics.
    pub singular_name: String,
    pub namespaced: bool,
    /// e.g. `NodeMetrics`.
    pub kind: String,
    /// e.g. `get`, `list` (sorted when encoded).
    pub verbs: Vec<String>,
}

/// `discovery::Error`: the description cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("api group {group:?} has no versions")]
    NoVersions { group: String },
    #[error("api group {group:?} prefers version {version:?}, which it does not serve")]
    UnknownPreferredVersion { group: String, version: String },
    #[error("api group {group:?} is described twice")]
    DuplicateGroup { group: String },
    #[error("api group {group:?} lists version {version:?} twice")]
    DuplicateVersion { group: String, version: String },
    #[error("encoding discovery for api group {group:?}")]
    Encode {
        group: String,
        #[source]
        source: serde_json::Error,
    },
}

/// `discovery::Result`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Pre-encoded discovery documents.
#[derive(Debug, Clone)]
pub struct Discovery {
    group_list: Bytes,
    groups: Vec<EncodedGroup>,
    /// `APIGroupDiscoveryList` as `apidiscovery.k8s.io/v2` and `v2beta1`.
    aggregated_v2: Aggregated,
    aggregated_v2beta1: Aggregated,
}

#[derive(Debug, Clone)]
struct EncodedGroup {
    name: String,
    document: Bytes,
    /// (version, APIResourceList).
    versions: Vec<(String, Bytes)>,
}

impl Discovery {
    /// Validates and encodes the groups (served in the order given).
    pub fn new(groups: Vec<ApiGroup>) -> Result<Self> {
        let mut wire_groups = Vec::with_capacity(groups.len());
        let mut encoded: Vec<EncodedGroup> = Vec::with_capacity(groups.len());
        for group in &groups {
            if encoded.iter().any(|g| g.name == group.name) {
                return Err(Error::DuplicateGroup {
                    group: group.name.clone(),
                });
            }
            let wire = WireGroup::new(group)?;
            let enc = |source| Error::Encode {
                group: group.name.clone(),
                source,
            };
            let document = json::to_vec_line(&Typed {
                kind: "APIGroup",
                api_version: "v1",
                body: &wire,
            })
            .map_err(enc)?;
            let mut versions: Vec<(String, Bytes)> = Vec::with_capacity(group.versions.len());
            for v in &group.versions {
                let list = WireResourceList::new(&group.name, v);
                versions.push((v.version.clone(), json::to_vec_line(&list).map_err(enc)?.into()));
            }
            encoded.push(EncodedGroup {
                name: group.name.clone(),
                document: document.into(),
                versions,
            });
            wire_groups.push(wire);
        }
        let list = WireGroupList {
            kind: "APIGroupList",
            api_version: "v1",
            groups: &wire_groups,
        };
        let enc = |source| Error::Encode {
            group: String::new(),
            source,
        };
        let group_list = json::to_vec_line(&list).map_err(enc)?.into();
        Ok(Self {
            group_list,
            groups: encoded,
            aggregated_v2: Aggregated::new(&groups, DiscoveryVersion::V2)?,
            aggregated_v2beta1: Aggregated::new(&groups, DiscoveryVersion::V2beta1)?,
        })
    }

    /// Whether `/apis/<group>/<version>/…` belongs to a served group version.
    pub fn serves(&self, group: &str, version: &str) -> bool {
        self.group(group)
            .is_some_and(|g| g.versions.iter().any(|(v, _)| v == version))
    }

    /// Answers exactly `/apis`, `/apis/<group>` and `/apis/<group>/<version>` (any other path:
    /// `None`). A known group with an unknown version is Go's plain `404 page not found`.
    pub fn respond(&self, req: &hyper::http::request::Parts) -> Option<Response> {
        let rest = req.uri.path().strip_prefix("/apis")?;
        let body = if rest.is_empty() {
            let offers = [Format::Json, Format::AggregatedDiscovery];
            return Some(match negotiate_headers(&req.headers, &offers) {
                Ok(Representation::AggregatedDiscovery {
                    version: DiscoveryVersion::V2,
                }) => self.aggregated_v2.respond(req),
                Ok(Representation::AggregatedDiscovery {
                    version: DiscoveryVersion::V2beta1,
                }) => self.aggregated_v2beta1.respond(req),
                Ok(_) => ok_bytes(content_type::JSON, self.group_list.clone()),
                Err(e) => e.into_status().into_response(),
            });
        } else {
            let mut segments = rest.strip_prefix('/')?.split('/');
            let group = self.group(segments.next()?)?;
            match (segments.next(), segments.next()) {
                (None, _) => group.document.clone(),
                (Some(version), None) => match group.versions.iter().find(|(v, _)| v == version) {
                    Some((_, list)) => list.clone(),
                    None => return Some(super::not_found_page()),
                },
                (Some(_), Some(_)) => return None,
            }
        };
        Some(match negotiate_headers(&req.headers, &[Format::Json]) {
            Ok(_) => ok_bytes(content_type::JSON, body),
            Err(e) => e.into_status().into_response(),
        })
    }

    /// Every discovery path, for the `/` index.
    pub fn listed_paths(&self) -> Vec<String> {
        let mut paths = vec!["/apis".to_owned()];
        for g in &self.groups {
            paths.push(format!("/apis/{}", g.name));
            paths.extend(g.versions.iter().map(|(v, _)| format!("/apis/{}/{v}", g.name)));
        }
        paths
    }

    fn group(&self, name: &str) -> Option<&EncodedGroup> {
        self.groups.iter().find(|g| g.name == name)
    }
}

// ---- wire types, fields in Go's order ---------------------------------------------------------

#[derive(Serialize)]
struct Typed<'a, T> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

#[derive(Serialize)]
struct WireGroupList<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    groups: &'a [WireGroup],
}

#[derive(Serialize)]
struct WireGroup {
    name: String,
    versions: Vec<GroupVersion>,
    #[serde(rename = "preferredVersion")]
    preferred_version: GroupVersion,
}

#[derive(Serialize, Clone)]
struct GroupVersion {
    #[serde(rename = "groupVersion")]
    group_version: String,
    version: String,
}

impl WireGroup {
    fn new(group: &ApiGroup) -> Result<Self> {
        let gv = |version: &str| GroupVersion {
            group_version: format!("{}/{version}", group.name),
            version: version.to_owned(),
        };
        if group.versions.is_empty() {
            return Err(Error::NoVersions {
                group: group.name.clone(),
            });
        }
        let mut versions: Vec<GroupVersion> = Vec::with_capacity(group.versions.len());
        for v in &group.versions {
            if versions.iter().any(|seen| seen.version == v.version) {
                let (group, version) = (group.name.clone(), v.version.clone());
                return Err(Error::DuplicateVersion { group, version });
            }
            versions.push(gv(&v.version));
        }
        if !versions.iter().any(|v| v.version == group.preferred_version) {
            return Err(Error::UnknownPreferredVersion {
                group: group.name.clone(),
                version: group.preferred_version.clone(),
            });
        }
        Ok(Self {
            name: group.name.clone(),
            versions,
            preferred_version: gv(&group.preferred_version),
        })
    }
}

#[derive(Serialize)]
struct WireResourceList<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    #[serde(rename = "groupVersion")]
    group_version: String,
    resources: Vec<WireResource<'a>>,
}

#[derive(Serialize)]
struct WireResource<'a> {
    name: &'a str,
    #[serde(rename = "singularName")]
    singular_name: &'a str,
    namespaced: bool,
    kind: &'a str,
    verbs: Vec<&'a str>,
}

impl<'a> WireResourceList<'a> {
    fn new(group: &str, version: &'a ApiVersion) -> Self {
        let resources = version
            .resources
            .iter()
            .map(|r| {
                let mut verbs: Vec<&str> = r.verbs.iter().map(String::as_str).collect();
                verbs.sort_unstable();
                WireResource {
                    name: &r.name,
                    singular_name: &r.singular_name,
                    namespaced: r.namespaced,
                    kind: &r.kind,
                    verbs,
                }
            })
            .collect();
        Self {
            kind: "APIResourceList",
            api_version: "v1",
            group_version: format!("{group}/{}", version.version),
            resources,
        }
    }
}

#[cfg(test)]
#[path = "discovery_tests.rs"]
mod tests;
