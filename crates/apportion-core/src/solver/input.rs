//! The JSON form of a problem and of its solution, as `apportion plan` reads and writes
//! them; tests use the same types.
//!
//! Names are mapped to dense indices here, once, so the solver never sees a string: zones
//! in sorted order, members and items in input order.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::problem::{Current, Item, Member, Problem};
use super::solution::Solution;

/// A problem as JSON: members, items and the current assignment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    /// The members.
    #[serde(default)]
    pub members: Vec<MemberJson>,
    /// The items.
    #[serde(default)]
    pub items: Vec<ItemJson>,
    /// The current assignment.
    #[serde(default)]
    pub assignments: Vec<AssignmentJson>,
}

/// A member, named by zone and suffix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberJson {
    /// Failure zone.
    pub zone: String,
    /// Name within the zone.
    pub suffix: String,
    /// Most items the member may hold.
    pub item_limit: u32,
    /// Whether the member is draining; optional, false by default.
    #[serde(default)]
    pub exiting: bool,
}

/// An item and its replication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemJson {
    /// Item id.
    pub id: String,
    /// Wanted replicas.
    pub replication: u32,
}

/// One current replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignmentJson {
    /// Item id.
    pub item: String,
    /// Zone of the member.
    pub zone: String,
    /// Suffix of the member.
    pub suffix: String,
    /// Slot; 0 is the primary.
    pub slot: u32,
    /// Whether the replica has caught up; optional, true by default.
    #[serde(default = "consistent_default")]
    pub consistent: bool,
}

fn consistent_default() -> bool {
    true
}

/// One replica in the output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementJson {
    /// Item id.
    pub item: String,
    /// Zone of the member.
    pub zone: String,
    /// Suffix of the member.
    pub suffix: String,
    /// Slot: in the desired assignment 0 is the primary; for a removed replica, its
    /// current slot.
    pub slot: u32,
}

/// Counts describing a plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Current replicas kept.
    pub kept: u64,
    /// Replicas to add.
    pub added: u64,
    /// Current replicas to remove.
    pub removed: u64,
    /// Slots no member could take.
    pub unfilled_slots: u64,
    /// Time the solve took, in milliseconds, measured by the caller.
    pub solve_ms: f64,
}

/// A solution as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanOutput {
    /// The desired assignment, item by item, primary first.
    pub assignments: Vec<PlacementJson>,
    /// Desired replicas that are not current.
    pub added: Vec<PlacementJson>,
    /// Current replicas that are not desired.
    pub removed: Vec<PlacementJson>,
    /// Counts.
    pub summary: Summary,
}

/// Why an id, zone or suffix is not acceptable.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IdError {
    /// The name is empty.
    #[error("must not be empty")]
    Empty,
    /// The name contains a character that key layouts reserve.
    #[error("character {ch:?} (U+{code:04X}) at index {index} is not allowed (no '/' and nothing up to '#')", code = *ch as u32)]
    BadChar {
        /// The character.
        ch: char,
        /// Its character index, from 0.
        index: usize,
    },
}

/// Checks a name against the id rules: non-empty, no '/' and no character with code point
/// up to '#' (35), so names can be embedded in keys with separators and escapes.
pub fn check_id(name: &str) -> Result<(), IdError> {
    if name.is_empty() {
        return Err(IdError::Empty);
    }
    match name
        .chars()
        .enumerate()
        .find(|&(_, c)| c == '/' || c as u32 <= 35)
    {
        Some((index, ch)) => Err(IdError::BadChar { ch, index }),
        None => Ok(()),
    }
}

/// Why a JSON problem is not acceptable; each variant names what and where.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum InputError {
    /// The text is not JSON of the expected shape.
    #[error("invalid input JSON: {0}")]
    Json(String),
    /// A name breaks the id rules.
    #[error("{at} {name:?}: {error}")]
    BadName {
        /// Where, like `members[2].suffix`.
        at: String,
        /// The name.
        name: String,
        /// What is wrong with it.
        error: IdError,
    },
    /// Two members share zone and suffix.
    #[error("members[{index}]: duplicate member zone {zone:?} suffix {suffix:?} (first at members[{first}])")]
    DuplicateMember {
        /// Position of the duplicate.
        index: usize,
        /// Position of the first.
        first: usize,
        /// Zone.
        zone: String,
        /// Suffix.
        suffix: String,
    },
    /// Two items share an id.
    #[error("items[{index}]: duplicate item {id:?} (first at items[{first}])")]
    DuplicateItem {
        /// Position of the duplicate.
        index: usize,
        /// Position of the first.
        first: usize,
        /// Id.
        id: String,
    },
    /// An assignment names an item that is not listed.
    #[error("assignments[{index}]: unknown item {id:?}")]
    UnknownItem {
        /// Position of the assignment.
        index: usize,
        /// Id.
        id: String,
    },
    /// An assignment names a member that is not listed.
    #[error("assignments[{index}]: unknown member zone {zone:?} suffix {suffix:?}")]
    UnknownMember {
        /// Position of the assignment.
        index: usize,
        /// Zone.
        zone: String,
        /// Suffix.
        suffix: String,
    },
}

