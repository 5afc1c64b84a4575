//! What a member is told about its own assignments ([`Event`], where the contract is), and
//! how that is derived from two successive views: a pure diff, keyed by item.
//!
//! How a re-created assignment is recognised although views skip states: the leader copies
//! an assignment's value when it only changes its slot, so a key created since the last
//! view whose value lost the release request or the ready mark is a new assignment.

use std::collections::BTreeMap;

use apportion_core::keys::{ItemId, Slot};
use apportion_core::state::State;
use apportion_core::values::AssignmentValue;

/// Something the local member must act on, from [`Member::next_event`](crate::Member::next_event).
///
/// # Serving
///
/// An item is served from [`Assigned`](Event::Assigned) until
/// [`ReleaseRequested`](Event::ReleaseRequested), [`Revoked`](Event::Revoked) or
/// [`Fenced`](Event::Fenced), whichever comes first. Nothing else starts or stops serving;
/// [`PrimaryGained`](Event::PrimaryGained) and [`PrimaryLost`](Event::PrimaryLost) change
/// only the role of a copy being served.
///
/// # Order and what each event promises
///
/// - Events come in the order the member saw the changes, per item: an item is `Assigned`
///   before anything else is said of it, and nothing is said of it after `Revoked` until
///   it is `Assigned` again.
/// - `Assigned` means a new assignment, which starts out not ready: report it ready again
///   ([`Member::mark_ready`](crate::Member::mark_ready)), even for an item served a moment
///   ago. The member sees the store in bursts and can miss a state in between, so an
///   assignment removed and created anew (released, then given back; removed while ready,
///   then added here again) is told as `Revoked` then `Assigned`, never as nothing.
///   A copy that only moves to another slot of the same member keeps its status and is
///   told only if it crosses slot 0 (`PrimaryGained`, `PrimaryLost`).
/// - `ReleaseRequested` comes for exclusive items only (one owner at a time): stop
///   serving, then call [`Member::release`](crate::Member::release); the next owner is
///   assigned once the old one has let go (or its lease has expired).
/// - `Fenced` comes when lease renewals go unacknowledged, before the lease could expire
///   (the fence margin of [`MemberConfig`](crate::MemberConfig) before): stop serving
///   everything at once, the store may soon hand the items to others. Nothing is said of
///   items while fenced (only `Drained` may come). `Unfenced` comes when renewals are
///   acknowledged again, followed by a replay, `Assigned` (and `ReleaseRequested`) for
///   everything the member still holds, so serving is rebuilt from the replay alone: an
///   item lost meanwhile is simply not in it.
/// - `Drained` comes once the member is draining
///   ([`Member::begin_drain`](crate::Member::begin_drain)) and holds nothing: call
///   [`Member::leave`](crate::Member::leave).
/// - `ReadyToRestart` comes once the member is restarting
///   ([`Member::begin_restart`](crate::Member::begin_restart)) and holds only replicas
///   that will wait for it: stop serving, then call
///   [`Member::leave_for_restart`](crate::Member::leave_for_restart).
///
/// New kinds of events may be added: match them with a `_` arm that ignores them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Start serving `item` in `slot`; slot 0 means as its primary. Report it ready once
    /// it is served.
    Assigned {
        /// The item.
        item: ItemId,
        /// The slot; 0 is the primary.
        slot: Slot,
    },
    /// This member's copy of `item` became the primary (it moved to slot 0).
    PrimaryGained {
        /// The item.
        item: ItemId,
        /// The slot the copy is in now: 0.
        slot: Slot,
    },
    /// This member's copy of `item` is no longer the primary (it moved out of slot 0).
    PrimaryLost {
        /// The item.
        item: ItemId,
        /// The replica slot the copy is in now.
        slot: Slot,
    },
    /// The leader wants this exclusive item elsewhere: stop serving it, then call
    /// [`Member::release`](crate::Member::release) to let the next owner start.
    ReleaseRequested {
        /// The item.
        item: ItemId,
    },
    /// Stop serving `item`: it is no longer assigned here.
    Revoked {
        /// The item.
        item: ItemId,
    },
    /// Lease renewals are not being acknowledged: stop serving everything now, before the
    /// store could hand the items to other members.
    Fenced,
    /// The member is exiting and holds nothing any more: call
    /// [`Member::leave`](crate::Member::leave).
    Drained,
    /// The member is restarting, handed its primaries and exclusive items over, and holds
    /// only replicas the leader keeps for it while it is away: stop serving, then call
    /// [`Member::leave_for_restart`](crate::Member::leave_for_restart).
    ReadyToRestart,
    /// Renewals are acknowledged again. `Assigned` (and `ReleaseRequested`) events follow for
    /// everything the member still holds, so serving can be rebuilt from them.
    Unfenced,
}

/// What the member holds of one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Holding {
    slot: Slot,
    releasing: bool,
    ready: bool,
    /// The assignment key's create revision: which assignment this is.
    created: i64,
}

impl Holding {
    /// Whether `now` is a new assignment replacing this one (see the module docs).
    fn replaced_by(&self, now: &Holding) -> bool {
        now.created != self.created
            && ((self.releasing && !now.releasing) || (self.ready && !now.ready))
    }
}

/// Everything the member holds, by item.
pub(crate) type Held = BTreeMap<ItemId, Holding>;

