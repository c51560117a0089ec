//! Inventory memory and publish cost at upstream's tested scale (5,000 nodes × 30 pods), fed
//! through the cluster inventory's own path: Node/Pod JSON → `LeanNode`/`LeanPod` →
//! watcher events → [`Mirror`] (the persistent maps `ClusterInventory` publishes).
//!
//! RSS is the measure, so this is a plain `main` that prints numbers: resident set growth
//! (`/proc/self/status` VmRSS) over building the inventory, per node and per pod; the time to
//! decode and apply a full list; and the time to apply one pod change and publish a snapshot,
//! at two fleet sizes to show it grows as O(log n), not O(n). Objects come from a seeded
//! generator with realistic names and labels; each is generated just before it is decoded, so
//! the JSON is transient and the growth is what the inventory keeps.
//!
//! Run: `cargo bench --bench inventory` (add `-- --quick` for 500 nodes only).

use std::error::Error;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::runtime::watcher::Event;
use metrics_server_rs::inventory::lean::{LeanNode, LeanPod};
use metrics_server_rs::inventory::mirror::Mirror;
use metrics_server_rs::inventory::Snapshot;

const SEED: u64 = 0x1_5eed_c1a5;
const PODS_PER_NODE: usize = 30;
/// Timed single-pod changes per scenario.
const CHANGES: usize = 20_000;

/// Deployments by namespace, as a mid-sized company's cluster might run them.
const WORKLOADS: [(&str, &[&str]); 8] = [
    (
        "shop",
        &["web-frontend", "checkout", "cart", "catalog-api", "search-indexer"],
    ),
    ("payments", &["payments-api", "fraud-scoring", "ledger-writer"]),
    ("identity", &["auth", "session-store-proxy", "user-profile"]),
    (
        "data",
        &["kafka-connect", "etl-scheduler", "events-ingest", "clickhouse-proxy"],
    ),
    (
        "notifications",
        &["notification-worker", "email-sender", "push-gateway"],
    ),
    ("ml", &["recommendations", "feature-store", "model-server"]),
    (
        "platform",
        &[
            "ingress-nginx-controller",
            "cert-manager",
            "external-dns",
            "argocd-repo-server",
        ],
    ),
    (
        "observability",
        &["prometheus-operator", "loki-gateway", "tempo-distributor"],
    ),
];
/// Per-node DaemonSet pods: (k8s-app, namespace).
const DAEMONS: [(&str, &str); 3] = [
    ("kube-proxy", "kube-system"),
    ("fluent-bit", "logging"),
    ("node-exporter", "observability"),
];

#[allow(clippy::print_stdout, reason = "a report bench: its output is the result")]
fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(nodes) = args.iter().position(|a| a == "--nodes").and_then(|i| args.get(i + 1)) {
        return run(nodes.parse()?);
    }
    // Each size in a fresh process, so one scenario's freed memory does not hide the next's.
    let sizes: &[usize] = if args.iter().any(|a| a == "--quick") {
        &[500]
    } else {
        &[500, 5_000]
    };
    println!("inventory bench: {PODS_PER_NODE} pods per node, seed {SEED:#x}");
    for nodes in sizes {
        let output = std::process::Command::new(std::env::current_exe()?)
            .args(["--nodes", &nodes.to_string()])
            .output()?;
        print!("{}", String::from_utf8_lossy(&output.stdout));
        if !output.status.success() {
            return Err(format!("{nodes} nodes: {}", String::from_utf8_lossy(&output.stderr)).into());
        }
    }
    Ok(())
}

