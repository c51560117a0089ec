//! The kubelet side of the pipeline: where to reach a kubelet ([`address`]), how to fetch
//! `/metrics/resource` from it ([`client`]) over connections the process's open-file limit
//! allows ([`open_files`]), and how to turn the body into points ([`decode`]).
//!
//! Nothing here knows about the store or the API; the scraper pool drives these pieces.

pub mod address;
pub mod client;
mod connections;
pub mod credentials;
pub mod decode;
#[doc(hidden)]
pub mod http1;
pub mod open_files;
pub mod sample;
mod tls_stream;

pub use decode::{decode, DecodeError};
pub use sample::{ContainerSample, NodeBatch, Point, Timestamp};
