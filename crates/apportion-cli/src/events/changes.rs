//! What changed between two states of the cluster, as a list of [`Change`]s.
//!
//! Every list in a [`State`](apportion::core::state::State) is sorted by key, so each is compared with one merge pass:
//! linear in the sizes of the two states, whatever the cluster's size.

use std::cmp::Ordering;

use apportion_core::keys::{AssignmentKey, ItemId, MemberId, Slot};
use apportion_core::state::{Entry, JsonState};

/// One change of placement, or of the items and members placement depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An item appeared.
    ItemCreated {
        /// The item.
        item: ItemId,
        /// How many copies it asks for.
        replication: u16,
    },
    /// An item disappeared (its copies go next).
    ItemRemoved {
        /// The item.
        item: ItemId,
    },
    /// An item asks for a different number of copies.
    ReplicationChanged {
        /// The item.
        item: ItemId,
        /// The old replication.
        from: u16,
        /// The new replication.
        to: u16,
    },
    /// A member registered.
    MemberJoined {
        /// The member.
        member: MemberId,
    },
    /// A member's key disappeared: it left, or its lease ran out.
    MemberLeft {
        /// The member.
        member: MemberId,
    },
    /// A member was marked exiting (drained), so its copies move away.
    MemberExiting {
        /// The member.
        member: MemberId,
    },
    /// A copy was placed.
    Added {
        /// The copy's key.
        copy: AssignmentKey,
    },
    /// A copy was taken away.
    Removed {
        /// The copy's key.
        copy: AssignmentKey,
    },
    /// A member's copy changed slot; to slot 0, that is a promotion to primary.
    Moved {
        /// The copy's key in its new slot.
        copy: AssignmentKey,
        /// The slot it had.
        from: Slot,
    },
    /// A copy was marked ready (`ready: true`) or no longer ready.
    Ready {
        /// The copy's key.
        copy: AssignmentKey,
        /// Whether it is ready now.
        ready: bool,
    },
    /// The leader asked the holder of a copy to release it.
    ReleaseRequested {
        /// The copy's key.
        copy: AssignmentKey,
    },
}

/// The changes from `old` to `new`: members, then items, then copies, each in key order.
/// Assignments left by deleted items or members are not compared: they are not placements,
/// only keys waiting for the leader to delete them.
pub fn changes(old: &JsonState, new: &JsonState) -> Vec<Change> {
    let mut out = Vec::new();
    merge(old.members(), new.members(), |old, new| match (old, new) {
        (None, Some(new)) => out.push(Change::MemberJoined {
            member: new.key.clone(),
        }),
        (Some(old), None) => out.push(Change::MemberLeft {
            member: old.key.clone(),
        }),
        (Some(old), Some(new)) if new.value.exiting && !old.value.exiting => {
            out.push(Change::MemberExiting {
                member: new.key.clone(),
            });
        }
        _ => {}
    });
    merge(old.items(), new.items(), |old, new| match (old, new) {
        (None, Some(new)) => out.push(Change::ItemCreated {
            item: new.key.clone(),
            replication: new.value.replication,
        }),
        (Some(old), None) => out.push(Change::ItemRemoved {
            item: old.key.clone(),
        }),
        (Some(old), Some(new)) if old.value.replication != new.value.replication => {
            out.push(Change::ReplicationChanged {
                item: new.key.clone(),
                from: old.value.replication,
                to: new.value.replication,
            });
        }
        _ => {}
    });
    let mut group = Group::default();
    merge(old.assignments(), new.assignments(), |old, new| {
        match (old, new) {
            (None, Some(new)) => group.add(&mut out, &new.key, true),
            (Some(old), None) => group.add(&mut out, &old.key, false),
            (Some(old), Some(new)) => {
                if old.value.ready != new.value.ready {
                    out.push(Change::Ready {
                        copy: new.key.clone(),
                        ready: new.value.ready,
                    });
                }
                if new.value.releasing && !old.value.releasing {
                    out.push(Change::ReleaseRequested {
                        copy: new.key.clone(),
                    });
                }
            }
            (None, None) => {}
        }
    });
    group.flush(&mut out);
    out
}

/// Walks two lists sorted by key together, calling `visit` once per key with its entry in
/// each list (`None` where it is missing).
fn merge<K: Ord, V>(
    old: &[Entry<K, V>],
    new: &[Entry<K, V>],
    mut visit: impl FnMut(Option<&Entry<K, V>>, Option<&Entry<K, V>>),
) {
    let (mut old, mut new) = (old.iter().peekable(), new.iter().peekable());
    loop {
        let order = match (old.peek(), new.peek()) {
            (None, None) => return,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(o), Some(n)) => o.key.cmp(&n.key),
        };
        match order {
            Ordering::Less => visit(old.next(), None),
            Ordering::Greater => visit(None, new.next()),
            Ordering::Equal => visit(old.next(), new.next()),
        }
    }
}

/// The copies added and removed for one (item, member) pair, held back until the merge
/// leaves the pair (keys are sorted by item, member, slot, so its keys are adjacent): a slot
/// removed and one added for the same pair are one copy that moved.
#[derive(Default)]
struct Group {
    /// Keys added, in slot order.
    added: Vec<AssignmentKey>,
    /// Keys removed, in slot order.
    removed: Vec<AssignmentKey>,
}

impl Group {
    /// Records `key` as added (or removed), first flushing the pair before it.
    fn add(&mut self, out: &mut Vec<Change>, key: &AssignmentKey, added: bool) {
        let current = self.added.first().or(self.removed.first());
        if current.is_some_and(|c| c.item != key.item || c.member != key.member) {
            self.flush(out);
        }
        let list = if added {
            &mut self.added
        } else {
            &mut self.removed
        };
        list.push(key.clone());
    }

