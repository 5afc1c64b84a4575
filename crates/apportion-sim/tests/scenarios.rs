//! Hand-written plans for races a random schedule reaches too rarely: the same driver and
//! checkers, with the timing swept so that one of the runs lands in the window.

use std::time::Duration;

use apportion_sim::plan::{Action, ClusterSpec, ItemSpec, MemberSpec, Plan, SettingsChange, Step};
use apportion_sim::run_plan;

fn member(zone: &str, suffix: &str) -> MemberSpec {
    MemberSpec {
        zone: zone.into(),
        suffix: suffix.into(),
        limit: 10,
    }
}

/// A member is cut off; close to the instant its lease ends, every item's replication
/// drops from 2 to 1. The leader removes replicas relying on the cut-off member's ready
/// ones, which its lease may take away between the leader's read and its write. Swept
/// over 600 ms in steps of 2 ms around the expiry, no run may leave an item without a
/// ready replica. (Before the writer guarded the replicas a removal relies on, several of
/// these runs did.)
#[test]
fn a_lease_ending_under_a_removal_never_takes_the_last_ready_replica() {
    for offset in 0..300u64 {
        let cluster = ClusterSpec {
            members: vec![member("z0", "a"), member("z1", "b"), member("z2", "c")],
            items: (0..6)
                .map(|i| ItemSpec {
                    id: format!("r{i:02}"),
                    replication: 2,
                })
                .collect(),
            ttl_secs: 3,
            max_txn_ops: 128,
            latency_ms: 40,
        };
        let mut steps = vec![Step {
            action: Action::Partition { pick: 1 },
            then: Duration::from_millis(1500 + offset * 2),
        }];
        steps.extend((0..6).map(|pick| Step {
            action: Action::SetReplication {
                pick,
                replication: 1,
            },
            then: Duration::from_millis(1),
        }));
        let report = run_plan(
            Plan {
                seed: offset,
                cluster,
                steps,
            },
            false,
        );
        assert!(
            report.violations.is_empty(),
            "changes {} ms after the cut: {:?}",
            1500 + offset * 2,
            report.violations
        );
    }
}

/// The planned events of issue 15 in one run: a floor of two ready replicas, a throttle, a
/// refill delay, one member restarting back within its grace and one after it, a crash
/// under the refill delay, and a freeze the schedule never lifts. No rule may break, and
/// the cluster must settle once the freeze has ended by itself.
#[test]
fn restarts_and_settings_keep_every_rule_and_a_freeze_ends_by_itself() {
    let cluster = ClusterSpec {
        members: vec![
            member("z0", "a"),
            member("z1", "b"),
            member("z2", "c"),
            member("z0", "d"),
        ],
        items: (0..8)
            .map(|i| ItemSpec {
                id: format!("{}{i:02}", if i < 6 { 'r' } else { 'x' }),
                replication: 2,
            })
            .collect(),
        ttl_secs: 3,
        max_txn_ops: 16,
        latency_ms: 5,
    };
    let settings = |change| Step {
        action: Action::Settings(change),
        then: Duration::from_millis(500),
    };
    let restart = |pick, grace_secs, back_ms| Step {
        action: Action::Restart {
            pick,
            grace: Duration::from_secs(grace_secs),
            back_after: Duration::from_millis(back_ms),
        },
        then: Duration::from_secs(8),
    };
    let steps = vec![
        settings(SettingsChange::MinReady { min_ready: 2 }),
        settings(SettingsChange::Throttle {
            max_moves_in_flight: Some(3),
        }),
        settings(SettingsChange::RefillDelay { secs: Some(4) }),
        restart(0, 5, 2000),
        restart(1, 1, 3000),
        Step {
            action: Action::Crash { pick: 2 },
            then: Duration::from_secs(2),
        },
        settings(SettingsChange::Freeze { secs: 15 }),
        Step {
            action: Action::SetReplication {
                pick: 0,
                replication: 3,
            },
            then: Duration::from_secs(1),
        },
    ];
    let report = run_plan(
        Plan {
            seed: 0,
            cluster,
            steps,
        },
        false,
    );
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert!(report.settled_after.is_some(), "did not settle");
    assert_eq!(report.happenings.get("left to restart"), Some(&2));
}

/// A throttle below what one item's plan adds: raising an item from one replica to three
/// plans two additions at once, which a limit of one would hold back for ever
/// (`core/restrain.rs` keeps whole plans, and this one is no repair). Such a plan goes
/// alone once nothing else is in flight, so the cluster reaches the solver's answer.
#[test]
fn a_throttle_below_one_plans_additions_still_lets_it_through() {
    let cluster = ClusterSpec {
        members: vec![member("z0", "a"), member("z1", "b"), member("z2", "c")],
        items: vec![ItemSpec {
            id: "r00".into(),
            replication: 1,
        }],
        ttl_secs: 3,
        max_txn_ops: 128,
        latency_ms: 0,
    };
    let steps = vec![
        Step {
            action: Action::Settings(SettingsChange::Throttle {
                max_moves_in_flight: Some(1),
            }),
            then: Duration::from_secs(1),
        },
        Step {
            action: Action::SetReplication {
                pick: 0,
                replication: 3,
            },
            then: Duration::from_secs(5),
        },
    ];
    let report = run_plan(
        Plan {
            seed: 0,
            cluster,
            steps,
        },
        false,
    );
    assert!(report.violations.is_empty(), "{:?}", report.violations);
}
