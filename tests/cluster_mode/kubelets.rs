//! Reaching kubelets: address-type preference, ports, and credentials from the kubeconfig.

use std::time::Duration;

use metrics_server_rs::inventory::cluster::ClusterInventory;
use metrics_server_rs::kubelet::address::AddressResolver;
use metrics_server_rs::kubelet::credentials::{self, ClientLimits, KubeletTlsFlags};
use metrics_server_rs::sandbox::pki::TestCa;

use crate::fleet::*;
use crate::support::kube_api::*;
use crate::support::{mask_creation_timestamps, FakeKubelet, Kubelets, ServerOptions, TestCluster};

// ---------------------------------------------------------------------------------------------
// Kubelet endpoints.

#[tokio::test]
async fn preferred_address_types_pick_the_kubelet_endpoint() {
    let ca = TestCa::new("cluster CA").unwrap();
    let usage_a = Usage {
        node_millicores: 1000,
        node_memory: 2 << 30,
        containers: &[],
    };
    let usage_b = Usage {
        node_millicores: 2500,
        node_memory: 3 << 30,
        containers: &[],
    };
    // node-a's kubelet at 127.0.0.2:P, node-b's at 127.0.0.3:P: the same port, so only the
    // address decides which one answers.
    let mut kubelets = Kubelets::start(&ca, vec![kubelet("node-a", &usage_a).at("127.0.0.2", 0)]).await;
    let port = kubelets.get("node-a").address.port();
    kubelets
        .add(&ca, vec![kubelet("node-b", &usage_b).at("127.0.0.3", port)])
        .await;
    let api = KubeApi::start(&ca).await;
    let no_labels: &[(&str, &str)] = &[];
    // InternalIP wins although listed last; ExternalIP beats Hostname; node-c matches nothing.
    api.apply_node(node_object(
        "node-a",
        no_labels,
        &[
            ("Hostname", "127.0.0.3"),
            ("ExternalIP", "127.0.0.3"),
            ("InternalIP", "127.0.0.2"),
        ],
        port,
    ));
    api.apply_node(node_object(
        "node-b",
        no_labels,
        &[("Hostname", "127.0.0.2"), ("ExternalIP", "127.0.0.3")],
        port,
    ));
    api.apply_node(node_object(
        "node-c",
        no_labels,
        &[("InternalDNS", "node-c.internal")],
        port,
    ));
    let dir = tempfile::tempdir().unwrap();
    let (_, inventory) = follow(&api, &dir).await;
    synced(&inventory).await;
    let options = ServerOptions {
        addresses: AddressResolver::new(
            vec!["InternalIP".into(), "ExternalIP".into(), "Hostname".into()],
            10250,
            true,
            false,
        ),
        ..ServerOptions::trusting(&ca)
    };
    let c = TestCluster::serve(kubelets, inventory, options).await;
    c.scrape().await;
    c.scrape().await;
    assert_eq!(c.kubelets.get("node-a").requests(), 2);
    assert_eq!(c.kubelets.get("node-b").requests(), 2);
    let t = at_scrape(1);
    let nodes = c.get("/apis/metrics.k8s.io/v1beta1/nodes").await;
    assert_eq!(
        mask_creation_timestamps(&nodes.body),
        list_json(
            "NodeMetricsList",
            &[
                node_json("node-a", "{}", t, "1", "2Gi").replace(r#","labels":{}"#, ""),
                node_json("node-b", "{}", t, "2500m", "3Gi").replace(r#","labels":{}"#, ""),
            ]
        )
    );
    let status_a = c.scrape_status.get("node-a").unwrap();
    assert_eq!(
        status_a.address.as_deref(),
        Some(format!("https://127.0.0.2:{port}/metrics/resource").as_str())
    );
    let status_c = c.scrape_status.get("node-c").unwrap();
    assert_eq!(
        status_c.last_error,
        Some((
            "address",
            "no address matched types [InternalIP ExternalIP Hostname]".to_owned()
        ))
    );
}

#[tokio::test]
async fn the_node_status_port_is_used_only_when_asked_and_reported() {
    let ca = TestCa::new("cluster CA").unwrap();
    let usage = |millicores| Usage {
        node_millicores: millicores,
        node_memory: 2 << 30,
        containers: &[],
    };
    // On 127.0.0.4: node-a's kubelet at its status port, a different one at --kubelet-port.
    let mut kubelets = Kubelets::start(
        &ca,
        vec![
            kubelet("node-a", &usage(1000)).at("127.0.0.4", 0),
            kubelet("node-a-kubelet-port", &usage(125)).at("127.0.0.4", 0),
        ],
    )
    .await;
    let status_port = kubelets.get("node-a").address.port();
    let kubelet_port = kubelets.get("node-a-kubelet-port").address.port();
    // node-b reports no status port: --kubelet-port it is.
    kubelets
        .add(&ca, vec![kubelet("node-b", &usage(2500)).at("127.0.0.5", kubelet_port)])
        .await;
    let api = KubeApi::start(&ca).await;
    let no_labels: &[(&str, &str)] = &[];
    api.apply_node(node_object(
        "node-a",
        no_labels,
        &[("InternalIP", "127.0.0.4")],
        status_port,
    ));
    api.apply_node(node_object("node-b", no_labels, &[("InternalIP", "127.0.0.5")], 0));
    let dir = tempfile::tempdir().unwrap();
    let (_, inventory) = follow(&api, &dir).await;
    synced(&inventory).await;
    let resolver = |use_status_port| ServerOptions {
        addresses: AddressResolver::new(vec!["InternalIP".into()], kubelet_port, use_status_port, false),
        ..ServerOptions::trusting(&ca)
    };
    let unlabelled = |name, t, cpu| node_json(name, "{}", t, cpu, "2Gi").replace(r#","labels":{}"#, "");
    let t = at_scrape(1);

    let with_flag = TestCluster::serve(kubelets, inventory.clone(), resolver(true)).await;
    with_flag.scrape().await;
    with_flag.scrape().await;
    assert_eq!(with_flag.kubelets.get("node-a-kubelet-port").requests(), 0);
    let nodes = with_flag.get("/apis/metrics.k8s.io/v1beta1/nodes").await;
    assert_eq!(
        mask_creation_timestamps(&nodes.body),
        list_json(
            "NodeMetricsList",
            &[unlabelled("node-a", t, "1"), unlabelled("node-b", t, "2500m")]
        )
    );

    // Without --kubelet-use-node-status-port, node-a is reached at --kubelet-port.
    let without = TestCluster::serve(Kubelets::default(), inventory, resolver(false)).await;
    without.scrape().await;
    without.scrape().await;
    assert_eq!(with_flag.kubelets.get("node-a-kubelet-port").requests(), 2);
    let nodes = without.get("/apis/metrics.k8s.io/v1beta1/nodes").await;
    assert_eq!(
        mask_creation_timestamps(&nodes.body),
        list_json(
            "NodeMetricsList",
            &[
                unlabelled("node-a", t, "125m"),
                unlabelled("node-b", at_scrape(3), "2500m")
            ]
        )
    );
}

#[tokio::test]
async fn a_changed_node_address_is_scraped_from_the_next_cycle() {
    let ca = TestCa::new("cluster CA").unwrap();
    let usage = |millicores| Usage {
        node_millicores: millicores,
        node_memory: 2 << 30,
        containers: &[],
    };
    // node-a's kubelet moves from 127.0.0.6 to 127.0.0.7 (a new port too), continuing the clock.
    let kubelets = Kubelets::start(
        &ca,
        vec![
            kubelet("node-a", &usage(1000)).at("127.0.0.6", 0),
            kubelet_from("node-a-moved", &usage(750), 2).at("127.0.0.7", 0),
        ],
    )
    .await;
    let old = kubelets.get("node-a").address;
    let new = kubelets.get("node-a-moved").address;
    let api = KubeApi::start(&ca).await;
    let no_labels: &[(&str, &str)] = &[];
    api.apply_node(node_object(
        "node-a",
        no_labels,
        &[("InternalIP", "127.0.0.6")],
        old.port(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let (_, inventory) = follow(&api, &dir).await;
    synced(&inventory).await;
    let c = TestCluster::serve(kubelets, inventory, ServerOptions::trusting(&ca)).await;
    c.scrape().await;
    c.scrape().await;

    api.apply_node(node_object(
        "node-a",
        no_labels,
        &[("InternalIP", "127.0.0.7")],
        new.port(),
    ));
    wait_until(&c.inventory, "the new address arrives", |_, s| {
        s.nodes["node-a"].kubelet_status_port == new.port()
    })
    .await;
    c.scrape().await;
    c.scrape().await;
    assert_eq!(c.kubelets.get("node-a").requests(), 2);
    assert_eq!(c.kubelets.get("node-a-moved").requests(), 2);
    assert_eq!(
        c.scrape_status.get("node-a").unwrap().address,
        Some(format!("https://{new}/metrics/resource"))
    );
    let node = c.get("/apis/metrics.k8s.io/v1beta1/nodes/node-a").await;
    assert_eq!(
        mask_creation_timestamps(&node.body),
        node_json("node-a", "{}", at_scrape(3), "750m", "2Gi").replace(r#","labels":{}"#, "") + "\n"
    );
}

// ---------------------------------------------------------------------------------------------
// Kubelet credentials from the kubeconfig.

fn limits(token_refresh: Duration) -> ClientLimits {
    ClientLimits {
        request_timeout: Duration::from_secs(5),
        max_body_bytes: 1 << 20,
        idle_timeout: Duration::from_secs(120),
        token_refresh,
    }
}

#[tokio::test]
async fn a_rotated_token_file_is_sent_to_the_api_and_to_kubelets() {
    let ca = TestCa::new("cluster CA").unwrap();
    let fleet: Vec<FakeKubelet> = fleet().into_iter().map(FakeKubelet::accepting_any_token).collect();
    let kubelets = Kubelets::start(&ca, fleet).await;
    let api = KubeApi::start(&ca).await;
    populate(&api, &kubelets);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    // No trailing newline: kube-client sends a token file verbatim (client-go would trim it).
    std::fs::write(&token_file, "token-one").unwrap();
    let path = write_kubeconfig(
        dir.path(),
        &api.url(),
        api.ca_pem(),
        &KubeAuth::TokenFile(token_file.clone()),
    );
    let (config, client) = kube_client(&path).await;
    let inventory = ClusterInventory::start(client, api.url());
    synced(&inventory).await;
    assert_eq!(api.requests()[0].authorization.as_deref(), Some("Bearer token-one"));

    // As main builds it, but re-reading the token file before every request.
    let kubelet = credentials::from_kube_config(&config, &KubeletTlsFlags::default(), limits(Duration::ZERO)).unwrap();
    let options = ServerOptions {
        kubelet,
        ..ServerOptions::trusting(&ca)
    };
    let c = TestCluster::serve(kubelets, inventory, options).await;
    c.scrape().await;
    std::fs::write(&token_file, "token-two\n").unwrap(); // the kubelet client trims
    c.scrape().await;
    assert_eq!(
        c.kubelets.get("node-a").authorizations(),
        ["Bearer token-one", "Bearer token-two"]
    );
    assert_eq!(
        c.kubelets.get("node-b").authorizations(),
        ["Bearer token-one", "Bearer token-two"]
    );
}

#[tokio::test]
async fn the_kubelet_ca_defaults_to_the_kubeconfigs_and_the_flag_replaces_it() {
    let ca = TestCa::new("cluster CA").unwrap();
    let other = TestCa::new("kubelet serving CA").unwrap();
    let fleet = fleet().into_iter().map(FakeKubelet::accepting_any_token);
    let [a, b]: [FakeKubelet; 2] = fleet.collect::<Vec<_>>().try_into().unwrap();
    let mut kubelets = Kubelets::start(&ca, vec![a]).await;
    kubelets.add(&other, vec![b]).await;
    let api = KubeApi::start(&ca).await;
    populate(&api, &kubelets);
    let dir = tempfile::tempdir().unwrap();
    let (config, inventory) = follow(&api, &dir).await;
    synced(&inventory).await;
    let refresh = limits(Duration::from_secs(60));

    // No --kubelet-certificate-authority: the kubeconfig's CA (and its token) it is.
    let kubelet = credentials::from_kube_config(&config, &KubeletTlsFlags::default(), refresh).unwrap();
    let c = TestCluster::serve(
        kubelets,
        inventory.clone(),
        ServerOptions {
            kubelet,
            ..ServerOptions::trusting(&ca)
        },
    )
    .await;
    c.scrape().await;
    assert_eq!(c.scrape_status.get("node-a").unwrap().last_error, None);
    let (reason, message) = c.scrape_status.get("node-b").unwrap().last_error.unwrap();
    assert_eq!(reason, "tls");
    assert!(message.contains("UnknownIssuer"), "{message}");
    assert!(message.contains("--kubelet-certificate-authority"), "{message}");
    let metrics = c.get("/metrics").await.body;
    assert!(
        metrics.contains("metrics_server_kubelet_scrape_failures_total{reason=\"tls\"} 1\n"),
        "{metrics}"
    );

    // --kubelet-certificate-authority replaces it: now node-b verifies and node-a does not.
    let ca_file = dir.path().join("kubelet-ca.crt");
    std::fs::write(&ca_file, other.cert_pem()).unwrap();
    let flags = KubeletTlsFlags {
        certificate_authority: Some(ca_file),
        ..KubeletTlsFlags::default()
    };
    let kubelet = credentials::from_kube_config(&config, &flags, refresh).unwrap();
    let d = TestCluster::serve(
        Kubelets::default(),
        inventory,
        ServerOptions {
            kubelet,
            ..ServerOptions::trusting(&ca)
        },
    )
    .await;
    d.scrape().await;
    assert_eq!(d.scrape_status.get("node-b").unwrap().last_error, None);
    assert_eq!(d.scrape_status.get("node-a").unwrap().last_error.unwrap().0, "tls");
    assert_eq!(
        c.kubelets.get("node-b").authorizations(),
        [format!("Bearer {API_TOKEN}")],
        "the kubeconfig's token goes to kubelets too"
    );
}

#[tokio::test]
async fn a_kubelet_certificate_without_the_address_names_the_reason_and_the_flag() {
    let ca = TestCa::new("cluster CA").unwrap();
    let [a, b]: [FakeKubelet; 2] = fleet().try_into().unwrap();
    // node-b's serving certificate names only its hostname, not the IP it is reached at.
    let kubelets = Kubelets::start(&ca, vec![a, b.with_cert_names(&["node-b"])]).await;
    let api = KubeApi::start(&ca).await;
    populate(&api, &kubelets);
    let dir = tempfile::tempdir().unwrap();
    let (_, inventory) = follow(&api, &dir).await;
    synced(&inventory).await;
    let c = TestCluster::serve(kubelets, inventory, ServerOptions::trusting(&ca)).await;
    c.scrape().await;
    let port = c.kubelets.get("node-b").address.port();
    let status = c.scrape_status.get("node-b").unwrap();
    assert_eq!(
        status.address.as_deref(),
        Some(format!("https://127.0.0.1:{port}/metrics/resource").as_str())
    );
    let (reason, message) = status.last_error.unwrap();
    assert_eq!(reason, "tls", "{message}");
    assert!(message.starts_with("TLS handshake with kubelet failed: "), "{message}");
    assert!(message.contains("certificate not valid for name"), "{message}");
    assert!(message.contains("does not name the address"), "{message}");
    assert!(message.contains("--kubelet-preferred-address-types"), "{message}");
    let metrics = c.get("/metrics").await.body;
    assert!(
        metrics.contains("metrics_server_kubelet_scrape_failures_total{reason=\"tls\"} 1\n"),
        "{metrics}"
    );
    assert_eq!(c.scrape_status.get("node-a").unwrap().last_error, None);
}
