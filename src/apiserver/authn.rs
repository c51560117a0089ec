//! Who sent a request: the delegated authentication every aggregated API server does (spec
//! §4.1), in upstream's order.
//!
//! 1. **Front proxy** (request header): when the connection's client certificate chains to the
//!    request-header CA and (if names are set) its CN is allowed, the user is read from the
//!    username/UID/group/extra headers. Headers on any other connection are ignored.
//! 2. **Client certificate**: a chain to the client CA makes the user its CN, groups its O.
//! 3. **Bearer token**: `Authorization: Bearer …` is sent to a TokenReview; answers (yes and no)
//!    are cached for the TTL, keyed by an HMAC of the token under a per-process random key, so
//!    no token is held in memory past the request or written anywhere.
//! 4. **Anonymous**: a request with no credentials is `system:anonymous` in
//!    `system:unauthenticated`.
//!
//! As upstream, a credential that is presented and fails (an untrusted certificate, a token the
//! review rejects or could not check) makes the request unauthorized rather than anonymous,
//! unless a later step succeeds. Authenticated users gain `system:authenticated`. Chain
//! verdicts are memoized per connection and trust generation. This file decides identity only;
//! what the identity may do is [`authz`](super::authz)'s question.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use hyper::header::{HeaderMap, AUTHORIZATION};
use hyper::http::request::Parts;

use super::cache::{Clock, TtlCache};
use super::client_ca::{RequestHeaderConfig, Trust, TrustSource};
use super::client_cert::PeerChain;
use super::review::{Outage, ReviewError};

/// The anonymous user's name.
pub const ANONYMOUS: &str = "system:anonymous";
/// The group of every anonymous request.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The group added to every authenticated user.
pub const AUTHENTICATED: &str = "system:authenticated";

/// How long a connection's certificate verdict is reused before its chain is verified again
/// (certificates expire; a kept-alive connection can outlive one).
const VERDICT_MAX_AGE: Duration = Duration::from_secs(60);
/// Bound on cached token answers.
const TOKEN_CACHE_CAPACITY: usize = 4096;

/// An authenticated identity, as Kubernetes' `user.Info`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl User {
    /// `system:anonymous` in `system:unauthenticated`.
    pub fn anonymous() -> Self {
        Self {
            name: ANONYMOUS.to_owned(),
            groups: vec![UNAUTHENTICATED.to_owned()],
            ..Self::default()
        }
    }

    /// Adds `system:authenticated` unless the user already is in it (or is unauthenticated).
    fn with_authenticated_group(mut self) -> Self {
        let marked = self.groups.iter().any(|g| g == AUTHENTICATED || g == UNAUTHENTICATED);
        if !marked && self.name != ANONYMOUS {
            self.groups.push(AUTHENTICATED.to_owned());
        }
        self
    }
}

/// Checks bearer tokens (a TokenReview in production).
pub trait TokenReviewer: Send + Sync + std::fmt::Debug {
    /// `Some(user)` if the token is valid, `None` if it is not, `Err` if that is unknown.
    fn review<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<User>, ReviewError>>;
}

/// Why a request is unauthorized (kept for the debug log; the client only hears 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unauthenticated {
    #[error("the client certificate is not trusted")]
    UntrustedCertificate,
    #[error("the bearer token is not valid")]
    InvalidToken,
    #[error("the bearer token could not be reviewed")]
    TokenReviewFailed,
    #[error("no credentials, and anonymous requests are disabled")]
    AnonymousDisabled,
}

/// One step's verdict on a connection's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict<T> {
    /// Not configured, or no certificate presented: no opinion.
    NotApplicable,
    Trusted(T),
    Rejected,
}

/// What a connection's certificate is worth under one [`Trust`].
#[derive(Debug)]
pub struct PeerVerdict {
    front_proxy: Verdict<()>,
    /// Already in `system:authenticated`: every request on the connection shares it.
    client: Verdict<Arc<User>>,
}

