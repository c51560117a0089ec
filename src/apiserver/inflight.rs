//! Max-in-flight: the generic apiserver's `WithMaxInFlightLimit` filter (`--max-requests-inflight`,
//! `--max-mutating-requests-inflight`), and the header-only request-body cap.
//!
//! A request takes a permit before the gate and routing; with none free it is answered at once
//! with kube's 429 Status and `Retry-After: 1`, without queueing. The permit travels with the
//! response body ([`PermitBody`](super::outbound::PermitBody)), so a request stays in flight until
//! its body has been handed to the connection or the connection died: the limit also bounds how
//! many response bodies are held in memory at once.
//!
//! Differences from upstream, on purpose:
//! * Health paths (`/healthz`, `/livez`, `/readyz` and their checks) never take a permit, so
//!   kubelet probes answer under load. Upstream's max-in-flight filter counts them (its
//!   priority-and-fairness replacement exempts them through the `probes` FlowSchema).
//! * The limit is taken before authentication, so it also bounds concurrent TokenReviews and
//!   SubjectAccessReviews; upstream takes it after authentication and exempts `system:masters`.
//! * Reads are GET and HEAD; every other method counts as mutating (upstream classifies by the
//!   request's verb, so a non-resource HEAD counts as mutating there).

use std::sync::Arc;

use hyper::header::{HeaderValue, CONTENT_LENGTH, RETRY_AFTER};
use hyper::http::request::Parts;
use hyper::Method;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Response, Status};

/// kube's message for a request over the limit (`tooManyRequests` in `maxinflight.go`).
const TOO_MANY_MESSAGE: &str = "Too many requests, please try again later.";
/// kube's `retryAfter` for max-in-flight rejections, in seconds.
const RETRY_AFTER_SECONDS: u32 = 1;

/// The two in-flight limits; `None` is no limit (a flag value of 0).
#[derive(Debug, Clone)]
pub struct InFlight {
    reads: Option<Arc<Semaphore>>,
    mutating: Option<Arc<Semaphore>>,
    max_reads: usize,
}

/// What a request gets from [`InFlight::admit`].
#[derive(Debug)]
pub enum Admission {
    /// Go ahead; the permit (if a limit applies) must live as long as the response body.
    Admitted(Option<OwnedSemaphorePermit>),
    /// Over the limit: answer [`too_many_requests`].
    Rejected,
}

impl InFlight {
    /// Limits of `max_reads` GET/HEAD and `max_mutating` other requests; 0 disables a limit.
    pub fn new(max_reads: usize, max_mutating: usize) -> Self {
        let limit = |n: usize| (n > 0).then(|| Arc::new(Semaphore::new(n.min(Semaphore::MAX_PERMITS))));
        Self {
            reads: limit(max_reads),
            mutating: limit(max_mutating),
            max_reads,
        }
    }

    /// Takes a permit for `req` without waiting; health paths are admitted without one.
    pub fn admit(&self, req: &Parts) -> Admission {
        if is_exempt(req.uri.path()) {
            return Admission::Admitted(None);
        }
        let read = req.method == Method::GET || req.method == Method::HEAD;
        let limit = if read { &self.reads } else { &self.mutating };
        match limit {
            None => Admission::Admitted(None),
            Some(semaphore) => match semaphore.clone().try_acquire_owned() {
                Ok(permit) => Admission::Admitted(Some(permit)),
                Err(_no_permit) => Admission::Rejected,
            },
        }
    }

    /// Read requests holding a permit now (0 without a read limit), for tests and debugging.
    pub fn reads_in_flight(&self) -> usize {
        self.reads
            .as_ref()
            .map_or(0, |s| self.max_reads.saturating_sub(s.available_permits()))
    }
}

/// `/healthz`, `/livez`, `/readyz` and anything below them: always answered, never limited.
pub fn is_exempt(path: &str) -> bool {
    ["/healthz", "/livez", "/readyz"].iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// kube's answer over the limit: 429, `TooManyRequests` Status with `retryAfterSeconds: 1`, and
/// `Retry-After: 1`.
pub fn too_many_requests() -> Response {
    let mut resp = Status::too_many_requests(TOO_MANY_MESSAGE, RETRY_AFTER_SECONDS).into_response();
    resp.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    resp
}

/// A 413 Status when the request declares a body over `limit` bytes. The body itself is never
/// read, so the check needs only `Content-Length`; a chunked body is not read either.
pub fn oversized_body(req: &Parts, limit: u64) -> Option<Response> {
    let declared = req.headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse::<u64>().ok()?;
    (declared > limit).then(|| Status::request_entity_too_large(limit).into_response())
}

#[cfg(test)]
#[path = "inflight_tests.rs"]
mod tests;
