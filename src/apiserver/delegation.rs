//! The admission gate in front of every request: authenticate ([`Authenticator`]), then
//! authorize ([`Authorizer`]), then let the request through or answer it with the Status the
//! kube-apiserver would send: 401 `Unauthorized`, 403 worded by [`authz::forbidden`], or a
//! detail-free 500 when the SubjectAccessReview could not be made (the cause is logged by the
//! authorizer, once per outage).
//!
//! [`Delegation::start`] builds the production gate from kube clients (the CA ConfigMap and
//! TokenReviews through the authentication client, SubjectAccessReviews through the
//! authorization one); [`Delegation::new`] takes the parts, so tests can plug in fakes and a
//! hand-moved clock. Routing is [`serve`](super::serve)'s business.

use std::path::Path;
use std::sync::Arc;

use hyper::header::{HeaderValue, X_CONTENT_TYPE_OPTIONS};
use hyper::http::request::Parts;

use super::authn::{AuthenticationOptions, Authenticator, KeyError, TokenReviewer, User};
use super::authz::{self, AccessReviewer, AuthorizationOptions, Authorizer, Decision, PathPatternError};
use super::cache::Clock;
use super::client_ca::{self, TrustOptions, TrustSource};
use super::client_cert::PeerChain;
use super::request_info::{self, Target};
use super::review::{KubeAccessReviewer, KubeTokenReviewer};
use super::{Response, Status, StatusReason};

/// Everything delegated authentication and authorization need besides clients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DelegationOptions {
    pub trust: TrustOptions,
    pub authentication: AuthenticationOptions,
    pub authorization: AuthorizationOptions,
}

/// Why the gate could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Trust(#[from] client_ca::Error),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("--authorization-always-allow-paths")]
    AlwaysAllowPaths(#[from] PathPatternError),
}

/// Why a request was turned away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// 401: credentials were presented and failed (or anonymous requests are off).
    Unauthorized,
    /// 403: authenticated, not allowed.
    Forbidden(Box<Forbidden>),
    /// 500: the authorization check itself failed.
    AuthorizationUnavailable,
}

impl Rejection {
    /// The Status response, as the kube-apiserver sends it.
    pub fn into_response(self) -> Response {
        match self {
            Rejection::Unauthorized => Status::unauthorized("Unauthorized").into_response(),
            Rejection::Forbidden(refused) => {
                let mut response = authz::forbidden(&refused.user, &refused.target, &refused.reason).into_response();
                response
                    .headers_mut()
                    .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
                response
            }
            Rejection::AuthorizationUnavailable => Status::new(
                500,
                StatusReason::InternalError,
                "Internal error occurred: the request could not be authorized",
            )
            .into_response(),
        }
    }
}

/// Who was refused what, and the reviewer's reason (may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden {
    pub user: User,
    pub target: Target,
    pub reason: String,
}

/// Authentication plus authorization.
#[derive(Debug)]
pub struct Delegation {
    authn: Authenticator,
    authz: Authorizer,
}

impl Delegation {
    /// A gate from its two halves.
    pub fn new(authn: Authenticator, authz: Authorizer) -> Self {
        Self { authn, authz }
    }

    /// The production gate: reads (and watches) the CA ConfigMap and sends TokenReviews through
    /// `authn_client`, SubjectAccessReviews through `authz_client`.
    pub async fn start(
        options: &DelegationOptions,
        authn_client: kube::Client,
        authz_client: kube::Client,
        clock: Clock,
    ) -> Result<Self, Error> {
        let trust = TrustSource::start(&options.trust, Some(authn_client.clone())).await?;
        let tokens: Arc<dyn TokenReviewer> = Arc::new(KubeTokenReviewer::new(authn_client));
        let access: Arc<dyn AccessReviewer> = Arc::new(KubeAccessReviewer::new(authz_client));
        let authn = Authenticator::new(&options.authentication, trust, Some(tokens), clock.clone())?;
        let authz = Authorizer::new(&options.authorization, Some(access), clock)?;
        Ok(Self { authn, authz })
    }

    /// The authenticator (e.g. to watch trust changes).
    pub fn authenticator(&self) -> &Authenticator {
        &self.authn
    }

    /// Admits `req` (from a connection whose client presented `peer`) as its user, or says why
    /// not. A request whose answers are cached copies no user, target or path.
    pub async fn admit(&self, req: &Parts, peer: &PeerChain) -> Result<Arc<User>, Rejection> {
        let user = match self.authn.authenticate_shared(req, peer).await {
            Ok(user) => user,
            Err(why) => {
                tracing::debug!(path = req.uri.path(), reason = %why, "unauthorized");
                return Err(Rejection::Unauthorized);
            }
        };
        let path = request_info::decode_path(req.uri.path());
        let target = request_info::target_of(&req.method, &path, req.uri.query());
        match self.authz.authorize_ref(&user, &target).await {
            Ok(Decision::Allow) => Ok(user),
            Ok(decision) => {
                tracing::debug!(user = %user.name, path = req.uri.path(), reason = decision.reason(), "forbidden");
                Err(Rejection::Forbidden(Box::new(Forbidden {
                    reason: decision.reason().to_owned(),
                    user: Arc::unwrap_or_clone(user),
                    target: target.to_target(),
                })))
            }
            Err(_logged_by_the_authorizer) => Err(Rejection::AuthorizationUnavailable),
        }
    }
}

/// Why a delegated client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no {flag} given and the in-cluster configuration is unusable; run in a pod with a service account or pass {flag}")]
    InCluster {
        flag: &'static str,
        #[source]
        source: kube::config::InClusterError,
    },
    #[error("reading {flag} {path}")]
    Read {
        flag: &'static str,
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("making a client from {flag}")]
    Client {
        flag: &'static str,
        #[source]
        source: kube::Error,
    },
}

/// A client from `kubeconfig` (the value of `flag`), or the in-cluster service account when it is
/// empty. Upstream does not fall back to `--kubeconfig` here, and neither does this.
pub async fn delegated_client(kubeconfig: &str, flag: &'static str) -> Result<kube::Client, ClientError> {
    let config = if kubeconfig.is_empty() {
        kube::Config::incluster().map_err(|source| ClientError::InCluster { flag, source })?
    } else {
        let read = |source| ClientError::Read {
            flag,
            path: kubeconfig.to_owned(),
            source,
        };
        let file = kube::config::Kubeconfig::read_from(Path::new(kubeconfig)).map_err(read)?;
        kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(read)?
    };
    kube::Client::try_from(config).map_err(|source| ClientError::Client { flag, source })
}

#[cfg(test)]
#[path = "delegation_tests.rs"]
mod tests;
