use http_body_util::BodyExt;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION};
use serde_json::Value;

use super::*;
use crate::api::VERSIONS;

fn parse(bytes: &Bytes) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// Every `$ref` in `v`, recursively.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| refs(i, out)),
        _ => {}
    }
}

/// Structural checks both versions share: every reference resolves, every operation has an
/// id (unique), a 200 response and a parameter for each `{placeholder}` of its path.
fn check_structure(doc: &Value, prefix: &str, schemas: &serde_json::Map<String, Value>) {
    let mut all = Vec::new();
    refs(doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r.strip_prefix(prefix).unwrap_or_else(|| panic!("foreign ref {r}"));
        assert!(schemas.contains_key(name), "unresolved ref {r}");
    }
    let mut ids = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let op = &item["get"];
        assert!(
            ids.insert(op["operationId"].as_str().unwrap()),
            "duplicate id at {path}"
        );
        assert!(op["responses"]["200"]["description"].is_string(), "{path}");
        for placeholder in path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')) {
            let declared = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == placeholder && p["in"] == "path" && p["required"] == true);
            assert!(declared, "{path}: {placeholder}");
        }
    }
    for (name, schema) in schemas {
        assert!(schema["description"].is_string(), "{name}");
        assert!(schema["type"].is_string(), "{name}");
    }
}

