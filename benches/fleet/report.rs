//! The report: one row per fleet size, as markdown (with upstream's numbers and the targets of
//! issue 7 beside ours), CSV, and an SVG plot of cost against fleet size.

use std::fmt::Write as _;

use crate::clients::Latency;
use crate::options::Options;
use crate::Result;

#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) nodes: usize,
    pub(crate) pods: usize,
    pub(crate) time_to_ready_s: f64,
    pub(crate) cpu_per_cycle: f64,
    pub(crate) avg_cores: f64,
    /// Bytes (VmHWM at the end of the run, so including the API phases).
    pub(crate) peak_rss: f64,
    /// Bytes (mean VmRSS over the steady window).
    pub(crate) steady_rss: f64,
    /// The server's tick: its deliberate spread window (resolution − kubelet timeout, 5 s at 15 s)
    /// plus the last scrape, so not a cost by itself.
    pub(crate) cycle_seconds: f64,
    pub(crate) kubelet_request_ms: f64,
    /// Server file descriptors at the end of the steady window.
    pub(crate) open_fds: usize,
    pub(crate) failed_scrapes: f64,
    pub(crate) list_json: Latency,
    pub(crate) list_proto: Latency,
    pub(crate) list_ns: Latency,
    pub(crate) get: Latency,
    pub(crate) get_per_s: f64,
    pub(crate) get_per_core: f64,
    pub(crate) get_h2: H2Get,
    /// GETs of one pod on one connection while another lists every pod back to back.
    pub(crate) get_beside_list: Latency,
    pub(crate) cpu_ms_per_list: f64,
    /// [`crate::measure::host_copy_gb_s`], taken just before the LIST-all phase.
    pub(crate) host_copy_gb_s: f64,
    /// [`crate::measure::host_syscall_ns`], taken just before the GET phases.
    pub(crate) host_syscall_ns: f64,
    pub(crate) log_warnings: usize,
    pub(crate) log_errors: usize,
}

/// The HTTP/2 GET phase: latencies, requests per second, and per server core.
#[derive(Debug, Clone)]
pub(crate) struct H2Get {
    pub(crate) latency: Latency,
    pub(crate) per_s: f64,
    pub(crate) per_core: f64,
}

impl Row {
    fn bytes_per_pod(&self) -> f64 {
        self.steady_rss / self.pods.max(1) as f64
    }
}

/// RSS at the end of each churn cycle.
#[derive(Debug, Clone)]
pub(crate) struct ChurnRun {
    pub(crate) nodes: usize,
    pub(crate) replaced: usize,
    pub(crate) rss: Vec<u64>,
}

