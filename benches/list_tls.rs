//! LIST-all over real TLS on loopback, in-process: the whole server (`app::router`) over a
//! fleet of 5,000 nodes × 30 pods × 2 containers, a hyper HTTP/1.1 client reading the body.
//! A plain `main` for system-call and instruction counts, which `strace` and callgrind make per
//! process: run it with `--lists 1` and `--lists 3`, and the difference is two warm LIST-alls
//! (the first list of a run builds the cache). `--h2` lists over HTTP/2.
//!
//! ```text
//! strace -f -c -e trace=write,writev,sendto,sendmsg,read,recvfrom target/release/deps/list_tls-<hash> --lists 3
//! ```

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use metrics_server_rs::apiserver::{load_or_generate, server_config, TlsVersion};
use metrics_server_rs::app::{router, Pipeline};
use metrics_server_rs::inventory::fixed::FixedInventory;
use metrics_server_rs::inventory::selector::LabelSelector;
use metrics_server_rs::inventory::{NodeInfo, PodInfo, Snapshot};
use metrics_server_rs::kubelet::{ContainerSample, NodeBatch, Point, Timestamp};
use metrics_server_rs::scrape::schedule::TickClock;
use metrics_server_rs::scrape::status::ScrapeStatus;
use metrics_server_rs::store::Store;
use metrics_server_rs::telemetry::Telemetry;
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};

const NODES: usize = 5_000;
const PODS_PER_NODE: usize = 30;
const CONTAINERS: [&str; 2] = ["app", "sidecar"];
const RESOLUTION: Duration = Duration::from_secs(3600);
const PATH: &str = "/apis/metrics.k8s.io/v1beta1/pods";

/// The fleet's inventory and a store that has applied two scrapes of every node.
fn fleet() -> (Snapshot, Store) {
    let labels = |pairs: &[(&str, String)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    let mut nodes = Vec::with_capacity(NODES);
    let mut pods = Vec::with_capacity(NODES * PODS_PER_NODE);
    for n in 0..NODES {
        let node = format!("node-{n:05}");
        nodes.push(NodeInfo {
            name: node.clone(),
            labels: labels(&[("kubernetes.io/hostname", node.clone())]),
            addresses: Vec::new(),
            kubelet_status_port: 0,
        });
        for p in 0..PODS_PER_NODE {
            let app = format!("deployment-{}", (n * 7 + p) % 100);
            pods.push(PodInfo {
                namespace: format!("namespace-{}", (n + p) % 10).into(),
                name: format!("{app}-{:010x}", n * PODS_PER_NODE + p).into(),
                labels: labels(&[("app", app), ("pod-template-hash", format!("{:08x}", n * 31 + p))]),
                node_name: node.as_str().into(),
            });
        }
    }
    let store = Store::new(RESOLUTION, 2 * RESOLUTION);
    let start = Timestamp::from_unix_seconds(1_700_000_000);
    for cycle in 1..=2u32 {
        for (node, pods) in nodes.iter().zip(pods.chunks(PODS_PER_NODE)) {
            let mut containers = Vec::new();
            for (i, pod) in pods.iter().enumerate() {
                for container in CONTAINERS {
                    containers.push(ContainerSample {
                        namespace: pod.namespace.to_string().into(),
                        pod: pod.name.to_string().into(),
                        container: container.into(),
                        point: Point {
                            start_time: start,
                            timestamp: start.saturating_add(Duration::from_secs(15 * u64::from(cycle))),
                            cpu_core_nanoseconds: u64::from(cycle) * 7_000_000_000 + i as u64,
                            memory_bytes: (i as u64 + 1) << 24,
                        },
                    });
                }
            }
            containers.sort_by(|a, b| (&a.namespace, &a.pod, &a.container).cmp(&(&b.namespace, &b.pod, &b.container)));
            let batch = NodeBatch {
                containers,
                ..NodeBatch::default()
            };
            store.apply(&node.name, &batch, Instant::now());
        }
    }
    (Snapshot::from_parts(nodes, pods), store)
}

/// The client's side of the connection.
enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

#[allow(clippy::print_stdout, reason = "a plain bench: its output is the result")]
fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let lists: usize = args
        .iter()
        .position(|a| a == "--lists")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let h2 = args.iter().any(|a| a == "--h2");
    let (snapshot, store) = fleet();
    let server = router(Pipeline {
        inventory: Arc::new(FixedInventory::new(snapshot)),
        store: Arc::new(store),
        telemetry: Arc::new(Telemetry::new(RESOLUTION)),
        scrape_status: Arc::new(ScrapeStatus::default()),
        ticks: Arc::new(TickClock::default()),
        node_selector: LabelSelector::default(),
        resolution: RESOLUTION,
    })?;
    let certs = tempfile::tempdir()?;
    let pair = load_or_generate(None, None, certs.path(), &[])?;
    let tls = server_config(&pair, TlsVersion::Tls12, true)?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pair.cert_chain()[0].clone())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    client_config.alpn_protocols = vec![if h2 { b"h2".to_vec() } else { b"http/1.1".to_vec() }];

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(Arc::new(server).serve(listener, tls, async move {
            let _ = stopped.await;
        }));
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from("localhost")?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(client_config))
            .connect(name, tcp)
            .await?;
        let io = TokioIo::new(tls);
        let (mut send, driven) = if h2 {
            let (send, conn) = hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await?;
            (Sender::H2(send), tokio::spawn(async move { drop(conn.await) }))
        } else {
            let (send, conn) = hyper::client::conn::http1::handshake(io).await?;
            (Sender::H1(send), tokio::spawn(async move { drop(conn.await) }))
        };
        for i in 0..lists {
            let request = hyper::Request::builder()
                .uri(format!("https://localhost{PATH}"))
                .header(hyper::header::ACCEPT, "application/json")
                .body(Empty::<Bytes>::new())?;
            let started = Instant::now();
            let response = match &mut send {
                Sender::H1(send) => send.send_request(request).await?,
                Sender::H2(send) => send.send_request(request).await?,
            };
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            println!(
                "LIST-all {i}: {status}, {} bytes in {:.1} ms",
                body.len(),
                started.elapsed().as_secs_f64() * 1e3
            );
        }
        drop(send);
        let _ = driven.await;
        let _ = stop.send(());
        served.await??;
        Ok::<_, Box<dyn Error>>(())
    })?;
    Ok(())
}
