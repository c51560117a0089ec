use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use futures_util::FutureExt;

use super::*;
use crate::apiserver::request_info::ResourceAttributes;

/// Allows `alice`, denies `mallory` with a reason, has no opinion on anyone else, fails for
/// `broken`; counts calls.
#[derive(Debug, Default)]
struct FakeAccess {
    calls: AtomicUsize,
}

impl AccessReviewer for FakeAccess {
    fn review<'a>(&'a self, user: &'a User, _target: &'a Target) -> BoxFuture<'a, Result<Decision, ReviewError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let answer = match user.name.as_str() {
            "alice" => Ok(Decision::Allow),
            "mallory" => Ok(Decision::Deny {
                reason: "no way".into(),
            }),
            "broken" => Err(ReviewError::Unavailable {
                kind: "SubjectAccessReview",
                why: "connection refused".into(),
            }),
            _ => Ok(Decision::NoOpinion { reason: String::new() }),
        };
        async move { answer }.boxed()
    }
}

fn user(name: &str, groups: &[&str]) -> User {
    User {
        name: name.into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        ..User::default()
    }
}

fn nodes(verb: &str, name: &str) -> Target {
    Target::Resource(ResourceAttributes {
        verb: verb.into(),
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        resource: "nodes".into(),
        name: name.into(),
        ..ResourceAttributes::default()
    })
}

fn path(p: &str) -> Target {
    Target::NonResource {
        path: p.into(),
        verb: "get".into(),
    }
}

struct Fixture {
    access: Arc<FakeAccess>,
    now: Arc<Mutex<Instant>>,
    authz: Authorizer,
}

fn fixture(options: AuthorizationOptions) -> Fixture {
    let now = Arc::new(Mutex::new(Instant::now()));
    let read = now.clone();
    let access = Arc::new(FakeAccess::default());
    let reviewer: Arc<dyn AccessReviewer> = access.clone();
    let authz = Authorizer::new(&options, Some(reviewer), Arc::new(move || *read.lock().unwrap())).unwrap();
    Fixture { access, now, authz }
}

#[tokio::test]
async fn system_masters_and_health_paths_need_no_review() {
    let f = fixture(AuthorizationOptions::default());
    let root = user("root", &["system:masters"]);
    assert_eq!(
        f.authz.authorize(&root, &nodes("list", "")).await.unwrap(),
        Decision::Allow
    );
    let anonymous = User::anonymous();
    for p in ["/healthz", "/readyz", "/livez"] {
        assert_eq!(f.authz.authorize(&anonymous, &path(p)).await.unwrap(), Decision::Allow);
    }
    assert_eq!(f.access.calls.load(Ordering::SeqCst), 0);
    // Sub-paths and /metrics are not in the default list.
    for p in ["/livez/ping", "/metrics"] {
        assert_ne!(f.authz.authorize(&anonymous, &path(p)).await.unwrap(), Decision::Allow);
    }
    assert_eq!(f.access.calls.load(Ordering::SeqCst), 2);
}

#[test]
fn always_allow_paths_match_exactly_or_by_trailing_star() {
    let paths = |list: &[&str]| {
        let list: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
        AlwaysAllowPaths::new(&list)
    };
    let compiled = paths(&["/metrics", "debug/*", "/"]).unwrap();
    assert!(compiled.allows("/metrics") && compiled.allows("metrics"));
    assert!(!compiled.allows("/metrics/x"));
    assert!(compiled.allows("/debug/pprof") && compiled.allows("/debug/"));
    assert!(compiled.allows("/"));
    assert!(!compiled.allows("/livez"));
    assert_eq!(
        paths(&["/a*b"]).unwrap_err().to_string(),
        "only trailing * allowed in \"/a*b\""
    );
}

