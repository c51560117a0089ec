//! The simulator role: N kubelets, each on its own loopback address (127.1.0.1, 127.1.0.2, …;
//! all of 127/8 routes to `lo`) on port 10250, as on a real fleet where every node has its own
//! IP and the server dials each one; plus the API double listing them.
//!
//! Talks to the harness over stdio: one `READY …` line on stdout once everything listens,
//! then commands on stdin (`churn` → `CHURNED <pods>`). End of stdin (the harness exited,
//! however it exited) ends the simulator, so it can never outlive the bench.

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::StatusCode;
use metrics_server_rs::sandbox::exposition::render_resource_metrics;
use metrics_server_rs::sandbox::fleet::{Fleet, SimPod, SimulatedNode};
use metrics_server_rs::sandbox::kubelet_server::{serve, KubeletReply, Responder};
use metrics_server_rs::sandbox::kubelet_tls;
use metrics_server_rs::sandbox::pki::TestCa;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::kube_api::{self, KubeApi};
use crate::options::SimOptions;
use crate::Result;

pub(crate) const KUBELET_PORT: u16 = 10250;
/// The one bearer token: the server's kubeconfig user, accepted by the API double and the
/// kubelets (the server scrapes with its API credentials, as upstream does), and our API clients'.
pub(crate) const TOKEN: &str = "fleet-bench-token";
const SEED: u64 = 0xf1ee7;
/// Pods replaced per churn step: one in ten.
const CHURN_ONE_IN: usize = 10;

/// The address of node `index`: 127.1.0.1 onwards, skipping .0 and .255 in the last octet.
pub(crate) fn node_address(index: usize) -> Ipv4Addr {
    let per_block = 254;
    let host = (index % per_block) as u8 + 1;
    let block = index / per_block;
    Ipv4Addr::new(127, 1 + (block / 256) as u8, (block % 256) as u8, host)
}

/// What the harness reads from the simulator's `READY` line.
#[derive(Debug, Clone)]
pub(crate) struct Ready {
    pub(crate) api_url: String,
    pub(crate) kubeconfig: String,
    pub(crate) ca_file: String,
    pub(crate) pods: usize,
    /// One pod to GET: `namespace/name`.
    pub(crate) sample_pod: String,
}

impl Ready {
    fn line(&self) -> String {
        format!(
            "READY {} {} {} {} {}",
            self.api_url, self.kubeconfig, self.ca_file, self.pods, self.sample_pod
        )
    }

    pub(crate) fn parse(line: &str) -> Option<Ready> {
        let mut words = line.strip_prefix("READY ")?.split(' ');
        Some(Ready {
            api_url: words.next()?.to_owned(),
            kubeconfig: words.next()?.to_owned(),
            ca_file: words.next()?.to_owned(),
            pods: words.next()?.parse().ok()?,
            sample_pod: words.next()?.to_owned(),
        })
    }
}

/// One node's current pods, swapped whole on churn so a scrape never sees half a change.
type NodeCell = Arc<RwLock<Arc<SimulatedNode>>>;

/// Kubelets one process serves at most. Each holds two sockets (its listener and the server's
/// connection), and a process here may open 20,000 files (`ulimit -Hn`, not raisable without
/// privileges); larger fleets are split over helper processes, each with its own CA.
pub(crate) const KUBELETS_PER_PROCESS: usize = 8_000;

pub(crate) async fn run(options: SimOptions) -> Result<()> {
    if let Some((first, count)) = options.kubelets {
        return run_kubelets(&options, first, count).await;
    }
    let (clock, nodes) = fleet(&options);
    let ca = TestCa::new("metrics-server-rs fleet bench CA")?;
    let node_objects = nodes.iter().enumerate().map(|(i, n)| node_object(i, n)).collect();
    let pod_objects = nodes
        .iter()
        .flat_map(|n| n.pods.iter().map(move |p| pod_object(p, &n.name)))
        .collect::<Vec<_>>();
    let pods = pod_objects.len();
    let sample_pod = nodes
        .first()
        .and_then(|n| n.pods.first())
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .ok_or("a fleet without pods")?;
    let api = KubeApi::new(TOKEN, node_objects, pod_objects)?;
    let (listener, address) = kube_api::bind().await?;
    let leaf = ca.issue("kube-apiserver", &[address.ip().to_string().as_str()])?;
    tokio::spawn(api.clone().serve(listener, kubelet_tls(&leaf.cert_pem, &leaf.key_pem)?));

    // This process serves the first slice; helpers serve the rest, and the server trusts every
    // helper's CA through one bundle.
    // Helpers make their certificates while this process makes its own.
    let mut helpers = Vec::new();
    for first in (KUBELETS_PER_PROCESS..nodes.len()).step_by(KUBELETS_PER_PROCESS) {
        let count = KUBELETS_PER_PROCESS.min(nodes.len() - first);
        helpers.push(KubeletHelper::start(&options, first, count)?);
    }
    let own: Vec<SimulatedNode> = nodes.into_iter().take(KUBELETS_PER_PROCESS).collect();
    let cells = serve_kubelets(&ca, clock, own, 0).await?;
    let mut ca_bundle = ca.cert_pem();
    for helper in &mut helpers {
        ca_bundle.push_str(&std::fs::read_to_string(helper.ready().await?)?);
    }

    let api_url = format!("https://{address}");
    let ca_file = options.dir.join("ca.crt");
    std::fs::write(&ca_file, ca_bundle)?;
    let kubeconfig = options.dir.join("kubeconfig");
    write_kubeconfig(&kubeconfig, &api_url, &ca_file)?;
    let ready = Ready {
        api_url,
        kubeconfig: kubeconfig.display().to_string(),
        ca_file: ca_file.display().to_string(),
        pods,
        sample_pod,
    };
    say(&ready.line())?;

    let mut churn = Churn { step: 0, renamed: 0 };
    // A plain thread reads stdin (tokio's `io-std` feature is not enabled in this crate).
    let (tx, mut commands) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(command) = commands.recv().await {
        match command.trim() {
            "churn" if !helpers.is_empty() => {
                say(&format!(
                    "ERROR churn runs on fleets of at most {KUBELETS_PER_PROCESS} nodes"
                ))?;
            }
            "churn" => {
                let replaced = churn.step(&cells, &api)?;
                say(&format!("CHURNED {replaced}"))?;
            }
            other => say(&format!("ERROR unknown command {other:?}"))?,
        }
    }
    Ok(())
}

