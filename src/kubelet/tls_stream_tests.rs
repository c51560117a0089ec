use std::net::SocketAddr;

use rustls::ProtocolVersion;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// A self-signed server certificate for `localhost`, and a client config trusting it (and only
/// it).
struct Pki {
    cert: rustls_pki_types::CertificateDer<'static>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
}

impl Pki {
    /// Certificates of different `common_name`s are told apart (and do not verify each other).
    fn new(common_name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Pki {
            cert: cert.der().clone(),
            key: rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        }
    }

    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.clone()).unwrap();
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    fn server_config(&self, version: &'static rustls::SupportedProtocolVersion) -> Arc<rustls::ServerConfig> {
        Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[version])
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![self.cert.clone()], self.key.clone_key())
                .unwrap(),
        )
    }
}

type ServerStream = tokio_rustls::server::TlsStream<TcpStream>;

/// A TLS server (tokio-rustls) for one connection, running `handle` on it; the handle's
/// result is what the returned task yields. A failed handshake yields its error instead.
async fn serve_one<F, Fut, T>(
    config: Arc<rustls::ServerConfig>,
    handle: F,
) -> (SocketAddr, tokio::task::JoinHandle<Result<T, io::Error>>)
where
    F: FnOnce(ServerStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
    T: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await?;
        Ok(handle(tls).await)
    });
    (addr, task)
}

async fn connect_to(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    name: &str,
) -> io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    connect(config, ServerName::try_from(name.to_owned()).unwrap(), tcp).await
}

/// Reads until `want` bytes arrived, in reads of at most `room` bytes.
async fn read_exactly(stream: &mut TlsStream<TcpStream>, want: usize, room: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; room];
    while got.len() < want {
        let n = stream.read(&mut buf).await.unwrap();
        assert_ne!(n, 0, "stream ended after {} of {want} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// `len` bytes that differ from one offset to the next, so misordered pieces show.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Answers each line the client sends ("N\n") with N pattern bytes, written in `piece`-byte
/// writes (a record each); returns the protocol version negotiated.
async fn answer_lines(mut tls: ServerStream, piece: usize) -> Option<ProtocolVersion> {
    let version = tls.get_ref().1.protocol_version();
    let mut line = Vec::new();
    let mut byte = [0u8];
    while tls.read(&mut byte).await.unwrap_or(0) == 1 {
        if byte[0] != b'\n' {
            line.push(byte[0]);
            continue;
        }
        let len: usize = String::from_utf8(std::mem::take(&mut line)).unwrap().parse().unwrap();
        for chunk in pattern(len).chunks(piece) {
            tls.write_all(chunk).await.unwrap();
        }
        tls.flush().await.unwrap();
    }
    version
}

async fn exchange_over(version: &'static rustls::SupportedProtocolVersion, expected: ProtocolVersion) {
    let pki = Pki::new("kubelet");
    let (addr, server) = serve_one(pki.server_config(version), |tls| answer_lines(tls, 16 * 1024)).await;
    let mut stream = connect_to(addr, pki.client_config(), "localhost").await.unwrap();
    // Two requests on the one connection: a small answer, then one of many full records.
    stream.write_all(b"5\n").await.unwrap();
    stream.flush().await.unwrap();
    assert_eq!(read_exactly(&mut stream, 5, 64 * 1024).await, pattern(5));
    stream.write_all(b"100000\n").await.unwrap();
    stream.flush().await.unwrap();
    assert_eq!(read_exactly(&mut stream, 100_000, 64 * 1024).await, pattern(100_000));
    stream.shutdown().await.unwrap();
    assert_eq!(server.await.unwrap().unwrap(), Some(expected));
}

#[tokio::test]
async fn a_request_and_its_answer_pass_over_tls13() {
    exchange_over(&rustls::version::TLS13, ProtocolVersion::TLSv1_3).await;
}

#[tokio::test]
async fn a_request_and_its_answer_pass_over_tls12() {
    exchange_over(&rustls::version::TLS12, ProtocolVersion::TLSv1_2).await;
}

#[tokio::test]
async fn an_answer_in_many_small_records_is_read_whole_through_a_small_buffer() {
    let pki = Pki::new("kubelet");
    let (addr, server) = serve_one(pki.server_config(&rustls::version::TLS13), |tls| {
        answer_lines(tls, 1000)
    })
    .await;
    let mut stream = connect_to(addr, pki.client_config(), "localhost").await.unwrap();
    stream.write_all(b"70000\n").await.unwrap();
    stream.flush().await.unwrap();
    // Reads of 7 bytes: each record is handed out across many reads.
    assert_eq!(read_exactly(&mut stream, 70_000, 7).await, pattern(70_000));
    stream.write_all(b"3000\n").await.unwrap();
    stream.flush().await.unwrap();
    assert_eq!(read_exactly(&mut stream, 3000, 64 * 1024).await, pattern(3000));
    drop(stream);
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_http_response_split_across_records_is_read_by_the_http1_reader() {
    let pki = Pki::new("kubelet");
    let body = pattern(50_000);
    let mut response = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    response.extend_from_slice(&body);
    let (addr, server) = serve_one(pki.server_config(&rustls::version::TLS12), move |mut tls| async move {
        for _ in 0..2 {
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8];
                if tls.read(&mut byte).await.unwrap() == 0 {
                    return head;
                }
                head.push(byte[0]);
            }
            // Pieces that cut the head, the records and the reads anywhere.
            for piece in response.chunks(777) {
                tls.write_all(piece).await.unwrap();
            }
            tls.flush().await.unwrap();
            head.clear();
        }
        Vec::new()
    })
    .await;
    let mut stream = connect_to(addr, pki.client_config(), "localhost").await.unwrap();
    let mut buf = Vec::new();
    for _ in 0..2 {
        let request = b"GET /metrics/resource HTTP/1.1\r\nHost: localhost\r\n\r\n";
        let answer = crate::kubelet::http1::get(&mut stream, request, &mut buf, 1 << 20)
            .await
            .unwrap();
        assert_eq!((answer.status, answer.reusable), (200, true));
        assert_eq!(buf, body);
    }
    drop(stream);
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn close_notify_from_the_peer_ends_the_stream_after_its_data() {
    let pki = Pki::new("kubelet");
    let (addr, server) = serve_one(pki.server_config(&rustls::version::TLS13), |mut tls| async move {
        tls.write_all(b"bye").await.unwrap();
        // Sends close_notify.
        tls.shutdown().await.unwrap();
    })
    .await;
    let mut stream = connect_to(addr, pki.client_config(), "localhost").await.unwrap();
    let mut got = Vec::new();
    stream.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"bye");
    // And stays ended.
    assert_eq!(stream.read(&mut [0u8; 16]).await.unwrap(), 0);
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_connection_cut_without_close_notify_is_an_unexpected_eof() {
    let pki = Pki::new("kubelet");
    let (addr, server) = serve_one(pki.server_config(&rustls::version::TLS13), |mut tls| async move {
        tls.write_all(b"partial").await.unwrap();
        tls.flush().await.unwrap();
        // The TCP connection ends without close_notify: a truncation, not an end.
        let (tcp, _) = tls.into_inner();
        drop(tcp);
    })
    .await;
    let mut stream = connect_to(addr, pki.client_config(), "localhost").await.unwrap();
    assert_eq!(read_exactly(&mut stream, 7, 1024).await, b"partial");
    let error = stream.read(&mut [0u8; 16]).await.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{error}");
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_sends_close_notify() {
    let pki = Pki::new("kubelet");
    let (addr, server) = serve_one(pki.server_config(&rustls::version::TLS12), |mut tls| async move {
        let mut got = Vec::new();
        // An error here would be the connection ending without close_notify.
        tls.read_to_end(&mut got).await.map(|_| got)
    })
    .await;
    let mut stream = connect_to(addr, pki.client_config(), "localhost").await.unwrap();
    stream.write_all(b"last words").await.unwrap();
    stream.shutdown().await.unwrap();
    assert_eq!(server.await.unwrap().unwrap().unwrap(), b"last words");
}

#[tokio::test]
async fn a_certificate_from_an_unknown_issuer_fails_the_handshake_with_the_rustls_error_and_an_alert() {
    let (trusted, presented) = (Pki::new("kubelet"), Pki::new("impostor"));
    let (addr, server) = serve_one(presented.server_config(&rustls::version::TLS13), |_| async {}).await;
    let error = connect_to(addr, trusted.client_config(), "localhost")
        .await
        .unwrap_err();
    let inner = error.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
    assert_eq!(
        inner,
        Some(&rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        )),
        "{error}"
    );
    // The server was told why.
    let server_error = server.await.unwrap().unwrap_err();
    assert_eq!(
        server_error.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
        Some(&rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA)),
        "{server_error}"
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_fails_the_handshake() {
    let pki = Pki::new("kubelet");
    let (addr, _server) = serve_one(pki.server_config(&rustls::version::TLS12), |_| async {}).await;
    let error = connect_to(addr, pki.client_config(), "kubelet.example")
        .await
        .unwrap_err();
    let inner = error.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
    assert!(
        matches!(
            inner,
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. }
            ))
        ),
        "{error}"
    );
}

