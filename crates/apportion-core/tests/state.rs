//! Hand-made `State` cases: sorting and grouping, dangling assignments, counts, zones,
//! the leader, the local member's view, duplicates, what changes the solver hash, and
//! what away members hold back (`away`).

use apportion_core::keys::{AssignmentKey, ItemId, MemberId, Slot};
use apportion_core::lease::LeaseId;
use apportion_core::state::{BuildError, Entry, JsonState, Meta, Snapshot};
use apportion_core::values::{JsonItem, JsonMember, JsonStatus};

type JsonSnapshot = Snapshot<JsonItem, JsonMember, JsonStatus>;

fn meta(create_revision: i64) -> Meta {
    Meta {
        create_revision,
        mod_revision: create_revision,
        version: 1,
        lease: None,
    }
}

fn member_id(id: &str) -> MemberId {
    MemberId::parse(id).unwrap()
}

fn item(id: &str, replication: u16) -> Entry<ItemId, JsonItem> {
    Entry {
        key: ItemId::new(id).unwrap(),
        value: JsonItem {
            replication,
            ..JsonItem::default()
        },
        meta: meta(1),
    }
}

fn member(id: &str, item_limit: u32, created: i64) -> Entry<MemberId, JsonMember> {
    Entry {
        key: member_id(id),
        value: JsonMember {
            item_limit,
            ..JsonMember::default()
        },
        meta: meta(created),
    }
}

fn exiting(mut entry: Entry<MemberId, JsonMember>) -> Entry<MemberId, JsonMember> {
    entry.value.exiting = true;
    entry
}

fn assignment(item: &str, member: &str, slot: u16) -> Entry<AssignmentKey, JsonStatus> {
    Entry {
        key: AssignmentKey {
            item: ItemId::new(item).unwrap(),
            member: member_id(member),
            slot: Slot(slot),
        },
        value: JsonStatus::default(),
        meta: meta(10),
    }
}

fn build(snapshot: JsonSnapshot) -> JsonState {
    JsonState::build(snapshot, None).unwrap()
}

fn keys<K: ToString, V>(entries: &[Entry<K, V>]) -> Vec<String> {
    entries.iter().map(|e| e.key.to_string()).collect()
}

/// Two items over two zones, given out of order, plus one assignment whose item is gone
/// and one whose member is gone.
fn sample() -> JsonSnapshot {
    Snapshot {
        items: vec![item("b", 1), item("a", 2), item("c", 1)],
        members: vec![member("z2#m2", 10, 5), member("z1#m1", 10, 6)],
        assignments: vec![
            assignment("b", "z1#m1", 0),
            assignment("gone", "z1#m1", 0),
            assignment("a", "z2#m2", 1),
            assignment("a", "z9#lost", 2),
            assignment("a", "z1#m1", 0),
        ],
        settings: None,
        away: Vec::new(),
    }
}

#[test]
fn entries_are_sorted_and_dangling_assignments_set_apart() {
    let state = build(sample());
    assert_eq!(keys(state.items()), ["a", "b", "c"]);
    assert_eq!(keys(state.members()), ["z1#m1", "z2#m2"]);
    assert_eq!(
        keys(state.assignments()),
        ["a#z1#m1#00000", "a#z2#m2#00001", "b#z1#m1#00000"]
    );
    assert_eq!(
        keys(state.dangling()),
        ["a#z9#lost#00002", "gone#z1#m1#00000"]
    );
}

#[test]
fn each_item_has_a_contiguous_range_of_assignments() {
    let state = build(sample());
    assert_eq!(state.item_assignment_range(0), 0..2);
    assert_eq!(state.item_assignment_range(1), 2..3);
    assert_eq!(state.item_assignment_range(2), 3..3);
    assert_eq!(state.item_assignment_range(3), 0..0);
    assert_eq!(keys(state.item_assignments(1)), ["b#z1#m1#00000"]);
    assert!(state.item_assignments(2).is_empty());
    let a = ItemId::new("a").unwrap();
    assert_eq!(state.item_index(&a), Some(0));
    assert_eq!(state.item_index(&ItemId::new("gone").unwrap()), None);
    assert_eq!(state.member_index(&member_id("z2#m2")), Some(1));
    let members: Vec<_> = (0..4).map(|i| state.assignment_member(i)).collect();
    assert_eq!(members, [Some(0), Some(1), Some(0), None]);
}

