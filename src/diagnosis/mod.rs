//! Self-diagnosis: why the Metrics API is not available, said where an operator looks.
//!
//! * `/readyz` (anyone may read it): failing checks explain themselves in one line
//!   ([`explain`]); each new explanation is also logged once, not once per probe.
//! * `/debug/scrapes` (authorized like any other non-resource path, `get`): every node's latest
//!   scrape and a summary as JSON ([`report`]); `?node=NAME` keeps one node.
//!
//! It plugs into the generic server as a [`Handler`] wrapped around the metrics API, so the
//! generic server needs no knowledge of it.

pub mod explain;
pub mod report;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::http::request::Parts;
use hyper::Method;

use crate::apiserver::{Handler, Response, Status};
use crate::inventory::selector::LabelSelector;
use crate::inventory::Inventory;
use crate::scrape::status::ScrapeStatus;
use crate::store::Store;

/// The debug endpoint's path; listed in `/`.
pub const DEBUG_SCRAPES_PATH: &str = "/debug/scrapes";

/// Everything the explanations and the report read.
#[derive(Debug)]
pub struct Diagnosis {
    status: Arc<ScrapeStatus>,
    inventory: Arc<dyn Inventory>,
    store: Arc<Store>,
    node_selector: LabelSelector,
    resolution: Duration,
    /// The explanation last logged per check, so a change is logged once.
    logged: Mutex<HashMap<&'static str, String>>,
}

impl Diagnosis {
    pub fn new(
        status: Arc<ScrapeStatus>,
        inventory: Arc<dyn Inventory>,
        store: Arc<Store>,
        node_selector: LabelSelector,
        resolution: Duration,
    ) -> Self {
        Diagnosis {
            status,
            inventory,
            store,
            node_selector,
            resolution,
            logged: Mutex::default(),
        }
    }

    /// `metric-storage-ready`: upstream's rule, with the reason explained.
    pub fn storage_check(&self) -> Result<(), String> {
        if self.store.is_ready(Instant::now()) {
            return self.passed("metric-storage-ready");
        }
        let selected = self.selected();
        let states = self.status.all();
        let text = explain::storage(&explain::View {
            inventory_synced: self.inventory.has_synced(),
            inventory_nodes: self.inventory.snapshot().nodes.len(),
            selected: &selected,
            node_selector: &self.node_selector,
            states: &states,
        });
        Err(self.failed("metric-storage-ready", text))
    }

    /// `metric-informer-sync`: upstream's message, then the last list/watch error if any.
    pub fn informer_check(&self) -> Result<(), String> {
        match self.inventory.unsynced() {
            None => self.passed("metric-informer-sync"),
            Some(informer) => {
                let text = explain::informer(informer, self.inventory.last_error().as_deref());
                Err(self.failed("metric-informer-sync", text))
            }
        }
    }

    /// The `/debug/scrapes` document, all nodes or only `node`.
    pub fn report(&self, node: Option<&str>) -> report::Report {
        let selected = self.selected();
        let states = self.status.all();
        report::build(
            report::Inputs {
                selected: &selected,
                states: &states,
                cycle: self.status.cycle(),
                resolution: self.resolution,
                node_selector: self.node_selector.to_string(),
                inventory_synced: self.inventory.has_synced(),
                inventory_error: self.inventory.last_error(),
                store_ready: self.store.is_ready(Instant::now()),
            },
            node,
        )
    }

    fn selected(&self) -> Vec<String> {
        let snapshot = self.inventory.snapshot();
        snapshot
            .nodes
            .values()
            .filter(|n| self.node_selector.matches(&n.labels))
            .map(|n| n.name.clone())
            .collect()
    }

    fn passed(&self, check: &'static str) -> Result<(), String> {
        let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        if logged.remove(check).is_some() {
            tracing::info!(check, "Readiness check passes now");
        }
        Ok(())
    }

    fn failed(&self, check: &'static str, text: String) -> String {
        let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        if logged.get(check) != Some(&text) {
            tracing::info!(check, reason = %text, "Readiness check fails");
            logged.insert(check, text.clone());
        }
        text
    }

    fn respond(&self, req: &Parts) -> Response {
        if req.method != Method::GET && req.method != Method::HEAD {
            return Status::method_not_allowed().into_response();
        }
        let node = req.uri.query().and_then(|q| query_value(q, "node"));
        let report = self.report(node.as_deref());
        // A struct of strings, numbers and maps always serializes; empty is the impossible case.
        let mut body = serde_json::to_vec_pretty(&report).unwrap_or_default();
        body.push(b'\n');
        crate::apiserver::ok_bytes(crate::apiserver::content_type::JSON, body.into())
    }
}

/// The metrics API with `/debug/scrapes` in front of it.
#[derive(Debug)]
pub struct WithDiagnosis<H> {
    pub inner: Arc<H>,
    pub diagnosis: Arc<Diagnosis>,
}

impl<H: Handler> Handler for WithDiagnosis<H> {
    fn handle(&self, req: &Parts) -> Option<Response> {
        if req.uri.path() == DEBUG_SCRAPES_PATH {
            return Some(self.diagnosis.respond(req));
        }
        self.inner.handle(req)
    }

    fn is_heavy(&self, req: &Parts) -> bool {
        self.inner.is_heavy(req)
    }
}

/// The first value of `key` in a query string, `+` and `%XX` decoded.
fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k) == key).then(|| decode(v))
    })
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_filter_is_read_from_the_query() {
        assert_eq!(query_value("node=node-1", "node").as_deref(), Some("node-1"));
        assert_eq!(query_value("x=1&node=a%2Db+c", "node").as_deref(), Some("a-b c"));
        assert_eq!(query_value("nodes=x", "node"), None);
    }
}
