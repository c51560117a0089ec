use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};

use super::*;

fn generated(dir: &Path, alt_names: &[&str]) -> CertifiedKeyPair {
    let alt: Vec<String> = alt_names.iter().map(|s| (*s).to_owned()).collect();
    load_or_generate(None, None, dir, &alt).unwrap()
}

/// Runs a TLS handshake in memory against `server`, trusting `pair`'s leaf, for `name`.
fn handshake(
    pair: &CertifiedKeyPair,
    server: Arc<ServerConfig>,
    name: &str,
    alpn: &[&[u8]],
) -> std::result::Result<Option<Vec<u8>>, rustls::Error> {
    let mut client_config = client_config(pair, rustls::crypto::ring::default_provider(), &[]);
    client_config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let server = connect(client_config, server, name)?;
    Ok(server.alpn_protocol().map(<[u8]>::to_vec))
}

/// A client trusting `pair`'s leaf, with `provider`'s suites in their order and `versions`
/// (rustls' safe defaults when empty).
fn client_config(
    pair: &CertifiedKeyPair,
    provider: rustls::crypto::CryptoProvider,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(pair.cert_chain()[0].clone()).unwrap();
    let builder = ClientConfig::builder_with_provider(Arc::new(provider));
    let builder = if versions.is_empty() {
        builder.with_safe_default_protocol_versions()
    } else {
        builder.with_protocol_versions(versions)
    };
    builder.unwrap().with_root_certificates(roots).with_no_client_auth()
}

/// Runs a TLS handshake in memory between `client_config` and `server` for `name`; the server's
/// side of the finished connection.
fn connect(
    client_config: ClientConfig,
    server: Arc<ServerConfig>,
    name: &str,
) -> std::result::Result<ServerConnection, rustls::Error> {
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let mut client = ClientConnection::new(Arc::new(client_config), name).unwrap();
    let mut server = ServerConnection::new(server).unwrap();
    for _ in 0..10 {
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(server);
        }
        let mut buf = Vec::new();
        client.write_tls(&mut buf).unwrap();
        server.read_tls(&mut buf.as_slice()).unwrap();
        server.process_new_packets()?;
        let mut buf = Vec::new();
        server.write_tls(&mut buf).unwrap();
        client.read_tls(&mut buf.as_slice()).unwrap();
        client.process_new_packets()?;
    }
    panic!("handshake did not finish");
}

/// The suite `server` picks for a client offering `offered`, in that order, over `version`.
fn negotiated(
    pair: &CertifiedKeyPair,
    server: Arc<ServerConfig>,
    offered: &[rustls::SupportedCipherSuite],
    version: &'static rustls::SupportedProtocolVersion,
) -> rustls::CipherSuite {
    let provider = rustls::crypto::CryptoProvider {
        cipher_suites: offered.to_vec(),
        ..rustls::crypto::ring::default_provider()
    };
    let server = connect(client_config(pair, provider, &[version]), server, "localhost").unwrap();
    server.negotiated_cipher_suite().unwrap().suite()
}

#[test]
fn generated_pair_is_written_with_a_private_key_file_and_covers_its_names() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("nested/certificates");
    let pair = generated(&certs, &["metrics-server.kube-system.svc", "10.0.0.7"]);
    assert_eq!(pair.source(), CertSource::Generated);
    assert_eq!(pair.cert_file(), certs.join("apiserver.crt"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(certs.join("apiserver.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let config = server_config(&pair, TlsVersion::Tls12, true).unwrap();
    for name in ["localhost", "127.0.0.1", "metrics-server.kube-system.svc", "10.0.0.7"] {
        handshake(&pair, config.clone(), name, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(handshake(&pair, config, "example.com", &[]).is_err());
}

#[test]
fn an_existing_pair_in_cert_dir_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let first = generated(dir.path(), &[]);
    let second = generated(dir.path(), &[]);
    assert_eq!(second.source(), CertSource::CertDir);
    assert_eq!(first.cert_chain(), second.cert_chain());
    assert_eq!(first.key().secret_der(), second.key().secret_der());
}

#[test]
fn explicit_files_win_and_must_come_in_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let made = generated(&dir.path().join("a"), &[]);
    let other_dir = dir.path().join("b");
    let pair = load_or_generate(Some(made.cert_file()), Some(made.key_file()), &other_dir, &[]).unwrap();
    assert_eq!(pair.source(), CertSource::Files);
    assert_eq!(pair.cert_chain(), made.cert_chain());
    assert!(!other_dir.exists(), "explicit files must not generate anything");
    let half = load_or_generate(Some(made.cert_file()), None, &other_dir, &[]);
    assert!(matches!(half, Err(Error::HalfExplicitPair)));
}

#[test]
fn half_a_pair_in_cert_dir_is_an_error_not_a_regeneration() {
    let dir = tempfile::tempdir().unwrap();
    generated(dir.path(), &[]);
    fs::remove_file(dir.path().join(KEY_FILE_NAME)).unwrap();
    let err = load_or_generate(None, None, dir.path(), &[]).unwrap_err();
    assert!(
        matches!(&err, Error::Unpaired { path } if path.ends_with(KEY_FILE_NAME)),
        "{err}"
    );
}

#[test]
fn unreadable_or_malformed_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let made = generated(dir.path(), &[]);
    let missing = dir.path().join("missing.crt");
    let err = load_or_generate(Some(&missing), Some(made.key_file()), dir.path(), &[]).unwrap_err();
    assert!(matches!(&err, Error::Read { path, .. } if *path == missing));
    assert_eq!(err.to_string(), format!("reading {}", missing.display()));

    let empty = dir.path().join("empty.crt");
    fs::write(&empty, "not pem\n").unwrap();
    let err = load_or_generate(Some(&empty), Some(made.key_file()), dir.path(), &[]).unwrap_err();
    assert!(matches!(err, Error::NoCertificates { .. }), "{err}");

    let err = load_or_generate(Some(made.cert_file()), Some(&empty), dir.path(), &[]).unwrap_err();
    assert!(matches!(err, Error::ParseKey { .. }), "{err}");
}

#[test]
fn errors_and_debug_never_show_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let pair = generated(dir.path(), &[]);
    let key_pem = fs::read_to_string(pair.key_file()).unwrap();
    let body = key_pem.lines().nth(1).unwrap();
    let debug = format!("{pair:?}");
    assert!(debug.contains("<redacted>") && !debug.contains(body), "{debug}");
}

#[test]
fn mismatched_key_is_rejected_when_building_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let a = generated(&dir.path().join("a"), &[]);
    let b = generated(&dir.path().join("b"), &[]);
    let mixed = load_or_generate(Some(a.cert_file()), Some(b.key_file()), dir.path(), &[]).unwrap();
    assert!(matches!(
        server_config(&mixed, TlsVersion::Tls12, true),
        Err(Error::Config(_))
    ));
}

