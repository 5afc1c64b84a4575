//! The solver's input in indices, the form the runtime and the benchmarks build directly.
//!
//! Names (ids, zones, suffixes) never reach the solver: the caller maps them to dense
//! indices first, so the hot loops touch only flat vectors of integers. [`super::input`]
//! does that mapping for the JSON form used by `apportion plan`.

use thiserror::Error;

/// A service instance that can hold replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The failure zone, any `u32`; members with equal values share a zone. The solver
    /// spreads the replicas of an item over zones so that losing one zone loses as few
    /// replicas of any item as possible.
    pub zone: u32,
    /// The most items this member may hold; a hard limit the solver never exceeds.
    pub item_limit: u32,
    /// An exiting member is being drained: it counts as limit 0, so everything it holds is
    /// moved elsewhere.
    pub exiting: bool,
}

impl Member {
    /// How many replicas this member may hold in the desired assignment: its limit, or 0
    /// while it is exiting.
    pub fn capacity(&self) -> u32 {
        if self.exiting {
            0
        } else {
            self.item_limit
        }
    }
}

/// A unit of work that is replicated onto members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// How many distinct members should hold the item; 0 means it is not assigned at all.
    pub replication: u32,
}

/// One replica as it is assigned now, which the solver keeps wherever it can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Current {
    /// Index into [`Problem::items`].
    pub item: u32,
    /// Index into [`Problem::members`].
    pub member: u32,
    /// The replica's slot; slot 0 is the primary, which the solver keeps primary unless
    /// balance needs it moved.
    pub slot: u32,
    /// Whether the replica has caught up; a new primary is chosen among consistent replicas
    /// first, so that promotion does not wait for a copy.
    pub consistent: bool,
}

/// Everything the solver needs: members, items and the current assignment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Problem {
    /// The members, addressed by index.
    pub members: Vec<Member>,
    /// The items, addressed by index.
    pub items: Vec<Item>,
    /// The current assignment. Entries on exiting members, duplicates and entries beyond
    /// what the constraints allow are legal input: the solver drops them.
    pub current: Vec<Current>,
    /// Per member, copies it holds outside this problem that stay where they are (items
    /// left out of the solve while a member is away, see `crate::away`): they count in the
    /// member's load when loads are balanced, on top of its `item_limit`, which is its
    /// room for this problem's copies. Empty, or shorter than `members`: none for the
    /// rest. (Their primaries are not counted when primaries are balanced: counting them
    /// made the balance move more of the other items' primaries, 3.2 moves per primary
    /// of a restarting member against 2.7 without, in the rolling-restart scenario.)
    pub pinned: Vec<u32>,
}

/// The most replica slots one solve handles, so that slot indices fit in a `u32`.
pub const MAX_SLOTS: u64 = (u32::MAX - 1) as u64;

/// Why a [`Problem`] cannot be solved.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProblemError {
    /// A current assignment names an item index that does not exist.
    #[error("current[{index}]: item {item} does not exist (there are {items} items)")]
    UnknownItem {
        /// Position in [`Problem::current`].
        index: usize,
        /// The bad item index.
        item: u32,
        /// How many items there are.
        items: usize,
    },
    /// A current assignment names a member index that does not exist.
    #[error("current[{index}]: member {member} does not exist (there are {members} members)")]
    UnknownMember {
        /// Position in [`Problem::current`].
        index: usize,
        /// The bad member index.
        member: u32,
        /// How many members there are.
        members: usize,
    },
    /// The solve took more steps than its budget allows (see `solve_within`): a defect in
    /// the solver, reported instead of hanging the caller.
    #[error("the solve gave up after {steps} steps, over its budget of {budget}")]
    OverBudget {
        /// Steps taken when it gave up.
        steps: u64,
        /// The budget it was given.
        budget: u64,
    },
    /// The problem is larger than the solver's index types allow.
    #[error("too large: {what} is {count}, at most {max} are supported")]
    TooLarge {
        /// What overflowed.
        what: &'static str,
        /// Its size.
        count: u64,
        /// The supported maximum.
        max: u64,
    },
}

impl Problem {
    /// Checks that every index is in range and the sizes fit the solver's `u32` indices,
    /// so that the solver itself never has to handle bad input.
    pub fn validate(&self) -> Result<(), ProblemError> {
        let max = MAX_SLOTS;
        for (what, count) in [
            ("the number of members", self.members.len() as u64),
            ("the number of items", self.items.len() as u64),
            (
                "the number of current assignments",
                self.current.len() as u64,
            ),
        ] {
            if count > max {
                return Err(ProblemError::TooLarge { what, count, max });
            }
        }
        for (index, c) in self.current.iter().enumerate() {
            if c.item as usize >= self.items.len() {
                return Err(ProblemError::UnknownItem {
                    index,
                    item: c.item,
                    items: self.items.len(),
                });
            }
            if c.member as usize >= self.members.len() {
                return Err(ProblemError::UnknownMember {
                    index,
                    member: c.member,
                    members: self.members.len(),
                });
            }
        }
        Ok(())
    }
}
