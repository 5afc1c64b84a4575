//! Hand-made `State` cases: sorting and grouping, dangling assignments, counts, zones,
//! the leader, the local member's view, duplicates, and what changes the solver hash.

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
