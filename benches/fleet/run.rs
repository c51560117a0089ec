//! One fleet size, start to finish: simulator, server, readiness, the steady scrape window,
//! the API phases, and (with `--churn`) the memory-under-churn run.

use std::time::{Duration, Instant};

use crate::clients::{self, Api, Latency, JSON, PROTOBUF};
use crate::measure::{self, ServerMetrics};
use crate::options::Options;
use crate::report::{ChurnRun, H2Get, Row};
use crate::server::{Server, Simulator};
use crate::Result;

const METRICS: &str = "/apis/metrics.k8s.io/v1beta1";
/// One namespace's share of the fleet's pods (the simulated fleet spreads apps over four).
const NAMESPACE: &str = "kube-system";

/// Progress goes to stderr, so stdout carries only the table.
macro_rules! progress {
    ($nodes:expr, $($arg:tt)*) => {{
        eprint!("[fleet {:>5} nodes] ", $nodes);
        eprintln!($($arg)*);
    }};
}

pub(crate) async fn fleet_size(options: &Options, nodes: usize) -> Result<(Row, Option<ChurnRun>)> {
    // The busiest process: a simulator process with its listeners and their accepted
    // connections. The server keeps a connection per kubelet only as far as its limit allows,
    // and reconnects to the others every scrape (logged once).
    let needed = 2 * nodes.min(crate::simulator::KUBELETS_PER_PROCESS) as u64 + 1024;
    if let Some(limit) = measure::open_files_limit().filter(|l| *l < needed) {
        progress!(
            nodes,
            "warning: open-files limit {limit} < {needed}; raise it (ulimit -n) if a process runs out of files"
        );
    }
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let mut simulator = Simulator::start(nodes, options.pods_per_node, dir.path()).await?;
    let pods = simulator.ready.pods;
    progress!(
        nodes,
        "simulator (pid {}) up in {:.1}s: {pods} pods, API {}",
        simulator.pid,
        started.elapsed().as_secs_f64(),
        simulator.ready.api_url
    );

    let server = Server::start(&simulator.ready, options.resolution, dir.path())?;
    let resolution = options.resolution;
    // Listing the fleet, then two scrape cycles (a rate needs two points); generous at scale.
    let budget = 3 * resolution + Duration::from_secs(60) + Duration::from_millis(20 * nodes as u64);
    let ready_at = Instant::now();
    let api = server.wait_ready(budget).await?;
    let time_to_ready = ready_at.elapsed();
    progress!(
        nodes,
        "server (pid {}) ready in {:.1}s",
        server.pid,
        time_to_ready.as_secs_f64()
    );
    // One more cycle, so the window below starts warm (connection pools, store at full size).
    tokio::time::sleep(resolution).await;

    // Steady scrape cycles, no API load: the server's CPU over whole cycles, RSS sampled each second.
    let before = ServerMetrics::read(&api).await?;
    let cpu_before = measure::cpu_seconds(server.pid)?;
    let window_start = Instant::now();
    let window = resolution * options.cycles;
    let mut rss_samples = Vec::new();
    while window_start.elapsed() < window {
        tokio::time::sleep(Duration::from_secs(1).min(window.saturating_sub(window_start.elapsed()))).await;
        rss_samples.push(measure::memory(server.pid)?.rss);
    }
    let cpu = measure::cpu_seconds(server.pid)? - cpu_before;
    let elapsed = window_start.elapsed().as_secs_f64();
    let open_fds = measure::open_fds(server.pid);
    let after = ServerMetrics::read(&api).await?;
    let avg_cores = cpu / elapsed;
    let cpu_per_cycle = cpu / (elapsed / resolution.as_secs_f64());
    let steady_rss = rss_samples.iter().sum::<u64>() as f64 / rss_samples.len().max(1) as f64;
    let cycle_seconds = after.mean_tick_since(&before);
    let kubelet_request_ms = 1e3 * after.mean_request_since(&before);
    let failed_scrapes = after.requests_failed - before.requests_failed;
    let ok_scrapes = after.requests_ok - before.requests_ok;
    progress!(
        nodes,
        "steady: {cpu_per_cycle:.3} CPU-s/cycle, {:.1} MiB RSS, cycle {:.3}s, kubelet request {kubelet_request_ms:.1} ms, scrapes ok {ok_scrapes} failed {failed_scrapes}, {open_fds} open fds, \
         points: {} containers {} nodes",
        steady_rss / MIB,
        cycle_seconds,
        after.container_points,
        after.node_points
    );

    // The API phases, each bounded by count and time. Background scraping goes on meanwhile; its
    // steady CPU rate is subtracted from the per-request CPU figures.
    let list_all = format!("{METRICS}/pods");
    let host_copy_gb_s = measure::host_copy_gb_s();
    let cpu_before = measure::cpu_seconds(server.pid)?;
    let list_json = clients::latency(&api, &list_all, JSON, 2, 30, Duration::from_secs(12)).await?;
    let list_cpu = measure::cpu_seconds(server.pid)? - cpu_before - avg_cores * list_json.elapsed.as_secs_f64();
    let cpu_ms_per_list = 1e3 * list_cpu.max(0.0) / list_json.samples.len().max(1) as f64;
    progress!(
        nodes,
        "LIST all JSON: {} requests, p50 {:.1} ms, {} bytes, {cpu_ms_per_list:.1} CPU-ms each (host copies {host_copy_gb_s:.1} GB/s)",
        list_json.samples.len(),
        list_json.percentile_ms(50.0),
        list_json.bytes
    );
    let list_proto = clients::latency(&api, &list_all, PROTOBUF, 2, 30, Duration::from_secs(12)).await?;
    let namespace = format!("{METRICS}/namespaces/{NAMESPACE}/pods");
    let list_ns = clients::latency(&api, &namespace, JSON, 2, 300, Duration::from_secs(6)).await?;
    let (pod_namespace, pod_name) = simulator
        .ready
        .sample_pod
        .split_once('/')
        .ok_or("a malformed sample pod")?;
    let get_path = format!("{METRICS}/namespaces/{pod_namespace}/pods/{pod_name}");
    let host_syscall_ns = measure::host_syscall_ns();
    let get = clients::latency(&api, &get_path, JSON, 2, 5000, Duration::from_secs(5)).await?;
    let (get_per_s, get_per_core) = get_throughput(&api, &server, &get_path, avg_cores).await?;
    let get_h2 = get_throughput_h2(&api, &server, &get_path, avg_cores).await?;
    let get_beside_list = get_beside_list(&api, &list_all, &get_path).await?;
    progress!(
        nodes,
        "LIST protobuf p50 {:.1} ms, namespace p50 {:.2} ms, GET p50 {:.3} ms, {get_per_s:.0} GET/s, {get_per_core:.0} per core; \
         HTTP/2 GET p50 {:.3} ms, {:.0} GET/s, {:.0} per core; GET beside LIST-all p50 {:.3} ms, p99 {:.2} ms (host syscall {host_syscall_ns:.0} ns)",
        list_proto.percentile_ms(50.0),
        list_ns.percentile_ms(50.0),
        get.percentile_ms(50.0),
        get_h2.latency.percentile_ms(50.0),
        get_h2.per_s,
        get_h2.per_core,
        get_beside_list.percentile_ms(50.0),
        get_beside_list.percentile_ms(99.0)
    );

    let churn = if options.churn > 0 {
        Some(churn(&mut simulator, &server, &api, options, nodes).await?)
    } else {
        None
    };

    let memory = measure::memory(server.pid)?;
    // Kept beside the report: the temp dir (and the log in it) goes when this size is done.
    std::fs::copy(&server.log, options.out.join(format!("server-{nodes}.log")))?;
    let (warnings, errors, first_problem) = server.log_problems();
    if let Some(line) = &first_problem {
        progress!(
            nodes,
            "server log: {warnings} WARN, {errors} ERROR lines; first: {line}"
        );
    }
    let row = Row {
        nodes,
        pods,
        time_to_ready_s: time_to_ready.as_secs_f64(),
        cpu_per_cycle,
        avg_cores,
        peak_rss: memory.hwm as f64,
        steady_rss,
        cycle_seconds,
        kubelet_request_ms,
        open_fds,
        failed_scrapes,
        list_json,
        list_proto,
        list_ns,
        get,
        get_per_s,
        get_per_core,
        get_h2,
        get_beside_list,
        cpu_ms_per_list,
        host_copy_gb_s,
        host_syscall_ns,
        log_warnings: warnings,
        log_errors: errors,
    };
    progress!(nodes, "done in {:.0}s", started.elapsed().as_secs_f64());
    Ok((row, churn))
}

