//! PLACEHOLDER (replaced by the store branch)
use std::time::Duration;
pub fn write_go_duration(d: Duration, out: &mut String) {
    out.push_str(&format!("{}s", d.as_secs()));
}