#[tokio::test]
async fn a_peer_that_closes_during_the_handshake_is_an_unexpected_eof() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        // The end of the stream (not a reset): the client hello stays unanswered.
        tcp.shutdown().await.unwrap();
        let _ = tcp.read_to_end(&mut Vec::new()).await;
    });
    let error = connect_to(addr, Pki::new("kubelet").client_config(), "localhost")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{error}");
    server.await.unwrap();
}

#[tokio::test]
async fn an_idle_stream_holds_no_buffer_and_works_again_after() {
    let pki = Pki::new("kubelet");
    let (addr, server) = serve_one(pki.server_config(&rustls::version::TLS13), |tls| {
        answer_lines(tls, 4096)
    })
    .await;
    let mut stream = connect_to(addr, pki.client_config(), "localhost").await.unwrap();
    for _ in 0..2 {
        stream.write_all(b"40000\n").await.unwrap();
        stream.flush().await.unwrap();
        assert_eq!(read_exactly(&mut stream, 40_000, 16 * 1024).await, pattern(40_000));
        assert!(stream.buffered_capacity() > 0);
        stream.release_buffers();
        assert_eq!(stream.buffered_capacity(), 0, "{stream:?}");
    }
    drop(stream);
    server.await.unwrap().unwrap();
}

#[test]
fn released_buffers_keep_what_is_pending() {
    let mut queue = ByteQueue::default();
    queue.push(b"abcdef");
    queue.consume(2);
    queue.room(READ_ROOM);
    queue.release();
    assert_eq!(queue.pending(), b"cdef");
    assert_eq!(queue.capacity(), 4);
    queue.consume(4);
    queue.release();
    assert_eq!(queue.capacity(), 0);
}
