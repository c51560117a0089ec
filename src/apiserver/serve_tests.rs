use http_body_util::BodyExt;
use hyper::header::CONTENT_TYPE;

use super::*;
use crate::apiserver::{ApiGroup, ApiResource, ApiVersion};

/// Plays the metrics API: one list path, an OpenAPI path, nothing else.
struct FakeApi;

impl Handler for FakeApi {
    fn handle(&self, req: &Parts) -> Option<Response> {
        match req.uri.path() {
            "/apis/metrics.k8s.io/v1beta1/nodes" if req.method == Method::GET || req.method == Method::HEAD => {
                Some(ok_bytes(
                    content_type::JSON,
                    Bytes::from_static(b"{\"kind\":\"NodeMetricsList\"}\n"),
                ))
            }
            "/apis/metrics.k8s.io/v1beta1/nodes" => {
                Some(Status::method_not_supported("metrics.k8s.io", "nodes", "create").into_response())
            }
            "/openapi/v2" => Some(ok_bytes(content_type::JSON, Bytes::from_static(b"{}"))),
            _ => None,
        }
    }
}

fn server() -> Server {
    server_with(Arc::new(FakeApi))
}

fn server_with(handler: Arc<dyn Handler>) -> Server {
    let health = HealthChecks::builder()
        .all("metadata-informer-sync", || Ok(()))
        .build()
        .unwrap();
    let nodes = ApiResource {
        name: "nodes".into(),
        singular_name: String::new(),
        namespaced: false,
        kind: "NodeMetrics".into(),
        verbs: vec!["get".into(), "list".into()],
    };
    let group = ApiGroup {
        name: "metrics.k8s.io".into(),
        versions: vec![ApiVersion {
            version: "v1beta1".into(),
            resources: vec![nodes],
        }],
        preferred_version: "v1beta1".into(),
    };
    let discovery = Discovery::new(vec![group]).unwrap();
    let metrics: MetricsText = Arc::new(|| "# HELP x y\nx 1\n".to_owned());
    Server::new(health, discovery, &b"{\"major\":\"1\"}"[..], metrics, handler)
        .with_listed_paths(["/openapi/v2".to_owned()])
}

fn request(method: Method, uri: &str) -> Parts {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(())
        .unwrap()
        .into_parts()
        .0
}

