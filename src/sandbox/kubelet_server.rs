//! A minimal kubelet stand-in: an HTTPS server answering `GET /metrics/resource` with whatever
//! its responder says. The sandbox's simulated kubelets and the integration tests' fake
//! kubelets (fixtures, faults) are both built on it.

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// What a fake kubelet answers.
#[derive(Debug, Clone)]
pub struct KubeletReply {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// Decides the reply to one request: `(path, Authorization header)`.
pub type Responder = Arc<dyn Fn(&str, Option<&str>) -> KubeletReply + Send + Sync>;

/// Serves until the task is dropped. Bodies are gzipped when the client accepts it, as the
/// kubelet's Prometheus handler does.
pub async fn serve(listener: TcpListener, tls: TlsAcceptor, respond: Responder) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let tls = tls.clone();
        let respond = respond.clone();
        tokio::spawn(async move {
            let Ok(stream) = tls.accept(tcp).await else { return };
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let respond = respond.clone();
                async move { Ok::<_, Infallible>(reply(&req, &respond)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn reply(req: &Request<hyper::body::Incoming>, respond: &Responder) -> Response<Full<Bytes>> {
    let auth = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let KubeletReply { status, body } = respond(req.uri().path(), auth);
    let gzip = req
        .headers()
        .get(ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    let body = if gzip {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        match encoder.write_all(&body).and_then(|()| encoder.finish()) {
            Ok(compressed) => {
                response
                    .headers_mut()
                    .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                compressed
            }
            Err(_) => body,
        }
    } else {
        body
    };
    *response.body_mut() = Full::new(Bytes::from(body));
    response
}
