//! Assembles the pipeline: kubelet client → scraper pool → store → metrics API → generic
//! server, with the health checks and self-metrics that tie them together. `main` builds an
//! [`App`] from flags; tests build one directly and drive scrape cycles by hand.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::TcpListener;

use crate::api::{MetricsApi, GROUP, VERSIONS};
use crate::apiserver::discovery::{self, ApiGroup, ApiResource, ApiVersion, Discovery};
use crate::apiserver::{health, tls, Delegation, HealthChecks, Limits, MetricsText, Server, TlsOptions, TlsVersion};
use crate::diagnosis::{Diagnosis, WithDiagnosis, DEBUG_SCRAPES_PATH};
use crate::inventory::selector::LabelSelector;
use crate::inventory::Inventory;
use crate::kubelet::address::AddressResolver;
use crate::kubelet::client::{self, ClientConfig, KubeletClient};
use crate::scrape::schedule::TickClock;
use crate::scrape::status::ScrapeStatus;
use crate::scrape::thread::ScrapeThread;
use crate::scrape::{Scraper, ScraperConfig};
use crate::store::Store;
use crate::telemetry::{PointCounts, Telemetry};

/// How the HTTPS endpoint is served.
#[derive(Debug, Clone)]
pub struct ServingConfig {
    pub bind: SocketAddr,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub cert_dir: PathBuf,
    pub tls_min_version: TlsVersion,
    /// `--tls-cipher-suites`, mapped; `None` for the defaults.
    pub tls_cipher_suites: Option<Vec<rustls::SupportedCipherSuite>>,
    pub http2: bool,
    /// Delegated authentication and authorization; `None` admits everyone (sandbox, tests).
    pub auth: Option<Arc<Delegation>>,
    /// In-flight, size, stall and shutdown bounds of the server.
    pub limits: Limits,
}

