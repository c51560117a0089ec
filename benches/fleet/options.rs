//! Flags of the two roles: the harness (after `cargo bench --bench fleet --`) and the hidden
//! simulator role it re-executes itself with.

use std::path::PathBuf;
use std::time::Duration;

use metrics_server_rs::cli::{parse_go_duration, MIN_METRIC_RESOLUTION};

use crate::Result;

#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) nodes: Vec<usize>,
    pub(crate) pods_per_node: usize,
    pub(crate) resolution: Duration,
    /// Steady scrape cycles measured per fleet size.
    pub(crate) cycles: u32,
    pub(crate) out: PathBuf,
    /// Churn cycles (10% of pods replaced each) after the steady phases; 0: none.
    pub(crate) churn: u32,
}

const USAGE: &str = "usage: cargo bench --bench fleet -- [--nodes 100,1000,5000] [--pods-per-node 30] \
                     [--resolution 15s] [--cycles 4] [--out target/fleet] [--churn 0]";

impl Options {
    pub(crate) fn parse(args: &[String]) -> Result<Options> {
        let mut options = Options {
            nodes: vec![100, 1000, 5000],
            pods_per_node: 30,
            resolution: Duration::from_secs(15),
            cycles: 4,
            out: default_out(),
            churn: 0,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            // `cargo bench` appends `--bench` to every bench binary's arguments.
            if arg == "--bench" {
                continue;
            }
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag, Some(value.to_owned())),
                None => (arg.as_str(), None),
            };
            let mut value = || -> Result<String> {
                inline
                    .clone()
                    .or_else(|| args.next().cloned())
                    .ok_or_else(|| format!("{flag} needs a value\n{USAGE}").into())
            };
            match flag {
                "--nodes" => {
                    options.nodes = value()?
                        .split(',')
                        .map(|n| n.trim().replace('_', "").parse::<usize>())
                        .collect::<std::result::Result<_, _>>()?;
                }
                "--pods-per-node" => options.pods_per_node = value()?.parse()?,
                "--resolution" => options.resolution = parse_go_duration(&value()?)?,
                "--cycles" => options.cycles = value()?.parse()?,
                "--out" => options.out = PathBuf::from(value()?),
                "--churn" => options.churn = value()?.parse()?,
                "--help" | "-h" => return Err(USAGE.into()),
                other => return Err(format!("unknown flag {other}\n{USAGE}").into()),
            }
        }
        if options.resolution < MIN_METRIC_RESOLUTION {
            return Err("--resolution must be at least 10s (the server's minimum)".into());
        }
        if options.nodes.is_empty() || options.nodes.contains(&0) || options.cycles == 0 {
            return Err(format!("--nodes and --cycles must be positive\n{USAGE}").into());
        }
        // 127.1.0.1 onwards, 254 addresses per /24, up to 127.254.255.254.
        if options.nodes.iter().any(|n| *n > 254 * 256 * 254) {
            return Err("too many nodes for 127/8".into());
        }
        Ok(options)
    }
}

/// `target/fleet` of this workspace, wherever the bench runs from.
fn default_out() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("fleet")
}

/// The simulator role's flags (always written by the harness, so parsing is strict and short).
#[derive(Debug, Clone)]
pub(crate) struct SimOptions {
    pub(crate) nodes: usize,
    pub(crate) pods_per_node: usize,
    /// Where the simulator writes its CA and kubeconfig.
    pub(crate) dir: PathBuf,
    /// `Some((first, count))`: a helper process serving only kubelets `first..first + count` of
    /// the fleet (the simulator splits fleets larger than one process's file descriptors allow).
    pub(crate) kubelets: Option<(usize, usize)>,
}

impl SimOptions {
    pub(crate) fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            crate::SIMULATE_FLAG.to_owned(),
            self.nodes.to_string(),
            self.pods_per_node.to_string(),
            self.dir.display().to_string(),
        ];
        if let Some((first, count)) = self.kubelets {
            args.extend([first.to_string(), count.to_string()]);
        }
        args
    }

    pub(crate) fn parse(args: &[String]) -> Result<SimOptions> {
        let (nodes, pods_per_node, dir, kubelets) = match args {
            [nodes, pods_per_node, dir] => (nodes, pods_per_node, dir, None),
            [nodes, pods_per_node, dir, first, count] => {
                (nodes, pods_per_node, dir, Some((first.parse()?, count.parse()?)))
            }
            _ => return Err("simulator role: expected <nodes> <pods-per-node> <dir> [<first> <count>]".into()),
        };
        Ok(SimOptions {
            nodes: nodes.parse()?,
            pods_per_node: pods_per_node.parse()?,
            dir: PathBuf::from(dir),
            kubelets,
        })
    }
}
