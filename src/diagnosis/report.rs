//! The `/debug/scrapes` document: every node's latest scrape and a summary. Field names are
//! camelCase and stable; absent values are `null`, never omitted, so scripts can rely on them.
//! It carries no credentials and no kubelet bodies: only addresses, reason labels, the error
//! messages the log shows, times and counts.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::explain::Standing;
use crate::api::go_duration::go_duration_string;
use crate::api::rfc3339::rfc3339_seconds_string;
use crate::kubelet::Timestamp;
use crate::scrape::status::{CycleState, NodeScrapeState};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub summary: Summary,
    /// Sorted by name; only the `?node=` one when given.
    pub nodes: Vec<NodeReport>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Nodes selected for scraping, plus nodes still remembered from the last cycle.
    pub nodes: usize,
    pub healthy: usize,
    pub failing: usize,
    /// Not scraped yet.
    pub pending: usize,
    pub failing_by_reason: BTreeMap<&'static str, usize>,
    pub resolution: String,
    /// `--node-selector`, `""` when none.
    pub node_selector: String,
    pub cycles: u64,
    pub last_cycle_start: Option<String>,
    pub last_cycle_duration: Option<String>,
    pub inventory_synced: bool,
    pub inventory_error: Option<String>,
    pub store_ready: bool,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NodeReport {
    pub name: String,
    /// `healthy`, `failing` or `pending`.
    pub state: &'static str,
    /// The kubelet URL of the latest attempt.
    pub address: Option<String>,
    pub last_success_time: Option<String>,
    pub last_error: Option<ErrorReport>,
    pub consecutive_failures: u32,
    /// Pods in the latest successful batch.
    pub pods: Option<usize>,
    pub last_scrape_duration: Option<String>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReport {
    pub reason: &'static str,
    pub message: String,
    pub time: Option<String>,
}

/// Everything the report is made of, gathered by the caller.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub selected: &'a [String],
    pub states: &'a BTreeMap<String, NodeScrapeState>,
    pub cycle: CycleState,
    pub resolution: Duration,
    pub node_selector: String,
    pub inventory_synced: bool,
    pub inventory_error: Option<String>,
    pub store_ready: bool,
}

pub fn build(inputs: Inputs<'_>, only: Option<&str>) -> Report {
    let mut names: Vec<&str> = inputs.selected.iter().map(String::as_str).collect();
    names.extend(inputs.states.keys().map(String::as_str));
    names.sort_unstable();
    names.dedup();
    let all: Vec<NodeReport> = names.iter().map(|n| node(n, inputs.states.get(*n))).collect();
    let count = |state: &str| all.iter().filter(|n| n.state == state).count();
    let mut failing_by_reason = BTreeMap::new();
    for reason in all.iter().filter_map(|n| n.last_error.as_ref()).map(|e| e.reason) {
        *failing_by_reason.entry(reason).or_insert(0) += 1;
    }
    let summary = Summary {
        nodes: all.len(),
        healthy: count("healthy"),
        failing: count("failing"),
        pending: count("pending"),
        failing_by_reason,
        resolution: go_duration_string(inputs.resolution),
        node_selector: inputs.node_selector,
        cycles: inputs.cycle.started,
        last_cycle_start: inputs.cycle.last_start.map(time),
        last_cycle_duration: inputs.cycle.last_duration.map(millis),
        inventory_synced: inputs.inventory_synced,
        inventory_error: inputs.inventory_error,
        store_ready: inputs.store_ready,
    };
    let nodes = all.into_iter().filter(|n| only.is_none_or(|o| o == n.name)).collect();
    Report { summary, nodes }
}

fn node(name: &str, state: Option<&NodeScrapeState>) -> NodeReport {
    let standing = match Standing::of(state) {
        Standing::Pending => "pending",
        Standing::Failing => "failing",
        Standing::Once | Standing::Served => "healthy",
    };
    let Some(state) = state else {
        return NodeReport {
            name: name.to_owned(),
            state: standing,
            address: None,
            last_success_time: None,
            last_error: None,
            consecutive_failures: 0,
            pods: None,
            last_scrape_duration: None,
        };
    };
    NodeReport {
        name: name.to_owned(),
        state: standing,
        address: state.address.clone(),
        last_success_time: state.last_success.map(time),
        last_error: state.last_error.as_ref().map(|(reason, message)| ErrorReport {
            reason,
            message: message.clone(),
            time: state.last_error_time.map(time),
        }),
        consecutive_failures: state.consecutive_failures,
        pods: state.pods,
        last_scrape_duration: state.last_duration.map(millis),
    }
}

/// RFC 3339 in UTC, whole seconds, as Kubernetes prints times.
fn time(t: SystemTime) -> String {
    rfc3339_seconds_string(Timestamp::from_system_time(t))
}

/// A Go duration string at millisecond resolution (`1.234s`, `15ms`).
fn millis(d: Duration) -> String {
    go_duration_string(Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
}
