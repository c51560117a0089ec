use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;

/// Guards against a hang; never stands in for a signal.
const GUARD: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_peer_that_never_reads_fails_the_write_with_timed_out() {
    let (ours, _theirs) = tokio::io::duplex(64);
    let mut guarded = StallGuard::new(ours, Duration::from_millis(50));
    let written = tokio::time::timeout(GUARD, guarded.write_all(&[0; 4096]))
        .await
        .expect("the stall deadline never fired");
    assert_eq!(written.unwrap_err().kind(), io::ErrorKind::TimedOut);
}

#[tokio::test]
async fn a_peer_that_reads_keeps_the_connection() {
    let (ours, mut theirs) = tokio::io::duplex(64);
    let mut guarded = StallGuard::new(ours, Duration::from_secs(5));
    let reader = tokio::spawn(async move {
        let mut all = Vec::new();
        theirs.read_to_end(&mut all).await.unwrap();
        all.len()
    });
    guarded.write_all(&[7; 64 * 1024]).await.unwrap();
    guarded.shutdown().await.unwrap();
    drop(guarded);
    assert_eq!(reader.await.unwrap(), 64 * 1024);
}

/// HTTP/1.1 sends a body's pieces in one vectored write only if every wrapper of the socket
/// says it takes them (hyper otherwise copies them into one buffer first).
#[tokio::test]
async fn a_vectored_socket_stays_vectored_behind_the_guard() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    assert!(tcp.is_write_vectored());
    assert!(StallGuard::new(tcp, Duration::from_secs(5)).is_write_vectored());
}