impl ChurnRun {
    /// Least-squares slope of RSS in MiB per cycle.
    fn slope_mib_per_cycle(&self) -> f64 {
        let n = self.rss.len() as f64;
        if n < 2.0 {
            return 0.0;
        }
        let ys: Vec<f64> = self.rss.iter().map(|b| *b as f64 / MIB).collect();
        let mean_x = (n - 1.0) / 2.0;
        let mean_y = ys.iter().sum::<f64>() / n;
        let (mut num, mut den) = (0.0, 0.0);
        for (x, y) in ys.iter().enumerate() {
            num += (x as f64 - mean_x) * (y - mean_y);
            den += (x as f64 - mean_x).powi(2);
        }
        num / den
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// Upstream v0.6.4 on the same kind of fleet (issue 7): nodes, CPU-s/cycle, steady RSS MiB,
/// LIST-all JSON p50 ms (when measured).
pub(crate) const UPSTREAM: [(usize, f64, f64, Option<f64>); 3] = [
    (100, 0.11, 74.0, None),
    (1000, 1.1, 395.0, Some(440.0)),
    (5000, 4.5, 1.83 * 1024.0, Some(2800.0)),
];

pub(crate) async fn run_all(options: &Options) -> Result<()> {
    std::fs::create_dir_all(&options.out)?;
    let mut rows = Vec::new();
    let mut churns = Vec::new();
    let started = std::time::Instant::now();
    for &nodes in &options.nodes {
        let (row, churn) = crate::run::fleet_size(options, nodes).await?;
        rows.push(row);
        churns.extend(churn);
        // Written after every size, so an interrupted run keeps what it measured.
        write(options, &rows, &churns)?;
    }
    print_table(&rows, &churns);
    eprintln!(
        "fleet bench: {:.0}s; report in {}",
        started.elapsed().as_secs_f64(),
        options.out.display()
    );
    Ok(())
}

#[allow(clippy::print_stdout, reason = "a report bench: its output is the result")]
fn print_table(rows: &[Row], churns: &[ChurnRun]) {
    println!("{}", table(rows));
    if !churns.is_empty() {
        println!("{}", churn_table(churns));
    }
}

fn write(options: &Options, rows: &[Row], churns: &[ChurnRun]) -> Result<()> {
    std::fs::write(options.out.join("report.md"), markdown(options, rows, churns))?;
    std::fs::write(options.out.join("report.csv"), csv(rows))?;
    std::fs::write(options.out.join("fleet.svg"), crate::svg::plot(rows))?;
    if !churns.is_empty() {
        let mut text = String::from("nodes,cycle,rss_bytes\n");
        for run in churns {
            for (cycle, rss) in run.rss.iter().enumerate() {
                let _ = writeln!(text, "{},{},{rss}", run.nodes, cycle + 1);
            }
        }
        std::fs::write(options.out.join("churn.csv"), text)?;
    }
    Ok(())
}

fn ms(value: f64) -> String {
    if value.is_nan() {
        "–".to_owned()
    } else if value < 1.0 {
        format!("{value:.3}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| nodes | pods | CPU-s/cycle | avg cores | peak RSS MiB | steady RSS MiB | bytes/pod | cycle s \
         | LIST-all JSON p50/p99 ms | JSON bytes | LIST-all proto p50/p99 ms | LIST ns p50 ms | GET p50 ms \
         | GET req/s per core | h2 GET p50 ms | h2 GET req/s per core | CPU-ms per LIST-all \
         | GET beside LIST-all p50/p99 ms |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {:.3} | {:.3} | {:.1} | {:.1} | {:.0} | {:.3} | {} / {} | {} | {} / {} | {} | {} | {:.0} | {} | {:.0} | {:.1} | {} / {} |",
            r.nodes,
            r.pods,
            r.cpu_per_cycle,
            r.avg_cores,
            r.peak_rss / MIB,
            r.steady_rss / MIB,
            r.bytes_per_pod(),
            r.cycle_seconds,
            ms(r.list_json.percentile_ms(50.0)),
            ms(r.list_json.percentile_ms(99.0)),
            r.list_json.bytes,
            ms(r.list_proto.percentile_ms(50.0)),
            ms(r.list_proto.percentile_ms(99.0)),
            ms(r.list_ns.percentile_ms(50.0)),
            ms(r.get.percentile_ms(50.0)),
            r.get_per_core,
            ms(r.get_h2.latency.percentile_ms(50.0)),
            r.get_h2.per_core,
            r.cpu_ms_per_list,
            ms(r.get_beside_list.percentile_ms(50.0)),
            ms(r.get_beside_list.percentile_ms(99.0)),
        );
    }
    out
}

fn churn_table(churns: &[ChurnRun]) -> String {
    let mut out = String::from(
        "| nodes | churn cycles | pods replaced | RSS first MiB | RSS last MiB | RSS max MiB | slope MiB/cycle |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for run in churns {
        let mib = |b: Option<&u64>| b.map_or(f64::NAN, |b| *b as f64 / MIB);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:+.3} |",
            run.nodes,
            run.rss.len(),
            run.replaced,
            mib(run.rss.first()),
            mib(run.rss.last()),
            mib(run.rss.iter().max()),
            run.slope_mib_per_cycle()
        );
    }
    out
}

