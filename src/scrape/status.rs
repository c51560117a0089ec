//! Per-node scrape outcomes: what the operator needs to see why a node has no metrics, and
//! the rule that a failure is logged once per change of state, not once per cycle.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

/// The latest known state of one node's scrapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeScrapeState {
    pub address: Option<String>,
    pub last_success: Option<SystemTime>,
    /// `(reason label, message)` of the latest failure while failing.
    pub last_error: Option<(&'static str, String)>,
    pub consecutive_failures: u32,
}

/// What changed with an outcome; the caller logs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing worth a log line.
    Unchanged,
    /// Started failing, or fails for another reason than before.
    NewFailure,
    /// Succeeded after failing.
    Recovered,
}

#[derive(Debug, Default)]
pub struct ScrapeStatus {
    nodes: Mutex<HashMap<String, NodeScrapeState>>,
}

impl ScrapeStatus {
    pub fn success(&self, node: &str, address: &str, at: SystemTime) -> Transition {
        let mut nodes = self.lock();
        let state = entry(&mut nodes, node);
        let transition = if state.consecutive_failures > 0 {
            Transition::Recovered
        } else {
            Transition::Unchanged
        };
        if state.address.as_deref() != Some(address) {
            state.address = Some(address.to_owned());
        }
        state.last_success = Some(at);
        state.last_error = None;
        state.consecutive_failures = 0;
        transition
    }

    pub fn failure(&self, node: &str, address: Option<&str>, reason: &'static str, message: String) -> Transition {
        let mut nodes = self.lock();
        let state = entry(&mut nodes, node);
        let same_reason = state.last_error.as_ref().is_some_and(|(r, _)| *r == reason);
        let transition = if state.consecutive_failures > 0 && same_reason {
            Transition::Unchanged
        } else {
            Transition::NewFailure
        };
        state.address = address.map(str::to_owned);
        state.last_error = Some((reason, message));
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        transition
    }

    pub fn get(&self, node: &str) -> Option<NodeScrapeState> {
        self.lock().get(node).cloned()
    }

    pub fn retain_nodes(&self, keep: impl Fn(&str) -> bool) {
        self.lock().retain(|name, _| keep(name));
    }

    /// Nodes whose latest scrape failed, and nodes scraped at least once.
    pub fn counts(&self) -> (usize, usize) {
        let nodes = self.lock();
        (
            nodes.values().filter(|s| s.consecutive_failures > 0).count(),
            nodes.len(),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, NodeScrapeState>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn entry<'m>(nodes: &'m mut HashMap<String, NodeScrapeState>, node: &str) -> &'m mut NodeScrapeState {
    if !nodes.contains_key(node) {
        nodes.insert(
            node.to_owned(),
            NodeScrapeState {
                address: None,
                last_success: None,
                last_error: None,
                consecutive_failures: 0,
            },
        );
    }
    // Present: inserted just above when missing.
    nodes.get_mut(node).unwrap_or_else(|| unreachable!())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_reported_once_per_change_of_state() {
        let s = ScrapeStatus::default();
        assert_eq!(
            s.failure("n", Some("a"), "timeout", "t1".into()),
            Transition::NewFailure
        );
        assert_eq!(s.failure("n", Some("a"), "timeout", "t2".into()), Transition::Unchanged);
        assert_eq!(s.failure("n", Some("a"), "tls", "x".into()), Transition::NewFailure);
        assert_eq!(s.get("n").unwrap().consecutive_failures, 3);
        assert_eq!(s.success("n", "a", SystemTime::UNIX_EPOCH), Transition::Recovered);
        assert_eq!(s.success("n", "a", SystemTime::UNIX_EPOCH), Transition::Unchanged);
        assert_eq!(s.get("n").unwrap().last_error, None);
    }
}
