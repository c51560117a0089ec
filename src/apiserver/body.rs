//! A response body made of shared pieces, sent one after another.
//!
//! Most answers are one buffer. The LIST of every pod is not: it is a header, each node's
//! cached chunk of encoded items and a footer ([`crate::api::list_cache`]), and gluing those
//! into one 68 MB buffer was a copy of every byte per list before TLS copied them again. Here
//! each piece is a `Bytes` handle onto the bytes where they already are, and hyper hands them
//! to the connection as they come: HTTP/1.1 queues them for one vectored write (the transport
//! says it is vectored through every wrapper), HTTP/2 frames each as DATA without a copy.
//!
//! The length is known up front, so the response carries `Content-Length`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};

/// A complete response body: pieces of bytes, sent in order.
#[derive(Debug, Default, Clone)]
pub struct Body {
    /// The piece sent next; a single-piece body needs no queue (and allocates nothing).
    head: Bytes,
    /// The pieces after `head`; none is empty.
    tail: VecDeque<Bytes>,
    /// Bytes in `head` and `tail`.
    len: usize,
}

impl Body {
    /// A body of one buffer.
    pub fn new(bytes: Bytes) -> Self {
        Body {
            len: bytes.len(),
            head: bytes,
            tail: VecDeque::new(),
        }
    }

    /// A body of `pieces` in order (empty ones are skipped). A `Vec` becomes the queue as it
    /// is, without a copy of its handles.
    pub fn from_pieces(pieces: impl Into<VecDeque<Bytes>>) -> Self {
        let mut tail = pieces.into();
        tail.retain(|piece| !piece.is_empty());
        let head = tail.pop_front().unwrap_or_default();
        let len = head.len() + tail.iter().map(Bytes::len).sum::<usize>();
        Body { head, tail, len }
    }

    /// Appends `piece` to what is sent.
    pub fn push(&mut self, piece: Bytes) {
        if piece.is_empty() {
            return;
        }
        self.len += piece.len();
        if self.head.is_empty() {
            self.head = piece;
        } else {
            self.tail.push_back(piece);
        }
    }

    /// Bytes left to send.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pieces left to send, in order.
    pub fn pieces(&self) -> impl Iterator<Item = &Bytes> {
        std::iter::once(&self.head)
            .filter(|head| !head.is_empty())
            .chain(self.tail.iter())
    }

    /// The whole body as one buffer: the piece itself when there is one, else a copy. For
    /// tests and in-process callers; the server sends the pieces.
    pub fn to_bytes(&self) -> Bytes {
        if self.tail.is_empty() {
            return self.head.clone();
        }
        let mut all = BytesMut::with_capacity(self.len);
        for piece in self.pieces() {
            all.extend_from_slice(piece);
        }
        all.freeze()
    }

    /// The next at most `max` bytes to send, or `None` once all were taken.
    pub fn next_piece(&mut self, max: usize) -> Option<Bytes> {
        if self.head.is_empty() {
            return None;
        }
        let piece = if self.head.len() > max {
            self.head.split_to(max.max(1))
        } else {
            let next = self.tail.pop_front().unwrap_or_default();
            std::mem::replace(&mut self.head, next)
        };
        self.len -= piece.len();
        Some(piece)
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body::new(bytes)
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    /// One frame per piece.
    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.next_piece(usize::MAX).map(|piece| Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len as u64)
    }
}

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;
