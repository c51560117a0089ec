//! Fetching `/metrics/resource` from kubelets over HTTPS.
//!
//! One client serves every kubelet: it keeps one idle keep-alive connection per kubelet,
//! caps the body (before and after decompression), and bounds each request by
//! `--kubelet-request-timeout`. TLS follows the kubelet flags: a CA, `--kubelet-insecure-tls`
//! (no verification), a client certificate, and a bearer token; or plain HTTP with
//! `--deprecated-kubelet-completely-insecure`. It does not decode: the scraper does.
//!
//! HTTP is our own minimal HTTP/1.1 GET (`http1.rs`) over our own TLS stream on rustls's
//! unbuffered API (`tls_stream.rs`), not hyper's pooled client over tokio-rustls: at 5,000
//! kubelets the idle connections are most of what the client holds, and hyper's kept a read
//! buffer, a write buffer and a task each (34.6 KB of heap per idle connection in
//! `benches/kubelet_client.rs`), tokio-rustls's a 4 KiB record buffer (8.4 KB); ours keep
//! only the socket and rustls's connection state (`connections.rs`, 4.3 KB).

use std::fmt;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::header::HeaderValue;
use hyper::StatusCode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::net::TcpStream;

use super::connections::{IdleConnections, Stream};
use super::http1::{self, ExchangeError, Target};
use super::{open_files, tls_stream};

/// A credential whose `Debug` never shows its value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where the bearer token sent to kubelets comes from.
#[derive(Debug, Clone)]
pub enum BearerToken {
    Static(Secret),
    /// A token file (the service-account token, rotated by the kubelet): re-read when the
    /// cached value is older than `refresh`.
    File {
        path: std::path::PathBuf,
        refresh: Duration,
    },
}

/// The current `Authorization` header, re-reading a token file when due.
#[derive(Debug)]
enum Authorization {
    Static(HeaderValue),
    File {
        path: std::path::PathBuf,
        refresh: Duration,
        cached: std::sync::Mutex<Option<(std::time::Instant, HeaderValue)>>,
    },
}

impl Authorization {
    fn header(&self) -> Option<HeaderValue> {
        match self {
            Authorization::Static(value) => Some(value.clone()),
            Authorization::File { path, refresh, cached } => {
                let mut cached = cached.lock().unwrap_or_else(|e| e.into_inner());
                let fresh = cached.as_ref().is_some_and(|(read_at, _)| read_at.elapsed() < *refresh);
                if !fresh {
                    match std::fs::read_to_string(path).ok().and_then(|t| bearer(t.trim()).ok()) {
                        Some(value) => *cached = Some((std::time::Instant::now(), value)),
                        // Keep the last good token; a rotation mid-write is retried next time.
                        None => tracing::warn!(path = %path.display(), "cannot read the kubelet bearer token file"),
                    }
                }
                cached.as_ref().map(|(_, value)| value.clone())
            }
        }
    }
}

fn bearer(token: &str) -> Result<HeaderValue, BuildError> {
    let mut value = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| BuildError::Token)?;
    value.set_sensitive(true);
    Ok(value)
}

/// How the kubelet's serving certificate is checked.
#[derive(Debug, Clone)]
pub enum ServerVerification {
    /// Verify against these CA certificates (PEM).
    CaPem(Vec<u8>),
    /// Verify against these CA certificates (DER), as a kubeconfig's CA data decodes.
    CaDer(Vec<Vec<u8>>),
    /// `--kubelet-insecure-tls`: accept any certificate (the handshake signature is still checked).
    InsecureSkipVerify,
    /// `--deprecated-kubelet-completely-insecure`: plain HTTP, no credentials.
    PlainHttp,
}

/// Everything the client needs, already read from files.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub verification: ServerVerification,
    /// Client certificate chain and key (PEM), for kubelets that authenticate by certificate.
    pub client_cert_pem: Option<(Vec<u8>, Secret)>,
    pub bearer_token: Option<BearerToken>,
    /// Bound on one whole request: connect, TLS, headers and body.
    pub request_timeout: Duration,
    /// Cap on the body, compressed and decompressed.
    pub max_body_bytes: usize,
    /// How long an idle connection is kept; longer than the resolution so it is reused.
    pub idle_timeout: Duration,
}

