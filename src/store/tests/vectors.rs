//! Spec §6.4: upstream's storage vectors N1–N8 (node_test.go) and P1–P14 (pod_test.go),
//! resolution 60s, T = 2021-10-03T09:00:00Z.

use super::*;

// ---- Nodes (N1–N8) ----

fn node_cpu_rate_is_measured_between_two_scrapes(start: Timestamp) {
    let mut f = Fixture::new();
    f.apply("node1", node_batch(point(start, at(10), 10 * CS, 2 * MI)));
    assert_eq!(f.node("node1"), None);
    f.apply("node1", node_batch(point(start, at(20), 20 * CS, 3 * MI)));
    let want = NodeUsage {
        timestamp: at(20),
        window: secs(10),
        usage: usage(CS, 3 * MI),
    };
    assert_eq!(f.node("node1"), Some(want));
    assert_eq!(f.node("node2"), None);
    f.apply("node1", NodeBatch::default());
    assert_eq!(f.node("node1"), None);
}

#[test]
fn n1_node_usage_needs_two_scrapes_and_an_empty_batch_clears_it() {
    node_cpu_rate_is_measured_between_two_scrapes(at(0));
}

#[test]
fn n8_node_with_unknown_start_time_behaves_the_same() {
    node_cpu_rate_is_measured_between_two_scrapes(Timestamp::ZERO);
}

#[test]
fn n2_the_same_node_batch_twice_yields_nothing() {
    let mut f = Fixture::new();
    let p = point(at(0), at(10), 10 * CS, 2 * MI);
    f.apply("node1", node_batch(p));
    f.apply("node1", node_batch(p));
    assert_eq!(f.node("node1"), None);
}

#[test]
fn n3_points_count_nodes_with_a_prev_point() {
    let mut f = Fixture::new();
    assert_eq!(f.store.points(), StoredPoints::default());
    f.apply("node1", node_batch(point(at(0), at(10), 10 * CS, 2 * MI)));
    assert_eq!(
        f.store.points(),
        StoredPoints {
            nodes: 0,
            containers: 0
        }
    );
    f.apply("node1", node_batch(point(at(0), at(20), 20 * CS, 3 * MI)));
    assert_eq!(
        f.store.points(),
        StoredPoints {
            nodes: 1,
            containers: 0
        }
    );
}

#[test]
fn n4_node_restart_with_lower_cpu_yields_nothing() {
    let mut f = Fixture::new();
    f.apply("node1", node_batch(point(at(0), at(10), 10 * CS, MI)));
    f.apply("node1", node_batch(point(at(15), at(20), 5 * CS, MI)));
    assert_eq!(f.node("node1"), None);
}

#[test]
fn n5_node_cpu_decrease_yields_nothing() {
    let mut f = Fixture::new();
    f.apply("node1", node_batch(point(at(0), at(15), 50 * CS, MI)));
    f.apply("node1", node_batch(point(at(0), at(25), 10 * CS, MI)));
    assert_eq!(f.node("node1"), None);
}

#[test]
fn n6_node_point_older_than_prev_drops_prev() {
    let mut f = Fixture::new();
    f.apply("node1", node_batch(point(at(0), at(15), 10 * CS, MI)));
    f.apply("node1", node_batch(point(at(0), at(35), 50 * CS, MI)));
    f.apply("node1", node_batch(point(at(0), at(5), 6 * CS, MI)));
    assert_eq!(f.node("node1"), None);
}

#[test]
fn n7_node_point_between_prev_and_last_keeps_prev() {
    let mut f = Fixture::new();
    f.apply("node1", node_batch(point(at(0), at(15), 10 * CS, MI)));
    f.apply("node1", node_batch(point(at(0), at(35), 50 * CS, 4 * MI)));
    f.apply("node1", node_batch(point(at(0), at(25), 35 * CS, 2 * MI)));
    let want = NodeUsage {
        timestamp: at(25),
        window: secs(10),
        usage: usage(2_500_000_000, 2 * MI),
    };
    assert_eq!(f.node("node1"), Some(want));
}

// ---- Pods (P1–P14) ----

fn pod_cpu_rate_is_measured_between_two_scrapes(start: Timestamp) {
    let mut f = Fixture::new();
    f.apply("node1", pod_batch(point(start, at(120), CS, 4 * MI)));
    assert!(f.pods("node1").is_empty());
    f.apply("node1", pod_batch(point(start, at(125), 6 * CS, 5 * MI)));
    let want = pod_usage(at(125), secs(5), &[("container1", usage(CS, 5 * MI))]);
    assert_eq!(f.pods("node1"), one_pod(want.clone()));
    assert_eq!(f.pod1(), Some(want));
    assert_eq!(f.store.pod_usage("node1", "ns1", "pod2", f.now), None);
    f.apply("node1", NodeBatch::default());
    assert!(f.pods("node1").is_empty());
    assert_eq!(f.pod1(), None);
}

#[test]
fn p1_pod_usage_needs_two_scrapes_and_an_empty_batch_clears_it() {
    pod_cpu_rate_is_measured_between_two_scrapes(at(0));
}

#[test]
fn p13_pod_with_unknown_start_time_behaves_the_same() {
    pod_cpu_rate_is_measured_between_two_scrapes(Timestamp::ZERO);
}

