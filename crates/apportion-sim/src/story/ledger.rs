//! What the members' event streams say, as the story's applications hear it: whether an
//! exclusive item ever had two owners at once, how many replicas and primaries changed
//! hands, and anything that went wrong on the way.
//!
//! The store alone cannot prove "at most one owner of an exclusive item"; what counts is
//! what the applications do, so the ledger follows their events through the library's
//! serving rule ([`Serving`]).
//!
//! Moves are counted the same way, as the handoffs the applications performed: a member
//! newly assigned an item (not one replayed after fencing ends) either gets back a copy it
//! held before (when the phase began, or when it last left to come back: **returned**) or
//! takes on a **replica move** (a **handover** for an exclusive item, which has an owner
//! rather than replicas and changes hands whenever its owner leaves, however it leaves); a
//! primary move is a member becoming an item's primary.
//! Comparing two snapshots instead would miss every move that a later one undid, as in a
//! rolling restart that drains each member.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use apportion::testing::Serving;
use apportion::{Event, ItemId};

/// The running record; see the module documentation.
pub struct Ledger {
    /// Who serves what, and whether an exclusive item has two owners.
    serving: Serving,
    /// The exclusive items: their new owners are handovers, not replica moves.
    exclusive: BTreeSet<String>,
    /// Per member, the items it holds (kept through fencing, so replays are not moves).
    held: BTreeMap<String, BTreeSet<String>>,
    /// Per member, the items it held when the phase began or when it last left to come
    /// back: one of them assigned to it again is returned, not moved.
    before: BTreeMap<String, BTreeSet<String>>,
    /// The figures since they were last taken.
    figures: Figures,
    /// The problems since they were last taken.
    problems: Vec<String>,
}

/// How the applications' holdings changed during one phase, as they heard it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// How many times a member was fenced.
    pub fenced: u32,
    /// Replicas newly assigned to a member that did not hold them before (see the module
    /// documentation).
    pub replica_moves: u32,
    /// Exclusive items newly assigned to a member that did not hold them before.
    pub handovers: u32,
    /// Replicas assigned again to a member that held them before: a restarted member's
    /// items coming back to it, or a drained one's it happens to be given again.
    pub returned: u32,
    /// Times a member became an item's primary.
    pub primary_moves: u32,
}

impl Ledger {
    /// A ledger that watches the owners of the `exclusive` items.
    pub fn new(exclusive: BTreeSet<String>) -> Self {
        let watched = exclusive.clone();
        Ledger {
            serving: Serving::new(move |item: &ItemId| watched.contains(item.as_str())),
            exclusive,
            held: BTreeMap::new(),
            before: BTreeMap::new(),
            figures: Figures::default(),
            problems: Vec::new(),
        }
    }

    /// Records one event of `member`'s stream.
    pub fn record(&mut self, member: &str, event: &Event) {
        if let Some(overlap) = self.serving.event(member, event) {
            self.problems.push(overlap.to_string());
        }
        match event {
            Event::Assigned { item, slot } => {
                let held = self.held.entry(member.to_string()).or_default();
                if held.insert(item.to_string()) {
                    let before = self.before.get(member);
                    if before.is_some_and(|items| items.contains(item.as_str())) {
                        self.figures.returned += 1;
                    } else if self.exclusive.contains(item.as_str()) {
                        self.figures.handovers += 1;
                    } else {
                        self.figures.replica_moves += 1;
                    }
                    self.figures.primary_moves += u32::from(slot.is_primary());
                }
            }
            Event::PrimaryGained { .. } => self.figures.primary_moves += 1,
            Event::Revoked { item } => {
                if let Some(held) = self.held.get_mut(member) {
                    held.remove(item.as_str());
                }
            }
            Event::Fenced => self.figures.fenced += 1,
            _ => {}
        }
    }

    /// A phase begins: what each member holds now is what it held before, for the moves
    /// counted from here on.
    pub fn begin(&mut self) {
        self.before = self.held.clone();
    }

    /// `member`'s process is gone: it serves and holds nothing any more.
    pub fn stopped(&mut self, member: &str) {
        self.serving.stop(member);
        self.held.remove(member);
    }

    /// `member`'s process left to come back (a restart): it serves and holds nothing any
    /// more, and what it held is what it held before, so that the same items given back to
    /// it are not counted as moves.
    pub fn left(&mut self, member: &str) {
        self.serving.stop(member);
        let held = self.held.remove(member).unwrap_or_default();
        self.before
            .entry(member.to_string())
            .or_default()
            .extend(held);
    }

