use super::*;

fn ok(successes: u32, pods: usize) -> NodeScrapeState {
    NodeScrapeState {
        consecutive_successes: successes,
        pods: Some(pods),
        ..NodeScrapeState::default()
    }
}

fn failing(reason: &'static str, message: &str) -> NodeScrapeState {
    NodeScrapeState {
        last_error: Some((reason, message.to_owned())),
        consecutive_failures: 2,
        ..NodeScrapeState::default()
    }
}

fn explain(selected: &[&str], states: &[(&str, NodeScrapeState)]) -> String {
    let selected: Vec<String> = selected.iter().map(|s| (*s).to_owned()).collect();
    let states = states.iter().map(|(n, s)| ((*n).to_owned(), s.clone())).collect();
    storage(&View {
        inventory_synced: true,
        inventory_nodes: selected.len(),
        selected: &selected,
        node_selector: &LabelSelector::default(),
        states: &states,
    })
}

#[test]
fn before_any_scrape_it_waits_for_the_first() {
    assert_eq!(
        explain(&["a", "b"], &[]),
        "no metrics to serve: waiting for the first scrape of 2 nodes"
    );
}

#[test]
fn after_one_scrape_it_waits_for_the_second() {
    assert_eq!(
        explain(&["a", "b", "c"], &[("a", ok(1, 2)), ("b", ok(1, 0)), ("c", ok(1, 1))]),
        "no metrics to serve: waiting for the second scrape of 3 nodes"
    );
}

#[test]
fn every_scrape_failing_is_counted_by_reason_with_a_sample() {
    let tls = "TLS handshake with kubelet failed: invalid peer certificate: UnknownIssuer";
    assert_eq!(
        explain(
            &["a", "b", "c"],
            &[
                ("a", failing("tls", tls)),
                ("b", failing("timeout", "timeout after 10s waiting for kubelet")),
                ("c", failing("tls", "other")),
            ]
        ),
        format!(
            "no metrics to serve: every scrape is failing: 2 nodes tls ({tls}), \
             1 node timeout (timeout after 10s waiting for kubelet), see /debug/scrapes"
        )
    );
}

#[test]
fn partial_progress_names_each_part() {
    assert_eq!(
        explain(
            &["a", "b", "c"],
            &[
                ("a", ok(1, 1)),
                ("b", failing("http_status", "request failed, status: \"403 Forbidden\""))
            ]
        ),
        "no metrics to serve: waiting for the second scrape of 1 node; waiting for the first scrape of 1 node; \
         failing: 1 node http_status (request failed, status: \"403 Forbidden\"), see /debug/scrapes"
    );
}

#[test]
fn served_nodes_without_pods_point_at_the_kubelets() {
    assert_eq!(
        explain(&["a"], &[("a", ok(3, 0))]),
        "no metrics to serve: the kubelets of 1 node scraped report no pods, see /debug/scrapes"
    );
}

#[test]
fn an_empty_inventory_names_the_node_selector() {
    let selector = LabelSelector::parse("x=y").unwrap();
    let states = BTreeMap::new();
    let view = |inventory_nodes| View {
        inventory_synced: true,
        inventory_nodes,
        selected: &[],
        node_selector: &selector,
        states: &states,
    };
    assert_eq!(
        storage(&view(0)),
        "no metrics to serve: no nodes in the inventory (node selector \"x=y\")"
    );
    assert_eq!(
        storage(&view(4)),
        "no metrics to serve: no nodes in the inventory match the node selector \"x=y\" (4 nodes listed)"
    );
    assert_eq!(explain(&[], &[]), "no metrics to serve: no nodes in the inventory");
}

#[test]
fn long_messages_are_cut_on_one_line() {
    let long = format!("line one\n{}", "x".repeat(200));
    let text = explain(&["a"], &[("a", failing("body", &long))]);
    assert!(text.contains("(line one xxx"), "{text}");
    assert!(text.contains("x …), see /debug/scrapes"), "{text}");
    assert!(!text.contains('\n'));
}

#[test]
fn informer_errors_name_the_likely_cause() {
    assert_eq!(informer("node", None), "cache for node informer has not synced");
    assert_eq!(
        informer(
            "node",
            Some("failed to perform initial object list: ApiError: nodes is forbidden: Forbidden (403)")
        ),
        "cache for node informer has not synced: forbidden: the service account lacks RBAC to list and watch \
         nodes and pods (failed to perform initial object list: ApiError: nodes is forbidden: Forbidden (403))"
    );
    assert_eq!(
        informer(
            "pod",
            Some("failed to perform initial object list: HyperError: client error (Connect)")
        ),
        "cache for pod informer has not synced: the API server is unreachable \
         (failed to perform initial object list: HyperError: client error (Connect))"
    );
}
