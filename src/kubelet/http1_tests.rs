use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::ReadBuf;

use super::*;

/// A peer that answers with `reads`, one read each (cut to the reader's room), then the end of
/// the stream, and records what was written to it.
#[derive(Debug, Default)]
struct Scripted {
    reads: VecDeque<Vec<u8>>,
    written: Vec<u8>,
}

impl Scripted {
    fn new(reads: &[&[u8]]) -> Self {
        Scripted {
            reads: reads.iter().map(|r| r.to_vec()).collect(),
            written: Vec::new(),
        }
    }
}

impl AsyncRead for Scripted {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Some(mut next) = self.reads.pop_front() {
            let n = next.len().min(buf.remaining());
            buf.put_slice(&next[..n]);
            if n < next.len() {
                self.reads.push_front(next.split_off(n));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Scripted {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.written.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

const LIMIT: usize = 1 << 20;

/// One exchange against a peer sending `reads`; the response and the body as a string.
async fn exchange_with(reads: &[&[u8]], limit: usize) -> (Result<Response, ExchangeError>, String) {
    let mut peer = Scripted::new(reads);
    let mut body = Vec::new();
    let result = get(&mut peer, b"GET / HTTP/1.1\r\n\r\n", &mut body, limit).await;
    (result, String::from_utf8_lossy(&body).into_owned())
}

const OK: Response = Response {
    status: 200,
    gzip: false,
    reusable: true,
};

const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n\
    7;name=value;x=\"y\"\r\nnode_cp\r\n1A\r\nu_usage_seconds_total 5 1\n\r\n0\r\nX-Trailer: one\r\nX-Other: two\r\n\r\n";

#[tokio::test]
async fn chunked_body_with_extensions_and_trailers_is_decoded() {
    let (result, body) = exchange_with(&[CHUNKED], LIMIT).await;
    assert_eq!(result.unwrap(), OK);
    assert_eq!(body, "node_cpu_usage_seconds_total 5 1\n");
}

const SIZED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\nhello world\n";

#[tokio::test]
async fn content_length_body_is_read_exactly() {
    let (result, body) = exchange_with(&[SIZED], LIMIT).await;
    assert_eq!(result.unwrap(), OK);
    assert_eq!(body, "hello world\n");
}

#[tokio::test]
async fn responses_split_at_every_byte_are_read_the_same() {
    for whole in [SIZED, CHUNKED] {
        let expected = exchange_with(&[whole], LIMIT).await.1;
        for cut in 1..whole.len() {
            let (result, body) = exchange_with(&[&whole[..cut], &whole[cut..]], LIMIT).await;
            assert_eq!(result.unwrap(), OK, "cut at {cut}");
            assert_eq!(body, expected, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        let (result, body) = exchange_with(&bytes, LIMIT).await;
        assert_eq!(result.unwrap(), OK);
        assert_eq!(body, expected);
    }
}

#[tokio::test]
async fn the_request_is_sent_as_given() {
    let mut peer = Scripted::new(&[SIZED]);
    let mut body = Vec::new();
    get(&mut peer, b"GET /x HTTP/1.1\r\n\r\n", &mut body, LIMIT)
        .await
        .unwrap();
    assert_eq!(peer.written, b"GET /x HTTP/1.1\r\n\r\n");
}

#[tokio::test]
async fn one_connection_carries_two_exchanges() {
    let second = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbye";
    let mut peer = Scripted::new(&[SIZED, second]);
    let mut body = Vec::new();
    assert_eq!(get(&mut peer, b"A", &mut body, LIMIT).await.unwrap(), OK);
    assert_eq!(body, b"hello world\n");
    assert_eq!(get(&mut peer, b"B", &mut body, LIMIT).await.unwrap(), OK);
    assert_eq!(body, b"bye");
    assert_eq!(peer.written, b"AB");
}

#[tokio::test]
async fn connection_close_is_not_reused() {
    let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
    let (result, body) = exchange_with(&[close], LIMIT).await;
    assert_eq!(result.unwrap(), Response { reusable: false, ..OK });
    assert_eq!(body, "ok");
    let http10 = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
    assert!(!exchange_with(&[http10], LIMIT).await.0.unwrap().reusable);
}

#[tokio::test]
async fn a_body_without_length_runs_to_the_close_and_is_not_reused() {
    let (result, body) = exchange_with(&[b"HTTP/1.1 200 OK\r\n\r\nall ", b"of it"], LIMIT).await;
    assert_eq!(result.unwrap(), Response { reusable: false, ..OK });
    assert_eq!(body, "all of it");
}

#[tokio::test]
async fn bytes_after_the_body_keep_the_body_not_the_connection() {
    let (result, body) = exchange_with(&[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"], LIMIT).await;
    assert_eq!(result.unwrap(), Response { reusable: false, ..OK });
    assert_eq!(body, "ok");
}

#[tokio::test]
async fn truncated_bodies_are_errors() {
    let sized = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this";
    let (result, body) = exchange_with(&[sized], LIMIT).await;
    assert!(matches!(result, Err(ExchangeError::Body(_))), "{result:?}");
    assert_eq!(body, "", "nothing of a failed body is left");
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort";
    let (result, _) = exchange_with(&[chunked], LIMIT).await;
    assert!(matches!(result, Err(ExchangeError::Body(_))), "{result:?}");
    let no_last_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n";
    let (result, _) = exchange_with(&[no_last_chunk], LIMIT).await;
    assert!(matches!(result, Err(ExchangeError::Body(_))), "{result:?}");
}

#[tokio::test]
async fn malformed_chunks_are_errors() {
    for framing in [
        &b"zz\r\n"[..],
        b"2\r\nokXX0\r\n\r\n",
        b"2\nok\r\n0\r\n\r\n",
        b"1234567890abcdef0\r\n",
    ] {
        let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        response.extend_from_slice(framing);
        let (result, _) = exchange_with(&[&response], LIMIT).await;
        assert!(
            matches!(result, Err(ExchangeError::Body(_))),
            "{:?}: {result:?}",
            String::from_utf8_lossy(framing)
        );
    }
}

#[tokio::test]
async fn oversize_bodies_are_too_large_whatever_the_framing() {
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n6\r\n123456\r\n0\r\n\r\n";
    let (result, _) = exchange_with(&[chunked], 10).await;
    assert!(
        matches!(result, Err(ExchangeError::TooLarge { limit: 10 })),
        "{result:?}"
    );
    let (result, body) = exchange_with(&[chunked], 11).await;
    assert_eq!(result.unwrap(), OK);
    assert_eq!(body, "12345123456");
    let sized = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n12345123456";
    let (result, _) = exchange_with(&[sized], 10).await;
    assert!(
        matches!(result, Err(ExchangeError::TooLarge { limit: 10 })),
        "{result:?}"
    );
    let until_close = b"HTTP/1.1 200 OK\r\n\r\n12345123456";
    let (result, _) = exchange_with(&[until_close], 10).await;
    assert!(
        matches!(result, Err(ExchangeError::TooLarge { limit: 10 })),
        "{result:?}"
    );
}

#[tokio::test]
async fn interim_responses_are_skipped_and_switching_protocols_refused() {
    let continued = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let (result, body) = exchange_with(&[continued], LIMIT).await;
    assert_eq!(result.unwrap(), OK);
    assert_eq!(body, "ok");
    let switching = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
    let (result, _) = exchange_with(&[switching], LIMIT).await;
    assert_eq!(
        result.unwrap_err().to_string(),
        "invalid HTTP response: unexpected 101 Switching Protocols"
    );
}

#[tokio::test]
async fn other_statuses_return_after_the_head() {
    let forbidden = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nForbidden";
    let (result, _) = exchange_with(&[forbidden], LIMIT).await;
    assert_eq!(
        result.unwrap(),
        Response {
            status: 403,
            gzip: false,
            reusable: false
        }
    );
}

#[tokio::test]
async fn gzip_is_reported_and_left_compressed() {
    let gzipped = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\n\x1f\x8b\x08";
    let mut peer = Scripted::new(&[gzipped]);
    let mut body = Vec::new();
    let result = get(&mut peer, b"GET / HTTP/1.1\r\n\r\n", &mut body, LIMIT).await;
    assert_eq!(result.unwrap(), Response { gzip: true, ..OK });
    assert_eq!(body, b"\x1f\x8b\x08");
}

#[tokio::test]
async fn nothing_received_is_no_response_and_a_cut_head_is_not() {
    let (result, _) = exchange_with(&[], LIMIT).await;
    assert!(matches!(result, Err(ExchangeError::NoResponse(_))), "{result:?}");
    let (result, _) = exchange_with(&[b"HTTP/1.1 200 OK\r\nContent-"], LIMIT).await;
    assert!(matches!(result, Err(ExchangeError::Head(_))), "{result:?}");
    let (result, _) = exchange_with(&[b"garbage\r\n\r\n"], LIMIT).await;
    assert!(matches!(result, Err(ExchangeError::Head(_))), "{result:?}");
}

#[tokio::test]
async fn conflicting_or_unsupported_framing_is_refused() {
    for head in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    ] {
        let (result, _) = exchange_with(&[head], LIMIT).await;
        assert!(matches!(result, Err(ExchangeError::Head(_))), "{result:?}");
    }
    // Both framings: chunked wins (RFC 9112 6.3), and the connection is not kept.
    let both = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
    let (result, body) = exchange_with(&[both], LIMIT).await;
    assert_eq!(result.unwrap(), Response { reusable: false, ..OK });
    assert_eq!(body, "ok");
}

#[test]
fn urls_the_pool_builds_are_parsed() {
    let t = Target::parse("https://10.0.1.2:10250/metrics/resource").unwrap();
    assert_eq!(
        t,
        Target {
            tls: true,
            origin: "https://10.0.1.2:10250",
            authority: "10.0.1.2:10250",
            host: "10.0.1.2",
            port: 10250,
            path: "/metrics/resource",
        }
    );
    let t = Target::parse("https://[fd00::1]:10250/metrics/resource").unwrap();
    assert_eq!((t.host, t.port, t.authority), ("fd00::1", 10250, "[fd00::1]:10250"));
    let t = Target::parse("http://node1.example:10255/metrics/resource").unwrap();
    assert_eq!(
        (t.tls, t.host, t.port, t.origin),
        (false, "node1.example", 10255, "http://node1.example:10255")
    );
    let t = Target::parse("https://node1").unwrap();
    assert_eq!((t.port, t.path), (443, "/"));
    for bad in [
        "ftp://x/",
        "https://",
        "https://:1/",
        "https://x:port/",
        "https://x:99999/",
        "https://u@x/",
        "https://fd00::1/",
    ] {
        assert_eq!(Target::parse(bad), None, "{bad}");
    }
}

#[test]
fn the_request_head_has_every_header_once() {
    let target = Target::parse("https://[fd00::1]:10250/metrics/resource").unwrap();
    let head = String::from_utf8(request_head(&target, Some(b"Bearer abc"))).unwrap();
    assert_eq!(
        head,
        format!(
            "GET /metrics/resource HTTP/1.1\r\nHost: [fd00::1]:10250\r\nUser-Agent: metrics-server/v{} metrics-server-rs\r\n\
             Accept: text/plain;version=0.0.4;q=1,*/*;q=0.1\r\nAccept-Encoding: identity\r\nAuthorization: Bearer abc\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    let head = request_head(&target, None);
    assert!(!String::from_utf8(head).unwrap().contains("Authorization"));
}