async fn call(s: &Server, method: Method, uri: &str) -> (u16, Option<String>, String) {
    let resp = s.route(&request(method, uri));
    let code = resp.status().as_u16();
    let ct = resp.headers().get(CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (code, ct, String::from_utf8(body.to_vec()).unwrap())
}

const TEXT: Option<&str> = Some("text/plain; charset=utf-8");
const JSON: Option<&str> = Some("application/json");

#[tokio::test]
async fn health_endpoints_are_routed_for_any_method() {
    let s = server();
    assert_eq!(
        call(&s, Method::GET, "/healthz").await,
        (200, TEXT.map(Into::into), "ok".into())
    );
    assert_eq!(call(&s, Method::POST, "/livez/ping").await.0, 200);
    let (_, _, body) = call(&s, Method::GET, "/readyz?verbose").await;
    assert!(
        body.ends_with("[+]metadata-informer-sync ok\n[+]shutdown ok\nreadyz check passed\n"),
        "{body}"
    );
}

#[tokio::test]
async fn discovery_is_routed_and_only_for_reads() {
    let s = server();
    let (code, ct, body) = call(&s, Method::GET, "/apis/metrics.k8s.io/v1beta1").await;
    assert_eq!((code, ct.as_deref()), (200, JSON));
    assert!(body.starts_with("{\"kind\":\"APIResourceList\""));
    let (code, ct, body) = call(&s, Method::POST, "/apis").await;
    assert_eq!((code, ct.as_deref()), (405, JSON));
    assert!(body.contains("\"reason\":\"MethodNotAllowed\""), "{body}");
    assert_eq!(
        call(&s, Method::GET, "/apis/metrics.k8s.io/v2").await.2,
        "404 page not found\n"
    );
}

#[tokio::test]
async fn resource_paths_of_served_versions_reach_the_handler_with_their_method() {
    let s = server();
    let (code, _, body) = call(&s, Method::GET, "/apis/metrics.k8s.io/v1beta1/nodes").await;
    assert_eq!((code, body.as_str()), (200, "{\"kind\":\"NodeMetricsList\"}\n"));
    let (code, ct, body) = call(&s, Method::DELETE, "/apis/metrics.k8s.io/v1beta1/nodes").await;
    assert_eq!((code, ct.as_deref()), (405, JSON));
    assert!(body.contains("create is not supported"), "{body}");
    for unknown in [
        "/apis/metrics.k8s.io/v1beta1/foo",
        "/apis/metrics.k8s.io/v2/nodes",
        "/apis/other.io/v1/nodes",
    ] {
        assert_eq!(
            call(&s, Method::GET, unknown).await,
            (404, TEXT.map(Into::into), "404 page not found\n".into())
        );
    }
}

#[tokio::test]
async fn version_metrics_and_fallbacks() {
    let s = server();
    assert_eq!(
        call(&s, Method::GET, "/version").await,
        (200, JSON.map(Into::into), "{\"major\":\"1\"}".into())
    );
    assert_eq!(call(&s, Method::PUT, "/version").await.0, 405);
    let (code, ct, body) = call(&s, Method::GET, "/metrics").await;
    assert_eq!(
        (code, ct.as_deref(), body.as_str()),
        (200, Some(METRICS_CONTENT_TYPE), "# HELP x y\nx 1\n")
    );
    assert_eq!(call(&s, Method::GET, "/openapi/v2").await.2, "{}");
    assert_eq!(call(&s, Method::GET, "/nope").await.2, "404 page not found\n");
}

#[tokio::test]
async fn index_lists_every_path_sorted_and_pretty_printed() {
    let (code, ct, body) = call(&server(), Method::GET, "/").await;
    assert_eq!((code, ct.as_deref()), (200, JSON));
    let expected = r#"{
  "paths": [
    "/apis",
    "/apis/metrics.k8s.io",
    "/apis/metrics.k8s.io/v1beta1",
    "/healthz",
    "/healthz/log",
    "/healthz/metadata-informer-sync",
    "/healthz/ping",
    "/healthz/poststarthook/max-in-flight-filter",
    "/healthz/poststarthook/storage-object-count-tracker-hook",
    "/livez",
    "/livez/log",
    "/livez/metadata-informer-sync",
    "/livez/ping",
    "/livez/poststarthook/max-in-flight-filter",
    "/livez/poststarthook/storage-object-count-tracker-hook",
    "/metrics",
    "/openapi/v2",
    "/readyz",
    "/readyz/log",
    "/readyz/metadata-informer-sync",
    "/readyz/ping",
    "/readyz/poststarthook/max-in-flight-filter",
    "/readyz/poststarthook/storage-object-count-tracker-hook",
    "/readyz/shutdown",
    "/version"
  ]
}"#;
    assert_eq!(body, expected);
    assert_eq!(call(&server(), Method::GET, "/index.html").await.2, expected);
}

#[tokio::test]
async fn head_gets_headers_and_length_without_a_body() {
    let s = server();
    for path in ["/apis", "/healthz", "/apis/metrics.k8s.io/v1beta1/nodes", "/nope"] {
        let get = s.route(&request(Method::GET, path));
        let get_len = get.into_body().collect().await.unwrap().to_bytes().len();
        let head = s.route(&request(Method::HEAD, path));
        assert_eq!(head.headers()[CONTENT_LENGTH], get_len.to_string().as_str(), "{path}");
        assert!(
            head.into_body().collect().await.unwrap().to_bytes().is_empty(),
            "{path}"
        );
    }
}

#[test]
fn group_version_prefix_needs_something_after_the_version() {
    assert_eq!(group_version_prefix("/apis/g/v/nodes/n"), Some(("g", "v")));
    assert_eq!(group_version_prefix("/apis/g/v/"), Some(("g", "v")));
    assert_eq!(group_version_prefix("/apis/g/v"), None);
    assert_eq!(group_version_prefix("/api/v1/x"), None);
}

#[test]
fn default_limits_are_documented_values() {
    let l = Limits::default();
    assert_eq!(l.max_connections, 1024);
    assert_eq!(l.handshake_timeout, Duration::from_secs(10));
    assert_eq!(l.header_read_timeout, Duration::from_secs(32));
    assert_eq!(l.shutdown_grace, Duration::from_secs(60));
    assert_eq!(l.shutdown_delay, Duration::ZERO);
    assert_eq!((l.max_requests_inflight, l.max_mutating_requests_inflight), (400, 200));
    assert_eq!((l.max_header_bytes, l.max_request_body_bytes), (1 << 20, 1 << 20));
    assert_eq!(l.http2_max_streams, 250);
    assert_eq!(l.write_stall_timeout, Duration::from_secs(30));
}