#[allow(clippy::print_stdout, reason = "a report bench: its output is the result")]
fn run(nodes: usize) -> Result<(), Box<dyn Error>> {
    let pods = nodes * PODS_PER_NODE;
    let mut rng = Rng(SEED);
    let node_names: Vec<String> = (0..nodes).map(node_name).collect();
    let start_rss = rss_bytes()?;

    // The first list of nodes, then of pods, as the watcher yields them.
    let mut mirror = Mirror::default();
    let mut decode_apply = Duration::ZERO;
    mirror.apply_node_event(Event::Init);
    for (i, name) in node_names.iter().enumerate() {
        let json = node_json(name, i, &mut rng);
        let started = Instant::now();
        let node: LeanNode = serde_json::from_str(&json)?;
        mirror.apply_node_event(Event::InitApply(node));
        decode_apply += started.elapsed();
    }
    mirror.apply_node_event(Event::InitDone);
    let nodes_rss = rss_bytes()?;
    mirror.apply_pod_event(Event::Init);
    let mut sample_pods = Vec::new();
    for (i, node) in node_names.iter().enumerate() {
        // One node's worth at a time: the JSON for 30 pods, decoded and applied.
        let batch: Vec<String> = (0..PODS_PER_NODE).map(|p| pod_json(node, i, p, &mut rng)).collect();
        let started = Instant::now();
        for json in &batch {
            let pod: LeanPod = serde_json::from_str(json)?;
            mirror.apply_pod_event(Event::InitApply(pod));
        }
        decode_apply += started.elapsed();
        if i % (nodes / 100).max(1) == 0 {
            sample_pods.push(batch[0].clone());
        }
    }
    mirror.apply_pod_event(Event::InitDone);
    let mut published = Arc::new(mirror.snapshot());
    let pods_rss = rss_bytes()?;
    assert_eq!((published.nodes.len(), published.pod_count()), (nodes, pods));

    // Steady state: one pod relabelled (as a rollout or a label edit does), then a publish.
    let mut changes = Vec::with_capacity(CHANGES);
    for i in 0..CHANGES {
        let json = &sample_pods[i % sample_pods.len()];
        let relabelled = json.replace(
            "\"pod-template-hash\"",
            &format!("\"bench/change-{}\":\"x\",\"pod-template-hash\"", i % 7),
        );
        changes.push(serde_json::from_str::<LeanPod>(&relabelled)?);
    }
    let started = Instant::now();
    for pod in changes {
        mirror.apply_pod_event(Event::Apply(pod));
        published = Arc::new(mirror.snapshot());
    }
    let per_change = started.elapsed() / CHANGES as u32;
    black_box(&published);
    let publish_only = time_publish(&mirror);

    let mib = |b: i64| b as f64 / (1 << 20) as f64;
    let node_growth = nodes_rss as i64 - start_rss as i64;
    let pod_growth = pods_rss as i64 - nodes_rss as i64;
    println!("\n== {nodes} nodes × {PODS_PER_NODE} pods = {pods} pods");
    println!(
        "RSS growth: nodes {:.1} MiB ({} B/node), pods {:.1} MiB ({} B/pod), total {:.1} MiB",
        mib(node_growth),
        node_growth / nodes as i64,
        mib(pod_growth),
        pod_growth / pods as i64,
        mib(node_growth + pod_growth)
    );
    println!(
        "first list: decode + apply {:.0} ms ({:.2} µs/object)",
        decode_apply.as_secs_f64() * 1e3,
        decode_apply.as_secs_f64() * 1e6 / (nodes + pods) as f64
    );
    println!(
        "one pod change, applied and published: {:.2} µs (the publish alone, a snapshot clone: {:.0} ns)",
        per_change.as_secs_f64() * 1e6,
        publish_only.as_secs_f64() * 1e9
    );
    Ok(())
}

/// The publish step alone: two persistent-map clones into a new `Arc<Snapshot>`.
fn time_publish(mirror: &Mirror) -> Duration {
    let rounds = 100_000u32;
    let started = Instant::now();
    for _ in 0..rounds {
        let snapshot: Arc<Snapshot> = Arc::new(mirror.snapshot());
        black_box(snapshot);
    }
    started.elapsed() / rounds
}

fn rss_bytes() -> Result<u64, Box<dyn Error>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS in /proc/self/status")?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib * 1024)
}

/// A small deterministic generator (splitmix64), so every run builds the same fleet.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Kubernetes' name suffix alphabet (no vowels, no confusable digits).
    fn suffix(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..len).map(|_| ALPHABET[self.below(ALPHABET.len())] as char).collect()
    }
}

/// Unique, EC2-style: one /16 per 65,536 nodes.
fn node_name(index: usize) -> String {
    let (a, b, c) = (index >> 16, (index >> 8) & 0xff, index & 0xff);
    format!("ip-10-{a}-{b}-{c}.eu-west-1.compute.internal")
}

/// A DaemonSet pod's 5-character suffix, unique per node (27^5 > 14M nodes).
fn node_suffix(index: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .scan(index, |rest, _| {
            let c = ALPHABET[*rest % ALPHABET.len()] as char;
            *rest /= ALPHABET.len();
            Some(c)
        })
        .collect()
}

