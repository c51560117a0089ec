//! Readiness (spec §2.7, upstream ready_test.go), staleness, forgetting, vanishing pods, the
//! points gauge, ordering and name reuse.

use super::*;

/// A long-running container (outside the fresh band) at T+`ts`.
fn long_running(ts: i64, cpu: u64) -> ContainerSample<'static> {
    sample("ns1", "pod1", "container1", point(at(0), at(ts), cpu, MI))
}

fn node_and_pod_batch(ts: i64, cpu: u64) -> NodeBatch<'static> {
    NodeBatch {
        node: Some(point(Timestamp::ZERO, at(ts), cpu, MI)),
        containers: vec![long_running(ts, cpu)],
    }
}

#[test]
fn nodes_only_is_not_ready() {
    let mut f = Fixture::new();
    f.apply("node1", node_batch(point(Timestamp::ZERO, at(110), CS, MI)));
    f.apply("node1", node_batch(point(Timestamp::ZERO, at(120), 2 * CS, MI)));
    assert!(f.node("node1").is_some());
    assert!(!f.ready());
}

#[test]
fn pods_only_is_not_ready() {
    let mut f = Fixture::new();
    f.apply("node1", containers_batch(vec![long_running(110, CS)]));
    f.apply("node1", containers_batch(vec![long_running(120, 2 * CS)]));
    assert!(f.pod1().is_some());
    assert!(!f.ready());
}

#[test]
fn nodes_and_pods_after_one_batch_is_not_ready() {
    let mut f = Fixture::new();
    f.apply("node1", node_and_pod_batch(110, CS));
    assert!(!f.ready());
}

#[test]
fn nodes_and_fresh_pods_after_one_batch_is_not_ready() {
    // The fresh container is served at once, but the node still needs a second point.
    let mut f = Fixture::new();
    let batch = NodeBatch {
        node: Some(point(Timestamp::ZERO, at(10), CS, MI)),
        containers: vec![sample("ns1", "pod1", "container1", point(at(0), at(10), CS, MI))],
    };
    f.apply("node1", batch);
    assert!(f.pod1().is_some());
    assert!(!f.ready());
}

#[test]
fn nodes_and_pods_after_two_batches_is_ready() {
    let mut f = Fixture::new();
    f.apply("node1", node_and_pod_batch(110, CS));
    f.apply("node1", node_and_pod_batch(120, 2 * CS));
    assert!(f.ready());
}

#[test]
fn node_usage_and_pod_usage_may_come_from_different_nodes_for_readiness() {
    let mut f = Fixture::new();
    f.apply("node1", node_batch(point(Timestamp::ZERO, at(110), CS, MI)));
    f.apply("node2", containers_batch(vec![long_running(110, CS)]));
    f.apply("node1", node_batch(point(Timestamp::ZERO, at(120), 2 * CS, MI)));
    f.apply("node2", containers_batch(vec![long_running(120, 2 * CS)]));
    assert!(f.ready());
}

#[test]
fn data_is_served_up_to_max_age_after_the_last_apply_and_not_after() {
    let mut f = Fixture::new();
    f.apply("node1", node_and_pod_batch(110, CS));
    f.apply("node1", node_and_pod_batch(120, 2 * CS));
    let applied = f.now;

    // One missed scrape, then the bound itself: still served.
    for now in [applied + RESOLUTION, applied + MAX_AGE] {
        assert!(f.store.node_usage("node1", now).is_some());
        assert!(f.store.pod_usage("node1", "ns1", "pod1", now).is_some());
        assert!(f.store.is_ready(now));
    }

    let stale = applied + MAX_AGE + Duration::from_millis(1);
    assert_eq!(f.store.node_usage("node1", stale), None);
    assert_eq!(f.store.pod_usage("node1", "ns1", "pod1", stale), None);
    assert!(
        f.store.node_pods("node1", stale).is_none(),
        "a stale node lists no pods"
    );
    assert!(!f.store.is_ready(stale));
}

