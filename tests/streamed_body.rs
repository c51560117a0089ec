//! A response body of many shared pieces (as the LIST of every pod is sent) over real TLS on
//! loopback, HTTP/1.1 and HTTP/2: `Content-Length` is the length of the pieces, the bytes that
//! arrive are the pieces in order, HEAD gets the length alone, and the connection serves the
//! next request after it.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a failed step should fail the test loudly"
)]

#[path = "support/generic_server.rs"]
mod generic_server;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use hyper::http::request::Parts;
use hyper::Method;
use metrics_server_rs::apiserver::{Body, Handler, HealthChecks, Limits, Response};

use generic_server::{client, guarded};

const PIECES: &str = "/apis/metrics.k8s.io/v1beta1/nodes";

/// A header, 300 node-sized pieces of different bytes and lengths, one piece larger than the
/// server's largest frame, and a footer.
fn pieces() -> &'static [Bytes] {
    static PIECES: OnceLock<Vec<Bytes>> = OnceLock::new();
    PIECES.get_or_init(|| {
        let mut pieces = vec![Bytes::from_static(b"{\"items\":[")];
        for i in 0..300usize {
            let len = 10_000 + (i * 37) % 8_000;
            pieces.push((0..len).map(|b| ((b + i) % 251) as u8).collect::<Vec<u8>>().into());
        }
        pieces.push(vec![b'x'; 200 * 1024].into());
        pieces.push(Bytes::from_static(b"]}\n"));
        pieces
    })
}

fn expected() -> Vec<u8> {
    pieces().concat()
}

struct PiecesApi;

impl Handler for PiecesApi {
    fn handle(&self, req: &Parts) -> Option<Response> {
        (req.uri.path() == PIECES).then(|| Response::new(Body::from_pieces(pieces().to_vec())))
    }
}

async fn pieces_over(h2: bool) {
    let run = generic_server::start(
        HealthChecks::builder().build().unwrap(),
        Arc::new(PiecesApi),
        Limits::default(),
    )
    .await;
    let (mut client, _conn) = guarded("connecting", client(&run, h2)).await;
    let want = expected();
    for _ in 0..2 {
        let req = hyper::Request::builder()
            .uri(format!("https://localhost{PIECES}"))
            .body(http_body_util::Empty::new())
            .unwrap();
        let (head, body) = guarded("GET", client.send(req)).await.into_parts();
        assert_eq!(head.status, 200);
        assert_eq!(head.headers["content-length"], want.len().to_string().as_str());
        let got = guarded("the body", http_body_util::BodyExt::collect(body))
            .await
            .unwrap()
            .to_bytes();
        assert!(got == want, "{} bytes arrived, {} sent", got.len(), want.len());
    }
    let (code, headers, body) = guarded("HEAD", client.call(Method::HEAD, PIECES)).await;
    assert_eq!((code, body.as_str()), (200, ""));
    assert_eq!(headers["content-length"], want.len().to_string().as_str());
}

#[tokio::test]
async fn a_body_of_pieces_arrives_whole_with_its_length_over_http1() {
    pieces_over(false).await;
}

#[tokio::test]
async fn a_body_of_pieces_arrives_whole_with_its_length_over_http2() {
    pieces_over(true).await;
}
