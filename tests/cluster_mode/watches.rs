//! The watch protocol (resumption, 410 Gone, bookmarks) and readiness while the API syncs.

use hyper::StatusCode;
use metrics_server_rs::inventory::cluster::ClusterInventory;
use metrics_server_rs::inventory::Inventory;
use metrics_server_rs::sandbox::pki::TestCa;

use crate::fleet::*;
use crate::support::kube_api::*;
use crate::support::{mask_creation_timestamps, Kubelets, ServerOptions, TestCluster};

// ---------------------------------------------------------------------------------------------
// Watch protocol: resumption, 410 Gone, bookmarks.

#[tokio::test]
async fn a_dropped_watch_resumes_from_its_resource_version_and_catches_up() {
    let Running { api, cluster: c, .. } = running_fleet().await;
    for resource in [Resource::Nodes, Resource::Pods] {
        api.wait_for_open_watches(resource, 1).await;
    }
    let seen = api.resource_version().to_string();

    // The API goes away mid-watch; changes happen while nobody watches.
    api.hold(Resource::Pods, Verb::Watch);
    api.hold(Resource::Nodes, Verb::Watch);
    api.drop_watches();
    for resource in [Resource::Nodes, Resource::Pods] {
        let watches = api.wait_for_requests("a second watch", 2, is_watch(resource)).await;
        assert_eq!(watches[1].param("resourceVersion"), Some(seen.as_str()));
    }
    api.delete_pod("shop", WEB);
    let mut relabelled = api_pod("node-b");
    relabelled["metadata"]["labels"]["tier"] = "payments".into();
    api.apply_pod(relabelled);
    api.release(Resource::Pods, Verb::Watch);
    api.release(Resource::Nodes, Verb::Watch);

    wait_until(&c.inventory, "the missed changes are applied", |_, s| {
        s.pod("shop", WEB).is_none()
            && s.pod("shop", API)
                .is_some_and(|p| p.labels.get("tier") == Some("payments"))
    })
    .await;
    // Resumed, not relisted.
    assert_eq!(api.count(is_list(Resource::Pods)), 1);
    assert_eq!(api.count(is_list(Resource::Nodes)), 1);
    let t = at_scrape(1);
    let pods = c.get("/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods").await;
    assert_eq!(
        mask_creation_timestamps(&pods.body),
        list_json("PodMetricsList", &[api_json(t).replace("\"backend\"", "\"payments\"")])
    );
}

#[tokio::test]
async fn gone_forces_a_relist_that_converges_to_the_api() {
    let Running { api, cluster: c, .. } = running_fleet().await;
    for resource in [Resource::Nodes, Resource::Pods] {
        api.wait_for_open_watches(resource, 1).await;
    }
    api.hold(Resource::Pods, Verb::Watch);
    api.hold(Resource::Nodes, Verb::Watch);
    api.drop_watches();
    for resource in [Resource::Nodes, Resource::Pods] {
        api.wait_for_requests("a second watch", 2, is_watch(resource)).await;
    }
    // While nobody watches: node-b and its pod go, a pod arrives; then history is compacted,
    // so the resumed watches are answered 410 Gone and must relist.
    api.delete_pod("shop", API);
    api.delete_node("node-b");
    api.apply_pod(web_pod("node-a")); // unchanged content, a new version
    let newcomer = "web-frontend-7c5d8f6b9-n3w9z";
    let mut fresh = web_pod("node-a");
    fresh["metadata"]["name"] = newcomer.into();
    api.apply_pod(fresh);
    api.compact();
    api.release(Resource::Pods, Verb::Watch);
    api.release(Resource::Nodes, Verb::Watch);

    wait_until(&c.inventory, "the relist converges", |_, s| {
        node_names(s) == ["node-a"]
            && pod_names(s)
                == [
                    format!("kube-system/{COREDNS} on node-a"),
                    format!("shop/{newcomer} on node-a"),
                    format!("shop/{WEB} on node-a"),
                ]
    })
    .await;
    assert_eq!(api.count(is_list(Resource::Pods)), 2, "one relist after the 410");
    assert_eq!(api.count(is_list(Resource::Nodes)), 2, "one relist after the 410");
    let latest = api.resource_version().to_string();
    for resource in [Resource::Nodes, Resource::Pods] {
        // The first watch, the resumed one answered 410, and the one after the relist.
        let watches = api
            .wait_for_requests("a watch after the relist", 3, is_watch(resource))
            .await;
        assert_eq!(watches[2].param("resourceVersion"), Some(latest.as_str()));
    }
    let node_b = c.get("/apis/metrics.k8s.io/v1beta1/nodes/node-b").await;
    assert_eq!(node_b.status, StatusCode::NOT_FOUND);
    assert!(node_b.body.contains("node \\\"node-b\\\" not found"), "{}", node_b.body);
    let gone = c
        .get(&format!("/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods/{API}"))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(c.inventory.has_synced());
}

