//! Gathers a connection's small writes until it is flushed, so they leave as one TLS record in
//! one `writev`.
//!
//! tokio-rustls encrypts every write into its own record(s) and sends them at once. Over a
//! vectored transport h2 writes (and flushes) each frame whose payload is over 256 bytes on its
//! own (a small GET answer is a HEADERS and a DATA frame), so an HTTP/2 connection answering 16
//! concurrent GETs paid one record and one system call per response. This buffer reports itself
//! non-vectored, so h2 packs frames of up to 1 KiB into its own buffer and writes them together,
//! and gathers the writes that fit in [`RECORD`] bytes here, handing them to TLS on flush or
//! ahead of the next write that does not fit (a LIST's 16 KiB DATA payload), which goes
//! straight through in the same call: it is never copied.
//!
//! A LIST is sent as one piece per node (a few KiB each, see [`super::body`]): h2 writes each
//! such payload right after its frame head, which is gathered here. So a write over
//! [`GATHER_AFTER`] bytes that follows gathered bytes is never gathered itself, even if it
//! fits: it goes straight through with them, uncopied.
//!
//! The buffer is bounded, so a client that stops reading still stalls the writes below it
//! ([`StallGuard`](super::stall::StallGuard)). A capacity of 0 passes every write through
//! untouched (HTTP/1.1: hyper already gathers a response into one vectored write).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most plaintext one TLS record carries: more gathered would only split into records
/// anyway, and the copy would stop paying.
pub const RECORD: usize = 16 * 1024;

/// The largest write gathered after other gathered bytes: h2 copies DATA payloads up to 1 KiB
/// into its own buffer, so a write bigger than that after a frame head is a payload (or h2's
/// buffer of many frames, big enough to leave as it is).
pub const GATHER_AFTER: usize = 1024;

/// `inner`, with small writes gathered until a flush.
#[derive(Debug)]
pub struct WriteBatch<T> {
    inner: T,
    /// Gathered bytes; `pending[sent..]` is still to be written.
    pending: Vec<u8>,
    sent: usize,
    capacity: usize,
    /// A flush has yielded once since the last one that wrote (see `poll_flush`).
    yielded: bool,
}

impl<T> WriteBatch<T> {
    /// Gathers up to `capacity` bytes (0: none, every write goes straight to `inner`).
    pub fn new(inner: T, capacity: usize) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            sent: 0,
            capacity,
            yielded: false,
        }
    }

    /// Notes that `n` gathered bytes were written; empties the buffer once all were.
    fn consume(&mut self, n: usize) {
        self.sent += n;
        if self.sent >= self.pending.len() {
            self.pending.clear();
            self.sent = 0;
        }
    }
}

impl<T: AsyncWrite + Unpin> WriteBatch<T> {
    /// Writes what is gathered until none is left.
    fn poll_write_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let unsent = &self.pending[self.sent..];
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, unsent))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.consume(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteBatch<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteBatch<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        let nothing_gathered = this.sent >= this.pending.len();
        if this.pending.len() + len <= this.capacity && (nothing_gathered || len <= GATHER_AFTER) {
            for buf in bufs {
                this.pending.extend_from_slice(buf);
            }
            return Poll::Ready(Ok(len));
        }
        loop {
            let unsent = &this.pending[this.sent..];
            if unsent.is_empty() {
                return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
            }
            let gathered = unsent.len();
            // What is gathered goes first, in the same call as (the start of) this write.
            let mut slices = [IoSlice::new(&[]); 4];
            slices[0] = IoSlice::new(unsent);
            let count = 1 + bufs.len().min(slices.len() - 1);
            slices[1..count].copy_from_slice(&bufs[..count - 1]);
            let n = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, &slices[..count]))?;
            if n == 0 {
                return Poll::Ready(Ok(0));
            }
            this.consume(n.min(gathered));
            if n > gathered {
                return Poll::Ready(Ok(n - gathered));
            }
        }
    }

    /// Not when gathering: h2 then copies frames of up to 1 KiB (a GET's answer) into its own
    /// buffer and writes many per call instead of one call per frame, and the bigger frames it
    /// writes in two calls (head, payload) are joined again here.
    fn is_write_vectored(&self) -> bool {
        self.capacity == 0 && self.inner.is_write_vectored()
    }

    /// Writes what is gathered, but first yields once: the streams whose answers are ready
    /// run in their own tasks, and each wakes this connection as it answers (the wake that
    /// comes during a poll runs the task again right away). Behind the yield, those queued
    /// first add their frames, so one record carries them all.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.sent < self.pending.len() && !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.yielded = false;
        ready!(self.poll_write_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "write_batch_tests.rs"]
mod tests;
