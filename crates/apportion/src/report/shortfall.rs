//! Why an item has fewer copies than it wants, or copies not ready: the reasons an
//! operator needs before anything else when an item is short (`apportion items show`), and
//! an alert would carry.
//!
//! The reasons are derived from the same state the leader plans from, with the rules it
//! plans by (how many copies an item wants, which members can take one, zones that can take
//! copies, break-before-make for exclusive items), so they say what the allocator is
//! waiting for, not a guess from the counts alone.

use std::fmt;

use apportion_core::state::State;
use apportion_core::values::{AssignmentValue, ItemValue, MemberValue};

/// `n` copies, in words: "1 copy", "2 copies".
fn copies(n: usize) -> String {
    if n == 1 {
        "1 copy".to_owned()
    } else {
        format!("{n} copies")
    }
}

/// One reason an item has fewer copies than it wants, or copies not ready yet; it displays
/// as the sentence `apportion items show` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shortfall {
    /// No member is registered: nothing can hold a copy.
    NoMembers,
    /// Every member is exiting or has an item limit of 0.
    NoCapacity,
    /// Fewer members could take a copy than copies are missing.
    NoRoom {
        /// Members not exiting, with a positive limit, below it, not holding the item.
        with_room: usize,
        /// Copies wanted but not held.
        missing: usize,
    },
    /// Fewer zones can take copies than copies are wanted, so they cannot all be spread
    /// over different zones (the solver gives up spread before it gives up a copy).
    FewZones {
        /// Zones with a member that can take copies.
        zones: usize,
        /// Copies wanted.
        wanted: usize,
    },
    /// An exclusive item's owner was asked to let go; the next owner is assigned once it
    /// has (or its lease has expired).
    Releasing {
        /// The members releasing it.
        owners: Vec<String>,
    },
    /// An exclusive item still has an assignment on a member no longer registered; the
    /// next owner is assigned once it goes with that member's lease.
    LeftBehind {
        /// The members no longer registered.
        members: Vec<String>,
    },
    /// Copies not ready yet: the leader waits for them before it moves a primary or drops
    /// an old copy.
    NotReady {
        /// How many.
        count: usize,
    },
    /// Nothing in the state keeps copies from being placed: the leader has not placed
    /// them yet.
    Pending,
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shortfall::NoMembers => f.write_str("no member is registered under the prefix"),
            Shortfall::NoCapacity => {
                f.write_str("every member is exiting or has item limit 0: none can take a copy")
            }
            Shortfall::NoRoom { with_room, missing } => write!(
                f,
                "{} missing but {} can take one (not exiting, below its item limit, \
                 not already holding the item)",
                copies(*missing),
                match with_room {
                    0 => "no member".to_owned(),
                    1 => "only 1 member".to_owned(),
                    n => format!("only {n} members"),
                }
            ),
            Shortfall::FewZones { zones, wanted } => write!(
                f,
                "{} can take copies, for {wanted} wanted: they cannot all be in \
                 different zones",
                match zones {
                    1 => "only 1 zone".to_owned(),
                    n => format!("only {n} zones"),
                }
            ),
            Shortfall::Releasing { owners } => write!(
                f,
                "exclusive: waiting for {} to release it; the next owner is assigned once \
                 it has let go or its lease has expired",
                owners.join(", ")
            ),
            Shortfall::LeftBehind { members } => write!(
                f,
                "exclusive: an assignment on {} (no longer registered) must go with its \
                 lease before the next owner is assigned",
                members.join(", ")
            ),
            Shortfall::NotReady { count } => write!(
                f,
                "{} not ready yet: waiting for consistency (the leader moves a primary or \
                 drops an old copy only once the new one is ready)",
                copies(*count)
            ),
            Shortfall::Pending => f.write_str(
                "members have room: the leader has not placed the missing copies yet \
                 (is a member running? see `apportion status`)",
            ),
        }
    }
}

/// Why item `index` of `state` has fewer copies than it wants
/// ([`ItemValue::copies_wanted`]; copies being released do not count), or copies not
/// ready; empty when it has them all, all ready.
pub fn shortfall<I: ItemValue, M: MemberValue, A: AssignmentValue>(
    state: &State<I, M, A>,
    index: usize,
) -> Vec<Shortfall> {
    let item = &state.items()[index];
    let wanted = usize::from(item.value.copies_wanted());
    let range = state.item_assignment_range(index);
    let copies = &state.assignments()[range.clone()];
    let mut reasons = Vec::new();
    let serving = copies.iter().filter(|c| !c.value.is_releasing()).count();
    if serving < wanted {
        let owners: Vec<String> = copies
            .iter()
            .filter(|c| c.value.is_releasing())
            .map(|c| c.key.member.to_string())
            .collect();
        if !owners.is_empty() {
            reasons.push(Shortfall::Releasing { owners });
        }
        let left: Vec<String> = state
            .dangling()
            .iter()
            .filter(|a| item.value.is_exclusive() && a.key.item == item.key)
            .map(|a| a.key.member.to_string())
            .collect();
        if !left.is_empty() {
            reasons.push(Shortfall::LeftBehind { members: left });
        }
        let holders: Vec<usize> = range.filter_map(|a| state.assignment_member(a)).collect();
        if state.members().is_empty() {
            reasons.push(Shortfall::NoMembers);
        } else if state.zones().is_empty() {
            reasons.push(Shortfall::NoCapacity);
        } else {
            let with_room = (0..state.members().len())
                .filter(|&m| {
                    let member = &state.members()[m].value;
                    !member.is_exiting()
                        && state.member_assignment_count(m) < member.item_limit()
                        && !holders.contains(&m)
                })
                .count();
            let missing = wanted - serving;
            if with_room < missing {
                reasons.push(Shortfall::NoRoom { with_room, missing });
            }
            let zones = state.zones().len();
            if zones < wanted {
                reasons.push(Shortfall::FewZones { zones, wanted });
            }
        }
        if reasons.is_empty() {
            reasons.push(Shortfall::Pending);
        }
    }
    let not_ready = copies
        .iter()
        .filter(|c| !c.value.is_ready() && !c.value.is_releasing())
        .count();
    if not_ready > 0 {
        reasons.push(Shortfall::NotReady { count: not_ready });
    }
    reasons
}
