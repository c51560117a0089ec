//! The kubelet client's credentials in cluster mode, derived as upstream derives them: start
//! from the same config used for the Kubernetes API (kubeconfig or in-cluster), then apply the
//! kubelet flags in upstream's order (completely-insecure, insecure-tls, CA, client cert/key).

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;

use super::client::{BearerToken, ClientConfig, Secret, ServerVerification};

/// The kubelet flags that shape credentials.
#[derive(Debug, Clone, Default)]
pub struct KubeletTlsFlags {
    pub certificate_authority: Option<PathBuf>,
    pub client_certificate: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub insecure_tls: bool,
    pub completely_insecure: bool,
}

/// Bounds that are not credentials.
#[derive(Debug, Clone, Copy)]
pub struct ClientLimits {
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
    pub idle_timeout: Duration,
    /// How often a token file is re-read (the kubelet rotates projected tokens).
    pub token_refresh: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("decoding {what} from the kubeconfig (base64)")]
    Base64 {
        what: &'static str,
        #[source]
        source: base64::DecodeError,
    },
    #[error(
        "no certificate authority to verify kubelets with: the kubeconfig has none; pass --kubelet-certificate-authority, or --kubelet-insecure-tls in test clusters"
    )]
    NoCa,
    #[error("the kubeconfig has a client certificate but no client key (or the reverse)")]
    HalfClientPair,
}

/// Builds the kubelet client config from the API config and the kubelet flags.
pub fn from_kube_config(
    config: &kube::Config,
    flags: &KubeletTlsFlags,
    limits: ClientLimits,
) -> Result<ClientConfig, Error> {
    let base = ClientConfig {
        verification: ServerVerification::InsecureSkipVerify,
        client_cert_pem: None,
        bearer_token: None,
        request_timeout: limits.request_timeout,
        max_body_bytes: limits.max_body_bytes,
        idle_timeout: limits.idle_timeout,
    };
    // 1. Plain HTTP to the read-only port, with every credential stripped.
    if flags.completely_insecure {
        return Ok(ClientConfig {
            verification: ServerVerification::PlainHttp,
            ..base
        });
    }
    let auth = &config.auth_info;
    let bearer_token = if let Some(token) = &auth.token {
        Some(BearerToken::Static(Secret::new(secrecy_expose(token))))
    } else {
        auth.token_file.as_ref().map(|path| BearerToken::File {
            path: PathBuf::from(path),
            refresh: limits.token_refresh,
        })
    };
    // 2.–3. Server verification: insecure, else the flag's CA, else the API config's CA.
    let verification = if flags.insecure_tls {
        ServerVerification::InsecureSkipVerify
    } else if let Some(ca) = &flags.certificate_authority {
        ServerVerification::CaPem(read(ca)?)
    } else if let Some(file) = &config.root_cert_file {
        ServerVerification::CaPem(read(file)?)
    } else if let Some(certs) = &config.root_cert {
        ServerVerification::CaDer(certs.clone())
    } else if config.accept_invalid_certs {
        ServerVerification::InsecureSkipVerify
    } else {
        return Err(Error::NoCa);
    };
    // 4.–5. Client certificate: the flags' files, else the kubeconfig's (data or files).
    let client_cert_pem = match (&flags.client_certificate, &flags.client_key) {
        (Some(cert), Some(key)) => Some((read(cert)?, Secret::new(String::from_utf8_lossy(&read(key)?)))),
        _ => kubeconfig_identity(auth)?,
    };
    Ok(ClientConfig {
        verification,
        client_cert_pem,
        bearer_token,
        ..base
    })
}

fn kubeconfig_identity(auth: &kube::config::AuthInfo) -> Result<Option<(Vec<u8>, Secret)>, Error> {
    let cert = match (&auth.client_certificate_data, &auth.client_certificate) {
        (Some(data), _) => Some(base64(data, "client-certificate-data")?),
        (None, Some(path)) => Some(read(Path::new(path))?),
        (None, None) => None,
    };
    let key = match (&auth.client_key_data, &auth.client_key) {
        (Some(data), _) => Some(base64(&secrecy_expose(data), "client-key-data")?),
        (None, Some(path)) => Some(read(Path::new(path))?),
        (None, None) => None,
    };
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some((cert, Secret::new(String::from_utf8_lossy(&key))))),
        (None, None) => Ok(None),
        _ => Err(Error::HalfClientPair),
    }
}

fn secrecy_expose(secret: &secrecy::SecretString) -> String {
    use secrecy::ExposeSecret as _;
    secret.expose_secret().to_owned()
}

fn base64(data: &str, what: &'static str) -> Result<Vec<u8>, Error> {
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|source| Error::Base64 { what, source })
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}