    /// Emits the pair's changes: added and removed slots paired up as moves, the rest as
    /// they are.
    fn flush(&mut self, out: &mut Vec<Change>) {
        let moves = self.added.len().min(self.removed.len());
        let mut removed = self.removed.drain(..);
        let mut added = self.added.drain(..);
        for (from, copy) in removed.by_ref().zip(added.by_ref()).take(moves) {
            out.push(Change::Moved {
                copy,
                from: from.slot,
            });
        }
        out.extend(removed.map(|copy| Change::Removed { copy }));
        out.extend(added.map(|copy| Change::Added { copy }));
    }
}

#[cfg(test)]
mod tests {
    use apportion_core::state::{decode_entry, Meta, Snapshot, State};
    use apportion_core::values::JsonDecoder;

    use super::*;

    /// A state from `(key under the prefix, JSON value)` pairs.
    fn state(keys: &[(&str, &str)]) -> JsonState {
        let prefix = apportion_core::keys::Prefix::new("/p").unwrap();
        let mut snapshot = Snapshot::default();
        for (key, value) in keys {
            let key = format!("/p/{key}");
            let decoded =
                decode_entry(&prefix, &JsonDecoder, key.as_bytes(), value.as_bytes()).unwrap();
            snapshot.push(decoded, Meta::default());
        }
        State::build(snapshot, None).unwrap()
    }

    fn copy(text: &str) -> AssignmentKey {
        AssignmentKey::parse(text).unwrap()
    }

    const BASE: &[(&str, &str)] = &[
        ("members/eu#h1", r#"{"item_limit": 4}"#),
        ("members/eu#h2", r#"{"item_limit": 4}"#),
        ("items/orders", r#"{"replication": 2}"#),
        ("assign/orders#eu#h1#00000", r#"{"ready": true}"#),
        ("assign/orders#eu#h2#00001", r#"{"ready": false}"#),
    ];

    fn with(extra: &[(&'static str, &'static str)], without: &[&str]) -> JsonState {
        let mut keys: Vec<(&str, &str)> = BASE
            .iter()
            .copied()
            .filter(|(k, _)| !without.contains(k))
            .collect();
        keys.extend_from_slice(extra);
        state(&keys)
    }

    #[test]
    fn equal_states_have_no_changes() {
        assert_eq!(changes(&with(&[], &[]), &with(&[], &[])), []);
    }

    #[test]
    fn copies_added_and_removed() {
        let old = with(&[], &[]);
        let new = with(
            &[("assign/orders#eu#h2#00002", "")],
            &["assign/orders#eu#h1#00000"],
        );
        // eu#h2 gains slot 2 besides its slot 1: an added copy, not a move.
        assert_eq!(
            changes(&old, &new),
            [
                Change::Removed {
                    copy: copy("orders#eu#h1#00000")
                },
                Change::Added {
                    copy: copy("orders#eu#h2#00002")
                },
            ]
        );
    }

    #[test]
    fn a_copy_changing_slot_is_a_move_and_to_slot_0_a_promotion() {
        let old = with(&[], &[]);
        let new = with(
            &[("assign/orders#eu#h2#00000", "")],
            &["assign/orders#eu#h1#00000", "assign/orders#eu#h2#00001"],
        );
        assert_eq!(
            changes(&old, &new),
            [
                Change::Removed {
                    copy: copy("orders#eu#h1#00000")
                },
                Change::Moved {
                    copy: copy("orders#eu#h2#00000"),
                    from: Slot(1)
                },
            ]
        );
    }

    #[test]
    fn ready_flips_and_release_requests() {
        let old = with(&[], &[]);
        let new = with(
            &[
                (
                    "assign/orders#eu#h1#00000",
                    r#"{"ready": false, "releasing": true}"#,
                ),
                ("assign/orders#eu#h2#00001", r#"{"ready": true}"#),
            ],
            &["assign/orders#eu#h1#00000", "assign/orders#eu#h2#00001"],
        );
        assert_eq!(
            changes(&old, &new),
            [
                Change::Ready {
                    copy: copy("orders#eu#h1#00000"),
                    ready: false
                },
                Change::ReleaseRequested {
                    copy: copy("orders#eu#h1#00000")
                },
                Change::Ready {
                    copy: copy("orders#eu#h2#00001"),
                    ready: true
                },
            ]
        );
    }

    #[test]
    fn members_joining_leaving_and_exiting_and_items_coming_and_going() {
        let old = with(&[("items/gone", r#"{"replication": 1}"#)], &[]);
        let new = with(
            &[
                ("members/us#h1", r#"{"item_limit": 8}"#),
                ("members/eu#h2", r#"{"item_limit": 4, "exiting": true}"#),
                ("items/orders", r#"{"replication": 3}"#),
                ("items/new", r#"{"replication": 1}"#),
            ],
            &["members/eu#h1", "members/eu#h2", "items/orders"],
        );
        let member = |id| MemberId::parse(id).unwrap();
        let item = |id| ItemId::new(id).unwrap();
        // eu#h1's copy goes with it: dangling assignments are not compared.
        assert_eq!(
            changes(&old, &new),
            [
                Change::MemberLeft {
                    member: member("eu#h1")
                },
                Change::MemberExiting {
                    member: member("eu#h2")
                },
                Change::MemberJoined {
                    member: member("us#h1")
                },
                Change::ItemRemoved { item: item("gone") },
                Change::ItemCreated {
                    item: item("new"),
                    replication: 1
                },
                Change::ReplicationChanged {
                    item: item("orders"),
                    from: 2,
                    to: 3
                },
                Change::Removed {
                    copy: copy("orders#eu#h1#00000")
                },
            ]
        );
    }
}
