//! `metrics-server`: parse flags, build the pipeline, serve until SIGTERM, exit.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

use metrics_server_rs::apiserver::cache::system_clock;
use metrics_server_rs::apiserver::delegation::delegated_client;
use metrics_server_rs::apiserver::{Delegation, TlsVersion};
use metrics_server_rs::app::{App, AppConfig, ServingConfig};
use metrics_server_rs::cli::Flags;
use metrics_server_rs::inventory::cluster::ClusterInventory;
use metrics_server_rs::inventory::selector::LabelSelector;
use metrics_server_rs::kubelet::address::AddressResolver;
use metrics_server_rs::kubelet::client::{BearerToken, ClientConfig, Secret, ServerVerification};
use metrics_server_rs::kubelet::credentials::{self, ClientLimits, KubeletTlsFlags};
use metrics_server_rs::kubelet::open_files;
use metrics_server_rs::sandbox::Sandbox;

/// See Cargo.toml for why the allocator is mimalloc. The `system-allocator` feature leaves the
/// C library's malloc in place, so heap profilers that interpose malloc (valgrind's massif and
/// DHAT, heaptrack) see every allocation.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The sandbox serves here unless `--secure-port` says otherwise (443 needs root).
const SANDBOX_PORT: u16 = 8443;

fn main() -> ExitCode {
    let matches = Flags::command().get_matches();
    let mut flags = match Flags::from_arg_matches(&matches) {
        Ok(flags) => flags,
        Err(error) => error.exit(),
    };
    if flags.sandbox {
        let explicit = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        apply_sandbox_defaults(&mut flags, explicit);
    }
    init_tracing(flags.verbosity);
    raise_open_file_limit();
    // Upstream prints only the first validation error.
    if let Some(first) = flags.validate().first() {
        eprintln!("Error: {first}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("Error: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {}", error_chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// Every kept kubelet connection is a descriptor: run with the hard limit, as upstream (a Go
/// program) does.
fn raise_open_file_limit() {
    match open_files::raise_to_hard_limit() {
        Ok(raised) if raised.before != raised.after => tracing::info!(
            before = ?raised.before,
            after = ?raised.after,
            "raised the open-file limit to its hard limit"
        ),
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(%error, limit = ?open_files::soft_limit(), "could not raise the open-file limit to its hard limit")
        }
    }
}

/// A demo should show numbers within seconds, on loopback, without root.
fn apply_sandbox_defaults(flags: &mut Flags, explicit: impl Fn(&str) -> bool) {
    if !explicit("metric_resolution") {
        flags.metric_resolution = Duration::from_secs(10);
    }
    if !explicit("kubelet_request_timeout") {
        flags.kubelet_request_timeout.magnitude = Duration::from_secs(5);
    }
    if !explicit("secure_port") {
        flags.secure_port = SANDBOX_PORT;
    }
    if !explicit("bind_address") {
        flags.bind_address = "127.0.0.1".to_owned();
    }
    if !explicit("cert_dir") {
        flags.cert_dir = std::env::temp_dir().join("metrics-server-rs-sandbox");
    }
}

async fn run(flags: Flags) -> Result<(), Box<dyn std::error::Error>> {
    if flags.sandbox {
        run_sandbox(flags).await
    } else {
        run_cluster(flags).await
    }
}

/// The real thing: inventory from the Kubernetes API, kubelets with the cluster's credentials.
async fn run_cluster(flags: Flags) -> Result<(), Box<dyn std::error::Error>> {
    let mut serving = serving_config(&flags)?;
    let kube_config = kube_config(&flags.kubeconfig).await?;
    tracing::info!(server = %kube_config.cluster_url, "Using the Kubernetes API");
    let resolution = flags.metric_resolution;
    let timeout = flags.kubelet_request_timeout.magnitude;
    if flags.deprecated_kubelet_completely_insecure {
        tracing::warn!(
            "--deprecated-kubelet-completely-insecure: kubelets are scraped over plain HTTP without authentication; \
             anyone on the network path can read or forge node metrics"
        );
    }
    let kubelet = credentials::from_kube_config(
        &kube_config,
        &KubeletTlsFlags {
            certificate_authority: flags.kubelet_certificate_authority.clone(),
            client_certificate: flags.kubelet_client_certificate.clone(),
            client_key: flags.kubelet_client_key.clone(),
            insecure_tls: flags.kubelet_insecure_tls,
            completely_insecure: flags.deprecated_kubelet_completely_insecure,
        },
        ClientLimits {
            request_timeout: timeout,
            max_body_bytes: flags.kubelet_max_response_bytes,
            idle_timeout: resolution * 3,
            token_refresh: Duration::from_secs(60),
        },
    )?;
    serving.auth = Some(delegation(&flags).await?);
    let server = kube_config.cluster_url.to_string();
    let client = kube::Client::try_from(kube_config)?;
    let inventory = ClusterInventory::start(client, server);
    let synced = {
        let inventory = inventory.clone();
        async move { inventory.synced().await }
    };
    let config = AppConfig {
        resolution,
        request_timeout: timeout,
        max_concurrent_scrapes: flags.kubelet_max_concurrent_scrapes,
        node_selector: LabelSelector::parse(flags.node_selector.trim())?,
        addresses: AddressResolver::new(
            flags.kubelet_preferred_address_types.clone(),
            flags.kubelet_port,
            flags.kubelet_use_node_status_port,
            flags.deprecated_kubelet_completely_insecure,
        ),
        kubelet,
        serving,
    };
    let app = App::build(config, inventory).await?;
    app.run_after(synced, shutdown_signal()).await?;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Delegated authentication and authorization through their own kubeconfigs (or in-cluster),
/// never `--kubeconfig`, as upstream.
async fn delegation(flags: &Flags) -> Result<Arc<Delegation>, Box<dyn std::error::Error>> {
    let security = &flags.security;
    let authn = delegated_client(&security.authentication_kubeconfig, "--authentication-kubeconfig").await?;
    let authz = delegated_client(&security.authorization_kubeconfig, "--authorization-kubeconfig").await?;
    let delegation = Delegation::start(&security.delegation_options(), authn, authz, system_clock()).await?;
    Ok(Arc::new(delegation))
}

/// `--kubeconfig` if given (that file only, as upstream), else the in-cluster service account.
async fn kube_config(path: &str) -> Result<kube::Config, Box<dyn std::error::Error>> {
    if path.is_empty() {
        return kube::Config::incluster().map_err(|e| {
            format!(
                "no --kubeconfig given and the in-cluster configuration is unusable ({e}); \
                 run inside a pod with a service account, or pass --kubeconfig (or --sandbox for a demo)"
            )
            .into()
        });
    }
    let kubeconfig =
        kube::config::Kubeconfig::read_from(path).map_err(|e| format!("reading --kubeconfig {path}: {e}"))?;
    let options = kube::config::KubeConfigOptions::default();
    Ok(kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| format!("loading --kubeconfig {path}: {e}"))?)
}

/// The demo: a simulated cluster on loopback, authentication off.
async fn run_sandbox(flags: Flags) -> Result<(), Box<dyn std::error::Error>> {
    let serving = serving_config(&flags)?;
    let sandbox = Sandbox::start(flags.sandbox_nodes, flags.sandbox_pods_per_node).await?;
    let resolution = flags.metric_resolution;
    let config = AppConfig {
        resolution,
        request_timeout: flags.kubelet_request_timeout.magnitude,
        max_concurrent_scrapes: flags.kubelet_max_concurrent_scrapes,
        node_selector: LabelSelector::parse(flags.node_selector.trim())?,
        // Each simulated kubelet listens on its own loopback port, reported as the node status port.
        addresses: AddressResolver::new(vec!["InternalIP".to_owned()], flags.kubelet_port, true, false),
        kubelet: ClientConfig {
            verification: ServerVerification::CaPem(sandbox.kubelet_ca_pem.clone().into_bytes()),
            client_cert_pem: None,
            bearer_token: Some(BearerToken::Static(Secret::new(sandbox.kubelet_token.clone()))),
            request_timeout: flags.kubelet_request_timeout.magnitude,
            max_body_bytes: flags.kubelet_max_response_bytes,
            idle_timeout: resolution * 3,
        },
        serving,
    };
    let app = App::build(config, sandbox.inventory.clone()).await?;
    let address = app.local_addr().ok_or("the listener has no local address")?;
    tracing::warn!("sandbox mode: simulated cluster, authentication and authorization are OFF");
    let kubeconfig = flags.cert_dir.join("kubeconfig");
    std::fs::write(&kubeconfig, sandbox_kubeconfig(address, app.serving_cert_file()))
        .map_err(|e| format!("writing {}: {e}", kubeconfig.display()))?;
    print_sandbox_banner(
        address,
        &kubeconfig,
        flags.sandbox_nodes,
        flags.sandbox_pods_per_node,
        resolution,
    );
    app.run(shutdown_signal()).await?;
    tracing::info!("shut down cleanly");
    drop(sandbox);
    Ok(())
}

fn serving_config(flags: &Flags) -> Result<ServingConfig, Box<dyn std::error::Error>> {
    let ip: IpAddr = if flags.bind_address.is_empty() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        flags
            .bind_address
            .parse()
            .map_err(|_| format!("invalid --bind-address {:?}: not an IP address", flags.bind_address))?
    };
    Ok(ServingConfig {
        bind: SocketAddr::new(ip, flags.secure_port),
        cert_file: flags.tls_cert_file.clone(),
        key_file: flags.tls_private_key_file.clone(),
        cert_dir: flags.cert_dir.clone(),
        tls_min_version: flags.tls_min_version.parse::<TlsVersion>()?,
        tls_cipher_suites: flags.security.cipher_suites()?,
        http2: !flags.disable_http2_serving,
        auth: None,
        limits: flags.server_run.limits(),
    })
}

#[allow(clippy::print_stdout, reason = "the sandbox's instructions are its user interface")]
fn print_sandbox_banner(
    address: SocketAddr,
    kubeconfig: &std::path::Path,
    nodes: usize,
    pods_per_node: usize,
    resolution: Duration,
) {
    let url = format!("https://{address}");
    let kc = kubeconfig.display();
    println!(
        "\nmetrics-server sandbox: {nodes} simulated nodes x {pods_per_node} pods, scraped every {}s, serving {url}\n\
         Authentication is OFF (sandbox only). Metrics are ready after two scrapes (within ~{}s).\n\n\
         Try:\n  \
           kubectl --kubeconfig={kc} top pod -A\n  \
           kubectl --kubeconfig={kc} top pod -A --containers\n  \
           kubectl --kubeconfig={kc} get --raw /apis/metrics.k8s.io/v1beta1/nodes\n  \
           curl -k {url}/apis/metrics.k8s.io/v1beta1/nodes\n  \
           curl -k '{url}/readyz?verbose'\n",
        resolution.as_secs(),
        (resolution * 3 / 2).as_secs(),
    );
}

/// A kubeconfig for the sandbox that trusts the server's own certificate. The token is a
/// placeholder (authentication is off) that stops kubectl from prompting for a username.
fn sandbox_kubeconfig(address: SocketAddr, serving_cert: &std::path::Path) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sandbox\n  cluster:\n    server: https://{address}\n    \
         certificate-authority: {}\nusers:\n- name: sandbox\n  user:\n    token: sandbox-no-auth\ncontexts:\n- name: sandbox\n  \
         context:\n    cluster: sandbox\n    user: sandbox\ncurrent-context: sandbox\n",
        serving_cert.display()
    )
}

/// Resolves on SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                () = ctrl_c => {}
            }
        }
        Err(_) => ctrl_c.await,
    }
    tracing::info!("shutdown requested: failing readiness, draining in-flight requests");
}

fn init_tracing(verbosity: u8) {
    // klog's -v: 0-3 is info, 4-5 debug, 6+ trace. RUST_LOG overrides.
    let level = match verbosity {
        0..=3 => "info",
        4..=5 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            // kube-client logs every failed request at ERROR; the inventory logs the outage once.
            "metrics_server_rs={level},metrics_server={level},kube_client::client::builder=off,warn"
        ))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
