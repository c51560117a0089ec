//! The `metrics.k8s.io` API: routes, the NodeMetrics and PodMetrics read paths, and their wire
//! formats (JSON, protobuf, Table) and OpenAPI documents. It joins two inputs: the inventory
//! (which objects exist, with which labels) and the store (their usage). It returns typed
//! errors; `apiserver` turns them into `Status` bodies.

pub mod encode;
pub mod go_duration;
pub mod http;
pub mod json;
pub mod list_all;
#[cfg(test)]
mod list_all_tests;
pub mod list_cache;
pub mod nodes;
pub mod openapi;
pub mod pods;
pub mod protobuf;
pub mod quantity;
pub mod rfc3339;
pub mod selectors;
pub mod table;

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::apiserver::{Body, Representation};
use crate::inventory::selector::LabelSelector;
use crate::inventory::Inventory;
use crate::kubelet::Timestamp;
use crate::store::Store;
use crate::telemetry::Telemetry;
use encode::{Document, Encode, EncodeChunks};
use list_all::ListAllCache;
use list_cache::Slot;
use selectors::ListOptions;

/// The API group served.
pub const GROUP: &str = "metrics.k8s.io";
/// Versions served, preferred first: `v1` (GA in Kubernetes 1.37) and `v1beta1` (what
/// upstream serves). Both serve the same objects; only `apiVersion` differs.
pub const VERSIONS: [&str; 2] = ["v1", "v1beta1"];
/// `apiVersion` of each of [`VERSIONS`], spelled out so a read formats nothing to name it.
const API_VERSIONS: [&str; 2] = ["metrics.k8s.io/v1", "metrics.k8s.io/v1beta1"];

/// What a list item is assumed to take before the first list: a PodMetrics with two
/// containers and two labels is about 450 bytes of JSON.
const INITIAL_ITEM_BYTES: usize = 512;

/// How long LIST-all's cache outlives the last list unless the server says otherwise
/// ([`MetricsApi::with_list_all_idle`]): twice upstream's default resolution.
const DEFAULT_LIST_ALL_IDLE: Duration = Duration::from_secs(120);

/// A request the API understood but must refuse; each maps to one Kubernetes `Status`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The node is not in the inventory: `node "<name>" not found`.
    #[error("node {0:?} not found")]
    NodeNotFound(String),
    /// The node exists but has no metrics: `nodemetrics.metrics.k8s.io "<name>" not found`.
    #[error("nodemetrics.metrics.k8s.io {0:?} not found")]
    NodeMetricsNotFound(String),
    /// The pod is not in the inventory (absent or not running): `pods "<name>" not found`.
    #[error("pods {name:?} not found")]
    PodNotFound { namespace: String, name: String },
    /// The pod exists but has no metrics; upstream names it `<namespace>/<name>`.
    #[error("podmetrics.metrics.k8s.io \"{namespace}/{name}\" not found")]
    PodMetricsNotFound { namespace: String, name: String },
    #[error("{0}")]
    BadRequest(String),
    /// `?watch=true` on a list: `watch is not supported on resources of kind "nodes.metrics.k8s.io"`.
    #[error("watch is not supported on resources of kind \"{resource}.metrics.k8s.io\"")]
    WatchNotSupported { resource: &'static str },
    /// A verb other than get and list.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
}