const MIB: f64 = 1024.0 * 1024.0;

/// What a LIST-all costs the requests beside it: one connection GETs `get_path` back to back
/// while another lists every pod as JSON back to back, both for 5 s; the GETs' latencies.
async fn get_beside_list(api: &Api, list_path: &str, get_path: &str) -> Result<Latency> {
    const PHASE: Duration = Duration::from_secs(5);
    let listing = clients::latency(api, list_path, JSON, 1, usize::MAX, PHASE);
    let getting = clients::latency(api, get_path, JSON, 1, usize::MAX, PHASE);
    let (_, got) = tokio::try_join!(listing, getting)?;
    Ok(got)
}

/// GETs per second with 8 connections for 5 s, and per server core (background scraping removed).
async fn get_throughput(api: &Api, server: &Server, path: &str, background_cores: f64) -> Result<(f64, f64)> {
    let cpu_before = measure::cpu_seconds(server.pid)?;
    let started = Instant::now();
    let done = clients::throughput(api, path, 8, Duration::from_secs(5)).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let raw_cpu = measure::cpu_seconds(server.pid)? - cpu_before;
    // Never credit more than the background's share: at worst the figure is the raw one.
    let cpu = (raw_cpu - background_cores * elapsed).max(raw_cpu * 0.5);
    Ok((done as f64 / elapsed, done as f64 / cpu.max(1e-3)))
}

