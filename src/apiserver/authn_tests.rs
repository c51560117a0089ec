use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use futures_util::FutureExt;
use hyper::header::HeaderName;
use hyper::Request;
use tokio::sync::watch;

use super::*;
use crate::apiserver::client_cert::CaBundle;
use crate::apiserver::test_pki::Ca;

/// Accepts `good-token` as `bob`; counts calls; fails every call while `down` is set.
#[derive(Debug, Default)]
struct FakeTokens {
    calls: AtomicUsize,
    down: AtomicBool,
}

impl TokenReviewer for FakeTokens {
    fn review<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<User>, ReviewError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let answer = if self.down.load(Ordering::SeqCst) {
            Err(ReviewError::Unavailable {
                kind: "TokenReview",
                why: "down".into(),
            })
        } else if token == "good-token" {
            Ok(Some(User {
                name: "bob".into(),
                uid: "42".into(),
                groups: vec!["system:authenticated".into(), "dev".into()],
                ..User::default()
            }))
        } else {
            Ok(None)
        };
        async move { answer }.boxed()
    }
}

struct Fixture {
    front_proxy_ca: Ca,
    client_ca: Ca,
    other_ca: Ca,
    tokens: Arc<FakeTokens>,
    now: Arc<Mutex<Instant>>,
    trust: watch::Sender<Arc<Trust>>,
    authn: Authenticator,
}

