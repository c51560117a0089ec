//! The two questions asked of the kube-apiserver: TokenReview (`authentication.k8s.io/v1`) and
//! SubjectAccessReview (`authorization.k8s.io/v1`), each bounded by upstream's 10 s timeout,
//! plus [`Outage`], which logs a failing reviewer once when it starts failing and once when it
//! recovers. Tokens never appear in an error or a log line. Caching is the callers' business.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;

use super::authn::{TokenReviewer, User};
use super::authz::{AccessReviewer, Decision};
use super::request_info::Target;

/// Upstream's timeout for both reviews.
pub const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a review has no answer.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("creating a {kind}")]
    Request {
        kind: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("creating a {kind}: no answer within {after:?}")]
    Timeout { kind: &'static str, after: Duration },
    #[error("the {kind} came back without a status")]
    NoStatus { kind: &'static str },
    #[error("the {kind} reviewer is unavailable: {why}")]
    Unavailable { kind: &'static str, why: String },
}

/// Logs a reviewer's failures once per outage.
#[derive(Debug)]
pub(crate) struct Outage {
    what: &'static str,
    failing: AtomicBool,
}

impl Outage {
    pub(crate) fn new(what: &'static str) -> Self {
        Self {
            what,
            failing: AtomicBool::new(false),
        }
    }

    pub(crate) fn failed(&self, error: &ReviewError) {
        let chain = super::error_chain(error);
        if self.failing.swap(true, Ordering::Relaxed) {
            tracing::debug!(error = %chain, "{} still failing", self.what);
        } else {
            tracing::warn!(error = %chain, "{} failed; affected requests are refused until it answers again", self.what);
        }
    }

    pub(crate) fn succeeded(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!("{} answers again", self.what);
        }
    }
}

/// TokenReview through a Kubernetes client.
#[derive(Clone)]
pub struct KubeTokenReviewer {
    client: kube::Client,
}

impl std::fmt::Debug for KubeTokenReviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KubeTokenReviewer")
    }
}

impl KubeTokenReviewer {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    async fn ask(&self, token: &str) -> Result<Option<User>, ReviewError> {
        const KIND: &str = "TokenReview";
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let api = kube::Api::<TokenReview>::all(self.client.clone());
        let answer = tokio::time::timeout(REVIEW_TIMEOUT, api.create(&PostParams::default(), &review))
            .await
            .map_err(|_| ReviewError::Timeout {
                kind: KIND,
                after: REVIEW_TIMEOUT,
            })?
            .map_err(|source| ReviewError::Request { kind: KIND, source })?;
        let status = answer.status.ok_or(ReviewError::NoStatus { kind: KIND })?;
        if status.authenticated != Some(true) {
            return Ok(None);
        }
        let info = status.user.unwrap_or_default();
        Ok(Some(User {
            name: info.username.unwrap_or_default(),
            uid: info.uid.unwrap_or_default(),
            groups: info.groups.unwrap_or_default(),
            extra: info.extra.unwrap_or_default(),
        }))
    }
}

impl TokenReviewer for KubeTokenReviewer {
    fn review<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<User>, ReviewError>> {
        self.ask(token).boxed()
    }
}

/// SubjectAccessReview through a Kubernetes client.
#[derive(Clone)]
pub struct KubeAccessReviewer {
    client: kube::Client,
}

impl std::fmt::Debug for KubeAccessReviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KubeAccessReviewer")
    }
}

impl KubeAccessReviewer {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    async fn ask(&self, user: &User, target: &Target) -> Result<Decision, ReviewError> {
        const KIND: &str = "SubjectAccessReview";
        let review = SubjectAccessReview {
            spec: access_review_spec(user, target),
            ..SubjectAccessReview::default()
        };
        let api = kube::Api::<SubjectAccessReview>::all(self.client.clone());
        let answer = tokio::time::timeout(REVIEW_TIMEOUT, api.create(&PostParams::default(), &review))
            .await
            .map_err(|_| ReviewError::Timeout {
                kind: KIND,
                after: REVIEW_TIMEOUT,
            })?
            .map_err(|source| ReviewError::Request { kind: KIND, source })?;
        let status = answer.status.ok_or(ReviewError::NoStatus { kind: KIND })?;
        let reason = status.reason.unwrap_or_default();
        Ok(if status.allowed {
            Decision::Allow
        } else if status.denied == Some(true) {
            Decision::Deny { reason }
        } else {
            Decision::NoOpinion { reason }
        })
    }
}

impl AccessReviewer for KubeAccessReviewer {
    fn review<'a>(&'a self, user: &'a User, target: &'a Target) -> BoxFuture<'a, Result<Decision, ReviewError>> {
        self.ask(user, target).boxed()
    }
}

/// The review's spec: who, and either the resource or the non-resource attributes.
pub fn access_review_spec(user: &User, target: &Target) -> SubjectAccessReviewSpec {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let (resource_attributes, non_resource_attributes) = match target {
        Target::Resource(r) => (
            Some(ResourceAttributes {
                namespace: some(&r.namespace),
                verb: some(&r.verb),
                group: some(&r.group),
                version: some(&r.version),
                resource: some(&r.resource),
                subresource: some(&r.subresource),
                name: some(&r.name),
                ..ResourceAttributes::default()
            }),
            None,
        ),
        Target::NonResource { path, verb } => (
            None,
            Some(NonResourceAttributes {
                path: Some(path.clone()),
                verb: Some(verb.clone()),
            }),
        ),
    };
    SubjectAccessReviewSpec {
        user: some(&user.name),
        uid: some(&user.uid),
        groups: (!user.groups.is_empty()).then(|| user.groups.clone()),
        extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
        resource_attributes,
        non_resource_attributes,
    }
}