#[tokio::test]
async fn bookmarks_advance_the_version_a_watch_resumes_from() {
    let Running { api, cluster: c, .. } = running_fleet().await;
    let first = api.wait_for_open_watches(Resource::Pods, 1).await.remove(0);
    api.wait_for_open_watches(Resource::Nodes, 1).await;
    // A node change moves the global version; the pod watch learns of it only by bookmark.
    let mut relabelled = node_for(c.kubelets.get("node-a"), "blue");
    relabelled["metadata"]["labels"]["topology.kubernetes.io/zone"] = "eu-west-1a".into();
    let moved_to = api.apply_node(relabelled).to_string();
    assert_eq!(api.bookmark(Resource::Pods).to_string(), moved_to);
    assert_ne!(first.param("resourceVersion"), Some(moved_to.as_str()));
    api.drop_watches();

    let resumed = api.wait_for_open_watches(Resource::Pods, 2).await.remove(1);
    assert_eq!(resumed.param("resourceVersion"), Some(moved_to.as_str()));
    assert_eq!(
        api.count(is_list(Resource::Pods)),
        1,
        "a bookmark never causes a relist"
    );
    wait_until(&c.inventory, "the node label arrives", |_, s| {
        s.nodes["node-a"].labels.contains_key("topology.kubernetes.io/zone")
    })
    .await;
    assert_eq!(c.inventory.snapshot().pod_count(), 3);
}

// ---------------------------------------------------------------------------------------------
// Readiness.

#[tokio::test]
async fn readiness_fails_until_both_first_lists_complete() {
    let ca = TestCa::new("cluster CA").unwrap();
    let kubelets = Kubelets::start(&ca, fleet()).await;
    let api = KubeApi::start(&ca).await;
    populate(&api, &kubelets);
    api.hold(Resource::Nodes, Verb::List);
    api.hold(Resource::Pods, Verb::List);
    let dir = tempfile::tempdir().unwrap();
    let (_, inventory) = follow(&api, &dir).await;
    let c = TestCluster::serve(kubelets, inventory, ServerOptions::trusting(&ca)).await;
    api.wait_for_requests("the node list", 1, is_list(Resource::Nodes))
        .await;
    api.wait_for_requests("the pod list", 1, is_list(Resource::Pods)).await;

    let check = "/readyz/metric-informer-sync";
    let nodes_pending = c.get(check).await;
    assert_eq!(nodes_pending.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        nodes_pending.body,
        "internal server error: cache for node informer has not synced\n"
    );
    api.release(Resource::Nodes, Verb::List);
    wait_until(&c.inventory, "nodes are listed", |_, s| s.nodes.len() == 2).await;
    let pods_pending = c.get(check).await;
    assert_eq!(pods_pending.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        pods_pending.body,
        "internal server error: cache for pod informer has not synced\n"
    );
    api.release(Resource::Pods, Verb::List);
    synced(&c.inventory).await;
    let ready = c.get(check).await;
    assert_eq!((ready.status, ready.body.as_str()), (StatusCode::OK, "ok"));
}

