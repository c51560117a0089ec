//! Generic aggregated-apiserver plumbing: TLS serving, health endpoints, legacy discovery, content
//! negotiation and `metav1.Status` error bodies, shaped like `k8s.io/apiserver` so that the
//! kube-apiserver aggregator and `kubectl` cannot tell the difference.
//!
//! It deliberately knows nothing about metrics: the application behind it (the `metrics.k8s.io`
//! API) plugs in through [`Handler`], declares its groups through [`discovery::ApiGroup`] and its
//! health checks through [`health::HealthChecksBuilder`]; `main` wires the two together. It does
//! not compress responses; OpenAPI documents are the application's, served through [`Handler`].
//!
//! Files: [`serve`] (accept loop, routing), [`tls`] (serving certificates and rustls
//! configuration), [`cert_reload`] (serving pair followed on disk), [`cipher_suites`]
//! (`--tls-cipher-suites`), [`health`] (`/healthz`, `/livez`, `/readyz`), [`discovery`]
//! (`/apis…`, legacy and aggregated), [`body`] (response bodies of shared pieces), [`negotiate`](mod@negotiate) (`Accept`), [`status`] (error
//! bodies), [`json`] (Go-compatible JSON bytes), [`protobuf`] (wire primitives and the `k8s\0`
//! envelope). Overload: [`inflight`] (max-in-flight, 429, 413), [`outbound`] (response bodies
//! carry their permits), [`stall`] (write-progress deadline). Delegated security, in request order: [`client_cert`] (certificates asked for in
//! the handshake, verified per request), [`client_ca`] (trusted CAs from flags or the cluster's
//! ConfigMap), [`authn`] (who), [`request_info`] (what), [`authz`] (allowed?), [`review`]
//! (TokenReview and SubjectAccessReview), [`cache`] (their answers), [`delegation`] (the gate),
//! [`options`] (the flags).

mod aggregated;
pub mod authn;
pub mod authz;
pub mod body;
pub mod cache;
pub mod cert_reload;
pub mod cipher_suites;
pub mod client_ca;
pub mod client_cert;
pub mod delegation;
pub mod discovery;
pub mod health;
pub mod inflight;
pub mod json;
pub mod negotiate;
pub mod options;
pub mod outbound;
pub mod protobuf;
pub mod request_info;
pub mod review;
pub mod serve;
pub mod stall;
pub mod status;
#[cfg(test)]
mod test_pki;
pub mod tls;
pub mod write_batch;
mod x509_name;

pub use client_cert::PeerChain;
pub use delegation::{Delegation, DelegationOptions};
pub use discovery::{ApiGroup, ApiResource, ApiVersion, Discovery};
pub use health::{Endpoint, HealthChecks, HealthChecksBuilder};
pub use negotiate::{
    negotiate, negotiate_headers, DiscoveryVersion, Format, NotAcceptable, Representation, TableVersion,
};
pub use options::{SecurityFlags, ServerRunFlags};
pub use serve::{Limits, MetricsText, Server};
pub use status::{Status, StatusCause, StatusDetails, StatusReason};
pub use tls::{load_or_generate, server_config, serving_config, CertSource, CertifiedKeyPair, TlsOptions, TlsVersion};

/// Every response body is complete when the handler returns (the API is GET-only): one buffer,
/// or the shared pieces of a LIST of every pod (see [`body`]).
pub use body::Body;
/// The response type of the whole server.
pub type Response = hyper::Response<Body>;

/// The application (the metrics API) behind the generic server.
///
/// The server hands it requests for `/apis/<group>/<version>/…` of a group and version that
/// [`Discovery`] knows, and any path the server does not own itself (e.g. `/openapi/v2`). It
/// receives every method: it answers HEAD like GET (the server drops the body) and anything else
/// with a 405 [`Status`]. Returning `None` makes the server answer its generic plain-text 404.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request from its method, URI and headers (the body is never read).
    fn handle(&self, req: &hyper::http::request::Parts) -> Option<Response>;

    /// Whether answering `req` may hold a thread for long (a list of thousands of objects):
    /// the server then runs [`handle`](Self::handle) on the blocking pool instead of an API
    /// worker. Asked after the gate, for every request the handler will answer, so it must be
    /// cheap.
    fn is_heavy(&self, _req: &hyper::http::request::Parts) -> bool {
        false
    }
}

/// An error and its causes, `: `-separated, for log fields.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Content types used by more than one file.
pub(crate) mod content_type {
    pub(crate) const JSON: &str = "application/json";
    pub(crate) const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
    pub(crate) const TEXT: &str = "text/plain; charset=utf-8";
}

/// Go's `http.Error`/`http.NotFound` shape: plain text, `nosniff`, and a trailing newline.
pub(crate) fn plain_text(code: hyper::StatusCode, text: &str) -> Response {
    use hyper::header::{HeaderValue, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
    let mut body = String::with_capacity(text.len() + 1);
    body.push_str(text);
    body.push('\n');
    let mut resp = Response::new(Body::new(body.into()));
    *resp.status_mut() = code;
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type::TEXT));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

/// Go's mux answer for a path nobody serves: `404 page not found\n` as plain text.
pub(crate) fn not_found_page() -> Response {
    plain_text(hyper::StatusCode::NOT_FOUND, "404 page not found")
}

/// A 200 response with the given content type and pre-encoded body.
pub(crate) fn ok_bytes(content_type: &'static str, body: bytes::Bytes) -> Response {
    let mut resp = Response::new(Body::new(body));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    resp
}
