//! Who serves what, judged from the members' own event streams, and the two rules about it:
//! an exclusive item is never served by two members at once, and a member serves nothing
//! once its lease can have expired.
//!
//! A member serves an item from `Assigned` until `ReleaseRequested`, `Revoked` or `Fenced`
//! (after `Unfenced`, `Assigned` is replayed for what it still holds). A crash ends
//! everything; a paused process serves nothing while it is stopped, and on resuming serves
//! again what its events say it holds, including events that arrived meanwhile (a `Fenced`
//! among them clears everything).

use std::collections::{BTreeMap, BTreeSet};

use apportion::Event;

use crate::plan::is_exclusive;

/// What happened to a member, as its application saw it: its events, and the faults the
/// simulation inflicted on its process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Happening {
    /// The member started (its key is announced).
    Joined,
    /// An event from the library.
    Event(Event),
    /// The process stopped (SIGSTOP).
    Paused,
    /// The process went on (SIGCONT).
    Resumed,
    /// The process died.
    Crashed,
    /// The member left after draining.
    Left,
    /// The session ended on its own (its lease was lost, or it could not start).
    Ended(String),
}

/// One member's side.
#[derive(Default)]
struct Holder {
    /// What its events say it holds and may serve.
    held: BTreeSet<String>,
    /// False while the process is stopped or dead.
    running: bool,
}

impl Holder {
    fn serves(&self, item: &str) -> bool {
        self.running && self.held.contains(item)
    }
}

/// The serving state of every member.
#[derive(Default)]
pub struct Serving {
    members: BTreeMap<String, Holder>,
}

impl Serving {
    /// Applies what happened to `member`; returns a description of each exclusive item it
    /// started serving while another member served it too.
    pub fn apply(&mut self, member: &str, happening: &Happening) -> Vec<String> {
        let mut started = Vec::new();
        let holder = self.members.entry(member.to_string()).or_default();
        match happening {
            Happening::Joined => {
                *holder = Holder {
                    held: BTreeSet::new(),
                    running: true,
                }
            }
            Happening::Event(Event::Assigned { item, .. }) => {
                holder.held.insert(item.to_string());
                if holder.running {
                    started.push(item.to_string());
                }
            }
            Happening::Event(Event::ReleaseRequested { item } | Event::Revoked { item }) => {
                holder.held.remove(item.as_str());
            }
            Happening::Event(Event::Fenced) => holder.held.clear(),
            Happening::Event(_) => {}
            Happening::Paused => holder.running = false,
            Happening::Resumed => {
                holder.running = true;
                started.extend(holder.held.iter().cloned());
            }
            Happening::Crashed | Happening::Left | Happening::Ended(_) => {
                *holder = Holder::default();
            }
        }
        started
            .into_iter()
            .filter(|item| is_exclusive(item))
            .filter_map(|item| {
                let others: Vec<&String> = self
                    .members
                    .iter()
                    .filter(|(name, h)| name.as_str() != member && h.serves(&item))
                    .map(|(name, _)| name)
                    .collect();
                (!others.is_empty()).then(|| {
                    format!(
                        "{member} started serving exclusive item {item} while {others:?} served it"
                    )
                })
            })
            .collect()
    }

    /// What `member` serves now (empty for an unknown member).
    pub fn served_by(&self, member: &str) -> Vec<String> {
        self.members
            .get(member)
            .filter(|h| h.running)
            .map(|h| h.held.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apportion::core::keys::{ItemId, Slot};

    fn assigned(item: &str) -> Happening {
        Happening::Event(Event::Assigned {
            item: ItemId::new(item).unwrap(),
            slot: Slot(0),
        })
    }

    fn released(item: &str) -> Happening {
        Happening::Event(Event::ReleaseRequested {
            item: ItemId::new(item).unwrap(),
        })
    }

    #[test]
    fn a_second_owner_is_caught_and_a_handover_is_not() {
        let mut serving = Serving::default();
        for m in ["a", "b"] {
            serving.apply(m, &Happening::Joined);
        }
        assert!(serving.apply("a", &assigned("x1")).is_empty());
        assert_eq!(serving.apply("b", &assigned("x1")).len(), 1);
        serving.apply("b", &released("x1"));
        serving.apply("a", &released("x1"));
        assert!(serving.apply("b", &assigned("x1")).is_empty());
        // Replicated items may have many servers.
        assert!(serving.apply("a", &assigned("r1")).is_empty());
        assert!(serving.apply("b", &assigned("r1")).is_empty());
    }

    #[test]
    fn a_paused_member_serves_nothing_until_it_resumes() {
        let mut serving = Serving::default();
        for m in ["a", "b"] {
            serving.apply(m, &Happening::Joined);
        }
        serving.apply("a", &assigned("x1"));
        serving.apply("a", &Happening::Paused);
        assert!(serving.served_by("a").is_empty());
        assert!(serving.apply("b", &assigned("x1")).is_empty());
        // Resuming with x1 still held while b serves it is a conflict...
        assert_eq!(serving.apply("a", &Happening::Resumed).len(), 1);
        // ...unless a was fenced meanwhile.
        serving.apply("a", &Happening::Paused);
        serving.apply("a", &Happening::Event(Event::Fenced));
        assert!(serving.apply("a", &Happening::Resumed).is_empty());
    }
}
