//! The simulated cluster's workloads: nodes, pods and containers whose CPU and memory follow
//! smooth, deterministic curves of wall-clock time, so any kubelet response can be computed
//! statelessly at any moment and counters only ever move forward.

use std::f64::consts::TAU;

use super::exposition::{SimContainer, SimNode};
use crate::inventory::{Labels, NodeAddress, NodeInfo, PodInfo};

/// A container's usage curve: CPU rate `base × (1 + swing × sin(2πt/period + phase))` cores,
/// memory `memory × (1 + 0.1 × sin(…))` bytes.
#[derive(Debug, Clone)]
pub struct Workload {
    pub base_cores: f64,
    pub swing: f64,
    pub period_seconds: f64,
    pub phase: f64,
    pub memory_bytes: f64,
}

impl Workload {
    /// Cumulative CPU seconds `t` seconds after the fleet's epoch (the integral of the rate).
    pub fn cpu_seconds(&self, t: f64) -> f64 {
        let w = TAU / self.period_seconds;
        self.base_cores * (t + self.swing / w * (self.phase.cos() - (w * t + self.phase).cos()))
    }

    pub fn memory_bytes(&self, t: f64) -> f64 {
        let w = TAU / self.period_seconds;
        (self.memory_bytes * (1.0 + 0.1 * (w * t + self.phase).sin())).floor()
    }
}

#[derive(Debug, Clone)]
pub struct SimPod {
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub containers: Vec<(String, Workload)>,
}

#[derive(Debug, Clone)]
pub struct SimulatedNode {
    pub name: String,
    pub labels: Labels,
    pub pods: Vec<SimPod>,
    /// Usage of the node outside its pods (system daemons, kernel).
    pub system: Workload,
}

/// The whole simulated cluster.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// Unix seconds at which every counter was zero.
    pub epoch_seconds: f64,
    pub nodes: Vec<SimulatedNode>,
}

/// SplitMix64: a tiny, seeded generator, so the same seed always builds the same fleet.
#[derive(Debug)]
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
    fn suffix(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..len)
            .map(|_| ALPHABET[(self.next() % ALPHABET.len() as u64) as usize] as char)
            .collect()
    }
}

/// Two containers per pod on average (a service-mesh sidecar is common), as the fleet bench's
/// brief specifies: 30 pods × 2 containers per node.
const APPS: [(&str, &str, &[&str]); 6] = [
    ("default", "web", &["app", "istio-proxy"]),
    ("default", "api", &["api", "istio-proxy"]),
    ("shop", "checkout", &["checkout", "istio-proxy"]),
    ("shop", "cart", &["cart", "istio-proxy"]),
    ("kube-system", "coredns", &["coredns"]),
    (
        "monitoring",
        "prometheus",
        &["prometheus", "config-reloader", "thanos-sidecar"],
    ),
];

impl Fleet {
    /// `nodes` nodes with `pods_per_node` pods each, drawn from a few realistic apps.
    pub fn generate(nodes: usize, pods_per_node: usize, seed: u64, epoch_seconds: f64) -> Fleet {
        let mut rng = Seeded(seed);
        let workload = |rng: &mut Seeded, cores: f64, mib: f64| Workload {
            base_cores: cores * (0.5 + rng.unit()),
            swing: 0.2 + 0.6 * rng.unit(),
            period_seconds: 120.0 + 480.0 * rng.unit(),
            phase: TAU * rng.unit(),
            memory_bytes: mib * 1_048_576.0 * (0.5 + rng.unit()),
        };
        let nodes = (0..nodes)
            .map(|n| {
                let name = format!("sandbox-node-{n}");
                let pods = (0..pods_per_node)
                    .map(|_| {
                        let (namespace, app, containers) = APPS[(rng.next() % APPS.len() as u64) as usize];
                        let name = format!("{app}-{}-{}", rng.suffix(9), rng.suffix(5));
                        let mut labels = Labels::new();
                        labels.insert("app", app);
                        labels.insert("tier", rng.pick(&["frontend", "backend"]));
                        let containers = containers
                            .iter()
                            .map(|c| ((*c).to_owned(), workload(&mut rng, 0.15, 96.0)))
                            .collect();
                        SimPod {
                            namespace: namespace.into(),
                            name,
                            labels,
                            containers,
                        }
                    })
                    .collect();
                let mut labels = Labels::new();
                labels.insert("kubernetes.io/hostname", name.clone());
                labels.insert("kubernetes.io/os", "linux");
                let system = workload(&mut rng, 0.2, 900.0);
                SimulatedNode {
                    name,
                    labels,
                    pods,
                    system,
                }
            })
            .collect();
        Fleet { epoch_seconds, nodes }
    }