fn headers(names: &[&'static str]) -> Vec<HeaderName> {
    names.iter().map(|n| HeaderName::from_static(n)).collect()
}

fn fixture(anonymous: bool) -> Fixture {
    let front_proxy_ca = Ca::new("front-proxy-ca");
    let client_ca = Ca::new("client-ca");
    let trust = Trust {
        generation: 1,
        client_ca: Some(CaBundle::from_pem(client_ca.pem().as_bytes(), "client ca").unwrap()),
        request_header: Some(RequestHeaderConfig {
            ca: CaBundle::from_pem(front_proxy_ca.pem().as_bytes(), "front-proxy ca").unwrap(),
            allowed_names: vec!["front-proxy-client".into()],
            username_headers: headers(&["x-remote-user"]),
            uid_headers: headers(&["x-remote-uid"]),
            group_headers: headers(&["x-remote-group"]),
            extra_header_prefixes: vec!["x-remote-extra-".into()],
        }),
    };
    let (tx, rx) = watch::channel(Arc::new(trust));
    let now = Arc::new(Mutex::new(Instant::now()));
    let read = now.clone();
    let clock: Clock = Arc::new(move || *read.lock().unwrap());
    let tokens = Arc::new(FakeTokens::default());
    let options = AuthenticationOptions {
        anonymous,
        token_cache_ttl: Duration::from_secs(10),
    };
    let reviewer: Arc<dyn TokenReviewer> = tokens.clone();
    let authn = Authenticator::new(&options, TrustSource::from_channel(rx), Some(reviewer), clock).unwrap();
    Fixture {
        front_proxy_ca,
        client_ca,
        other_ca: Ca::new("other-ca"),
        tokens,
        now,
        trust: tx,
        authn,
    }
}

fn request(headers: &[(&str, &str)]) -> Parts {
    let mut builder = Request::builder().uri("/apis/metrics.k8s.io/v1beta1/nodes");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

const PROXY_HEADERS: &[(&str, &str)] = &[
    ("X-Remote-User", "alice"),
    ("X-Remote-Uid", "u-1"),
    ("X-Remote-Group", "dev"),
    ("X-Remote-Group", "ops"),
    ("X-Remote-Extra-Scopes", "view"),
    ("X-Remote-Extra-Acme.com%2Fproject", "p1"),
];

#[tokio::test]
async fn a_trusted_front_proxy_names_the_user_in_headers() {
    let f = fixture(true);
    let peer = PeerChain::new(Some(&f.front_proxy_ca.client("front-proxy-client", &[])));
    let user = f.authn.authenticate(&request(PROXY_HEADERS), &peer).await.unwrap();
    assert_eq!(
        user,
        User {
            name: "alice".into(),
            uid: "u-1".into(),
            groups: vec!["dev".into(), "ops".into(), "system:authenticated".into()],
            extra: BTreeMap::from([
                ("acme.com/project".to_owned(), vec!["p1".to_owned()]),
                ("scopes".to_owned(), vec!["view".to_owned()]),
            ]),
        }
    );
}

#[tokio::test]
async fn a_front_proxy_without_a_username_header_is_not_a_user() {
    let f = fixture(true);
    let peer = PeerChain::new(Some(&f.front_proxy_ca.client("front-proxy-client", &[])));
    // The front-proxy certificate is not from the client CA either: unauthorized, as upstream.
    let got = f
        .authn
        .authenticate(&request(&[("X-Remote-Group", "dev")]), &peer)
        .await;
    assert_eq!(got, Err(Unauthenticated::UntrustedCertificate));
}

#[tokio::test]
async fn headers_without_a_certificate_are_ignored() {
    let f = fixture(true);
    let user = f
        .authn
        .authenticate(&request(PROXY_HEADERS), &PeerChain::none())
        .await
        .unwrap();
    assert_eq!(user, User::anonymous());
}

#[tokio::test]
async fn headers_on_a_certificate_from_another_ca_are_not_trusted() {
    let f = fixture(true);
    let peer = PeerChain::new(Some(&f.other_ca.client("front-proxy-client", &[])));
    let got = f.authn.authenticate(&request(PROXY_HEADERS), &peer).await;
    assert_eq!(got, Err(Unauthenticated::UntrustedCertificate));
}

#[tokio::test]
async fn headers_from_a_disallowed_common_name_are_not_trusted() {
    let f = fixture(true);
    let peer = PeerChain::new(Some(&f.front_proxy_ca.client("mallory", &[])));
    let got = f.authn.authenticate(&request(PROXY_HEADERS), &peer).await;
    assert_eq!(got, Err(Unauthenticated::UntrustedCertificate));
}

#[tokio::test]
async fn headers_on_a_client_ca_certificate_are_ignored_and_the_certificate_is_the_user() {
    let f = fixture(true);
    let peer = PeerChain::new(Some(&f.client_ca.client("carol", &["system:nodes"])));
    let user = f.authn.authenticate(&request(PROXY_HEADERS), &peer).await.unwrap();
    assert_eq!(user.name, "carol");
    assert_eq!(user.groups, ["system:nodes", "system:authenticated"]);
    assert!(user.extra.is_empty() && user.uid.is_empty());
}

#[tokio::test]
async fn a_client_certificate_without_common_name_names_nobody() {
    let f = fixture(true);
    let peer = PeerChain::new(Some(&f.client_ca.client("", &["ops"])));
    // No user from it, and (as upstream) the failed front-proxy check then makes it a 401.
    let got = f.authn.authenticate(&request(&[]), &peer).await;
    assert_eq!(got, Err(Unauthenticated::UntrustedCertificate));
}

#[tokio::test]
async fn a_bearer_token_is_reviewed_once_per_ttl() {
    let f = fixture(true);
    let req = request(&[("Authorization", "Bearer good-token")]);
    for _ in 0..3 {
        let user = f.authn.authenticate(&req, &PeerChain::none()).await.unwrap();
        assert_eq!(user.name, "bob");
        assert_eq!(
            user.groups,
            ["system:authenticated", "dev"],
            "no second system:authenticated"
        );
    }
    assert_eq!(f.tokens.calls.load(Ordering::SeqCst), 1);
    *f.now.lock().unwrap() += Duration::from_secs(10);
    f.authn.authenticate(&req, &PeerChain::none()).await.unwrap();
    assert_eq!(f.tokens.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_rejected_token_is_unauthorized_and_the_rejection_is_cached() {
    let f = fixture(true);
    let req = request(&[("Authorization", "bearer wrong")]);
    for _ in 0..2 {
        let got = f.authn.authenticate(&req, &PeerChain::none()).await;
        assert_eq!(got, Err(Unauthenticated::InvalidToken));
    }
    assert_eq!(f.tokens.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failed_review_is_unauthorized_and_not_cached() {
    let f = fixture(true);
    f.tokens.down.store(true, Ordering::SeqCst);
    let req = request(&[("Authorization", "Bearer good-token")]);
    let got = f.authn.authenticate(&req, &PeerChain::none()).await;
    assert_eq!(got, Err(Unauthenticated::TokenReviewFailed));
    f.tokens.down.store(false, Ordering::SeqCst);
    assert_eq!(
        f.authn.authenticate(&req, &PeerChain::none()).await.unwrap().name,
        "bob"
    );
    assert_eq!(f.tokens.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn without_credentials_the_user_is_anonymous_unless_that_is_off() {
    let on = fixture(true);
    let user = on.authn.authenticate(&request(&[]), &PeerChain::none()).await.unwrap();
    assert_eq!(
        (user.name.as_str(), user.groups.as_slice()),
        ("system:anonymous", ["system:unauthenticated".to_owned()].as_slice())
    );
    let off = fixture(false);
    let got = off.authn.authenticate(&request(&[]), &PeerChain::none()).await;
    assert_eq!(got, Err(Unauthenticated::AnonymousDisabled));
}

#[tokio::test]
async fn a_trust_change_is_applied_to_open_connections() {
    let f = fixture(true);
    let peer = PeerChain::new(Some(&f.other_ca.client("front-proxy-client", &[])));
    let req = request(PROXY_HEADERS);
    assert!(f.authn.authenticate(&req, &peer).await.is_err());
    f.trust.send_modify(|trust| {
        let mut next = (**trust).clone();
        next.generation += 1;
        if let Some(rh) = &mut next.request_header {
            rh.ca = CaBundle::from_pem(f.other_ca.pem().as_bytes(), "rotated").unwrap();
        }
        *trust = Arc::new(next);
    });
    assert_eq!(f.authn.authenticate(&req, &peer).await.unwrap().name, "alice");
}

#[test]
fn bearer_tokens_are_read_as_upstream_reads_them() {
    let token = |value: &str| {
        let req = request(&[("Authorization", value)]);
        bearer_token(&req.headers).map(str::to_owned)
    };
    assert_eq!(token("Bearer abc").as_deref(), Some("abc"));
    assert_eq!(token("BEARER abc extra").as_deref(), Some("abc"));
    assert_eq!(token("  Bearer abc  ").as_deref(), Some("abc"));
    assert_eq!(token("Bearer  abc"), None, "two spaces leave an empty token");
    assert_eq!(token("Basic abc"), None);
    assert_eq!(token("Bearer"), None);
}
