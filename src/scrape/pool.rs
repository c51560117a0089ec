//! The scrape loop: one cycle per resolution period, each node at its stable offset, with a
//! bound on scrapes in flight and reused body buffers ([`BodyBuffers`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use super::buffers::BodyBuffers;
use super::schedule::{self, TickClock};
use super::status::{Attempt, ScrapeStatus, Transition};
use crate::inventory::selector::LabelSelector;
use crate::inventory::{Inventory, NodeInfo, Snapshot};
use crate::kubelet::address::{AddressError, AddressResolver};
use crate::kubelet::client::{FetchError, KubeletClient};
use crate::kubelet::{decode, DecodeError, Timestamp};
use crate::store::Store;
use crate::telemetry::Telemetry;

/// How the pool runs.
#[derive(Debug, Clone)]
pub struct ScraperConfig {
    /// `--metric-resolution`.
    pub resolution: Duration,
    /// `--kubelet-request-timeout`.
    pub request_timeout: Duration,
    /// Scrapes in flight at once.
    pub max_concurrent: usize,
    /// `--node-selector`: nodes outside it are never scraped.
    pub node_selector: LabelSelector,
}

/// Why one node's scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error(transparent)]
    Address(#[from] AddressError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl ScrapeError {
    pub fn reason_label(&self) -> &'static str {
        match self {
            ScrapeError::Address(_) => "address",
            ScrapeError::Fetch(e) => e.reason_label(),
            ScrapeError::Decode(_) => "decode",
        }
    }
}

/// The scraper pool and everything it feeds.
#[derive(Debug)]
pub struct Scraper {
    config: ScraperConfig,
    inventory: Arc<dyn Inventory>,
    client: KubeletClient,
    addresses: AddressResolver,
    store: Arc<Store>,
    telemetry: Arc<Telemetry>,
    status: Arc<ScrapeStatus>,
    ticks: Arc<TickClock>,
    in_flight: Arc<Semaphore>,
    buffers: BodyBuffers,
    /// The last cycle's plan, reused while the inventory's nodes are the same.
    plan: Mutex<Option<Arc<Plan>>>,
}

/// What a cycle scrapes, in start order, with what each scrape needs that changes only with
/// its node. Made again only when the inventory's node map changes (its maps compare by
/// pointer, and an update that changes nothing the server reads leaves them as they are):
/// making it costs a selector match, an offset hash, a URL and three map lookups per node,
/// a few percent of a cycle's CPU at 5,000 nodes.
#[derive(Debug)]
struct Plan {
    nodes: imbl::OrdMap<String, Arc<NodeInfo>>,
    spread: Duration,
    /// Sorted by offset.
    targets: Vec<Arc<Target>>,
}

/// One node to scrape.
#[derive(Debug)]
struct Target {
    /// When in the cycle its scrape starts.
    offset: Duration,
    node: Arc<NodeInfo>,
    /// Its kubelet's `/metrics/resource`, or why it has none.
    url: Result<String, AddressError>,
}

impl Scraper {
    #[allow(clippy::too_many_arguments)] // each is a distinct collaborator, wired once in main
    pub fn new(
        config: ScraperConfig,
        inventory: Arc<dyn Inventory>,
        client: KubeletClient,
        addresses: AddressResolver,
        store: Arc<Store>,
        telemetry: Arc<Telemetry>,
        status: Arc<ScrapeStatus>,
        ticks: Arc<TickClock>,
    ) -> Self {
        let in_flight = Arc::new(Semaphore::new(config.max_concurrent.max(1)));
        Scraper {
            config,
            inventory,
            client,
            addresses,
            store,
            telemetry,
            status,
            ticks,
            in_flight,
            buffers: BodyBuffers::default(),
            plan: Mutex::new(None),
        }
    }

    /// Runs cycles until the task is dropped. The first two cycles scrape every node at once, so
    /// every node has the two points a rate needs one period after start (readiness as early as
    /// upstream, for the whole fleet at once); later cycles spread nodes over the period.
    pub async fn run(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(self.config.resolution);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let spread = schedule::spread_window(self.config.resolution, self.config.request_timeout);
        for cycle in 0u64.. {
            ticker.tick().await;
            let spread = if cycle < 2 { Duration::ZERO } else { spread };
            self.clone().run_cycle(spread).await;
        }
    }

