//! Simulated cluster for the one-command demo.

pub mod exposition;