/// Which read a path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'p> {
    ListNodes,
    GetNode(&'p str),
    ListPods { namespace: Option<&'p str> },
    GetPod { namespace: &'p str, name: &'p str },
}

impl<'p> Route<'p> {
    /// Parses `/apis/metrics.k8s.io/<version>/…`; returns the version and route, or `None`
    /// for any path this API does not serve.
    pub fn parse(path: &'p str) -> Option<(&'static str, Route<'p>)> {
        let rest = path.strip_prefix("/apis/")?.strip_prefix(GROUP)?.strip_prefix('/')?;
        let (version, rest) = rest.split_once('/')?;
        let version = VERSIONS.into_iter().find(|v| *v == version)?;
        // At most four segments (no allocation: every request is parsed once to route it and
        // once to ask whether it is heavy).
        let mut segments = [""; 4];
        let mut count = 0;
        for segment in rest.split('/') {
            *segments.get_mut(count)? = segment;
            count += 1;
        }
        let route = match &segments[..count] {
            ["nodes"] => Route::ListNodes,
            ["nodes", name] if !name.is_empty() => Route::GetNode(name),
            ["pods"] => Route::ListPods { namespace: None },
            ["namespaces", ns, "pods"] if !ns.is_empty() => Route::ListPods { namespace: Some(ns) },
            ["namespaces", ns, "pods", name] if !ns.is_empty() && !name.is_empty() => {
                Route::GetPod { namespace: ns, name }
            }
            _ => return None,
        };
        Some((version, route))
    }

    fn is_list(&self) -> bool {
        matches!(self, Route::ListNodes | Route::ListPods { .. })
    }

    fn document(&self) -> Document {
        match self {
            Route::ListNodes => Document::NodeMetricsList,
            Route::GetNode(_) => Document::NodeMetrics,
            Route::ListPods { .. } => Document::PodMetricsList,
            Route::GetPod { .. } => Document::PodMetrics,
        }
    }

    fn resource(&self) -> &'static str {
        match self {
            Route::ListNodes | Route::GetNode(_) => "nodes",
            Route::ListPods { .. } | Route::GetPod { .. } => "pods",
        }
    }
}

/// The metrics API over an inventory and a store.
#[derive(Debug)]
pub struct MetricsApi {
    inventory: Arc<dyn Inventory>,
    store: Arc<Store>,
    telemetry: Arc<Telemetry>,
    /// `--node-selector`, ANDed into node lists (not gets), as upstream.
    node_selector: LabelSelector,
    /// The OpenAPI documents, encoded once.
    openapi: openapi::Documents,
    /// Bytes per item of the last node list and the last pod list, so the next one reserves
    /// its buffer once instead of growing it (a 70 MB list would otherwise be copied).
    item_bytes: [AtomicUsize; 2],
    /// Encoded items of the LIST of every pod, per node, dropped when lists stop (see
    /// [`list_all`]).
    list_all: Arc<ListAllCache>,
}

/// What one read observed: the wall-clock time for `creationTimestamp` and freshness, and
/// the monotonic time for staleness.
#[derive(Debug, Clone, Copy)]
pub struct ReadTime {
    pub wall: Timestamp,
    pub monotonic: Instant,
}

impl ReadTime {
    pub fn now() -> Self {
        ReadTime {
            wall: Timestamp::from_system_time(SystemTime::now()),
            monotonic: Instant::now(),
        }
    }
}

impl MetricsApi {
    pub fn new(
        inventory: Arc<dyn Inventory>,
        store: Arc<Store>,
        telemetry: Arc<Telemetry>,
        node_selector: LabelSelector,
    ) -> Self {
        MetricsApi {
            inventory,
            store,
            telemetry,
            node_selector,
            openapi: openapi::Documents::new(&VERSIONS),
            item_bytes: [
                AtomicUsize::new(INITIAL_ITEM_BYTES),
                AtomicUsize::new(INITIAL_ITEM_BYTES),
            ],
            list_all: Arc::new(ListAllCache::new(DEFAULT_LIST_ALL_IDLE)),
        }
    }

    /// Keeps what LIST-all reuses only while lists come at least every `idle`: twice the
    /// resolution, after which no node's encoded items are current anyway.
    pub fn with_list_all_idle(mut self, idle: Duration) -> Self {
        self.list_all = Arc::new(ListAllCache::new(idle));
        self
    }

    /// Paths this API serves outside `/apis`, for the server's `/` index.
    pub fn listed_paths() -> Vec<String> {
        openapi::Documents::listed_paths()
    }

