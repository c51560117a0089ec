//! `--tls-cipher-suites`: Go's (IANA) suite names mapped to rustls' ring suites (spec §4.3).
//!
//! Every AEAD suite with forward secrecy that Go offers maps to its rustls twin, including Go's
//! short aliases (`…_CHACHA20_POLY1305`). The suites Go still accepts but that are weak (CBC,
//! RC4, 3DES) or lack forward secrecy (static RSA key exchange) are refused by name at start-up,
//! as is any name Go does not know. As in Go, the list governs TLS 1.2; TLS 1.3 suites are
//! restricted only if the list names some. Order is not a preference: like Go since 1.17, the
//! server picks by its own ranking ([`cheapest_first`]), whatever order the client offers.

use rustls::crypto::ring::cipher_suite as ring;
use rustls::SupportedCipherSuite;

/// A name `--tls-cipher-suites` cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherSuiteError {
    #[error("unknown TLS cipher suite {name:?} in --tls-cipher-suites")]
    Unknown { name: String },
    #[error("TLS cipher suite {name:?} in --tls-cipher-suites is insecure ({why}) and not supported")]
    Insecure { name: String, why: &'static str },
}

/// Go's names for the suites rustls implements.
const SUPPORTED: &[(&str, SupportedCipherSuite)] = &[
    ("TLS_AES_128_GCM_SHA256", ring::TLS13_AES_128_GCM_SHA256),
    ("TLS_AES_256_GCM_SHA384", ring::TLS13_AES_256_GCM_SHA384),
    ("TLS_CHACHA20_POLY1305_SHA256", ring::TLS13_CHACHA20_POLY1305_SHA256),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ring::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ring::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        ring::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        ring::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        ring::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        ring::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        ring::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        ring::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// Suites Go knows and this server refuses, with the reason.
const REFUSED: &[(&str, &str)] = &[
    ("TLS_RSA_WITH_RC4_128_SHA", "RC4"),
    ("TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", "RC4"),
    ("TLS_ECDHE_RSA_WITH_RC4_128_SHA", "RC4"),
    ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", "3DES"),
    ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "3DES"),
    ("TLS_RSA_WITH_AES_128_CBC_SHA", "CBC mode"),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", "CBC mode"),
    ("TLS_RSA_WITH_AES_128_CBC_SHA256", "CBC mode"),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "CBC mode"),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "CBC mode"),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "CBC mode"),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "CBC mode"),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "CBC mode"),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "CBC mode"),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", "no forward secrecy"),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384", "no forward secrecy"),
];

/// The suites to offer for `names` (surrounding spaces ignored, empty entries skipped), or
/// `None` for rustls' defaults when no name is given.
pub fn cipher_suites(names: &[String]) -> Result<Option<Vec<SupportedCipherSuite>>, CipherSuiteError> {
    let mut tls12 = Vec::new();
    let mut tls13 = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let suite = lookup(name)?;
        let list = if matches!(suite, SupportedCipherSuite::Tls13(_)) {
            &mut tls13
        } else {
            &mut tls12
        };
        if !list.contains(&suite) {
            list.push(suite);
        }
    }
    if tls12.is_empty() && tls13.is_empty() {
        return Ok(None);
    }
    if tls13.is_empty() {
        // Go does not let the list restrict TLS 1.3.
        tls13 = rustls::crypto::ring::DEFAULT_CIPHER_SUITES
            .iter()
            .copied()
            .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
            .collect();
    }
    tls13.extend(tls12);
    Ok(Some(tls13))
}

/// `suites` cheapest per byte first on AES hardware, as Go ranks them: AES-128-GCM, then
/// AES-256-GCM, then ChaCha20-Poly1305 (the order is otherwise kept). rustls' own order puts
/// AES-256 first, which costs ~30% more per byte encrypted for no gain a 128-bit key lacks.
/// The server ranks by it and ignores the client's order, as Go's does since 1.17 (the API's
/// clients, the kube-apiserver aggregator and kubectl, are Go and offer AES-128 first anyway);
/// the kubelet client offers suites in it, as upstream's Go client does. Unlike Go, a client
/// that ranks ChaCha20 first (no AES hardware) still gets AES-GCM when it offers it: rustls
/// has no per-client ranking.
pub fn cheapest_first(suites: &[SupportedCipherSuite]) -> Vec<SupportedCipherSuite> {
    let mut ranked = suites.to_vec();
    ranked.sort_by_key(|suite| bulk_cipher_rank(*suite));
    ranked
}

