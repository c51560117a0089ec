//! Which client certificates are trusted, and for what: the client CA (certificate users) and
//! the request-header settings (front proxies), from flags or from the ConfigMap
//! `kube-system/extension-apiserver-authentication`, kept current as it changes (spec §4.1).
//!
//! A part given by flag (`--client-ca-file`, `--requestheader-client-ca-file` with its header
//! flags) is fixed; a part not given is taken from the ConfigMap unless
//! `--authentication-skip-lookup`. The ConfigMap is read once at start (a failure is fatal
//! unless `--authentication-tolerate-lookup-failure`; a missing ConfigMap is not a failure),
//! then watched: each change publishes a new [`Trust`] with a new generation; an unreadable
//! change is logged and the last good value kept; a deleted ConfigMap withdraws its CAs.
//! Readers take the current [`Trust`] with one `Arc` clone. This file does not verify chains
//! ([`CaBundle`] does) nor read request headers ([`authn`](super::authn) does).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::header::HeaderName;
use k8s_openapi::api::core::v1::ConfigMap;
use tokio::sync::watch;

use super::client_cert::{CaBundle, CaError};

mod configmap;

pub use configmap::LookupError;
use configmap::{follow, lookup, merge, warn_missing, ClusterParts};

/// The ConfigMap the kube-apiserver publishes its authentication CAs in.
pub const CONFIGMAP_NAMESPACE: &str = "kube-system";
/// See [`CONFIGMAP_NAMESPACE`].
pub const CONFIGMAP_NAME: &str = "extension-apiserver-authentication";

/// Why the trusted CAs could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {flag} {}", path.display())]
    ReadFile {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("loading {flag}")]
    Ca {
        flag: &'static str,
        #[source]
        source: CaError,
    },
    #[error("invalid header name {name:?} in {origin}")]
    HeaderName { name: String, origin: String },
    #[error("unable to load configmap based request-header-client-ca-file")]
    Lookup(#[source] LookupError),
}

/// Front-proxy authentication: whose certificates are trusted to name the user in headers.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestHeaderConfig {
    pub ca: CaBundle,
    /// Common names allowed to act as a front proxy; empty allows any the CA signed.
    pub allowed_names: Vec<String>,
    pub username_headers: Vec<HeaderName>,
    pub uid_headers: Vec<HeaderName>,
    pub group_headers: Vec<HeaderName>,
    /// Lower-case prefixes of `<prefix><key>: <value>` extra headers.
    pub extra_header_prefixes: Vec<String>,
}

/// What client certificates are trusted for at one moment.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Bumped on every change, so per-connection verdicts know when to re-verify.
    pub generation: u64,
    /// Signs certificates whose CN/O are a user and groups.
    pub client_ca: Option<CaBundle>,
    /// Signs front proxies, which name the user in headers.
    pub request_header: Option<RequestHeaderConfig>,
}

impl Trust {
    fn same_content(&self, other: &Trust) -> bool {
        self.client_ca == other.client_ca && self.request_header == other.request_header
    }
}

/// Header settings of `--requestheader-*` (used when the front-proxy CA is given by flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeaderFlags {
    pub client_ca_file: Option<PathBuf>,
    pub allowed_names: Vec<String>,
    pub username_headers: Vec<String>,
    pub uid_headers: Vec<String>,
    pub group_headers: Vec<String>,
    pub extra_headers_prefix: Vec<String>,
}

impl Default for RequestHeaderFlags {
    /// Upstream's defaults: `x-remote-user`, `x-remote-group`, `x-remote-extra-`, no UID header.
    fn default() -> Self {
        Self {
            client_ca_file: None,
            allowed_names: Vec::new(),
            username_headers: vec!["x-remote-user".to_owned()],
            uid_headers: Vec::new(),
            group_headers: vec!["x-remote-group".to_owned()],
            extra_headers_prefix: vec!["x-remote-extra-".to_owned()],
        }
    }
}

/// Where the trusted CAs come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustOptions {
    /// `--client-ca-file`.
    pub client_ca_file: Option<PathBuf>,
    /// `--requestheader-*`.
    pub request_header: RequestHeaderFlags,
    /// `--authentication-skip-lookup`.
    pub skip_lookup: bool,
    /// `--authentication-tolerate-lookup-failure`.
    pub tolerate_lookup_failure: bool,
}

