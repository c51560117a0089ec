//! What the server process costs, read from `/proc` (CPU and memory of that one process, not
//! of the machine) and from its own `/metrics` (scrape cycle duration, failures).

use std::sync::OnceLock;

use crate::clients::Api;
use crate::Result;

/// Clock ticks per second, the unit of `utime`/`stime` in `/proc/<pid>/stat`.
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

pub(crate) fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        // A zombie (exited, not yet reaped) is not alive.
        .is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
}

/// User + system CPU seconds the process has used so far (all its threads).
pub(crate) fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    let (_, rest) = stat.rsplit_once(')').ok_or("malformed /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of proc(5); `rest` starts at field 3.
    let ticks = |i: usize| -> Result<f64> { Ok(fields.get(i).ok_or("short /proc/<pid>/stat")?.parse::<f64>()?) };
    Ok((ticks(11)? + ticks(12)?) / clock_ticks())
}

/// Resident set size now and its high-water mark, in bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Memory {
    pub(crate) rss: u64,
    pub(crate) hwm: u64,
}

pub(crate) fn memory(pid: u32) -> Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| -> Result<u64> {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .ok_or_else(|| format!("no {key} in /proc/<pid>/status"))?;
        Ok(line.trim().trim_end_matches("kB").trim().parse::<u64>()? * 1024)
    };
    Ok(Memory {
        rss: kib("VmRSS:")?,
        hwm: kib("VmHWM:")?,
    })
}

/// How fast this host copies a buffer as large as a 5,000-node LIST-all (68 MiB, larger than
/// its last-level cache), in GB/s, the median of nine copies.
///
/// Why: a LIST-all's server CPU is mostly moving its bytes (rustls reads the kept chunks, the
/// kernel writes socket buffers the client has not read yet), so it follows the memory
/// bandwidth this shared machine leaves us, which varies by hour. Reported beside each size so
/// runs from different hours can be told apart.
pub(crate) fn host_copy_gb_s() -> f64 {
    const LEN: usize = 68 << 20;
    let source = vec![1u8; LEN];
    let mut target = vec![2u8; LEN];
    let seconds = median_of_nine(|| {
        target.copy_from_slice(std::hint::black_box(&source));
        std::hint::black_box(&mut target);
    });
    LEN as f64 / seconds.max(1e-9) / 1e9
}

/// How long this host takes for one system call that does nothing, in ns: the median of nine
/// rounds of 200,000 `getpid`s (glibc has not cached the pid since 2.25, so each is a syscall).
///
/// Why: a GET is a few syscalls and a wake-up, so its CPU follows the kernel's entry and exit
/// cost, which the host's CPU and its mitigations set (seen here: 163–225 ns on a host with
/// AMD's "Safe RET"). Reported beside each size so runs on different hosts can be told apart.
pub(crate) fn host_syscall_ns() -> f64 {
    const CALLS: u32 = 200_000;
    let seconds = median_of_nine(|| {
        for _ in 0..CALLS {
            std::hint::black_box(std::process::id());
        }
    });
    seconds * 1e9 / f64::from(CALLS)
}

/// The median wall time of nine runs of `work`, in seconds: the host probes' one timing rule,
/// robust to a run that the shared machine interrupts.
fn median_of_nine(mut work: impl FnMut()) -> f64 {
    let mut seconds: Vec<f64> = (0..9)
        .map(|_| {
            let started = std::time::Instant::now();
            work();
            started.elapsed().as_secs_f64()
        })
        .collect();
    seconds.sort_by(f64::total_cmp);
    seconds[seconds.len() / 2]
}

/// The server's self-metrics that tell whether the scrape loop is healthy.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ServerMetrics {
    pub(crate) tick_sum: f64,
    pub(crate) tick_count: f64,
    pub(crate) requests_ok: f64,
    pub(crate) requests_failed: f64,
    pub(crate) container_points: f64,
    pub(crate) node_points: f64,
    /// Kubelet request durations summed over every node's histogram.
    pub(crate) request_seconds_sum: f64,
    pub(crate) request_seconds_count: f64,
}

impl ServerMetrics {
    pub(crate) async fn read(api: &Api) -> Result<ServerMetrics> {
        let (code, body) = api.get_once("/metrics").await?;
        if code != 200 {
            return Err(format!("/metrics: {code}").into());
        }
        let text = String::from_utf8_lossy(&body);
        let mut metrics = ServerMetrics::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else { continue };
            if series.starts_with("metrics_server_kubelet_request_duration_seconds_sum{") {
                metrics.request_seconds_sum += value;
                continue;
            }
            if series.starts_with("metrics_server_kubelet_request_duration_seconds_count{") {
                metrics.request_seconds_count += value;
                continue;
            }
            let slot = match series {
                "metrics_server_manager_tick_duration_seconds_sum" => &mut metrics.tick_sum,
                "metrics_server_manager_tick_duration_seconds_count" => &mut metrics.tick_count,
                "metrics_server_kubelet_request_total{success=\"true\"}" => &mut metrics.requests_ok,
                "metrics_server_kubelet_request_total{success=\"false\"}" => &mut metrics.requests_failed,
                "metrics_server_storage_points{type=\"container\"}" => &mut metrics.container_points,
                "metrics_server_storage_points{type=\"node\"}" => &mut metrics.node_points,
                _ => continue,
            };
            *slot = value;
        }
        Ok(metrics)
    }

    /// Mean kubelet request duration between two readings, in seconds.
    pub(crate) fn mean_request_since(&self, earlier: &ServerMetrics) -> f64 {
        let requests = self.request_seconds_count - earlier.request_seconds_count;
        if requests > 0.0 {
            (self.request_seconds_sum - earlier.request_seconds_sum) / requests
        } else {
            f64::NAN
        }
    }

    /// Mean scrape cycle (tick) duration between two readings, in seconds.
    pub(crate) fn mean_tick_since(&self, earlier: &ServerMetrics) -> f64 {
        let ticks = self.tick_count - earlier.tick_count;
        if ticks > 0.0 {
            (self.tick_sum - earlier.tick_sum) / ticks
        } else {
            f64::NAN
        }
    }
}

/// The soft limit on open files of this process (children inherit it).
pub(crate) fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Open file descriptors of the process (sockets mostly: one per kept-alive kubelet connection).
pub(crate) fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}