fn markdown(options: &Options, rows: &[Row], churns: &[ChurnRun]) -> String {
    let mut out = String::from("# Fleet bench (issue 7)\n\n");
    let _ = writeln!(
        out,
        "The real `metrics-server` binary in cluster mode against simulated kubelets (HTTPS, one \
         loopback address each) and an API double in a separate process; only the server process \
         is measured. {} pods per node, `--metric-resolution={}s`, {} steady cycles per size.\n",
        options.pods_per_node,
        options.resolution.as_secs_f64(),
        options.cycles
    );
    out.push_str(&table(rows));
    out.push_str(
        "\nCPU-s/cycle and avg cores: server CPU (utime+stime) over the steady window, no API load. \
         Steady RSS: mean VmRSS over that window; peak: VmHWM at the end (after the API phases). \
         Cycle: mean `metrics_server_manager_tick_duration_seconds` over the window; the server \
         spreads each cycle's scrapes over resolution − kubelet timeout (5 s at 15 s), so this is \
         that window plus the last scrape, not work. \
         LIST/GET: 2 concurrent HTTPS clients (HTTP/1.1, bearer token); GET req/s per core: 8 \
         connections for 5 s, requests over server CPU seconds. h2 GET: the same GET over HTTP/2 \
         (ALPN h2, as the aggregator connects), 2 connections × 16 concurrent streams for 5 s. GET beside \
         LIST-all: one connection GETs one pod back to back while another lists every pod as JSON \
         back to back, for 5 s. Per-request CPU figures have the background scraping's steady rate subtracted.\n\n",
    );
    out.push_str(
        "| nodes | time to ready s | mean kubelet request ms | failed scrapes in window | server open fds \
         | unexpected server log WARN / ERROR | host copy GB/s (68 MiB) \
         | host syscall ns (getpid) |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1} | {} | {} | {} / {} | {:.1} | {:.0} |",
            r.nodes,
            r.time_to_ready_s,
            r.kubelet_request_ms,
            r.failed_scrapes,
            r.open_fds,
            r.log_warnings,
            r.log_errors,
            r.host_copy_gb_s,
            r.host_syscall_ns
        );
    }
    out.push_str(
        "\n## Upstream v0.6.4 on the same kind of fleet (issue 7)\n\n\
         | nodes | CPU-s/cycle | steady RSS | bytes/pod | LIST-all JSON p50 | LIST-all protobuf p50 | GET p50 |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n\
         | 100 | 0.11 | 74 MiB | | | | |\n\
         | 1,000 | 1.1 | 395 MiB | | 440 ms | | |\n\
         | 5,000 | 4.5 | 1.83 GiB | 12.8 KB | 2.8 s | 2.5 s | 0.43 ms |\n\n\
         Targets at 5,000 nodes: ≤ 0.45 CPU-s/cycle, ≤ 150 MiB steady RSS, LIST-all ≤ 100 ms p50, \
         GET ≥ 50k req/s per core.\n\n",
    );
    if let Some(r) = rows.iter().find(|r| r.nodes == 5000) {
        let check = |ok: bool| if ok { "met" } else { "NOT met" };
        let _ = writeln!(
            out,
            "At 5,000 nodes here: CPU-s/cycle {:.3} ({}), steady RSS {:.1} MiB ({}), LIST-all JSON p50 {} ms ({}), \
             GET {:.0} req/s per core ({}).\n",
            r.cpu_per_cycle,
            check(r.cpu_per_cycle <= 0.45),
            r.steady_rss / MIB,
            check(r.steady_rss / MIB <= 150.0),
            ms(r.list_json.percentile_ms(50.0)),
            check(r.list_json.percentile_ms(50.0) <= 100.0),
            r.get_per_core,
            check(r.get_per_core >= 50_000.0)
        );
    }
    if !churns.is_empty() {
        out.push_str("## Memory under churn (10% of pods replaced per cycle)\n\n");
        out.push_str(&churn_table(churns));
        out.push('\n');
    }
    out.push_str(
        "Reproduce: `cargo bench --bench fleet` (or with `-- --nodes 100,1000,5000 --cycles 4`). \
         Memory under churn: `cargo bench --bench fleet -- --nodes 5000 --churn 100 --resolution 10s`.\n",
    );
    out
}

fn csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "nodes,pods,cpu_s_per_cycle,avg_cores,peak_rss_mib,steady_rss_mib,bytes_per_pod,cycle_s,\
         list_all_json_p50_ms,list_all_json_p99_ms,list_all_json_bytes,list_all_proto_p50_ms,list_all_proto_p99_ms,\
         list_ns_p50_ms,get_p50_ms,get_req_s,get_req_s_per_core,cpu_ms_per_list_all,time_to_ready_s,kubelet_request_ms,failed_scrapes,\
         get_h2_p50_ms,get_h2_req_s,get_h2_req_s_per_core,get_beside_list_p50_ms,get_beside_list_p99_ms,host_copy_gb_s,host_syscall_ns\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{:.4},{:.4},{:.2},{:.2},{:.0},{:.4},{:.3},{:.3},{},{:.3},{:.3},{:.3},{:.4},{:.0},{:.0},{:.2},{:.1},{:.2},{},{:.4},{:.0},{:.0},{:.4},{:.4},{:.2},{:.1}",
            r.nodes,
            r.pods,
            r.cpu_per_cycle,
            r.avg_cores,
            r.peak_rss / MIB,
            r.steady_rss / MIB,
            r.bytes_per_pod(),
            r.cycle_seconds,
            r.list_json.percentile_ms(50.0),
            r.list_json.percentile_ms(99.0),
            r.list_json.bytes,
            r.list_proto.percentile_ms(50.0),
            r.list_proto.percentile_ms(99.0),
            r.list_ns.percentile_ms(50.0),
            r.get.percentile_ms(50.0),
            r.get_per_s,
            r.get_per_core,
            r.cpu_ms_per_list,
            r.time_to_ready_s,
            r.kubelet_request_ms,
            r.failed_scrapes,
            r.get_h2.latency.percentile_ms(50.0),
            r.get_h2.per_s,
            r.get_h2.per_core,
            r.get_beside_list.percentile_ms(50.0),
            r.get_beside_list.percentile_ms(99.0),
            r.host_copy_gb_s,
            r.host_syscall_ns,
        );
    }
    out
}
