//! What a request asks to do, in authorization terms: a verb on a resource (for API paths) or a
//! verb on a path (for everything else), read from the method and URI the way
//! k8s.io/apiserver's request-info resolver reads them.
//!
//! `/apis/<group>/<version>/[namespaces/<ns>/]<resource>[/<name>[/<subresource>]]` is a
//! resource request: GET or HEAD of a named object is `get`, of a collection `list`, or `watch`
//! with `watch=true`; `fieldSelector=metadata.name=<n>` names the object of a list. A
//! `/watch/` or `/proxy/` segment after the version sets the verb. Shorter `/apis` paths and
//! all other paths are non-resource requests whose verb is the lower-cased method. The path is
//! percent-decoded first, as Go's `URL.Path` is. Pure functions only.

use std::borrow::Cow;

use hyper::{Method, Uri};
use percent_encoding::percent_decode_str;

/// An API resource being acted on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ResourceAttributes {
    pub verb: String,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    /// Empty for cluster-scoped requests.
    pub namespace: String,
    /// Empty for collections.
    pub name: String,
}

/// What a request does, as an authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Resource(ResourceAttributes),
    NonResource { path: String, verb: String },
}

impl Target {
    /// The verb, whichever kind of request.
    pub fn verb(&self) -> &str {
        match self {
            Target::Resource(r) => &r.verb,
            Target::NonResource { verb, .. } => verb,
        }
    }
}

/// Path segments that make the next one a verb (`/apis/g/v/watch/...`).
const PATH_VERBS: [&str; 2] = ["watch", "proxy"];
/// Subresources of a namespace object itself (`/namespaces/<ns>/status`).
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// The authorization target of a request.
pub fn target(method: &Method, uri: &Uri) -> Target {
    let path = decode(uri.path());
    match resource(method, &path, uri.query()) {
        Some(attributes) => Target::Resource(attributes),
        None => Target::NonResource {
            verb: method.as_str().to_ascii_lowercase(),
            path: path.into_owned(),
        },
    }
}

fn resource(method: &Method, path: &str, query: Option<&str>) -> Option<ResourceAttributes> {
    let mut parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut attributes = ResourceAttributes::default();
    match parts.first() {
        Some(&"apis") if parts.len() >= 4 => {
            attributes.group = parts[1].to_owned();
            attributes.version = parts[2].to_owned();
            parts.drain(..3);
        }
        Some(&"api") if parts.len() >= 3 => {
            attributes.version = parts[1].to_owned();
            parts.drain(..2);
        }
        _ => return None,
    }
    let verb_in_path = PATH_VERBS.contains(&parts[0]);
    if verb_in_path {
        if parts.len() < 2 {
            // Nothing to act on (`/apis/g/v/watch`): no resource to authorize against.
            return None;
        }
        attributes.verb = parts[0].to_owned();
        parts.remove(0);
    } else {
        attributes.verb = method_verb(method).to_owned();
    }
    if parts[0] == "namespaces" && parts.len() > 1 {
        attributes.namespace = parts[1].to_owned();
        if parts.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&parts[2]) {
            parts.drain(..2);
        }
    }
    attributes.resource = parts[0].to_owned();
    if let Some(name) = parts.get(1) {
        attributes.name = (*name).to_owned();
    }
    if !verb_in_path {
        if let Some(sub) = parts.get(2) {
            attributes.subresource = (*sub).to_owned();
        }
    }
    if attributes.name.is_empty() && attributes.verb == "get" {
        let query = Query(query.unwrap_or(""));
        attributes.verb = if query.watch() { "watch" } else { "list" }.to_owned();
        if let Some(name) = query.selected_name() {
            attributes.name = name;
        }
    }
    if attributes.name.is_empty() && attributes.verb == "delete" {
        attributes.verb = "deletecollection".to_owned();
    }
    Some(attributes)
}

fn method_verb(method: &Method) -> &'static str {
    match *method {
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    }
}

fn decode(text: &str) -> Cow<'_, str> {
    percent_decode_str(text).decode_utf8_lossy()
}

/// A raw query string, read the way Go's `url.ParseQuery` reads it.
struct Query<'a>(&'a str);

impl Query<'_> {
    /// The first value of `key`, decoded (`+` is a space).
    fn first(&self, key: &str) -> Option<String> {
        self.0.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = decode(&k.replace('+', " ")).into_owned();
            (k == key).then(|| decode(&v.replace('+', " ")).into_owned())
        })
    }

    /// `watch` as Go's `strconv.ParseBool` reads it; a value that is not a boolean counts as
    /// true unless it is `false` or `0` in any case, as upstream's fallback does.
    fn watch(&self) -> bool {
        match self.first("watch").as_deref() {
            None | Some("") => false,
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => true,
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => false,
            Some(other) => !matches!(other.to_ascii_lowercase().as_str(), "false" | "0"),
        }
    }

    /// The object a `fieldSelector` pins by `metadata.name=` (or `==`), when it is a valid
    /// path segment.
    fn selected_name(&self) -> Option<String> {
        let selector = self.first("fieldSelector")?;
        let name = selector.split(',').find_map(|term| {
            let term = term.trim();
            let (key, value) = term.split_once("==").or_else(|| term.split_once('='))?;
            (key.trim() == "metadata.name").then(|| value.trim().to_owned())
        })?;
        let valid = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%']);
        valid.then_some(name)
    }
}

#[cfg(test)]
#[path = "request_info_tests.rs"]
mod tests;
