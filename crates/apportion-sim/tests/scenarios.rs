//! Hand-written plans for races a random schedule reaches too rarely: the same driver and
//! checkers, with the timing swept so that one of the runs lands in the window.

use std::time::Duration;

use apportion_sim::plan::{Action, ClusterSpec, ItemSpec, MemberSpec, Plan, Step};
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
