//! Serving certificate and rustls configuration (spec §4.3).
//!
//! The certificate comes from `--tls-cert-file`/`--tls-private-key-file`, else from
//! `<cert-dir>/apiserver.{crt,key}` when both are readable, else it is generated self-signed and
//! written there, as upstream does. [`serving_config`] builds the rustls configuration: the pair
//! reloaded when its files change ([`ReloadingCert`](super::cert_reload::ReloadingCert)),
//! `--tls-min-version`, `--tls-cipher-suites` ([`cipher_suites`](super::cipher_suites)), ALPN
//! `h2`/`http/1.1`, and, when authentication is on, a request (never a requirement) for client
//! certificates ([`RequestClientCert`](super::client_cert::RequestClientCert)). Only the ring
//! provider is used, chosen explicitly rather than through the process-wide default. SNI
//! certificates (`--tls-sni-cert-key`) and curve preferences are not supported. Key material
//! never reaches a log line or an error message.

use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// `tls::Error`: which step failed, on which file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--tls-cert-file and --tls-private-key-file must be set together")]
    HalfExplicitPair,
    #[error("error reading {}, certificate and key must be supplied as a pair", path.display())]
    Unpaired { path: PathBuf },
    #[error("reading {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parsing PEM certificates in {}", path.display())]
    ParseCertificates {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("no certificate found in {}", path.display())]
    NoCertificates { path: PathBuf },
    #[error("parsing the PEM private key in {}", path.display())]
    ParseKey {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("generating a self-signed certificate")]
    Generate(#[source] rcgen::Error),
    #[error("creating certificate directory {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("TLS version {value:?} is not supported: rustls implements only VersionTLS12 and VersionTLS13")]
    UnsupportedTlsVersion { value: String },
    #[error("unknown tls version {value:?}")]
    UnknownTlsVersion { value: String },
    #[error("building the TLS server configuration")]
    Config(#[source] rustls::Error),
    #[error(transparent)]
    CipherSuite(#[from] super::cipher_suites::CipherSuiteError),
}

/// `tls::Result`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a serving pair came from (for the start-up log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertSource {
    /// `--tls-cert-file` and `--tls-private-key-file`.
    Files,
    /// An existing pair in `--cert-dir`.
    CertDir,
    /// Generated self-signed just now and written to `--cert-dir`.
    Generated,
}

/// A certificate chain and its private key.
pub struct CertifiedKeyPair {
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_file: PathBuf,
    key_file: PathBuf,
    source: CertSource,
}

impl fmt::Debug for CertifiedKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertifiedKeyPair")
            .field("certificates", &self.cert_chain.len())
            .field("key", &"<redacted>")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("source", &self.source)
            .finish()
    }
}

impl Clone for CertifiedKeyPair {
    fn clone(&self) -> Self {
        Self {
            cert_chain: self.cert_chain.clone(),
            key: self.key.clone_key(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            source: self.source,
        }
    }
}

impl CertifiedKeyPair {
    /// The DER certificates, leaf first.
    pub fn cert_chain(&self) -> &[CertificateDer<'static>] {
        &self.cert_chain
    }

    /// The private key (DER).
    pub fn key(&self) -> &PrivateKeyDer<'static> {
        &self.key
    }

    /// The certificate file read or written.
    pub fn cert_file(&self) -> &Path {
        &self.cert_file
    }

    /// The key file read or written.
    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// Where the pair came from.
    pub fn source(&self) -> CertSource {
        self.source
    }
}

/// File names inside `--cert-dir`, as upstream names them.
pub const CERT_FILE_NAME: &str = "apiserver.crt";
/// See [`CERT_FILE_NAME`].
pub const KEY_FILE_NAME: &str = "apiserver.key";

/// Loads the serving pair: explicit files, else `<cert_dir>/apiserver.{crt,key}`, else a new
/// self-signed pair for `localhost`, `127.0.0.1` and `alt_names` (IPs or DNS names) written there.
pub fn load_or_generate(
    cert_file: Option<&Path>,
    key_file: Option<&Path>,
    cert_dir: &Path,
    alt_names: &[String],
) -> Result<CertifiedKeyPair> {
    match (cert_file, key_file) {
        (Some(cert), Some(key)) => return load(cert, key, CertSource::Files),
        (None, None) => {}
        _ => return Err(Error::HalfExplicitPair),
    }
    let cert = cert_dir.join(CERT_FILE_NAME);
    let key = cert_dir.join(KEY_FILE_NAME);
    match (readable(&cert), readable(&key)) {
        (true, true) => return load(&cert, &key, CertSource::CertDir),
        (false, false) => {}
        (false, true) => return Err(Error::Unpaired { path: cert }),
        (true, false) => return Err(Error::Unpaired { path: key }),
    }
    let (cert_pem, key_pem) = generate(alt_names)?;
    fs::create_dir_all(cert_dir).map_err(|source| Error::CreateDir {
        path: cert_dir.to_owned(),
        source,
    })?;
    write_file(&cert, cert_pem.as_bytes(), 0o644)?;
    write_file(&key, key_pem.as_bytes(), 0o600)?;
    tracing::info!(cert = %cert.display(), key = %key.display(), "generated self-signed serving certificate");
    load(&cert, &key, CertSource::Generated)
}

