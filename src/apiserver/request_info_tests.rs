use super::*;

fn of(method: Method, uri: &str) -> Target {
    target(&method, &uri.parse::<Uri>().unwrap())
}

fn resource(verb: &str, namespace: &str, resource: &str, name: &str) -> Target {
    Target::Resource(ResourceAttributes {
        verb: verb.into(),
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        resource: resource.into(),
        subresource: String::new(),
        namespace: namespace.into(),
        name: name.into(),
    })
}

fn non_resource(verb: &str, path: &str) -> Target {
    Target::NonResource {
        path: path.into(),
        verb: verb.into(),
    }
}

#[test]
fn metrics_api_paths_are_resource_requests() {
    let base = "/apis/metrics.k8s.io/v1beta1";
    assert_eq!(
        of(Method::GET, &format!("{base}/nodes")),
        resource("list", "", "nodes", "")
    );
    assert_eq!(
        of(Method::GET, &format!("{base}/nodes/n1")),
        resource("get", "", "nodes", "n1")
    );
    assert_eq!(
        of(Method::GET, &format!("{base}/namespaces/default/pods")),
        resource("list", "default", "pods", "")
    );
    assert_eq!(
        of(Method::HEAD, &format!("{base}/namespaces/default/pods/p1")),
        resource("get", "default", "pods", "p1")
    );
    assert_eq!(
        of(Method::GET, &format!("{base}/pods")),
        resource("list", "", "pods", "")
    );
}

#[test]
fn watch_comes_from_the_query_or_the_path() {
    let base = "/apis/metrics.k8s.io/v1beta1";
    assert_eq!(
        of(Method::GET, &format!("{base}/pods?watch=true")),
        resource("watch", "", "pods", "")
    );
    assert_eq!(
        of(Method::GET, &format!("{base}/pods?watch=1&limit=5")),
        resource("watch", "", "pods", "")
    );
    assert_eq!(
        of(Method::GET, &format!("{base}/pods?watch=false")),
        resource("list", "", "pods", "")
    );
    assert_eq!(
        of(Method::GET, &format!("{base}/pods?watch=yes")),
        resource("watch", "", "pods", "")
    );
    assert_eq!(
        of(Method::GET, &format!("{base}/watch/namespaces/ns/pods")),
        resource("watch", "ns", "pods", "")
    );
}

#[test]
fn a_field_selector_on_the_name_names_the_object_of_a_list() {
    let base = "/apis/metrics.k8s.io/v1beta1";
    assert_eq!(
        of(Method::GET, &format!("{base}/nodes?fieldSelector=metadata.name%3Dn1")),
        resource("list", "", "nodes", "n1")
    );
    assert_eq!(
        of(Method::GET, &format!("{base}/nodes?fieldSelector=metadata.name!%3Dn1")),
        resource("list", "", "nodes", "")
    );
    assert_eq!(
        of(
            Method::GET,
            &format!("{base}/nodes?fieldSelector=metadata.name%3Da%2Fb")
        ),
        resource("list", "", "nodes", "")
    );
}

#[test]
fn subresources_and_other_methods_follow_upstream() {
    let t = of(Method::GET, "/api/v1/namespaces/ns/pods/p/log");
    assert_eq!(
        t,
        Target::Resource(ResourceAttributes {
            verb: "get".into(),
            version: "v1".into(),
            resource: "pods".into(),
            subresource: "log".into(),
            namespace: "ns".into(),
            name: "p".into(),
            ..ResourceAttributes::default()
        })
    );
    assert_eq!(
        of(Method::DELETE, "/apis/metrics.k8s.io/v1beta1/nodes"),
        resource("deletecollection", "", "nodes", "")
    );
    assert_eq!(
        of(Method::POST, "/apis/metrics.k8s.io/v1beta1/nodes"),
        resource("create", "", "nodes", "")
    );
    assert_eq!(
        of(Method::GET, "/apis/metrics.k8s.io/v1beta1/namespaces/ns"),
        resource("get", "ns", "namespaces", "ns")
    );
}

#[test]
fn discovery_health_and_metrics_are_non_resource_requests() {
    assert_eq!(of(Method::GET, "/apis"), non_resource("get", "/apis"));
    assert_eq!(
        of(Method::GET, "/apis/metrics.k8s.io/v1beta1"),
        non_resource("get", "/apis/metrics.k8s.io/v1beta1")
    );
    assert_eq!(of(Method::GET, "/metrics"), non_resource("get", "/metrics"));
    assert_eq!(of(Method::HEAD, "/livez?verbose"), non_resource("head", "/livez"));
    assert_eq!(of(Method::POST, "/"), non_resource("post", "/"));
    assert_eq!(
        of(Method::GET, "/apis/metrics.k8s.io/v1beta1/watch"),
        non_resource("get", "/apis/metrics.k8s.io/v1beta1/watch")
    );
}

#[test]
fn the_path_is_percent_decoded_like_go() {
    assert_eq!(of(Method::GET, "/metr%69cs"), non_resource("get", "/metrics"));
    assert_eq!(
        of(Method::GET, "/apis/metrics.k8s.io/v1beta1/namespaces/d%65fault/pods"),
        resource("list", "default", "pods", "")
    );
}

#[test]
fn segments_past_the_subresource_do_not_change_the_target() {
    let expected = Target::Resource(ResourceAttributes {
        verb: "get".into(),
        group: "g".into(),
        version: "v".into(),
        resource: "pods".into(),
        subresource: "status".into(),
        namespace: "ns".into(),
        name: "p".into(),
    });
    assert_eq!(
        of(Method::GET, "/apis/g/v/namespaces/ns/pods/p/status/a/b/c/d/e"),
        expected
    );
    let watched = Target::Resource(ResourceAttributes {
        verb: "watch".into(),
        group: "g".into(),
        version: "v".into(),
        resource: "pods".into(),
        subresource: String::new(),
        namespace: "ns".into(),
        name: "p".into(),
    });
    assert_eq!(of(Method::GET, "/apis/g/v/watch/namespaces/ns/pods/p/x/y/z/w"), watched);
    // The borrowed form and the owned one are the same target.
    assert_eq!(expected.view().to_target(), expected);
}
