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
    /// Boxed: the TLS state is large and most of it is not touched between requests. An idle
    /// one holds ~8.4 KB of heap, half of it rustls's record buffer, which rustls shrinks
    /// back to 4 KiB whenever a read starts with nothing buffered, as a response's last read
    /// does (measured: trimming it again when a connection goes idle saved nothing).
    Tls(Box<TlsStream<TcpStream>>),
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
    pub(crate) fn put(&self, origin: &str, stream: Stream) {
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
