//! What each member serves, judged from its application's events: the serving rule, written
//! once for every judge of it (the simulation's checks, the demo's ledger, the tests).
//!
//! A member serves an item from [`Event::Assigned`] until [`Event::ReleaseRequested`] (it
//! stops before it releases), [`Event::Revoked`] or [`Event::Fenced`] (which ends
//! everything); after [`Event::Unfenced`], `Assigned` is replayed for what it still holds,
//! so serving is rebuilt from the replay alone. A process that ends ([`Serving::stop`])
//! serves nothing; one that is stopped ([`Serving::pause`]) serves nothing while stopped,
//! and on resuming serves again what its events say it holds, including events that
//! arrived meanwhile.
//!
//! The store alone cannot show that an exclusive item has at most one owner: an owner may
//! still serve after its assignment is gone (until it hears so). What counts is what the
//! applications do, so the rule is checked on their events: [`Serving`] reports an
//! [`Overlap`] whenever a member starts serving an exclusive item another member serves.

use std::collections::BTreeMap;
use std::fmt;

use apportion_core::keys::{ItemId, Slot};

use crate::events::Event;

/// Who serves what, by member name; see the module documentation.
pub struct Serving {
    /// Which items are exclusive.
    exclusive: Box<dyn Fn(&ItemId) -> bool + Send + Sync>,
    members: BTreeMap<String, Server>,
}

/// One member's side.
struct Server {
    /// What its events say it holds, and in which slot.
    held: BTreeMap<ItemId, Slot>,
    /// False while its process is stopped.
    running: bool,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            held: BTreeMap::new(),
            running: true,
        }
    }
}

impl Server {
    fn serves(&self, item: &ItemId) -> bool {
        self.running && self.held.contains_key(item)
    }
}

/// A member started serving an exclusive item while others served it: the one rule the
/// library must never let an application break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlap {
    /// The member that started.
    pub member: String,
    /// The exclusive item.
    pub item: ItemId,
    /// The members that served it already.
    pub others: Vec<String>,
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} started serving exclusive item {} while {} still served it",
            self.member,
            self.item,
            self.others.join(", ")
        )
    }
}

impl Serving {
    /// Nobody serves anything yet; `exclusive` says which items may have one owner only.
    pub fn new(exclusive: impl Fn(&ItemId) -> bool + Send + Sync + 'static) -> Self {
        Serving {
            exclusive: Box::new(exclusive),
            members: BTreeMap::new(),
        }
    }

    /// Applies one event of `member`'s stream, in the order its application took it;
    /// returns the overlap if it started serving an exclusive item another member serves.
    pub fn event(&mut self, member: &str, event: &Event) -> Option<Overlap> {
        let server = self.members.entry(member.to_string()).or_default();
        match event {
            Event::Assigned { item, slot } => {
                server.held.insert(item.clone(), *slot);
                if server.running {
                    return self.overlap(member, item);
                }
            }
            Event::PrimaryGained { item, slot } | Event::PrimaryLost { item, slot } => {
                if let Some(held) = server.held.get_mut(item) {
                    *held = *slot;
                }
            }
            Event::ReleaseRequested { item } | Event::Revoked { item } => {
                server.held.remove(item);
            }
            Event::Fenced => server.held.clear(),
            _ => {}
        }
        None
    }

    /// `member`'s process is stopped (SIGSTOP): it serves nothing until it resumes, though
    /// its events still arrive.
    pub fn pause(&mut self, member: &str) {
        self.members.entry(member.to_string()).or_default().running = false;
    }

    /// `member`'s process goes on: it serves again what its events say it holds; returns
    /// the overlaps that this starts.
    pub fn resume(&mut self, member: &str) -> Vec<Overlap> {
        let server = self.members.entry(member.to_string()).or_default();
        server.running = true;
        let held: Vec<ItemId> = server.held.keys().cloned().collect();
        held.iter()
            .filter_map(|item| self.overlap(member, item))
            .collect()
    }

