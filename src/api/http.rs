//! The metrics API as the generic server's [`Handler`]: method and representation checks,
//! then the read, then typed errors turned into Kubernetes `Status` bodies.

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::Method;

use super::{ApiError, MetricsApi, ReadTime, Route, GROUP};
use crate::apiserver::negotiate::{negotiate_headers, Format};
use crate::apiserver::{Body, Handler, Response, Status};

/// Representations this API produces today.
const OFFERS: [Format; 1] = [Format::Json];

impl Handler for MetricsApi {
    fn handle(&self, req: &Parts) -> Option<Response> {
        let (version, route) = Route::parse(req.uri.path())?;
        if req.method != Method::GET && req.method != Method::HEAD {
            return Some(status_response(&ApiError::MethodNotAllowed));
        }
        let representation = match negotiate_headers(&req.headers, &OFFERS) {
            Ok(r) => r,
            Err(not_acceptable) => return Some(not_acceptable.into_status().into_response()),
        };
        let mut body = Vec::with_capacity(4096);
        Some(
            match self.get_json(version, &route, req.uri.query(), ReadTime::now(), &mut body) {
                Ok(()) => {
                    let mut response = Response::new(Body::new(Bytes::from(body)));
                    response
                        .headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static(representation.content_type()));
                    response
                }
                Err(error) => status_response(&error),
            },
        )
    }
}

/// The `Status` upstream sends for each refusal.
pub fn status_for(error: &ApiError) -> Status {
    match error {
        ApiError::NodeNotFound(name) => Status::not_found("", "node", name),
        ApiError::NodeMetricsNotFound(name) => Status::not_found(GROUP, "nodemetrics", name),
        ApiError::PodNotFound { name, .. } => Status::not_found("", "pods", name),
        ApiError::PodMetricsNotFound { namespace, name } => {
            Status::not_found(GROUP, "podmetrics", &format!("{namespace}/{name}"))
        }
        ApiError::BadRequest(message) => Status::bad_request(message.clone()),
        ApiError::WatchNotSupported { resource } => Status::method_not_supported(GROUP, resource, "watch"),
        ApiError::MethodNotAllowed => Status::method_not_allowed(),
    }
}

fn status_response(error: &ApiError) -> Response {
    status_for(error).into_response()
}