/// 0 for AES-128-GCM, 1 for AES-256-GCM, 2 for anything else (ChaCha20-Poly1305).
fn bulk_cipher_rank(suite: SupportedCipherSuite) -> u8 {
    use rustls::CipherSuite as S;
    match suite.suite() {
        S::TLS13_AES_128_GCM_SHA256
        | S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 0,
        S::TLS13_AES_256_GCM_SHA384
        | S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        | S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => 1,
        _ => 2,
    }
}

fn lookup(name: &str) -> Result<SupportedCipherSuite, CipherSuiteError> {
    if let Some((_, suite)) = SUPPORTED.iter().find(|(n, _)| *n == name) {
        return Ok(*suite);
    }
    match REFUSED.iter().find(|(n, _)| *n == name) {
        Some((_, why)) => Err(CipherSuiteError::Insecure {
            name: name.to_owned(),
            why,
        }),
        None => Err(CipherSuiteError::Unknown { name: name.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn no_names_means_the_defaults() {
        assert_eq!(cipher_suites(&[]), Ok(None));
        assert_eq!(cipher_suites(&names(&[""])), Ok(None));
    }

    #[test]
    fn go_names_map_to_rustls_suites_and_tls13_stays_on() {
        let suites = cipher_suites(&names(&[
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            " TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        ]))
        .unwrap()
        .unwrap();
        assert!(suites.contains(&ring::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256));
        assert!(suites.contains(&ring::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256));
        assert!(!suites.contains(&ring::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384));
        assert!(
            suites.contains(&ring::TLS13_AES_128_GCM_SHA256),
            "TLS 1.3 is not restricted"
        );
    }

    #[test]
    fn naming_a_tls13_suite_restricts_tls13() {
        let suites = cipher_suites(&names(&["TLS_AES_256_GCM_SHA384"])).unwrap().unwrap();
        assert_eq!(suites, [ring::TLS13_AES_256_GCM_SHA384]);
    }

    #[test]
    fn cheapest_first_ranks_aes128_then_aes256_then_chacha() {
        let ranked = cheapest_first(rustls::crypto::ring::DEFAULT_CIPHER_SUITES);
        assert_eq!(
            ranked.iter().map(|s| s.suite()).collect::<Vec<_>>(),
            [
                ring::TLS13_AES_128_GCM_SHA256,
                ring::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                ring::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                ring::TLS13_AES_256_GCM_SHA384,
                ring::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                ring::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                ring::TLS13_CHACHA20_POLY1305_SHA256,
                ring::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                ring::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            ]
            .map(|s| s.suite())
        );
    }

    #[test]
    fn unknown_and_insecure_names_are_refused_by_name() {
        let unknown = cipher_suites(&names(&["TLS_AES_128_GCM_SHA256", "TLS_MADE_UP"])).unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "unknown TLS cipher suite \"TLS_MADE_UP\" in --tls-cipher-suites"
        );
        let cbc = cipher_suites(&names(&["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"])).unwrap_err();
        assert_eq!(
            cbc.to_string(),
            "TLS cipher suite \"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA\" in --tls-cipher-suites is insecure (CBC mode) and not supported"
        );
        for (name, why) in [
            ("TLS_RSA_WITH_RC4_128_SHA", "RC4"),
            ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", "3DES"),
            ("TLS_RSA_WITH_AES_128_GCM_SHA256", "no forward secrecy"),
        ] {
            assert_eq!(
                cipher_suites(&names(&[name])),
                Err(CipherSuiteError::Insecure {
                    name: name.to_owned(),
                    why
                })
            );
        }
    }
}
