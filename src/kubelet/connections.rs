//! Kubelet connections: the stream (plain TCP or TLS over TCP) and the idle ones kept for the
//! next scrape, at most one per kubelet and at most as many as the open-file limit allows
//! ([`super::open_files`]).

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::tls_stream::TlsStream;

/// One connection to a kubelet.
pub(crate) enum Stream {
    /// `--deprecated-kubelet-completely-insecure`.
    Plain(TcpStream),
    /// Boxed: the TLS state is large and most of it is not touched between requests. Its
    /// buffers are freed when the connection goes idle ([`Stream::release_buffers`]), leaving
    /// the socket and rustls's connection state.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Frees what the stream buffers (the connection is going idle): nothing is kept for a
    /// connection between requests but its socket and TLS state.
    pub(crate) fn release_buffers(&mut self) {
        match self {
            Stream::Plain(_) => {}
            Stream::Tls(tls) => tls.release_buffers(),
        }
    }

    /// Bytes of buffer the stream holds besides its socket and TLS state.
    pub(crate) fn buffered_capacity(&self) -> usize {
        match self {
            Stream::Plain(_) => 0,
            Stream::Tls(tls) => tls.buffered_capacity(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(&mut **tls).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(&mut **tls).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(&mut **tls).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(&mut **tls).poll_shutdown(cx),
        }
    }
}

/// Idle connections by origin (`scheme://host:port`), one each, dropped once older than the
/// idle timeout. Expiry is lazy (when an origin is next asked for, and a sweep of all of them
/// at most every half timeout when one is put back), so no task or timer is kept per
/// connection.
#[derive(Debug)]
pub(crate) struct IdleConnections {
    idle_timeout: Duration,
    /// The most kept at once; a connection past it is closed instead.
    max_kept: usize,
    state: Mutex<IdleState>,
}

#[derive(Debug)]
struct IdleState {
    /// A slot per origin put back within the idle timeout. A taken connection leaves its slot
    /// empty rather than removing it, so putting it back allocates no key: a kubelet is
    /// scraped every period, each time with a take and a put. Origins come from the
    /// inventory, which the server trusts, so they need no DoS-resistant hash.
    by_origin: HashMap<Box<str>, Idle, foldhash::fast::RandomState>,
    /// Slots holding a connection.
    kept: usize,
    last_sweep: Instant,
}

struct Idle {
    /// `None` while the connection is out for a request, or after it was closed.
    stream: Option<Stream>,
    /// When it was last put back.
    since: Instant,
}

impl std::fmt::Debug for Idle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idle")
            .field("kept", &self.stream.is_some())
            .field("since", &self.since)
            .finish_non_exhaustive()
    }
}

impl IdleConnections {
    pub(crate) fn new(idle_timeout: Duration, max_kept: usize) -> Self {
        IdleConnections {
            idle_timeout,
            max_kept,
            state: Mutex::new(IdleState {
                by_origin: HashMap::default(),
                kept: 0,
                last_sweep: Instant::now(),
            }),
        }
    }

    /// The idle connection to `origin`, if one is kept and still fresh; it is no longer kept.
    pub(crate) fn take(&self, origin: &str) -> Option<Stream> {
        let mut state = self.lock();
        let idle = state.by_origin.get_mut(origin)?;
        let stream = idle.stream.take()?;
        let fresh = idle.since.elapsed() < self.idle_timeout;
        state.kept -= 1;
        drop(state);
        // A stale one is dropped (closed) outside the lock.
        fresh.then_some(stream)
    }

    /// Keeps `stream` as the idle connection to `origin` (replacing any other), its buffers
    /// freed; or, if as many as allowed are kept for other kubelets, closes it and says so
    /// (`false`).
    pub(crate) fn put(&self, origin: &str, mut stream: Stream) -> bool {
        stream.release_buffers();
        let now = Instant::now();
        let mut state = self.lock();
        // Kubelets that are no longer scraped (nodes gone, or failing) leave nothing behind.
        if now.duration_since(state.last_sweep) >= self.idle_timeout / 2 {
            state.last_sweep = now;
            let timeout = self.idle_timeout;
            state
                .by_origin
                .retain(|_, idle| now.duration_since(idle.since) < timeout);
            state.kept = state.by_origin.values().filter(|idle| idle.stream.is_some()).count();
        }
        // One lookup: the slot this kubelet's connection was taken from, in the common case.
        let IdleState { by_origin, kept, .. } = &mut *state;
        let replaced = match by_origin.get_mut(origin) {
            Some(idle) if idle.stream.is_some() => {
                idle.since = now;
                idle.stream.replace(stream)
            }
            _ if *kept >= self.max_kept => {
                drop(state);
                // Dropped outside the lock: closing a socket is a system call.
                drop(stream);
                return false;
            }
            Some(idle) => {
                idle.since = now;
                idle.stream = Some(stream);
                *kept += 1;
                None
            }
            None => {
                let idle = Idle {
                    stream: Some(stream),
                    since: now,
                };
                by_origin.insert(origin.into(), idle);
                *kept += 1;
                None
            }
        };
        drop(state);
        drop(replaced);
        true
    }

    /// Bytes of buffer the kept connections hold besides their sockets and TLS state: 0 when
    /// they hold none, as they should.
    pub(crate) fn buffered_capacity(&self) -> usize {
        self.lock()
            .by_origin
            .values()
            .filter_map(|idle| idle.stream.as_ref())
            .map(Stream::buffered_capacity)
            .sum()
    }

    /// How many connections are kept.
    pub(crate) fn len(&self) -> usize {
        self.lock().kept
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IdleState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