    /// `member`'s process ended (a crash, or it left): it serves nothing, and a process
    /// started under the same name starts afresh.
    pub fn stop(&mut self, member: &str) {
        self.members.remove(member);
    }

    /// What `member` serves now, with the slot of each copy (empty for an unknown member).
    pub fn served_by(&self, member: &str) -> Vec<(ItemId, Slot)> {
        self.members
            .get(member)
            .filter(|s| s.running)
            .map(|s| s.held.iter().map(|(i, s)| (i.clone(), *s)).collect())
            .unwrap_or_default()
    }

    /// The overlap, if `item` is exclusive and members other than `member` serve it.
    fn overlap(&self, member: &str, item: &ItemId) -> Option<Overlap> {
        if !(self.exclusive)(item) {
            return None;
        }
        let others: Vec<String> = self
            .members
            .iter()
            .filter(|(name, server)| name.as_str() != member && server.serves(item))
            .map(|(name, _)| name.clone())
            .collect();
        (!others.is_empty()).then(|| Overlap {
            member: member.to_string(),
            item: item.clone(),
            others,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(item: &str) -> ItemId {
        ItemId::new(item).unwrap()
    }

    fn assigned(item: &str, slot: u16) -> Event {
        Event::Assigned {
            item: id(item),
            slot: Slot(slot),
        }
    }

    fn serving() -> Serving {
        Serving::new(|item| item.as_str().starts_with('x'))
    }

    #[test]
    fn a_second_owner_is_caught_and_a_handover_is_not() {
        let mut serving = serving();
        assert_eq!(serving.event("a", &assigned("x1", 0)), None);
        let overlap = serving.event("b", &assigned("x1", 0)).unwrap();
        assert_eq!(
            overlap.to_string(),
            "b started serving exclusive item x1 while a still served it"
        );
        serving.event("b", &Event::ReleaseRequested { item: id("x1") });
        serving.event("a", &Event::Revoked { item: id("x1") });
        assert_eq!(serving.event("b", &assigned("x1", 0)), None);
        // Replicated items may have many servers.
        assert_eq!(serving.event("a", &assigned("r1", 0)), None);
        assert_eq!(serving.event("b", &assigned("r1", 1)), None);
    }

    #[test]
    fn fencing_and_the_end_of_a_process_stop_everything() {
        let mut serving = serving();
        serving.event("a", &assigned("x1", 0));
        serving.event("a", &Event::Fenced);
        assert!(serving.served_by("a").is_empty());
        assert_eq!(serving.event("b", &assigned("x1", 0)), None);
        serving.stop("b");
        assert_eq!(serving.event("c", &assigned("x1", 0)), None);
        // The replay after Unfenced serves again what is still held.
        serving.event("a", &Event::Unfenced);
        assert!(serving.event("a", &assigned("x1", 0)).is_some());
    }

    #[test]
    fn the_slot_follows_primary_moves() {
        let mut serving = serving();
        serving.event("a", &assigned("r1", 1));
        let gained = Event::PrimaryGained {
            item: id("r1"),
            slot: Slot(0),
        };
        serving.event("a", &gained);
        assert_eq!(serving.served_by("a"), [(id("r1"), Slot(0))]);
    }

    #[test]
    fn a_paused_member_serves_nothing_until_it_resumes() {
        let mut serving = serving();
        serving.event("a", &assigned("x1", 0));
        serving.pause("a");
        assert!(serving.served_by("a").is_empty());
        assert_eq!(serving.event("b", &assigned("x1", 0)), None);
        // Resuming with x1 still held while b serves it is an overlap...
        assert_eq!(serving.resume("a").len(), 1);
        // ...unless a was fenced meanwhile.
        serving.pause("a");
        serving.event("a", &Event::Fenced);
        assert!(serving.resume("a").is_empty());
    }
}
