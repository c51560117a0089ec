//! The fleet harness (issue 7, scale): what the real server costs at 100, 1,000 and 5,000 nodes.
//!
//! For each fleet size this bench re-executes itself as a *simulator* child process (N
//! simulated kubelets on their own loopback addresses, HTTPS with per-node certificates, plus
//! a Kubernetes API double), starts the real `metrics-server` binary in cluster mode against
//! it, and measures the server process alone from `/proc`: CPU per scrape cycle, RSS, API
//! latency and GET throughput per core. Two processes keep the simulator's own CPU and memory
//! out of the server's numbers.
//!
//! Run: `cargo bench --bench fleet` (100, 1,000 and 5,000 nodes; a few minutes on 2 cores).
//! Flags after `--`: `--nodes 100,1000,5000 --pods-per-node 30 --resolution 15s --cycles 4
//! --out target/fleet --churn 0`. The memory-under-churn run (10% of pods replaced per cycle):
//! `cargo bench --bench fleet -- --nodes 5000 --churn 100 --resolution 10s`.
//!
//! Writes `<out>/report.md`, `<out>/report.csv`, `<out>/fleet.svg` (and `<out>/churn.csv` with
//! `--churn`), and prints the table.

#[path = "fleet/clients.rs"]
mod clients;
#[path = "fleet/kube_api.rs"]
mod kube_api;
#[path = "fleet/measure.rs"]
mod measure;
#[path = "fleet/options.rs"]
mod options;
#[path = "fleet/report.rs"]
mod report;
#[path = "fleet/run.rs"]
mod run;
#[path = "fleet/server.rs"]
mod server;
#[path = "fleet/simulator.rs"]
mod simulator;
#[path = "fleet/svg.rs"]
mod svg;

use std::error::Error;

/// Errors are reported, not handled: any failure ends the run (after the guards kill the children).
pub(crate) type BoxError = Box<dyn Error + Send + Sync>;
pub(crate) type Result<T> = std::result::Result<T, BoxError>;

/// The hidden role flag: the bench binary re-executed as the simulator.
pub(crate) const SIMULATE_FLAG: &str = "--simulate";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if args.first().map(String::as_str) == Some(SIMULATE_FLAG) {
        let options = options::SimOptions::parse(&args[1..])?;
        return runtime.block_on(simulator::run(options));
    }
    let options = options::Options::parse(&args)?;
    runtime.block_on(async {
        // Ctrl-C ends the run through the same path as an error, so every child guard drops
        // (and kills its process) before we exit.
        tokio::select! {
            result = report::run_all(&options) => result,
            _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
        }
    })
}
