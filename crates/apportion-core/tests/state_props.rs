//! Properties of `State::build` over small random snapshots: every assignment is either
//! live (item and member exist) or dangling, the indexes and counts agree with the
//! entries, and nothing depends on the order of the input. And of what away members hold
//! back (`away::holds`) on such states with restarting members and away records.

use std::collections::BTreeMap;

use apportion_core::away::{self, AwayReason, AwayRecord};
use apportion_core::keys::{AssignmentKey, ItemId, MemberId, Slot};
use apportion_core::planner::ReadyStatus;
use apportion_core::settings::ClusterSettings;
use apportion_core::solver;
use apportion_core::state::{Entry, JsonState, Meta, Snapshot};
use apportion_core::values::{ItemValue, JsonItem, JsonMember, JsonStatus};
use proptest::prelude::*;

type JsonSnapshot = Snapshot<JsonItem, JsonMember, JsonStatus>;

fn meta(revision: i64) -> Meta {
    Meta {
        create_revision: revision,
        mod_revision: revision,
        version: 1,
        lease: None,
    }
}

/// Members are drawn from zones z1..z3 and suffixes m1..m2; assignments also name zone z4
/// and suffix m3, and items g and h, which never exist, so some are dangling.
fn snapshot() -> impl Strategy<Value = JsonSnapshot> {
    let items = prop::collection::btree_map(
        prop::sample::select(vec!["a", "b", "c", "d", "e", "f"]),
        (0u16..4, any::<bool>()),
        0..6,
    );
    let members =
        prop::collection::btree_map((1u8..4, 1u8..3), (0u32..4, any::<bool>(), 0i64..4), 0..6);
    let assignments = prop::collection::btree_map(
        (
            prop::sample::select(vec!["a", "b", "c", "f", "g", "h"]),
            1u8..5,
            1u8..4,
            0u16..4,
        ),
        any::<bool>(),
        0..24,
    );
    (items, members, assignments).prop_map(|(items, members, assignments)| Snapshot {
        settings: None,
        away: Vec::new(),
        items: items
            .into_iter()
            .map(|(id, (replication, exclusive))| Entry {
                key: ItemId::new(id).unwrap(),
                value: JsonItem {
                    replication,
                    exclusive,
                    ..JsonItem::default()
                },
                meta: meta(1),
            })
            .collect(),
        members: members
            .into_iter()
            .map(|((zone, host), (item_limit, exiting, created))| Entry {
                key: member(zone, host),
                value: JsonMember {
                    item_limit,
                    exiting,
                    ..JsonMember::default()
                },
                meta: meta(created),
            })
            .collect(),
        assignments: assignments
            .into_iter()
            .map(|((item, zone, host, slot), ready)| Entry {
                key: AssignmentKey {
                    item: ItemId::new(item).unwrap(),
                    member: member(zone, host),
                    slot: Slot(slot),
                },
                value: JsonStatus {
                    ready,
                    ..JsonStatus::default()
                },
                meta: meta(5),
            })
            .collect(),
    })
}

fn member(zone: u8, host: u8) -> MemberId {
    MemberId::new(&format!("z{zone}"), &format!("m{host}")).unwrap()
}

