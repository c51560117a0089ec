//! PLACEHOLDER (replaced by the store branch)
use crate::kubelet::Timestamp;
pub fn write_rfc3339_seconds(t: Timestamp, out: &mut String) {
    out.push_str(&format!("{}", t.unix_seconds()));
}
