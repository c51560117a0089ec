//! metrics-server-rs: a drop-in replacement for the Kubernetes metrics-server.
//!
//! Data flows in one direction: the [`scrape`] pool asks each kubelet for
//! `/metrics/resource` through [`kubelet::client`], [`kubelet::decode`] turns the body into
//! points, the [`store`] keeps the last two points per node and container and derives usage,
//! and [`api`] serves that usage as `metrics.k8s.io` objects through the generic
//! aggregated-apiserver plumbing in [`apiserver`]. The [`inventory`] says which nodes and pods
//! exist; [`diagnosis`] explains to operators why metrics are missing; [`sandbox`] simulates a cluster for the one-command demo; [`telemetry`] counts what
//! happens.

pub mod api;
pub mod apiserver;
pub mod app;
pub mod cli;
pub mod diagnosis;
pub mod inventory;
pub mod kubelet;
pub mod sandbox;
pub mod scrape;
pub mod store;
pub mod telemetry;