impl PeerVerdict {
    fn judge(trust: &Trust, peer: &PeerChain) -> Self {
        let Some(chain) = peer.chain() else {
            return Self {
                front_proxy: Verdict::NotApplicable,
                client: Verdict::NotApplicable,
            };
        };
        let front_proxy = match &trust.request_header {
            None => Verdict::NotApplicable,
            Some(config) => match config.ca.verify(chain) {
                Ok(subject)
                    if config.allowed_names.is_empty() || config.allowed_names.contains(&subject.common_name) =>
                {
                    Verdict::Trusted(())
                }
                Ok(subject) => {
                    tracing::debug!(cn = %subject.common_name, "front-proxy certificate CN is not in the allowed names");
                    Verdict::Rejected
                }
                Err(error) => {
                    tracing::debug!(error = %super::error_chain(&error), ca = config.ca.origin(), "not a front-proxy certificate");
                    Verdict::Rejected
                }
            },
        };
        let client = match &trust.client_ca {
            None => Verdict::NotApplicable,
            Some(ca) => match ca.verify(chain) {
                // Upstream: a certificate without a CN names nobody; no opinion.
                Ok(subject) if subject.common_name.is_empty() => Verdict::NotApplicable,
                Ok(subject) => Verdict::Trusted(Arc::new(
                    User {
                        name: subject.common_name,
                        groups: subject.organizations,
                        ..User::default()
                    }
                    .with_authenticated_group(),
                )),
                Err(error) => {
                    tracing::debug!(error = %super::error_chain(&error), ca = ca.origin(), "client certificate not trusted");
                    Verdict::Rejected
                }
            },
        };
        Self { front_proxy, client }
    }
}

/// Settings of authentication that are not about CAs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationOptions {
    /// Requests without credentials are `system:anonymous` (upstream default: true).
    pub anonymous: bool,
    /// `--authentication-token-webhook-cache-ttl` (10s).
    pub token_cache_ttl: Duration,
}

impl Default for AuthenticationOptions {
    fn default() -> Self {
        Self {
            anonymous: true,
            token_cache_ttl: Duration::from_secs(10),
        }
    }
}

/// The authenticator chain.
pub struct Authenticator {
    trust: TrustSource,
    tokens: Option<Tokens>,
    /// `system:anonymous`, when anonymous requests are allowed.
    anonymous: Option<Arc<User>>,
    clock: Clock,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("trust", &self.trust)
            .field("tokens", &self.tokens)
            .field("anonymous", &self.anonymous.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Tokens {
    reviewer: Arc<dyn TokenReviewer>,
    /// Keyed by HMAC-SHA256(token); `None` caches a rejected token. A user is cached already
    /// in `system:authenticated` and shared, so a cached token costs no copy of it.
    cache: TtlCache<[u8; 32], Option<Arc<User>>>,
    ttl: Duration,
    key: HmacKey,
    outage: Outage,
}

/// The per-process key of the token cache's HMAC (never logged).
struct HmacKey(ring::hmac::Key);

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey(<redacted>)")
    }
}

/// The system's random source failed while making the token cache key.
#[derive(Debug, thiserror::Error)]
#[error("generating the token cache key: no randomness available")]
pub struct KeyError;