#[test]
fn alpn_offers_h2_only_when_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let pair = generated(dir.path(), &[]);
    let both = server_config(&pair, TlsVersion::Tls12, true).unwrap();
    assert_eq!(both.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    assert_eq!(
        handshake(&pair, both, "localhost", &[b"h2", b"http/1.1"]).unwrap(),
        Some(b"h2".to_vec())
    );
    let h1 = server_config(&pair, TlsVersion::Tls13, false).unwrap();
    assert_eq!(h1.alpn_protocols, [b"http/1.1".to_vec()]);
    assert_eq!(
        handshake(&pair, h1, "localhost", &[b"h2", b"http/1.1"]).unwrap(),
        Some(b"http/1.1".to_vec())
    );
}

#[test]
fn the_server_prefers_aes128_whatever_order_the_client_offers() {
    use rustls::crypto::ring::cipher_suite as ring;
    let dir = tempfile::tempdir().unwrap();
    let pair = generated(dir.path(), &[]);
    let config = server_config(&pair, TlsVersion::Tls12, true).unwrap();
    let tls13 = [
        ring::TLS13_AES_256_GCM_SHA384,
        ring::TLS13_CHACHA20_POLY1305_SHA256,
        ring::TLS13_AES_128_GCM_SHA256,
    ];
    assert_eq!(
        negotiated(&pair, config.clone(), &tls13, &rustls::version::TLS13),
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
    );
    let tls12 = [
        ring::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ring::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ring::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ];
    assert_eq!(
        negotiated(&pair, config.clone(), &tls12, &rustls::version::TLS12),
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    );
    // Without AES-128 on offer, AES-256 before ChaCha20.
    assert_eq!(
        negotiated(&pair, config, &tls12[..2], &rustls::version::TLS12),
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
    );
}

#[test]
fn tls_cipher_suites_still_decide_what_is_allowed() {
    use rustls::crypto::ring::cipher_suite as ring;
    let dir = tempfile::tempdir().unwrap();
    let pair = generated(dir.path(), &[]);
    let names = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let options = |suites: &[&str]| TlsOptions {
        cipher_suites: super::super::cipher_suites::cipher_suites(&names(suites)).unwrap(),
        reload_interval: None,
        ..TlsOptions::default()
    };
    let offered = [
        ring::TLS13_AES_256_GCM_SHA384,
        ring::TLS13_AES_128_GCM_SHA256,
        ring::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ring::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ];
    // Only AES-256 allowed for TLS 1.2 (TLS 1.3 left open, as in Go): AES-256 it is.
    let aes256_12 = serving_config(&pair, &options(&["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"])).unwrap();
    assert_eq!(
        negotiated(&pair, aes256_12.clone(), &offered, &rustls::version::TLS12),
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
    );
    assert_eq!(
        negotiated(&pair, aes256_12, &offered, &rustls::version::TLS13),
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
    );
    // A TLS 1.3 suite named restricts TLS 1.3 to it.
    let aes256_13 = serving_config(&pair, &options(&["TLS_AES_256_GCM_SHA384"])).unwrap();
    assert_eq!(
        negotiated(&pair, aes256_13, &offered, &rustls::version::TLS13),
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384
    );
}

#[test]
fn tls_min_version_names_follow_upstream() {
    assert_eq!("VersionTLS12".parse::<TlsVersion>().unwrap(), TlsVersion::Tls12);
    assert_eq!("VersionTLS13".parse::<TlsVersion>().unwrap(), TlsVersion::Tls13);
    assert_eq!("".parse::<TlsVersion>().unwrap(), TlsVersion::default());
    let old = "VersionTLS10".parse::<TlsVersion>().unwrap_err();
    assert_eq!(
        old.to_string(),
        "TLS version \"VersionTLS10\" is not supported: rustls implements only VersionTLS12 and VersionTLS13"
    );
    assert!(matches!(
        "VersionTLS11".parse::<TlsVersion>(),
        Err(Error::UnsupportedTlsVersion { .. })
    ));
    let bad = "tls1.2".parse::<TlsVersion>().unwrap_err();
    assert_eq!(bad.to_string(), "unknown tls version \"tls1.2\"");
}