/// HTTP/2 GET connections and concurrent streams on each, the aggregator's way: few connections,
/// many requests multiplexed on each.
const H2_CONNECTIONS: usize = 2;
const H2_STREAMS: usize = 16;

/// The HTTP/2 GET phase: [`H2_CONNECTIONS`] × [`H2_STREAMS`] for 5 s, counted like
/// [`get_throughput`].
async fn get_throughput_h2(api: &Api, server: &Server, path: &str, background_cores: f64) -> Result<H2Get> {
    let cpu_before = measure::cpu_seconds(server.pid)?;
    let latency = clients::throughput_h2(api, path, H2_CONNECTIONS, H2_STREAMS, Duration::from_secs(5)).await?;
    let elapsed = latency.elapsed.as_secs_f64();
    let raw_cpu = measure::cpu_seconds(server.pid)? - cpu_before;
    let cpu = (raw_cpu - background_cores * elapsed).max(raw_cpu * 0.5);
    let done = latency.samples.len() as f64;
    Ok(H2Get {
        per_s: done / elapsed,
        per_core: done / cpu.max(1e-3),
        latency,
    })
}

/// `--churn C`: C cycles that each replace a tenth of the pods, RSS read at each cycle's end.
async fn churn(
    simulator: &mut Simulator,
    server: &Server,
    api: &Api,
    options: &Options,
    nodes: usize,
) -> Result<ChurnRun> {
    let before = ServerMetrics::read(api).await?;
    let mut rss = Vec::new();
    let mut replaced = 0;
    for cycle in 0..options.churn {
        let started = Instant::now();
        replaced += simulator.churn().await?;
        tokio::time::sleep(options.resolution.saturating_sub(started.elapsed())).await;
        let now = measure::memory(server.pid)?.rss;
        rss.push(now);
        if cycle % 10 == 9 || cycle + 1 == options.churn {
            progress!(
                nodes,
                "churn cycle {}/{}: RSS {:.1} MiB ({replaced} pods replaced so far)",
                cycle + 1,
                options.churn,
                now as f64 / MIB
            );
        }
    }
    // Replaced pods must keep their metrics: if the server missed the API's ADDED events (or
    // the kubelets' new pods), stored container points would fall by a tenth per cycle. The
    // newest tenth has had one scrape only (a rate needs two), so one quiet cycle first.
    tokio::time::sleep(options.resolution).await;
    let after = ServerMetrics::read(api).await?;
    progress!(
        nodes,
        "churn: stored container points {} before, {} one quiet cycle after; scrapes failed: {}",
        before.container_points,
        after.container_points,
        after.requests_failed - before.requests_failed
    );
    Ok(ChurnRun { nodes, replaced, rss })
}
