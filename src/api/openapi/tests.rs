use super::*;

#[test]
#[ignore = "dumps the documents for manual inspection"]
fn dump() {
    let d = Documents::new(&crate::api::VERSIONS);
    std::fs::write("/tmp/v2.json", d.v2_json()).unwrap();
    std::fs::write("/tmp/v3.json", d.v3_json("apis/metrics.k8s.io/v1beta1").unwrap()).unwrap();
    std::fs::write("/tmp/v3d.json", d.v3_discovery_json()).unwrap();
}