    /// Serves a GET of `route` in `representation`: the whole response body (the LIST of
    /// every pod as the shared pieces of [`list_cache`], anything else as one buffer).
    pub fn read(
        &self,
        version: &str,
        route: &Route<'_>,
        query: Option<&str>,
        at: ReadTime,
        representation: Representation,
    ) -> Result<Body, ApiError> {
        let options = ListOptions::from_query(query)?;
        if options.watch && route.is_list() {
            return Err(ApiError::WatchNotSupported {
                resource: route.resource(),
            });
        }
        let api_version = api_version(version);
        if let Some(slot) = self.list_all_pods_slot(version, route, &options, representation) {
            self.list_all.used(at.monotonic);
            return Ok(match representation {
                Representation::Protobuf => {
                    let new_encoder = || protobuf::Encoder::new(&api_version, at.wall);
                    self.encode_cached(slot, &mut new_encoder(), new_encoder, at)
                }
                // JSON: the slot is only for JSON and protobuf.
                _ => {
                    let new_encoder = || json::Encoder::new(&api_version, at.wall);
                    self.encode_cached(slot, &mut new_encoder(), new_encoder, at)
                }
            });
        }
        let mut out = Vec::new();
        let start = match representation {
            Representation::Protobuf => {
                let mut encoder = protobuf::Encoder::new(&api_version, at.wall);
                self.encode(&mut encoder, route, &options, at, &mut out)?
            }
            Representation::Table { version } => {
                let include = table::IncludeObject::from_query(query)?;
                let mut encoder = table::Encoder::new(version, include, &api_version, at.wall);
                self.encode(&mut encoder, route, &options, at, &mut out)?
            }
            // JSON, and anything else this API never offers.
            _ => {
                let mut encoder = json::Encoder::new(&api_version, at.wall);
                self.encode(&mut encoder, route, &options, at, &mut out)?
            }
        };
        Ok(Body::new(Bytes::from(out).slice(start..)))
    }

    /// How many objects `route` may answer with, before any selector: what a LIST of it
    /// walks (0 for a GET of one object, without looking at the inventory).
    pub fn scope(&self, route: &Route<'_>) -> usize {
        if !route.is_list() {
            return 0;
        }
        let snapshot = self.inventory.snapshot();
        match route {
            Route::ListNodes => snapshot.nodes.len(),
            Route::ListPods { namespace: None } => snapshot.pod_count(),
            Route::ListPods { namespace: Some(ns) } => snapshot.pods.namespace(ns).map_or(0, |pods| pods.len()),
            Route::GetNode(_) | Route::GetPod { .. } => 0,
        }
    }

    /// The cache slot for a LIST of every pod without selectors as JSON or protobuf, the
    /// only read served from [`list_cache`]; `None` for every other read.
    fn list_all_pods_slot(
        &self,
        version: &str,
        route: &Route<'_>,
        options: &ListOptions,
        representation: Representation,
    ) -> Option<&Slot> {
        if *route != (Route::ListPods { namespace: None }) || !options.selects_everything() {
            return None;
        }
        let version = VERSIONS.iter().position(|v| *v == version)?;
        let format = match representation {
            Representation::Json => 0,
            Representation::Protobuf => 1,
            _ => return None,
        };
        self.list_all.slot(format, version)
    }

    /// The LIST of every pod from `slot`'s per-node chunks: the header, each node's items as
    /// the chunk keeps them, and the footer. Sends what [`encode`](Self::encode) writes for
    /// the same inputs.
    fn encode_cached<E: EncodeChunks>(
        &self,
        slot: &Slot,
        encoder: &mut E,
        new_encoder: impl Fn() -> E,
        at: ReadTime,
    ) -> Body {
        let snapshot = self.inventory.snapshot();
        let mut ages = Vec::new();
        // The header first (its bytes come last: a protobuf header holds the length), then a
        // piece per node, then the footer.
        let mut pieces = Vec::with_capacity(snapshot.nodes.len() + 2);
        pieces.push(Bytes::new());
        let mut out = Vec::with_capacity(128);
        encoder.begin(&mut out, Document::PodMetricsList);
        slot.list_pods(&snapshot, &self.store, at, encoder, new_encoder, &mut pieces, &mut ages);
        let items_len = pieces.iter().map(Bytes::len).sum();
        let (start, items_at) = encoder.finish_around(&mut out, items_len);
        self.telemetry.freshness_runs(ages);
        // Header and footer share one buffer.
        let out = Bytes::from(out);
        pieces[0] = out.slice(start..items_at);
        pieces.push(out.slice(items_at..));
        Body::from_pieces(pieces)
    }

