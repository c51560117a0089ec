//! Reads the subject's common name and organizations out of a DER certificate: the identity a
//! client certificate carries (user = CN, groups = O, as Kubernetes maps them).
//!
//! Only called on certificates that already chained to a trusted CA (webpki parsed and checked
//! them), so this is a reader of well-formed DER, not a validator; it still refuses anything
//! malformed rather than guessing. It reads nothing but the subject.

/// The parts of a certificate subject that make a Kubernetes identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Subject {
    /// The last CN attribute, as Go's `pkix.Name` keeps it; empty when absent.
    pub(crate) common_name: String,
    /// Every O attribute, in order.
    pub(crate) organizations: Vec<String>,
}

/// Why a certificate could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed certificate: {0}")]
pub(crate) struct Malformed(&'static str);

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const EXPLICIT_0: u8 = 0xa0;
/// 2.5.4.3 and 2.5.4.10, DER-encoded.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];

/// The subject of a DER certificate.
pub(crate) fn subject(cert_der: &[u8]) -> Result<Subject, Malformed> {
    let (certificate, _) = expect(cert_der, SEQUENCE, "certificate")?;
    let (mut tbs, _) = expect(certificate, SEQUENCE, "tbsCertificate")?;
    if tbs.first() == Some(&EXPLICIT_0) {
        tbs = tlv(tbs)?.2; // version
    }
    for _skipped in ["serialNumber", "signature", "issuer", "validity"] {
        tbs = tlv(tbs)?.2;
    }
    let (mut name, _) = expect(tbs, SEQUENCE, "subject")?;
    let mut out = Subject::default();
    while !name.is_empty() {
        let (mut rdn, rest) = expect(name, SET, "relative distinguished name")?;
        name = rest;
        while !rdn.is_empty() {
            let (attribute, rest) = expect(rdn, SEQUENCE, "attribute")?;
            rdn = rest;
            let (oid, value) = expect(attribute, OID, "attribute type")?;
            let (tag, text, _) = tlv(value)?;
            if oid == OID_COMMON_NAME {
                out.common_name = directory_string(tag, text)?;
            } else if oid == OID_ORGANIZATION {
                out.organizations.push(directory_string(tag, text)?);
            }
        }
    }
    Ok(out)
}

/// One TLV with the expected tag: `(contents, rest)`.
fn expect<'a>(input: &'a [u8], tag: u8, what: &'static str) -> Result<(&'a [u8], &'a [u8]), Malformed> {
    let (found, contents, rest) = tlv(input)?;
    if found != tag {
        return Err(Malformed(what));
    }
    Ok((contents, rest))
}

/// One DER TLV (single-byte tags, definite lengths up to 4 bytes): `(tag, contents, rest)`.
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), Malformed> {
    let truncated = Malformed("truncated");
    let (&tag, rest) = input.split_first().ok_or(truncated)?;
    if tag & 0x1f == 0x1f {
        return Err(Malformed("multi-byte tag"));
    }
    let (&first, mut rest) = rest.split_first().ok_or(truncated)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return Err(Malformed("length"));
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if rest.len() < len {
        return Err(truncated);
    }
    let (contents, rest) = rest.split_at(len);
    Ok((tag, contents, rest))
}

/// A DirectoryString (or IA5String) as text.
fn directory_string(tag: u8, bytes: &[u8]) -> Result<String, Malformed> {
    let invalid = Malformed("attribute value");
    match tag {
        // UTF8String, PrintableString, IA5String
        0x0c | 0x13 | 0x16 => String::from_utf8(bytes.to_vec()).map_err(|_| invalid),
        // TeletexString: read as Latin-1, as most decoders do.
        0x14 => Ok(bytes.iter().map(|b| char::from(*b)).collect()),
        // BMPString: UTF-16 big-endian.
        0x1e => {
            if bytes.len() % 2 != 0 {
                return Err(invalid);
            }
            let units = bytes.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units).collect::<Result<_, _>>().map_err(|_| invalid)
        }
        // UniversalString: UTF-32 big-endian.
        0x1c => {
            if bytes.len() % 4 != 0 {
                return Err(invalid);
            }
            bytes
                .chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])).ok_or(invalid))
                .collect()
        }
        _ => Err(invalid),
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair};

    use super::*;

    fn cert_with(subject: &[(DnType, &str)]) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (kind, value) in subject {
            params.distinguished_name.push(kind.clone(), *value);
        }
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_common_name_and_organizations() {
        let der = cert_with(&[
            (DnType::CommonName, "alice"),
            (DnType::OrganizationName, "dev"),
            (DnType::CountryName, "NL"),
        ]);
        assert_eq!(
            subject(&der).unwrap(),
            Subject {
                common_name: "alice".into(),
                organizations: vec!["dev".into()],
            }
        );
    }

    #[test]
    fn a_subject_without_cn_has_an_empty_name() {
        let der = cert_with(&[(DnType::OrganizationName, "system:masters")]);
        let s = subject(&der).unwrap();
        assert_eq!(s.common_name, "");
        assert_eq!(s.organizations, ["system:masters"]);
    }

    /// A DER TLV (short lengths only: test values are small).
    fn der(tag: u8, parts: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = parts.concat();
        let mut out = vec![tag, u8::try_from(body.len()).unwrap()];
        out.extend(body);
        out
    }

    #[test]
    fn every_organization_is_kept_and_the_last_common_name_wins() {
        let attribute = |oid: &[u8], tag: u8, value: &str| {
            der(
                SET,
                &[der(
                    SEQUENCE,
                    &[der(OID, &[oid.to_vec()]), der(tag, &[value.as_bytes().to_vec()])],
                )],
            )
        };
        let subject_name = der(
            SEQUENCE,
            &[
                attribute(OID_ORGANIZATION, 0x0c, "system:masters"),
                attribute(OID_COMMON_NAME, 0x13, "first"),
                attribute(OID_ORGANIZATION, 0x13, "ops"),
                attribute(OID_COMMON_NAME, 0x0c, "admin"),
            ],
        );
        let tbs = der(
            SEQUENCE,
            &[
                der(EXPLICIT_0, &[der(0x02, &[vec![2]])]),
                der(0x02, &[vec![1]]),
                der(SEQUENCE, &[]),
                der(SEQUENCE, &[]),
                der(SEQUENCE, &[]),
                subject_name,
            ],
        );
        let cert = der(SEQUENCE, &[tbs]);
        assert_eq!(
            subject(&cert).unwrap(),
            Subject {
                common_name: "admin".into(),
                organizations: vec!["system:masters".into(), "ops".into()],
            }
        );
    }

    #[test]
    fn text_encodings_decode() {
        assert_eq!(directory_string(0x1e, &[0, b'h', 0, b'i']).unwrap(), "hi");
        assert_eq!(directory_string(0x1c, &[0, 0, 0, b'x']).unwrap(), "x");
        assert_eq!(directory_string(0x14, &[0xe9]).unwrap(), "é");
        assert!(directory_string(0x1e, &[0]).is_err());
        assert!(directory_string(0x02, b"1").is_err());
    }

    #[test]
    fn truncated_or_garbage_input_is_refused_without_panicking() {
        let der = cert_with(&[(DnType::CommonName, "alice")]);
        for cut in 0..der.len() {
            let _ = subject(&der[..cut]);
        }
        assert!(subject(&der[..der.len() / 2]).is_err());
        assert!(subject(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(subject(&[]).is_err());
    }
}
