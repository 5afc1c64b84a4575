//! The important runtime scenarios again, on a real etcd and in real time.

mod support;

use std::time::Duration;

use apportion::EtcdStore;
use apportion_testkit::TestEtcd;
use support::*;

async fn etcd_cluster(etcd: &TestEtcd) -> Cluster<EtcdStore> {
    let store = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
    Cluster::new(store, Duration::from_secs(2), |s: &EtcdStore| s.clone()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocation_crash_and_exclusive_handoff_on_etcd() {
    let etcd = TestEtcd::start();
    let mut cluster = etcd_cluster(&etcd).await;
    for zone in ["a", "b", "c"] {
        cluster.join(zone, "1", 20).await;
    }
    for i in 0..12 {
        cluster.put_item(&format!("i{i:02}"), 3, false).await;
    }
    let exclusive = ["x0", "x1", "x2"];
    for id in exclusive {
        cluster.put_item(id, 1, true).await;
    }
    let settled = cluster.settle().await;
    let placed = placement(&settled.state);
    assert!(placed
        .iter()
        .all(|(i, m)| m.len() == if i.starts_with('x') { 1 } else { 3 }));
    // A fourth member joins (exclusive items may move to it), then one crashes.
    cluster.join("a", "2", 20).await;
    cluster.settle().await;
    cluster.crash("b#1");
    cluster.wait_gone("b#1").await;
    let settled = cluster.settle().await;
    let placed = placement(&settled.state);
    for (item, members) in &placed {
        assert!(!members.contains(&"b#1".to_string()));
        assert_eq!(
            members.len(),
            if item.starts_with('x') { 1 } else { 3 },
            "{item}"
        );
    }
    assert_single_owner(&cluster.log.lock().unwrap(), &exclusive);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_failover_on_etcd_moves_only_what_was_lost() {
    let etcd = TestEtcd::start();
    let mut cluster = etcd_cluster(&etcd).await;
    for (zone, suffix) in [("a", "1"), ("b", "1"), ("a", "2"), ("b", "2")] {
        cluster.join(zone, suffix, 20).await;
    }
    for i in 0..16 {
        cluster.put_item(&format!("i{i:02}"), 2, false).await;
    }
    let before = cluster.settle().await;
    let leader = before.state.members()[before.state.leader().unwrap()]
        .key
        .to_string();
    let lost = placement(&before.state)
        .values()
        .filter(|m| m.contains(&leader))
        .count();
    cluster.crash(&leader);
    cluster.wait_gone(&leader).await;
    let after = cluster.settle().await;
    let new_leader = after.state.members()[after.state.leader().unwrap()]
        .key
        .to_string();
    assert_ne!(new_leader, leader);
    let moved = moves(&before.state, &after.state);
    assert_eq!(
        moved, lost,
        "the new leader re-placed the lost replicas and nothing else"
    );
}

/// Fencing does not depend on what the member is doing: etcd goes away, and a member told
/// to drain 0.3 s later (its application awaiting `begin_drain` in its event loop, as
/// `apportion member` does on SIGTERM) is fenced before its lease could expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_draining_when_etcd_goes_away_is_fenced_in_time() {
    let mut etcd = TestEtcd::start();
    let mut cluster = etcd_cluster(&etcd).await;
    cluster.join("a", "1", 10).await;
    cluster.join("b", "1", 10).await;
    for i in 0..4 {
        cluster.put_item(&format!("x{i}"), 1, true).await;
    }
    cluster.settle().await;
    let killed_at = tokio::time::Instant::now();
    etcd.kill();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    cluster.drain("b#1");
    let ttl = cluster.ttl;
    let fenced = |member: &str| {
        let log = cluster.log.lock().unwrap();
        log.iter()
            .find(|l| l.member == member && l.event == apportion::Event::Fenced)
            .map(|l| l.at)
    };
    let deadline = killed_at + 3 * ttl;
    while (fenced("a#1").is_none() || fenced("b#1").is_none())
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for member in ["a#1", "b#1"] {
        let at = fenced(member).unwrap_or_else(|| panic!("{member} was never fenced"));
        assert!(
            at - killed_at < ttl,
            "{member} fenced {:?} after etcd went away; its lease could expire after {ttl:?}",
            at - killed_at
        );
    }
}
