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
use crate::keys::{ItemId, KeyError, MemberId};
use crate::values::MAX_REPLICATION;

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

/// Why a JSON problem is not acceptable; each variant names what and where.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum InputError {
    /// The text is not JSON of the expected shape.
    #[error("invalid input JSON: {0}")]
    Json(String),
    /// An id breaks the rules of the store's keys ([`ItemId::new`], [`MemberId::new`]):
    /// a plan must be one the cluster could hold.
    #[error("{at}: {error}")]
    BadId {
        /// Where, like `members[2]` or `assignments[0].item`.
        at: String,
        /// What is wrong with it, naming the id.
        error: KeyError,
    },
    /// An item wants more copies than the cluster accepts ([`MAX_REPLICATION`]), as the
    /// store would refuse its value.
    #[error(
        "items[{index}]: item {id:?} has replication {replication}; the most is {MAX_REPLICATION}"
    )]
    Replication {
        /// Position of the item.
        index: usize,
        /// Id.
        id: String,
        /// The replication asked for.
        replication: u32,
    },
    /// Two assignments of one item name the same member, or the same slot: the store
    /// holds one key per (item, member, slot) and the solver one copy per member and
    /// slot, so the second would vanish from the plan without showing in `removed`.
    #[error("assignments[{index}]: item {item:?} {what} (first at assignments[{first}])")]
    DuplicateAssignment {
        /// Position of the duplicate.
        index: usize,
        /// Position of the first.
        first: usize,
        /// Item id.
        item: String,
        /// What the two share: `already on member ZONE#SUFFIX` or `slot N twice`.
        what: String,
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

/// The member id of `zone` and `suffix`, checked as the store's keys are; `at` names
/// where in the input they are.
fn member_id(
    at: impl FnOnce() -> String,
    zone: &str,
    suffix: &str,
) -> Result<MemberId, InputError> {
    MemberId::new(zone, suffix).map_err(|error| InputError::BadId { at: at(), error })
}

/// Item id `id` checked as the store's keys are; `at` names where in the input it is.
fn item_id(at: impl FnOnce() -> String, id: &str) -> Result<ItemId, InputError> {
    ItemId::new(id).map_err(|error| InputError::BadId { at: at(), error })
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
            member_id(|| format!("members[{i}]"), &m.zone, &m.suffix)?;
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
            item_id(|| format!("items[{index}]"), &it.id)?;
            if it.replication > u32::from(MAX_REPLICATION) {
                return Err(InputError::Replication {
                    index,
                    id: it.id.clone(),
                    replication: it.replication,
                });
            }
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
        let mut on_member: HashMap<(usize, usize), usize> = HashMap::new();
        let mut in_slot: HashMap<(usize, u32), usize> = HashMap::new();
        for (index, a) in self.assignments.iter().enumerate() {
            item_id(|| format!("assignments[{index}].item"), &a.item)?;
            let member_name = member_id(|| format!("assignments[{index}]"), &a.zone, &a.suffix)?;
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
            let duplicate = |first: usize, what: String| InputError::DuplicateAssignment {
                index,
                first,
                item: a.item.clone(),
                what,
            };
            if let Some(&first) = on_member.get(&(item, member)) {
                return Err(duplicate(first, format!("already on member {member_name}")));
            }
            if let Some(&first) = in_slot.get(&(item, a.slot)) {
                return Err(duplicate(first, format!("slot {} twice", a.slot)));
            }
            on_member.insert((item, member), index);
            in_slot.insert((item, a.slot), index);
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
            pinned: Vec::new(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> Result<Problem, InputError> {
        PlanInput::parse(text).unwrap().to_problem()
    }

    const TWO_MEMBERS: &str = r#""members": [
        {"zone": "a", "suffix": "m1", "item_limit": 2},
        {"zone": "b", "suffix": "m2", "item_limit": 2}]"#;

    #[test]
    fn ids_follow_the_rules_of_the_stores_keys() {
        let err = problem(r#"{"items": [{"id": "..", "replication": 1}]}"#).unwrap_err();
        assert!(
            matches!(err, InputError::BadId { ref at, error: KeyError::DotPart { .. } } if at == "items[0]"),
            "{err}"
        );
        let long = "x".repeat(crate::keys::MAX_PART_BYTES + 1);
        let text =
            format!(r#"{{"members": [{{"zone": "{long}", "suffix": "m", "item_limit": 1}}]}}"#);
        let err = problem(&text).unwrap_err();
        assert!(
            matches!(
                err,
                InputError::BadId {
                    error: KeyError::TooLong { .. },
                    ..
                }
            ),
            "{err}"
        );
        let err = problem(r#"{"members": [{"zone": "a", "suffix": "m#1", "item_limit": 1}]}"#)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "members[0]: key `a#m#1`: suffix has forbidden character '#' at byte 3"
        );
    }

    #[test]
    fn replication_is_at_most_the_stores_maximum() {
        let at_most = format!(r#"{{"items": [{{"id": "i", "replication": {MAX_REPLICATION}}}]}}"#);
        assert!(problem(&at_most).is_ok());
        let err = problem(r#"{"items": [{"id": "i", "replication": 1000}]}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "items[0]: item \"i\" has replication 1000; the most is 255"
        );
    }

    #[test]
    fn a_duplicate_assignment_is_an_error_naming_both() {
        let same_member = format!(
            r#"{{{TWO_MEMBERS}, "items": [{{"id": "i", "replication": 2}}], "assignments": [
                {{"item": "i", "zone": "a", "suffix": "m1", "slot": 0}},
                {{"item": "i", "zone": "a", "suffix": "m1", "slot": 1}}]}}"#
        );
        assert_eq!(
            problem(&same_member).unwrap_err().to_string(),
            "assignments[1]: item \"i\" already on member a#m1 (first at assignments[0])"
        );
        let same_slot = format!(
            r#"{{{TWO_MEMBERS}, "items": [{{"id": "i", "replication": 2}}], "assignments": [
                {{"item": "i", "zone": "a", "suffix": "m1", "slot": 0}},
                {{"item": "i", "zone": "b", "suffix": "m2", "slot": 0}}]}}"#
        );
        assert_eq!(
            problem(&same_slot).unwrap_err().to_string(),
            "assignments[1]: item \"i\" slot 0 twice (first at assignments[0])"
        );
        let distinct = format!(
            r#"{{{TWO_MEMBERS}, "items": [{{"id": "i", "replication": 2}}], "assignments": [
                {{"item": "i", "zone": "a", "suffix": "m1", "slot": 0}},
                {{"item": "i", "zone": "b", "suffix": "m2", "slot": 1}}]}}"#
        );
        assert_eq!(problem(&distinct).unwrap().current.len(), 2);
    }
}
