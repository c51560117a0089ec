//! A TLS client stream on rustls's unbuffered API, owning its byte buffers so that an idle
//! connection holds none.
//!
//! tokio-rustls wraps rustls's buffered `ClientConnection`, whose record buffer never shrinks
//! below 4 KiB and is zero-filled again on every resize. At 5,000 kept-alive kubelet
//! connections, idle for a whole resolution each, those buffers are a large part of the
//! server's memory. Here the received and to-be-sent TLS bytes live in [`ByteQueue`]s that
//! [`TlsStream::release_buffers`] frees when the connection goes idle, leaving only the socket
//! and rustls's connection state (keys, session). While in use, the socket is read into the
//! incoming queue's spare capacity (nothing is zero-filled for it) and records are decrypted
//! in place there.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, InsufficientSizeError, ReadTraffic};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The least room a read from the socket is offered: a TLS record is up to 16 KiB of
/// plaintext plus its header and tag, and a response's records come back to back.
const READ_ROOM: usize = 16 * 1024;
/// What rustls adds to each record it encrypts, at most (header, TLS 1.2 explicit nonce,
/// TLS 1.3 inner content type, AEAD tag), rounded up.
const RECORD_OVERHEAD: usize = 64;
/// The most plaintext one record carries.
const MAX_FRAGMENT: usize = 16 * 1024;
/// The most plaintext one write takes.
const MAX_WRITE: usize = 4 * MAX_FRAGMENT;
/// Room first offered for a handshake record (rustls asks for more when one is larger, as a
/// client certificate chain may be).
const HANDSHAKE_ROOM: usize = 4 * 1024;

