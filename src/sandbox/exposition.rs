//! PLACEHOLDER (replaced by the decode branch)
#[derive(Debug, Clone)]
pub struct SimContainer { pub namespace: String, pub pod: String, pub container: String, pub start_time_seconds: f64, pub cpu_seconds: f64, pub memory_bytes: f64 }
#[derive(Debug, Clone)]
pub struct SimNode { pub cpu_seconds: f64, pub memory_bytes: f64, pub containers: Vec<SimContainer> }
pub fn render_resource_metrics(node: &SimNode, timestamp_ms: i64, out: &mut Vec<u8>) { let _ = (node, timestamp_ms, out); }