/// The fleet every simulator process derives alike from the seed: the same nodes, names and
/// pods, so a helper's slice matches the API double's objects.
fn fleet(options: &SimOptions) -> (Arc<Fleet>, Vec<SimulatedNode>) {
    let now = unix_seconds();
    // Counters start an hour back, as on a cluster that has been up a while.
    let mut fleet = Fleet::generate(options.nodes, options.pods_per_node, SEED, now - 3600.0);
    let mut nodes = std::mem::take(&mut fleet.nodes);
    for (index, node) in nodes.iter_mut().enumerate() {
        node.name = format!("fleet-node-{index:05}");
        node.labels.insert("kubernetes.io/hostname", node.name.clone());
    }
    // What is left is the epoch, which is all `Fleet::sample` reads.
    (Arc::new(fleet), nodes)
}

/// Binds and serves one kubelet per node (`nodes[i]` is fleet node `first + i`), each with a
/// certificate for its address issued by `ca`.
async fn serve_kubelets(
    ca: &TestCa,
    clock: Arc<Fleet>,
    nodes: Vec<SimulatedNode>,
    first: usize,
) -> Result<Vec<NodeCell>> {
    let mut cells = Vec::with_capacity(nodes.len());
    for (offset, node) in nodes.into_iter().enumerate() {
        let ip = node_address(first + offset);
        let leaf = ca.issue(&node.name, &[ip.to_string().as_str()])?;
        let tls = kubelet_tls(&leaf.cert_pem, &leaf.key_pem)?;
        let listener = TcpListener::bind((ip, KUBELET_PORT))
            .await
            .map_err(|e| format!("binding kubelet {} on {ip}:{KUBELET_PORT}: {e}", node.name))?;
        let cell: NodeCell = Arc::new(RwLock::new(Arc::new(node)));
        tokio::spawn(serve(listener, tls, kubelet(clock.clone(), cell.clone())));
        cells.push(cell);
    }
    Ok(cells)
}

/// The helper role: kubelets `first..first + count` only, under a CA of its own written to
/// `<dir>/kubelets-<first>.crt` and announced as `KUBELETS <path>`; ends at the end of stdin.
async fn run_kubelets(options: &SimOptions, first: usize, count: usize) -> Result<()> {
    let (clock, nodes) = fleet(options);
    let slice: Vec<SimulatedNode> = nodes.into_iter().skip(first).take(count).collect();
    let ca = TestCa::new(&format!("metrics-server-rs fleet bench CA (kubelets from {first})"))?;
    let _cells = serve_kubelets(&ca, clock, slice, first).await?;
    let ca_file = options.dir.join(format!("kubelets-{first}.crt"));
    std::fs::write(&ca_file, ca.cert_pem())?;
    say(&format!("KUBELETS {}", ca_file.display()))?;
    let (done, ended) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            if line.is_err() {
                break;
            }
        }
        let _ = done.send(());
    });
    let _ = ended.await;
    Ok(())
}

/// A helper process serving a slice of the kubelets; killed with the simulator (its guard),
/// and ending by itself when the simulator's end closes its stdin.
struct KubeletHelper {
    first: usize,
    /// Its `KUBELETS <ca path>` line, read off the runtime (certificates take a while).
    announced: Option<tokio::task::JoinHandle<Option<std::io::Result<String>>>>,
    _stdin: std::process::ChildStdin,
    _guard: crate::server::Guard,
}