/// Why a client could not be built (start-up errors).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("reading kubelet CA certificates")]
    CaPem(#[source] rustls_pki_types::pem::Error),
    #[error("kubelet CA bundle holds no certificate")]
    EmptyCa,
    #[error("adding a kubelet CA certificate")]
    CaCert(#[source] rustls::Error),
    #[error("reading the kubelet client certificate")]
    ClientCertPem(#[source] rustls_pki_types::pem::Error),
    #[error("reading the kubelet client key")]
    ClientKeyPem(#[source] rustls_pki_types::pem::Error),
    #[error("configuring TLS for kubelets")]
    Tls(#[source] rustls::Error),
    #[error("bearer token is not a valid HTTP header value")]
    Token,
}

/// Why one fetch failed; the scraper drops that node's batch and counts the reason.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("invalid kubelet URL {url:?}")]
    Url { url: String },
    #[error("TLS handshake with kubelet failed: {reason}{hint}")]
    Tls { reason: String, hint: &'static str },
    #[error("connecting to kubelet failed: {reason}")]
    Connect { reason: String },
    #[error("timeout after {0:?} waiting for kubelet")]
    Timeout(Duration),
    /// Upstream's wording: `request failed, status: "403 Forbidden"`.
    #[error("request failed, status: \"{0}\"")]
    Status(StatusCode),
    #[error("response body larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("failed to read response body - {reason}")]
    Body { reason: String },
    #[error("failed to decompress gzip response body - {reason}")]
    Gzip { reason: String },
}

impl FetchError {
    /// A short, stable label for counting failures by kind.
    pub fn reason_label(&self) -> &'static str {
        match self {
            FetchError::Url { .. } => "address",
            FetchError::Tls { .. } => "tls",
            FetchError::Connect { .. } => "connect",
            FetchError::Timeout(_) => "timeout",
            FetchError::Status(_) => "http_status",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::Body { .. } | FetchError::Gzip { .. } => "body",
        }
    }
}

/// The shared kubelet client; clones share the idle connections.
#[derive(Clone)]
pub struct KubeletClient {
    shared: Arc<Shared>,
}

struct Shared {
    tls: Arc<rustls::ClientConfig>,
    /// `--deprecated-kubelet-completely-insecure`: `http://` URLs are allowed.
    plain: bool,
    idle: IdleConnections,
    /// The idle connections reached their budget once (it is logged once).
    budget_reached: AtomicBool,
    authorization: Option<Authorization>,
    request_timeout: Duration,
    max_body_bytes: usize,
}

impl fmt::Debug for KubeletClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.shared;
        f.debug_struct("KubeletClient")
            .field("request_timeout", &shared.request_timeout)
            .field("max_body_bytes", &shared.max_body_bytes)
            .field("idle_connections", &shared.idle.len())
            .field("bearer_token", &shared.authorization.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl KubeletClient {
    /// A client keeping as many idle connections as the process's open-file limit allows
    /// ([`open_files::idle_connection_budget`]).
    pub fn new(config: &ClientConfig) -> Result<Self, BuildError> {
        Self::with_idle_budget(config, open_files::idle_connection_budget(open_files::soft_limit()))
    }

    /// A client keeping at most `idle_budget` idle connections: past it, a connection is closed
    /// after its request.
    pub fn with_idle_budget(config: &ClientConfig, idle_budget: usize) -> Result<Self, BuildError> {
        let plain = matches!(config.verification, ServerVerification::PlainHttp);
        let tls = Arc::new(tls_config(config)?);
        // Upstream strips credentials entirely with --deprecated-kubelet-completely-insecure.
        let authorization = match (&config.bearer_token, plain) {
            (Some(BearerToken::Static(token)), false) => Some(Authorization::Static(bearer(token.expose())?)),
            (Some(BearerToken::File { path, refresh }), false) => Some(Authorization::File {
                path: path.clone(),
                refresh: *refresh,
                cached: std::sync::Mutex::new(None),
            }),
            _ => None,
        };
        Ok(KubeletClient {
            shared: Arc::new(Shared {
                tls,
                plain,
                idle: IdleConnections::new(config.idle_timeout, idle_budget),
                budget_reached: AtomicBool::new(false),
                authorization,
                request_timeout: config.request_timeout,
                max_body_bytes: config.max_body_bytes,
            }),
        })
    }

    /// Bytes of buffer held by the idle kept-alive connections besides their sockets and TLS
    /// state (0 when they hold none): for the benchmark and tests.
    #[doc(hidden)]
    pub fn idle_buffered_bytes(&self) -> usize {
        self.shared.idle.buffered_capacity()
    }

    /// GETs `url` and leaves the (decompressed) body in `body`, which is cleared first.
    pub async fn fetch(&self, url: &str, body: &mut Vec<u8>) -> Result<(), FetchError> {
        body.clear();
        let shared = &*self.shared;
        let target = Target::parse(url).ok_or_else(|| FetchError::Url { url: url.to_owned() })?;
        if !target.tls && !shared.plain {
            return Err(FetchError::Connect {
                reason: "invalid URL, scheme is not https".to_owned(),
            });
        }
        let authorization = shared.authorization.as_ref().and_then(Authorization::header);
        let request = http1::request_head(&target, authorization.as_ref().map(HeaderValue::as_bytes));
        tokio::time::timeout(shared.request_timeout, shared.exchange(&target, &request, body))
            .await
            .map_err(|_| FetchError::Timeout(shared.request_timeout))?
    }
}

impl Shared {
    async fn exchange(&self, target: &Target<'_>, request: &[u8], body: &mut Vec<u8>) -> Result<(), FetchError> {
        let limit = self.max_body_bytes;
        let mut kept = self.idle.take(target.origin);
        let (stream, response) = loop {
            let (mut stream, reused) = match kept.take() {
                Some(stream) => (stream, true),
                None => (self.connect(target).await?, false),
            };
            match http1::get(&mut stream, request, body, limit).await {
                Ok(response) => break (stream, response),
                // The kubelet closed the idle connection (Go closes idle connections after its
                // IdleTimeout) before it saw the request: send it once more on a new one.
                Err(ExchangeError::NoResponse(_)) if reused => continue,
                Err(error) => return Err(exchange_error(error)),
            }
        };
        if response.status != 200 {
            let status = StatusCode::from_u16(response.status).map_err(|_| FetchError::Connect {
                reason: format!("invalid HTTP status {}", response.status),
            })?;
            return Err(FetchError::Status(status));
        }
        if response.reusable
            && !self.idle.put(target.origin, stream)
            && !self.budget_reached.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                kept = self.idle.len(),
                open_file_limit = ?open_files::soft_limit(),
                "keeping idle connections to as many kubelets as the open-file limit allows: the others are connected anew for every scrape (more CPU); raise the limit (ulimit -n, LimitNOFILE) to keep one per node"
            );
        }
        if response.gzip {
            let compressed = std::mem::take(body);
            body.reserve(compressed.capacity());
            return gunzip_capped(&compressed, limit, body);
        }
        Ok(())
    }

    /// A new connection: TCP, then TLS unless the URL is `http://`.
    async fn connect(&self, target: &Target<'_>) -> Result<Stream, FetchError> {
        let tcp = TcpStream::connect((target.host, target.port))
            .await
            .map_err(|e| FetchError::Connect {
                reason: format!("tcp connect error: {e}"),
            })?;
        // Requests are one small write each and wait for the answer: don't delay them.
        tcp.set_nodelay(true).map_err(|e| FetchError::Connect {
            reason: format!("tcp connect error: {e}"),
        })?;
        if !target.tls {
            return Ok(Stream::Plain(tcp));
        }
        // Certificates are checked against the address used, an IP or a DNS name.
        let server_name = ServerName::try_from(target.host)
            .map_err(|e| FetchError::Connect {
                reason: format!("invalid server name {:?}: {e}", target.host),
            })?
            .to_owned();
        let tls = tls_stream::connect(self.tls.clone(), server_name, tcp)
            .await
            .map_err(|e| classify_handshake_error(&e))?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// The fetch error for an exchange that failed, as hyper's client reported them: nothing or
/// an unreadable head is a connection failure, a cut or malformed body a body failure.
fn exchange_error(error: ExchangeError) -> FetchError {
    match error {
        ExchangeError::NoResponse(_) | ExchangeError::Head(_) => FetchError::Connect {
            reason: error_chain(&error),
        },
        ExchangeError::Body(reason) => FetchError::Body { reason },
        ExchangeError::TooLarge { limit } => FetchError::TooLarge { limit },
    }
}

/// Decompresses into `out`, failing rather than growing past `limit` (a gzip bomb costs
/// at most `limit` bytes).
fn gunzip_capped(compressed: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), FetchError> {
    let mut decoder = flate2::read::GzDecoder::new(compressed).take(limit as u64 + 1);
    decoder
        .read_to_end(out)
        .map_err(|e| FetchError::Gzip { reason: e.to_string() })?;
    if out.len() > limit {
        return Err(FetchError::TooLarge { limit });
    }
    Ok(())
}

/// Tells TLS problems (the operator can act on them) from a connection lost mid-handshake.
fn classify_handshake_error(error: &std::io::Error) -> FetchError {
    match rustls_error(error) {
        Some(tls) => FetchError::Tls {
            reason: tls.to_string(),
            hint: tls_hint(tls),
        },
        None => FetchError::Connect {
            reason: format!("TLS handshake: {}", error_chain(error)),
        },
    }
}

/// The rustls error behind `cause`, if any. The TLS connector reports a handshake failure as
/// an `io::Error` wrapping an `io::Error` wrapping the rustls error, and `io::Error::source`
/// skips the error it wraps (it returns that error's own source), so wrapped errors are
/// unwrapped explicitly.
fn rustls_error<'e>(cause: &'e (dyn std::error::Error + 'static)) -> Option<&'e rustls::Error> {
    let mut current = cause;
    loop {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = current.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

/// What an operator should do about a TLS failure, in terms of the flags that fix it.
fn tls_hint(error: &rustls::Error) -> &'static str {
    use rustls::CertificateError as C;
    match error {
        rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            " (the kubelet's serving certificate does not name the address used: pick an address type it \
             names with --kubelet-preferred-address-types, give kubelets certificates for their IPs \
             (serverTLSBootstrap), or use --kubelet-insecure-tls in test clusters)"
        }
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            " (the kubelet's certificate is not signed by the CA in use: pass the kubelets' CA with \
             --kubelet-certificate-authority, or use --kubelet-insecure-tls in test clusters where kubelet \
             certificates are self-signed)"
        }
        rustls::Error::InvalidCertificate(
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
        ) => " (the kubelet's certificate is outside its validity period: check the node's clock and certificate rotation)",
        _ => "",
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

fn tls_config(config: &ClientConfig) -> Result<rustls::ClientConfig, BuildError> {
    // Suites offered AES-128-GCM first, as upstream's Go client offers them: a kubelet picks
    // it either way (Go's server ranks it first too), and a server that follows the client's
    // order, as rustls' does, picks it rather than AES-256 (decrypting is ~6% of a scrape).
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = crate::apiserver::cipher_suites::cheapest_first(&provider.cipher_suites);
    let provider = Arc::new(provider);
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(BuildError::Tls)?;
    let builder = match &config.verification {
        ServerVerification::CaPem(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots
                    .add(cert.map_err(BuildError::CaPem)?)
                    .map_err(BuildError::CaCert)?;
            }
            if roots.is_empty() {
                return Err(BuildError::EmptyCa);
            }
            builder.with_root_certificates(roots)
        }
        ServerVerification::CaDer(certs) => {
            let mut roots = rustls::RootCertStore::empty();
            for der in certs {
                roots
                    .add(CertificateDer::from(der.clone()))
                    .map_err(BuildError::CaCert)?;
            }
            if roots.is_empty() {
                return Err(BuildError::EmptyCa);
            }
            builder.with_root_certificates(roots)
        }
        ServerVerification::InsecureSkipVerify | ServerVerification::PlainHttp => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(provider))),
    };
    match &config.client_cert_pem {
        Some((chain_pem, key_pem)) => {
            let chain = CertificateDer::pem_slice_iter(chain_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(BuildError::ClientCertPem)?;
            let key = PrivateKeyDer::from_pem_slice(key_pem.expose().as_bytes()).map_err(BuildError::ClientKeyPem)?;
            builder.with_client_auth_cert(chain, key).map_err(BuildError::Tls)
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

/// `--kubelet-insecure-tls`: any certificate is accepted, but the handshake must still be
/// signed by the key of the certificate presented.
#[derive(Debug)]
struct AcceptAnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn gzip_bombs_stop_at_the_cap() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&vec![b'a'; 10_000]).unwrap();
        let compressed = enc.finish().unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            gunzip_capped(&compressed, 1_000, &mut out),
            Err(FetchError::TooLarge { limit: 1_000 })
        ));
        out.clear();
        gunzip_capped(&compressed, 10_000, &mut out).unwrap();
        assert_eq!(out.len(), 10_000);
    }

    #[test]
    fn tls_failures_are_found_inside_the_connectors_nested_io_errors() {
        // hyper-rustls: io::Error::other(<tokio-rustls: io::Error::new(InvalidData, rustls::Error)>).
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        let nested = std::io::Error::other(std::io::Error::new(std::io::ErrorKind::InvalidData, tls));
        let found = rustls_error(&nested).unwrap();
        assert!(tls_hint(found).contains("does not name the address"), "{found}");
        assert!(rustls_error(&std::io::Error::other("connection refused")).is_none());
    }

    fn plain_http_config() -> ClientConfig {
        ClientConfig {
            verification: ServerVerification::PlainHttp,
            client_cert_pem: None,
            bearer_token: Some(BearerToken::Static(Secret::new("never-sent"))),
            request_timeout: Duration::from_secs(10),
            max_body_bytes: 1 << 20,
            idle_timeout: Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn a_kubelet_that_follows_the_clients_order_picks_aes128_gcm_as_with_upstream() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        // rustls' server follows the client's order by default; its own would pick AES-256.
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        assert!(!server.ignore_client_order);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let accepted = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let tls = acceptor.accept(tcp).await.unwrap();
            tls.get_ref().1.negotiated_cipher_suite().map(|suite| suite.suite())
        });

        let config = ClientConfig {
            verification: ServerVerification::CaDer(vec![cert.der().to_vec()]),
            ..plain_http_config()
        };
        let tls = Arc::new(tls_config(&config).unwrap());
        let tcp = TcpStream::connect(address).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let _client = tls_stream::connect(tls, name, tcp).await.unwrap();
        assert_eq!(
            accepted.await.unwrap(),
            Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)
        );
    }

    /// Reads one request head from `socket` and answers it with `body`; returns the head.
    async fn answer(socket: &mut tokio::net::TcpStream, body: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            assert_eq!(socket.read(&mut byte).await.unwrap(), 1, "request cut");
            head.push(byte[0]);
        }
        let response = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        socket.write_all(response.as_bytes()).await.unwrap();
        String::from_utf8(head).unwrap()
    }

    #[tokio::test]
    async fn a_kept_connection_the_kubelet_closed_is_replaced_once_and_the_new_one_kept() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/metrics/resource", listener.local_addr().unwrap());
        let kubelet = tokio::spawn(async move {
            // The first connection answers once and is closed, as Go closes an idle one.
            let (mut first, _) = listener.accept().await.unwrap();
            let head = answer(&mut first, "one").await;
            drop(first);
            // The second answers twice: the client keeps it.
            let (mut second, _) = listener.accept().await.unwrap();
            answer(&mut second, "two").await;
            answer(&mut second, "three").await;
            head
        });
        let client = KubeletClient::new(&plain_http_config()).unwrap();
        let mut body = Vec::new();
        for expected in ["one", "two", "three"] {
            client.fetch(&url, &mut body).await.unwrap();
            assert_eq!(String::from_utf8_lossy(&body), expected);
        }
        let head = kubelet.await.unwrap();
        assert!(
            head.starts_with("GET /metrics/resource HTTP/1.1\r\nHost: 127.0.0.1:"),
            "{head}"
        );
        // --deprecated-kubelet-completely-insecure sends no credentials.
        assert!(!head.contains("Authorization"), "{head}");
        assert_eq!(client.shared.idle.len(), 1);
    }

    #[tokio::test]
    async fn past_the_idle_budget_a_connection_is_closed_after_its_scrape_and_the_next_connects_anew() {
        use tokio::io::AsyncReadExt;
        // Two kubelets, a budget of one kept connection: the first kubelet's is kept, the
        // second's is closed once answered, and its next scrape comes on a new connection.
        let first = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let second = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let urls = [&first, &second].map(|l| format!("http://{}/metrics/resource", l.local_addr().unwrap()));
        let kubelets = tokio::spawn(async move {
            let (mut kept, _) = first.accept().await.unwrap();
            answer(&mut kept, "a1").await;
            let (mut closed, _) = second.accept().await.unwrap();
            answer(&mut closed, "b1").await;
            // The client closes it: reading sees the end, not a second request.
            let mut rest = Vec::new();
            closed.read_to_end(&mut rest).await.unwrap();
            let (mut anew, _) = second.accept().await.unwrap();
            answer(&mut anew, "b2").await;
            answer(&mut kept, "a2").await;
            rest
        });
        let client = KubeletClient::with_idle_budget(&plain_http_config(), 1).unwrap();
        let mut body = Vec::new();
        for (url, expected) in [(&urls[0], "a1"), (&urls[1], "b1"), (&urls[1], "b2"), (&urls[0], "a2")] {
            client.fetch(url, &mut body).await.unwrap();
            assert_eq!(String::from_utf8_lossy(&body), expected);
        }
        assert_eq!(kubelets.await.unwrap(), b"");
        assert_eq!(client.shared.idle.len(), 1);
    }

    #[tokio::test]
    async fn a_fresh_connection_closed_before_answering_is_not_retried() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/metrics/resource", listener.local_addr().unwrap());
        let kubelet = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            drop(socket);
            // A retry would be this connection, answered: the fetch would then succeed.
            let (mut socket, _) = listener.accept().await.unwrap();
            answer(&mut socket, "retried").await;
        });
        let client = KubeletClient::new(&plain_http_config()).unwrap();
        let mut body = Vec::new();
        let error = client.fetch(&url, &mut body).await.unwrap_err();
        assert_eq!(error.reason_label(), "connect", "{error}");
        kubelet.abort();
    }

    #[tokio::test]
    async fn https_urls_only_unless_completely_insecure() {
        let config = ClientConfig {
            verification: ServerVerification::InsecureSkipVerify,
            ..plain_http_config()
        };
        let client = KubeletClient::new(&config).unwrap();
        let error = client
            .fetch("http://127.0.0.1:1/metrics/resource", &mut Vec::new())
            .await
            .unwrap_err();
        assert_eq!(error.reason_label(), "connect");
        let error = client.fetch("not a url", &mut Vec::new()).await.unwrap_err();
        assert_eq!(error.to_string(), "invalid kubelet URL \"not a url\"");
    }

    #[test]
    fn empty_ca_bundle_is_a_startup_error() {
        let config = ClientConfig {
            verification: ServerVerification::CaPem(b"not a pem".to_vec()),
            client_cert_pem: None,
            bearer_token: None,
            request_timeout: Duration::from_secs(1),
            max_body_bytes: 1,
            idle_timeout: Duration::from_secs(1),
        };
        assert!(matches!(KubeletClient::new(&config), Err(BuildError::EmptyCa)));
    }
}