    /// Notes a problem that is not an event (a member's session ended by itself).
    pub fn problem(&mut self, text: String) {
        self.problems.push(text);
    }

    /// The figures and the problems since the last call.
    pub fn take(&mut self) -> (Figures, Vec<String>) {
        let figures = std::mem::take(&mut self.figures);
        (figures, std::mem::take(&mut self.problems))
    }
}

/// Locks the ledger, whether or not another task panicked while holding it (the record
/// stays usable: every update is a single push or retain).
pub fn lock(ledger: &Mutex<Ledger>) -> MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use apportion::core::keys::{ItemId, Slot};

    fn assigned(item: &str) -> Event {
        Event::Assigned {
            item: ItemId::new(item).unwrap(),
            slot: Slot(0),
        }
    }

    fn ledger() -> Ledger {
        Ledger::new(["x".to_string()].into())
    }

    #[test]
    fn a_second_owner_while_the_first_serves_is_a_problem() {
        let mut ledger = ledger();
        ledger.record("a#1", &assigned("x"));
        ledger.record("b#1", &assigned("x"));
        assert_eq!(
            ledger.take().1,
            ["b#1 started serving exclusive item x while a#1 still served it"]
        );
    }

    #[test]
    fn a_handoff_after_release_crash_or_fencing_is_fine() {
        let mut ledger = ledger();
        let x = ItemId::new("x").unwrap();
        ledger.record("a#1", &assigned("x"));
        ledger.record("a#1", &Event::ReleaseRequested { item: x.clone() });
        ledger.record("b#1", &assigned("x"));
        ledger.stopped("b#1");
        ledger.record("c#1", &assigned("x"));
        ledger.record("c#1", &Event::Fenced);
        ledger.record("a#1", &assigned("x"));
        let (figures, problems) = ledger.take();
        assert_eq!((problems, figures.fenced), (vec![], 1));
    }

    #[test]
    fn replicated_items_may_have_many_servers() {
        let mut ledger = ledger();
        ledger.record("a#1", &assigned("r"));
        ledger.record("b#1", &assigned("r"));
        assert!(ledger.take().1.is_empty());
    }

    #[test]
    fn moves_are_new_assignments_and_primaries_gained_not_replays() {
        let mut ledger = ledger();
        let r = ItemId::new("r").unwrap();
        ledger.record("a#1", &assigned("r"));
        ledger.record(
            "b#1",
            &Event::Assigned {
                item: r.clone(),
                slot: Slot(1),
            },
        );
        ledger.record("b#1", &Event::Fenced);
        ledger.record("b#1", &Event::Unfenced);
        ledger.record(
            "b#1",
            &Event::Assigned {
                item: r.clone(),
                slot: Slot(1),
            },
        );
        let gained = Event::PrimaryGained {
            item: r.clone(),
            slot: Slot(0),
        };
        ledger.record("b#1", &gained);
        ledger.record("a#1", &Event::Revoked { item: r.clone() });
        ledger.record("a#1", &assigned("r"));
        let (figures, _) = ledger.take();
        assert_eq!((figures.replica_moves, figures.primary_moves), (3, 3));
        assert_eq!(ledger.take(), (Figures::default(), vec![]));
    }

    #[test]
    fn items_given_back_to_who_held_them_before_are_returned_not_moved() {
        let mut ledger = ledger();
        ledger.record("a#1", &assigned("r"));
        ledger.record("a#1", &assigned("s"));
        ledger.take();
        ledger.begin();
        // A restart: a#1 leaves holding r and s and gets them back; b#1 takes t.
        ledger.left("a#1");
        ledger.record("a#1", &assigned("r"));
        ledger.record("a#1", &assigned("s"));
        ledger.record("b#1", &assigned("t"));
        // A drain: a#1 lets go of r, and a new copy of it on c#1 is a move.
        let r = ItemId::new("r").unwrap();
        ledger.record("a#1", &Event::Revoked { item: r });
        ledger.record("c#1", &assigned("r"));
        // The exclusive x changes hands.
        ledger.record("b#1", &assigned("x"));
        let (figures, _) = ledger.take();
        assert_eq!((figures.returned, figures.replica_moves), (2, 2));
        assert_eq!(figures.handovers, 1);
    }
}
