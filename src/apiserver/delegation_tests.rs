use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use http_body_util::BodyExt;
use hyper::Request;

use super::*;
use crate::apiserver::cache::system_clock;
use crate::apiserver::client_ca::Trust;
use crate::apiserver::review::ReviewError;

/// Lets `alice` list nodes, fails for `broken`, no opinion otherwise.
#[derive(Debug)]
struct Access;

impl AccessReviewer for Access {
    fn review<'a>(&'a self, user: &'a User, _target: &'a Target) -> BoxFuture<'a, Result<Decision, ReviewError>> {
        let answer = match user.name.as_str() {
            "alice" => Ok(Decision::Allow),
            "broken" => Err(ReviewError::Unavailable {
                kind: "SubjectAccessReview",
                why: "secret detail".into(),
            }),
            _ => Ok(Decision::NoOpinion { reason: String::new() }),
        };
        async move { answer }.boxed()
    }
}

/// `Bearer <name>` is the user `<name>`.
#[derive(Debug)]
struct Tokens;

impl TokenReviewer for Tokens {
    fn review<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Option<User>, ReviewError>> {
        let user = (token != "bad").then(|| User {
            name: token.to_owned(),
            ..User::default()
        });
        async move { Ok(user) }.boxed()
    }
}

fn gate() -> Delegation {
    let clock = system_clock();
    let authn = Authenticator::new(
        &AuthenticationOptions::default(),
        TrustSource::fixed(Trust::default()),
        Some(Arc::new(Tokens)),
        clock.clone(),
    )
    .unwrap();
    let authz = Authorizer::new(&AuthorizationOptions::default(), Some(Arc::new(Access)), clock).unwrap();
    Delegation::new(authn, authz)
}

fn request(path: &str, token: Option<&str>) -> Parts {
    let mut builder = Request::builder().uri(path);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(()).unwrap().into_parts().0
}

async fn body_of(rejection: Rejection) -> (u16, String) {
    let resp = rejection.into_response();
    let code = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (code, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn allowed_requests_pass_with_their_user() {
    let user = gate()
        .admit(
            &request("/apis/metrics.k8s.io/v1beta1/nodes", Some("alice")),
            &PeerChain::none(),
        )
        .await
        .unwrap();
    assert_eq!(user.name, "alice");
    assert!(gate().admit(&request("/livez", None), &PeerChain::none()).await.is_ok());
}

#[tokio::test]
async fn refusals_are_kubernetes_status_bodies() {
    let g = gate();
    let nodes = "/apis/metrics.k8s.io/v1beta1/nodes";
    let unauthorized = g
        .admit(&request(nodes, Some("bad")), &PeerChain::none())
        .await
        .unwrap_err();
    assert_eq!(
        body_of(unauthorized).await,
        (
            401,
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401}\n".to_owned()
        )
    );
    let forbidden = g.admit(&request(nodes, None), &PeerChain::none()).await.unwrap_err();
    let (code, body) = body_of(forbidden).await;
    assert_eq!(code, 403);
    assert!(body.contains("\"message\":\"nodes.metrics.k8s.io is forbidden: User \\\"system:anonymous\\\" cannot list resource \\\"nodes\\\" in API group \\\"metrics.k8s.io\\\" at the cluster scope\""), "{body}");
    let failed = g
        .admit(&request(nodes, Some("broken")), &PeerChain::none())
        .await
        .unwrap_err();
    assert_eq!(failed, Rejection::AuthorizationUnavailable);
    let (code, body) = body_of(failed).await;
    assert_eq!(code, 500);
    assert!(
        !body.contains("secret detail") && !body.contains("connection"),
        "{body}"
    );
    assert!(body.contains("\"reason\":\"InternalError\""), "{body}");
}

#[tokio::test]
async fn forbidden_responses_carry_nosniff() {
    let rejection = gate()
        .admit(&request("/metrics", Some("bob")), &PeerChain::none())
        .await
        .unwrap_err();
    let resp = rejection.into_response();
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.headers()["content-type"], "application/json");
}
