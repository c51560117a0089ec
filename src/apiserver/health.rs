//! `/healthz`, `/livez` and `/readyz`, byte for byte as `k8s.io/apiserver` serves them (spec §3.10).
//!
//! Each endpoint runs an ordered list of named checks. The generic apiserver's own checks come
//! first (`ping`, `log`, two post-start hooks; all always pass here), then the application's in
//! the order it registered them, then, for readyz only, `shutdown`, which fails from the moment
//! [`HealthChecks::begin_shutdown`] is called. The checks themselves (storage, informers,
//! collection timeliness) belong to the application. Authorization of these paths is not done here.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hyper::header::{HeaderValue, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use hyper::StatusCode;

use super::status::go_quote;
use super::{content_type, plain_text, Body, Response};

/// A named health check: `Err` carries the reason, shown in the failing check's line and on
/// `/<endpoint>/<name>`; anyone may read it, so it must not carry secrets.
pub type Check = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// `health::Error`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("health check {name:?} is registered twice on /{endpoint}")]
    Duplicate { endpoint: &'static str, name: String },
    #[error("health check name {name:?} is not a single path segment")]
    InvalidName { name: String },
}

/// `health::Result`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The three health endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Healthz,
    Livez,
    Readyz,
}

impl Endpoint {
    /// `healthz`, `livez` or `readyz`: the path segment and the word in `<name> check passed`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Healthz => "healthz",
            Self::Livez => "livez",
            Self::Readyz => "readyz",
        }
    }

    const ALL: [Self; 3] = [Self::Healthz, Self::Livez, Self::Readyz];

    fn index(self) -> usize {
        self as usize
    }
}

/// Names of the generic apiserver's checks that precede the application's on every endpoint.
const GENERIC: [&str; 4] = [
    "ping",
    "log",
    "poststarthook/max-in-flight-filter",
    "poststarthook/storage-object-count-tracker-hook",
];

/// The application's checks, collected before the server starts.
#[derive(Default)]
#[must_use]
pub struct HealthChecksBuilder {
    lists: [Vec<(String, Check)>; 3],
}

impl std::fmt::Debug for HealthChecksBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthChecksBuilder")
            .field("names", &names(&self.lists))
            .finish()
    }
}

