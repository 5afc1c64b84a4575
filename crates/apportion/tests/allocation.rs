//! The runtime end to end on the embedded store, with paused tokio time (lease expiry and
//! fencing happen exactly when due, without waiting for them).

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use apportion::store::{KeyRange, MemoryStore, Store};
use apportion::Event;
use support::*;

async fn memory_cluster() -> Cluster<MemoryStore> {
    Cluster::new(MemoryStore::new(), 3, |s: &MemoryStore| s.connect()).await
}

fn zones_of(members: &[String]) -> BTreeSet<String> {
    members
        .iter()
        .map(|m| m.split('#').next().unwrap().to_string())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn initial_allocation_over_two_zones() {
    let mut cluster = memory_cluster().await;
    for (zone, suffix) in [("a", "1"), ("a", "2"), ("b", "1"), ("b", "2")] {
        cluster.join(zone, suffix, 10).await;
    }
    for (i, r) in [1, 1, 2, 2, 3, 3].into_iter().enumerate() {
        cluster.put_item(&format!("i{i}"), r, false).await;
    }
    let settled = cluster.settle().await;
    let state = &settled.state;
    for (item, members) in placement(state) {
        let r = state.items()[state
            .items()
            .iter()
            .position(|i| i.key.as_str() == item)
            .unwrap()]
        .value
        .replication as usize;
        assert_eq!(members.len(), r, "{item}: {members:?}");
        assert_eq!(
            members.iter().collect::<BTreeSet<_>>().len(),
            r,
            "{item} twice on a member"
        );
        if r >= 2 {
            assert_eq!(
                zones_of(&members).len(),
                2,
                "{item} not spread: {members:?}"
            );
        }
    }
    // 12 replicas over 4 members of equal limit: 3 each.
    assert!(loads(state).values().all(|&l| l == 3), "{:?}", loads(state));
    // One primary per item.
    let primaries = state
        .assignments()
        .iter()
        .filter(|a| a.key.slot.is_primary())
        .count();
    assert_eq!(primaries, 6);
}

#[tokio::test(start_paused = true)]
async fn a_crashed_member_is_replaced_once_its_lease_expires() {
    let mut cluster = memory_cluster().await;
    for zone in ["a", "b", "c"] {
        for suffix in ["1", "2"] {
            cluster.join(zone, suffix, 20).await;
        }
    }
    for i in 0..20 {
        cluster.put_item(&format!("i{i:02}"), 3, false).await;
    }
    let before = cluster.settle().await;
    let lost: Vec<String> = placement(&before.state)
        .into_iter()
        .filter(|(_, m)| m.contains(&"b#2".to_string()))
        .map(|(i, _)| i)
        .collect();
    cluster.crash("b#2");
    cluster.wait_gone("b#2").await;
    let after = cluster.settle().await;
    let placed = placement(&after.state);
    for (item, members) in &placed {
        assert_eq!(members.len(), 3, "{item}: {members:?}");
        assert!(!members.contains(&"b#2".to_string()));
        assert_eq!(
            zones_of(members).len(),
            3,
            "{item} not over three zones: {members:?}"
        );
    }
    // Only the lost replicas moved: everything else stayed where it was.
    let moved: usize = placement(&before.state)
        .iter()
        .map(|(item, was)| placed[item].iter().filter(|m| !was.contains(m)).count())
        .sum();
    assert_eq!(moved, lost.len());
}

#[tokio::test(start_paused = true)]
async fn draining_two_of_four_members_moves_everything_safely() {
    let mut cluster = memory_cluster().await;
    for (zone, suffix) in [("a", "1"), ("a", "2"), ("b", "1"), ("b", "2")] {
        cluster.join(zone, suffix, 20).await;
    }
    for i in 0..10 {
        cluster.put_item(&format!("i{i}"), 2, false).await;
    }
    cluster.settle().await;
    cluster.drain("a#2");
    cluster.drain("b#1");
    let settled = cluster.settle().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!cluster.is_running("a#2") && !cluster.is_running("b#1"));
    let placed = placement(&settled.state);
    for members in placed.values() {
        assert_eq!(members, &vec!["a#1".to_string(), "b#2".to_string()]);
    }
    for drained in ["a#2", "b#1"] {
        assert_eq!(cluster.events_of(drained).last(), Some(&Event::Drained));
    }
    // The store no longer has the drained members at all.
    let members = cluster
        .store
        .range(KeyRange::prefix(format!("{PREFIX}/members/")))
        .await
        .unwrap();
    assert_eq!(members.kvs.len(), 2);
}