#[test]
fn p2_pod_takes_the_timestamp_and_window_of_its_earliest_container() {
    let mut f = Fixture::new();
    f.apply(
        "node1",
        containers_batch(vec![
            sample("ns1", "pod1", "container1", point(at(0), at(110), CS, MI)),
            sample("ns1", "pod1", "container2", point(at(0), at(115), 2 * CS, MI)),
        ]),
    );
    f.apply(
        "node1",
        containers_batch(vec![
            sample("ns1", "pod1", "container1", point(at(0), at(120), 6 * CS, MI)),
            sample("ns1", "pod1", "container2", point(at(0), at(125), 7 * CS, MI)),
        ]),
    );
    let want = pod_usage(
        at(120),
        secs(10),
        &[("container1", usage(CS / 2, MI)), ("container2", usage(CS / 2, MI))],
    );
    assert_eq!(f.pod1(), Some(want));
}

#[test]
fn p3_the_same_pod_batch_twice_yields_nothing() {
    let mut f = Fixture::new();
    let p = point(at(0), at(120), CS, 4 * MI);
    f.apply("node1", pod_batch(p));
    f.apply("node1", pod_batch(p));
    assert!(f.pods("node1").is_empty());
    assert!(!f.ready());
}

#[test]
fn p4_points_count_containers_with_a_prev_point() {
    let mut f = Fixture::new();
    let batch = |ts, cpu| {
        containers_batch(vec![
            sample("ns1", "pod1", "container1", point(at(0), at(ts), cpu, MI)),
            sample("ns1", "pod2", "container1", point(at(0), at(ts), cpu, MI)),
        ])
    };
    f.apply("node1", batch(120, CS));
    assert_eq!(
        f.store.points(),
        StoredPoints {
            nodes: 0,
            containers: 0
        }
    );
    f.apply("node1", batch(125, 2 * CS));
    assert_eq!(
        f.store.points(),
        StoredPoints {
            nodes: 0,
            containers: 2
        }
    );
}

#[test]
fn p5_restarted_container_in_the_fresh_band_is_measured_from_its_start() {
    let mut f = Fixture::new();
    f.apply("node1", pod_batch(point(at(0), at(10), CS, 4 * MI)));
    f.apply("node1", pod_batch(point(at(15), at(25), 5 * CS, 5 * MI)));
    let want = pod_usage(at(25), secs(10), &[("container1", usage(500_000_000, 5 * MI))]);
    assert_eq!(f.pod1(), Some(want));
}

#[test]
fn p6_pod_whose_only_container_fails_is_omitted() {
    // Deliberate difference: upstream serves this pod with zero containers.
    let mut f = Fixture::new();
    f.apply("node1", pod_batch(point(at(0), at(110), 20 * CS, MI)));
    f.apply("node1", pod_batch(point(at(0), at(120), 10 * CS, MI)));
    assert!(f.pods("node1").is_empty());
    assert_eq!(f.pod1(), None);
}

#[test]
fn p7_pod_point_older_than_prev_drops_prev() {
    let mut f = Fixture::new();
    f.apply("node1", pod_batch(point(at(0), at(1115), 20 * CS, MI)));
    f.apply("node1", pod_batch(point(at(0), at(1125), 40 * CS, MI)));
    f.apply("node1", pod_batch(point(at(0), at(115), 10 * CS, MI)));
    assert!(f.pods("node1").is_empty());
}

#[test]
fn p8_pod_point_between_prev_and_last_keeps_prev() {
    let mut f = Fixture::new();
    f.apply("node1", pod_batch(point(at(0), at(115), 10 * CS, 4 * MI)));
    f.apply("node1", pod_batch(point(at(0), at(125), 50 * CS, 5 * MI)));
    f.apply("node1", pod_batch(point(at(0), at(120), 35 * CS, 5 * MI)));
    let want = pod_usage(at(120), secs(5), &[("container1", usage(5 * CS, 5 * MI))]);
    assert_eq!(f.pod1(), Some(want));
}

#[test]
fn p9_long_running_container_needs_two_scrapes() {
    let mut f = Fixture::new();
    f.apply("node1", pod_batch(point(at(0), at(120), CS, MI)));
    assert!(f.pods("node1").is_empty());
    assert_eq!(f.store.points(), StoredPoints::default());
}

#[test]
fn p10_fresh_container_is_served_after_one_scrape() {
    let mut f = Fixture::new();
    f.apply("node1", pod_batch(point(at(0), at(10), 10 * CS, 4 * MI)));
    let want = pod_usage(at(10), secs(10), &[("container1", usage(CS, 4 * MI))]);
    assert_eq!(f.pod1(), Some(want));
    assert_eq!(
        f.store.points(),
        StoredPoints {
            nodes: 0,
            containers: 1
        }
    );
}

#[test]
fn p11_sample_before_its_start_time_yields_nothing() {
    let mut f = Fixture::new();
    f.apply("node1", pod_batch(point(at(0), at(-10), 10 * CS, 4 * MI)));
    assert!(f.pods("node1").is_empty());
}

#[test]
fn p12_container_younger_than_10s_yields_nothing() {
    let mut f = Fixture::new();
    f.apply("node1", pod_batch(point(at(0), at(9), 10 * CS, 4 * MI)));
    assert!(f.pods("node1").is_empty());
}

#[test]
fn p14_pod_with_a_container_lacking_prev_is_omitted() {
    let mut f = Fixture::new();
    f.apply("node1", pod_batch(point(at(0), at(110), CS, MI)));
    f.apply(
        "node1",
        containers_batch(vec![
            sample("ns1", "pod1", "container1", point(at(0), at(120), 2 * CS, MI)),
            sample("ns1", "pod1", "container2", point(at(0), at(120), 2 * CS, MI)),
        ]),
    );
    assert!(f.pods("node1").is_empty());
}