impl HealthChecksBuilder {
    /// Appends a check to `/healthz` only.
    pub fn healthz(self, name: &str, check: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> Self {
        self.add(&[Endpoint::Healthz], name, Arc::new(check))
    }

    /// Appends a check to `/livez` only.
    pub fn livez(self, name: &str, check: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> Self {
        self.add(&[Endpoint::Livez], name, Arc::new(check))
    }

    /// Appends a check to `/readyz` only (before the generic `shutdown` check).
    pub fn readyz(self, name: &str, check: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> Self {
        self.add(&[Endpoint::Readyz], name, Arc::new(check))
    }

    /// Appends a check to all three endpoints (Go's `AddHealthChecks`).
    pub fn all(self, name: &str, check: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> Self {
        self.add(&Endpoint::ALL, name, Arc::new(check))
    }

    fn add(mut self, endpoints: &[Endpoint], name: &str, check: Check) -> Self {
        for e in endpoints {
            self.lists[e.index()].push((name.to_owned(), check.clone()));
        }
        self
    }

    /// Puts the generic checks around the application's; fails on a repeated or unusable name.
    pub fn build(self) -> Result<HealthChecks> {
        let shutting_down = Arc::new(AtomicBool::new(false));
        let mut lists: [Vec<(String, Check)>; 3] = Default::default();
        for (e, app) in Endpoint::ALL.into_iter().zip(self.lists) {
            let list = &mut lists[e.index()];
            list.extend(GENERIC.iter().map(|n| ((*n).to_owned(), always_ok())));
            list.extend(app);
            if e == Endpoint::Readyz {
                let flag = shutting_down.clone();
                let check: Check = Arc::new(move || {
                    if flag.load(Ordering::Acquire) {
                        Err("process is shutting down".to_owned())
                    } else {
                        Ok(())
                    }
                });
                list.push(("shutdown".to_owned(), check));
            }
            let mut seen = BTreeSet::new();
            for (name, _) in list.iter() {
                if name.is_empty() || name.contains(['?', '#']) || name.starts_with('/') {
                    return Err(Error::InvalidName { name: name.clone() });
                }
                if !seen.insert(name.as_str()) {
                    return Err(Error::Duplicate {
                        endpoint: e.name(),
                        name: name.clone(),
                    });
                }
            }
        }
        Ok(HealthChecks {
            lists: Arc::new(lists),
            shutting_down,
        })
    }
}

fn always_ok() -> Check {
    Arc::new(|| Ok(()))
}

fn names(lists: &[Vec<(String, Check)>; 3]) -> [Vec<&str>; 3] {
    lists.each_ref().map(|l| l.iter().map(|(n, _)| n.as_str()).collect())
}

/// The registered checks of all three endpoints; cheap to clone (shared).
#[derive(Clone)]
pub struct HealthChecks {
    lists: Arc<[Vec<(String, Check)>; 3]>,
    /// Read by the readyz `shutdown` check; set once by [`HealthChecks::begin_shutdown`].
    shutting_down: Arc<AtomicBool>,
}

impl std::fmt::Debug for HealthChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthChecks")
            .field("names", &names(&self.lists))
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}

impl HealthChecks {
    /// Starts registering the application's checks.
    pub fn builder() -> HealthChecksBuilder {
        HealthChecksBuilder::default()
    }

    /// Makes readyz's `shutdown` check fail from now on.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Whether [`HealthChecks::begin_shutdown`] has been called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// The check names of one endpoint, in the order they run.
    pub fn names(&self, endpoint: Endpoint) -> Vec<&str> {
        self.lists[endpoint.index()].iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Every path served here, for the `/` index.
    pub fn listed_paths(&self) -> Vec<String> {
        let mut paths = Vec::new();
        for e in Endpoint::ALL {
            paths.push(format!("/{}", e.name()));
            paths.extend(self.lists[e.index()].iter().map(|(n, _)| format!("/{}/{n}", e.name())));
        }
        paths
    }

    /// Answers `/<endpoint>` and `/<endpoint>/<check>` (any method, as Go's mux does); `None` for
    /// any other path. `query` is the raw query string.
    pub fn respond(&self, path: &str, query: Option<&str>) -> Option<Response> {
        let rest = path.strip_prefix('/')?;
        let (endpoint, check) = match rest.split_once('/') {
            Some((e, c)) => (e, Some(c)),
            None => (rest, None),
        };
        let endpoint = Endpoint::ALL.into_iter().find(|e| e.name() == endpoint)?;
        let list = &self.lists[endpoint.index()];
        match check {
            None => Some(self.run_all(endpoint, list, query.unwrap_or(""))),
            Some(name) => {
                let (_, check) = list.iter().find(|(n, _)| n == name)?;
                Some(match check() {
                    Ok(()) => text(StatusCode::OK, "ok".to_owned()),
                    Err(e) => plain_text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &format!("internal server error: {e}"),
                    ),
                })
            }
        }
    }

    fn run_all(&self, endpoint: Endpoint, list: &[(String, Check)], query: &str) -> Response {
        let mut verbose = false;
        let mut excluded = BTreeSet::new();
        for (key, value) in query_pairs(query) {
            match key.as_str() {
                "verbose" => verbose = true,
                "exclude" => {
                    excluded.insert(value);
                }
                _ => {}
            }
        }
        let mut out = String::new();
        let mut failed = Vec::new();
        for (name, check) in list {
            if excluded.remove(name) {
                let _ = writeln!(out, "[+]{name} excluded: ok");
                continue;
            }
            match check() {
                Ok(()) => {
                    let _ = writeln!(out, "[+]{name} ok");
                }
                Err(reason) => {
                    // Upstream withholds the reason (`reason withheld`); we say it, so that
                    // "Metrics API not available" explains itself. Checks keep secrets out of
                    // their reasons; one line per check keeps the format parseable.
                    let reason = reason.replace(['\n', '\r'], " ");
                    let _ = writeln!(out, "[-]{name} failed: {reason}");
                    failed.push(format!("{name}: {reason}"));
                }
            }
        }
        if !excluded.is_empty() {
            let quoted: Vec<String> = excluded.iter().map(|n| go_quote(n)).collect();
            let _ = writeln!(
                out,
                "warn: some health checks cannot be excluded: no matches for {}",
                quoted.join(",")
            );
        }
        if !failed.is_empty() {
            tracing::debug!(endpoint = endpoint.name(), failed = ?failed, "health check failed");
            let _ = write!(out, "{} check failed", endpoint.name());
            return plain_text(StatusCode::INTERNAL_SERVER_ERROR, &out);
        }
        if !verbose {
            return text(StatusCode::OK, "ok".to_owned());
        }
        let _ = writeln!(out, "{} check passed", endpoint.name());
        text(StatusCode::OK, out)
    }
}

fn text(code: StatusCode, body: String) -> Response {
    let mut resp = Response::new(Body::new(body.into()));
    *resp.status_mut() = code;
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type::TEXT));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

/// `key=value` pairs of a query string, `+` and `%XX` decoded as Go's `url.ParseQuery` does.
fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (unescape(k), unescape(v))
    })
}

fn unescape(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
