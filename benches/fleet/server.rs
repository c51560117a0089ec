//! The two child processes: the simulator (this bench binary in its hidden role) and the real
//! `metrics-server` binary in cluster mode against it. Each lives in a guard that kills it when
//! dropped, so every exit path (error, panic unwinding, Ctrl-C through `main`) cleans up.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::clients::Api;
use crate::options::SimOptions;
use crate::simulator::{Ready, TOKEN};
use crate::Result;

/// Kills (SIGKILL) and reaps its child when dropped.
#[derive(Debug)]
pub(crate) struct Guard {
    pub(crate) child: Child,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server run under a profiler (`FLEET_SERVER_WRAPPER`) gets SIGTERM and up to a minute to
/// exit, so the profiler writes its output, before its guard kills it.
#[derive(Debug)]
struct GracefulStop {
    pid: u32,
}

impl Drop for GracefulStop {
    fn drop(&mut self) {
        let pid = self.pid.to_string();
        if Command::new("kill").args(["-TERM", &pid]).status().is_err() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while crate::measure::alive(self.pid) && Instant::now() < deadline {
            // A drop cannot await; this runs once, at the end of a profiling run.
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The running simulator and the pipes the harness drives it with.
#[derive(Debug)]
pub(crate) struct Simulator {
    pub(crate) ready: Ready,
    // Declared before the guard: closing stdin first lets the simulator see EOF, but the guard
    // kills it anyway.
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<String>,
    pub(crate) pid: u32,
    _guard: Guard,
}

impl Simulator {
    pub(crate) async fn start(nodes: usize, pods_per_node: usize, dir: &Path) -> Result<Simulator> {
        let options = SimOptions {
            nodes,
            pods_per_node,
            dir: dir.to_owned(),
            kubelets: None,
        };
        let mut child = Command::new(std::env::current_exe()?)
            .args(options.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let pid = child.id();
        let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
        let guard = Guard { child };
        let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
            return Err("the simulator's pipes".into());
        };
        // A plain thread turns the blocking pipe into a channel (tokio's `process` feature is
        // not enabled in this crate).
        let (tx, mut lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Certificates and listeners for 5,000 nodes take a few seconds; a minute is generous.
        let budget = Duration::from_secs(60) + Duration::from_millis(20 * nodes as u64);
        let ready = tokio::time::timeout(budget, async {
            while let Some(line) = lines.recv().await {
                if let Some(ready) = Ready::parse(&line) {
                    return Ok(ready);
                }
            }
            Err("the simulator exited before it was ready (its stderr is above)")
        })
        .await
        .map_err(|_| "the simulator was not ready in time")??;
        Ok(Simulator {
            ready,
            stdin,
            lines,
            pid,
            _guard: guard,
        })
    }

    /// Replaces a tenth of the pods (kubelets and API); returns how many.
    pub(crate) async fn churn(&mut self) -> Result<usize> {
        writeln!(self.stdin, "churn")?;
        self.stdin.flush()?;
        let reply = tokio::time::timeout(Duration::from_secs(120), self.lines.recv())
            .await
            .map_err(|_| "the simulator did not finish a churn step in 2 minutes")?
            .ok_or("the simulator exited")?;
        Ok(reply
            .strip_prefix("CHURNED ")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("the simulator said {reply:?}"))?)
    }
}

/// The real server, in cluster mode against the simulator.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) pid: u32,
    pub(crate) address: SocketAddr,
    pub(crate) log: PathBuf,
    cert_dir: PathBuf,
    // Declared before the guard, so it runs first.
    _graceful: Option<GracefulStop>,
    _guard: Guard,
}

impl Server {
    pub(crate) fn start(ready: &Ready, resolution: Duration, dir: &Path) -> Result<Server> {
        let address = free_port()?;
        let cert_dir = dir.join("serving");
        let log = dir.join("server.log");
        let kubeconfig = &ready.kubeconfig;
        let mut args = vec![
            format!("--kubeconfig={kubeconfig}"),
            // Delegated authn/authz go to the same API double (TokenReview, SubjectAccessReview).
            format!("--authentication-kubeconfig={kubeconfig}"),
            format!("--authorization-kubeconfig={kubeconfig}"),
            format!("--secure-port={}", address.port()),
            "--bind-address=127.0.0.1".to_owned(),
            format!("--cert-dir={}", cert_dir.display()),
            format!("--metric-resolution={}ms", resolution.as_millis()),
            "--kubelet-preferred-address-types=InternalIP".to_owned(),
            "--kubelet-use-node-status-port".to_owned(),
            format!("--kubelet-certificate-authority={}", ready.ca_file),
        ];
        // The server insists on a kubelet timeout below 90% of the resolution (10s by default).
        let timeout = resolution * 9 / 10;
        if timeout < Duration::from_secs(10) {
            args.push(format!("--kubelet-request-timeout={}ms", timeout.as_millis()));
        }
        // FLEET_SERVER_WRAPPER (e.g. `valgrind --tool=dhat`) runs the server under a profiler.
        let wrapper = std::env::var("FLEET_SERVER_WRAPPER").unwrap_or_default();
        let mut words = wrapper.split_whitespace();
        let server = env!("CARGO_BIN_EXE_metrics-server");
        let mut command = match words.next() {
            Some(program) => {
                let mut command = Command::new(program);
                command.args(words).arg(server);
                command
            }
            None => Command::new(server),
        };
        let child = command
            .args(&args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log)?)
            .spawn()?;
        Ok(Server {
            pid: child.id(),
            address,
            log,
            cert_dir,
            _graceful: if wrapper.is_empty() {
                None
            } else {
                Some(GracefulStop { pid: child.id() })
            },
            _guard: Guard { child },
        })
    }

    /// Waits until `/readyz` answers 200 (the inventory is synced and the store has a full
    /// cycle); returns the client to use from then on.
    pub(crate) async fn wait_ready(&self, budget: Duration) -> Result<Api> {
        let started = Instant::now();
        let mut last = String::from("no answer yet");
        while started.elapsed() < budget {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if !crate::measure::alive(self.pid) {
                return Err(format!("the server exited; its log: {}", self.log.display()).into());
            }
            // The serving certificate appears in the cert dir once the server has made it.
            let Ok(pem) = std::fs::read(self.cert_dir.join("apiserver.crt")) else {
                continue;
            };
            let Ok(api) = Api::new(self.address, &pem, TOKEN) else {
                continue;
            };
            match api.get_once("/readyz").await {
                Ok((200, _)) => return Ok(api),
                Ok((code, body)) => last = format!("{code}: {}", String::from_utf8_lossy(&body).trim()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!(
            "/readyz not 200 after {budget:?} (last: {last}); server log: {}",
            self.log.display()
        )
        .into())
    }

    /// How many WARN and ERROR lines the server logged, and the first; a healthy run logs none
    /// but the expected ones: two because the double's ConfigMap holds no client CAs, on
    /// purpose, and, in fleets larger than the open-file limit allows connections for, the
    /// one that says so (the report's open fds show it).
    pub(crate) fn log_problems(&self) -> (usize, usize, Option<String>) {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let unexpected = text
            .lines()
            .filter(|l| !l.contains("client_ca::configmap") && !l.contains("as the open-file limit allows"));
        let warns = unexpected.clone().filter(|l| l.contains(" WARN ")).count();
        let errors = unexpected.clone().filter(|l| l.contains(" ERROR ")).count();
        let first = unexpected
            .clone()
            .find(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .map(str::to_owned);
        (warns, errors, first)
    }
}

/// A free loopback port (bound and released: the server binds it a moment later).
fn free_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}