    /// Finds what `route` serves and writes it with `encoder`; returns where the document
    /// starts in `out`.
    fn encode(
        &self,
        encoder: &mut impl Encode,
        route: &Route<'_>,
        options: &ListOptions,
        at: ReadTime,
        out: &mut Vec<u8>,
    ) -> Result<usize, ApiError> {
        let snapshot = self.inventory.snapshot();
        let mut ages = Vec::new();
        if route.is_list() {
            let items = match route {
                Route::ListNodes => snapshot.nodes.len(),
                _ => snapshot.pod_count(),
            };
            // A little over the last list's item size: protobuf and JSON items differ by less.
            let per_item = self.item_bytes(route).load(Ordering::Relaxed);
            out.reserve(256 + items * (per_item + per_item / 8));
            ages.reserve(items);
        } else {
            out.reserve(1024);
        }
        encoder.begin(out, route.document());
        match route {
            Route::ListNodes => {
                let selector = options.labels.clone().and(&self.node_selector);
                nodes::list(
                    &snapshot,
                    &self.store,
                    &selector,
                    &options.fields,
                    at,
                    encoder,
                    out,
                    &mut ages,
                )
            }
            Route::GetNode(name) => nodes::get(&snapshot, &self.store, name, at, encoder, out, &mut ages)?,
            Route::ListPods { namespace } => {
                pods::list(&snapshot, &self.store, *namespace, options, at, encoder, out, &mut ages)
            }
            Route::GetPod { namespace, name } => {
                pods::get(&snapshot, &self.store, namespace, name, at, encoder, out, &mut ages)?
            }
        }
        let start = encoder.finish(out);
        if route.is_list() && !ages.is_empty() {
            self.item_bytes(route).store(out.len() / ages.len(), Ordering::Relaxed);
        }
        self.telemetry.freshness(ages);
        Ok(start)
    }

    /// The item-size hint for `route`'s kind of list.
    fn item_bytes(&self, route: &Route<'_>) -> &AtomicUsize {
        let [nodes, pods] = &self.item_bytes;
        match route {
            Route::ListNodes | Route::GetNode(_) => nodes,
            Route::ListPods { .. } | Route::GetPod { .. } => pods,
        }
    }
}

/// `<group>/<version>`: one of [`API_VERSIONS`] for a served version.
fn api_version(version: &str) -> Cow<'static, str> {
    match VERSIONS.iter().position(|v| *v == version) {
        Some(i) => Cow::Borrowed(API_VERSIONS[i]),
        None => Cow::Owned(format!("{GROUP}/{version}")),
    }
}

/// Seconds from a sample to the read, for `metrics_server_api_metric_freshness_seconds`.
fn age_seconds(at: ReadTime, sample: Timestamp) -> f64 {
    (at.wall.unix_nanos().saturating_sub(sample.unix_nanos())) as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_like_the_apiserver_installs_them() {
        let p = |path| Route::parse(path);
        assert_eq!(
            p("/apis/metrics.k8s.io/v1beta1/nodes"),
            Some(("v1beta1", Route::ListNodes))
        );
        assert_eq!(p("/apis/metrics.k8s.io/v1/nodes"), Some(("v1", Route::ListNodes)));
        assert_eq!(
            p("/apis/metrics.k8s.io/v1beta1/nodes/n1"),
            Some(("v1beta1", Route::GetNode("n1")))
        );
        assert_eq!(
            p("/apis/metrics.k8s.io/v1beta1/pods"),
            Some(("v1beta1", Route::ListPods { namespace: None }))
        );
        assert_eq!(
            p("/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods"),
            Some(("v1beta1", Route::ListPods { namespace: Some("ns") }))
        );
        assert_eq!(
            p("/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods/p"),
            Some((
                "v1beta1",
                Route::GetPod {
                    namespace: "ns",
                    name: "p"
                }
            ))
        );
        for unserved in [
            "/apis/metrics.k8s.io/v1beta1",
            "/apis/metrics.k8s.io/v1beta1/",
            "/apis/metrics.k8s.io/v2/nodes",
            "/apis/metrics.k8s.io/v1beta1/nodes/n1/extra",
            "/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods/p/extra",
            "/apis/metrics.k8s.io/v1beta1/namespaces/ns",
            "/apis/other.k8s.io/v1beta1/nodes",
        ] {
            assert_eq!(p(unserved), None, "{unserved}");
        }
    }

    #[test]
    fn each_served_version_names_its_api_version() {
        for version in VERSIONS {
            assert_eq!(api_version(version), format!("{GROUP}/{version}"));
        }
        assert_eq!(api_version("v2"), "metrics.k8s.io/v2");
    }
}
