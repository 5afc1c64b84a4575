//! Who serves what, judged from the members' own event streams by the library's serving
//! rule ([`testing::Serving`]), and the two rules about it: an exclusive item is never
//! served by two members at once, and a member serves nothing once its lease can have
//! expired. This module only says what each [`Happening`] of the simulation is to that
//! rule: a crash, a departure or a new session ends everything; a paused process serves
//! nothing while it is stopped, and on resuming serves again what its events say it holds.

use apportion::testing;
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
    /// The member left to restart (it starts again later, `Joined`).
    LeftToRestart,
    /// The session ended on its own (its lease was lost, or it could not start).
    Ended(String),
}

/// The serving state of every member.
pub struct Serving(testing::Serving);

impl Default for Serving {
    fn default() -> Self {
        Serving(testing::Serving::new(|item| is_exclusive(item.as_str())))
    }
}

impl Serving {
    /// Applies what happened to `member`; returns a description of each exclusive item it
    /// started serving while another member served it too.
    pub fn apply(&mut self, member: &str, happening: &Happening) -> Vec<String> {
        let overlaps = match happening {
            Happening::Event(event) => self.0.event(member, event).into_iter().collect(),
            Happening::Paused => {
                self.0.pause(member);
                Vec::new()
            }
            Happening::Resumed => self.0.resume(member),
            Happening::Joined
            | Happening::Crashed
            | Happening::Left
            | Happening::LeftToRestart
            | Happening::Ended(_) => {
                self.0.stop(member);
                Vec::new()
            }
        };
        overlaps.iter().map(ToString::to_string).collect()
    }

    /// What `member` serves now (empty for an unknown member).
    pub fn served_by(&self, member: &str) -> Vec<String> {
        let served = self.0.served_by(member);
        served
            .into_iter()
            .map(|(item, _)| item.to_string())
            .collect()
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

    /// A restart ends the old process's serving: the item may go to another member while
    /// it is away, and it serves again only what its new session is assigned.
    #[test]
    fn a_member_away_for_a_restart_serves_nothing_until_assigned_again() {
        let mut serving = Serving::default();
        for m in ["a", "b"] {
            serving.apply(m, &Happening::Joined);
        }
        serving.apply("a", &assigned("x1"));
        serving.apply("a", &Happening::LeftToRestart);
        assert!(serving.served_by("a").is_empty());
        assert!(serving.apply("b", &assigned("x1")).is_empty());
        serving.apply("a", &Happening::Joined);
        assert_eq!(serving.apply("a", &assigned("x1")).len(), 1);
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
