//! PLACEHOLDER (replaced by the store branch)
pub fn write_cpu(nanocores: u64, out: &mut String) {
    out.push_str(&format!("{nanocores}n"));
}
pub fn write_memory(bytes: u64, out: &mut String) {
    out.push_str(&format!("{bytes}"));
}
