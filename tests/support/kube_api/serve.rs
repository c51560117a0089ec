//! The double's HTTP side: routing, lists with pagination, watch streams, field selectors.

use std::collections::BTreeMap;
use std::convert::Infallible;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{Change, Continuation, OpenWatch, Recorded, Resource, Shared, State, Verb};

/// What a watch with `selector` is sent for `change`, if anything.
pub(super) fn change_line(change: &Change, selector: &FieldSelector) -> Option<Bytes> {
    let was_in = change.before.as_ref().is_some_and(|o| selector.matches(o));
    let is_in = change.after.as_ref().is_some_and(|o| selector.matches(o));
    let kind = match (was_in, is_in) {
        (false, true) => "ADDED",
        (true, true) => "MODIFIED",
        // Deleted, or no longer selected (a pod leaving phase Running): gone for this watch.
        (true, false) => "DELETED",
        (false, false) => return None,
    };
    Some(event_line(kind, &change.object))
}

pub(super) fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap();
    line.push(b'\n');
    Bytes::from(line)
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

pub(super) async fn handle(shared: &Shared, request: Request<hyper::body::Incoming>) -> Response<Body> {
    let recorded = Recorded {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        query: parse_query(request.uri().query().unwrap_or("")),
        authorization: request
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    shared.requests.send_modify(|all| all.push(recorded.clone()));
    let Some(resource) = recorded.resource() else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    if recorded.method != "GET" {
        return status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the double only reads",
        );
    }
    let verb = recorded.verb();
    let mut held = shared.held.subscribe();
    // The sender lives as long as `shared`, which outlives this request.
    let _ = held.wait_for(|held| !held.contains(&(resource, verb))).await;
    let selector = match FieldSelector::parse(recorded.param("fieldSelector").unwrap_or("")) {
        Ok(selector) => selector,
        Err(message) => return status(StatusCode::BAD_REQUEST, "BadRequest", &message),
    };
    let mut state = shared.state.lock().unwrap();
    match verb {
        Verb::List => list(&mut state, resource, &selector, &recorded),
        Verb::Watch => {
            let (response, opened) = watch(&mut state, resource, selector, &recorded);
            if opened {
                shared.opened.send_modify(|all| all.push(recorded));
            }
            response
        }
    }
}

fn list(state: &mut State, resource: Resource, selector: &FieldSelector, request: &Recorded) -> Response<Body> {
    let (version, mut items) = match request.param("continue").filter(|t| !t.is_empty()) {
        Some(token) => match state.continuations.remove(token) {
            Some(rest) => (rest.resource_version, rest.remaining),
            None => {
                return status(
                    StatusCode::GONE,
                    "Expired",
                    "the provided continue parameter is too old",
                )
            }
        },
        None => {
            let objects = state.objects.get(&resource).into_iter().flat_map(BTreeMap::values);
            (
                state.resource_version,
                objects.filter(|o| selector.matches(o)).cloned().collect(),
            )
        }
    };
    let limit = request
        .param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let page = [limit, state.page_cap]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(usize::MAX);
    let mut metadata = json!({"resourceVersion": version.to_string()});
    if items.len() > page {
        let remaining = items.split_off(page);
        state.next_token += 1;
        let token = format!("page-{}", state.next_token);
        metadata["continue"] = token.clone().into();
        state.continuations.insert(
            token,
            Continuation {
                resource_version: version,
                remaining,
            },
        );
    }
    let body = json!({
        "kind": format!("{}List", resource.kind()),
        "apiVersion": "v1",
        "metadata": metadata,
        "items": items,
    });
    json_response(StatusCode::OK, serde_json::to_vec(&body).unwrap())
}

/// Answers a watch; also says whether it stays open for live events.
fn watch(state: &mut State, resource: Resource, selector: FieldSelector, request: &Recorded) -> (Response<Body>, bool) {
    let (events, receiver) = mpsc::unbounded_channel::<Bytes>();
    let from = request.param("resourceVersion").unwrap_or("");
    let mut open = true;
    match from.parse::<u64>() {
        // "" or "0": the current state as ADDED events, then changes.
        Err(_) | Ok(0) => {
            for object in state.objects.get(&resource).into_iter().flat_map(BTreeMap::values) {
                if selector.matches(object) {
                    let _ = events.send(event_line("ADDED", object));
                }
            }
        }
        Ok(version) if version < state.compacted_at => {
            let gone = json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("too old resource version: {version} ({})", state.compacted_at),
                "reason": "Expired", "code": 410,
            });
            let _ = events.send(event_line("ERROR", &gone));
            open = false;
        }
        Ok(version) => {
            for change in state
                .history
                .iter()
                .filter(|c| c.resource == resource && c.resource_version > version)
            {
                if let Some(line) = change_line(change, &selector) {
                    let _ = events.send(line);
                }
            }
        }
    }
    if open {
        state.watches.push(OpenWatch {
            resource,
            selector,
            bookmarks: request.param("allowWatchBookmarks") == Some("true"),
            events,
        });
    }
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let line = receiver.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(line)), receiver))
    });
    let mut response = Response::new(StreamBody::new(stream.boxed()).boxed_unsync());
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    (response, open)
}

fn json_response(code: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
    *response.status_mut() = code;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "code": code.as_u16()});
    json_response(code, serde_json::to_vec(&body).unwrap())
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// `path=value`, `path==value` and `path!=value` terms, ANDed; a path is dotted JSON
/// (`status.phase`), a missing field reads as "".
#[derive(Debug, Clone, Default)]
pub(super) struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for term in text.split(',').filter(|t| !t.trim().is_empty()) {
            let (path, equal, value) = if let Some((p, v)) = term.split_once("!=") {
                (p, false, v)
            } else if let Some((p, v)) = term.split_once("==") {
                (p, true, v)
            } else if let Some((p, v)) = term.split_once('=') {
                (p, true, v)
            } else {
                return Err(format!("invalid field selector: {term:?}"));
            };
            terms.push((path.trim().to_owned(), equal, value.trim().to_owned()));
        }
        Ok(FieldSelector { terms })
    }

    fn matches(&self, object: &Value) -> bool {
        self.terms.iter().all(|(path, equal, value)| {
            let found = path
                .split('.')
                .try_fold(object, |o, part| o.get(part))
                .and_then(Value::as_str)
                .unwrap_or("");
            (found == value) == *equal
        })
    }
}