/// Everything the pipeline needs besides the inventory.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub resolution: Duration,
    pub request_timeout: Duration,
    pub max_concurrent_scrapes: usize,
    pub node_selector: LabelSelector,
    pub addresses: AddressResolver,
    pub kubelet: ClientConfig,
    pub serving: ServingConfig,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("building the kubelet client")]
    Kubelet(#[from] client::BuildError),
    #[error("registering health checks")]
    Health(#[from] health::Error),
    #[error("describing the API for discovery")]
    Discovery(#[from] discovery::Error),
    #[error("loading the serving certificate")]
    Tls(#[from] tls::Error),
    #[error("listening on {address}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A built, not yet running, server.
#[derive(Debug)]
pub struct App {
    pub store: Arc<Store>,
    pub telemetry: Arc<Telemetry>,
    pub scrape_status: Arc<ScrapeStatus>,
    pub scraper: Arc<Scraper>,
    pub server: Arc<Server>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    serving_cert_file: PathBuf,
}

impl App {
    /// Builds every stage and binds the listener (port 0 picks a free port).
    pub async fn build(config: AppConfig, inventory: Arc<dyn Inventory>) -> Result<App, Error> {
        let resolution = config.resolution;
        // A node's data survives one failed scrape and goes stale after two (upstream blanks
        // it at once, which flaps HPAs on a single slow kubelet).
        let store = Arc::new(Store::new(resolution, resolution * 2));
        let telemetry = Arc::new(Telemetry::new(resolution));
        let scrape_status = Arc::new(ScrapeStatus::default());
        let ticks = Arc::new(TickClock::default());
        let scraper = Arc::new(Scraper::new(
            ScraperConfig {
                resolution,
                request_timeout: config.request_timeout,
                max_concurrent: config.max_concurrent_scrapes,
                node_selector: config.node_selector.clone(),
            },
            inventory.clone(),
            KubeletClient::new(&config.kubelet)?,
            config.addresses.clone(),
            store.clone(),
            telemetry.clone(),
            scrape_status.clone(),
            ticks.clone(),
        ));
        let mut server = router(Pipeline {
            inventory,
            store: store.clone(),
            telemetry: telemetry.clone(),
            scrape_status: scrape_status.clone(),
            ticks,
            node_selector: config.node_selector,
            resolution,
        })?
        .with_limits(config.serving.limits.clone());
        if let Some(auth) = &config.serving.auth {
            server = server.with_auth(auth.clone());
        }
        let server = Arc::new(server);

        let serving = &config.serving;
        let alt_names: Vec<String> = if serving.bind.ip().is_unspecified() {
            Vec::new()
        } else {
            vec![serving.bind.ip().to_string()]
        };
        let pair = tls::load_or_generate(
            serving.cert_file.as_deref(),
            serving.key_file.as_deref(),
            &serving.cert_dir,
            &alt_names,
        )?;
        let tls = tls::serving_config(
            &pair,
            &TlsOptions {
                min_version: serving.tls_min_version,
                cipher_suites: serving.tls_cipher_suites.clone(),
                http2: serving.http2,
                // Client certificates identify users and front proxies only when auth is on.
                request_client_certs: serving.auth.is_some(),
                reload_interval: Some(tls::DEFAULT_RELOAD_INTERVAL),
            },
        )?;
        let listener = TcpListener::bind(serving.bind).await.map_err(|source| Error::Bind {
            address: serving.bind,
            source,
        })?;
        let serving_cert_file = pair.cert_file().to_owned();
        Ok(App {
            store,
            telemetry,
            scrape_status,
            scraper,
            server,
            listener,
            tls,
            serving_cert_file,
        })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// The serving certificate file (generated into `--cert-dir` unless given).
    pub fn serving_cert_file(&self) -> &std::path::Path {
        &self.serving_cert_file
    }

    /// Serves HTTPS only; scrapes happen when the caller runs cycles (tests).
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        self.server.serve(self.listener, self.tls, shutdown).await
    }

    /// Scrapes every resolution period (on the scraper's own thread, [`ScrapeThread`]) and
    /// serves until `shutdown`, then drains in-flight requests and stops scraping.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        self.run_after(std::future::ready(()), shutdown).await
    }

    /// Like [`run`](Self::run), but the first scrape cycle waits for `scrape_from` (cluster
    /// mode: the inventory's first sync, as upstream starts its ticker only once the informers
    /// have synced; a cycle over an empty inventory would waste one of the two immediate
    /// cycles readiness needs). Serving starts at once, with `/readyz` failing meanwhile.
    pub async fn run_after(
        self,
        scrape_from: impl Future<Output = ()> + Send + 'static,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let scraping = ScrapeThread::start(self.scraper.clone(), scrape_from)?;
        let served = self.server.serve(self.listener, self.tls, shutdown).await;
        drop(scraping);
        served
    }
}

/// What the routes read: the pipeline's shared state.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub inventory: Arc<dyn Inventory>,
    pub store: Arc<Store>,
    pub telemetry: Arc<Telemetry>,
    pub scrape_status: Arc<ScrapeStatus>,
    pub ticks: Arc<TickClock>,
    pub node_selector: LabelSelector,
    pub resolution: Duration,
}

/// Every route of the server over `pipeline`, without TLS, listener or authorization:
/// [`App::build`] serves it, and `fuzz/` drives [`Server::route`] on it in-process.
pub fn router(pipeline: Pipeline) -> Result<Server, Error> {
    let Pipeline {
        inventory,
        store,
        telemetry,
        scrape_status,
        ticks,
        node_selector,
        resolution,
    } = pipeline;
    let api = Arc::new(
        MetricsApi::new(
            inventory.clone(),
            store.clone(),
            telemetry.clone(),
            node_selector.clone(),
        )
        .with_list_all_idle(2 * resolution),
    );
    let diagnosis = Arc::new(Diagnosis::new(
        scrape_status,
        inventory,
        store.clone(),
        node_selector,
        resolution,
    ));
    let health = health_checks(diagnosis.clone(), ticks, resolution)?;
    let metrics_text: MetricsText = Arc::new(move || {
        let points = store.points();
        telemetry.encode(PointCounts {
            nodes: points.nodes,
            containers: points.containers,
        })
    });
    Ok(Server::new(
        health,
        Discovery::new(vec![api_group()])?,
        version_json(),
        metrics_text,
        Arc::new(WithDiagnosis { inner: api, diagnosis }),
    )
    .with_listed_paths(MetricsApi::listed_paths())
    .with_listed_paths([DEBUG_SCRAPES_PATH.to_owned()]))
}

/// Upstream's checks, with its names and messages, in its order (see the spec §3.10); the
/// readyz checks append why they fail ([`Diagnosis`]).
fn health_checks(
    diagnosis: Arc<Diagnosis>,
    ticks: Arc<TickClock>,
    resolution: Duration,
) -> Result<HealthChecks, health::Error> {
    let storage = diagnosis.clone();
    HealthChecks::builder()
        .readyz("metric-storage-ready", move || storage.storage_check())
        // Upstream's messages: the node informer is checked first, then the pod informer.
        .readyz("metric-informer-sync", move || diagnosis.informer_check())
        .livez("metric-collection-timely", move || {
            if ticks.is_timely(Instant::now(), resolution) {
                Ok(())
            } else {
                Err("metric collection didn't finish on time".to_owned())
            }
        })
        // Upstream's check always passes (its informer factory is never started); liveness must
        // not fail while the inventory syncs, or a slow API server turns into a crash loop.
        .all("metadata-informer-sync", || Ok(()))
        .build()
}

/// `metrics.k8s.io` as discovery lists it: nodes and pods, get and list, no singular names.
fn api_group() -> ApiGroup {
    let resource = |name: &str, namespaced, kind: &str| ApiResource {
        name: name.to_owned(),
        singular_name: String::new(),
        namespaced,
        kind: kind.to_owned(),
        verbs: vec!["get".to_owned(), "list".to_owned()],
    };
    ApiGroup {
        name: GROUP.to_owned(),
        versions: VERSIONS
            .iter()
            .map(|v| ApiVersion {
                version: (*v).to_owned(),
                resources: vec![
                    resource("nodes", false, "NodeMetrics"),
                    resource("pods", true, "PodMetrics"),
                ],
            })
            .collect(),
        preferred_version: VERSIONS[0].to_owned(),
    }
}

/// `/version`: this server's own version, in the shape of Kubernetes' `version.Info`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionInfo {
    major: &'static str,
    minor: &'static str,
    git_version: String,
    git_commit: &'static str,
    git_tree_state: &'static str,
    build_date: &'static str,
    go_version: &'static str,
    compiler: &'static str,
    platform: String,
}

fn version_json() -> Vec<u8> {
    let info = VersionInfo {
        major: env!("CARGO_PKG_VERSION_MAJOR"),
        minor: env!("CARGO_PKG_VERSION_MINOR"),
        git_version: concat!("v", env!("CARGO_PKG_VERSION")).to_owned(),
        git_commit: option_env!("METRICS_SERVER_GIT_COMMIT").unwrap_or(""),
        git_tree_state: "",
        build_date: option_env!("METRICS_SERVER_BUILD_DATE").unwrap_or(""),
        go_version: "",
        compiler: "rustc",
        platform: format!("{}/{}", std::env::consts::OS, go_arch()),
    };
    serde_json::to_vec_pretty(&info).unwrap_or_default()
}

/// Go's GOARCH names, which clients expect in `platform`.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}
