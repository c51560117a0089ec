//! The server's own cost of one GET of a PodMetrics, in-process: the delegation gate (bearer
//! token → cached TokenReview, cached SubjectAccessReview), routing and the handler's JSON
//! encoding, as [`Server::respond`] runs them for every request the fleet bench's GET phase
//! sends, without TLS, hyper or sockets.
//!
//! A plain `main` that prints nanoseconds and heap bytes allocated per request, so it also runs
//! under `valgrind --tool=callgrind` for exact instruction and `malloc` call counts:
//!
//! ```text
//! cargo bench --bench get -- --requests 200000
//! valgrind --tool=callgrind target/release/deps/get-<hash> --requests 20000
//! ```

use std::error::Error;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use cap::Cap;
use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use hyper::body::Body as _;
use hyper::http::request::Parts;
use hyper::Request;
use metrics_server_rs::apiserver::authn::{AuthenticationOptions, Authenticator, TokenReviewer, User};
use metrics_server_rs::apiserver::authz::{AccessReviewer, AuthorizationOptions, Authorizer, Decision};
use metrics_server_rs::apiserver::cache::system_clock;
use metrics_server_rs::apiserver::client_ca::{Trust, TrustSource};
use metrics_server_rs::apiserver::request_info::Target;
use metrics_server_rs::apiserver::review::ReviewError;
use metrics_server_rs::apiserver::{Delegation, PeerChain, Response, Server};
use metrics_server_rs::app::{router, Pipeline};
use metrics_server_rs::inventory::fixed::FixedInventory;
use metrics_server_rs::inventory::selector::LabelSelector;
use metrics_server_rs::inventory::{NodeInfo, PodInfo, Snapshot};
use metrics_server_rs::kubelet::{decode, Timestamp};
use metrics_server_rs::scrape::schedule::TickClock;
use metrics_server_rs::scrape::status::ScrapeStatus;
use metrics_server_rs::store::Store;
use metrics_server_rs::telemetry::Telemetry;

/// mimalloc (as in the binary), counting the bytes allocated.
#[global_allocator]
static ALLOCATOR: Cap<mimalloc::MiMalloc> = Cap::new(mimalloc::MiMalloc, usize::MAX);

const PATH: &str = "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web-1";
const TOKEN: &str = "Bearer fleet-bench-token-0123456789abcdef";

