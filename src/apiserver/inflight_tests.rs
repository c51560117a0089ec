use http_body_util::BodyExt as _;
use hyper::Request;

use super::*;

fn request(method: Method, uri: &str, content_length: Option<&str>) -> Parts {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(len) = content_length {
        builder = builder.header(CONTENT_LENGTH, len);
    }
    builder.body(()).unwrap().into_parts().0
}

fn get(uri: &str) -> Parts {
    request(Method::GET, uri, None)
}

async fn body(resp: Response) -> String {
    String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

fn permit(admission: Admission) -> Option<OwnedSemaphorePermit> {
    match admission {
        Admission::Admitted(permit) => permit,
        Admission::Rejected => panic!("rejected"),
    }
}

#[tokio::test]
async fn too_many_requests_is_kubes_exact_status_and_retry_after() {
    let resp = too_many_requests();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()[RETRY_AFTER], "1");
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(
        body(resp).await,
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Too many requests, please try again later.\",\"reason\":\"TooManyRequests\",\"details\":{\"retryAfterSeconds\":1},\"code\":429}\n"
    );
}

#[test]
fn reads_over_the_limit_are_rejected_until_a_permit_returns() {
    let limits = InFlight::new(2, 1);
    let first = permit(limits.admit(&get("/apis/metrics.k8s.io/v1beta1/nodes")));
    let _second = permit(limits.admit(&request(Method::HEAD, "/metrics", None)));
    assert_eq!(limits.reads_in_flight(), 2);
    assert!(matches!(limits.admit(&get("/version")), Admission::Rejected));
    // Mutating requests have their own budget.
    let _post = permit(limits.admit(&request(Method::POST, "/apis", None)));
    assert!(matches!(
        limits.admit(&request(Method::DELETE, "/apis", None)),
        Admission::Rejected
    ));
    drop(first);
    assert_eq!(limits.reads_in_flight(), 1);
    assert!(permit(limits.admit(&get("/version"))).is_some());
}

#[test]
fn health_paths_never_take_a_permit() {
    let limits = InFlight::new(1, 1);
    let _held = permit(limits.admit(&get("/metrics")));
    for path in ["/healthz", "/livez/ping", "/readyz?verbose", "/readyz/shutdown"] {
        assert!(permit(limits.admit(&get(path))).is_none(), "{path}");
        assert!(
            permit(limits.admit(&request(Method::POST, path, None))).is_none(),
            "{path}"
        );
    }
    assert!(matches!(limits.admit(&get("/healthzz")), Admission::Rejected));
}

#[test]
fn exempt_paths_are_the_health_endpoints_and_their_checks() {
    for path in [
        "/healthz",
        "/livez",
        "/readyz",
        "/readyz/shutdown",
        "/livez/poststarthook/x",
    ] {
        assert!(is_exempt(path), "{path}");
    }
    for path in ["/", "/healthzx", "/apis/healthz", "/metrics", "/readyzz/ping"] {
        assert!(!is_exempt(path), "{path}");
    }
}

#[test]
fn zero_disables_a_limit() {
    let limits = InFlight::new(0, 0);
    for _ in 0..1000 {
        assert!(permit(limits.admit(&get("/metrics"))).is_none());
        assert!(permit(limits.admit(&request(Method::PUT, "/version", None))).is_none());
    }
    assert_eq!(limits.reads_in_flight(), 0);
}

#[tokio::test]
async fn a_declared_body_over_the_cap_gets_413() {
    let resp = oversized_body(&request(Method::POST, "/apis", Some("1025")), 1024).unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(
        body(resp).await,
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Request entity too large: limit is 1024\",\"reason\":\"RequestEntityTooLarge\",\"code\":413}\n"
    );
    assert!(oversized_body(&request(Method::POST, "/apis", Some("1024")), 1024).is_none());
    assert!(oversized_body(&request(Method::POST, "/apis", None), 1024).is_none());
    // A malformed length is hyper's to refuse (400), not ours.
    assert!(oversized_body(&request(Method::POST, "/apis", Some("x")), 1024).is_none());
}
