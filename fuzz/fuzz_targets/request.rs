//! The HTTP request path in-process: a request head (`METHOD TARGET` then `Name: value`
//! lines) goes through route, query and selector parsing and then the server's full router
//! (`Server::route`: health, discovery, the metrics API, `/debug/scrapes`, the index) over a
//! store holding real data. Nothing may panic, and answers must keep their promises.
#![no_main]

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hyper::body::Body as _;
use hyper::{Method, Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use metrics_server_rs::api::selectors::{form_pairs, FieldSelector, ListOptions};
use metrics_server_rs::api::Route;
use metrics_server_rs::apiserver::{Response, Server};
use metrics_server_rs::app::{router, Pipeline};
use metrics_server_rs::inventory::fixed::FixedInventory;
use metrics_server_rs::inventory::selector::LabelSelector;
use metrics_server_rs::inventory::{NodeInfo, PodInfo, Snapshot};
use metrics_server_rs::kubelet::{decode, Timestamp};
use metrics_server_rs::scrape::schedule::TickClock;
use metrics_server_rs::scrape::status::ScrapeStatus;
use metrics_server_rs::store::Store;
use metrics_server_rs::telemetry::Telemetry;

const FIRST: &str = "node_cpu_usage_seconds_total 100 1700000000000
node_memory_working_set_bytes 2147483648 1700000000000
container_cpu_usage_seconds_total{container=\"app\",namespace=\"default\",pod=\"web-1\"} 10 1700000000000
container_memory_working_set_bytes{container=\"app\",namespace=\"default\",pod=\"web-1\"} 104857600 1700000000000
";
const SECOND: &str = "node_cpu_usage_seconds_total 120 1700000010000
node_memory_working_set_bytes 2147483648 1700000010000
container_cpu_usage_seconds_total{container=\"app\",namespace=\"default\",pod=\"web-1\"} 12.5 1700000010000
container_memory_working_set_bytes{container=\"app\",namespace=\"default\",pod=\"web-1\"} 104857600 1700000010000
";

/// The router over one node and one pod with two scrapes stored (built once per process).
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
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
            let batch = decode(body.as_bytes(), Timestamp::from_unix_seconds(1_700_000_000)).ok();
            store.apply("node1", &batch.unwrap_or_default(), Instant::now());
        }
        let built = router(Pipeline {
            inventory,
            store,
            telemetry: Arc::new(Telemetry::new(resolution)),
            scrape_status: Arc::new(ScrapeStatus::default()),
            ticks: Arc::new(TickClock::default()),
            node_selector: LabelSelector::default(),
            resolution,
        });
        match built {
            Ok(server) => server,
            Err(e) => panic!("building the router: {e}"),
        }
    })
}

/// The parsers a request meets before the router, called on their own so a finding names one.
fn parse_parts(path: &str, query: Option<&str>) {
    let _ = Route::parse(path);
    let _ = ListOptions::from_query(query);
    for (key, value) in form_pairs(query.unwrap_or("")) {
        match key.as_ref() {
            "labelSelector" => {
                if let Ok(selector) = LabelSelector::parse(&value) {
                    // What a selector prints (in /debug/scrapes, readyz) parses back to it.
                    let printed = selector.to_string();
                    assert_eq!(LabelSelector::parse(&printed).ok(), Some(selector), "{printed:?}");
                }
            }
            "fieldSelector" => {
                let _ = FieldSelector::parse(&value);
            }
            _ => {}
        }
    }
}

fn body_bytes(resp: Response) -> Vec<u8> {
    let mut body = resp.into_body();
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    // A `Full` body is ready at once: no poll can be pending.
    while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) {
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let (method, target) = lines.next().unwrap_or_default().split_once(' ').unwrap_or(("GET", ""));
    let target = if target.starts_with('/') {
        target.to_owned()
    } else {
        format!("/{target}")
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target.as_str(), None),
    };
    parse_parts(path, query);

    // Heads hyper itself would refuse never reach the router.
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let mut request = Request::builder().method(method).uri(target.as_str());
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            request = request.header(name.trim(), value.trim());
        }
    }
    let Ok(request) = request.body(()) else { return };
    let (parts, ()) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let resp = server().route(&parts);
    let status = resp.status();
    let health = ["/healthz", "/livez", "/readyz"].iter().any(|h| path.starts_with(h));
    assert!(
        status != StatusCode::INTERNAL_SERVER_ERROR || health,
        "500 for {} {path}",
        parts.method
    );
    let json = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let head = parts.method == Method::HEAD;
    let body = body_bytes(resp);
    if head {
        assert!(body.is_empty(), "HEAD answered with a body");
    } else if json {
        assert!(
            serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
            "{status} JSON body does not parse: {}",
            String::from_utf8_lossy(&body)
        );
    }
});