/// A gate with no certificates, no tokens and no reviewer: anonymous, health paths only.
fn gated() -> Server {
    use crate::apiserver::authn::{AuthenticationOptions, Authenticator};
    use crate::apiserver::authz::{AuthorizationOptions, Authorizer};
    use crate::apiserver::cache::system_clock;
    use crate::apiserver::client_ca::{Trust, TrustSource};
    let authn = Authenticator::new(
        &AuthenticationOptions::default(),
        TrustSource::fixed(Trust::default()),
        None,
        system_clock(),
    )
    .unwrap();
    let authz = Authorizer::new(&AuthorizationOptions::default(), None, system_clock()).unwrap();
    server().with_auth(Arc::new(Delegation::new(authn, authz)))
}

#[tokio::test]
async fn the_gate_runs_before_routing_and_head_refusals_have_no_body() {
    let server = gated();
    let none = PeerChain::none();
    assert_eq!(
        server.respond(&request(Method::GET, "/healthz"), &none).await.status(),
        200
    );
    let get = server.respond(&request(Method::GET, "/nope"), &none).await;
    assert_eq!(get.status(), 403, "authorization comes before the 404");
    let length = get.into_body().collect().await.unwrap().to_bytes().len();
    let head = server
        .respond(&request(Method::HEAD, "/apis/metrics.k8s.io/v1beta1/nodes"), &none)
        .await;
    assert_eq!(head.status(), 403);
    assert_eq!(head.headers()[CONTENT_TYPE], "application/json");
    assert!(head.headers().contains_key(CONTENT_LENGTH));
    assert!(head.into_body().collect().await.unwrap().to_bytes().is_empty());
    assert!(length > 0);
    // Without a gate, respond is route.
    let open = server_ungated_respond().await;
    assert_eq!(open, 200);
}

async fn server_ungated_respond() -> u16 {
    server()
        .respond(
            &request(Method::GET, "/apis/metrics.k8s.io/v1beta1/nodes"),
            &PeerChain::none(),
        )
        .await
        .status()
        .as_u16()
}

/// Plays an API with heavy paths: `/heavy` answers only once `/light` has been answered (or
/// gives up after a while), `/heavy-panic` panics.
struct HeavyAndLight {
    light_answered: std::sync::Mutex<std::sync::mpsc::Sender<()>>,
    wait_for_light: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl HeavyAndLight {
    fn new() -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        HeavyAndLight {
            light_answered: std::sync::Mutex::new(tx),
            wait_for_light: std::sync::Mutex::new(rx),
        }
    }
}

impl Handler for HeavyAndLight {
    fn is_heavy(&self, req: &Parts) -> bool {
        req.uri.path().starts_with("/heavy")
    }

    fn handle(&self, req: &Parts) -> Option<Response> {
        let text: &'static [u8] = match req.uri.path() {
            "/light" => {
                self.light_answered.lock().unwrap().send(()).unwrap();
                b"light"
            }
            "/heavy" => {
                // Only a bound for the failure: on the API's thread, `/light` never runs.
                let waited = self
                    .wait_for_light
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(20));
                if waited.is_ok() {
                    b"after the light request"
                } else {
                    b"the light request was never answered"
                }
            }
            "/heavy-panic" => panic!("a handler bug"),
            _ => return None,
        };
        Some(ok_bytes("text/plain", Bytes::from_static(text)))
    }
}

async fn text(resp: Response) -> String {
    String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

// One thread runs every task here: had the heavy request held it, the light one could not be
// answered until the heavy one gave up.
#[tokio::test(flavor = "current_thread")]
async fn a_heavy_request_runs_off_the_api_threads_and_a_light_one_is_answered_meanwhile() {
    let server = server_with(Arc::new(HeavyAndLight::new()));
    let none = PeerChain::none();
    let (heavy, light) = (request(Method::GET, "/heavy"), request(Method::GET, "/light"));
    let (heavy, light) = tokio::join!(server.respond(&heavy, &none), server.respond(&light, &none));
    assert_eq!(text(light).await, "light");
    assert_eq!(heavy.status(), 200);
    assert_eq!(text(heavy).await, "after the light request");
}

#[tokio::test]
async fn a_handler_that_panics_on_a_heavy_request_gets_a_500_status_and_the_server_goes_on() {
    let server = server_with(Arc::new(HeavyAndLight::new()));
    let none = PeerChain::none();
    let failed = server.respond(&request(Method::GET, "/heavy-panic"), &none).await;
    assert_eq!(failed.status(), 500);
    assert_eq!(failed.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(
        text(failed).await,
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\
         \"message\":\"an internal error occurred while answering the request\",\"code\":500}\n"
    );
    let light = server.respond(&request(Method::GET, "/light"), &none).await;
    assert_eq!(text(light).await, "light");
}
