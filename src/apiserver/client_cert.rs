//! Client certificates: asked for in the handshake, judged per request.
//!
//! The CAs that decide whom a client certificate identifies (`--client-ca-file`, the front-proxy
//! CA) change while the server runs, so they are not baked into rustls. The handshake only asks
//! for a certificate and checks that the client holds its key ([`RequestClientCert`]); the
//! chain is kept per connection ([`PeerChain`]) and verified against the *current* bundle
//! ([`CaBundle`]) when a request needs it, as Go's `tls.RequestClientCert` plus
//! `x509.Verify` do in k8s.io/apiserver. What a verified certificate means (a user, or a
//! trusted front proxy) is decided in [`authn`](super::authn).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};

use super::authn::PeerVerdict;
use super::x509_name::{self, Subject};

/// Why a CA bundle could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("parsing PEM certificates from {origin}")]
    Pem {
        origin: String,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("no certificate found in {origin}")]
    Empty { origin: String },
    #[error("using the certificates from {origin} as trust anchors")]
    Anchor {
        origin: String,
        #[source]
        source: rustls::Error,
    },
    #[error("building a verifier from {origin}")]
    Verifier {
        origin: String,
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
}

/// Why a presented chain was not accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChainError {
    #[error("verifying the client certificate")]
    Verify(#[source] rustls::Error),
    #[error("reading the client certificate subject")]
    Subject(#[source] x509_name::Malformed),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Asks every client for a certificate, does not require one, accepts any chain, and checks
/// only that the client signed the handshake with the certificate's key. No CA names are sent,
/// so clients (Go's included) offer their certificate whatever CA issued it.
#[derive(Debug)]
pub struct RequestClientCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl RequestClientCert {
    /// A verifier using ring's signature algorithms.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            algorithms: provider().signature_verification_algorithms,
        })
    }
}

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Trust is decided per request against the CA bundles current then (PeerChain).
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A set of CA certificates and a verifier of client chains built from them.
#[derive(Clone)]
pub struct CaBundle {
    /// The PEM as loaded, to tell whether a reloaded bundle changed.
    pem: Arc<[u8]>,
    verifier: Arc<dyn ClientCertVerifier>,
    origin: String,
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaBundle")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl PartialEq for CaBundle {
    fn eq(&self, other: &Self) -> bool {
        self.pem == other.pem
    }
}

impl CaBundle {
    /// Parses PEM certificates; `origin` names the file or ConfigMap key in errors and logs.
    pub fn from_pem(pem: &[u8], origin: impl Into<String>) -> Result<Self, CaError> {
        let origin = origin.into();
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| CaError::Pem {
                origin: origin.clone(),
                source,
            })?;
        if certs.is_empty() {
            return Err(CaError::Empty { origin });
        }
        let mut roots = RootCertStore::empty();
        for cert in certs {
            roots.add(cert).map_err(|source| CaError::Anchor {
                origin: origin.clone(),
                source,
            })?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|source| CaError::Verifier {
                origin: origin.clone(),
                source,
            })?;
        Ok(Self {
            pem: pem.into(),
            verifier,
            origin,
        })
    }

    /// Where the bundle came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Verifies `chain` (leaf first) for client authentication now, and reads its subject.
    pub(crate) fn verify(&self, chain: &[CertificateDer<'static>]) -> Result<Subject, ChainError> {
        let (leaf, intermediates) = chain
            .split_first()
            .ok_or(ChainError::Verify(rustls::Error::NoCertificatesPresented))?;
        self.verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map_err(ChainError::Verify)?;
        x509_name::subject(leaf).map_err(ChainError::Subject)
    }
}

/// The certificate chain a connection's client presented (leaf first), if any, shared by every
/// request on the connection together with the verdict last reached about it.
#[derive(Debug, Default)]
pub struct PeerChain {
    chain: Option<Vec<CertificateDer<'static>>>,
    /// `(trust generation, when, verdict)`: reused while the trust is unchanged and the
    /// verdict fresh, so requests on a kept-alive connection do not re-verify signatures.
    memo: Mutex<Option<(u64, Instant, Arc<PeerVerdict>)>>,
}

impl PeerChain {
    /// The chain from a finished handshake (`ServerConnection::peer_certificates`).
    pub fn new(chain: Option<&[CertificateDer<'static>]>) -> Self {
        Self {
            chain: chain.filter(|c| !c.is_empty()).map(<[_]>::to_vec),
            memo: Mutex::default(),
        }
    }

    /// No certificate (plain in-process calls, or a client that sent none).
    pub fn none() -> Self {
        Self::default()
    }

    /// The presented chain, leaf first.
    pub fn chain(&self) -> Option<&[CertificateDer<'static>]> {
        self.chain.as_deref()
    }

    /// The verdict memoized for `generation` if younger than `max_age`, else a new one from
    /// `judge`.
    pub(crate) fn verdict(
        &self,
        generation: u64,
        now: Instant,
        max_age: Duration,
        judge: impl FnOnce() -> PeerVerdict,
    ) -> Arc<PeerVerdict> {
        if let Ok(memo) = self.memo.lock() {
            if let Some((g, at, verdict)) = memo.as_ref() {
                if *g == generation && now.saturating_duration_since(*at) < max_age {
                    return verdict.clone();
                }
            }
        }
        let verdict = Arc::new(judge());
        if let Ok(mut memo) = self.memo.lock() {
            *memo = Some((generation, now, verdict.clone()));
        }
        verdict
    }
}