#[test]
fn counts_cover_live_assignments_and_primaries_only() {
    let state = build(sample());
    assert_eq!(state.member_assignment_count(0), 2);
    assert_eq!(state.member_primary_count(0), 2);
    assert_eq!(state.member_assignment_count(1), 1);
    assert_eq!(state.member_primary_count(1), 0);
    assert_eq!(state.member_assignment_count(2), 0);
    assert_eq!(state.item_slots(), 4);
    assert_eq!(state.member_slots(), 20);
}

#[test]
fn without_dangling_assignments_nothing_is_set_apart() {
    let mut snapshot = sample();
    snapshot.assignments.retain(|a| {
        !matches!(
            a.key.to_string().as_str(),
            "gone#z1#m1#00000" | "a#z9#lost#00002"
        )
    });
    let state = build(snapshot);
    assert!(state.dangling().is_empty());
    assert_eq!(state.assignments().len(), 3);
    assert_eq!(state.item_assignment_range(1), 2..3);
}

#[test]
fn zones_without_capacity_are_left_out_and_exiting_members_add_no_slots() {
    let snapshot = Snapshot {
        items: vec![item("x", 3)],
        members: vec![
            member("a#1", 0, 1),
            exiting(member("b#1", 50, 2)),
            exiting(member("b#2", 50, 3)),
            member("c#2", 5, 4),
            member("c#1", 0, 5),
            member("d#1", 0, 6),
            member("d#2", 7, 7),
            exiting(member("e#1", 8, 8)),
            member("e#2", 9, 9),
        ],
        assignments: vec![assignment("x", "b#1", 0)],
        settings: None,
        away: Vec::new(),
    };
    let state = build(snapshot);
    let zones: Vec<&str> = state.zones().iter().map(|z| &**z).collect();
    assert_eq!(zones, ["c", "d", "e"]);
    assert_eq!(state.member_slots(), 5 + 7 + 9);
    assert_eq!(state.item_slots(), 3);
    // An exiting member keeps its copies until they are moved.
    assert_eq!(state.assignments().len(), 1);
    assert_eq!(state.member_primary_count(1), 1);
}

#[test]
fn the_oldest_member_leads_and_ties_go_to_the_lower_key() {
    let leader_of = |members: Vec<Entry<MemberId, JsonMember>>| {
        let state = build(Snapshot {
            members,
            ..Snapshot::default()
        });
        state
            .leader()
            .map(|index| state.members()[index].key.to_string())
    };
    assert_eq!(
        leader_of(vec![member("b#1", 1, 7), member("a#9", 1, 8)]),
        Some("b#1".into())
    );
    assert_eq!(
        leader_of(vec![
            member("b#1", 1, 7),
            member("a#9", 1, 7),
            member("a#8", 1, 9)
        ]),
        Some("a#9".into())
    );
    assert_eq!(
        leader_of(vec![member("z#z", 1, 7), member("z#y", 1, 7)]),
        Some("z#y".into())
    );
    // A member with no capacity can lead; an exiting one hands over.
    assert_eq!(
        leader_of(vec![exiting(member("a#1", 1, 1)), member("b#1", 0, 2)]),
        Some("b#1".into())
    );
    assert_eq!(
        leader_of(vec![
            exiting(member("b#1", 1, 1)),
            exiting(member("a#1", 1, 1))
        ]),
        Some("a#1".into())
    );
    assert_eq!(leader_of(Vec::new()), None);
}

#[test]
fn the_local_member_sees_its_copies_and_their_peers() {
    let local = member_id("z1#m1");
    let state = JsonState::build(sample(), Some(&local)).unwrap();
    assert_eq!(state.local_member(), Some(0));
    let mine: Vec<_> = state
        .local_assignments()
        .map(|held| {
            let others: Vec<String> = held.others().map(|o| o.key.to_string()).collect();
            (
                held.item.key.to_string(),
                held.assignment.key.slot,
                others,
                held.copies.len(),
            )
        })
        .collect();
    assert_eq!(
        mine,
        [
            ("a".into(), Slot(0), vec!["a#z2#m2#00001".to_string()], 2),
            ("b".into(), Slot(0), vec![], 1),
        ]
    );
    // z2#m2 was created first (revision 5).
    assert!(!state.is_local_leader());
    let other = JsonState::build(sample(), Some(&member_id("z2#m2"))).unwrap();
    assert!(other.is_local_leader());
    assert_eq!(other.local_assignments().len(), 1);
}

#[test]
fn an_unregistered_local_member_has_no_view() {
    let state = JsonState::build(sample(), Some(&member_id("z9#lost"))).unwrap();
    assert_eq!(state.local_member(), None);
    assert_eq!(state.local_assignments().len(), 0);
    assert!(!state.is_local_leader());
    let state = build(sample());
    assert_eq!(state.local_member(), None);
    assert!(!state.is_local_leader());
}

