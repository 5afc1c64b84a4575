//! Members that leave to come back (a restart) and members lost under a refill delay, on
//! the embedded store with paused time: their replicas wait for them, within the bounds
//! `min_ready` sets, and come back to them.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use apportion::admin::Admin;
use apportion::Prefix;
use support::*;

/// Six members in three zones; items `r0..r11` with 2 replicas, `one0..one2` with 1, and
/// exclusive `x0..x2`.
async fn cluster() -> Cluster<apportion::MemoryStore> {
    let mut cluster = memory_cluster().await;
    for zone in ["a", "b", "c"] {
        for suffix in ["1", "2"] {
            cluster.join(zone, suffix, 20).await;
        }
    }
    for i in 0..12 {
        cluster.put_item(&format!("r{i}"), 2, false).await;
    }
    for i in 0..3 {
        cluster.put_item(&format!("one{i}"), 1, false).await;
        cluster.put_item(&format!("x{i}"), 1, true).await;
    }
    cluster
}

/// The placement without `member`.
fn without(
    placement: &BTreeMap<String, Vec<String>>,
    member: &str,
) -> BTreeMap<String, Vec<String>> {
    placement
        .iter()
        .map(|(item, members)| {
            let rest = members.iter().filter(|m| *m != member).cloned().collect();
            (item.clone(), rest)
        })
        .collect()
}