#[test]
fn a_read_from_before_the_last_apply_counts_as_fresh() {
    let mut f = Fixture::new();
    f.apply("node1", node_and_pod_batch(110, CS));
    f.apply("node1", node_and_pod_batch(120, 2 * CS));
    let earlier = f.now - Duration::from_secs(1);
    assert!(f.store.node_usage("node1", earlier).is_some());
}

#[test]
fn forget_node_drops_only_that_node() {
    let mut f = Fixture::new();
    for ts in [110, 120] {
        f.apply("node1", node_and_pod_batch(ts, ts as u64 * CS));
        f.apply("node2", node_and_pod_batch(ts, ts as u64 * CS));
    }
    f.store.forget_node("node1");
    assert_eq!(f.node("node1"), None);
    assert!(f.pods("node1").is_empty());
    assert!(f.node("node2").is_some());
    assert_eq!(f.pods("node2").len(), 1);
    assert_eq!(
        f.store.points(),
        StoredPoints {
            nodes: 1,
            containers: 1
        }
    );
    f.store.forget_node("no-such-node");
}

#[test]
fn retain_nodes_drops_the_nodes_not_kept() {
    let mut f = Fixture::new();
    for ts in [110, 120] {
        for node in ["node1", "node2", "node3"] {
            f.apply(node, node_and_pod_batch(ts, ts as u64 * CS));
        }
    }
    f.store.retain_nodes(|node| node == "node2");
    assert_eq!(f.node("node1"), None);
    assert!(f.node("node2").is_some());
    assert_eq!(f.node("node3"), None);
    assert_eq!(
        f.store.points(),
        StoredPoints {
            nodes: 1,
            containers: 1
        }
    );
}

#[test]
fn retain_nodes_may_read_the_store_while_deciding() {
    let mut f = Fixture::new();
    f.apply("node1", node_and_pod_batch(110, CS));
    for ts in [110, 120] {
        f.apply("node2", node_and_pod_batch(ts, ts as u64 * CS));
    }
    f.store.retain_nodes(|node| f.store.node_usage(node, f.now).is_some());
    assert_eq!(f.pods("node2").len(), 1);
    // node1 (no usage yet) was dropped: its next batch starts over.
    f.apply("node1", node_and_pod_batch(120, 2 * CS));
    assert_eq!(f.node("node1"), None);
}

#[test]
fn a_forgotten_node_starts_over() {
    let mut f = Fixture::new();
    f.apply("node1", node_and_pod_batch(110, CS));
    f.store.forget_node("node1");
    f.apply("node1", node_and_pod_batch(120, 2 * CS));
    assert_eq!(f.node("node1"), None);
    assert!(f.pods("node1").is_empty());
}

#[test]
fn a_pod_missing_from_the_next_batch_vanishes() {
    let mut f = Fixture::new();
    let both = |ts: i64, cpu| {
        containers_batch(vec![
            sample("ns1", "pod1", "container1", point(at(0), at(ts), cpu, MI)),
            sample("ns1", "pod2", "container1", point(at(0), at(ts), cpu, MI)),
        ])
    };
    f.apply("node1", both(110, CS));
    f.apply("node1", both(120, 2 * CS));
    assert_eq!(f.pods("node1").len(), 2);
    f.apply("node1", containers_batch(vec![long_running(130, 3 * CS)]));
    let listed: Vec<_> = f.pods("node1").into_iter().map(|(ns, pod, _)| (ns, pod)).collect();
    assert_eq!(listed, [("ns1".to_owned(), "pod1".to_owned())]);
    assert_eq!(f.store.pod_usage("node1", "ns1", "pod2", f.now), None);
    assert_eq!(
        f.store.points(),
        StoredPoints {
            nodes: 0,
            containers: 1
        }
    );
}