/// The current [`Trust`], kept up to date in the background while this lives.
#[derive(Debug)]
pub struct TrustSource {
    current: watch::Receiver<Arc<Trust>>,
    /// The ConfigMap watch, stopped when the source is dropped.
    follower: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for TrustSource {
    fn drop(&mut self) {
        if let Some(task) = &self.follower {
            task.abort();
        }
    }
}

impl TrustSource {
    /// A trust that never changes.
    pub fn fixed(trust: Trust) -> Self {
        Self {
            current: watch::Sender::new(Arc::new(trust)).subscribe(),
            follower: None,
        }
    }

    /// A trust published by someone else (e.g. a test, or an embedding program).
    pub fn from_channel(current: watch::Receiver<Arc<Trust>>) -> Self {
        Self {
            current,
            follower: None,
        }
    }

    /// Loads the flag-given parts, then (unless skipped or complete) reads and watches the
    /// ConfigMap through `client`.
    pub async fn start(options: &TrustOptions, client: Option<kube::Client>) -> Result<Self, Error> {
        let fixed = Trust {
            generation: 0,
            client_ca: match &options.client_ca_file {
                Some(path) => Some(load_ca(path, "--client-ca-file")?),
                None => None,
            },
            request_header: flag_request_header(&options.request_header)?,
        };
        let complete = fixed.client_ca.is_some() && fixed.request_header.is_some();
        let client = match client {
            Some(client) if !options.skip_lookup && !complete => client,
            None if !options.skip_lookup && !complete => {
                tracing::warn!("no client to read configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME}: certificate authentication uses the flags only");
                return Ok(Self::fixed(fixed));
            }
            _ => return Ok(Self::fixed(fixed)),
        };
        let api = kube::Api::<ConfigMap>::namespaced(client, CONFIGMAP_NAMESPACE);
        let from_cluster = match lookup(&api).await {
            Ok(found) => found,
            Err(error) if options.tolerate_lookup_failure => {
                tracing::warn!(
                    error = %crate::apiserver::error_chain(&error),
                    "looking up the in-cluster authentication configuration failed; continuing without it \
                     (requests may be treated as anonymous) until the configmap can be read"
                );
                ClusterParts::default()
            }
            Err(error) => return Err(Error::Lookup(error)),
        };
        let first = merge(&fixed, &from_cluster, 1);
        warn_missing(&first);
        let (tx, rx) = watch::channel(Arc::new(first));
        let follower = tokio::spawn(follow(api, fixed, tx));
        Ok(Self {
            current: rx,
            follower: Some(follower),
        })
    }

    /// The trust in force now.
    pub fn current(&self) -> Arc<Trust> {
        self.current.borrow().clone()
    }

    /// A receiver that sees every new [`Trust`] (tests wait on it).
    pub fn changes(&self) -> watch::Receiver<Arc<Trust>> {
        self.current.clone()
    }
}

fn load_ca(path: &Path, flag: &'static str) -> Result<CaBundle, Error> {
    let pem = std::fs::read(path).map_err(|source| Error::ReadFile {
        flag,
        path: path.to_owned(),
        source,
    })?;
    CaBundle::from_pem(&pem, format!("{flag} {}", path.display())).map_err(|source| Error::Ca { flag, source })
}

fn flag_request_header(flags: &RequestHeaderFlags) -> Result<Option<RequestHeaderConfig>, Error> {
    let Some(path) = &flags.client_ca_file else {
        return Ok(None);
    };
    let headers = |names: &[String], flag: &str| {
        header_names(names).map_err(|name| Error::HeaderName {
            name,
            origin: flag.to_owned(),
        })
    };
    Ok(Some(RequestHeaderConfig {
        ca: load_ca(path, "--requestheader-client-ca-file")?,
        allowed_names: flags.allowed_names.clone(),
        username_headers: headers(&flags.username_headers, "--requestheader-username-headers")?,
        uid_headers: headers(&flags.uid_headers, "--requestheader-uid-headers")?,
        group_headers: headers(&flags.group_headers, "--requestheader-group-headers")?,
        extra_header_prefixes: flags
            .extra_headers_prefix
            .iter()
            .map(|p| p.to_ascii_lowercase())
            .collect(),
    }))
}

/// Header names, lower-cased; the first invalid one is the error.
fn header_names(names: &[String]) -> Result<Vec<HeaderName>, String> {
    names
        .iter()
        .map(|n| HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()).map_err(|_| n.clone()))
        .collect()
}

#[cfg(test)]
#[path = "client_ca_tests.rs"]
mod tests;
