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

fn metrics_group() -> ApiGroup {
    ApiGroup {
        name: "metrics.k8s.io".into(),
        versions: vec![ApiVersion {
            version: "v1beta1".into(),
            resources: vec![
                resource("nodes", false, "NodeMetrics"),
                resource("pods", true, "PodMetrics"),
            ],
        }],
        preferred_version: "v1beta1".into(),
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
        "{\"kind\":\"APIGroupList\",\"apiVersion\":\"v1\",\"groups\":[{\"name\":\"metrics.k8s.io\",\"versions\":[{\"groupVersion\":\"metrics.k8s.io/v1beta1\",\"version\":\"v1beta1\"}],\"preferredVersion\":{\"groupVersion\":\"metrics.k8s.io/v1beta1\",\"version\":\"v1beta1\"}}]}\n"
    );
}

#[tokio::test]
async fn group_matches_upstream_bytes() {
    let d = Discovery::new(vec![metrics_group()]).unwrap();
    let (_, body) = get(&d, "/apis/metrics.k8s.io").await.unwrap();
    assert_eq!(
        body,
        "{\"kind\":\"APIGroup\",\"apiVersion\":\"v1\",\"name\":\"metrics.k8s.io\",\"versions\":[{\"groupVersion\":\"metrics.k8s.io/v1beta1\",\"version\":\"v1beta1\"}],\"preferredVersion\":{\"groupVersion\":\"metrics.k8s.io/v1beta1\",\"version\":\"v1beta1\"}}\n"
    );
}

#[tokio::test]
async fn resource_list_matches_upstream_bytes_with_sorted_verbs() {
    let d = Discovery::new(vec![metrics_group()]).unwrap();
    let (_, body) = get(&d, "/apis/metrics.k8s.io/v1beta1").await.unwrap();
    assert_eq!(
        body,
        "{\"kind\":\"APIResourceList\",\"apiVersion\":\"v1\",\"groupVersion\":\"metrics.k8s.io/v1beta1\",\"resources\":[{\"name\":\"nodes\",\"singularName\":\"\",\"namespaced\":false,\"kind\":\"NodeMetrics\",\"verbs\":[\"get\",\"list\"]},{\"name\":\"pods\",\"singularName\":\"\",\"namespaced\":true,\"kind\":\"PodMetrics\",\"verbs\":[\"get\",\"list\"]}]}\n"
    );
}

#[tokio::test]
async fn unknown_version_is_plain_404_and_other_paths_are_not_discovery() {
    let mut group = metrics_group();
    let mut v1 = group.versions[0].clone();
    v1.version = "v1".into();
    group.versions.insert(0, v1);
    let d = Discovery::new(vec![group]).unwrap();
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

#[tokio::test]
async fn kubectl_accept_headers_get_json_and_protobuf_only_gets_406() {
    let d = Discovery::new(vec![metrics_group()]).unwrap();
    let aggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    assert_eq!(d.respond(&parts("/apis", Some(aggregated))).unwrap().status(), 200);
    assert_eq!(
        d.respond(&parts("/apis", Some("application/json, */*")))
            .unwrap()
            .status(),
        200
    );
    let resp = d
        .respond(&parts("/apis", Some("application/vnd.kubernetes.protobuf")))
        .unwrap();
    assert_eq!(resp.status(), 406);
    let only_aggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
    assert_eq!(d.respond(&parts("/apis", Some(only_aggregated))).unwrap().status(), 406);
}

#[test]
fn inconsistent_descriptions_are_rejected() {
    let mut g = metrics_group();
    g.preferred_version = "v1".into();
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
