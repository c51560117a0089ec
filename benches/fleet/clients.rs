//! Clients of the server's API over HTTPS (bearer token), as `kubectl top` or an HPA controller
//! would call it through the aggregator: latency percentiles with a few concurrent HTTP/1.1
//! keep-alive clients, and GET throughput over HTTP/1.1 (a connection per client) and over
//! HTTP/2 (a few connections, many concurrent streams each: how the kube-apiserver's aggregator
//! talks to an aggregated API server). Every phase is bounded by a request count and by time.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::Result;

pub(crate) const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
pub(crate) const JSON: &str = "application/json";
/// No single request may take longer than this (a failure, not a sample).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How to reach the server's API.
#[derive(Clone)]
pub(crate) struct Api {
    address: SocketAddr,
    /// ALPN `http/1.1`.
    tls: TlsConnector,
    /// ALPN `h2`, as the aggregator offers it.
    tls_h2: TlsConnector,
    authorization: String,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// One keep-alive connection.
pub(crate) struct Conn {
    send: http1::SendRequest<Empty<Bytes>>,
    authorization: String,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

impl Api {
    /// Trusts the server's self-signed serving certificate (`apiserver.crt` in its cert dir).
    pub(crate) fn new(address: SocketAddr, cert_pem: &[u8], token: &str) -> Result<Api> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(cert_pem) {
            roots.add(cert?)?;
        }
        let mut config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
        let mut h2_config = config.clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        h2_config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Api {
            address,
            tls: TlsConnector::from(Arc::new(config)),
            tls_h2: TlsConnector::from(Arc::new(h2_config)),
            authorization: format!("Bearer {token}"),
        })
    }

    async fn connect_tls(&self, tls: &TlsConnector) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.address).await?;
        tcp.set_nodelay(true)?;
        Ok(tls.connect(ServerName::try_from("localhost")?, tcp).await?)
    }

    pub(crate) async fn connect(&self) -> Result<Conn> {
        let tls = self.connect_tls(&self.tls).await?;
        let (send, connection) = http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(connection);
        Ok(Conn {
            send,
            authorization: self.authorization.clone(),
        })
    }

    /// One request on a fresh connection; the status and the whole body.
    pub(crate) async fn get_once(&self, path: &str) -> Result<(u16, Bytes)> {
        let mut conn = self.connect().await?;
        let request = conn.request(path, JSON)?;
        let response = tokio::time::timeout(REQUEST_TIMEOUT, conn.send.send_request(request))
            .await
            .map_err(|_| "timed out")??;
        let code = response.status().as_u16();
        Ok((code, response.into_body().collect().await?.to_bytes()))
    }
}

impl Conn {
    fn request(&self, path: &str, accept: &str) -> Result<Request<Empty<Bytes>>> {
        Ok(Request::builder()
            .uri(path)
            .header(hyper::header::HOST, "localhost")
            .header(hyper::header::AUTHORIZATION, &self.authorization)
            .header(hyper::header::ACCEPT, accept)
            .body(Empty::new())?)
    }

    /// GETs `path`; the body's size. Anything but 200 is an error.
    pub(crate) async fn get(&mut self, path: &str, accept: &str) -> Result<usize> {
        let request = self.request(path, accept)?;
        let exchange = async {
            self.send.ready().await?;
            let response = self.send.send_request(request).await?;
            let code = response.status();
            let mut body = response.into_body();
            let mut size = 0;
            // Counted frame by frame: a 50 MB list is not kept.
            while let Some(frame) = body.frame().await {
                if let Some(data) = frame?.data_ref() {
                    size += data.len();
                }
            }
            if code != hyper::StatusCode::OK {
                return Err(format!("GET {path}: {code}").into());
            }
            Ok::<_, crate::BoxError>(size)
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("GET {path}: no answer in {REQUEST_TIMEOUT:?}"))?
    }
}

/// Latencies of one phase.
#[derive(Debug, Clone, Default)]
pub(crate) struct Latency {
    /// Sorted.
    pub(crate) samples: Vec<Duration>,
    /// Body size of the last response.
    pub(crate) bytes: usize,
    pub(crate) elapsed: Duration,
}

impl Latency {
    /// Nearest-rank percentile in milliseconds (NaN without samples).
    pub(crate) fn percentile_ms(&self, p: f64) -> f64 {
        if self.samples.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.samples.len() as f64).ceil() as usize;
        self.samples[rank.clamp(1, self.samples.len()) - 1].as_secs_f64() * 1e3
    }
}

