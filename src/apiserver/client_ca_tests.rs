use std::collections::BTreeMap;

use super::configmap::{merge, parse, publish, ClusterParts, LookupError};
use super::*;
use crate::apiserver::test_pki::Ca;

fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn names(list: &[HeaderName]) -> Vec<&str> {
    list.iter().map(HeaderName::as_str).collect()
}

#[test]
fn the_configmap_the_kube_apiserver_writes_is_understood() {
    let (client, proxy) = (Ca::new("client"), Ca::new("proxy"));
    let parts = parse(data(&[
        ("client-ca-file", &client.pem()),
        ("requestheader-allowed-names", r#"["front-proxy-client"]"#),
        ("requestheader-client-ca-file", &proxy.pem()),
        ("requestheader-extra-headers-prefix", r#"["X-Remote-Extra-"]"#),
        ("requestheader-group-headers", r#"["X-Remote-Group"]"#),
        ("requestheader-username-headers", r#"["X-Remote-User"]"#),
    ]))
    .unwrap();
    assert!(parts.client_ca.is_some());
    let rh = parts.request_header.unwrap();
    assert_eq!(rh.allowed_names, ["front-proxy-client"]);
    assert_eq!(names(&rh.username_headers), ["x-remote-user"]);
    assert_eq!(names(&rh.group_headers), ["x-remote-group"]);
    assert!(rh.uid_headers.is_empty());
    assert_eq!(rh.extra_header_prefixes, ["x-remote-extra-"]);
    assert_eq!(
        rh.ca.origin(),
        "configmap kube-system/extension-apiserver-authentication key requestheader-client-ca-file"
    );
}

#[test]
fn absent_keys_turn_their_part_off() {
    let client = Ca::new("client");
    let parts = parse(data(&[("client-ca-file", &client.pem())])).unwrap();
    assert!(parts.client_ca.is_some() && parts.request_header.is_none());
    let parts = parse(data(&[])).unwrap();
    assert!(parts.client_ca.is_none() && parts.request_header.is_none());
    // Allowed names `null` or absent: any CN the CA signed.
    let proxy = Ca::new("proxy");
    let parts = parse(data(&[
        ("requestheader-client-ca-file", &proxy.pem()),
        ("requestheader-allowed-names", "null"),
    ]))
    .unwrap();
    assert!(parts.request_header.unwrap().allowed_names.is_empty());
}

#[test]
fn malformed_values_are_errors_naming_the_key() {
    let proxy = Ca::new("proxy");
    let err = parse(data(&[
        ("requestheader-client-ca-file", &proxy.pem()),
        ("requestheader-allowed-names", "front-proxy-client"),
    ]))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "key requestheader-allowed-names of configmap kube-system/extension-apiserver-authentication is not a JSON list of strings"
    );
    let err = parse(data(&[("client-ca-file", "not a certificate")])).unwrap_err();
    assert!(
        matches!(
            err,
            LookupError::Ca {
                key: "client-ca-file",
                ..
            }
        ),
        "{err}"
    );
    let err = parse(data(&[
        ("requestheader-client-ca-file", &proxy.pem()),
        ("requestheader-username-headers", r#"["bad header"]"#),
    ]))
    .unwrap_err();
    assert!(matches!(err, LookupError::HeaderName { .. }), "{err}");
}

#[test]
fn the_fatal_lookup_error_reads_as_upstreams() {
    let source = serde_json::from_str::<Vec<String>>("x").unwrap_err();
    let err = Error::Lookup(LookupError::List {
        key: "requestheader-allowed-names",
        source,
    });
    assert!(crate::apiserver::error_chain(&err).starts_with(
        "unable to load configmap based request-header-client-ca-file: key requestheader-allowed-names of configmap"
    ));
}

#[tokio::test]
async fn flags_alone_need_no_client_and_win_over_the_configmap() {
    let dir = tempfile::tempdir().unwrap();
    let (client, proxy) = (Ca::new("client"), Ca::new("proxy"));
    let client_file = dir.path().join("client.crt");
    let proxy_file = dir.path().join("proxy.crt");
    std::fs::write(&client_file, client.pem()).unwrap();
    std::fs::write(&proxy_file, proxy.pem()).unwrap();
    let options = TrustOptions {
        client_ca_file: Some(client_file),
        request_header: RequestHeaderFlags {
            client_ca_file: Some(proxy_file),
            username_headers: vec!["X-User".into()],
            ..RequestHeaderFlags::default()
        },
        ..TrustOptions::default()
    };
    let source = TrustSource::start(&options, None).await.unwrap();
    let trust = source.current();
    let rh = trust.request_header.as_ref().unwrap();
    assert_eq!(names(&rh.username_headers), ["x-user"]);
    assert_eq!(names(&rh.group_headers), ["x-remote-group"]);

    let from_cluster = ClusterParts {
        client_ca: Some(CaBundle::from_pem(Ca::new("other").pem().as_bytes(), "cm").unwrap()),
        request_header: None,
    };
    let merged = merge(&trust, &from_cluster, 2);
    assert_eq!(merged.client_ca, trust.client_ca);
}

#[tokio::test]
async fn skipping_the_lookup_leaves_unset_parts_off() {
    let options = TrustOptions {
        skip_lookup: true,
        ..TrustOptions::default()
    };
    let trust = TrustSource::start(&options, None).await.unwrap().current();
    assert!(trust.client_ca.is_none() && trust.request_header.is_none());
}

#[tokio::test]
async fn an_unreadable_flag_file_is_named() {
    let options = TrustOptions {
        client_ca_file: Some("/nonexistent/ca.crt".into()),
        ..TrustOptions::default()
    };
    let err = TrustSource::start(&options, None).await.unwrap_err();
    assert_eq!(err.to_string(), "reading --client-ca-file /nonexistent/ca.crt");
}

#[test]
fn only_a_change_of_content_publishes_a_new_generation() {
    let fixed = Trust::default();
    let (tx, rx) = watch::channel(Arc::new(Trust {
        generation: 1,
        ..Trust::default()
    }));
    let ca = CaBundle::from_pem(Ca::new("client").pem().as_bytes(), "cm").unwrap();
    let parts = ClusterParts {
        client_ca: Some(ca),
        request_header: None,
    };
    publish(&tx, &fixed, &parts);
    assert_eq!(rx.borrow().generation, 2);
    publish(&tx, &fixed, &parts);
    assert_eq!(rx.borrow().generation, 2, "same content, same generation");
    publish(&tx, &fixed, &ClusterParts::default());
    assert_eq!(rx.borrow().generation, 3);
    assert!(rx.borrow().client_ca.is_none(), "a deleted configmap withdraws its CA");
}
