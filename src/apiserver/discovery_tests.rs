use http_body_util::BodyExt;
use hyper::header::{ACCEPT, CONTENT_TYPE};

use super::*;

fn resource(name: &str, namespaced: bool, kind: &str) -> ApiResource {
    ApiResource {
        name: name.into(),
        singular_name: String::new(),
        namespaced,
        kind: kind.into(),
        verbs: vec!["list".into(), "get".into()],
    }
}

/// What the metrics API declares: v1 (preferred) and v1beta1, the same resources in each.
fn metrics_group() -> ApiGroup {
    let version = |v: &str| ApiVersion {
        version: v.into(),
        resources: vec![
            resource("nodes", false, "NodeMetrics"),
            resource("pods", true, "PodMetrics"),
        ],
    };
    ApiGroup {
        name: "metrics.k8s.io".into(),
        versions: vec![version("v1"), version("v1beta1")],
        preferred_version: "v1".into(),
    }
}

fn parts(path: &str, accept: Option<&str>) -> hyper::http::request::Parts {
    let mut req = hyper::Request::get(path);
    if let Some(a) = accept {
        req = req.header(ACCEPT, a);
    }
    req.body(()).unwrap().into_parts().0
}

async fn get(d: &Discovery, path: &str) -> Option<(u16, String)> {
    let resp = d.respond(&parts(path, None))?;
    let code = resp.status().as_u16();
    if code == 200 {
        assert_eq!(resp.headers()[CONTENT_TYPE], "application/json");
    }
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Some((code, String::from_utf8(body.to_vec()).unwrap()))
}

#[tokio::test]
async fn group_list_matches_upstream_bytes() {
    let d = Discovery::new(vec![metrics_group()]).unwrap();
    let (code, body) = get(&d, "/apis").await.unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        body,
        "{\"kind\":\"APIGroupList\",\"apiVersion\":\"v1\",\"groups\":[{\"name\":\"metrics.k8s.io\",\"versions\":[{\"groupVersion\":\"metrics.k8s.io/v1\",\"version\":\"v1\"},{\"groupVersion\":\"metrics.k8s.io/v1beta1\",\"version\":\"v1beta1\"}],\"preferredVersion\":{\"groupVersion\":\"metrics.k8s.io/v1\",\"version\":\"v1\"}}]}\n"
    );
}

#[tokio::test]
async fn group_matches_upstream_bytes() {
    let d = Discovery::new(vec![metrics_group()]).unwrap();
    let (_, body) = get(&d, "/apis/metrics.k8s.io").await.unwrap();
    assert_eq!(
        body,
        "{\"kind\":\"APIGroup\",\"apiVersion\":\"v1\",\"name\":\"metrics.k8s.io\",\"versions\":[{\"groupVersion\":\"metrics.k8s.io/v1\",\"version\":\"v1\"},{\"groupVersion\":\"metrics.k8s.io/v1beta1\",\"version\":\"v1beta1\"}],\"preferredVersion\":{\"groupVersion\":\"metrics.k8s.io/v1\",\"version\":\"v1\"}}\n"
    );
}

#[tokio::test]
async fn resource_list_matches_upstream_bytes_with_sorted_verbs() {
    let d = Discovery::new(vec![metrics_group()]).unwrap();
    let (_, v1) = get(&d, "/apis/metrics.k8s.io/v1").await.unwrap();
    assert!(v1.starts_with("{\"kind\":\"APIResourceList\",\"apiVersion\":\"v1\",\"groupVersion\":\"metrics.k8s.io/v1\",\"resources\":[{\"name\":\"nodes\""));
    let (_, body) = get(&d, "/apis/metrics.k8s.io/v1beta1").await.unwrap();
    assert_eq!(
        body,
        "{\"kind\":\"APIResourceList\",\"apiVersion\":\"v1\",\"groupVersion\":\"metrics.k8s.io/v1beta1\",\"resources\":[{\"name\":\"nodes\",\"singularName\":\"\",\"namespaced\":false,\"kind\":\"NodeMetrics\",\"verbs\":[\"get\",\"list\"]},{\"name\":\"pods\",\"singularName\":\"\",\"namespaced\":true,\"kind\":\"PodMetrics\",\"verbs\":[\"get\",\"list\"]}]}\n"
    );
}

#[tokio::test]
async fn unknown_version_is_plain_404_and_other_paths_are_not_discovery() {
    let d = Discovery::new(vec![metrics_group()]).unwrap();
    assert_eq!(
        get(&d, "/apis/metrics.k8s.io/v2").await,
        Some((404, "404 page not found\n".into()))
    );
    for path in [
        "/apis/other.io",
        "/apis/",
        "/apisx",
        "/api",
        "/apis/metrics.k8s.io/v1/nodes",
    ] {
        assert!(d.respond(&parts(path, None)).is_none(), "{path}");
    }
    assert!(d.serves("metrics.k8s.io", "v1") && d.serves("metrics.k8s.io", "v1beta1"));
    assert!(!d.serves("metrics.k8s.io", "v2") && !d.serves("x", "v1"));
    assert_eq!(
        d.listed_paths(),
        [
            "/apis",
            "/apis/metrics.k8s.io",
            "/apis/metrics.k8s.io/v1",
            "/apis/metrics.k8s.io/v1beta1"
        ]
    );
}

