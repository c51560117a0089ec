//! PLACEHOLDER
pub mod go_duration;
pub mod quantity;
pub mod rfc3339;