/// Bytes received and not yet processed, or encoded and not yet sent: `buf[start..end]`.
/// Encoding fills [`ByteQueue::room`]: the rest of `buf`, zero-filled once and reused, so
/// only growing the buffer pays for zeroing. Reading ([`ByteQueue::poll_fill`]) appends in
/// the spare capacity instead.
#[derive(Default)]
struct ByteQueue {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ByteQueue {
    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn pending_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    /// Drops `n` bytes from the front of what is pending.
    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// At least `min` bytes of room after what is pending, moving that to the front or growing
    /// the buffer when the room left is smaller. Fill it, then [`ByteQueue::commit`].
    fn room(&mut self, min: usize) -> &mut [u8] {
        if self.buf.len() - self.end < min {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < min {
                self.buf.resize(self.end + min, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// Reads from `io` after what is pending, into at least `min` bytes of the buffer's spare
    /// capacity (moving what is pending to the front first if there is less): no room is
    /// zero-filled for it. `Ok(0)` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>, io: &mut impl ReadIntoSpare, min: usize) -> Poll<io::Result<usize>> {
        self.buf.truncate(self.end);
        if self.buf.capacity() - self.end < min && self.start > 0 {
            self.buf.drain(..self.start);
            self.end -= self.start;
            self.start = 0;
        }
        self.buf.reserve(min);
        let n = ready!(io.poll_read_spare(cx, &mut self.buf))?;
        self.end = self.buf.len();
        Poll::Ready(Ok(n))
    }

    /// Makes `n` bytes written into [`ByteQueue::room`] pending.
    fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    fn push(&mut self, bytes: &[u8]) {
        self.room(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.commit(bytes.len());
    }

    /// Frees the buffer; pending bytes, if any, are kept in an allocation of just their size.
    fn release(&mut self) {
        let pending = if self.is_empty() {
            Vec::new()
        } else {
            self.pending().to_vec()
        };
        self.start = 0;
        self.end = pending.len();
        self.buf = pending;
    }

    fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

/// A transport that reads into a `Vec`'s spare capacity, so that received TLS bytes need no
/// zero-filled room (tokio's `TcpStream::try_read_buf`; no unsafe here).
pub(crate) trait ReadIntoSpare {
    /// Appends what one read returns to `buf` (within its spare capacity); `Ok(0)` at the end
    /// of the stream.
    fn poll_read_spare(&mut self, cx: &mut Context<'_>, buf: &mut Vec<u8>) -> Poll<io::Result<usize>>;
}

impl ReadIntoSpare for TcpStream {
    fn poll_read_spare(&mut self, cx: &mut Context<'_>, buf: &mut Vec<u8>) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.poll_read_ready(cx))?;
            match self.try_read_buf(buf) {
                // Readiness can be stale: wait for the next.
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }
}

/// A client TLS connection over `io`, after its handshake ([`connect`]).
pub(crate) struct TlsStream<S> {
    io: S,
    conn: UnbufferedClientConnection,
    /// TLS bytes received and not yet processed (a partial record, or records not yet read).
    incoming: ByteQueue,
    /// TLS bytes encoded and not yet written to `io`.
    outgoing: ByteQueue,
    /// Plaintext decrypted and not yet read: the rest of a record larger than a reader's room,
    /// or records that arrived while a write was waiting for rustls.
    plaintext: ByteQueue,
    /// The peer sent close_notify: reads return end-of-stream.
    read_closed: bool,
    /// close_notify is queued (by shutdown).
    close_notify_queued: bool,
}

impl<S> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("incoming", &self.incoming.pending().len())
            .field("outgoing", &self.outgoing.pending().len())
            .field("plaintext", &self.plaintext.pending().len())
            .field("read_closed", &self.read_closed)
            .finish_non_exhaustive()
    }
}

/// Runs the TLS handshake as a client of `server_name` over `io`. A handshake failure is an
/// `io::Error` with the `rustls::Error` inside (after a best-effort alert to the peer); the
/// peer closing mid-handshake is `UnexpectedEof`.
pub(crate) async fn connect<S>(
    config: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
    io: S,
) -> io::Result<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + ReadIntoSpare + Unpin,
{
    let conn = UnbufferedClientConnection::new(config, server_name).map_err(tls_error)?;
    let mut stream = TlsStream {
        io,
        conn,
        incoming: ByteQueue::default(),
        outgoing: ByteQueue::default(),
        plaintext: ByteQueue::default(),
        read_closed: false,
        close_notify_queued: false,
    };
    poll_fn(|cx| stream.poll_handshake(cx)).await?;
    Ok(stream)
}

fn tls_error(error: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

/// What a step of rustls's state machine is asked to write, once it allows application data.
#[derive(Clone, Copy)]
enum Write<'d> {
    Nothing,
    Data(&'d [u8]),
    CloseNotify,
}

/// What one step of rustls's state machine left the stream to do.
enum Next {
    /// Step again: records were encoded, or some were processed.
    Step,
    /// Application data was handed to the reader (or kept for it).
    Read,
    /// More bytes from the peer are needed to complete the handshake.
    Receive,
    /// The handshake is complete and nothing is left to process: more bytes from the peer
    /// are needed for the next record.
    Established,
    /// The write asked for is queued in `outgoing`.
    Written,
    /// The peer closed (close_notify): nothing more will be read.
    PeerClosed,
}

impl<S: AsyncRead + AsyncWrite + ReadIntoSpare + Unpin> TlsStream<S> {
    /// Drives the handshake: encoded records are sent, and received ones processed, until
    /// rustls allows application data.
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_send(cx))?;
            match self.step(cx, None, Write::Nothing)? {
                Next::Established => {
                    ready!(self.poll_send(cx))?;
                    return Pin::new(&mut self.io).poll_flush(cx);
                }
                Next::Step | Next::Read | Next::Written => {}
                Next::Receive => {
                    if ready!(self.poll_receive(cx))? == 0 {
                        return Poll::Ready(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof")));
                    }
                }
                Next::PeerClosed => {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof")));
                }
            }
        }
    }

    /// One call of rustls's `process_tls_records` on the incoming bytes, and its state handled:
    /// handshake records are encoded into `outgoing`; application data goes to `reader`, what
    /// it has no room for (or all of it, without a reader) to `plaintext`; once application
    /// data may be sent, `write` is encrypted into `outgoing`.
    fn step(&mut self, cx: &mut Context<'_>, reader: Option<&mut ReadBuf<'_>>, write: Write<'_>) -> io::Result<Next> {
        let status = self.conn.process_tls_records(self.incoming.pending_mut());
        let mut discard = status.discard;
        let next = match status.state {
            Ok(ConnectionState::ReadTraffic(mut traffic)) => take_records(&mut traffic, reader, &mut self.plaintext)
                .map(|extra| {
                    discard += extra;
                    Next::Read
                }),
            Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                encode_into(&mut self.outgoing, HANDSHAKE_ROOM, |out| encode.encode(out)).map(|()| Next::Step)
            }
            Ok(ConnectionState::TransmitTlsData(transmit)) => {
                // The records are in `outgoing`, which hands each byte to the socket once.
                transmit.done();
                Ok(Next::Step)
            }
            Ok(ConnectionState::BlockedHandshake) => Ok(Next::Receive),
            Ok(ConnectionState::WriteTraffic(mut traffic)) => match write {
                Write::Nothing => Ok(Next::Established),
                Write::Data(data) => {
                    let room = data.len() + RECORD_OVERHEAD * (data.len() / MAX_FRAGMENT + 1);
                    encode_into(&mut self.outgoing, room, |out| traffic.encrypt(data, out)).map(|()| Next::Written)
                }
                Write::CloseNotify => encode_into(&mut self.outgoing, RECORD_OVERHEAD, |out| {
                    traffic.queue_close_notify(out)
                })
                .map(|()| Next::Written),
            },
            // Edge-triggered: reported once, remembered by `read_closed`.
            Ok(ConnectionState::PeerClosed) => Ok(Next::PeerClosed),
            // Both sides sent close_notify.
            Ok(ConnectionState::Closed) => match write {
                Write::Nothing => Ok(Next::PeerClosed),
                Write::Data(_) | Write::CloseNotify => Err(Failure::Io(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "TLS connection closed",
                ))),
            },
            // Early data is a server's; a future state is one this client does not ask for.
            Ok(state) => Err(Failure::Io(io::Error::other(format!(
                "unexpected TLS connection state {state:?}"
            )))),
            Err(error) => Err(Failure::Tls(error)),
        };
        self.incoming.consume(discard);
        match next {
            Ok(Next::PeerClosed) => {
                self.read_closed = true;
                Ok(Next::PeerClosed)
            }
            Ok(next) => Ok(next),
            Err(Failure::Tls(error)) => Err(self.fail(cx, error)),
            Err(Failure::Io(error)) => Err(error),
        }
    }

    /// The error for a rustls failure, after a best-effort attempt (without waiting) to send
    /// the alert rustls queued for the peer.
    fn fail(&mut self, cx: &mut Context<'_>, error: rustls::Error) -> io::Error {
        // The alert is the next thing rustls hands out; after it, the error again.
        for _ in 0..4 {
            let status = self.conn.process_tls_records(self.incoming.pending_mut());
            let discard = status.discard;
            let more = match status.state {
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    encode_into(&mut self.outgoing, RECORD_OVERHEAD, |out| encode.encode(out)).is_ok()
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    transmit.done();
                    false
                }
                _ => false,
            };
            self.incoming.consume(discard);
            if !more {
                break;
            }
        }
        let _ = self.poll_send(cx);
        tls_error(error)
    }

    /// Writes `outgoing` to `io` until it is empty.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.outgoing.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, self.outgoing.pending()))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.outgoing.consume(n);
        }
        Poll::Ready(Ok(()))
    }

