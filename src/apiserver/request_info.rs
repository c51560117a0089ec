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

/// [`ResourceAttributes`] borrowed from the request (its decoded path and query), so a request
/// whose review answer is cached allocates nothing to be authorized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub version: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    /// Decoded from a `fieldSelector` when the path names no object, hence not always borrowed.
    pub name: Cow<'a, str>,
}

/// [`Target`] borrowed from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetRef<'a> {
    Resource(ResourceRef<'a>),
    NonResource { path: &'a str, verb: Cow<'a, str> },
}

impl TargetRef<'_> {
    /// The owned target (for a review request or a 403 message).
    pub fn to_target(&self) -> Target {
        match self {
            TargetRef::Resource(r) => Target::Resource(ResourceAttributes {
                verb: r.verb.to_owned(),
                group: r.group.to_owned(),
                version: r.version.to_owned(),
                resource: r.resource.to_owned(),
                subresource: r.subresource.to_owned(),
                namespace: r.namespace.to_owned(),
                name: r.name.clone().into_owned(),
            }),
            TargetRef::NonResource { path, verb } => Target::NonResource {
                path: (*path).to_owned(),
                verb: verb.clone().into_owned(),
            },
        }
    }
}

impl Target {
    /// The borrowed form, as [`target_of`] gives it.
    pub fn view(&self) -> TargetRef<'_> {
        match self {
            Target::Resource(r) => TargetRef::Resource(ResourceRef {
                verb: &r.verb,
                group: &r.group,
                version: &r.version,
                resource: &r.resource,
                subresource: &r.subresource,
                namespace: &r.namespace,
                name: Cow::Borrowed(&r.name),
            }),
            Target::NonResource { path, verb } => TargetRef::NonResource {
                path,
                verb: Cow::Borrowed(verb),
            },
        }
    }
}

/// The authorization target of a request.
pub fn target(method: &Method, uri: &Uri) -> Target {
    let path = decode_path(uri.path());
    target_of(method, &path, uri.query()).to_target()
}

/// The request path as authorization reads it: percent-decoded, as Go's `URL.Path` is.
pub fn decode_path(path: &str) -> Cow<'_, str> {
    decode(path)
}

/// The authorization target of a request, borrowed from its decoded path (see [`decode_path`])
/// and raw query.
pub fn target_of<'a>(method: &Method, path: &'a str, query: Option<&'a str>) -> TargetRef<'a> {
    match resource(method, path, query) {
        Some(attributes) => TargetRef::Resource(attributes),
        None => TargetRef::NonResource {
            verb: lower_case_method(method),
            path,
        },
    }
}

/// Segments the resolver reads at most: `apis/<g>/<v>`, a path verb, `namespaces/<ns>`, then
/// resource, name and subresource.
const SEGMENTS_READ: usize = 9;

/// A path's `/`-separated segments (outer slashes trimmed), without collecting them: the first
/// [`SEGMENTS_READ`], how many there are, and how many the resolver has consumed.
struct Segments<'a> {
    first: [&'a str; SEGMENTS_READ],
    total: usize,
    consumed: usize,
}

impl<'a> Segments<'a> {
    fn new(path: &'a str) -> Self {
        let mut first = [""; SEGMENTS_READ];
        let mut total = 0;
        for segment in path.trim_matches('/').split('/') {
            if let Some(slot) = first.get_mut(total) {
                *slot = segment;
            }
            total += 1;
        }
        Self {
            first,
            total,
            consumed: 0,
        }
    }

    /// Segments not yet consumed.
    fn len(&self) -> usize {
        self.total - self.consumed
    }

    /// The `i`th segment not yet consumed.
    fn get(&self, i: usize) -> Option<&'a str> {
        let at = self.consumed + i;
        if at < self.total {
            self.first.get(at).copied()
        } else {
            None
        }
    }

    /// The `i`th segment not yet consumed, or `""` past the end.
    fn at(&self, i: usize) -> &'a str {
        self.get(i).unwrap_or("")
    }

    fn consume(&mut self, n: usize) {
        self.consumed = (self.consumed + n).min(self.total);
    }
}

fn resource<'a>(method: &Method, path: &'a str, query: Option<&'a str>) -> Option<ResourceRef<'a>> {
    let mut parts = Segments::new(path);
    let mut attributes = ResourceRef {
        verb: "",
        group: "",
        version: "",
        resource: "",
        subresource: "",
        namespace: "",
        name: Cow::Borrowed(""),
    };
    match parts.get(0) {
        Some("apis") if parts.len() >= 4 => {
            attributes.group = parts.at(1);
            attributes.version = parts.at(2);
            parts.consume(3);
        }
        Some("api") if parts.len() >= 3 => {
            attributes.version = parts.at(1);
            parts.consume(2);
        }
        _ => return None,
    }
    let verb_in_path = PATH_VERBS.contains(&parts.at(0));
    if verb_in_path {
        if parts.len() < 2 {
            // Nothing to act on (`/apis/g/v/watch`): no resource to authorize against.
            return None;
        }
        attributes.verb = parts.at(0);
        parts.consume(1);
    } else {
        attributes.verb = method_verb(method);
    }
    if parts.at(0) == "namespaces" && parts.len() > 1 {
        attributes.namespace = parts.at(1);
        if parts.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&parts.at(2)) {
            parts.consume(2);
        }
    }
    attributes.resource = parts.at(0);
    if let Some(name) = parts.get(1) {
        attributes.name = Cow::Borrowed(name);
    }
    if !verb_in_path {
        if let Some(sub) = parts.get(2) {
            attributes.subresource = sub;
        }
    }
    if attributes.name.is_empty() && attributes.verb == "get" {
        let query = Query(query.unwrap_or(""));
        attributes.verb = if query.watch() { "watch" } else { "list" };
        if let Some(name) = query.selected_name() {
            attributes.name = Cow::Owned(name);
        }
    }
    if attributes.name.is_empty() && attributes.verb == "delete" {
        attributes.verb = "deletecollection";
    }
    Some(attributes)
}

/// The method lower-cased, without allocating for the standard ones.
fn lower_case_method(method: &Method) -> Cow<'static, str> {
    Cow::Borrowed(match *method {
        Method::GET => "get",
        Method::HEAD => "head",
        Method::POST => "post",
        Method::PUT => "put",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        Method::OPTIONS => "options",
        Method::CONNECT => "connect",
        Method::TRACE => "trace",
        _ => return Cow::Owned(method.as_str().to_ascii_lowercase()),
    })
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
    if !text.contains('%') {
        // Nothing to decode, and a `&str` is valid UTF-8 already: skip the lossy re-validation.
        return Cow::Borrowed(text);
    }
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
