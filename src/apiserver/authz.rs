//! What a user may do: the delegated authorization every aggregated API server does (spec
//! §4.2), a union of three authorizers tried in order, the first with an opinion deciding:
//!
//! 1. members of `system:masters` (the always-allowed groups) may do anything;
//! 2. non-resource paths in `--authorization-always-allow-paths` are allowed to anyone (exact
//!    match, or a prefix when the entry ends in `*`; the leading `/` is optional);
//! 3. a SubjectAccessReview decides the rest; its allow and deny answers are cached for the
//!    two TTL flags, keyed by the whole review (user, groups, extra, UID and attributes),
//!    written out as one length-prefixed byte string so a cached answer costs one small buffer
//!    rather than a copy of every string of the user and the target.
//!
//! No opinion at all means forbidden. A failed review is an error (the caller answers 500 and
//! the outage is logged once); it is not cached. [`forbidden`] words the 403 as the
//! kube-apiserver does. This file does not know who the user is ([`authn`](super::authn)).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::authn::User;
use super::cache::{Clock, TtlCache};
use super::request_info::{Target, TargetRef};
use super::review::{Outage, ReviewError};
use super::status::{go_quote, Status};

/// Bound on cached review answers.
const DECISION_CACHE_CAPACITY: usize = 8192;

/// An authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Explicitly denied, with the reviewer's reason (may be empty).
    Deny {
        reason: String,
    },
    /// Neither allowed nor denied: forbidden unless another authorizer allows.
    NoOpinion {
        reason: String,
    },
}

impl Decision {
    /// The reviewer's reason, empty for `Allow`.
    pub fn reason(&self) -> &str {
        match self {
            Decision::Allow => "",
            Decision::Deny { reason } | Decision::NoOpinion { reason } => reason,
        }
    }
}

/// Asks whether a user may act on a target (a SubjectAccessReview in production).
pub trait AccessReviewer: Send + Sync + std::fmt::Debug {
    fn review<'a>(&'a self, user: &'a User, target: &'a Target) -> BoxFuture<'a, Result<Decision, ReviewError>>;
}

/// Authorization settings, from the `--authorization-*` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationOptions {
    /// `--authorization-always-allow-paths` (`/healthz`, `/readyz`, `/livez`).
    pub always_allow_paths: Vec<String>,
    /// Groups allowed everything (`system:masters`).
    pub always_allow_groups: Vec<String>,
    /// `--authorization-webhook-cache-authorized-ttl` (10s).
    pub allowed_ttl: Duration,
    /// `--authorization-webhook-cache-unauthorized-ttl` (10s).
    pub denied_ttl: Duration,
}

impl Default for AuthorizationOptions {
    fn default() -> Self {
        Self {
            always_allow_paths: ["/healthz", "/readyz", "/livez"].map(str::to_owned).to_vec(),
            always_allow_groups: vec!["system:masters".to_owned()],
            allowed_ttl: Duration::from_secs(10),
            denied_ttl: Duration::from_secs(10),
        }
    }
}

/// An always-allow path with a `*` before its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("only trailing * allowed in {}", go_quote(.0))]
pub struct PathPatternError(pub String);

/// `--authorization-always-allow-paths`, compiled.
#[derive(Debug, Clone, Default)]
struct AlwaysAllowPaths {
    exact: HashSet<String>,
    prefixes: Vec<String>,
}

impl AlwaysAllowPaths {
    fn new(paths: &[String]) -> Result<Self, PathPatternError> {
        let mut compiled = Self::default();
        for path in paths {
            let p = path.strip_prefix('/').unwrap_or(path);
            match p.find('*') {
                None => {
                    compiled.exact.insert(p.to_owned());
                }
                Some(i) if i + 1 == p.len() => compiled.prefixes.push(p[..i].to_owned()),
                Some(_) => return Err(PathPatternError(path.clone())),
            }
        }
        Ok(compiled)
    }

    fn allows(&self, path: &str) -> bool {
        let p = path.strip_prefix('/').unwrap_or(path);
        self.exact.contains(p) || self.prefixes.iter().any(|prefix| p.starts_with(prefix.as_str()))
    }
}

/// The authorizer union.
#[derive(Debug)]
pub struct Authorizer {
    groups: Vec<String>,
    paths: AlwaysAllowPaths,
    reviewer: Option<Arc<dyn AccessReviewer>>,
    /// Keyed by [`review_key`].
    cache: TtlCache<Vec<u8>, Decision>,
    allowed_ttl: Duration,
    denied_ttl: Duration,
    outage: Outage,
}

impl Authorizer {
    /// Without a reviewer, only the groups and paths can allow anything.
    pub fn new(
        options: &AuthorizationOptions,
        reviewer: Option<Arc<dyn AccessReviewer>>,
        clock: Clock,
    ) -> Result<Self, PathPatternError> {
        Ok(Self {
            groups: options.always_allow_groups.clone(),
            paths: AlwaysAllowPaths::new(&options.always_allow_paths)?,
            reviewer,
            cache: TtlCache::new(DECISION_CACHE_CAPACITY, clock),
            allowed_ttl: options.allowed_ttl,
            denied_ttl: options.denied_ttl,
            outage: Outage::new("SubjectAccessReview"),
        })
    }

