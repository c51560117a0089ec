//! The process's open-file limit, which bounds how many kubelets it keeps connections to.
//!
//! Go's runtime raises the soft `RLIMIT_NOFILE` to the hard limit when a program starts (since
//! Go 1.19), so upstream metrics-server always runs with its hard limit. A Rust process keeps
//! the soft limit it was given, often 1,024 (systemd's default), which would stop scraping at
//! about a thousand nodes: [`raise_to_hard_limit`] does what Go does.
//!
//! The kubelet client keeps one idle connection per kubelet between scrapes, so a fleet larger
//! than the limit would run out of descriptors, failing scrapes and refusing API clients alike.
//! [`idle_connection_budget`] is how many it may keep: the limit less a reserve for the API's
//! clients, the watches and files. Past it, a connection is closed after its scrape, and that
//! kubelet's next scrape opens a new one.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Descriptors kept out of the kubelet client's budget, at most: API clients, the watches of
/// Nodes and Pods, certificate files, the scrapes in flight. A quarter of a small limit.
const RESERVE: u64 = 2048;

/// The soft limit before and after [`raise_to_hard_limit`]; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    pub before: Option<u64>,
    pub after: Option<u64>,
}

/// Raises the soft open-file limit to the hard limit, as Go's runtime does at start.
pub fn raise_to_hard_limit() -> std::io::Result<Raised> {
    let limit = getrlimit(Resource::Nofile);
    let before = limit.current;
    if before == limit.maximum {
        return Ok(Raised { before, after: before });
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    )?;
    Ok(Raised {
        before,
        after: limit.maximum,
    })
}

/// The soft open-file limit in effect; `None` is unlimited.
pub fn soft_limit() -> Option<u64> {
    getrlimit(Resource::Nofile).current
}

/// How many idle kubelet connections a process with soft limit `soft` may keep: all of it but
/// a reserve of a quarter, at most [`RESERVE`].
pub fn idle_connection_budget(soft: Option<u64>) -> usize {
    match soft {
        None => usize::MAX,
        Some(soft) => usize::try_from(soft - (soft / 4).min(RESERVE)).unwrap_or(usize::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_leaves_a_quarter_of_a_small_limit_and_2048_of_a_large_one() {
        assert_eq!(idle_connection_budget(Some(1024)), 768);
        assert_eq!(idle_connection_budget(Some(20_000)), 17_952);
        assert_eq!(idle_connection_budget(Some(1 << 20)), (1 << 20) - 2048);
        assert_eq!(idle_connection_budget(Some(0)), 0);
        assert_eq!(idle_connection_budget(None), usize::MAX);
    }

    #[test]
    fn after_raising_the_soft_limit_is_the_hard_limit() {
        let raised = raise_to_hard_limit();
        let limit = getrlimit(Resource::Nofile);
        assert!(raised.is_ok(), "{raised:?}");
        assert_eq!(limit.current, limit.maximum);
        assert_eq!(soft_limit(), limit.maximum);
    }
}