fn node_json(name: &str, index: usize, rng: &mut Rng) -> String {
    let zone = ["eu-west-1a", "eu-west-1b", "eu-west-1c"][index % 3];
    let pool = ["general-m6i", "memory-r6i", "compute-c6i", "spot-mixed"][rng.below(4)];
    let ip = name
        .trim_start_matches("ip-")
        .split('.')
        .next()
        .unwrap_or("")
        .replace('-', ".");
    format!(
        r#"{{"apiVersion":"v1","kind":"Node","metadata":{{"name":"{name}","uid":"{uid}","resourceVersion":"{rv}",
"creationTimestamp":"2025-01-10T08:00:00Z","labels":{{"beta.kubernetes.io/arch":"amd64","beta.kubernetes.io/os":"linux",
"kubernetes.io/arch":"amd64","kubernetes.io/hostname":"{name}","kubernetes.io/os":"linux",
"node.kubernetes.io/instance-type":"m6i.2xlarge","topology.kubernetes.io/region":"eu-west-1",
"topology.kubernetes.io/zone":"{zone}","karpenter.sh/nodepool":"{pool}","karpenter.sh/capacity-type":"on-demand"}},
"annotations":{{"node.alpha.kubernetes.io/ttl":"0","volumes.kubernetes.io/controller-managed-attach-detach":"true"}},
"managedFields":[{{"manager":"kubelet","operation":"Update","apiVersion":"v1","fieldsType":"FieldsV1",
"fieldsV1":{{"f:status":{{"f:addresses":{{}},"f:allocatable":{{}},"f:capacity":{{}},"f:conditions":{{}}}}}}}}]}},
"spec":{{"providerID":"aws:///{zone}/i-0{rv:016x}","podCIDR":"10.244.{b}.0/24"}},
"status":{{"capacity":{{"cpu":"8","memory":"32329356Ki","pods":"58"}},"allocatable":{{"cpu":"7910m","memory":"31312524Ki","pods":"58"}},
"conditions":[{{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status"}}],
"addresses":[{{"type":"InternalIP","address":"{ip}"}},{{"type":"InternalDNS","address":"{name}"}},{{"type":"Hostname","address":"{name}"}}],
"daemonEndpoints":{{"kubeletEndpoint":{{"Port":10250}}}},
"nodeInfo":{{"kubeletVersion":"v1.33.1","containerRuntimeVersion":"containerd://2.1.1","osImage":"Amazon Linux 2023"}}}}}}"#,
        uid = rng.next(),
        rv = rng.next() >> 20,
        b = index % 256,
    )
}

fn pod_json(node: &str, node_index: usize, slot: usize, rng: &mut Rng) -> String {
    let (namespace, name, labels) = if slot < DAEMONS.len() {
        let (app, namespace) = DAEMONS[slot];
        let labels =
            format!(r#""k8s-app":"{app}","controller-revision-hash":"6b8d7c9f5","pod-template-generation":"3""#);
        (
            namespace.to_owned(),
            format!("{app}-{}", node_suffix(node_index)),
            labels,
        )
    } else {
        let (namespace, deployments) = WORKLOADS[rng.below(WORKLOADS.len())];
        let deployment = deployments[rng.below(deployments.len())];
        let hash = rng.suffix(10);
        let mut labels = format!(
            r#""app.kubernetes.io/name":"{deployment}","app.kubernetes.io/instance":"{deployment}-prod","pod-template-hash":"{hash}""#
        );
        // 3 to 5 labels, as Helm charts and Deployments commonly set.
        if rng.below(2) == 0 {
            labels += r#","app.kubernetes.io/component":"server""#;
        }
        if rng.below(3) == 0 {
            labels += &format!(
                r#","app.kubernetes.io/version":"1.{}.{}""#,
                rng.below(20),
                rng.below(10)
            );
        }
        (
            namespace.to_owned(),
            format!("{deployment}-{hash}-{}", rng.suffix(5)),
            labels,
        )
    };
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"{namespace}","uid":"{uid:x}",
"resourceVersion":"{rv}","creationTimestamp":"2025-03-0{day}T10:00:00Z","labels":{{{labels}}},
"annotations":{{"kubectl.kubernetes.io/restartedAt":"2025-03-01T09:00:00Z"}},
"ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"u","controller":true}}],
"managedFields":[{{"manager":"kube-controller-manager","operation":"Update","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{{"f:metadata":{{}}}}}}]}},
"spec":{{"nodeName":"{node}","serviceAccountName":"default","containers":[{{"name":"app","image":"registry.example.com/{namespace}/app:1.4.2",
"ports":[{{"containerPort":8080,"protocol":"TCP"}}],"env":[{{"name":"LOG_LEVEL","value":"info"}}],
"resources":{{"requests":{{"cpu":"250m","memory":"256Mi"}},"limits":{{"memory":"512Mi"}}}}}}]}},
"status":{{"phase":"Running","podIP":"10.244.{b}.{c}","qosClass":"Burstable","startTime":"2025-03-01T10:00:05Z",
"containerStatuses":[{{"name":"app","ready":true,"restartCount":0,"image":"registry.example.com/app:1.4.2","started":true}}]}}}}"#,
        uid = rng.next(),
        rv = rng.next() >> 20,
        day = 1 + slot % 9,
        b = node_index % 256,
        c = slot + 2,
    )
}
