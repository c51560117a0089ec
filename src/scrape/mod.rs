//! The scraper pool: once per resolution period, fetch every selected node's kubelet, decode
//! the body and apply it to the store. A node's failure ends at that node: its batch is
//! dropped, the reason is counted and logged once per change of state, and every other node
//! is unaffected.

pub mod buffers;
pub mod pool;
pub mod schedule;
pub mod status;
pub mod thread;

pub use pool::{Scraper, ScraperConfig};