fn keys<K: Clone, V>(entries: &[Entry<K, V>]) -> Vec<K> {
    entries.iter().map(|e| e.key.clone()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn indexes_and_counts_agree_with_the_entries(snapshot in snapshot()) {
        let input = snapshot.assignments.len();
        let state = JsonState::build(snapshot, None).unwrap();
        prop_assert_eq!(state.assignments().len() + state.dangling().len(), input);
        for dangling in state.dangling() {
            let item = state.item_index(&dangling.key.item);
            let member = state.member_index(&dangling.key.member);
            prop_assert!(item.is_none() || member.is_none());
        }
        let mut assigned: BTreeMap<usize, u32> = BTreeMap::new();
        let mut primaries: BTreeMap<usize, u32> = BTreeMap::new();
        for item in 0..state.items().len() {
            for position in state.item_assignment_range(item) {
                let key = &state.assignments()[position].key;
                prop_assert_eq!(&key.item, &state.items()[item].key);
                let member = state.assignment_member(position).unwrap();
                prop_assert_eq!(&key.member, &state.members()[member].key);
                *assigned.entry(member).or_default() += 1;
                if key.slot.is_primary() {
                    *primaries.entry(member).or_default() += 1;
                }
            }
        }
        prop_assert_eq!(assigned.values().sum::<u32>() as usize, state.assignments().len());
        for member in 0..state.members().len() {
            prop_assert_eq!(state.member_assignment_count(member), assigned.get(&member).copied().unwrap_or(0));
            prop_assert_eq!(state.member_primary_count(member), primaries.get(&member).copied().unwrap_or(0));
        }
    }

    #[test]
    fn input_order_does_not_matter(snapshot in snapshot(), local in (1u8..5, 1u8..4)) {
        let local = member(local.0, local.1);
        let mut reversed = snapshot.clone();
        reversed.items.reverse();
        reversed.members.reverse();
        reversed.assignments.reverse();
        let a = JsonState::build(snapshot, Some(&local)).unwrap();
        let b = JsonState::build(reversed, Some(&local)).unwrap();
        prop_assert_eq!(a.solver_hash(), b.solver_hash());
        prop_assert_eq!(keys(a.items()), keys(b.items()));
        prop_assert_eq!(keys(a.members()), keys(b.members()));
        prop_assert_eq!(keys(a.assignments()), keys(b.assignments()));
        prop_assert_eq!(keys(a.dangling()), keys(b.dangling()));
        prop_assert_eq!(a.zones(), b.zones());
        prop_assert_eq!(a.leader(), b.leader());
        let held = |s: &JsonState| s.local_assignments().map(|l| l.assignment.key.clone()).collect::<Vec<_>>();
        prop_assert_eq!(held(&a), held(&b));
    }

    #[test]
    fn the_local_view_is_exactly_the_local_members_assignments(
        snapshot in snapshot(),
        local in (1u8..4, 1u8..3),
    ) {
        let local = member(local.0, local.1);
        let state = JsonState::build(snapshot, Some(&local)).unwrap();
        let expected: Vec<AssignmentKey> = state
            .assignments()
            .iter()
            .filter(|a| a.key.member == local)
            .map(|a| a.key.clone())
            .collect();
        let held: Vec<AssignmentKey> = state
            .local_assignments()
            .map(|l| {
                assert_eq!(l.item.key, l.assignment.key.item);
                assert_eq!(l.others().count() + 1, l.copies.len());
                l.assignment.key.clone()
            })
            .collect();
        prop_assert_eq!(&held, &expected);
        // Looked up item by item, the same copies, each under its own item.
        let mut by_item: Vec<AssignmentKey> = Vec::new();
        for item in state.items() {
            for l in state.local_assignments_of(&item.key) {
                prop_assert_eq!(&l.assignment.key.item, &item.key);
                by_item.push(l.assignment.key.clone());
            }
        }
        prop_assert_eq!(by_item, expected);
    }
}

/// A snapshot with some members restarting, away records for present and absent members
/// (zone 4 never has a member), and a cluster `min_ready` from 0 to 3.
fn away_snapshot() -> impl Strategy<Value = JsonSnapshot> {
    let records = prop::collection::btree_map(
        (1u8..5, 1u8..3),
        prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "x"]), 0..4),
        0..3,
    );
    (
        snapshot(),
        prop::collection::vec(any::<bool>(), 6),
        records,
        0u32..4,
    )
        .prop_map(|(mut snapshot, restarting, records, min_ready)| {
            for (member, restarting) in snapshot.members.iter_mut().zip(restarting) {
                member.value.restarting = restarting;
            }
            snapshot.away = records
                .into_iter()
                .map(|((zone, host), mut items)| {
                    items.dedup();
                    Entry {
                        key: member(zone, host),
                        value: AwayRecord {
                            reason: AwayReason::Restart,
                            until_unix_secs: 1,
                            items: items.into_iter().map(|i| ItemId::new(i).unwrap()).collect(),
                        },
                        meta: meta(7),
                    }
                })
                .collect();
            snapshot.settings = Some(ClusterSettings {
                min_ready,
                ..ClusterSettings::default()
            });
            snapshot
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn holds_never_overfill_hold_exclusive_items_or_go_below_min_ready(
        snapshot in away_snapshot()
    ) {
        let state = JsonState::build(snapshot, None).unwrap();
        let holds = away::holds(&state, &ReadyStatus);
        for (x, item) in state.items().iter().enumerate() {
            let held = holds.held(x);
            if held == 0 {
                continue;
            }
            prop_assert!(!item.value.exclusive, "exclusive {} held", item.key);
            let copies = state.item_assignments(x);
            let members = state.members();
            let staying = |c: &&Entry<AssignmentKey, JsonStatus>| {
                let value = &members[state.member_index(&c.key.member).unwrap()].value;
                !value.restarting || value.exiting
            };
            let mut holders: Vec<&MemberId> =
                copies.iter().filter(staying).map(|c| &c.key.member).collect();
            holders.dedup();
            let present = holders.len() as u32;
            let ready = copies.iter().filter(staying).filter(|c| c.value.ready).count() as u32;
            // A held slot is a free one, and only where enough stays ready.
            prop_assert!(present + held <= u32::from(item.value.copies_wanted()));
            prop_assert!(ready >= state.settings().min_ready_of(&item.value));
        }
        for &(x, m) in &holds.kept {
            let value = &state.members()[m as usize].value;
            prop_assert!(value.restarting && !value.exiting);
            prop_assert!(holds.held(x as usize) > 0);
            let member = &state.members()[m as usize].key;
            prop_assert!(state.item_assignments(x as usize).iter().any(|c| &c.key.member == member));
        }
        for &(x, m) in &holds.returning {
            let member = &state.members()[m as usize];
            // A member both restarting and draining drains: it counts as staying.
            prop_assert!(!member.value.restarting || member.value.exiting);
            prop_assert!(state.away_record(&member.key).is_some());
            prop_assert!(!state.item_assignments(x as usize).iter().any(|c| c.key.member == member.key));
        }
    }

    #[test]
    fn the_answer_under_holds_keeps_kept_copies_as_replicas_within_replication(
        snapshot in away_snapshot()
    ) {
        let state = JsonState::build(snapshot, None).unwrap();
        let holds = away::holds(&state, &ReadyStatus);
        let mut problem = solver::Problem {
            members: state.members().iter().map(|m| solver::Member {
                zone: state.zones().iter().position(|z| **z == *m.key.zone()).unwrap_or(0) as u32,
                item_limit: m.value.item_limit,
                exiting: m.value.exiting,
            }).collect(),
            items: state.items().iter().map(|i| solver::Item {
                replication: u32::from(i.value.copies_wanted()),
            }).collect(),
            current: Vec::new(),
            pinned: Vec::new(),
        };
        holds.apply(&mut problem);
        let solution = solver::solve(&problem).unwrap();
        let desired = holds.desired(&solution);
        for (x, item) in state.items().iter().enumerate() {
            let wanted = desired.wanted(x);
            prop_assert!(wanted.len() <= usize::from(item.value.copies_wanted()), "{} over", item.key);
            for &(kx, m) in holds.kept.iter().filter(|(kx, _)| *kx as usize == x) {
                prop_assert_eq!(kx as usize, x);
                prop_assert!(wanted.contains(&m));
                // Unless no other member can take a copy at all.
                let placed = !solution.replicas_of(x as u32).is_empty();
                prop_assert!(!placed || wanted.first() != Some(&m), "a kept copy leads {}", item.key);
            }
        }
    }
}
