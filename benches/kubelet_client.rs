//! The kubelet client's cost at fleet scale: heap and RSS held per idle kept-alive kubelet
//! connection, and CPU and bytes allocated per fetch of a real-sized body over a reused TLS
//! connection.
//!
//! Memory is the main measure, so this is a plain `main` that prints numbers. The kubelets
//! are a child process (this binary again, with `serve`): one TLS listener per kubelet on
//! 127.0.0.1, each answering `/metrics/resource` with the 70-pod fixture (34.9 KB) in 4 KiB
//! chunks, as Go's net/http frames a handler's output. So the parent's heap, RSS and CPU
//! time are the client's alone. The global allocator is mimalloc (as in the binary) behind a
//! counter of live and allocated bytes.
//!
//! Run: `cargo bench --bench kubelet_client -- --kubelets 2000 --cycles 5`.

use std::error::Error;
use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cap::Cap;
use metrics_server_rs::kubelet::client::{ClientConfig, KubeletClient, ServerVerification};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// mimalloc (as in the binary), counting live and total bytes.
#[global_allocator]
static ALLOCATOR: Cap<mimalloc::MiMalloc> = Cap::new(mimalloc::MiMalloc, usize::MAX);

const FIXTURE: &str = "/work/shared/fixtures/kubelet/client_test-resourceResponse-70pods.txt";
/// Fetches in flight, as the scrape pool bounds them.
const IN_FLIGHT: usize = 64;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: usize| -> usize {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let kubelets = flag("--kubelets", 2000);
    if args.iter().any(|a| a == "serve") {
        return serve(kubelets);
    }
    measure(kubelets, flag("--cycles", 5))
}

#[allow(clippy::print_stdout, reason = "the ports go to the parent on stdout")]
/// The child: `kubelets` TLS listeners; prints their ports, one line, then serves until
/// stdin closes.
fn serve(kubelets: usize) -> Result<(), Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![key.cert.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into()),
            )?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let response: Arc<[u8]> = chunked_response(&std::fs::read(FIXTURE)?).into();
        let mut ports = Vec::new();
        for _ in 0..kubelets {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            ports.push(listener.local_addr()?.port().to_string());
            let (acceptor, response) = (acceptor.clone(), response.clone());
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let (acceptor, response) = (acceptor.clone(), response.clone());
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let mut head = Vec::new();
                        let mut buf = [0u8; 1024];
                        loop {
                            match tls.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                            if head.windows(4).any(|w| w == b"\r\n\r\n") {
                                head.clear();
                                if tls.write_all(&response).await.is_err() {
                                    return;
                                }
                            }
                        }
                    });
                }
            });
        }
        println!("{}", ports.join(" "));
        // Serve until the parent closes stdin.
        tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new())).await??;
        Ok(())
    })
}

/// A 200 response with `body` in 4 KiB chunks (Go's chunking of a handler's writes).
fn chunked_response(body: &[u8]) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nDate: Sun, 22 Nov 2026 17:00:00 GMT\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for chunk in body.chunks(4096) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn measure(kubelets: usize, cycles: usize) -> Result<(), Box<dyn Error>> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["serve", "--kubelets", &kubelets.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no child stdout")?).read_line(&mut line)?;
    let urls: Vec<String> = line
        .split_whitespace()
        .map(|port| format!("https://127.0.0.1:{port}/metrics/resource"))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(run(urls, cycles));
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"\n");
    }
    let _ = child.wait();
    result
}

#[allow(clippy::print_stdout, reason = "a report bench: its output is the result")]
async fn run(urls: Vec<String>, cycles: usize) -> Result<(), Box<dyn Error>> {
    let n = urls.len();
    let client = KubeletClient::new(&ClientConfig {
        verification: ServerVerification::InsecureSkipVerify,
        client_cert_pem: None,
        bearer_token: None,
        request_timeout: Duration::from_secs(30),
        max_body_bytes: 10 << 20,
        idle_timeout: Duration::from_secs(600),
    })?;
    let urls = Arc::new(urls);
    let (heap0, rss0) = (ALLOCATOR.allocated(), rss_kib()?);
    let connect = cycle(&client, &urls).await?;
    let (heap1, rss1) = (ALLOCATOR.allocated(), rss_kib()?);
    println!(
        "first cycle (connect + TLS handshake + fetch): {n} kubelets in {:.2} s wall, {:.1} ms CPU",
        connect.wall.as_secs_f64(),
        connect.cpu_ms
    );
    println!(
        "idle after the first cycle: heap {:.0} B/connection ({} B of it buffers), RSS {:.1} KiB/connection",
        (heap1 as f64 - heap0 as f64) / n as f64,
        client.idle_buffered_bytes() / n,
        (rss1 as f64 - rss0 as f64) / n as f64
    );
    let (mut cpu_ms, mut wall, mut allocated) = (0.0, Duration::ZERO, 0);
    for _ in 0..cycles {
        let c = cycle(&client, &urls).await?;
        cpu_ms += c.cpu_ms;
        wall += c.wall;
        allocated += c.allocated;
    }
    let (heap2, rss2) = (ALLOCATOR.allocated(), rss_kib()?);
    let fetches = (n * cycles) as f64;
    println!(
        "idle after {cycles} more cycles: heap {:.0} B/connection ({} B of it buffers), RSS {:.1} KiB/connection",
        (heap2 as f64 - heap0 as f64) / n as f64,
        client.idle_buffered_bytes() / n,
        (rss2 as f64 - rss0 as f64) / n as f64
    );
    println!(
        "reused connections: {:.1} µs CPU/fetch, {:.0} bytes allocated/fetch, {:.0} fetches/s wall ({} fetches)",
        cpu_ms * 1000.0 / fetches,
        allocated as f64 / fetches,
        fetches / wall.as_secs_f64(),
        fetches
    );
    Ok(())
}

struct Cycle {
    wall: Duration,
    cpu_ms: f64,
    allocated: usize,
}

/// One fetch from every kubelet, `IN_FLIGHT` at a time, each worker reusing one body buffer.
async fn cycle(client: &KubeletClient, urls: &Arc<Vec<String>>) -> Result<Cycle, Box<dyn Error>> {
    let (started, cpu0, allocated0) = (Instant::now(), cpu_ms()?, ALLOCATOR.total_allocated());
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..IN_FLIGHT {
        let (client, urls) = (client.clone(), urls.clone());
        workers.spawn(async move {
            let mut body = Vec::new();
            for url in urls.iter().skip(worker).step_by(IN_FLIGHT) {
                client.fetch(url, &mut body).await.map_err(|e| e.to_string())?;
                if body.len() != 34_916 {
                    return Err(format!("{url}: {} bytes", body.len()));
                }
            }
            Ok::<(), String>(())
        });
    }
    while let Some(done) = workers.join_next().await {
        done??;
    }
    Ok(Cycle {
        wall: started.elapsed(),
        cpu_ms: cpu_ms()? - cpu0,
        allocated: ALLOCATOR.total_allocated() - allocated0,
    })
}

fn rss_kib() -> Result<u64, Box<dyn Error>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmRSS")?.parse()?)
}

/// User + system CPU time of this process (clock ticks of 10 ms).
fn cpu_ms() -> Result<f64, Box<dyn Error>> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after_name = &stat[stat.rfind(')').ok_or("bad stat")? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(ticks as f64 * 10.0)
}