#[test]
fn duplicate_keys_are_rejected() {
    let mut snapshot = sample();
    snapshot.members.push(member("z1#m1", 3, 99));
    let error = JsonState::build(snapshot, None).unwrap_err();
    assert_eq!(
        error,
        BuildError::Duplicate {
            kind: "member",
            key: "z1#m1".into()
        }
    );
    assert_eq!(
        error.to_string(),
        "snapshot holds member `z1#m1` more than once"
    );
    let mut snapshot = sample();
    snapshot.assignments.push(assignment("b", "z1#m1", 0));
    assert_eq!(
        JsonState::build(snapshot, None).unwrap_err().to_string(),
        "snapshot holds assignment `b#z1#m1#00000` more than once"
    );
}

/// A named edit of the sample snapshot.
type Change = fn(&mut JsonSnapshot);

fn hash(snapshot: JsonSnapshot) -> u64 {
    build(snapshot).solver_hash()
}

#[test]
fn the_hash_changes_with_every_solver_input() {
    let base = hash(sample());
    let changes: Vec<(&str, Change)> = vec![
        ("member limit", |s| s.members[0].value.item_limit += 1),
        ("member exiting", |s| s.members[0].value.exiting = true),
        ("member added", |s| s.members.push(member("z3#m3", 1, 9))),
        ("member removed", |s| {
            s.members.remove(0);
        }),
        ("item replication", |s| s.items[0].value.replication = 5),
        ("item exclusive", |s| s.items[0].value.exclusive = true),
        ("item added", |s| s.items.push(item("d", 1))),
        ("item removed", |s| {
            s.items.pop();
        }),
        ("assignment added", |s| {
            s.assignments.push(assignment("c", "z2#m2", 0))
        }),
        ("assignment removed", |s| {
            s.assignments.remove(0);
        }),
        ("assignment slot", |s| s.assignments[2].key.slot = Slot(0)),
    ];
    for (what, change) in changes {
        let mut snapshot = sample();
        change(&mut snapshot);
        assert_ne!(hash(snapshot), base, "{what} must change the hash");
    }
}

#[test]
fn the_hash_ignores_what_the_solver_does_not_read() {
    let base = hash(sample());
    let changes: Vec<(&str, Change)> = vec![
        ("status", |s| s.assignments[0].value.ready = true),
        ("status extra", |s| {
            s.assignments[0].value.extra.insert("lag".into(), 3.into());
        }),
        ("metadata", |s| {
            s.members[0].meta = meta(1000);
            s.items[0].meta.mod_revision = 77;
            s.assignments[0].meta.lease = LeaseId::new(5);
        }),
        ("input order", |s| {
            s.items.reverse();
            s.members.reverse();
            s.assignments.reverse();
        }),
        ("dangling removed", |s| {
            s.assignments.retain(|a| a.key.item.as_str() != "gone")
        }),
        ("dangling added", |s| {
            s.assignments.push(assignment("c", "z7#new", 0))
        }),
        ("item extra", |s| {
            s.items[1].value.extra.insert("db".into(), "x".into());
        }),
    ];
    for (what, change) in changes {
        let mut snapshot = sample();
        change(&mut snapshot);
        assert_eq!(hash(snapshot), base, "{what} must not change the hash");
    }
    let local = member_id("z1#m1");
    let with_local = JsonState::build(sample(), Some(&local)).unwrap();
    assert_eq!(with_local.solver_hash(), base);
}

#[test]
fn an_empty_snapshot_builds_an_empty_state() {
    let state = build(Snapshot::default());
    assert!(state.items().is_empty() && state.members().is_empty());
    assert!(state.zones().is_empty());
    assert_eq!((state.item_slots(), state.member_slots()), (0, 0));
    assert_eq!(state.leader(), None);
    assert_ne!(state.solver_hash(), build(sample()).solver_hash());
}

mod away {
    use super::*;
    use apportion_core::away::{self, AwayReason, AwayRecord, Holds};
    use apportion_core::planner::ReadyStatus;
    use apportion_core::solver::{self, Current, Item, Member, Problem};

    fn ready(mut entry: Entry<AssignmentKey, JsonStatus>) -> Entry<AssignmentKey, JsonStatus> {
        entry.value.ready = true;
        entry
    }

    fn restarting(mut entry: Entry<MemberId, JsonMember>) -> Entry<MemberId, JsonMember> {
        entry.value.restarting = true;
        entry
    }

