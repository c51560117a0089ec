//! Per-node scrape outcomes: what the operator needs to see why a node has no metrics (served
//! by `/debug/scrapes` and summarised by `/readyz`), and the rule that a failure is logged
//! once per change of state, not once per cycle.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// The latest known state of one node's scrapes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeScrapeState {
    /// The kubelet URL of the latest attempt; `None` when no address could be resolved.
    pub address: Option<String>,
    pub last_success: Option<SystemTime>,
    /// `(reason label, message)` of the latest failure while failing.
    pub last_error: Option<(&'static str, String)>,
    /// When the latest failure happened, while failing.
    pub last_error_time: Option<SystemTime>,
    pub consecutive_failures: u32,
    /// Successes since the last failure: the store serves a node from its second one on.
    pub consecutive_successes: u32,
    /// Pods with complete containers in the latest successful batch.
    pub pods: Option<usize>,
    /// How long the latest attempt took, successful or not.
    pub last_duration: Option<Duration>,
}

/// When an attempt ended and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub at: SystemTime,
    pub duration: Duration,
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

/// The latest scrape cycle as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CycleState {
    /// Cycles started since the process started.
    pub started: u64,
    pub last_start: Option<SystemTime>,
    /// Duration of the latest finished cycle.
    pub last_duration: Option<Duration>,
}

/// Keyed by node name, with foldhash: node names come from the API server, and every scrape
/// looks its node up here.
type NodeStates = HashMap<Box<str>, NodeScrapeState, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
pub struct ScrapeStatus {
    nodes: Mutex<NodeStates>,
    cycle: Mutex<CycleState>,
}

impl ScrapeStatus {
    pub fn success(&self, node: &str, address: &str, attempt: Attempt, pods: usize) -> Transition {
        let mut nodes = lock(&self.nodes);
        let state = entry(&mut nodes, node);
        let transition = if state.consecutive_failures > 0 {
            Transition::Recovered
        } else {
            Transition::Unchanged
        };
        if state.address.as_deref() != Some(address) {
            state.address = Some(address.to_owned());
        }
        state.last_success = Some(attempt.at);
        state.last_error = None;
        state.last_error_time = None;
        state.consecutive_failures = 0;
        state.consecutive_successes = state.consecutive_successes.saturating_add(1);
        state.pods = Some(pods);
        state.last_duration = Some(attempt.duration);
        transition
    }

    pub fn failure(
        &self,
        node: &str,
        address: Option<&str>,
        reason: &'static str,
        message: String,
        attempt: Attempt,
    ) -> Transition {
        let mut nodes = lock(&self.nodes);
        let state = entry(&mut nodes, node);
        let same_reason = state.last_error.as_ref().is_some_and(|(r, _)| *r == reason);
        let transition = if state.consecutive_failures > 0 && same_reason {
            Transition::Unchanged
        } else {
            Transition::NewFailure
        };
        state.address = address.map(str::to_owned);
        state.last_error = Some((reason, message));
        state.last_error_time = Some(attempt.at);
        state.consecutive_failures = state.consecutive_failures.saturating_add(1);
        state.consecutive_successes = 0;
        state.last_duration = Some(attempt.duration);
        transition
    }

    pub fn cycle_started(&self, at: SystemTime) {
        let mut cycle = lock(&self.cycle);
        cycle.started = cycle.started.saturating_add(1);
        cycle.last_start = Some(at);
    }

    pub fn cycle_finished(&self, duration: Duration) {
        lock(&self.cycle).last_duration = Some(duration);
    }

    pub fn cycle(&self) -> CycleState {
        *lock(&self.cycle)
    }

    pub fn get(&self, node: &str) -> Option<NodeScrapeState> {
        lock(&self.nodes).get(node).cloned()
    }

    /// Every node's state, sorted by name.
    pub fn all(&self) -> BTreeMap<String, NodeScrapeState> {
        lock(&self.nodes)
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    pub fn retain_nodes(&self, keep: impl Fn(&str) -> bool) {
        lock(&self.nodes).retain(|name, _| keep(name));
    }

    /// Nodes whose latest scrape failed, and nodes scraped at least once.
    pub fn counts(&self) -> (usize, usize) {
        let nodes = lock(&self.nodes);
        (
            nodes.values().filter(|s| s.consecutive_failures > 0).count(),
            nodes.len(),
        )
    }
}

/// A poisoned lock only means a holder panicked; the state inside is still whole.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn entry<'m>(nodes: &'m mut NodeStates, node: &str) -> &'m mut NodeScrapeState {
    if !nodes.contains_key(node) {
        nodes.insert(node.into(), NodeScrapeState::default());
    }
    // Present: inserted just above when missing.
    nodes.get_mut(node).unwrap_or_else(|| unreachable!())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> Attempt {
        Attempt {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(s),
            duration: Duration::from_millis(s),
        }
    }

    #[test]
    fn a_failure_is_reported_once_per_change_of_state() {
        let s = ScrapeStatus::default();
        assert_eq!(
            s.failure("n", Some("a"), "timeout", "t1".into(), at(1)),
            Transition::NewFailure
        );
        assert_eq!(
            s.failure("n", Some("a"), "timeout", "t2".into(), at(2)),
            Transition::Unchanged
        );
        assert_eq!(
            s.failure("n", Some("a"), "tls", "x".into(), at(3)),
            Transition::NewFailure
        );
        assert_eq!(s.get("n").unwrap().consecutive_failures, 3);
        assert_eq!(s.success("n", "a", at(4), 2), Transition::Recovered);
        assert_eq!(s.success("n", "a", at(5), 3), Transition::Unchanged);
        assert_eq!(s.get("n").unwrap().last_error, None);
    }

    #[test]
    fn the_state_keeps_what_the_debug_endpoint_shows() {
        let s = ScrapeStatus::default();
        s.success("n", "https://a", at(1), 2);
        s.success("n", "https://a", at(2), 3);
        let ok = s.get("n").unwrap();
        assert_eq!((ok.consecutive_successes, ok.pods), (2, Some(3)));
        s.failure("n", Some("https://a"), "tls", "bad".into(), at(3));
        let failing = s.get("n").unwrap();
        assert_eq!(failing.consecutive_successes, 0);
        assert_eq!(failing.last_error_time, Some(at(3).at));
        assert_eq!(failing.last_success, Some(at(2).at));
        assert_eq!(failing.last_duration, Some(Duration::from_millis(3)));
        // The last batch's pod count stays visible while failing.
        assert_eq!(failing.pods, Some(3));
    }

    #[test]
    fn cycles_are_counted() {
        let s = ScrapeStatus::default();
        assert_eq!(s.cycle(), CycleState::default());
        s.cycle_started(at(7).at);
        s.cycle_finished(Duration::from_secs(1));
        assert_eq!(
            s.cycle(),
            CycleState {
                started: 1,
                last_start: Some(at(7).at),
                last_duration: Some(Duration::from_secs(1)),
            }
        );
    }
}