    /// What `node`'s kubelet reports at `now` (Unix seconds). Containers started when the fleet did.
    pub fn sample(&self, node: &SimulatedNode, now_seconds: f64) -> SimNode {
        let t = (now_seconds - self.epoch_seconds).max(0.0);
        let mut containers: Vec<SimContainer> = node
            .pods
            .iter()
            .flat_map(|pod| {
                pod.containers.iter().map(move |(name, w)| SimContainer {
                    namespace: pod.namespace.clone(),
                    pod: pod.name.clone(),
                    container: name.clone(),
                    start_time_seconds: self.epoch_seconds,
                    cpu_seconds: w.cpu_seconds(t),
                    memory_bytes: w.memory_bytes(t),
                })
            })
            .collect();
        containers.sort_by(|a, b| (&a.namespace, &a.pod, &a.container).cmp(&(&b.namespace, &b.pod, &b.container)));
        SimNode {
            cpu_seconds: node.system.cpu_seconds(t) + containers.iter().map(|c| c.cpu_seconds).sum::<f64>(),
            memory_bytes: node.system.memory_bytes(t) + containers.iter().map(|c| c.memory_bytes).sum::<f64>(),
            containers,
        }
    }

    /// The inventory view of the fleet, with each node's kubelet at `127.0.0.1:<port>`.
    pub fn inventory(&self, kubelet_ports: &[u16]) -> (Vec<NodeInfo>, Vec<PodInfo>) {
        let nodes = self
            .nodes
            .iter()
            .zip(kubelet_ports)
            .map(|(n, port)| NodeInfo {
                name: n.name.clone(),
                labels: n.labels.clone(),
                addresses: vec![
                    NodeAddress {
                        address_type: "InternalIP".into(),
                        address: "127.0.0.1".into(),
                    },
                    NodeAddress {
                        address_type: "Hostname".into(),
                        address: n.name.clone(),
                    },
                ],
                kubelet_status_port: *port,
            })
            .collect();
        let pods = self
            .nodes
            .iter()
            .flat_map(|n| {
                n.pods.iter().map(|p| PodInfo {
                    namespace: p.namespace.as_str().into(),
                    name: p.name.as_str().into(),
                    labels: p.labels.clone(),
                    node_name: n.name.as_str().into(),
                })
            })
            .collect();
        (nodes, pods)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_only_move_forward_and_rates_stay_near_the_base() {
        let w = Workload {
            base_cores: 0.5,
            swing: 0.8,
            period_seconds: 120.0,
            phase: 1.0,
            memory_bytes: 1e8,
        };
        let mut last = w.cpu_seconds(0.0);
        assert_eq!(last, 0.0);
        for step in 1..=600 {
            let now = w.cpu_seconds(step as f64);
            assert!(now >= last);
            let rate = now - last;
            assert!((0.0..=0.5 * 1.8 + 1e-9).contains(&rate));
            last = now;
        }
        // Over whole periods the average rate is the base.
        assert!((w.cpu_seconds(1200.0) / 1200.0 - 0.5).abs() < 1e-9);
    }

    #[test]
    fn the_same_seed_builds_the_same_fleet() {
        let a = Fleet::generate(3, 4, 7, 1.7e9);
        let b = Fleet::generate(3, 4, 7, 1.7e9);
        let names = |f: &Fleet| {
            f.nodes
                .iter()
                .flat_map(|n| n.pods.iter().map(|p| p.name.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&a), names(&b));
        assert_eq!(names(&a).len(), 12);
        let sample = a.sample(&a.nodes[0], 1.7e9 + 60.0);
        assert!(sample
            .containers
            .windows(2)
            .all(|w| (&w[0].namespace, &w[0].pod, &w[0].container) <= (&w[1].namespace, &w[1].pod, &w[1].container)));
        assert!(sample.cpu_seconds > sample.containers.iter().map(|c| c.cpu_seconds).sum::<f64>());
    }
}