    fn record(member: &str, items: &[&str]) -> Entry<MemberId, AwayRecord> {
        Entry {
            key: member_id(member),
            value: AwayRecord {
                reason: AwayReason::Restart,
                until_unix_secs: 100,
                items: items.iter().map(|i| ItemId::new(i).unwrap()).collect(),
            },
            meta: meta(20),
        }
    }

    /// `r` (2 replicas) on a#1 and b#1, `one` (1) and exclusive `x` on a#1, which is
    /// restarting; c#1 holds nothing.
    fn restart_of_a(local: Option<&str>) -> JsonState {
        let mut x = item("x", 1);
        x.value.exclusive = true;
        let snapshot = Snapshot {
            items: vec![item("r", 2), item("one", 1), x],
            members: vec![
                restarting(member("a#1", 10, 1)),
                member("b#1", 10, 2),
                member("c#1", 10, 3),
            ],
            assignments: vec![
                ready(assignment("r", "a#1", 1)),
                ready(assignment("r", "b#1", 0)),
                ready(assignment("one", "a#1", 0)),
                ready(assignment("x", "a#1", 0)),
            ],
            settings: None,
            away: Vec::new(),
        };
        JsonState::build(snapshot, local.map(member_id).as_ref()).unwrap()
    }

    #[test]
    fn a_restarting_member_keeps_only_replicas_whose_item_stays_ready_enough() {
        let state = restart_of_a(None);
        let holds = away::holds(&state, &ReadyStatus);
        let r = state.item_index(&ItemId::new("r").unwrap()).unwrap();
        // `r` keeps a#1's copy, one slot held; `one` would have no ready copy and `x` is
        // exclusive: both move as in a drain.
        assert_eq!(holds.kept, vec![(r as u32, 0)]);
        assert_eq!(holds.held(r), 1);
        assert_eq!(holds.held_items(), 1);
        assert_eq!(holds.restarting, vec![0]);
    }

    #[test]
    fn min_ready_turns_a_hold_into_a_refill() {
        let mut state_snapshot = restart_of_a(None);
        // Rebuild with min_ready 2: r's one other ready copy is too few.
        let settings = apportion_core::settings::ClusterSettings {
            min_ready: 2,
            ..Default::default()
        };
        let snapshot = Snapshot {
            items: state_snapshot.items().to_vec(),
            members: state_snapshot.members().to_vec(),
            assignments: state_snapshot.assignments().to_vec(),
            settings: Some(settings),
            away: Vec::new(),
        };
        state_snapshot = build(snapshot);
        assert!(away::holds(&state_snapshot, &ReadyStatus).kept.is_empty());
    }

    #[test]
    fn an_items_own_min_ready_wins_over_the_clusters() {
        let state = restart_of_a(None);
        let mut items = state.items().to_vec();
        let r = state.item_index(&ItemId::new("r").unwrap()).unwrap();
        items[r].value.min_ready = Some(2);
        let snapshot = Snapshot {
            items,
            members: state.members().to_vec(),
            assignments: state.assignments().to_vec(),
            settings: None,
            away: Vec::new(),
        };
        assert!(away::holds(&build(snapshot), &ReadyStatus).kept.is_empty());
    }

    #[test]
    fn a_restarting_member_may_leave_once_it_holds_only_kept_replicas() {
        let state = restart_of_a(Some("a#1"));
        assert!(!away::ready_to_leave(&state, &ReadyStatus));
        let snapshot = Snapshot {
            items: state.items().to_vec(),
            members: state.members().to_vec(),
            assignments: vec![
                ready(assignment("r", "a#1", 1)),
                ready(assignment("r", "b#1", 0)),
                ready(assignment("one", "c#1", 0)),
                ready(assignment("x", "c#1", 0)),
            ],
            settings: None,
            away: Vec::new(),
        };
        let moved = JsonState::build(snapshot.clone(), Some(&member_id("a#1"))).unwrap();
        assert!(away::ready_to_leave(&moved, &ReadyStatus));
        // Holding the primary, it may not.
        let mut primary = snapshot;
        primary.assignments[0] = ready(assignment("r", "a#1", 0));
        primary.assignments[1] = ready(assignment("r", "b#1", 1));
        let primary = JsonState::build(primary, Some(&member_id("a#1"))).unwrap();
        assert!(!away::ready_to_leave(&primary, &ReadyStatus));
    }