#[test]
fn pod_keeps_the_containers_that_compute_and_skips_the_one_that_fails() {
    let mut f = Fixture::new();
    let batch = |cpu1, cpu2, ts: i64| {
        containers_batch(vec![
            sample("ns1", "pod1", "a", point(at(0), at(ts - 5), cpu1, MI)),
            sample("ns1", "pod1", "b", point(at(0), at(ts), cpu2, 2 * MI)),
        ])
    };
    f.apply("node1", batch(20 * CS, CS, 110));
    f.apply("node1", batch(10 * CS, 11 * CS, 120));
    // "a" went backwards and is skipped; "b" alone sets the pod's timestamp and window.
    let want = pod_usage(at(120), secs(10), &[("b", usage(CS, 2 * MI))]);
    assert_eq!(f.pod1(), Some(want));
}

#[test]
fn among_tied_earliest_containers_the_first_by_name_sets_the_window() {
    let mut f = Fixture::new();
    f.apply(
        "node1",
        containers_batch(vec![
            sample("ns1", "pod1", "a", point(at(0), at(100), CS, MI)),
            sample("ns1", "pod1", "b", point(at(0), at(110), CS, MI)),
        ]),
    );
    f.apply(
        "node1",
        containers_batch(vec![
            sample("ns1", "pod1", "a", point(at(0), at(120), 21 * CS, MI)),
            sample("ns1", "pod1", "b", point(at(0), at(120), 11 * CS, MI)),
        ]),
    );
    let want = pod_usage(at(120), secs(20), &[("a", usage(CS, MI)), ("b", usage(CS, MI))]);
    assert_eq!(f.pod1(), Some(want));
}

#[test]
fn unsorted_batches_are_served_sorted_with_the_last_duplicate_winning() {
    let mut f = Fixture::new();
    let batch = |ts: i64, cpu: u64| {
        containers_batch(vec![
            sample("ns2", "pod1", "z", point(at(0), at(ts), cpu, MI)),
            sample("ns1", "pod1", "b", point(at(0), at(ts), cpu, MI)),
            sample("ns1", "pod1", "a", point(at(0), at(ts), cpu, MI)),
            sample("ns1", "pod1", "b", point(at(0), at(ts), 2 * cpu, MI)),
        ])
    };
    f.apply("node1", batch(110, 10 * CS));
    f.apply("node1", batch(120, 20 * CS));
    let pods = f.pods("node1");
    let keys: Vec<_> = pods.iter().map(|(ns, pod, _)| (ns.as_str(), pod.as_str())).collect();
    assert_eq!(keys, [("ns1", "pod1"), ("ns2", "pod1")]);
    let want = pod_usage(at(120), secs(10), &[("a", usage(CS, MI)), ("b", usage(2 * CS, MI))]);
    assert_eq!(pods[0].2, want);
}

#[test]
fn known_containers_keep_their_names_across_applies() {
    let mut f = Fixture::new();
    f.apply("node1", containers_batch(vec![long_running(110, CS)]));
    f.apply("node1", containers_batch(vec![long_running(120, 2 * CS)]));
    let first = f.store.pod_usage("node1", "ns1", "pod1", f.now).unwrap();
    f.apply("node1", containers_batch(vec![long_running(130, 3 * CS)]));
    let second = f.store.pod_usage("node1", "ns1", "pod1", f.now).unwrap();
    assert!(Arc::ptr_eq(&first.containers[0].name, &second.containers[0].name));
}

#[test]
fn pods_of_a_node_share_one_allocation_per_container_name() {
    let mut f = Fixture::new();
    let batch = |pods: &[&'static str], ts: i64, cpu: u64| {
        containers_batch(
            pods.iter()
                .flat_map(|&pod| ["app", "sidecar"].map(|c| sample("ns1", pod, c, point(at(0), at(ts), cpu, MI))))
                .collect(),
        )
    };
    f.apply("node1", batch(&["pod1", "pod2"], 110, 10 * CS));
    // pod3 arrives while pod1 leaves, as a rollout replaces pods.
    f.apply("node1", batch(&["pod2", "pod3"], 120, 20 * CS));
    f.apply("node1", batch(&["pod2", "pod3", "pod4"], 130, 30 * CS));
    let pods = f.store.node_pods("node1", f.now).unwrap();
    let served: Vec<_> = pods.iter().collect();
    assert_eq!(served.len(), 2, "pod4 has no prev point yet");
    let want = pod_usage(at(130), secs(10), &[("app", usage(CS, MI)), ("sidecar", usage(CS, MI))]);
    for (_, _, usage) in &served {
        assert_eq!(*usage, want);
    }
    let (pod2, pod3) = (&served[0].2.containers, &served[1].2.containers);
    assert!(Arc::ptr_eq(&pod2[0].name, &pod3[0].name));
    assert!(Arc::ptr_eq(&pod2[1].name, &pod3[1].name));
}