#[tokio::test]
async fn review_answers_are_cached_for_their_ttls() {
    let f = fixture(AuthorizationOptions {
        allowed_ttl: Duration::from_secs(10),
        denied_ttl: Duration::from_secs(5),
        ..AuthorizationOptions::default()
    });
    let (alice, mallory) = (user("alice", &[]), user("mallory", &[]));
    let target = nodes("list", "");
    assert_eq!(f.authz.authorize(&alice, &target).await.unwrap(), Decision::Allow);
    assert_eq!(
        f.authz.authorize(&mallory, &target).await.unwrap(),
        Decision::Deny {
            reason: "no way".into()
        }
    );
    f.authz.authorize(&alice, &target).await.unwrap();
    f.authz.authorize(&mallory, &target).await.unwrap();
    assert_eq!(f.access.calls.load(Ordering::SeqCst), 2);
    *f.now.lock().unwrap() += Duration::from_secs(5);
    f.authz.authorize(&alice, &target).await.unwrap();
    f.authz.authorize(&mallory, &target).await.unwrap();
    assert_eq!(f.access.calls.load(Ordering::SeqCst), 3, "only the denial expired");
    // Another verb is another question.
    f.authz.authorize(&alice, &nodes("get", "n1")).await.unwrap();
    assert_eq!(f.access.calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_failed_review_is_an_error_and_not_cached() {
    let f = fixture(AuthorizationOptions::default());
    let broken = user("broken", &[]);
    for _ in 0..2 {
        assert!(f.authz.authorize(&broken, &nodes("list", "")).await.is_err());
    }
    assert_eq!(f.access.calls.load(Ordering::SeqCst), 2);
}

fn message(user_name: &str, target: &Target, reason: &str) -> String {
    forbidden(&user(user_name, &[]), target, reason).message
}

#[test]
fn forbidden_is_worded_as_the_kube_apiserver_words_it() {
    assert_eq!(
        message("alice", &nodes("list", ""), ""),
        "nodes.metrics.k8s.io is forbidden: User \"alice\" cannot list resource \"nodes\" in API group \"metrics.k8s.io\" at the cluster scope"
    );
    assert_eq!(
        message("alice", &nodes("get", "n1"), ""),
        "nodes.metrics.k8s.io \"n1\" is forbidden: User \"alice\" cannot get resource \"nodes\" in API group \"metrics.k8s.io\" at the cluster scope"
    );
    let pods = Target::Resource(ResourceAttributes {
        verb: "list".into(),
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        resource: "pods".into(),
        namespace: "default".into(),
        ..ResourceAttributes::default()
    });
    assert_eq!(
        message("alice", &pods, ""),
        "pods.metrics.k8s.io is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"metrics.k8s.io\" in the namespace \"default\""
    );
    assert_eq!(
        message("alice", &path("/metrics"), ""),
        "forbidden: User \"alice\" cannot get path \"/metrics\""
    );
    assert_eq!(
        message("system:anonymous", &path("/"), "RBAC: no rule"),
        "forbidden: User \"system:anonymous\" cannot get path \"/\": RBAC: no rule"
    );
    let log = Target::Resource(ResourceAttributes {
        verb: "get".into(),
        version: "v1".into(),
        resource: "pods".into(),
        subresource: "log".into(),
        namespace: "ns".into(),
        name: "p".into(),
        ..ResourceAttributes::default()
    });
    assert_eq!(
        message("bob", &log, ""),
        "pods \"p\" is forbidden: User \"bob\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"ns\""
    );
    assert_eq!(
        message("<b>&", &path("/x"), ""),
        "forbidden: User \"&lt;b&gt;&amp;\" cannot get path \"/x\""
    );
}

#[test]
fn forbidden_status_json_matches_the_kube_apiserver() {
    let body = String::from_utf8(forbidden(&user("alice", &[]), &nodes("list", ""), "").to_json()).unwrap();
    assert_eq!(
        body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"nodes.metrics.k8s.io is forbidden: User \"alice\" cannot list resource \"nodes\" in API group \"metrics.k8s.io\" at the cluster scope","reason":"Forbidden","details":{"group":"metrics.k8s.io","kind":"nodes"},"code":403}"#
    );
    let body = String::from_utf8(forbidden(&user("alice", &[]), &path("/metrics"), "").to_json()).unwrap();
    assert_eq!(
        body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"alice\" cannot get path \"/metrics\"","reason":"Forbidden","details":{},"code":403}"#
    );
}

#[tokio::test]
async fn reviews_that_differ_only_in_where_strings_split_are_not_confused() {
    let f = fixture(AuthorizationOptions::default());
    // The same characters in the same order, split differently between fields and lists: each
    // is its own review, so one's cached answer never answers another.
    let alice = |name: &str, uid: &str, groups: &[&str]| User {
        uid: uid.into(),
        ..user(name, groups)
    };
    let users = [
        alice("alice", "", &["ab"]),
        alice("alice", "", &["a", "b"]),
        alice("alice", "a", &["b"]),
        alice("alice", "ab", &[]),
    ];
    for u in &users {
        assert_eq!(f.authz.authorize(u, &nodes("list", "")).await.unwrap(), Decision::Allow);
    }
    assert_eq!(f.access.calls.load(Ordering::SeqCst), users.len());
    let split_targets = [nodes("get", "n1"), nodes("get", "n"), path("/nodesn1")];
    for target in &split_targets {
        f.authz.authorize(&users[0], target).await.unwrap();
    }
    assert_eq!(f.access.calls.load(Ordering::SeqCst), users.len() + split_targets.len());
    // Asked again, every one of them is answered from the cache.
    for u in &users {
        f.authz.authorize(u, &nodes("list", "")).await.unwrap();
    }
    assert_eq!(f.access.calls.load(Ordering::SeqCst), users.len() + split_targets.len());
}
