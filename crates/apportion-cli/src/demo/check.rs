//! The invariants, checked on a settled state (plus what the event streams showed):
//! no member above its limit, no item twice on one member, every item over as many zones
//! as it can be, every slot filled when the capacity allows, and at most one owner of each
//! exclusive item.

use std::collections::BTreeSet;

use apportion::cluster::StateOf;
use apportion::core::values::{ItemValue, JsonDecoder, MemberValue};

/// The names of the invariants, in the order they are reported.
pub const INVARIANTS: [&str; 5] = [
    "limits",
    "distinct members",
    "zone spread",
    "slots filled",
    "one owner per exclusive item",
];

/// The outcome: every broken invariant as a sentence (empty when all held).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// One line per violation.
    pub problems: Vec<String>,
}

impl Verdict {
    /// Whether every invariant held.
    pub fn held(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks `state`; `seen` are the problems the event streams showed meanwhile.
pub fn check(state: &StateOf<JsonDecoder>, seen: Vec<String>) -> Verdict {
    let mut problems = Vec::new();
    limits(state, &mut problems);
    placement(state, &mut problems);
    problems.extend(seen);
    Verdict { problems }
}

/// How many wanted replicas have no member.
pub fn unfilled(state: &StateOf<JsonDecoder>) -> u64 {
    (0..state.items().len())
        .map(|i| {
            let wanted = u64::from(state.items()[i].value.replication());
            wanted.saturating_sub(state.item_assignments(i).len() as u64)
        })
        .sum()
}

fn limits(state: &StateOf<JsonDecoder>, problems: &mut Vec<String>) {
    for (i, member) in state.members().iter().enumerate() {
        let held = state.member_assignment_count(i);
        let limit = member.value.item_limit();
        if held > limit {
            problems.push(format!(
                "{} holds {held} items, above its limit of {limit}",
                member.key
            ));
        }
    }
}

fn placement(state: &StateOf<JsonDecoder>, problems: &mut Vec<String>) {
    let zones = state.zones().len();
    for (i, item) in state.items().iter().enumerate() {
        let copies = state.item_assignments(i);
        let members: BTreeSet<_> = copies.iter().map(|a| &a.key.member).collect();
        if members.len() < copies.len() {
            problems.push(format!("{} has two replicas on one member", item.key));
        }
        let spread: BTreeSet<_> = members.iter().map(|m| m.zone()).collect();
        if spread.len() < members.len().min(zones) {
            problems.push(format!(
                "{} is on {} zone(s) though {} were possible",
                item.key,
                spread.len(),
                members.len().min(zones)
            ));
        }
        if item.value.is_exclusive() && copies.len() > 1 {
            problems.push(format!(
                "exclusive item {} has {} owners",
                item.key,
                copies.len()
            ));
        }
    }
    let missing = unfilled(state);
    if missing > 0 && capacity_allows(state) {
        problems.push(format!(
            "{missing} replica slot(s) unfilled though the members have room"
        ));
    }
}

/// Whether every wanted replica fits: with equal limits (as in the demo), enough room in
/// total and no item wanting more replicas than there are members to hold them is enough.
fn capacity_allows(state: &StateOf<JsonDecoder>) -> bool {
    let open = state
        .members()
        .iter()
        .filter(|m| !m.value.is_exiting() && m.value.item_limit() > 0)
        .count();
    let widest = state
        .items()
        .iter()
        .map(|i| usize::from(i.value.replication()))
        .max()
        .unwrap_or(0);
    state.member_slots() >= state.item_slots() && widest <= open
}

#[cfg(test)]
mod tests {
    use super::*;
    use apportion::core::keys::Prefix;
    use apportion::core::state::{decode_entry, Meta, Snapshot, State};

    /// A state from (key under `/t`, JSON value) pairs.
    fn state(entries: &[(&str, &str)]) -> StateOf<JsonDecoder> {
        let prefix = Prefix::new("/t").unwrap();
        let mut snapshot = Snapshot::default();
        for (i, (key, value)) in entries.iter().enumerate() {
            let key = format!("/t/{key}");
            let decoded = decode_entry(&prefix, &JsonDecoder, key.as_bytes(), value.as_bytes());
            let meta = Meta {
                create_revision: i as i64 + 1,
                ..Meta::default()
            };
            snapshot.push(decoded.unwrap(), meta);
        }
        State::build(snapshot, None).unwrap()
    }

    const MEMBERS: [(&str, &str); 3] = [
        ("members/a#1", r#"{"item_limit": 1}"#),
        ("members/b#1", r#"{"item_limit": 5}"#),
        ("members/b#2", r#"{"item_limit": 5}"#),
    ];

    #[test]
    fn a_good_placement_holds_every_invariant() {
        let mut entries = MEMBERS.to_vec();
        entries.extend([
            ("items/r", r#"{"replication": 2}"#),
            ("items/x", r#"{"replication": 1, "exclusive": true}"#),
            ("assign/r#a#1#00000", r#"{"ready": true}"#),
            ("assign/r#b#1#00001", r#"{"ready": true}"#),
            ("assign/x#b#2#00000", r#"{"ready": true}"#),
        ]);
        let state = state(&entries);
        assert_eq!(check(&state, vec![]), Verdict::default());
        assert_eq!(unfilled(&state), 0);
    }

    #[test]
    fn every_kind_of_violation_is_named() {
        let mut entries = MEMBERS.to_vec();
        entries.extend([
            ("items/r", r#"{"replication": 2}"#),
            ("items/s", r#"{"replication": 2}"#),
            ("items/x", r#"{"replication": 1, "exclusive": true}"#),
            ("items/y", r#"{"replication": 3}"#),
            // a#1 above its limit of 1; r on one zone only; x with two owners.
            ("assign/r#b#1#00000", "{}"),
            ("assign/r#b#2#00001", "{}"),
            ("assign/s#a#1#00000", "{}"),
            ("assign/x#a#1#00000", "{}"),
            ("assign/x#b#1#00001", "{}"),
            // y twice on one member.
            ("assign/y#b#2#00000", "{}"),
            ("assign/y#b#2#00001", "{}"),
        ]);
        let verdict = check(&state(&entries), vec!["seen in the events".into()]);
        assert_eq!(
            verdict.problems,
            [
                "a#1 holds 2 items, above its limit of 1",
                "r is on 1 zone(s) though 2 were possible",
                "exclusive item x has 2 owners",
                "y has two replicas on one member",
                "2 replica slot(s) unfilled though the members have room",
                "seen in the events",
            ]
        );
    }
}