/// `clients` connections GET `path` back to back until `max_requests` are done or `max_time`
/// has passed (a request in flight then still completes).
pub(crate) async fn latency(
    api: &Api,
    path: &str,
    accept: &str,
    clients: usize,
    max_requests: usize,
    max_time: Duration,
) -> Result<Latency> {
    let started = Instant::now();
    let issued = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let mut conn = api.connect().await?;
        let (issued, path, accept) = (issued.clone(), path.to_owned(), accept.to_owned());
        tasks.spawn(async move {
            let mut samples = Vec::new();
            let mut bytes = 0;
            while started.elapsed() < max_time && issued.fetch_add(1, Ordering::Relaxed) < max_requests {
                let sent = Instant::now();
                bytes = conn.get(&path, &accept).await?;
                samples.push(sent.elapsed());
            }
            Ok::<_, crate::BoxError>((samples, bytes))
        });
    }
    let mut result = Latency::default();
    while let Some(done) = tasks.join_next().await {
        let (samples, bytes) = done??;
        result.samples.extend(samples);
        result.bytes = result.bytes.max(bytes);
    }
    result.samples.sort();
    result.elapsed = started.elapsed();
    Ok(result)
}

/// Requests completed by `clients` connections GETting `path` for `duration`.
pub(crate) async fn throughput(api: &Api, path: &str, clients: usize, duration: Duration) -> Result<usize> {
    let latency = latency(api, path, JSON, clients, usize::MAX, duration).await?;
    Ok(latency.samples.len())
}

/// One HTTP/2 connection, shared by the streams opened on it.
pub(crate) struct H2Conn {
    send: http2::SendRequest<Empty<Bytes>>,
    authorization: String,
}

impl H2Conn {
    /// GETs `uri` (absolute: HTTP/2 sends scheme and authority as pseudo-headers) on a new
    /// stream; anything but 200 is an error.
    async fn get(&mut self, uri: &str) -> Result<()> {
        let request = Request::builder()
            .uri(uri)
            .header(hyper::header::AUTHORIZATION, &self.authorization)
            .header(hyper::header::ACCEPT, JSON)
            .body(Empty::new())?;
        let exchange = async {
            self.send.ready().await?;
            let response = self.send.send_request(request).await?;
            let code = response.status();
            let mut body = response.into_body();
            while let Some(frame) = body.frame().await {
                frame?;
            }
            if code != hyper::StatusCode::OK {
                return Err(format!("GET {uri} (h2): {code}").into());
            }
            Ok::<_, crate::BoxError>(())
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("GET {uri} (h2): no answer in {REQUEST_TIMEOUT:?}"))?
    }
}

impl Api {
    async fn connect_h2(&self) -> Result<H2Conn> {
        let tls = self.connect_tls(&self.tls_h2).await?;
        if tls.get_ref().1.alpn_protocol() != Some(b"h2".as_slice()) {
            return Err("the server did not agree to HTTP/2 (ALPN h2)".into());
        }
        let (send, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
        tokio::spawn(connection);
        Ok(H2Conn {
            send,
            authorization: self.authorization.clone(),
        })
    }
}

/// GET latencies of `connections` HTTP/2 connections with `streams` requests in flight on each,
/// back to back, for `duration` (requests in flight then still complete).
pub(crate) async fn throughput_h2(
    api: &Api,
    path: &str,
    connections: usize,
    streams: usize,
    duration: Duration,
) -> Result<Latency> {
    let uri = format!("https://localhost{path}");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let conn = api.connect_h2().await?;
        for _ in 0..streams {
            // A clone of the connection's handle: each stream task sends on the same connection.
            let mut stream = H2Conn {
                send: conn.send.clone(),
                authorization: conn.authorization.clone(),
            };
            let uri = uri.clone();
            tasks.spawn(async move {
                let mut samples = Vec::new();
                while started.elapsed() < duration {
                    let sent = Instant::now();
                    stream.get(&uri).await?;
                    samples.push(sent.elapsed());
                }
                Ok::<_, crate::BoxError>(samples)
            });
        }
    }
    let mut result = Latency::default();
    while let Some(done) = tasks.join_next().await {
        result.samples.extend(done??);
    }
    result.samples.sort();
    result.elapsed = started.elapsed();
    Ok(result)
}
