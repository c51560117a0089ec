//! Sending responses without letting a slow reader pin memory or in-flight permits.
//!
//! Handlers build complete bodies ([`Body`]: one buffer, or the shared pieces of a LIST); on the
//! way out each becomes a [`PermitBody`], which hands them to hyper in pieces of at most
//! [`CHUNK`] bytes and carries the request's in-flight permit.
//! Hyper polls for the next piece only once its own write buffer (HTTP/1.1) or the stream's flow
//! control window (HTTP/2) has room, and drops the body after the last piece or when the
//! connection or stream dies — so the permit is released exactly when the response is out of our
//! hands, not when the handler returns.
//!
//! A reader that stops reading is cut off:
//! * at the socket by [`StallGuard`](super::stall::StallGuard): no byte accepted for the stall
//!   timeout closes the connection (both protocols);
//! * for an HTTP/2 stream whose flow-control window the client keeps shut (the socket stays
//!   writable), by [`StreamExecutor`]: a stream that takes no piece of its body for the stall
//!   timeout is dropped, which resets it and releases its permit.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use super::{Body, Response};

/// Largest piece handed to hyper at once: small enough that hyper's write buffer and h2's send
/// window, not this body, decide how much is queued; large enough to keep TLS records full.
pub const CHUNK: usize = 64 * 1024;

tokio::task_local! {
    /// The progress cell of the HTTP/2 stream task being polled (see [`StreamExecutor`]).
    static PROGRESS: Arc<Progress>;
}

/// When the body being sent on this task last made progress; `None` while none is being sent.
#[derive(Debug, Default)]
pub struct Progress {
    since: Mutex<Option<Instant>>,
}

impl Progress {
    fn set(&self, value: Option<Instant>) {
        // The cell holds a plain value, so a poisoned lock's content is still good.
        *self.since.lock().unwrap_or_else(PoisonError::into_inner) = value;
    }

    fn get(&self) -> Option<Instant> {
        *self.since.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A response body being sent: the rest of the body, the request's permit, and the progress
/// cell of its HTTP/2 stream task (if any).
#[derive(Debug)]
pub struct PermitBody {
    rest: Body,
    progress: Option<Arc<Progress>>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl PermitBody {
    fn new(rest: Body, permit: Option<OwnedSemaphorePermit>) -> Self {
        let progress = if rest.is_empty() {
            None
        } else {
            // Outside an HTTP/2 stream task (HTTP/1.1) there is no cell; the socket guard suffices.
            PROGRESS.try_with(Arc::clone).ok()
        };
        if let Some(progress) = &progress {
            progress.set(Some(Instant::now()));
        }
        Self {
            rest,
            progress,
            _permit: permit,
        }
    }
}

impl Drop for PermitBody {
    fn drop(&mut self) {
        if let Some(progress) = &self.progress {
            progress.set(None);
        }
    }
}

impl hyper::body::Body for PermitBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let Some(piece) = self.rest.next_piece(CHUNK) else {
            return Poll::Ready(None);
        };
        if let Some(progress) = &self.progress {
            progress.set(Some(Instant::now()));
        }
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

/// The response ready for hyper, carrying `permit` until its body is sent.
pub fn attach(resp: Response, permit: Option<OwnedSemaphorePermit>) -> hyper::Response<PermitBody> {
    let (parts, body) = resp.into_parts();
    hyper::Response::from_parts(parts, PermitBody::new(body, permit))
}

/// Spawns hyper's HTTP/2 stream tasks on tokio, each under a watchdog that drops the stream when
/// its response body takes no piece for `stall_timeout`.
#[derive(Debug, Clone, Copy)]
pub struct StreamExecutor {
    pub stall_timeout: Duration,
}

impl<F> hyper::rt::Executor<F> for StreamExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, fut: F) {
        tokio::spawn(Watchdog {
            inner: Box::pin(fut),
            progress: Arc::default(),
            timeout: self.stall_timeout,
            timer: None,
        });
    }
}

/// Polls `inner` with its progress cell in scope; gives up on it once a body is being sent and
/// has not moved for `timeout`. Idle (no body yet, or between bodies) it never fires.
struct Watchdog<F> {
    inner: Pin<Box<F>>,
    progress: Arc<Progress>,
    timeout: Duration,
    /// Made on the first poll that leaves a body unsent: most streams send their whole (small)
    /// body in the poll that answers them, and never pay for a timer.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<F: Future<Output = ()>> Future for Watchdog<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let inner = &mut this.inner;
        if PROGRESS
            .sync_scope(this.progress.clone(), || inner.as_mut().poll(cx))
            .is_ready()
        {
            return Poll::Ready(());
        }
        loop {
            let Some(since) = this.progress.get() else {
                return Poll::Pending;
            };
            let deadline = since + this.timeout;
            let timer = this
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if this.progress.get() == Some(since) {
                tracing::debug!(timeout = ?this.timeout, "HTTP/2 client stopped reading a response: resetting the stream");
                return Poll::Ready(());
            }
        }
    }
}

#[cfg(test)]
#[path = "outbound_tests.rs"]
mod tests;
