//! What changed between two states of the cluster, as a list of [`Change`]s: what
//! `apportion events` prints, and what a service would log or alert on.
//!
//! Every list in a [`State`] is sorted by key, so each is compared with one merge pass:
//! linear in the sizes of the two states, whatever the cluster's size.

use std::cmp::Ordering;

use apportion_core::away::AwayReason;
use apportion_core::keys::{AssignmentKey, ItemId, MemberId, Slot};
use apportion_core::settings::ClusterSettings;
use apportion_core::state::{Entry, State};
use apportion_core::values::{AssignmentValue, ItemValue, MemberValue};

/// One change of placement, or of the items and members placement depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The cluster settings changed (a freeze set or lifted, a throttle, `min_ready`).
    SettingsChanged {
        /// The settings now.
        settings: ClusterSettings,
    },
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
    /// A member was marked restarting: its primaries move away, its replicas wait.
    MemberRestarting {
        /// The member.
        member: MemberId,
    },
    /// A member went away for a while: its replicated items wait for it (see
    /// `apportion_core::away`).
    AwayRecorded {
        /// The member.
        member: MemberId,
        /// Why: a restart, or a lost lease under a refill delay.
        reason: AwayReason,
        /// How many items wait.
        items: usize,
        /// When the wait ends, in seconds since the epoch.
        until_unix_secs: u64,
    },
    /// A member's away record ended: it is back with its items, or its time ran out (its
    /// items are then placed elsewhere).
    AwayEnded {
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

/// The changes from `old` to `new` (two states of one cluster, such as the successive
/// states of a [`ClusterView`](crate::cluster::ClusterView)): the settings, then members,
/// then away records, then items, then copies, each in key order. Assignments left by deleted items or members are not
/// compared: they are not placements, only keys waiting for the leader to delete them.
pub fn changes<I: ItemValue, M: MemberValue, A: AssignmentValue>(
    old: &State<I, M, A>,
    new: &State<I, M, A>,
) -> Vec<Change> {
    let mut out = Vec::new();
    if old.settings() != new.settings() {
        out.push(Change::SettingsChanged {
            settings: new.settings().clone(),
        });
    }
    merge(old.members(), new.members(), |old, new| match (old, new) {
        (None, Some(new)) => out.push(Change::MemberJoined {
            member: new.key.clone(),
        }),
        (Some(old), None) => out.push(Change::MemberLeft {
            member: old.key.clone(),
        }),
        (Some(old), Some(new)) if new.value.is_exiting() && !old.value.is_exiting() => {
            out.push(Change::MemberExiting {
                member: new.key.clone(),
            });
        }
        (Some(old), Some(new)) if new.value.is_restarting() && !old.value.is_restarting() => {
            out.push(Change::MemberRestarting {
                member: new.key.clone(),
            });
        }
        _ => {}
    });
    merge(old.away_records(), new.away_records(), |old, new| {
        match (old, new) {
            (_, Some(new))
                if old.is_none_or(|old| old.meta.mod_revision != new.meta.mod_revision) =>
            {
                out.push(Change::AwayRecorded {
                    member: new.key.clone(),
                    reason: new.value.reason,
                    items: new.value.items.len(),
                    until_unix_secs: new.value.until_unix_secs,
                })
            }
            (Some(old), None) => out.push(Change::AwayEnded {
                member: old.key.clone(),
            }),
            _ => {}
        }
    });
    merge(old.items(), new.items(), |old, new| match (old, new) {
        (None, Some(new)) => out.push(Change::ItemCreated {
            item: new.key.clone(),
            replication: new.value.replication(),
        }),
        (Some(old), None) => out.push(Change::ItemRemoved {
            item: old.key.clone(),
        }),
        (Some(old), Some(new)) if old.value.replication() != new.value.replication() => {
            out.push(Change::ReplicationChanged {
                item: new.key.clone(),
                from: old.value.replication(),
                to: new.value.replication(),
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
                if old.value.is_ready() != new.value.is_ready() {
                    out.push(Change::Ready {
                        copy: new.key.clone(),
                        ready: new.value.is_ready(),
                    });
                }
                if new.value.is_releasing() && !old.value.is_releasing() {
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