/// The local member's holdings in `state` (the lowest slot where it holds one item twice).
pub(crate) fn held<I, M, A: AssignmentValue>(state: &State<I, M, A>) -> Held {
    let mut held = Held::new();
    for local in state.local_assignments() {
        let holding = Holding {
            slot: local.assignment.key.slot,
            releasing: local.assignment.value.is_releasing(),
            ready: local.assignment.value.is_ready(),
            created: local.assignment.meta.create_revision,
        };
        held.entry(local.item.key.clone())
            .and_modify(|h| {
                if holding.slot < h.slot {
                    *h = holding;
                }
            })
            .or_insert(holding);
    }
    held
}

/// The events that lead from `before` to `after`.
pub(crate) fn diff(before: &Held, after: &Held, out: &mut Vec<Event>) {
    for (item, now) in after {
        match before.get(item) {
            None => announce(item, now, out),
            Some(was) if was.replaced_by(now) => {
                out.push(Event::Revoked { item: item.clone() });
                announce(item, now, out);
            }
            Some(was) => {
                let item = item.clone();
                let slot = now.slot;
                match (was.slot.is_primary(), slot.is_primary()) {
                    (false, true) => out.push(Event::PrimaryGained {
                        item: item.clone(),
                        slot,
                    }),
                    (true, false) => out.push(Event::PrimaryLost {
                        item: item.clone(),
                        slot,
                    }),
                    _ => {}
                }
                if now.releasing && !was.releasing {
                    out.push(Event::ReleaseRequested { item });
                }
            }
        }
    }
    for item in before.keys().filter(|item| !after.contains_key(*item)) {
        out.push(Event::Revoked { item: item.clone() });
    }
}

/// The events that describe `held` from scratch (after fencing ends).
pub(crate) fn replay(held: &Held, out: &mut Vec<Event>) {
    for (item, holding) in held {
        announce(item, holding, out);
    }
}

fn announce(item: &ItemId, holding: &Holding, out: &mut Vec<Event>) {
    out.push(Event::Assigned {
        item: item.clone(),
        slot: holding.slot,
    });
    if holding.releasing {
        out.push(Event::ReleaseRequested { item: item.clone() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(list: &[(&str, u16, bool)]) -> Held {
        list.iter()
            .map(|(item, slot, releasing)| {
                let holding = Holding {
                    slot: Slot(*slot),
                    releasing: *releasing,
                    ready: true,
                    created: 1,
                };
                (ItemId::new(item).unwrap(), holding)
            })
            .collect()
    }

    fn events(before: &[(&str, u16, bool)], after: &[(&str, u16, bool)]) -> Vec<String> {
        let mut out = Vec::new();
        diff(&held(before), &held(after), &mut out);
        out.iter().map(|e| format!("{e:?}")).collect()
    }

    #[test]
    fn new_items_are_assigned_and_gone_ones_revoked() {
        assert_eq!(
            events(&[("a", 1, false)], &[("b", 0, false)]),
            [
                r#"Assigned { item: ItemId("b"), slot: Slot(0) }"#,
                r#"Revoked { item: ItemId("a") }"#
            ]
        );
    }

    #[test]
    fn only_crossing_slot_zero_is_news() {
        assert_eq!(
            events(&[("a", 2, false)], &[("a", 1, false)]),
            Vec::<String>::new()
        );
        assert_eq!(
            events(&[("a", 1, false)], &[("a", 0, false)]),
            [r#"PrimaryGained { item: ItemId("a"), slot: Slot(0) }"#]
        );
        assert_eq!(
            events(&[("a", 0, false)], &[("a", 1, false)]),
            [r#"PrimaryLost { item: ItemId("a"), slot: Slot(1) }"#]
        );
    }

    #[test]
    fn a_release_request_is_told_once() {
        assert_eq!(
            events(&[("a", 0, false)], &[("a", 0, true)]),
            [r#"ReleaseRequested { item: ItemId("a") }"#]
        );
        assert_eq!(
            events(&[("a", 0, true)], &[("a", 0, true)]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn an_assignment_created_anew_between_two_views_is_revoked_then_assigned() {
        let item = ItemId::new("a").unwrap();
        let holding = |releasing, ready, created| Holding {
            slot: Slot(0),
            releasing,
            ready,
            created,
        };
        let diff_of = |was: Holding, now: Holding| {
            let mut out = Vec::new();
            let before = Held::from([(item.clone(), was)]);
            diff(&before, &Held::from([(item.clone(), now)]), &mut out);
            out
        };
        let again = vec![
            Event::Revoked { item: item.clone() },
            Event::Assigned {
                item: item.clone(),
                slot: Slot(0),
            },
        ];
        // Released, then assigned here again.
        assert_eq!(
            diff_of(holding(true, true, 1), holding(false, false, 5)),
            again
        );
        // Removed while ready, then added here again.
        assert_eq!(
            diff_of(holding(false, true, 1), holding(false, false, 5)),
            again
        );
        // Moved to another slot: the value is copied, so nothing happened.
        assert_eq!(
            diff_of(holding(false, true, 1), holding(false, true, 5)),
            []
        );
        // The member itself marked it not ready: same key, nothing to tell.
        assert_eq!(
            diff_of(holding(false, true, 1), holding(false, false, 1)),
            []
        );
    }

    #[test]
    fn a_replay_describes_everything_held() {
        let mut out = Vec::new();
        replay(&held(&[("a", 0, false), ("b", 1, true)]), &mut out);
        assert_eq!(out.len(), 3);
        assert!(matches!(out[2], Event::ReleaseRequested { .. }));
    }
}
