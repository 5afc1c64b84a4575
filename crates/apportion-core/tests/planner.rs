//! The planner's rules, case by case, and its safety invariants on random states.

use apportion_core::keys::{AssignmentKey, ItemId, MemberId, Slot};
use apportion_core::lease::LeaseId;
use apportion_core::planner::{plan, Change, Desired, ReadyStatus};
use apportion_core::restrain::restrain;
use apportion_core::settings::{ClusterSettings, Freeze};
use apportion_core::state::{Entry, JsonState, Meta, Snapshot};
use apportion_core::values::{JsonItem, JsonMember, JsonStatus};
use proptest::prelude::*;

/// Members m0..m3 in zones a, a, b, c; their index in the state is their number.
const MEMBERS: [&str; 4] = ["a#m0", "a#m1", "b#m2", "c#m3"];

fn meta(revision: i64, lease: Option<LeaseId>) -> Meta {
    Meta {
        create_revision: revision,
        mod_revision: revision,
        version: 1,
        lease,
    }
}

/// An assignment as the tests write it: (member number, slot, ready, releasing).
type Copy = (usize, u16, bool, bool);

struct Cluster {
    items: Vec<(String, u16, bool)>,
    copies: Vec<(usize, Copy)>,
    /// (item, member, slot, releasing, lease).
    dangling: Vec<(String, &'static str, u16, bool, Option<LeaseId>)>,
}

impl Cluster {
    fn item(replication: u16, exclusive: bool, copies: &[Copy]) -> Self {
        Cluster {
            items: vec![("x".into(), replication, exclusive)],
            copies: copies.iter().map(|c| (0, *c)).collect(),
            dangling: Vec::new(),
        }
    }

