//! Kubelet connections: the stream (plain TCP or TLS over TCP) and the idle ones kept for the
//! next scrape, at most one per kubelet.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// One connection to a kubelet.
pub(crate) enum Stream {
    /// `--deprecated-kubelet-completely-insecure`.
    Plain(TcpStream),
    /// Boxed: the TLS state is large and most of it is not touched between requests.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Gives back what the last response left in the TLS read buffer: rustls keeps its
    /// record buffer at the size of the largest read (up to ~20 KiB) until the next read,
    /// and an idle connection waits a whole resolution for that. Asking rustls for a read
    /// that would block makes it shrink the buffer (to 4 KiB) without changing any state.
    pub(crate) fn trim_idle(&mut self) {
        if let Stream::Tls(tls) = self {
            let (_, connection) = tls.get_mut();
            // The reader always says "would block", so this reads nothing; its error is the
            // expected one and carries no information.
            let _would_block = connection.read_tls(&mut WouldBlock);
        }
    }
}

/// A reader with nothing to read yet.
struct WouldBlock;

impl io::Read for WouldBlock {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
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
    state: Mutex<IdleState>,
}

#[derive(Debug)]
struct IdleState {
    by_origin: HashMap<Box<str>, Idle>,
    last_sweep: Instant,
}

struct Idle {
    stream: Stream,
    since: Instant,
}

impl std::fmt::Debug for Idle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idle")
            .field("since", &self.since)
            .finish_non_exhaustive()
    }
}

impl IdleConnections {
    pub(crate) fn new(idle_timeout: Duration) -> Self {
        IdleConnections {
            idle_timeout,
            state: Mutex::new(IdleState {
                by_origin: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    /// The idle connection to `origin`, if one is kept and still fresh; it is no longer kept.
    pub(crate) fn take(&self, origin: &str) -> Option<Stream> {
        let idle = self.lock().by_origin.remove(origin)?;
        (idle.since.elapsed() < self.idle_timeout).then_some(idle.stream)
    }

    /// Keeps `stream` as the idle connection to `origin` (replacing any other).
    pub(crate) fn put(&self, origin: &str, mut stream: Stream) {
        stream.trim_idle();
        let now = Instant::now();
        let mut state = self.lock();
        state.by_origin.insert(origin.into(), Idle { stream, since: now });
        // Kubelets that are no longer scraped (nodes gone, or failing) leave nothing behind.
        if now.duration_since(state.last_sweep) >= self.idle_timeout / 2 {
            state.last_sweep = now;
            let timeout = self.idle_timeout;
            state
                .by_origin
                .retain(|_, idle| now.duration_since(idle.since) < timeout);
        }
    }

    /// How many connections are kept.
    pub(crate) fn len(&self) -> usize {
        self.lock().by_origin.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IdleState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