    /// One cycle over the currently selected nodes; returns when every scrape has ended.
    pub async fn run_cycle(self: Arc<Self>, spread: Duration) {
        let started = Instant::now();
        self.ticks.record(started);
        self.status.cycle_started(SystemTime::now());
        let plan = self.plan(&self.inventory.snapshot(), spread);
        let mut scrapes = JoinSet::new();
        let mut slept_to = Duration::ZERO;
        for target in &plan.targets {
            let offset = target.offset;
            // Offsets come in whole slots: the nodes of one slot start on one wake-up.
            if offset > slept_to {
                tokio::time::sleep_until((started + offset).into()).await;
                slept_to = offset;
            }
            let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
                break; // the semaphore is never closed; nothing left to do if it were
            };
            let this = self.clone();
            let target = Arc::clone(target);
            scrapes.spawn(async move {
                this.scrape_node(&target).await;
                drop(permit);
            });
            // Reap finished scrapes as we go so the set stays small at 5,000 nodes.
            while scrapes.try_join_next().is_some() {}
        }
        while scrapes.join_next().await.is_some() {}
        self.buffers.end_cycle();
        self.telemetry.tick(started.elapsed());
        self.status.cycle_finished(started.elapsed());
    }

    /// The plan for `snapshot`: the last one if made from the same node map and spread, else
    /// a new one, after which nodes that left (or fell out of the selector) leave the store,
    /// telemetry and scrape status.
    fn plan(&self, snapshot: &Snapshot, spread: Duration) -> Arc<Plan> {
        let mut last = self.plan.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(plan) = last
            .as_ref()
            .filter(|p| p.spread == spread && p.nodes.ptr_eq(&snapshot.nodes))
        {
            return Arc::clone(plan);
        }
        let mut targets: Vec<Arc<Target>> = snapshot
            .nodes
            .values()
            .filter(|n| self.config.node_selector.matches(&n.labels))
            .map(|node| {
                Arc::new(Target {
                    offset: schedule::offset(&node.name, spread),
                    url: self.addresses.url(node),
                    node: Arc::clone(node),
                })
            })
            .collect();
        targets.sort_by_key(|t| t.offset);
        let plan = Arc::new(Plan {
            nodes: snapshot.nodes.clone(),
            spread,
            targets,
        });
        *last = Some(Arc::clone(&plan));
        drop(last);

        let keep = |name: &str| {
            snapshot
                .nodes
                .get(name)
                .is_some_and(|n| self.config.node_selector.matches(&n.labels))
        };
        self.store.retain_nodes(keep);
        self.telemetry.retain_nodes(keep);
        self.status.retain_nodes(keep);
        plan
    }

    async fn scrape_node(&self, target: &Target) {
        let node = &*target.node;
        let started = Instant::now();
        let mut body = self.buffers.take();
        let url = target.url.as_deref();
        let outcome = match url {
            Ok(url) => self.fetch_and_store(node, url, &mut body).await,
            Err(e) => Err(ScrapeError::Address(e.clone())),
        };
        self.buffers.give_back(body);
        let address = url.ok();
        let failure = outcome.as_ref().err().map(ScrapeError::reason_label);
        let attempt = Attempt {
            at: SystemTime::now(),
            duration: started.elapsed(),
        };
        self.telemetry
            .kubelet_request(&node.name, attempt.duration, failure, attempt.at);
        match outcome {
            Ok(pods) => {
                if self
                    .status
                    .success(&node.name, address.unwrap_or_default(), attempt, pods)
                    == Transition::Recovered
                {
                    tracing::info!(node = %node.name, "Scraping node recovered");
                }
            }
            Err(error) => {
                let reason = error.reason_label();
                let transition = self
                    .status
                    .failure(&node.name, address, reason, error.to_string(), attempt);
                if transition == Transition::NewFailure {
                    let timeout = matches!(error, ScrapeError::Fetch(FetchError::Timeout(_)));
                    let what = if timeout {
                        "Failed to scrape node, timeout to access kubelet"
                    } else {
                        "Failed to scrape node"
                    };
                    tracing::warn!(node = %node.name, address = address.unwrap_or(""), reason, error = %error, "{what}");
                } else {
                    tracing::debug!(node = %node.name, reason, error = %error, "Failed to scrape node (still)");
                }
            }
        }
    }

    /// Fetches, decodes and stores one node's batch; returns how many pods it reported.
    async fn fetch_and_store(&self, node: &NodeInfo, url: &str, body: &mut Vec<u8>) -> Result<usize, ScrapeError> {
        // Samples without a timestamp get the request time, truncated to ms, as upstream.
        let request_time = Timestamp::now_millis();
        self.client.fetch(url, body).await?;
        let batch = decode(body, request_time)?;
        Ok(self.store.apply(&node.name, &batch, Instant::now()))
    }
}