    fn state(&self) -> JsonState {
        let mut snapshot = Snapshot::<JsonItem, JsonMember, JsonStatus>::default();
        for (i, id) in MEMBERS.iter().enumerate() {
            snapshot.members.push(Entry {
                key: MemberId::parse(id).unwrap(),
                value: JsonMember {
                    item_limit: 10,
                    ..JsonMember::default()
                },
                meta: meta(i as i64 + 1, LeaseId::new(100 + i as i64)),
            });
        }
        for (id, replication, exclusive) in &self.items {
            snapshot.items.push(Entry {
                key: ItemId::new(id).unwrap(),
                value: JsonItem {
                    replication: *replication,
                    exclusive: *exclusive,
                    ..JsonItem::default()
                },
                meta: meta(1, None),
            });
        }
        let status = |ready, releasing| JsonStatus {
            ready,
            releasing,
            ..JsonStatus::default()
        };
        for (x, (m, slot, ready, releasing)) in &self.copies {
            snapshot.assignments.push(Entry {
                key: key(&self.items[*x].0, MEMBERS[*m], *slot),
                value: status(*ready, *releasing),
                meta: meta(20, LeaseId::new(100 + *m as i64)),
            });
        }
        for (item, member, slot, releasing, lease) in &self.dangling {
            snapshot.assignments.push(Entry {
                key: key(item, member, *slot),
                value: status(true, *releasing),
                meta: meta(20, *lease),
            });
        }
        JsonState::build(snapshot, None).unwrap()
    }
}

fn key(item: &str, member: &str, slot: u16) -> AssignmentKey {
    AssignmentKey {
        item: ItemId::new(item).unwrap(),
        member: MemberId::parse(member).unwrap(),
        slot: Slot(slot),
    }
}

/// The changes as readable strings: `+m2@1`, `-m1@1`, `m2@2>1`, `release m0@0`.
fn describe(state: &JsonState, desired: &[Vec<u32>]) -> Vec<String> {
    let short = |k: &AssignmentKey| format!("{}@{}", k.member.suffix(), k.slot.0);
    plan(state, &lists(desired), &ReadyStatus)
        .iter()
        .flat_map(|p| &p.changes)
        .map(|c| match c {
            Change::Add { key, .. } => format!("+{}", short(key)),
            Change::Remove(e) => format!("-{}", short(&e.key)),
            Change::Reslot { from, to } => format!("{}>{}", short(&from.key), to.slot.0),
            Change::RequestRelease(e) => format!("release {}", short(&e.key)),
        })
        .collect()
}

fn lists(desired: &[Vec<u32>]) -> Desired {
    Desired::from_lists(desired.iter().map(|l| l.iter().copied()))
}

fn changes(cluster: &Cluster, desired: &[u32]) -> Vec<String> {
    describe(&cluster.state(), &[desired.to_vec()])
}

#[test]
fn a_new_item_gets_every_replica_at_once_under_the_members_leases() {
    let cluster = Cluster::item(3, false, &[]);
    assert_eq!(changes(&cluster, &[2, 0, 3]), ["+m2@0", "+m0@1", "+m3@2"]);
    let state = cluster.state();
    let plans = plan(&state, &lists(&[vec![2]]), &ReadyStatus);
    assert!(matches!(
        plans[0].changes[0],
        Change::Add { lease, .. } if lease == LeaseId::new(102)
    ));
}

#[test]
fn a_replacement_waits_until_the_new_replica_is_consistent() {
    // m1 is to be replaced by m2: add m2 and keep m1 while m2 is not ready.
    let before = Cluster::item(2, false, &[(0, 0, true, false), (1, 1, true, false)]);
    assert_eq!(changes(&before, &[0, 2]), ["+m2@2"]);
    let adding = Cluster::item(
        2,
        false,
        &[
            (0, 0, true, false),
            (1, 1, true, false),
            (2, 2, false, false),
        ],
    );
    assert_eq!(changes(&adding, &[0, 2]), Vec::<String>::new());
    // Once m2 is ready, m1 goes and m2 closes the gap.
    let ready = Cluster::item(
        2,
        false,
        &[
            (0, 0, true, false),
            (1, 1, true, false),
            (2, 2, true, false),
        ],
    );
    assert_eq!(changes(&ready, &[0, 2]), ["-m1@1", "m2@2>1"]);
}

#[test]
fn the_last_consistent_replica_stays_until_its_successor_is_ready() {
    let alone = Cluster::item(1, false, &[(0, 0, true, false)]);
    assert_eq!(changes(&alone, &[1]), ["+m1@1"]);
    let pair = Cluster::item(1, false, &[(0, 0, true, false), (1, 1, true, false)]);
    assert_eq!(changes(&pair, &[1]), ["-m0@0", "m1@1>0"]);
}

#[test]
fn an_inconsistent_unwanted_replica_goes_at_once() {
    let cluster = Cluster::item(2, false, &[(0, 0, true, false), (1, 1, false, false)]);
    assert_eq!(changes(&cluster, &[0, 2]), ["-m1@1", "+m2@1"]);
}

#[test]
fn the_primary_moves_only_to_a_consistent_replica() {
    let ready = Cluster::item(2, false, &[(0, 0, true, false), (1, 1, true, false)]);
    assert_eq!(changes(&ready, &[1, 0]), ["m0@0>1", "m1@1>0"]);
    let not_ready = Cluster::item(2, false, &[(0, 0, true, false), (1, 1, false, false)]);
    assert_eq!(changes(&not_ready, &[1, 0]), Vec::<String>::new());
}

#[test]
fn an_empty_primary_slot_is_filled_by_a_consistent_replica() {
    let cluster = Cluster::item(2, false, &[(1, 1, true, false), (2, 2, false, false)]);
    assert_eq!(changes(&cluster, &[2, 1]), ["m1@1>0", "m2@2>1"]);
}

#[test]
fn a_parked_item_loses_every_replica() {
    let cluster = Cluster::item(0, false, &[(0, 0, true, false), (1, 1, true, false)]);
    assert_eq!(changes(&cluster, &[]), ["-m1@1", "-m0@0"]);
}

#[test]
fn an_item_the_solver_cannot_place_keeps_its_last_consistent_replica() {
    let cluster = Cluster::item(2, false, &[(0, 0, true, false), (1, 1, true, false)]);
    assert_eq!(changes(&cluster, &[]), ["-m1@1"]);
    let last = Cluster::item(2, false, &[(0, 0, true, false)]);
    assert_eq!(changes(&last, &[]), Vec::<String>::new());
}

#[test]
fn a_second_copy_on_one_member_is_removed() {
    let cluster = Cluster::item(2, false, &[(0, 0, true, false), (0, 1, true, false)]);
    assert_eq!(changes(&cluster, &[0, 1]), ["-m0@1", "+m1@1"]);
}

#[test]
fn an_exclusive_item_changes_owner_break_before_make() {
    let owned = Cluster::item(1, true, &[(0, 0, true, false)]);
    assert_eq!(changes(&owned, &[1]), ["release m0@0"]);
    let releasing = Cluster::item(1, true, &[(0, 0, true, true)]);
    assert_eq!(changes(&releasing, &[1]), Vec::<String>::new());
    let released = Cluster::item(1, true, &[]);
    assert_eq!(changes(&released, &[1]), ["+m1@0"]);
    let kept = Cluster::item(1, true, &[(1, 0, true, false)]);
    assert_eq!(changes(&kept, &[1]), Vec::<String>::new());
}

#[test]
fn an_exclusive_item_waits_for_an_assignment_whose_member_vanished() {
    let mut cluster = Cluster::item(1, true, &[]);
    cluster
        .dangling
        .push(("x".into(), "z#gone", 0, false, LeaseId::new(999)));
    assert_eq!(changes(&cluster, &[1]), ["release gone@0"]);
    cluster.dangling[0].3 = true;
    assert_eq!(changes(&cluster, &[1]), Vec::<String>::new());
}

#[test]
fn dangling_assignments_of_vanished_items_or_without_a_lease_are_removed() {
    let mut cluster = Cluster::item(1, false, &[(0, 0, true, false)]);
    cluster
        .dangling
        .push(("x".into(), "z#gone", 1, false, None));
    cluster
        .dangling
        .push(("y".into(), "a#m0", 0, false, LeaseId::new(100)));
    let state = cluster.state();
    let plans = plan(&state, &lists(&[vec![0]]), &ReadyStatus);
    assert_eq!(plans.len(), 2);
    assert!(
        matches!(&plans[0].changes[..], [Change::Remove(e)] if e.key.member.suffix() == "gone")
    );
    assert_eq!(plans[1].item.as_str(), "y");
    assert!(plans[1].entry.is_none());
}

/// Found by a simulation scenario (`apportion-sim`, tests/scenarios.rs): a removal is safe
/// only while the consistent copies it counts on stay, so the plan names them for the
/// writer to guard.
#[test]
fn removing_a_consistent_replica_names_the_ones_it_relies_on() {
    let cluster = Cluster::item(1, false, &[(0, 0, true, false), (1, 1, true, false)]);
    let state = cluster.state();
    let plans = plan(&state, &lists(&[vec![1]]), &ReadyStatus);
    let relied: Vec<&str> = plans[0]
        .relies_on
        .iter()
        .map(|e| e.key.member.suffix())
        .collect();
    assert_eq!(relied, ["m1"]);
    // Dropping a copy that serves nothing relies on nothing.
    let cluster = Cluster::item(1, false, &[(0, 0, false, false), (1, 1, true, false)]);
    let state = cluster.state();
    let plans = plan(&state, &lists(&[vec![1]]), &ReadyStatus);
    assert!(plans[0].relies_on.is_empty());
}

/// Found by the simulation (seed 14): a member joined after another member's key had been
/// garbled, so its view never had that member; once it led, it deleted the garbled
/// member's assignments as dangling, and items lost their only ready replica.
#[test]
fn a_replica_whose_member_is_missing_from_the_view_is_left_to_its_lease() {
    let mut cluster = Cluster::item(1, false, &[]);
    cluster
        .dangling
        .push(("x".into(), "z#unreadable", 0, false, LeaseId::new(999)));
    // It does not count as a replica (the leader places one), and it is not removed.
    assert_eq!(changes(&cluster, &[0]), ["+m0@0"]);
}

/// Applies a plan to a cluster's copies of item 0 the way the store would.
fn apply(copies: &[Copy], changes: &[Change<'_, JsonStatus>]) -> Vec<Copy> {
    let number = |k: &AssignmentKey| {
        MEMBERS
            .iter()
            .position(|m| *m == k.member.as_str())
            .unwrap()
    };
    let mut after: Vec<Copy> = copies.to_vec();
    for change in changes {
        match change {
            Change::Add { key, .. } => after.push((number(key), key.slot.0, false, false)),
            Change::Remove(e) => after.retain(|c| (c.0, c.1) != (number(&e.key), e.key.slot.0)),
            Change::Reslot { from, to } => {
                let c = after
                    .iter_mut()
                    .find(|c| (c.0, c.1) == (number(&from.key), from.key.slot.0))
                    .unwrap();
                c.1 = to.slot.0;
            }
            Change::RequestRelease(e) => {
                let c = after
                    .iter_mut()
                    .find(|c| (c.0, c.1) == (number(&e.key), e.key.slot.0));
                c.unwrap().3 = true;
            }
        }
    }
    after
}

fn arbitrary_copies() -> impl Strategy<Value = Vec<Copy>> {
    proptest::collection::btree_map(0usize..4, (0u16..5, any::<bool>(), any::<bool>()), 0..4)
        .prop_map(|m| {
            m.into_iter()
                .map(|(member, (slot, r, rel))| (member, slot, r, rel))
                .collect()
        })
}

fn arbitrary_desired() -> impl Strategy<Value = Vec<u32>> {
    proptest::sample::subsequence(vec![0u32, 1, 2, 3], 0..=4).prop_shuffle()
}

proptest! {
    #[test]
    fn replicated_plans_keep_consistency_and_contiguous_slots(
        copies in arbitrary_copies(),
        desired in arbitrary_desired(),
        replication in 0u16..4,
    ) {
        // The solver wants at most R replicas; it may want fewer when capacity is short.
        let replication = replication.max(desired.len() as u16);
        let cluster = Cluster::item(replication, false, &copies);
        let state = cluster.state();
        let plans = plan(&state, &lists(std::slice::from_ref(&desired)), &ReadyStatus);
        let changes = plans.first().map_or(&[][..], |p| &p.changes[..]);
        let after = apply(&copies, changes);
        let consistent = |cs: &[Copy]| cs.iter().filter(|c| c.2).count();
        prop_assert!(
            consistent(&after) >= consistent(&copies).min(desired.len().max(usize::from(replication > 0))),
            "consistent replicas dropped below what the item wants: {copies:?} -> {after:?}"
        );
        let mut slots: Vec<u16> = after.iter().map(|c| c.1).collect();
        slots.sort_unstable();
        prop_assert_eq!(slots, (0..after.len() as u16).collect::<Vec<_>>());
        for m in &desired {
            prop_assert!(after.iter().any(|c| c.0 == *m as usize), "wanted member {m} not added");
        }
        // Release requests are for exclusive items only.
        for change in changes {
            prop_assert!(!matches!(change, Change::RequestRelease(_)));
        }
    }

    #[test]
    fn exclusive_plans_never_add_while_any_assignment_exists(
        copies in arbitrary_copies(),
        owner in proptest::option::of(0u32..4),
        orphan in any::<bool>(),
    ) {
        let mut cluster = Cluster::item(1, true, &copies);
        if orphan {
            cluster.dangling.push(("x".into(), "z#gone", 0, false, LeaseId::new(999)));
        }
        let state = cluster.state();
        let desired: Vec<u32> = owner.into_iter().collect();
        let plans = plan(&state, &lists(&[desired]), &ReadyStatus);
        let changes = plans.first().map_or(&[][..], |p| &p.changes[..]);
        let adds = changes.iter().filter(|c| matches!(c, Change::Add { .. })).count();
        if !copies.is_empty() || orphan {
            prop_assert_eq!(adds, 0);
        } else {
            prop_assert_eq!(adds, usize::from(owner.is_some()));
        }
        prop_assert!(changes.iter().all(|c| !matches!(c, Change::Remove(_))));
    }
}

/// The plans `restrain` lets through at time 50, as the items they concern.
fn let_through(cluster: &Cluster, desired: &[Vec<u32>], settings: &ClusterSettings) -> Vec<String> {
    let state = cluster.state();
    let plans = plan(&state, &lists(desired), &ReadyStatus);
    restrain(plans, &state, settings, 50, &ReadyStatus)
        .iter()
        .map(|p| p.item.to_string())
        .collect()
}

/// Items `ok` (wants m0, m1 -> m0, m2: a move), `fresh` (new: no copy), `headless` (its
/// primary's member is gone, two ready copies left), `thin` (one ready copy of three,
/// min_ready 2), and the copy of an item that is gone. Plans come in item order.
fn restraint_cluster() -> (Cluster, Vec<Vec<u32>>) {
    let cluster = Cluster {
        items: vec![
            ("ok".into(), 2, false),
            ("fresh".into(), 2, false),
            ("headless".into(), 2, false),
            ("thin".into(), 3, false),
        ],
        copies: vec![
            (0, (0, 0, true, false)),
            (0, (1, 1, true, false)),
            (2, (1, 1, true, false)),
            (2, (2, 2, true, false)),
            (3, (0, 0, true, false)),
            (3, (1, 1, false, false)),
        ],
        dangling: vec![("gone".into(), "a#m0", 0, false, None)],
    };
    // In the state's (sorted) item order: fresh, headless, ok, thin.
    let desired = vec![vec![0, 1], vec![1, 2], vec![0, 2], vec![0, 1, 2]];
    (cluster, desired)
}

fn frozen_until(until: u64) -> ClusterSettings {
    ClusterSettings {
        min_ready: 2,
        freeze: Some(Freeze {
            until_unix_secs: until,
            reason: "maintenance".into(),
            by: "ops".into(),
        }),
        ..ClusterSettings::default()
    }
}

#[test]
fn a_frozen_cluster_repairs_and_cleans_up_but_moves_nothing() {
    let (cluster, desired) = restraint_cluster();
    assert_eq!(
        let_through(&cluster, &desired, &ClusterSettings::default()),
        ["fresh", "headless", "ok", "thin", "gone"]
    );
    assert_eq!(
        let_through(&cluster, &desired, &frozen_until(51)),
        ["fresh", "headless", "thin", "gone"]
    );
    // The freeze ends by itself.
    assert_eq!(
        let_through(&cluster, &desired, &frozen_until(50)),
        ["fresh", "headless", "ok", "thin", "gone"]
    );
}

#[test]
fn a_throttle_holds_back_adds_beyond_the_moves_in_flight_but_never_a_repair() {
    // `thin`'s unready copy is one move in flight. The repairs go first: `fresh` adds two
    // copies, `headless` none (a ready copy takes slot 0), `thin` one; then `ok` adds one,
    // and the gone item's copy is removed (no add).
    let (cluster, desired) = restraint_cluster();
    let throttled = |limit| ClusterSettings {
        min_ready: 2,
        max_moves_in_flight: Some(limit),
        ..ClusterSettings::default()
    };
    // Repairs add 3, plus 1 in flight: 4 already.
    assert_eq!(
        let_through(&cluster, &desired, &throttled(4)),
        ["fresh", "headless", "thin", "gone"]
    );
    assert_eq!(
        let_through(&cluster, &desired, &throttled(1)),
        ["fresh", "headless", "thin", "gone"]
    );
    assert_eq!(
        let_through(&cluster, &desired, &throttled(5)),
        ["fresh", "headless", "thin", "ok", "gone"]
    );
}