impl Authenticator {
    /// Certificates judged by `trust`, tokens (if a reviewer is given) by `tokens`.
    pub fn new(
        options: &AuthenticationOptions,
        trust: TrustSource,
        tokens: Option<Arc<dyn TokenReviewer>>,
        clock: Clock,
    ) -> Result<Self, KeyError> {
        let tokens = match tokens {
            Some(reviewer) => {
                let rng = ring::rand::SystemRandom::new();
                let key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng).map_err(|_| KeyError)?;
                Some(Tokens {
                    reviewer,
                    cache: TtlCache::new(TOKEN_CACHE_CAPACITY, clock.clone()),
                    ttl: options.token_cache_ttl,
                    key: HmacKey(key),
                    outage: Outage::new("TokenReview"),
                })
            }
            None => None,
        };
        Ok(Self {
            trust,
            tokens,
            anonymous: options.anonymous.then(|| Arc::new(User::anonymous())),
            clock,
        })
    }

    /// The trust source (tests wait on its changes).
    pub fn trust(&self) -> &TrustSource {
        &self.trust
    }

    /// Who sent `req` over a connection whose client presented `peer`.
    pub async fn authenticate(&self, req: &Parts, peer: &PeerChain) -> Result<User, Unauthenticated> {
        self.authenticate_shared(req, peer).await.map(Arc::unwrap_or_clone)
    }

    /// [`authenticate`](Self::authenticate) without copying a user that is cached (a bearer
    /// token's, a client certificate's, the anonymous one).
    pub async fn authenticate_shared(&self, req: &Parts, peer: &PeerChain) -> Result<Arc<User>, Unauthenticated> {
        let trust = self.trust.current();
        let verdict = peer.verdict(trust.generation, (self.clock)(), VERDICT_MAX_AGE, || {
            PeerVerdict::judge(&trust, peer)
        });
        let mut failure = None;
        match (&verdict.front_proxy, &trust.request_header) {
            (Verdict::Trusted(()), Some(config)) => {
                if let Some(user) = from_headers(config, &req.headers) {
                    return Ok(Arc::new(user.with_authenticated_group()));
                }
            }
            (Verdict::Rejected, _) => failure = Some(Unauthenticated::UntrustedCertificate),
            _ => {}
        }
        match &verdict.client {
            Verdict::Trusted(user) => return Ok(user.clone()),
            Verdict::Rejected => failure = Some(Unauthenticated::UntrustedCertificate),
            Verdict::NotApplicable => {}
        }
        if let (Some(token), Some(tokens)) = (bearer_token(&req.headers), &self.tokens) {
            match tokens.review(token).await {
                Ok(Some(user)) => return Ok(user),
                Ok(None) => failure = Some(Unauthenticated::InvalidToken),
                Err(_) => failure = Some(Unauthenticated::TokenReviewFailed),
            }
        }
        match (failure, &self.anonymous) {
            (Some(why), _) => Err(why),
            (None, Some(anonymous)) => Ok(anonymous.clone()),
            (None, None) => Err(Unauthenticated::AnonymousDisabled),
        }
    }
}

impl Tokens {
    async fn review(&self, token: &str) -> Result<Option<Arc<User>>, ReviewError> {
        let tag = ring::hmac::sign(&self.key.0, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(tag.as_ref());
        let ttl = self.ttl;
        let answer = self
            .cache
            .get_or_fetch(
                key,
                |_| ttl,
                || async {
                    let reviewed = self.reviewer.review(token).await?;
                    Ok(reviewed.map(|user| Arc::new(user.with_authenticated_group())))
                },
            )
            .await;
        match &answer {
            Ok(_) => self.outage.succeeded(),
            Err(error) => self.outage.failed(error),
        }
        answer
    }
}

/// `Authorization: Bearer <token>` as upstream reads it: the scheme in any case, one space, a
/// non-empty token, and nothing after a further space.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let mut parts = value.splitn(3, ' ');
    let (scheme, token) = (parts.next()?, parts.next()?);
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The user a trusted front proxy names in headers, or `None` without a username.
fn from_headers(config: &RequestHeaderConfig, headers: &HeaderMap) -> Option<User> {
    let first = |names: &[hyper::header::HeaderName]| {
        names
            .iter()
            .filter_map(|n| headers.get(n))
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .find(|v| !v.is_empty())
    };
    let name = first(&config.username_headers)?;
    let groups = config
        .group_headers
        .iter()
        .flat_map(|n| headers.get_all(n))
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .filter(|v| !v.trim().is_empty())
        .collect();
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (header, value) in headers {
        let Some(key) = config
            .extra_header_prefixes
            .iter()
            .find_map(|p| header.as_str().strip_prefix(p.as_str()))
        else {
            continue;
        };
        let key = percent_encoding::percent_decode_str(key)
            .decode_utf8()
            .map_or_else(|_| key.to_owned(), |k| k.to_lowercase());
        extra
            .entry(key)
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    Some(User {
        name,
        uid: first(&config.uid_headers).unwrap_or_default(),
        groups,
        extra,
    })
}

#[cfg(test)]
#[path = "authn_tests.rs"]
mod tests;
