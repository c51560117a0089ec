//! Why a readiness check fails, in one line an operator can act on.
//!
//! These lines go into `/readyz`, which anyone may read (`--authorization-always-allow-paths`),
//! so they carry counts, reason labels and one shortened sample message per reason, never node
//! names or addresses: those are in `/debug/scrapes`, behind authorization.

use std::collections::BTreeMap;

use crate::inventory::selector::LabelSelector;
use crate::scrape::status::NodeScrapeState;

/// Where `/readyz` sends the operator for per-node details.
const SEE: &str = "see /debug/scrapes";

/// Upstream's message for `metric-storage-ready`; the explanation follows it.
const NO_METRICS: &str = "no metrics to serve";

/// A sample error message is cut at this many characters.
const SAMPLE_CHARS: usize = 100;

/// What the explanations look at, gathered once per probe.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub inventory_synced: bool,
    /// Nodes in the inventory, selected or not.
    pub inventory_nodes: usize,
    /// Names of the nodes the node selector keeps.
    pub selected: &'a [String],
    pub node_selector: &'a LabelSelector,
    pub states: &'a BTreeMap<String, NodeScrapeState>,
}

/// Where one node stands, from its scrape state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Not scraped yet.
    Pending,
    /// The latest scrape failed.
    Failing,
    /// Scraped once since it last failed: the store needs a second point for a rate.
    Once,
    /// Scraped at least twice in a row: served.
    Served,
}

impl Standing {
    pub fn of(state: Option<&NodeScrapeState>) -> Self {
        match state {
            None => Standing::Pending,
            Some(s) if s.consecutive_failures > 0 => Standing::Failing,
            Some(s) if s.consecutive_successes >= 2 => Standing::Served,
            Some(s) if s.consecutive_successes == 1 => Standing::Once,
            Some(_) => Standing::Pending,
        }
    }
}

/// `metric-storage-ready`'s reason while the store is not ready.
pub fn storage(view: &View<'_>) -> String {
    format!("{NO_METRICS}: {}", storage_cause(view))
}

fn storage_cause(view: &View<'_>) -> String {
    if !view.inventory_synced {
        return "waiting for the inventory to sync (see metric-informer-sync)".to_owned();
    }
    if view.selected.is_empty() {
        let selector = view.node_selector.to_string();
        return if selector.is_empty() {
            "no nodes in the inventory".to_owned()
        } else if view.inventory_nodes == 0 {
            format!("no nodes in the inventory (node selector {selector:?})")
        } else {
            format!(
                "no nodes in the inventory match the node selector {selector:?} ({} listed)",
                nodes(view.inventory_nodes)
            )
        };
    }
    let (mut pending, mut once, mut served, mut pods) = (0, 0, 0, 0);
    let mut failing: BTreeMap<&'static str, (usize, &str)> = BTreeMap::new();
    for name in view.selected {
        let state = view.states.get(name);
        match Standing::of(state) {
            Standing::Pending => pending += 1,
            Standing::Once => once += 1,
            Standing::Served => {
                served += 1;
                pods += state.and_then(|s| s.pods).unwrap_or(0);
            }
            Standing::Failing => {
                if let Some((reason, message)) = state.and_then(|s| s.last_error.as_ref()) {
                    // Names are visited in order: the sample is the first failing node's.
                    failing.entry(reason).or_insert((0, message)).0 += 1;
                }
            }
        }
    }
    let failures = describe_failures(&failing);
    let failing_nodes: usize = failing.values().map(|(n, _)| n).sum();
    if failing_nodes == view.selected.len() {
        return format!("every scrape is failing: {failures}, {SEE}");
    }
    if served > 0 {
        // Served nodes but no readiness: the store found no node or pod usage in their points.
        return if pods == 0 {
            format!("the kubelets of {} scraped report no pods, {SEE}", nodes(served))
        } else {
            format!(
                "{} scraped, but no usage could be computed from their samples ({pods} pods reported), {SEE}",
                nodes(served)
            )
        };
    }
    let mut parts = Vec::new();
    if once > 0 {
        parts.push(format!("waiting for the second scrape of {}", nodes(once)));
    }
    if pending > 0 {
        parts.push(format!("waiting for the first scrape of {}", nodes(pending)));
    }
    if failing_nodes > 0 {
        parts.push(format!("failing: {failures}, {SEE}"));
    }
    parts.join("; ")
}

/// `3 nodes tls (sample…), 1 node timeout (sample)`: most frequent reason first.
fn describe_failures(failing: &BTreeMap<&'static str, (usize, &str)>) -> String {
    let mut by_count: Vec<_> = failing.iter().collect();
    by_count.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
    by_count
        .iter()
        .map(|(reason, (n, sample))| format!("{} {reason} ({})", nodes(*n), shorten(sample)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `metric-informer-sync`'s reason: upstream's message, then the last list/watch error.
pub fn informer(unsynced: &str, error: Option<&str>) -> String {
    let base = format!("cache for {unsynced} informer has not synced");
    match error {
        None => base,
        Some(error) => format!("{base}: {}", classify_api_error(error)),
    }
}

/// Names the usual causes of a failing list/watch, then the error itself.
fn classify_api_error(error: &str) -> String {
    let lower = error.to_ascii_lowercase();
    let cause = if lower.contains("forbidden") || lower.contains("403") {
        "forbidden: the service account lacks RBAC to list and watch nodes and pods"
    } else if lower.contains("unauthorized") || lower.contains("401") {
        "unauthorized: the API server rejects the credentials"
    } else if ["connect", "dns", "timed out", "timeout", "refused", "unreachable"]
        .iter()
        .any(|w| lower.contains(w))
    {
        "the API server is unreachable"
    } else {
        "listing or watching failed"
    };
    format!("{cause} ({})", shorten(error))
}

/// Cuts `text` to [`SAMPLE_CHARS`] characters on one line, marking a cut with `…`.
fn shorten(text: &str) -> String {
    let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    match one_line.char_indices().nth(SAMPLE_CHARS) {
        Some((cut, _)) => format!("{} …", one_line[..cut].trim_end()),
        None => one_line,
    }
}

/// `1 node`, `3 nodes`.
fn nodes(n: usize) -> String {
    if n == 1 {
        "1 node".to_owned()
    } else {
        format!("{n} nodes")
    }
}

#[cfg(test)]
#[path = "explain_tests.rs"]
mod tests;