    /// Whether the always-allow paths alone admit `target` (no identity needed).
    pub fn always_allows(&self, target: &Target) -> bool {
        self.always_allows_ref(&target.view())
    }

    fn always_allows_ref(&self, target: &TargetRef<'_>) -> bool {
        matches!(target, TargetRef::NonResource { path, .. } if self.paths.allows(path))
    }

    /// The union's decision for `user` acting on `target`.
    pub async fn authorize(&self, user: &User, target: &Target) -> Result<Decision, ReviewError> {
        self.authorize_ref(user, &target.view()).await
    }

    /// [`authorize`](Self::authorize) for a target borrowed from the request: a cached answer
    /// copies neither the user nor the target.
    pub async fn authorize_ref(&self, user: &User, target: &TargetRef<'_>) -> Result<Decision, ReviewError> {
        if user.groups.iter().any(|g| self.groups.contains(g)) || self.always_allows_ref(target) {
            return Ok(Decision::Allow);
        }
        let Some(reviewer) = &self.reviewer else {
            return Ok(Decision::NoOpinion { reason: String::new() });
        };
        let (allowed_ttl, denied_ttl) = (self.allowed_ttl, self.denied_ttl);
        let ttl = |d: &Decision| if *d == Decision::Allow { allowed_ttl } else { denied_ttl };
        let key = review_key(user, target);
        let decision = self
            .cache
            .get_or_fetch_by(key.as_slice(), ttl, || async {
                // Owned only when a review is actually sent.
                let target = target.to_target();
                reviewer.review(user, &target).await
            })
            .await;
        match &decision {
            Ok(_) => self.outage.succeeded(),
            Err(error) => self.outage.failed(error),
        }
        decision
    }
}

/// Everything a review is about, written so that two reviews share a key only if every field
/// is equal: each string is length-prefixed, each list count-prefixed, and the kind of target
/// tagged. `extra` is a `BTreeMap`, so its order is fixed.
fn review_key(user: &User, target: &TargetRef<'_>) -> Vec<u8> {
    let mut key = KeyWriter(Vec::with_capacity(256));
    key.text(&user.name);
    key.text(&user.uid);
    key.count(user.groups.len());
    for group in &user.groups {
        key.text(group);
    }
    key.count(user.extra.len());
    for (name, values) in &user.extra {
        key.text(name);
        key.count(values.len());
        for value in values {
            key.text(value);
        }
    }
    match target {
        TargetRef::Resource(r) => {
            key.0.push(b'R');
            for field in [
                r.verb,
                r.group,
                r.version,
                r.resource,
                r.subresource,
                r.namespace,
                &r.name,
            ] {
                key.text(field);
            }
        }
        TargetRef::NonResource { path, verb } => {
            key.0.push(b'N');
            key.text(path);
            key.text(verb);
        }
    }
    key.0
}

struct KeyWriter(Vec<u8>);

impl KeyWriter {
    fn count(&mut self, n: usize) {
        self.0.extend_from_slice(&(n as u64).to_le_bytes());
    }

    fn text(&mut self, text: &str) {
        self.count(text.len());
        self.0.extend_from_slice(text.as_bytes());
    }
}

/// The 403 `Status` for `user` not allowed `target`, worded as the kube-apiserver words it, e.g.
/// `pods.metrics.k8s.io is forbidden: User "alice" cannot list resource "pods" in API group
/// "metrics.k8s.io" in the namespace "default"`, with `: <reason>` when the reviewer gave one.
pub fn forbidden(user: &User, target: &Target, reason: &str) -> Status {
    let mut why = escape_html(&forbidden_message(user, target));
    if !reason.is_empty() {
        why.push_str(": ");
        why.push_str(reason);
    }
    match target {
        Target::Resource(r) => Status::forbidden(&r.group, &r.resource, &r.name, &why),
        Target::NonResource { .. } => Status::forbidden("", "", "", &why),
    }
}

fn forbidden_message(user: &User, target: &Target) -> String {
    let name = go_quote(&user.name);
    match target {
        Target::NonResource { path, verb } => format!("User {name} cannot {verb} path {}", go_quote(path)),
        Target::Resource(r) => {
            let mut resource = r.resource.clone();
            if !r.subresource.is_empty() {
                resource.push('/');
                resource.push_str(&r.subresource);
            }
            let scope = if r.namespace.is_empty() {
                "at the cluster scope".to_owned()
            } else {
                format!("in the namespace {}", go_quote(&r.namespace))
            };
            format!(
                "User {name} cannot {} resource {} in API group {} {scope}",
                r.verb,
                go_quote(&resource),
                go_quote(&r.group)
            )
        }
    }
}

/// Upstream escapes `&`, `<` and `>` in the user- and path-derived part of the message.
fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
#[path = "authz_tests.rs"]
mod tests;