    #[test]
    fn an_absent_members_record_holds_slots_and_a_returned_member_is_offered_them() {
        let away_snapshot = |members: Vec<Entry<MemberId, JsonMember>>| Snapshot {
            items: vec![item("r", 2), item("s", 2), item("gone-elsewhere", 1)],
            members,
            assignments: vec![
                ready(assignment("r", "b#1", 0)),
                ready(assignment("s", "b#1", 0)),
                ready(assignment("s", "c#1", 1)),
                ready(assignment("gone-elsewhere", "c#1", 0)),
            ],
            settings: None,
            away: vec![record("a#1", &["r", "s", "gone-elsewhere", "deleted"])],
        };
        let absent = build(away_snapshot(vec![
            member("b#1", 10, 2),
            member("c#1", 10, 3),
        ]));
        let holds = away::holds(&absent, &ReadyStatus);
        let r = absent.item_index(&ItemId::new("r").unwrap()).unwrap();
        // Only `r` has a free slot: `s` was refilled meanwhile, `gone-elsewhere` has
        // its one copy, `deleted` is no item.
        assert_eq!(
            holds.held.iter().collect::<Vec<_>>(),
            vec![(&(r as u32), &1)]
        );
        assert!(holds.returning.is_empty());
        let back = build(away_snapshot(vec![
            member("a#1", 10, 9),
            member("b#1", 10, 2),
            member("c#1", 10, 3),
        ]));
        let holds = away::holds(&back, &ReadyStatus);
        assert!(holds.held.is_empty());
        assert_eq!(holds.returning, vec![(r as u32, 0)]);
    }

    #[test]
    fn a_frozen_item_leaves_the_problem_pinned_and_comes_back_as_it_is() {
        let holds = Holds {
            held: [(0, 1)].into(),
            restarting: vec![1],
            kept: vec![(0, 1)],
            returning: vec![(1, 2)],
            frozen: [(0, vec![0, 1])].into(),
        };
        let mut problem = Problem {
            members: (0..3)
                .map(|zone| Member {
                    zone,
                    item_limit: 5,
                    exiting: false,
                })
                .collect(),
            items: vec![Item { replication: 2 }; 2],
            current: vec![
                Current {
                    item: 0,
                    member: 0,
                    slot: 0,
                    consistent: true,
                },
                Current {
                    item: 0,
                    member: 1,
                    slot: 1,
                    consistent: true,
                },
            ],
            pinned: Vec::new(),
        };
        holds.apply(&mut problem);
        assert!(problem.members[1].exiting);
        assert_eq!(problem.items[0].replication, 0);
        // Item 0's copies leave the problem; member 0's counts as pinned load; the
        // offered copy of item 1 joins it.
        assert_eq!(problem.current.len(), 1, "{:?}", problem.current);
        assert_eq!((problem.current[0].item, problem.current[0].member), (1, 2));
        assert_eq!(problem.pinned[0], 1);
        assert_eq!(problem.members[0].item_limit, 4);
        let solution = solver::solve(&problem).unwrap();
        let desired = holds.desired(&solution);
        assert_eq!(desired.wanted(0), &[0, 1]);
        assert!(desired.wanted(1).contains(&2), "the offered copy is kept");
    }

    #[test]
    fn a_lost_member_is_one_that_vanished_without_draining_or_a_record() {
        let before = build(Snapshot {
            items: vec![item("r", 2), item("one", 1)],
            members: vec![
                member("a#1", 10, 1),
                exiting(member("b#1", 10, 2)),
                member("c#1", 10, 3),
            ],
            assignments: vec![
                assignment("r", "a#1", 0),
                assignment("one", "a#1", 1),
                assignment("r", "b#1", 1),
            ],
            settings: None,
            away: Vec::new(),
        });
        let after = build(Snapshot {
            items: before.items().to_vec(),
            members: vec![member("c#1", 10, 3)],
            assignments: Vec::new(),
            settings: None,
            away: Vec::new(),
        });
        let lost = away::lost_members(&before, &after);
        assert_eq!(lost.len(), 1, "b#1 drained: {lost:?}");
        assert_eq!(lost[0].0, member_id("a#1"));
        assert_eq!(lost[0].1.len(), 2);
    }

    #[test]
    fn a_bad_record_names_what_is_wrong() {
        let bad_item =
            AwayRecord::decode(br#"{"reason":"restart","until_unix_secs":1,"items":["a#b"]}"#)
                .unwrap_err();
        assert!(bad_item.to_string().contains("a#b"), "{bad_item}");
        let unknown =
            AwayRecord::decode(br#"{"reason":"nap","until_unix_secs":1,"items":[]}"#).unwrap_err();
        assert!(unknown.to_string().contains("nap"), "{unknown}");
        let record = record("a#1", &["x"]).value;
        assert_eq!(AwayRecord::decode(&record.encode()).unwrap(), record);
    }
}
