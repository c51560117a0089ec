//! The metrics API as the generic server's [`Handler`]: the OpenAPI documents, then for
//! resource paths the method and representation checks, the read, and typed errors turned into
//! Kubernetes `Status` bodies in the negotiated representation.

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::Method;

use super::{ApiError, MetricsApi, ReadTime, Route, GROUP};
use crate::apiserver::negotiate::{negotiate_headers, Format};
use crate::apiserver::{Handler, Response, Status};

/// Representations this API produces: JSON, Table (as JSON) and protobuf.
const OFFERS: [Format; 3] = [Format::Json, Format::Table, Format::Protobuf];

/// A LIST that may walk more objects than this runs on the blocking pool (see
/// [`Handler::is_heavy`]). Each object costs ~0.5–1 µs to select and encode, so this is ~1 ms
/// of work, against ~10 µs to hand it to another thread and back.
pub const HEAVY_LIST_OBJECTS: usize = 1_000;

impl Handler for MetricsApi {
    fn is_heavy(&self, req: &Parts) -> bool {
        Route::parse(req.uri.path()).is_some_and(|(_, route)| self.scope(&route) > HEAVY_LIST_OBJECTS)
    }

    fn handle(&self, req: &Parts) -> Option<Response> {
        if let Some(resp) = self.openapi.respond(req) {
            return Some(resp);
        }
        let (version, route) = Route::parse(req.uri.path())?;
        if req.method != Method::GET && req.method != Method::HEAD {
            return Some(status_for(&ApiError::MethodNotAllowed).into_response());
        }
        let representation = match negotiate_headers(&req.headers, &OFFERS) {
            Ok(r) => r,
            Err(not_acceptable) => return Some(not_acceptable.into_status().into_response()),
        };
        Some(
            match self.read(version, &route, req.uri.query(), ReadTime::now(), representation) {
                Ok(body) => {
                    let mut response = Response::new(body);
                    response
                        .headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static(representation.content_type()));
                    response
                }
                Err(error) => status_for(&error).into_negotiated_response(representation),
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