/// The property names of definition `name`, sorted.
fn fields(schemas: &serde_json::Map<String, Value>, name: &str) -> Vec<String> {
    let mut names: Vec<String> = schemas[name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{name} has no properties"))
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

const METRICS_FIELDS: [(&str, &[&str]); 5] = [
    ("ContainerMetrics", &["name", "usage"]),
    (
        "NodeMetrics",
        &["apiVersion", "kind", "metadata", "timestamp", "usage", "window"],
    ),
    ("NodeMetricsList", &["apiVersion", "items", "kind", "metadata"]),
    (
        "PodMetrics",
        &["apiVersion", "containers", "kind", "metadata", "timestamp", "window"],
    ),
    ("PodMetricsList", &["apiVersion", "items", "kind", "metadata"]),
];

const OBJECT_META_FIELDS: [&str; 15] = [
    "annotations",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "finalizers",
    "generateName",
    "generation",
    "labels",
    "managedFields",
    "name",
    "namespace",
    "ownerReferences",
    "resourceVersion",
    "selfLink",
    "uid",
];

fn check_every_field(schemas: &serde_json::Map<String, Value>, versions: &[&str]) {
    for version in versions {
        for (kind, want) in METRICS_FIELDS {
            let name = format!("io.k8s.metrics.pkg.apis.metrics.{version}.{kind}");
            assert_eq!(fields(schemas, &name), want.to_vec(), "{name}");
            if kind != "ContainerMetrics" {
                assert_eq!(
                    schemas[&name]["x-kubernetes-group-version-kind"],
                    serde_json::json!([{"group": "metrics.k8s.io", "kind": kind, "version": version}]),
                    "{name}"
                );
            }
        }
    }
    let meta = "io.k8s.apimachinery.pkg.apis.meta.v1";
    assert_eq!(
        fields(schemas, &format!("{meta}.ObjectMeta")),
        OBJECT_META_FIELDS.to_vec()
    );
    assert_eq!(
        fields(schemas, &format!("{meta}.ListMeta")),
        ["continue", "remainingItemCount", "resourceVersion", "selfLink"]
    );
    assert_eq!(schemas[&format!("{meta}.Time")]["format"], "date-time");
    assert_eq!(
        schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"],
        "string"
    );
}

#[test]
fn swagger_v2_names_every_field_and_every_reference_resolves() {
    let d = Documents::new(&VERSIONS);
    let doc = parse(d.v2_json());
    assert_eq!(doc["swagger"], "2.0");
    assert_eq!(doc["info"]["title"], "Kubernetes metrics-server");
    assert_eq!(doc["info"]["version"], concat!("v", env!("CARGO_PKG_VERSION")));
    let schemas = doc["definitions"].as_object().unwrap();
    check_structure(&doc, "#/definitions/", schemas);
    check_every_field(schemas, &VERSIONS);
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert_eq!(paths.len(), 12, "{paths:?}");
    let list = &doc["paths"]["/apis/metrics.k8s.io/v1beta1/pods"]["get"];
    assert_eq!(list["operationId"], "listMetricsV1beta1PodMetricsForAllNamespaces");
    assert_eq!(list["x-kubernetes-action"], "list");
    assert_eq!(
        list["x-kubernetes-group-version-kind"],
        serde_json::json!({"group": "metrics.k8s.io", "kind": "PodMetrics", "version": "v1beta1"})
    );
    assert_eq!(
        list["responses"]["200"]["schema"]["$ref"],
        "#/definitions/io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetricsList"
    );
    let read = &doc["paths"]["/apis/metrics.k8s.io/v1/namespaces/{namespace}/pods/{name}"]["get"];
    assert_eq!(read["operationId"], "readMetricsV1NamespacedPodMetrics");
}

#[test]
fn openapi_v3_documents_hold_one_version_each_with_components() {
    let d = Documents::new(&VERSIONS);
    for version in VERSIONS {
        let doc = parse(d.v3_json(&format!("apis/metrics.k8s.io/{version}")).unwrap());
        assert_eq!(doc["openapi"], "3.0.0");
        assert_eq!(doc["info"]["title"], "Kubernetes metrics-server");
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        check_structure(&doc, "#/components/schemas/", schemas);
        check_every_field(schemas, &[version]);
        let other = if version == "v1" { "v1beta1" } else { "v1" };
        assert!(
            !schemas.keys().any(|k| k.contains(&format!("metrics.{other}."))),
            "{version} document holds {other} types"
        );
        assert!(doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .all(|p| p.starts_with(&format!("/apis/metrics.k8s.io/{version}/"))));
        // A referenced field keeps its description beside the reference.
        let metadata =
            &schemas[&format!("io.k8s.metrics.pkg.apis.metrics.{version}.PodMetrics")]["properties"]["metadata"];
        assert!(metadata["allOf"][0]["$ref"].is_string() && metadata["description"].is_string());
    }
}

fn request(path: &str, if_none_match: Option<&str>) -> Parts {
    let mut req = hyper::Request::get(path);
    if let Some(tag) = if_none_match {
        req = req.header(IF_NONE_MATCH, tag);
    }
    req.body(()).unwrap().into_parts().0
}

#[tokio::test]
async fn v3_discovery_points_at_hashed_documents_that_are_immutable() {
    let d = Documents::new(&VERSIONS);
    let discovery = parse(d.v3_discovery_json());
    let paths = discovery["paths"].as_object().unwrap();
    assert_eq!(
        paths.keys().collect::<Vec<_>>(),
        ["apis/metrics.k8s.io/v1", "apis/metrics.k8s.io/v1beta1"]
    );
    let url = paths["apis/metrics.k8s.io/v1beta1"]["serverRelativeURL"]
        .as_str()
        .unwrap();
    let hash = url.split_once("?hash=").unwrap().1;
    assert_eq!(hash.len(), 128);
    assert!(hash.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));

    let resp = d.respond(&request(url, None)).unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(resp.headers()[CACHE_CONTROL], "public, immutable");
    assert_eq!(resp.headers()[ETAG].to_str().unwrap(), format!("\"{hash}\""));
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body, d.v3_json("apis/metrics.k8s.io/v1beta1").unwrap());

    let stale = d
        .respond(&request("/openapi/v3/apis/metrics.k8s.io/v1beta1?hash=0", None))
        .unwrap();
    assert_eq!(stale.status(), 301);
    assert_eq!(stale.headers()[LOCATION].to_str().unwrap(), url);

    let unchanged = d
        .respond(&request("/openapi/v2", Some(&format!("\"{}\"", d.v2.hash))))
        .unwrap();
    assert_eq!(unchanged.status(), 304);
    assert!(d
        .respond(&request("/openapi/v3/apis/metrics.k8s.io/v2", None))
        .is_none());
    assert!(d.respond(&request("/openapi/v4", None)).is_none());
}