impl KubeletHelper {
    fn start(options: &SimOptions, first: usize, count: usize) -> Result<KubeletHelper> {
        let helper = SimOptions {
            kubelets: Some((first, count)),
            ..options.clone()
        };
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .args(helper.to_args())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()?;
        let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
        let guard = crate::server::Guard { child };
        let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
            return Err("a kubelet helper's pipes".into());
        };
        let announced = tokio::task::spawn_blocking(move || {
            use std::io::BufRead as _;
            std::io::BufReader::new(stdout).lines().next()
        });
        Ok(KubeletHelper {
            first,
            announced: Some(announced),
            _stdin: stdin,
            _guard: guard,
        })
    }

    /// Waits until the helper listens; returns its CA certificate's path.
    async fn ready(&mut self) -> Result<std::path::PathBuf> {
        let line = match self.announced.take() {
            Some(announced) => announced.await?,
            None => None,
        };
        match line {
            Some(Ok(line)) => line.strip_prefix("KUBELETS ").map(std::path::PathBuf::from),
            _ => None,
        }
        .ok_or_else(|| {
            format!(
                "the kubelet helper for nodes from {} exited before it was ready",
                self.first
            )
            .into()
        })
    }
}

fn say(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A kubelet answering `/metrics/resource` for its node's current pods, with the bench token.
fn kubelet(clock: Arc<Fleet>, cell: NodeCell) -> Responder {
    let expected = format!("Bearer {TOKEN}");
    Arc::new(move |path, auth| {
        if path != "/metrics/resource" {
            return KubeletReply {
                status: StatusCode::NOT_FOUND,
                body: b"404 page not found\n".to_vec(),
            };
        }
        if auth != Some(expected.as_str()) {
            return KubeletReply {
                status: StatusCode::UNAUTHORIZED,
                body: b"Unauthorized".to_vec(),
            };
        }
        let node = cell.read().unwrap_or_else(PoisonError::into_inner).clone();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let sample = clock.sample(&node, now.as_secs_f64());
        let mut body = Vec::with_capacity(24 * 1024);
        render_resource_metrics(&sample, now.as_millis() as i64, &mut body);
        KubeletReply {
            status: StatusCode::OK,
            body,
        }
    })
}

/// Replaces one pod in ten per step, as rolling deployments do: the kubelet reports the new pod
/// and the API sends DELETED for the old one and ADDED for the new one.
struct Churn {
    step: usize,
    /// Pods created so far, to name each new one uniquely.
    renamed: u64,
}

impl Churn {
    fn step(&mut self, cells: &[NodeCell], api: &KubeApi) -> Result<usize> {
        let mut replaced = 0;
        for cell in cells {
            let mut node = SimulatedNode::clone(&cell.read().unwrap_or_else(PoisonError::into_inner));
            let mut changes = Vec::new();
            // A different tenth each step (positions ≡ -step mod 10), so every pod gets its turn.
            for position in (0..node.pods.len()).filter(|p| (p + self.step) % CHURN_ONE_IN == 0) {
                let old = node.pods[position].clone();
                let mut new = old.clone();
                self.renamed += 1;
                // Same ReplicaSet (the `<app>-<template hash>-` prefix), a fresh 5-character suffix.
                let prefix = old.name.rsplit_once('-').map_or(old.name.as_str(), |(p, _)| p);
                new.name = format!("{prefix}-{}", suffix(self.renamed));
                changes.push((pod_object(&old, &node.name), pod_object(&new, &node.name)));
                node.pods[position] = new;
            }
            // The kubelet first, then the API: for a moment the server may see a pod its inventory
            // does not know yet, which it must ignore, as with a real kubelet.
            *cell.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(node);
            for (deleted, added) in changes {
                api.replace_pod(deleted, added)?;
                replaced += 1;
            }
        }
        self.step += 1;
        Ok(replaced)
    }
}

/// `n` in the alphabet Kubernetes uses for generated name suffixes, 5 characters wide.
fn suffix(mut n: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut out = [b'b'; 5];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % ALPHABET.len() as u64) as usize];
        n /= ALPHABET.len() as u64;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn node_object(index: usize, node: &SimulatedNode) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node.name, "labels": node.labels},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": node_address(index).to_string()},
                {"type": "Hostname", "address": node.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    })
}

fn pod_object(pod: &SimPod, node_name: &str) -> Value {
    let mut labels = pod.labels.clone();
    // `<app>-<template hash>-<suffix>`: the ReplicaSet's hash label, as real pods carry.
    if let Some(hash) = pod.name.rsplit('-').nth(1) {
        labels.insert("pod-template-hash", hash);
    }
    let containers: Vec<Value> = pod
        .containers
        .iter()
        .map(|(name, _)| json!({"name": name, "image": format!("registry.example/{name}:1.0")}))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod.name, "namespace": pod.namespace, "labels": labels},
        "spec": {"nodeName": node_name, "containers": containers},
        "status": {"phase": "Running"},
    })
}

fn write_kubeconfig(path: &Path, server: &str, ca_file: &Path) -> Result<()> {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fleet\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\n\
         users:\n- name: fleet-bench\n  user:\n    token: {TOKEN}\ncontexts:\n- name: fleet\n  context:\n    cluster: fleet\n    user: fleet-bench\n\
         current-context: fleet\n",
        ca = ca_file.display()
    );
    std::fs::write(path, text)?;
    Ok(())
}