#[test]
fn the_store_is_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<Store>();
    shared::<NodePods>();
}

#[test]
fn cursor_lookups_read_what_pod_usage_reads() {
    let mut f = Fixture::new();
    // Three namespaces; "ns2/new" has no prev point after two applies (no usage); "ns2/three"
    // has three containers and "ns2/a" one, so a reused buffer must drop what it held.
    let batch = |ts: i64, cpu: u64| {
        let mut containers = vec![
            sample("ns1", "pod1", "c", point(at(0), at(ts), cpu, MI)),
            sample("ns2", "a", "c", point(at(0), at(ts - 1), cpu, 2 * MI)),
            sample("ns2", "three", "x", point(at(0), at(ts), 3 * cpu, MI)),
            sample("ns2", "three", "y", point(at(0), at(ts), cpu, 3 * MI)),
            sample("ns2", "three", "z", point(at(0), at(ts - 2), cpu, MI)),
            sample("ns3", "pod1", "c", point(at(0), at(ts), cpu, MI)),
        ];
        if ts > 110 {
            containers.push(sample("ns2", "new", "c", point(at(0), at(ts), cpu, MI)));
        }
        containers_batch(containers)
    };
    f.apply("node1", batch(110, CS));
    f.apply("node1", batch(120, 4 * CS));
    let held = f.store.node_pods("node1", f.now).expect("node1 is fresh");
    let mut buffer = PodUsage::default();

    let cursor = |namespace| {
        let held = f.store.node_pods("node1", f.now).expect("node1 is fresh");
        held.into_namespace_cursor(namespace)
    };
    let mut in_ns2 = cursor("ns2");
    for name in ["a", "new", "three", "zz"] {
        let want = f.store.pod_usage("node1", "ns2", name, f.now);
        let read = in_ns2.seek_into("ns2", name, &mut buffer).then(|| buffer.clone());
        assert_eq!(read, want, "ns2/{name}");
    }
    assert!(
        !in_ns2.seek_into("ns2", "a", &mut buffer),
        "a key before the last one is not found"
    );
    assert!(cursor("ns0").seek_into("ns1", "pod1", &mut buffer));
    assert!(
        !cursor("ns3").seek_into("ns2", "a", &mut buffer),
        "the cursor starts at ns3"
    );
    assert!(!cursor("ns9").seek_into("ns9", "a", &mut buffer));

    let mut every = held.cursor();
    for (namespace, name) in [("ns1", "pod1"), ("ns2", "three"), ("ns2", "zz"), ("ns3", "pod1")] {
        let want = f.store.pod_usage("node1", namespace, name, f.now);
        let read = every.seek_into(namespace, name, &mut buffer).then(|| buffer.clone());
        assert_eq!(read, want, "{namespace}/{name}");
    }
    let three = f
        .store
        .pod_usage("node1", "ns2", "three", f.now)
        .map(|u| u.containers.len());
    assert_eq!(three, Some(3));
}

#[test]
fn apply_counts_the_pods_of_the_batch() {
    let store = Store::new(RESOLUTION, MAX_AGE);
    let p = point(at(0), at(110), CS, MI);
    // Two pods of one namespace (one with two containers) and a same-named pod elsewhere.
    let batch = containers_batch(vec![
        sample("ns1", "pod1", "app", p),
        sample("ns1", "pod1", "sidecar", p),
        sample("ns1", "pod2", "app", p),
        sample("ns2", "pod1", "app", p),
    ]);
    assert_eq!(store.apply("node1", &batch, Instant::now()), 3);
    assert_eq!(store.apply("node1", &NodeBatch::default(), Instant::now()), 0);
}