    /// Reads from `io` into `incoming`; `Ok(0)` at the end of the stream.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.incoming.poll_fill(cx, &mut self.io, READ_ROOM)
    }

    /// Queues `write` (encrypted) in `outgoing`, first handling whatever rustls has to do.
    fn queue(&mut self, cx: &mut Context<'_>, write: Write<'_>) -> io::Result<()> {
        loop {
            match self.step(cx, None, write)? {
                Next::Written => return Ok(()),
                Next::Step | Next::Read | Next::PeerClosed | Next::Established => {}
                // Only before the handshake completes, which `connect` waits for.
                Next::Receive => return Err(io::Error::other("TLS handshake not complete")),
            }
        }
    }

    /// Frees the buffers (the connection is going idle). Anything still in one is kept, in an
    /// allocation of just its size.
    pub(crate) fn release_buffers(&mut self) {
        self.incoming.release();
        self.outgoing.release();
        self.plaintext.release();
    }

    /// Bytes of buffer the stream holds besides rustls's connection state: 0 once released
    /// with nothing buffered.
    pub(crate) fn buffered_capacity(&self) -> usize {
        self.incoming.capacity() + self.outgoing.capacity() + self.plaintext.capacity()
    }
}

impl<S: AsyncRead + AsyncWrite + ReadIntoSpare + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.plaintext.is_empty() {
            let n = this.plaintext.pending().len().min(buf.remaining());
            buf.put_slice(&this.plaintext.pending()[..n]);
            this.plaintext.consume(n);
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.read_closed || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            // Records rustls produced while reading (alerts, key updates) go out as reading
            // goes on; a socket not writable now does not hold the read up.
            if let Poll::Ready(Err(error)) = this.poll_send(cx) {
                return Poll::Ready(Err(error));
            }
            let before = buf.filled().len();
            match this.step(cx, Some(buf), Write::Nothing)? {
                // Nothing read would read as the end of the stream.
                Next::Read if buf.filled().len() == before && this.plaintext.is_empty() => {}
                Next::Read => return Poll::Ready(Ok(())),
                Next::Step | Next::Written | Next::PeerClosed => {}
                Next::Receive | Next::Established => {
                    if ready!(this.poll_receive(cx))? == 0 {
                        // As rustls's buffered connection reports it: a truncation attack
                        // cannot pass for the end of a response.
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "peer closed connection without sending TLS close_notify",
                        )));
                    }
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + ReadIntoSpare + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // What earlier writes queued goes first, so `outgoing` holds at most one write.
        ready!(this.poll_send(cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // A few records at a time, so one large write does not double its size in `outgoing`.
        let data = &data[..data.len().min(MAX_WRITE)];
        this.queue(cx, Write::Data(data))?;
        // The data is taken; flush waits for what the socket does not take now.
        if let Poll::Ready(Err(error)) = this.poll_send(cx) {
            return Poll::Ready(Err(error));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_notify_queued {
            ready!(this.poll_send(cx))?;
            this.queue(cx, Write::CloseNotify)?;
            this.close_notify_queued = true;
        }
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// Why encoding or reading records failed.
enum Failure {
    Tls(rustls::Error),
    Io(io::Error),
}

/// Hands the records rustls decrypted to `reader`, as much as it has room for, keeping the
/// rest in `plaintext`; returns the extra bytes to discard from the incoming buffer.
fn take_records(
    traffic: &mut ReadTraffic<'_, '_, ClientConnectionData>,
    mut reader: Option<&mut ReadBuf<'_>>,
    plaintext: &mut ByteQueue,
) -> Result<usize, Failure> {
    let mut discard = 0;
    while let Some(record) = traffic.next_record() {
        let record = record.map_err(Failure::Tls)?;
        discard += record.discard;
        let mut payload = record.payload;
        // What is kept already comes first.
        if let (Some(reader), true) = (reader.as_deref_mut(), plaintext.is_empty()) {
            let n = payload.len().min(reader.remaining());
            reader.put_slice(&payload[..n]);
            payload = &payload[n..];
        }
        if !payload.is_empty() {
            plaintext.push(payload);
        }
    }
    Ok(discard)
}

/// Encodes with `encode` into `out`'s room, offering `guess` bytes and then what rustls asks
/// for if that was too little.
fn encode_into<E: RecordError>(
    out: &mut ByteQueue,
    guess: usize,
    mut encode: impl FnMut(&mut [u8]) -> Result<usize, E>,
) -> Result<(), Failure> {
    let mut room = guess;
    for _ in 0..2 {
        match encode(out.room(room)) {
            Ok(n) => {
                out.commit(n);
                return Ok(());
            }
            Err(error) => match error.required_size() {
                Some(required) => room = required,
                None => return Err(Failure::Io(io::Error::other(error.to_string()))),
            },
        }
    }
    Err(Failure::Io(io::Error::other("TLS record larger than rustls said")))
}

/// rustls's encode and encrypt errors: both may ask for a larger buffer.
trait RecordError: fmt::Display {
    fn required_size(&self) -> Option<usize>;
}

impl RecordError for EncodeError {
    fn required_size(&self) -> Option<usize> {
        match self {
            EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => Some(*required_size),
            _ => None,
        }
    }
}

impl RecordError for EncryptError {
    fn required_size(&self) -> Option<usize> {
        match self {
            EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => Some(*required_size),
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "tls_stream_tests.rs"]
mod tests;