async fn body_of(resp: Response) -> (u16, String, String) {
    let code = resp.status().as_u16();
    let ct = resp.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (code, ct, String::from_utf8(body.to_vec()).unwrap())
}

/// The `APIGroupDiscoveryList` for the metrics group, as `apidiscovery.k8s.io/<version>`.
fn aggregated_bytes(version: &str) -> String {
    let resources = r#"[{"resource":"nodes","responseKind":{"group":"","version":"","kind":"NodeMetrics"},"scope":"Cluster","singularResource":"","verbs":["get","list"]},{"resource":"pods","responseKind":{"group":"","version":"","kind":"PodMetrics"},"scope":"Namespaced","singularResource":"","verbs":["get","list"]}]"#;
    format!(
        "{{\"kind\":\"APIGroupDiscoveryList\",\"apiVersion\":\"apidiscovery.k8s.io/{version}\",\"metadata\":{{}},\"items\":[{{\"metadata\":{{\"name\":\"metrics.k8s.io\"}},\"versions\":[{{\"version\":\"v1\",\"resources\":{resources},\"freshness\":\"Current\"}},{{\"version\":\"v1beta1\",\"resources\":{resources},\"freshness\":\"Current\"}}]}}]}}\n"
    )
}

#[tokio::test]
async fn aggregated_discovery_matches_upstream_bytes_in_v2_and_v2beta1() {
    let d = Discovery::new(vec![metrics_group()]).unwrap();
    let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    let (code, ct, body) = body_of(d.respond(&parts("/apis", Some(kubectl))).unwrap()).await;
    assert_eq!(code, 200);
    assert_eq!(
        ct,
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    assert_eq!(body, aggregated_bytes("v2"));

    let beta = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";
    let (code, ct, body) = body_of(d.respond(&parts("/apis", Some(beta))).unwrap()).await;
    assert_eq!(code, 200);
    assert_eq!(
        ct,
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
    );
    assert_eq!(body, aggregated_bytes("v2beta1"));
}

#[tokio::test]
async fn aggregated_discovery_carries_an_etag_and_answers_if_none_match_with_304() {
    let d = Discovery::new(vec![metrics_group()]).unwrap();
    let accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
    let resp = d.respond(&parts("/apis", Some(accept))).unwrap();
    let etag = resp.headers()[hyper::header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(resp.headers()[hyper::header::VARY], "Accept");
    assert!(
        etag.len() == 130 && etag.starts_with('"') && etag.ends_with('"'),
        "{etag}"
    );
    let mut req = parts("/apis", Some(accept));
    req.headers.insert(hyper::header::IF_NONE_MATCH, etag.parse().unwrap());
    let resp = d.respond(&req).unwrap();
    assert_eq!(resp.status(), 304);
    assert!(resp.into_body().collect().await.unwrap().to_bytes().is_empty());
}

#[tokio::test]
async fn legacy_discovery_is_the_fallback_and_protobuf_only_gets_406() {
    let d = Discovery::new(vec![metrics_group()]).unwrap();
    for accept in [
        "application/json, */*",
        "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json",
    ] {
        let (code, ct, body) = body_of(d.respond(&parts("/apis", Some(accept))).unwrap()).await;
        assert_eq!((code, ct.as_str()), (200, "application/json"), "{accept}");
        assert!(body.starts_with("{\"kind\":\"APIGroupList\""), "{accept}");
    }
    let resp = d
        .respond(&parts("/apis", Some("application/vnd.kubernetes.protobuf")))
        .unwrap();
    assert_eq!(resp.status(), 406);
    // Aggregated discovery is only on /apis; a group document stays legacy-only.
    let only_aggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
    assert_eq!(
        d.respond(&parts("/apis/metrics.k8s.io", Some(only_aggregated)))
            .unwrap()
            .status(),
        406
    );
}

#[test]
fn inconsistent_descriptions_are_rejected() {
    let mut g = metrics_group();
    g.preferred_version = "v2".into();
    assert!(matches!(
        Discovery::new(vec![g]),
        Err(Error::UnknownPreferredVersion { .. })
    ));
    let mut g = metrics_group();
    g.versions.clear();
    assert!(matches!(Discovery::new(vec![g]), Err(Error::NoVersions { .. })));
    assert!(matches!(
        Discovery::new(vec![metrics_group(), metrics_group()]),
        Err(Error::DuplicateGroup { .. })
    ));
    let mut g = metrics_group();
    g.versions.push(g.versions[0].clone());
    assert!(matches!(Discovery::new(vec![g]), Err(Error::DuplicateVersion { .. })));
}