fn readable(path: &Path) -> bool {
    fs::File::open(path).is_ok()
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

pub(crate) fn load(cert_file: &Path, key_file: &Path, source: CertSource) -> Result<CertifiedKeyPair> {
    let cert_pem = read(cert_file)?;
    let cert_chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| Error::ParseCertificates {
            path: cert_file.to_owned(),
            source,
        })?;
    if cert_chain.is_empty() {
        return Err(Error::NoCertificates {
            path: cert_file.to_owned(),
        });
    }
    let key_pem = read(key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|source| Error::ParseKey {
        path: key_file.to_owned(),
        source,
    })?;
    Ok(CertifiedKeyPair {
        cert_chain,
        key,
        cert_file: cert_file.to_owned(),
        key_file: key_file.to_owned(),
        source,
    })
}

/// A self-signed ECDSA P-256 leaf valid from an hour ago for one year (upstream: RSA, one year).
fn generate(alt_names: &[String]) -> Result<(String, String)> {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType};
    let mut sans = vec![
        SanType::DnsName("localhost".try_into().map_err(Error::Generate)?),
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    ];
    for name in alt_names {
        let san = match name.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(name.as_str().try_into().map_err(Error::Generate)?),
        };
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, "localhost");
    params.subject_alt_names = sans;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + now.saturating_sub(Duration::from_secs(3600));
    params.not_after = epoch + now + Duration::from_secs(365 * 24 * 3600);
    let key = KeyPair::generate().map_err(Error::Generate)?;
    let cert = params.self_signed(&key).map_err(Error::Generate)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let written = options.open(path).and_then(|mut f| {
        // `mode` applies only when the file is created; tighten an existing one too.
        #[cfg(unix)]
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        f.write_all(contents)?;
        f.sync_all()
    });
    written.map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })
}

/// `--tls-min-version`; rustls implements TLS 1.2 and 1.3 only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    /// `VersionTLS12`, upstream's default.
    #[default]
    Tls12,
    /// `VersionTLS13`.
    Tls13,
}

impl FromStr for TlsVersion {
    type Err = Error;

    /// Upstream's names; empty means the default (TLS 1.2).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "" | "VersionTLS12" => Ok(Self::Tls12),
            "VersionTLS13" => Ok(Self::Tls13),
            "VersionTLS10" | "VersionTLS11" => Err(Error::UnsupportedTlsVersion { value: s.to_owned() }),
            _ => Err(Error::UnknownTlsVersion { value: s.to_owned() }),
        }
    }
}

/// How the serving TLS is configured besides the pair; `Default` is upstream's defaults with
/// reloading on and client certificates not requested.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsOptions {
    /// `--tls-min-version` (TLS 1.2).
    pub min_version: TlsVersion,
    /// `--tls-cipher-suites`, mapped ([`cipher_suites`](super::cipher_suites::cipher_suites));
    /// `None` for rustls' defaults.
    pub cipher_suites: Option<Vec<rustls::SupportedCipherSuite>>,
    /// Offer `h2` in ALPN (`--disable-http2-serving` turns it off).
    pub http2: bool,
    /// Ask clients for a certificate (never require one), for delegated authentication.
    pub request_client_certs: bool,
    /// How often the pair's files are checked for changes; `None` serves the pair as loaded.
    pub reload_interval: Option<Duration>,
}

/// Serving files are looked at no more often than this by default.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(2);

impl Default for TlsOptions {
    fn default() -> Self {
        Self {
            min_version: TlsVersion::Tls12,
            cipher_suites: None,
            http2: true,
            request_client_certs: false,
            reload_interval: Some(DEFAULT_RELOAD_INTERVAL),
        }
    }
}

/// The rustls server configuration: the pair, the minimum version, and ALPN `h2`,`http/1.1`
/// (only `http/1.1` when `http2` is false), with the pair served as loaded and no client
/// certificates requested. Fails if the key does not match the certificate.
pub fn server_config(pair: &CertifiedKeyPair, min_version: TlsVersion, http2: bool) -> Result<Arc<ServerConfig>> {
    let options = TlsOptions {
        min_version,
        http2,
        reload_interval: None,
        ..TlsOptions::default()
    };
    serving_config(pair, &options)
}

/// The rustls server configuration for `pair` with `options`. Fails if the key does not match
/// the certificate or no cipher suite is usable with the allowed versions.
pub fn serving_config(pair: &CertifiedKeyPair, options: &TlsOptions) -> Result<Arc<ServerConfig>> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = match options.min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(suites) = &options.cipher_suites {
        provider.cipher_suites.clone_from(suites);
    }
    provider.cipher_suites = super::cipher_suites::cheapest_first(&provider.cipher_suites);
    let provider = Arc::new(provider);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(Error::Config)?;
    let builder = if options.request_client_certs {
        builder.with_client_cert_verifier(super::client_cert::RequestClientCert::new())
    } else {
        builder.with_no_client_auth()
    };
    let mut config = match options.reload_interval {
        Some(interval) => {
            let resolver = super::cert_reload::ReloadingCert::new(pair, interval, provider)?;
            builder.with_cert_resolver(Arc::new(resolver))
        }
        None => builder
            .with_single_cert(pair.cert_chain.clone(), pair.key.clone_key())
            .map_err(Error::Config)?,
    };
    // The server's ranking of suites decides, not the client's (see `cheapest_first`).
    config.ignore_client_order = true;
    config.alpn_protocols = if options.http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
