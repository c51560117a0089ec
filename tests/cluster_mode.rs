//! Cluster mode end to end: the real server with the cluster inventory following a Kubernetes
//! API server double (list + watch over HTTPS), scraping fake kubelets over TLS. Every value
//! follows from the kubelet bodies in `fleet`; waits are on the inventory's change signal or on
//! requests the double records, with timeouts only as failure guards.
//!
//! This file: values, node selection, deletions and moves. `watches`: the watch protocol and
//! readiness. `kubelets`: addresses, ports and credentials.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] fns: a failed step should fail the test loudly"
)]

mod support;

#[path = "cluster_mode/fleet.rs"]
mod fleet;
#[path = "cluster_mode/kubelets.rs"]
mod kubelets;
#[path = "cluster_mode/watches.rs"]
mod watches;

use hyper::StatusCode;
use metrics_server_rs::inventory::selector::LabelSelector;
use metrics_server_rs::inventory::Inventory;
use metrics_server_rs::sandbox::pki::TestCa;

use fleet::*;
use support::kube_api::*;
use support::{mask_creation_timestamps, Kubelets, ServerOptions, TestCluster};

// ---------------------------------------------------------------------------------------------
// Values, selection, deletion.

#[tokio::test]
async fn values_equal_the_kubelets_rates_for_the_objects_the_api_lists() {
    let ca = TestCa::new("cluster CA").unwrap();
    let kubelets = Kubelets::start(&ca, fleet()).await;
    let api = KubeApi::start(&ca).await;
    // One object per page: the watcher must follow `continue` tokens to the end.
    api.set_page_cap(1);
    populate(&api, &kubelets);
    let listed_at = api.resource_version().to_string();
    let dir = tempfile::tempdir().unwrap();
    let (_, inventory) = follow(&api, &dir).await;
    synced(&inventory).await;
    let snapshot = inventory.snapshot();
    assert_eq!(node_names(&snapshot), ["node-a", "node-b"]);
    assert_eq!(
        pod_names(&snapshot),
        [
            format!("kube-system/{COREDNS} on node-a"),
            format!("shop/{API} on node-b"),
            format!("shop/{WEB} on node-a"),
        ]
    );

    let c = TestCluster::serve(kubelets, inventory, ServerOptions::trusting(&ca)).await;
    c.scrape().await;
    c.scrape().await;
    let nodes = c.get("/apis/metrics.k8s.io/v1beta1/nodes").await;
    assert_eq!(nodes.status, StatusCode::OK);
    let t = at_scrape(1);
    assert_eq!(
        mask_creation_timestamps(&nodes.body),
        list_json("NodeMetricsList", &[node_a_json(t), node_b_json(t)])
    );
    // Grouped by node: node-a's pods (by namespace and name), then node-b's.
    let pods = c.get("/apis/metrics.k8s.io/v1beta1/pods").await;
    assert_eq!(
        mask_creation_timestamps(&pods.body),
        list_json("PodMetricsList", &[coredns_json(t), web_json(t), api_json(t)])
    );
    // Reported by node-b's kubelet, but Succeeded: the API never lists it, so neither do we.
    let batch = c
        .get(&format!("/apis/metrics.k8s.io/v1beta1/namespaces/batch/pods/{BATCH}"))
        .await;
    assert_eq!(batch.status, StatusCode::NOT_FOUND);
    assert_eq!(
        batch.body,
        not_found(
            &format!("pods \"{BATCH}\" not found"),
            &format!(r#"{{"name":"{BATCH}","kind":"pods"}}"#)
        )
    );

    // What was asked: paginated lists (pods only Running), then watches from the list's version.
    let node_lists: Vec<Recorded> = api.matching(is_list(Resource::Nodes));
    assert_eq!(node_lists.len(), 2, "two nodes, one per page: {node_lists:#?}");
    assert_eq!(node_lists[0].param("limit"), Some("500"));
    assert_eq!(node_lists[0].param("fieldSelector"), None);
    assert_eq!(node_lists[1].param("continue"), Some("page-1"));
    let pod_lists = api.matching(is_list(Resource::Pods));
    assert_eq!(pod_lists.len(), 3, "three running pods, one per page: {pod_lists:#?}");
    for list in &pod_lists {
        assert_eq!(list.param("fieldSelector"), Some("status.phase=Running"));
    }
    for resource in [Resource::Nodes, Resource::Pods] {
        let watch = api.wait_for_open_watches(resource, 1).await.remove(0);
        assert_eq!(watch.param("resourceVersion"), Some(listed_at.as_str()));
        assert_eq!(watch.param("allowWatchBookmarks"), Some("true"));
    }
    assert!(api
        .requests()
        .iter()
        .all(|r| r.authorization.as_deref() == Some("Bearer api-token")));
}

#[tokio::test]
async fn the_node_selector_limits_scrapes_and_lists_but_not_gets() {
    let ca = TestCa::new("cluster CA").unwrap();
    let kubelets = Kubelets::start(&ca, fleet()).await;
    let api = KubeApi::start(&ca).await;
    populate(&api, &kubelets);
    let dir = tempfile::tempdir().unwrap();
    let (_, inventory) = follow(&api, &dir).await;
    synced(&inventory).await;
    let options = ServerOptions {
        node_selector: LabelSelector::parse("pool=blue").unwrap(),
        ..ServerOptions::trusting(&ca)
    };
    let c = TestCluster::serve(kubelets, inventory, options).await;
    c.scrape().await;
    c.scrape().await;
    assert_eq!(c.kubelets.get("node-a").requests(), 2);
    assert_eq!(c.kubelets.get("node-b").requests(), 0, "node-b is outside the selector");

    let t = at_scrape(1);
    let nodes = c.get("/apis/metrics.k8s.io/v1beta1/nodes").await;
    assert_eq!(
        mask_creation_timestamps(&nodes.body),
        list_json("NodeMetricsList", &[node_a_json(t)])
    );
    let pods = c.get("/apis/metrics.k8s.io/v1beta1/pods").await;
    assert_eq!(
        mask_creation_timestamps(&pods.body),
        list_json("PodMetricsList", &[coredns_json(t), web_json(t)])
    );
    // A label selector is ANDed with the node selector.
    let green = c
        .get("/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=pool%3Dgreen")
        .await;
    assert_eq!(green.body, list_json("NodeMetricsList", &[]));
    // Upstream: a get is not filtered, the node simply has no metrics.
    let unselected = c.get("/apis/metrics.k8s.io/v1beta1/nodes/node-b").await;
    assert_eq!(unselected.status, StatusCode::NOT_FOUND);
    assert_eq!(
        unselected.body,
        not_found(
            "nodemetrics.metrics.k8s.io \"node-b\" not found",
            r#"{"name":"node-b","group":"metrics.k8s.io","kind":"nodemetrics"}"#
        )
    );
    let api_on_b = c
        .get(&format!("/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods/{API}"))
        .await;
    assert_eq!(
        api_on_b.body,
        not_found(
            &format!("podmetrics.metrics.k8s.io \"shop/{API}\" not found"),
            &format!(r#"{{"name":"shop/{API}","group":"metrics.k8s.io","kind":"podmetrics"}}"#)
        )
    );
}

#[tokio::test]
async fn a_deleted_pod_vanishes_on_the_next_request() {
    let Running { api, cluster: c, .. } = running_fleet().await;
    let path = format!("/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods/{WEB}");
    assert_eq!(c.get(&path).await.status, StatusCode::OK);

    api.delete_pod("shop", WEB);
    wait_until(&c.inventory, "the pod is gone", |_, s| s.pod("shop", WEB).is_none()).await;
    // No scrape in between: the kubelet data is still in the store, the inventory decides.
    let gone = c.get(&path).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(
        gone.body,
        not_found(
            &format!("pods \"{WEB}\" not found"),
            &format!(r#"{{"name":"{WEB}","kind":"pods"}}"#)
        )
    );
    let t = at_scrape(1);
    let pods = c.get("/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods").await;
    assert_eq!(
        mask_creation_timestamps(&pods.body),
        list_json("PodMetricsList", &[api_json(t)])
    );
    assert_eq!(c.kubelets.get("node-a").requests(), 2);
}

#[tokio::test]
async fn a_pod_leaving_phase_running_vanishes_on_the_next_request() {
    let Running { api, cluster: c, .. } = running_fleet().await;
    let mut done = web_pod("node-a");
    done["status"]["phase"] = "Failed".into();
    api.apply_pod(done);
    // The field-selected watch sees the pod leave its selection as a DELETED event.
    wait_until(&c.inventory, "the pod is gone", |_, s| s.pod("shop", WEB).is_none()).await;
    let pod = c
        .get(&format!("/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods/{WEB}"))
        .await;
    assert_eq!(pod.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_deleted_node_vanishes_on_the_next_request() {
    let Running { api, cluster: c, .. } = running_fleet().await;
    assert_eq!(
        c.get("/apis/metrics.k8s.io/v1beta1/nodes/node-b").await.status,
        StatusCode::OK
    );

    api.delete_node("node-b");
    wait_until(&c.inventory, "the node is gone", |_, s| !s.nodes.contains_key("node-b")).await;
    let gone = c.get("/apis/metrics.k8s.io/v1beta1/nodes/node-b").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(
        gone.body,
        not_found("node \"node-b\" not found", r#"{"name":"node-b","kind":"node"}"#)
    );
    let t = at_scrape(1);
    let nodes = c.get("/apis/metrics.k8s.io/v1beta1/nodes").await;
    assert_eq!(
        mask_creation_timestamps(&nodes.body),
        list_json("NodeMetricsList", &[node_a_json(t)])
    );
    // And it is no longer scraped.
    c.scrape().await;
    assert_eq!(c.kubelets.get("node-b").requests(), 2);
}

#[tokio::test]
async fn a_pod_that_moves_nodes_is_reported_once_from_its_new_node() {
    let ca = TestCa::new("cluster CA").unwrap();
    // Both kubelets report `mover`: node-a's old instance is still shutting down when node-b's
    // new one runs; their rates differ so the source shows in the value.
    let mover = "checkout-5b7d9c6f4-mv8k2";
    let kubelets = Kubelets::start(
        &ca,
        vec![
            kubelet(
                "node-a",
                &Usage {
                    node_millicores: 1000,
                    node_memory: 2 << 30,
                    containers: &[("shop", mover, "checkout", 500, 64 << 20)],
                },
            ),
            kubelet(
                "node-b",
                &Usage {
                    node_millicores: 2500,
                    node_memory: 3 << 30,
                    containers: &[("shop", mover, "checkout", 250, 32 << 20)],
                },
            ),
        ],
    )
    .await;
    let api = KubeApi::start(&ca).await;
    api.apply_node(node_for(kubelets.get("node-a"), "blue"));
    api.apply_node(node_for(kubelets.get("node-b"), "green"));
    let labels = [("app.kubernetes.io/name", "checkout")];
    api.apply_pod(pod_object("shop", mover, "node-a", &labels, "Running"));
    let dir = tempfile::tempdir().unwrap();
    let (_, inventory) = follow(&api, &dir).await;
    synced(&inventory).await;
    let c = TestCluster::serve(kubelets, inventory, ServerOptions::trusting(&ca)).await;
    c.scrape().await;
    c.scrape().await;
    let path = format!("/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods/{mover}");
    let labels_json = r#"{"app.kubernetes.io/name":"checkout"}"#;
    let from_a = |t| pod_json("shop", mover, labels_json, t, &[("checkout", "500m", "64Mi")]);
    let from_b = |t| pod_json("shop", mover, labels_json, t, &[("checkout", "250m", "32Mi")]);
    assert_eq!(
        mask_creation_timestamps(&c.get(&path).await.body),
        from_a(at_scrape(1)) + "\n"
    );

    // Rescheduled: deleted, then created again with the same name on node-b.
    api.delete_pod("shop", mover);
    api.apply_pod(pod_object("shop", mover, "node-b", &labels, "Running"));
    wait_until(&c.inventory, "the pod is on node-b", |_, s| {
        s.pod("shop", mover).is_some_and(|p| &*p.node_name == "node-b")
    })
    .await;
    assert_eq!(
        mask_creation_timestamps(&c.get(&path).await.body),
        from_b(at_scrape(1)) + "\n"
    );
    // node-a's kubelet keeps reporting the old instance; it is never counted.
    c.scrape().await;
    let list = c.get("/apis/metrics.k8s.io/v1beta1/pods").await;
    assert_eq!(
        mask_creation_timestamps(&list.body),
        list_json("PodMetricsList", &[from_b(at_scrape(2))])
    );
}
