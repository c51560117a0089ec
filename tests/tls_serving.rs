//! TLS serving over real sockets: the serving certificate is reloaded from its files without a
//! restart, the minimum version and the cipher-suite list are enforced, and a bad
//! `--tls-cipher-suites` stops the binary at start-up with the suite's name.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a failed step should fail the test loudly"
)]

use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use hyper::http::request::Parts;
use metrics_server_rs::apiserver::cipher_suites::cipher_suites;
use metrics_server_rs::apiserver::{
    load_or_generate, serving_config, Discovery, Handler, HealthChecks, MetricsText, Response, Server, TlsOptions,
    TlsVersion,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;

/// Guards against a hang; never stands in for a signal.
const GUARD: Duration = Duration::from_secs(20);

async fn guarded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish"))
}

struct NoApi;

impl Handler for NoApi {
    fn handle(&self, _req: &Parts) -> Option<Response> {
        None
    }
}

/// Serves the pair in `cert`/`key` with `options` until the returned sender is dropped.
async fn serve(cert: &Path, key: &Path, options: &TlsOptions) -> (std::net::SocketAddr, oneshot::Sender<()>) {
    let scratch = tempfile::tempdir().unwrap();
    let pair = load_or_generate(Some(cert), Some(key), scratch.path(), &[]).unwrap();
    let tls = serving_config(&pair, options).unwrap();
    let health = HealthChecks::builder().build().unwrap();
    let metrics: MetricsText = Arc::new(String::new);
    let server = Server::new(health, Discovery::new(vec![]).unwrap(), "{}", metrics, Arc::new(NoApi));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(Arc::new(server).serve(listener, tls, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// Accepts any server certificate: these tests look at what is presented, not whom to trust.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
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

/// A client limited to `versions` and (if given) `suites`.
fn client(versions: &[&'static rustls::SupportedProtocolVersion], suites: Option<&[&str]>) -> Arc<ClientConfig> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = suites {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        provider.cipher_suites = cipher_suites(&names).unwrap().unwrap();
    }
    let provider = Arc::new(provider);
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    Arc::new(config)
}

/// A full handshake: the presented leaf and the negotiated version and suite, or the error.
async fn handshake(
    addr: std::net::SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<(CertificateDer<'static>, rustls::ProtocolVersion, rustls::CipherSuite)> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let tls = TlsConnector::from(config).connect(name, tcp).await?;
    let conn = tls.get_ref().1;
    Ok((
        conn.peer_certificates().unwrap()[0].clone(),
        conn.protocol_version().unwrap(),
        conn.negotiated_cipher_suite().unwrap().suite(),
    ))
}

/// A fresh self-signed pair for localhost, PEM.
fn pair_pem() -> (String, String, CertificateDer<'static>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().clone())
}

/// Replaces `path` atomically, as a Secret volume update does.
fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn a_rotated_serving_certificate_is_presented_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let (cert_a, key_a, der_a) = pair_pem();
    std::fs::write(&cert_file, cert_a).unwrap();
    std::fs::write(&key_file, key_a).unwrap();
    let options = TlsOptions {
        reload_interval: Some(Duration::ZERO),
        ..TlsOptions::default()
    };
    let (addr, _stop) = serve(&cert_file, &key_file, &options).await;
    let config = client(rustls::DEFAULT_VERSIONS, None);
    assert_eq!(
        guarded("handshake", handshake(addr, config.clone())).await.unwrap().0,
        der_a
    );

    let (cert_b, key_b, der_b) = pair_pem();
    replace(&key_file, &key_b);
    replace(&cert_file, &cert_b);
    // Reconnect until the new pair is presented (bounded by the guard); a handshake never
    // fails meanwhile: the old pair is served until the new one is complete.
    guarded("the new certificate", async {
        loop {
            let (presented, _, _) = handshake(addr, config.clone()).await.unwrap();
            if presented == der_b {
                break;
            }
            assert_eq!(presented, der_a);
            tokio::task::yield_now().await;
        }
    })
    .await;

    // A broken replacement (a key that does not match) keeps the working pair.
    let (_, key_c, _) = pair_pem();
    replace(&key_file, &key_c);
    for _ in 0..3 {
        assert_eq!(
            guarded("handshake", handshake(addr, config.clone())).await.unwrap().0,
            der_b
        );
    }
}

#[tokio::test]
async fn old_tls_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let (cert, key, _) = pair_pem();
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();

    // The default minimum, TLS 1.2: a TLS 1.1 client (openssl) gets no session.
    let (addr, _stop) = serve(&cert_file, &key_file, &TlsOptions::default()).await;
    let openssl = move |args: &[&str]| {
        let out = Command::new("openssl")
            .arg("s_client")
            .arg("-connect")
            .arg(addr.to_string())
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl must be on PATH");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (text(&out.stderr), text(&out.stdout))
    };
    let old = ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"];
    let (stderr, stdout) = tokio::task::spawn_blocking(move || openssl(&old)).await.unwrap();
    // openssl's exit status does not always reflect the failed handshake; its report does.
    assert!(
        stdout.contains("Cipher is (NONE)"),
        "a TLS 1.1 session was made:\n{stdout}"
    );
    // rustls answers an offer of TLS 1.1 only with a fatal alert (handshake_failure).
    assert!(stderr.contains("alert handshake failure"), "{stderr}");
    // The same command with TLS 1.2 does make a session, so the refusal is about the version.
    let (_, stdout) = tokio::task::spawn_blocking(move || openssl(&["-tls1_2"]))
        .await
        .unwrap();
    assert!(stdout.contains("Protocol  : TLSv1.2"), "{stdout}");
    assert!(!stdout.contains("Cipher is (NONE)"), "{stdout}");
    let (_, version, _) = guarded(
        "TLS 1.2 handshake",
        handshake(addr, client(&[&rustls::version::TLS12], None)),
    )
    .await
    .unwrap();
    assert_eq!(version, rustls::ProtocolVersion::TLSv1_2);

    // --tls-min-version=VersionTLS13: a TLS 1.2-only client is refused, TLS 1.3 works.
    let tls13 = TlsOptions {
        min_version: TlsVersion::Tls13,
        ..TlsOptions::default()
    };
    let (addr, _stop13) = serve(&cert_file, &key_file, &tls13).await;
    let refused = guarded(
        "TLS 1.2 handshake",
        handshake(addr, client(&[&rustls::version::TLS12], None)),
    )
    .await;
    assert!(refused.is_err());
    let (_, version, _) = guarded(
        "TLS 1.3 handshake",
        handshake(addr, client(rustls::DEFAULT_VERSIONS, None)),
    )
    .await
    .unwrap();
    assert_eq!(version, rustls::ProtocolVersion::TLSv1_3);
}

#[tokio::test]
async fn the_cipher_suite_list_limits_tls12_negotiation() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let (cert, key, _) = pair_pem();
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let only = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384";
    let options = TlsOptions {
        cipher_suites: cipher_suites(&[only.to_owned()]).unwrap(),
        ..TlsOptions::default()
    };
    let (addr, _stop) = serve(&cert_file, &key_file, &options).await;
    let tls12 = [&rustls::version::TLS12];
    let other = client(&tls12, Some(&["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]));
    assert!(guarded("handshake", handshake(addr, other)).await.is_err());
    let (_, _, suite) = guarded("handshake", handshake(addr, client(&tls12, Some(&[only]))))
        .await
        .unwrap();
    assert_eq!(suite, rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384);
    // TLS 1.3 is not restricted by a list of TLS 1.2 suites (as in Go).
    assert!(
        guarded("handshake", handshake(addr, client(rustls::DEFAULT_VERSIONS, None)))
            .await
            .is_ok()
    );
}

#[test]
fn a_bad_cipher_suite_name_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (suite, expected) in [
        ("TLS_MADE_UP_SUITE", "unknown TLS cipher suite \"TLS_MADE_UP_SUITE\""),
        (
            "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
            "TLS cipher suite \"TLS_RSA_WITH_3DES_EDE_CBC_SHA\" in --tls-cipher-suites is insecure (3DES)",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_metrics-server"))
            .arg("--sandbox")
            .arg("--secure-port=0")
            .arg(format!("--cert-dir={}", dir.path().display()))
            .arg(format!("--tls-cipher-suites=TLS_AES_128_GCM_SHA256,{suite}"))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
}