const FIRST: &str = "node_cpu_usage_seconds_total 100 1700000000000
node_memory_working_set_bytes 2147483648 1700000000000
container_cpu_usage_seconds_total{container=\"app\",namespace=\"default\",pod=\"web-1\"} 10 1700000000000
container_memory_working_set_bytes{container=\"app\",namespace=\"default\",pod=\"web-1\"} 104857600 1700000000000
container_cpu_usage_seconds_total{container=\"sidecar\",namespace=\"default\",pod=\"web-1\"} 1 1700000000000
container_memory_working_set_bytes{container=\"sidecar\",namespace=\"default\",pod=\"web-1\"} 10485760 1700000000000
";
const SECOND: &str = "node_cpu_usage_seconds_total 120 1700000010000
node_memory_working_set_bytes 2147483648 1700000010000
container_cpu_usage_seconds_total{container=\"app\",namespace=\"default\",pod=\"web-1\"} 12.5 1700000010000
container_memory_working_set_bytes{container=\"app\",namespace=\"default\",pod=\"web-1\"} 104857600 1700000010000
container_cpu_usage_seconds_total{container=\"sidecar\",namespace=\"default\",pod=\"web-1\"} 1.25 1700000010000
container_memory_working_set_bytes{container=\"sidecar\",namespace=\"default\",pod=\"web-1\"} 10485760 1700000010000
";

/// Every token is a service account the reviewer knows (what the fleet's API double answers).
#[derive(Debug)]
struct KnownTokens;

impl TokenReviewer for KnownTokens {
    fn review<'a>(&'a self, _token: &'a str) -> BoxFuture<'a, Result<Option<User>, ReviewError>> {
        Box::pin(async {
            Ok(Some(User {
                name: "system:serviceaccount:kube-system:horizontal-pod-autoscaler".to_owned(),
                uid: "0b5e7c1c-3f7e-4f0e-9d61-6c1b1f3b2a10".to_owned(),
                groups: vec![
                    "system:serviceaccounts".to_owned(),
                    "system:serviceaccounts:kube-system".to_owned(),
                ],
                ..User::default()
            }))
        })
    }
}

/// Allows everything, as the fleet's API double does.
#[derive(Debug)]
struct AllowAll;

impl AccessReviewer for AllowAll {
    fn review<'a>(&'a self, _user: &'a User, _target: &'a Target) -> BoxFuture<'a, Result<Decision, ReviewError>> {
        Box::pin(async { Ok(Decision::Allow) })
    }
}

/// The production router over one node and one two-container pod with two scrapes stored,
/// behind the delegation gate.
fn server() -> Result<Server, Box<dyn Error>> {
    let labels = |k: &str, v: &str| [(k.to_owned(), v.to_owned())].into_iter().collect();
    let node = NodeInfo {
        name: "node1".into(),
        labels: labels("kubernetes.io/hostname", "node1"),
        addresses: Vec::new(),
        kubelet_status_port: 10250,
    };
    let pod = PodInfo {
        namespace: "default".into(),
        name: "web-1".into(),
        labels: labels("app", "web"),
        node_name: "node1".into(),
    };
    let inventory = Arc::new(FixedInventory::new(Snapshot::from_parts([node], [pod])));
    // An hour: the data stays fresh however long the run.
    let resolution = Duration::from_secs(3600);
    let store = Arc::new(Store::new(resolution, resolution * 2));
    for body in [FIRST, SECOND] {
        let batch = decode(body.as_bytes(), Timestamp::from_unix_seconds(1_700_000_000))?;
        store.apply("node1", &batch, Instant::now());
    }
    let clock = system_clock();
    let trust = TrustSource::fixed(Trust {
        generation: 0,
        client_ca: None,
        request_header: None,
    });
    let tokens: Arc<dyn TokenReviewer> = Arc::new(KnownTokens);
    let access: Arc<dyn AccessReviewer> = Arc::new(AllowAll);
    let authn = Authenticator::new(&AuthenticationOptions::default(), trust, Some(tokens), clock.clone())?;
    let authz = Authorizer::new(&AuthorizationOptions::default(), Some(access), clock)?;
    let server = router(Pipeline {
        inventory,
        store,
        telemetry: Arc::new(Telemetry::new(resolution)),
        scrape_status: Arc::new(ScrapeStatus::default()),
        ticks: Arc::new(TickClock::default()),
        node_selector: LabelSelector::default(),
        resolution,
    })?;
    Ok(server.with_auth(Arc::new(Delegation::new(authn, authz))))
}

/// The head the fleet bench's clients send (hyper adds nothing else on HTTP/1.1).
fn request() -> Result<Parts, Box<dyn Error>> {
    let (parts, ()) = Request::builder()
        .uri(PATH)
        .header(hyper::header::HOST, "localhost")
        .header(hyper::header::AUTHORIZATION, TOKEN)
        .header(hyper::header::ACCEPT, "application/json")
        .body(())?
        .into_parts();
    Ok(parts)
}

/// The body's length; a `Full` body is ready on the first poll.
fn body_len(resp: Response) -> usize {
    let mut body = resp.into_body();
    let mut cx = Context::from_waker(Waker::noop());
    let mut len = 0;
    while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) {
        len += frame.data_ref().map_or(0, |d| d.len());
    }
    len
}

#[allow(clippy::print_stdout, reason = "a plain bench: its output is the result")]
fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let requests = args
        .iter()
        .position(|a| a == "--requests")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000_usize);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let server = runtime.block_on(async { server() })?;
    let peer = PeerChain::none();
    // The first request fills the review caches (the fleet's first request does too).
    let first = runtime.block_on(server.respond(&request()?, &peer));
    if first.status() != hyper::StatusCode::OK {
        return Err(format!("GET {PATH}: {}", first.status()).into());
    }
    let body = body_len(first);
    // Heads are built outside the measured loop: hyper parses them before we see them.
    let heads: Vec<Parts> = (0..requests).map(|_| request()).collect::<Result<_, _>>()?;
    let allocated_before = ALLOCATOR.total_allocated();
    let started = Instant::now();
    let mut bytes = 0;
    for head in &heads {
        // Cached answers: the gate never waits, so the future is ready on its first poll.
        let resp = server
            .respond(head, &peer)
            .now_or_never()
            .ok_or("the gate waited on a cached request")?;
        bytes += body_len(resp);
    }
    let elapsed = started.elapsed();
    let allocated = ALLOCATOR.total_allocated() - allocated_before;
    let n = requests.max(1) as f64;
    println!(
        "GET {PATH}: {requests} requests, {body} body bytes, {:.0} ns/request ({:.0} req/s on one core), {:.0} bytes allocated/request",
        elapsed.as_nanos() as f64 / n,
        n / elapsed.as_secs_f64(),
        allocated as f64 / n,
    );
    if bytes != body * requests {
        return Err("a response body differed in length".into());
    }
    Ok(())
}
