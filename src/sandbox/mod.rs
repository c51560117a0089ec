//! The sandbox: a simulated cluster for the one-command demo. Simulated kubelets serve
//! realistic `/metrics/resource` bodies over real HTTPS on loopback, each on its own port,
//! with certificates from a throwaway CA and a bearer token; a fixed inventory lists their
//! nodes and pods. The real scraper, store and API run unchanged against it.

pub mod exposition;
pub mod fleet;
pub mod kubelet_server;
pub mod pki;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::StatusCode;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::inventory::fixed::FixedInventory;
use crate::inventory::Snapshot;
use fleet::Fleet;
use kubelet_server::{KubeletReply, Responder};

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("creating the sandbox certificate authority")]
    Pki(#[from] rcgen::Error),
    #[error("loading the sandbox kubelet certificate")]
    Pem(#[from] rustls_pki_types::pem::Error),
    #[error("configuring TLS for sandbox kubelets")]
    Tls(#[from] rustls::Error),
    #[error("binding a sandbox kubelet on 127.0.0.1")]
    Bind(#[source] std::io::Error),
}

/// A running simulated cluster.
#[derive(Debug)]
pub struct Sandbox {
    pub fleet: Arc<Fleet>,
    pub inventory: Arc<FixedInventory>,
    /// The CA that signed every simulated kubelet's serving certificate.
    pub kubelet_ca_pem: String,
    /// The bearer token the simulated kubelets demand.
    pub kubelet_token: String,
    kubelets: Vec<JoinHandle<()>>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for kubelet in &self.kubelets {
            kubelet.abort();
        }
    }
}

impl Sandbox {
    /// Starts `nodes` simulated kubelets with `pods_per_node` pods each.
    pub async fn start(nodes: usize, pods_per_node: usize) -> Result<Sandbox, SandboxError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        // Counters start an hour back, as on a cluster that has been up a while.
        let fleet = Arc::new(Fleet::generate(nodes, pods_per_node, 0x5eed, now - 3600.0));
        let ca = pki::TestCa::new("metrics-server-rs sandbox kubelet CA")?;
        let leaf = ca.issue("sandbox-kubelet", &["127.0.0.1", "localhost"])?;
        let tls = kubelet_tls(&leaf.cert_pem, &leaf.key_pem)?;
        let token = "sandbox-kubelet-token".to_owned();

        let mut ports = Vec::with_capacity(nodes);
        let mut kubelets = Vec::with_capacity(nodes);
        for index in 0..fleet.nodes.len() {
            let listener = TcpListener::bind("127.0.0.1:0").await.map_err(SandboxError::Bind)?;
            ports.push(listener.local_addr().map_err(SandboxError::Bind)?.port());
            let respond = simulated_kubelet(fleet.clone(), index, format!("Bearer {token}"));
            kubelets.push(tokio::spawn(kubelet_server::serve(listener, tls.clone(), respond)));
        }
        let (node_infos, pod_infos) = fleet.inventory(&ports);
        let inventory = Arc::new(FixedInventory::new(Snapshot::from_parts(node_infos, pod_infos)));
        Ok(Sandbox {
            fleet,
            inventory,
            kubelet_ca_pem: ca.cert_pem(),
            kubelet_token: token,
            kubelets,
        })
    }
}

/// A TLS acceptor serving one certificate (HTTP/1.1, as kubelets are scraped).
pub fn kubelet_tls(cert_pem: &str, key_pem: &str) -> Result<TlsAcceptor, SandboxError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn simulated_kubelet(fleet: Arc<Fleet>, index: usize, expected_auth: String) -> Responder {
    Arc::new(move |path, auth| {
        if path != "/metrics/resource" {
            return KubeletReply {
                status: StatusCode::NOT_FOUND,
                body: b"404 page not found\n".to_vec(),
            };
        }
        if auth != Some(expected_auth.as_str()) {
            return KubeletReply {
                status: StatusCode::UNAUTHORIZED,
                body: b"Unauthorized".to_vec(),
            };
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let sample = fleet.sample(&fleet.nodes[index], now.as_secs_f64());
        let mut body = Vec::with_capacity(16 * 1024);
        exposition::render_resource_metrics(&sample, now.as_millis() as i64, &mut body);
        KubeletReply {
            status: StatusCode::OK,
            body,
        }
    })
}