#[tokio::test]
async fn an_unreachable_api_at_start_fails_readiness_and_the_server_keeps_serving() {
    let ca = TestCa::new("cluster CA").unwrap();
    let kubelets = Kubelets::start(&ca, fleet()).await;
    // A port nobody listens on (yet): the API server is down when we start.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = reserved.local_addr().unwrap();
    drop(reserved);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("https://{address}");
    let path = write_kubeconfig(dir.path(), &url, &ca.cert_pem(), &KubeAuth::Token(API_TOKEN.into()));
    let (_, client) = kube_client(&path).await;
    let inventory = ClusterInventory::start(client, url.clone());
    let c = TestCluster::serve(kubelets, inventory, ServerOptions::trusting(&ca)).await;

    wait_until(&c.inventory, "the failure is seen", |i, _| i.api_error().is_some()).await;
    let error = c.inventory.api_error().unwrap();
    assert!(error.contains("Connect"), "{error}");
    let readyz = c.get("/readyz?verbose").await;
    assert_eq!(readyz.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        readyz.body.contains(
            "[-]metric-informer-sync failed: cache for node informer has not synced: the API server is unreachable ("
        ),
        "{}",
        readyz.body
    );
    // Still serving: liveness holds (no crash loop), the API answers with what it has.
    assert_eq!(c.get("/livez").await.status, StatusCode::OK);
    let nodes = c.get("/apis/metrics.k8s.io/v1beta1/nodes").await;
    assert_eq!(
        (nodes.status, nodes.body),
        (StatusCode::OK, list_json("NodeMetricsList", &[]))
    );
    c.scrape().await;

    // The API comes up; the watcher's retry finds it.
    let api = KubeApi::start_on(&ca, address).await;
    populate(&api, &c.kubelets);
    synced(&c.inventory).await;
    assert_eq!(c.inventory.api_error(), None);
    c.scrape().await;
    c.scrape().await;
    let ready = c.get("/readyz?verbose").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    let t = at_scrape(1);
    let nodes = c.get("/apis/metrics.k8s.io/v1beta1/nodes").await;
    assert_eq!(
        mask_creation_timestamps(&nodes.body),
        list_json("NodeMetricsList", &[node_a_json(t), node_b_json(t)])
    );
}

#[tokio::test]
async fn an_api_server_lost_mid_run_leaves_the_last_view_served_until_it_returns() {
    let Running {
        api, cluster: c, ca, ..
    } = running_fleet().await;
    for resource in [Resource::Nodes, Resource::Pods] {
        api.wait_for_open_watches(resource, 1).await;
    }
    let address = api.address();
    drop(api); // the API server dies: its connections close and nothing listens

    // A dropped stream may be reported first; the reconnects then fail to connect.
    wait_until(&c.inventory, "the loss is seen", |i, _| {
        i.api_error().is_some_and(|e| e.contains("Connect"))
    })
    .await;
    // The last good view is still served, and readiness holds: the data is good.
    let t = at_scrape(1);
    let nodes = c.get("/apis/metrics.k8s.io/v1beta1/nodes").await;
    assert_eq!(
        mask_creation_timestamps(&nodes.body),
        list_json("NodeMetricsList", &[node_a_json(t), node_b_json(t)])
    );
    let ready = c.get("/readyz").await;
    assert_eq!((ready.status, ready.body.as_str()), (StatusCode::OK, "ok"));
    // The operator can see why the inventory is not moving.
    let scrapes: serde_json::Value = serde_json::from_str(&c.get("/debug/scrapes").await.body).unwrap();
    let error = scrapes["summary"]["inventoryError"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.contains("Connect"), "{scrapes}");

    // The API comes back (same address, fresh state) without web: the watcher finds it again.
    let api = KubeApi::start_on(&ca, address).await;
    populate(&api, &c.kubelets);
    api.delete_pod("shop", WEB);
    wait_until(&c.inventory, "the returned API's view is applied", |i, s| {
        i.api_error().is_none() && s.pod("shop", WEB).is_none() && s.pod("shop", API).is_some()
    })
    .await;
    let pods = c.get("/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods").await;
    assert_eq!(
        mask_creation_timestamps(&pods.body),
        list_json("PodMetricsList", &[api_json(t)])
    );
}

#[tokio::test]
async fn scraping_starts_when_the_inventory_has_synced() {
    let ca = TestCa::new("cluster CA").unwrap();
    let kubelets = Kubelets::start(&ca, fleet()).await;
    let api = KubeApi::start(&ca).await;
    populate(&api, &kubelets);
    api.hold(Resource::Pods, Verb::List);
    let dir = tempfile::tempdir().unwrap();
    let (_, inventory) = follow(&api, &dir).await;
    let synced = {
        let inventory = inventory.clone();
        async move { inventory.synced().await }
    };
    // The real loop, as main runs it: a 60 s resolution, the first cycle at once...
    let c = TestCluster::run_after(kubelets, inventory, ServerOptions::trusting(&ca), synced).await;
    api.wait_for_requests("the pod list", 1, is_list(Resource::Pods)).await;
    assert_eq!(c.kubelets.get("node-a").requests(), 0);
    // ...once synced: a cycle run over the still empty inventory would leave the nodes for
    // the next one, a minute later, and this wait would time out.
    api.release(Resource::Pods, Verb::List);
    c.kubelets.get("node-a").wait_for_requests(1).await;
    c.kubelets.get("node-b").wait_for_requests(1).await;
    assert!(c.inventory.has_synced());
}
