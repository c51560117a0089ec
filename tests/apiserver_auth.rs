//! Delegated authentication and authorization end to end: the generic server over real TLS on
//! loopback, clients with and without certificates made here, and a fake kube-apiserver that
//! answers TokenReviews, SubjectAccessReviews and the authentication ConfigMap.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a failed step should fail the test loudly"
)]

mod support;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::http::request::Parts;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use metrics_server_rs::apiserver::cache::Clock;
use metrics_server_rs::apiserver::{
    load_or_generate, serving_config, CertifiedKeyPair, Delegation, DelegationOptions, Discovery, Handler,
    HealthChecks, MetricsText, Response, Server, TlsOptions,
};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};
use support::fake_apiserver::{Access, AccessPolicy, FakeApiServer, SECRET_DETAIL};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;

/// Guards against a hang; never stands in for a signal.
const GUARD: Duration = Duration::from_secs(20);
const NODES: &str = "/apis/metrics.k8s.io/v1beta1/nodes";

async fn guarded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish"))
}

/// A CA that signs client certificates.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A client certificate chain and its key.
struct ClientCert {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Ca {
    fn new(cn: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, cn);
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn client(&self, cn: &str, org: Option<&str>) -> ClientCert {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        if let Some(org) = org {
            params.distinguished_name.push(DnType::OrganizationName, org);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        ClientCert {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        }
    }
}

/// The API behind the gate: 200 `metrics` for anything under the group.
struct Api;

impl Handler for Api {
    fn handle(&self, _req: &Parts) -> Option<Response> {
        Some(Response::new(Bytes::from_static(b"metrics").into()))
    }
}

/// A clock the test moves by hand.
fn manual_clock() -> (Clock, Arc<Mutex<Instant>>) {
    let now = Arc::new(Mutex::new(Instant::now()));
    let read = now.clone();
    (Arc::new(move || *read.lock().unwrap()), now)
}

struct Running {
    addr: std::net::SocketAddr,
    pair: CertifiedKeyPair,
    delegation: Arc<Delegation>,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn serve(delegation: Delegation) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let pair = load_or_generate(None, None, dir.path(), &[]).unwrap();
    let tls = serving_config(
        &pair,
        &TlsOptions {
            request_client_certs: true,
            ..TlsOptions::default()
        },
    )
    .unwrap();
    let health = HealthChecks::builder()
        .livez("metric-collection-timely", || Ok(()))
        .build()
        .unwrap();
    let metrics: MetricsText = Arc::new(|| "# metrics\n".to_owned());
    let delegation = Arc::new(delegation);
    let server = Server::new(
        health,
        Discovery::new(vec![support::generic_server::nodes_group()]).unwrap(),
        "{}",
        metrics,
        Arc::new(Api),
    )
    .with_auth(delegation.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(Arc::new(server).serve(listener, tls, async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        pair,
        delegation,
        _stop: stop,
        _dir: dir,
    }
}

/// One GET over a fresh connection (HTTP/2 when `h2`), presenting `cert` if given.
async fn get_with(
    run: &Running,
    path: &str,
    cert: Option<&ClientCert>,
    headers: &[(&str, &str)],
    h2: bool,
) -> (u16, String) {
    https_get(run.addr, &run.pair.cert_chain()[0], path, cert, headers, h2).await
}

/// One GET to `addr`, trusting `server_cert`.
async fn https_get(
    addr: std::net::SocketAddr,
    server_cert: &CertificateDer<'static>,
    path: &str,
    cert: Option<&ClientCert>,
    headers: &[(&str, &str)],
    h2: bool,
) -> (u16, String) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server_cert.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match cert {
        Some(c) => builder
            .with_client_auth_cert(c.chain.clone(), c.key.clone_key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![if h2 { b"h2".to_vec() } else { b"http/1.1".to_vec() }];
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
    let mut request = Request::builder().uri(format!("https://localhost{path}"));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let request = request.body(Empty::<Bytes>::new()).unwrap();
    let response = if h2 {
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        send.send_request(request).await.unwrap()
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
        tokio::spawn(conn);
        send.send_request(request).await.unwrap()
    };
    let code = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (code, String::from_utf8(body.to_vec()).unwrap())
}

async fn get(run: &Running, path: &str, cert: Option<&ClientCert>, headers: &[(&str, &str)]) -> (u16, String) {
    guarded(path, get_with(run, path, cert, headers, false)).await
}

/// Allows users named `alice` and members of `viewers`; denies `mallory`; fails for `broken`.
fn policy() -> AccessPolicy {
    Arc::new(|spec: &Value| {
        let user = spec["user"].as_str().unwrap_or("");
        let viewer = spec["groups"]
            .as_array()
            .is_some_and(|g| g.iter().any(|g| g == "viewers"));
        match user {
            "broken" => Access::Fail,
            "mallory" => Access::Deny("mallory is banned".into()),
            "alice" => Access::Allow,
            _ if viewer => Access::Allow,
            _ => Access::NoOpinion,
        }
    })
}

const TOKENS: &[(&str, &str, &[&str])] = &[
    ("alice-token", "alice", &["system:authenticated"]),
    ("bob-token", "bob", &["system:authenticated"]),
    ("mallory-token", "mallory", &["system:authenticated"]),
    ("broken-token", "broken", &["system:authenticated"]),
];

/// CA files written for the flags.
struct CaFiles {
    _dir: tempfile::TempDir,
    client: PathBuf,
    front_proxy: PathBuf,
}

fn ca_files(client: &Ca, front_proxy: &Ca) -> CaFiles {
    let dir = tempfile::tempdir().unwrap();
    let (c, f) = (dir.path().join("client-ca.crt"), dir.path().join("front-proxy-ca.crt"));
    std::fs::write(&c, client.pem()).unwrap();
    std::fs::write(&f, front_proxy.pem()).unwrap();
    CaFiles {
        _dir: dir,
        client: c,
        front_proxy: f,
    }
}

/// Options as `--client-ca-file`, `--requestheader-client-ca-file`,
/// `--requestheader-allowed-names=front-proxy-client`, `--authentication-skip-lookup` set them.
fn flag_options(files: &CaFiles) -> DelegationOptions {
    let mut options = DelegationOptions::default();
    options.trust.client_ca_file = Some(files.client.clone());
    options.trust.request_header.client_ca_file = Some(files.front_proxy.clone());
    options.trust.request_header.allowed_names = vec!["front-proxy-client".into()];
    options.trust.skip_lookup = true;
    options
}

async fn start_with_flags(fake: &FakeApiServer, files: &CaFiles, clock: Clock) -> Running {
    let delegation = Delegation::start(&flag_options(files), fake.client(), fake.client(), clock)
        .await
        .unwrap();
    serve(delegation).await
}

fn last_review(fake: &FakeApiServer) -> Value {
    fake.access_reviews().last().cloned().unwrap()
}

#[tokio::test]
async fn a_front_proxy_with_an_allowed_cn_is_trusted_and_its_user_authorized() {
    let (client_ca, proxy_ca) = (Ca::new("client-ca"), Ca::new("front-proxy-ca"));
    let files = ca_files(&client_ca, &proxy_ca);
    let fake = FakeApiServer::start(TOKENS, policy(), None).await;
    let run = start_with_flags(&fake, &files, manual_clock().0).await;
    let proxy = proxy_ca.client("front-proxy-client", None);
    let headers = [
        ("X-Remote-User", "carol"),
        ("X-Remote-Group", "viewers"),
        ("X-Remote-Group", "system:authenticated"),
        ("X-Remote-Extra-Scopes", "read"),
    ];
    assert_eq!(
        get(&run, NODES, Some(&proxy), &headers).await,
        (200, "metrics".to_owned())
    );
    assert_eq!(
        last_review(&fake),
        json!({
            "user": "carol",
            "groups": ["viewers", "system:authenticated"],
            "extra": {"scopes": ["read"]},
            "resourceAttributes": {"verb": "list", "group": "metrics.k8s.io", "version": "v1beta1", "resource": "nodes"},
        })
    );
    // Over HTTP/2 too, with a named object.
    let (code, _) = guarded(
        "h2 GET",
        get_with(&run, &format!("{NODES}/n1"), Some(&proxy), &headers, true),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(last_review(&fake)["resourceAttributes"]["verb"], "get");
    assert_eq!(last_review(&fake)["resourceAttributes"]["name"], "n1");
}

#[tokio::test]
async fn identity_headers_are_not_trusted_without_a_trusted_front_proxy_certificate() {
    let (client_ca, proxy_ca, other_ca) = (Ca::new("client-ca"), Ca::new("front-proxy-ca"), Ca::new("other"));
    let files = ca_files(&client_ca, &proxy_ca);
    let fake = FakeApiServer::start(TOKENS, policy(), None).await;
    let run = start_with_flags(&fake, &files, manual_clock().0).await;
    let headers = [("X-Remote-User", "alice"), ("X-Remote-Group", "system:masters")];

    // No certificate: the headers are ignored and the request is anonymous.
    let (code, body) = get(&run, NODES, None, &headers).await;
    assert_eq!(code, 403);
    assert!(body.contains(r#"User \"system:anonymous\" cannot list"#), "{body}");
    assert_eq!(last_review(&fake)["user"], "system:anonymous");

    // A certificate from another CA, or a disallowed CN: not trusted, 401.
    let unauthorized = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}
"#;
    let stranger = other_ca.client("front-proxy-client", None);
    assert_eq!(
        get(&run, NODES, Some(&stranger), &headers).await,
        (401, unauthorized.to_owned())
    );
    let impostor = proxy_ca.client("not-the-proxy", None);
    assert_eq!(
        get(&run, NODES, Some(&impostor), &headers).await,
        (401, unauthorized.to_owned())
    );
    assert!(fake.access_reviews().iter().all(|r| r["user"] != "alice"));
}

#[tokio::test]
async fn a_client_certificate_authenticates_as_its_cn_and_o() {
    let (client_ca, proxy_ca) = (Ca::new("client-ca"), Ca::new("front-proxy-ca"));
    let files = ca_files(&client_ca, &proxy_ca);
    let fake = FakeApiServer::start(TOKENS, policy(), None).await;
    let run = start_with_flags(&fake, &files, manual_clock().0).await;
    let dave = client_ca.client("dave", Some("viewers"));
    // Headers on a plain client certificate are ignored.
    let (code, _) = get(
        &run,
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
        Some(&dave),
        &[("X-Remote-User", "alice")],
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        last_review(&fake),
        json!({
            "user": "dave",
            "groups": ["viewers", "system:authenticated"],
            "resourceAttributes": {"namespace": "default", "verb": "list", "group": "metrics.k8s.io", "version": "v1beta1", "resource": "pods"},
        })
    );
    // A system:masters certificate needs no review at all.
    let reviews = fake.access_reviews().len();
    let root = client_ca.client("root", Some("system:masters"));
    assert_eq!(get(&run, "/metrics", Some(&root), &[]).await.0, 200);
    assert_eq!(fake.access_reviews().len(), reviews);
}

#[tokio::test]
async fn a_bearer_token_is_reviewed_once_per_ttl() {
    let (client_ca, proxy_ca) = (Ca::new("client-ca"), Ca::new("front-proxy-ca"));
    let files = ca_files(&client_ca, &proxy_ca);
    let fake = FakeApiServer::start(TOKENS, policy(), None).await;
    let (clock, now) = manual_clock();
    let run = start_with_flags(&fake, &files, clock).await;
    let auth = [("Authorization", "Bearer alice-token")];
    for _ in 0..3 {
        assert_eq!(get(&run, NODES, None, &auth).await.0, 200);
    }
    assert_eq!(fake.token_reviews(), 1);
    assert_eq!(fake.access_reviews().len(), 1, "the allow answer is cached too");
    *now.lock().unwrap() += Duration::from_secs(10);
    assert_eq!(get(&run, NODES, None, &auth).await.0, 200);
    assert_eq!(fake.token_reviews(), 2);
    assert_eq!(fake.access_reviews().len(), 2);
    // An unknown token is a 401, reviewed once per TTL as well.
    let bad = [("Authorization", "Bearer nope")];
    assert_eq!(get(&run, NODES, None, &bad).await.0, 401);
    assert_eq!(get(&run, NODES, None, &bad).await.0, 401);
    assert_eq!(fake.token_reviews(), 3);
}

#[tokio::test]
async fn access_review_allow_deny_and_failure_are_200_403_and_500() {
    let (client_ca, proxy_ca) = (Ca::new("client-ca"), Ca::new("front-proxy-ca"));
    let files = ca_files(&client_ca, &proxy_ca);
    let fake = FakeApiServer::start(TOKENS, policy(), None).await;
    let run = start_with_flags(&fake, &files, manual_clock().0).await;
    let bearer = |t: &'static str| [("Authorization", t)];
    assert_eq!(get(&run, NODES, None, &bearer("Bearer alice-token")).await.0, 200);

    let (code, body) = get(
        &run,
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
        None,
        &bearer("Bearer bob-token"),
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods.metrics.k8s.io is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"metrics.k8s.io\" in the namespace \"default\"","reason":"Forbidden","details":{"group":"metrics.k8s.io","kind":"pods"},"code":403}
"#
    );
    let (code, body) = get(&run, "/metrics", None, &bearer("Bearer mallory-token")).await;
    assert_eq!(code, 403);
    assert_eq!(
        body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"mallory\" cannot get path \"/metrics\": mallory is banned","reason":"Forbidden","details":{},"code":403}
"#
    );
    let (code, body) = get(&run, NODES, None, &bearer("Bearer broken-token")).await;
    assert_eq!(code, 500);
    assert!(!body.contains(SECRET_DETAIL) && !body.contains("etcd"), "{body}");
    assert_eq!(
        body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Internal error occurred: the request could not be authorized","reason":"InternalError","code":500}
"#
    );
}

#[tokio::test]
async fn health_paths_need_no_credentials_even_when_reviews_fail() {
    let (client_ca, proxy_ca) = (Ca::new("client-ca"), Ca::new("front-proxy-ca"));
    let files = ca_files(&client_ca, &proxy_ca);
    let fake = FakeApiServer::start(TOKENS, Arc::new(|_: &Value| Access::Fail), None).await;
    let run = start_with_flags(&fake, &files, manual_clock().0).await;
    assert_eq!(get(&run, "/livez", None, &[]).await, (200, "ok".to_owned()));
    assert_eq!(get(&run, "/livez?verbose", None, &[]).await.0, 200);
    assert!(fake.access_reviews().is_empty());
    // Anything else does need a review, which fails here.
    assert_eq!(get(&run, "/livez/ping", None, &[]).await.0, 500);
    assert_eq!(get(&run, "/metrics", None, &[]).await.0, 500);
}

fn configmap(proxy_ca: &Ca, client_ca: &Ca) -> BTreeMap<String, String> {
    [
        ("client-ca-file", client_ca.pem()),
        ("requestheader-client-ca-file", proxy_ca.pem()),
        ("requestheader-allowed-names", r#"["front-proxy-client"]"#.to_owned()),
        ("requestheader-username-headers", r#"["X-Remote-User"]"#.to_owned()),
        ("requestheader-group-headers", r#"["X-Remote-Group"]"#.to_owned()),
        (
            "requestheader-extra-headers-prefix",
            r#"["X-Remote-Extra-"]"#.to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[tokio::test]
async fn the_configmap_delivers_the_cas_and_its_changes_apply_without_restart() {
    let (client_ca, proxy_ca, next_proxy_ca) = (Ca::new("client-ca"), Ca::new("proxy-1"), Ca::new("proxy-2"));
    let fake = FakeApiServer::start(TOKENS, policy(), Some(configmap(&proxy_ca, &client_ca))).await;
    let delegation = Delegation::start(
        &DelegationOptions::default(),
        fake.client(),
        fake.client(),
        manual_clock().0,
    )
    .await
    .unwrap();
    let run = serve(delegation).await;
    let headers = [("X-Remote-User", "alice")];
    let proxy = proxy_ca.client("front-proxy-client", None);
    assert_eq!(get(&run, NODES, Some(&proxy), &headers).await.0, 200);
    let erin = client_ca.client("erin", Some("viewers"));
    assert_eq!(get(&run, NODES, Some(&erin), &[]).await.0, 200);

    // Rotate the front-proxy CA in the cluster; wait until the server has seen it.
    let mut changes = run.delegation.authenticator().trust().changes();
    let before = changes.borrow_and_update().generation;
    fake.set_configmap(Some(configmap(&next_proxy_ca, &client_ca)));
    guarded("the configmap change", changes.wait_for(|t| t.generation > before))
        .await
        .unwrap();
    assert_eq!(get(&run, NODES, Some(&proxy), &headers).await.0, 401);
    let next_proxy = next_proxy_ca.client("front-proxy-client", None);
    assert_eq!(get(&run, NODES, Some(&next_proxy), &headers).await.0, 200);

    // Deleting the configmap withdraws its CAs: the client certificate no longer names a user.
    let before = changes.borrow_and_update().generation;
    fake.set_configmap(None);
    guarded("the configmap deletion", changes.wait_for(|t| t.generation > before))
        .await
        .unwrap();
    let (code, body) = get(&run, NODES, Some(&erin), &[]).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(last_review(&fake)["user"], "system:anonymous");
}

#[tokio::test]
async fn a_failed_configmap_lookup_is_fatal_unless_tolerated() {
    // Nothing listens here: every request fails to connect.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let client = || kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let err = Delegation::start(&DelegationOptions::default(), client(), client(), manual_clock().0)
        .await
        .unwrap_err();
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    assert!(
        chain.starts_with("unable to load configmap based request-header-client-ca-file: getting configmap kube-system/extension-apiserver-authentication: "),
        "{chain}"
    );
    let mut tolerant = DelegationOptions::default();
    tolerant.trust.tolerate_lookup_failure = true;
    let delegation = Delegation::start(&tolerant, client(), client(), manual_clock().0)
        .await
        .unwrap();
    let trust = delegation.authenticator().trust().current();
    assert!(trust.client_ca.is_none() && trust.request_header.is_none());
}

/// The binary, killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The address in the server's `serving securely address=Some(…)` log line.
fn serving_address(line: &str) -> Option<std::net::SocketAddr> {
    let plain: String = {
        // Drop ANSI colour sequences (ESC [ … m).
        let mut out = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    };
    let rest = plain.split("serving securely").nth(1)?;
    let start = rest.find("Some(")? + "Some(".len();
    let end = start + rest[start..].find(')')?;
    rest[start..end].parse().ok()
}

/// A kubeconfig for `server`, written to `dir/name`.
fn kubeconfig(dir: &std::path::Path, name: &str, server: &str) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {server}\nusers:\n- name: u\n  user: {{}}\n\
             contexts:\n- name: c\n  context:\n    cluster: fake\n    user: u\ncurrent-context: c\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn cluster_mode_stops_when_the_authentication_configmap_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let kc = kubeconfig(dir.path(), "kubeconfig", &nowhere);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_metrics-server"))
        .args([
            format!("--kubeconfig={kc}"),
            format!("--authentication-kubeconfig={kc}"),
            format!("--authorization-kubeconfig={kc}"),
            "--kubelet-insecure-tls".to_owned(),
            "--secure-port=0".to_owned(),
            format!("--cert-dir={}", dir.path().display()),
        ])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Error: unable to load configmap based request-header-client-ca-file: getting configmap kube-system/extension-apiserver-authentication: "),
        "{stderr}"
    );
}

#[tokio::test]
async fn cluster_mode_serves_behind_the_gate_with_the_delegated_kubeconfigs() {
    use std::io::BufRead as _;
    let fake = FakeApiServer::start(TOKENS, policy(), None).await;
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), "kubeconfig", &fake.url);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_metrics-server"))
        .args([
            format!("--kubeconfig={kc}"),
            format!("--authentication-kubeconfig={kc}"),
            format!("--authorization-kubeconfig={kc}"),
            "--kubelet-insecure-tls".to_owned(),
            "--secure-port=0".to_owned(),
            "--bind-address=127.0.0.1".to_owned(),
            format!("--cert-dir={}", dir.path().display()),
        ])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _child = Child(child);
    // Read the log until the server says where it listens, then keep draining it.
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        let mut seen = String::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = serving_address(&line) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(Ok(addr));
                }
            }
            if tx.is_some() {
                seen.push_str(&line);
                seen.push('\n');
            }
        }
        if let Some(tx) = tx.take() {
            let _ = tx.send(Err(seen));
        }
    });
    let addr = match guarded("the server to listen", rx).await.unwrap() {
        Ok(addr) => addr,
        Err(log) => panic!("the server exited before serving:\n{log}"),
    };
    let pem = std::fs::read(dir.path().join("apiserver.crt")).unwrap();
    let server_cert = rustls::pki_types::pem::PemObject::from_pem_slice(&pem).unwrap();
    let get = |path: &'static str, headers: &'static [(&'static str, &'static str)]| {
        let server_cert = &server_cert;
        async move {
            guarded(path, https_get(addr, server_cert, path, None, headers, false))
                .await
                .0
        }
    };
    assert_eq!(get("/livez", &[]).await, 200);
    assert_eq!(get(NODES, &[]).await, 403);
    assert_eq!(get(NODES, &[("Authorization", "Bearer nope")]).await, 401);
    assert_ne!(get(NODES, &[("Authorization", "Bearer alice-token")]).await, 403);
    assert!(fake.token_reviews() >= 2);
    assert!(fake.access_reviews().iter().any(|r| r["user"] == "alice"));
}
