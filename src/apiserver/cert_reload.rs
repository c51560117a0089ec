//! The serving certificate, reloaded from its files when they change, without a restart.
//!
//! [`ReloadingCert`] is the rustls certificate resolver: at most once per interval, a handshake
//! looks at the two files' modification time, size and inode; when any changed, the pair is
//! read again and, if it parses and the key matches the certificate, swapped in for the next
//! handshakes. A bad pair (half-written, mismatched) is logged and the old one kept; it is
//! retried when the files change again. Open connections keep the certificate they shook hands
//! with. Only one handshake checks at a time; the others are served the current pair at once.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::tls::{self, CertifiedKeyPair};

/// What identifies a version of a file without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

fn stamp(path: &Path) -> std::io::Result<FileStamp> {
    let meta = fs::metadata(path)?;
    Ok(FileStamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        #[cfg(unix)]
        inode: std::os::unix::fs::MetadataExt::ino(&meta),
    })
}

/// When the files were last looked at, and what they looked like.
#[derive(Debug)]
struct Check {
    at: Instant,
    /// `None` after the files could not be examined (so any readable state is new).
    files: Option<(FileStamp, FileStamp)>,
}

/// A certificate resolver that follows its files.
pub struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    interval: Duration,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    check: Mutex<Check>,
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Serves `pair` and follows its files, looking at most once per `interval`.
    pub fn new(pair: &CertifiedKeyPair, interval: Duration, provider: Arc<CryptoProvider>) -> tls::Result<Self> {
        let files = stamp(pair.cert_file()).ok().zip(stamp(pair.key_file()).ok());
        let key = certified_key(pair, &provider)?;
        Ok(Self {
            cert_file: pair.cert_file().to_owned(),
            key_file: pair.key_file().to_owned(),
            interval,
            provider,
            current: RwLock::new(Arc::new(key)),
            check: Mutex::new(Check {
                at: Instant::now(),
                files,
            }),
        })
    }

    /// The pair served now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Looks at the files if the interval has passed (and no other handshake is looking).
    fn maybe_reload(&self) {
        let Ok(mut check) = self.check.try_lock() else {
            return;
        };
        let now = Instant::now();
        if now.saturating_duration_since(check.at) < self.interval {
            return;
        }
        check.at = now;
        let files = match stamp(&self.cert_file).and_then(|c| Ok((c, stamp(&self.key_file)?))) {
            Ok(files) => files,
            Err(error) => {
                if check.files.take().is_some() {
                    tracing::warn!(%error, cert = %self.cert_file.display(), key = %self.key_file.display(),
                        "serving certificate files are unreadable; keeping the current certificate");
                }
                return;
            }
        };
        if check.files.as_ref() == Some(&files) {
            return;
        }
        check.files = Some(files);
        let loaded = tls::load(&self.cert_file, &self.key_file, tls::CertSource::Files)
            .and_then(|pair| certified_key(&pair, &self.provider));
        match loaded {
            Ok(key) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
                tracing::info!(cert = %self.cert_file.display(), "reloaded the serving certificate");
            }
            Err(error) => tracing::warn!(
                error = %super::error_chain(&error),
                "the changed serving certificate files are not a usable pair; keeping the current certificate"
            ),
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.maybe_reload();
        Some(self.current())
    }
}

/// A rustls certified key; fails if the key does not sign for the certificate.
pub(crate) fn certified_key(pair: &CertifiedKeyPair, provider: &CryptoProvider) -> tls::Result<CertifiedKey> {
    CertifiedKey::from_der(pair.cert_chain().to_vec(), pair.key().clone_key(), provider).map_err(tls::Error::Config)
}