/// The items `member` holds in `placement`.
fn held_by(placement: &BTreeMap<String, Vec<String>>, member: &str) -> Vec<String> {
    placement
        .iter()
        .filter(|(_, members)| members.iter().any(|m| m == member))
        .map(|(item, _)| item.clone())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_member_back_within_its_grace_gets_its_replicas_back_and_no_replica_moves() {
    let mut cluster = cluster().await;
    let before = placement(&cluster.settle().await.state);
    let leaving = "a#1";
    let held = held_by(&before, leaving);
    assert!(held.iter().any(|i| i.starts_with('r')), "{before:?}");
    cluster.restart(leaving, Duration::from_secs(60));
    cluster.wait_left(leaving).await;
    let away = cluster.settle().await;
    let during = placement(&away.state);
    // Replicated items wait one copy short; the rest moved before the member left.
    for (item, members) in &during {
        if item.starts_with('r') {
            assert_eq!(members, &without(&before, leaving)[item], "{item} moved");
        } else {
            assert_eq!(members.len(), 1, "{item} is not served: {during:?}");
        }
    }
    // Every item kept a primary (slot 0) on a member that is there.
    for item in away.state.items() {
        let x = away.state.item_index(&item.key).unwrap();
        assert!(
            away.state
                .item_assignments(x)
                .iter()
                .any(|c| c.key.slot.is_primary()),
            "{} has no primary",
            item.key
        );
    }
    cluster.join("a", "1", 20).await;
    let back = placement(&cluster.settle().await.state);
    for item in held.iter().filter(|i| i.starts_with('r')) {
        assert_eq!(back[item], before[item], "{item} did not come back");
    }
    let log = cluster.log.lock().unwrap().clone();
    assert_single_owner(&log, &["x0", "x1", "x2"]);
    // The record did its work and is gone.
    let state = cluster.settle().await;
    assert!(state.state.away_records().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_member_that_does_not_return_in_time_has_its_items_refilled() {
    let mut cluster = cluster().await;
    cluster.settle().await;
    cluster.restart("b#2", Duration::from_secs(30));
    cluster.wait_left("b#2").await;
    let away = placement(&cluster.settle().await.state);
    assert!(
        away.iter().any(|(i, m)| i.starts_with('r') && m.len() == 1),
        "{away:?}"
    );
    tokio::time::sleep(Duration::from_secs(31)).await;
    let refilled = cluster.settle().await;
    for item in refilled.state.items() {
        let x = refilled.state.item_index(&item.key).unwrap();
        let wanted =
            usize::from(
                item.value
                    .replication
                    .min(if item.value.exclusive { 1 } else { 255 }),
            );
        assert_eq!(
            refilled.state.item_assignments(x).len(),
            wanted,
            "{}",
            item.key
        );
    }
    assert!(refilled.state.away_records().is_empty());
}

#[tokio::test(start_paused = true)]
async fn min_ready_bounds_how_short_a_restart_leaves_an_item() {
    let mut cluster = cluster().await;
    let admin = Admin::new(cluster.store.clone(), Prefix::new(PREFIX).unwrap());
    admin.update_settings(|s| s.min_ready = 2).await.unwrap();
    let before = placement(&cluster.settle().await.state);
    cluster.restart("c#1", Duration::from_secs(60));
    cluster.wait_left("c#1").await;
    let away = placement(&cluster.settle().await.state);
    // With two replicas each and two wanted ready, nothing may wait: c#1's copies moved
    // before it left, as in a drain.
    for (item, members) in &away {
        if item.starts_with('r') {
            assert_eq!(members.len(), 2, "{item}: {away:?}");
        }
    }
    assert_ne!(before, away);
}

#[tokio::test(start_paused = true)]
async fn a_lost_member_under_a_refill_delay_gets_its_items_back() {
    let mut cluster = cluster().await;
    let admin = Admin::new(cluster.store.clone(), Prefix::new(PREFIX).unwrap());
    admin
        .update_settings(|s| s.refill_delay_secs = Some(60))
        .await
        .unwrap();
    let before = placement(&cluster.settle().await.state);
    // Not the leader (the oldest member), so that the record is the same leader's work.
    let lost = "c#2";
    cluster.crash(lost);
    cluster.wait_gone(lost).await;
    let away = cluster.settle().await;
    let record = away.state.away_records();
    assert_eq!(record.len(), 1, "the leader recorded the loss");
    let during = placement(&away.state);
    for (item, members) in &during {
        if item.starts_with('r') {
            assert_eq!(
                members,
                &without(&before, lost)[item],
                "{item} was refilled"
            );
        } else {
            assert_eq!(members.len(), 1, "{item} below min_ready must be refilled");
        }
    }
    cluster.join("c", "2", 20).await;
    let back = placement(&cluster.settle().await.state);
    for item in held_by(&before, lost).iter().filter(|i| i.starts_with('r')) {
        assert_eq!(back[item], before[item], "{item} did not come back");
    }
}

#[tokio::test(start_paused = true)]
async fn without_a_refill_delay_a_lost_members_items_are_refilled_at_once() {
    let mut cluster = cluster().await;
    cluster.settle().await;
    cluster.crash("c#2");
    cluster.wait_gone("c#2").await;
    let after = cluster.settle().await;
    assert!(after.state.away_records().is_empty());
    for (item, members) in placement(&after.state) {
        if item.starts_with('r') {
            assert_eq!(members.len(), 2, "{item} was not refilled");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_restart_moves_no_copy_of_any_item_even_where_zones_are_uneven() {
    // Zone c has four members, a and b three: c's members hold fewer copies, and a slot
    // held for c#m9 would let the balance move the other items' copies into zone c.
    let mut cluster = memory_cluster().await;
    let zones = ["a", "b", "c", "a", "b", "c", "a", "b", "c", "c"];
    for (i, zone) in zones.iter().enumerate() {
        cluster.join(zone, &format!("m{i}"), 1000).await;
    }
    for i in 0..200 {
        cluster.put_item(&format!("i{i:04}"), 3, false).await;
    }
    let before = cluster.settle().await;
    cluster.restart("c#m9", Duration::from_secs(60));
    cluster.wait_left("c#m9").await;
    let away = cluster.settle().await;
    assert_eq!(
        moves(&before.state, &away.state),
        0,
        "a copy moved while away"
    );
    assert_eq!(away.state.away_records()[0].value.items.len(), 50);
    cluster.join("c", "m9", 1000).await;
    let back = cluster.settle().await;
    assert_eq!(placement(&back.state), placement(&before.state));
}