fn check_name(at: impl FnOnce() -> String, name: &str) -> Result<(), InputError> {
    check_id(name).map_err(|error| InputError::BadName {
        at: at(),
        name: name.to_string(),
        error,
    })
}

impl PlanInput {
    /// Parses JSON text; a syntax or shape error names its line and column.
    pub fn parse(text: &str) -> Result<Self, InputError> {
        serde_json::from_str(text).map_err(|e| InputError::Json(e.to_string()))
    }

    /// Validates every name and reference and maps them to the solver's indices.
    pub fn to_problem(&self) -> Result<Problem, InputError> {
        let mut zones: BTreeMap<&str, u32> = BTreeMap::new();
        for (i, m) in self.members.iter().enumerate() {
            check_name(|| format!("members[{i}].zone"), &m.zone)?;
            check_name(|| format!("members[{i}].suffix"), &m.suffix)?;
            zones.insert(&m.zone, 0);
        }
        for (z, n) in zones.values_mut().enumerate() {
            *n = z as u32;
        }
        let mut member_at: HashMap<(&str, &str), usize> = HashMap::new();
        let mut members = Vec::with_capacity(self.members.len());
        for (index, m) in self.members.iter().enumerate() {
            if let Some(&first) = member_at.get(&(m.zone.as_str(), m.suffix.as_str())) {
                return Err(InputError::DuplicateMember {
                    index,
                    first,
                    zone: m.zone.clone(),
                    suffix: m.suffix.clone(),
                });
            }
            member_at.insert((&m.zone, &m.suffix), index);
            members.push(Member {
                zone: zones[m.zone.as_str()],
                item_limit: m.item_limit,
                exiting: m.exiting,
            });
        }
        let mut item_at: HashMap<&str, usize> = HashMap::new();
        let mut items = Vec::with_capacity(self.items.len());
        for (index, it) in self.items.iter().enumerate() {
            check_name(|| format!("items[{index}].id"), &it.id)?;
            if let Some(&first) = item_at.get(it.id.as_str()) {
                return Err(InputError::DuplicateItem {
                    index,
                    first,
                    id: it.id.clone(),
                });
            }
            item_at.insert(&it.id, index);
            items.push(Item {
                replication: it.replication,
            });
        }
        let mut current = Vec::with_capacity(self.assignments.len());
        for (index, a) in self.assignments.iter().enumerate() {
            check_name(|| format!("assignments[{index}].item"), &a.item)?;
            check_name(|| format!("assignments[{index}].zone"), &a.zone)?;
            check_name(|| format!("assignments[{index}].suffix"), &a.suffix)?;
            let item = *item_at
                .get(a.item.as_str())
                .ok_or_else(|| InputError::UnknownItem {
                    index,
                    id: a.item.clone(),
                })?;
            let member = *member_at
                .get(&(a.zone.as_str(), a.suffix.as_str()))
                .ok_or_else(|| InputError::UnknownMember {
                    index,
                    zone: a.zone.clone(),
                    suffix: a.suffix.clone(),
                })?;
            current.push(Current {
                item: item as u32,
                member: member as u32,
                slot: a.slot,
                consistent: a.consistent,
            });
        }
        Ok(Problem {
            members,
            items,
            current,
        })
    }

    /// Names a solution of [`Self::to_problem`]'s problem, with the time the caller measured.
    pub fn output(&self, sol: &Solution, solve_ms: f64) -> PlanOutput {
        let place = |item: u32, member: u32, slot: u32| {
            let m = &self.members[member as usize];
            PlacementJson {
                item: self.items[item as usize].id.clone(),
                zone: m.zone.clone(),
                suffix: m.suffix.clone(),
                slot,
            }
        };
        let mut assignments = Vec::with_capacity(sol.replicas.len());
        let mut added = Vec::new();
        for x in 0..sol.items() as u32 {
            for (slot, r) in sol.replicas_of(x).iter().enumerate() {
                let p = place(x, r.member, slot as u32);
                if r.added {
                    added.push(p.clone());
                }
                assignments.push(p);
            }
        }
        let removed: Vec<PlacementJson> = sol
            .removed
            .iter()
            .map(|r| place(r.item, r.member, r.slot))
            .collect();
        PlanOutput {
            summary: Summary {
                kept: sol.kept,
                added: sol.added,
                removed: removed.len() as u64,
                unfilled_slots: sol.unfilled_slots,
                solve_ms,
            },
            assignments,
            added,
            removed,
        }
    }
}
