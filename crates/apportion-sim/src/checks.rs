//! The invariants judged on a whole `State`: those that hold whenever the leader is at
//! rest (its last round changed nothing, at the store's current revision), and those that
//! hold once the cluster has settled after the faults.
//!
//! At rest, every copy the planner could drop now is gone, so what remains must be
//! explained: a member holds more than it may only by copies the planner must keep (an
//! item's consistent replica it cannot spare, or an exclusive item waiting for its owner
//! to let go). Settled, the assignment must be the solver's own answer for the state:
//! solving it again changes nothing, and loads are balanced wherever balance is possible.

use std::collections::{BTreeMap, BTreeSet};

use apportion::cluster::StateOf;
use apportion::core::keys::{AssignmentKey, ItemId, Key, MemberId, Prefix};
use apportion::core::solver::{self, Current, Item, Member, Problem};
use apportion::core::state::decode_entry;
use apportion::core::values::{ItemValue, JsonDecoder};
use apportion::store::{KeyRange, RangeResult, Revision, Store, StoreError};

type State = StateOf<JsonDecoder>;

/// A broken rule: its name and what was seen.
pub type Finding = (&'static str, String);

/// The keys under the prefix whose current value does not decode. A member that never
/// read such a key's value does not know the item or member at all (or, for an
/// assignment, that it exists), so the leader may rightly leave the copies they concern
/// alone while an older view still sees them.
#[derive(Debug, Default)]
pub struct Unreadable {
    /// The revision of the read.
    pub revision: Revision,
    /// How many keys, of any kind or of none.
    pub keys: usize,
    items: BTreeSet<ItemId>,
    members: BTreeSet<MemberId>,
    assignments: BTreeSet<AssignmentKey>,
}

impl Unreadable {
    /// Sorts out the keys of a read of the whole prefix.
    pub fn of(prefix: &Prefix, read: &RangeResult) -> Self {
        let mut unreadable = Unreadable {
            revision: read.revision,
            ..Unreadable::default()
        };
        for kv in &read.kvs {
            if decode_entry(prefix, &JsonDecoder, &kv.key, &kv.value).is_ok() {
                continue;
            }
            unreadable.keys += 1;
            match prefix.classify(&kv.key) {
                Ok(Key::Item(id)) => {
                    unreadable.items.insert(id);
                }
                Ok(Key::Member(id)) => {
                    unreadable.members.insert(id);
                }
                Ok(Key::Assignment(key)) => {
                    unreadable.assignments.insert(key);
                }
                // Unreadable settings are the defaults and unreadable away records hold
                // nothing back: they hide no copy.
                Ok(Key::Settings | Key::Away(_)) | Err(_) => {}
            }
        }
        unreadable
    }

    /// Reads the whole prefix from `store` and sorts out its keys: the simulation's driver
    /// and the story both judge a state against such a read.
    pub async fn read<S: Store>(store: &S, prefix: &Prefix) -> Result<Self, StoreError> {
        let read = store.range_all(KeyRange::prefix(prefix.root_dir())).await?;
        Ok(Unreadable::of(prefix, &read))
    }

    /// Whether the item with this id is unreadable.
    pub fn has_item(&self, id: &str) -> bool {
        self.items.iter().any(|item| item.as_str() == id)
    }

    /// Whether the leader may not know of this copy, or of its item or member.
    fn concerns(&self, copy: &AssignmentKey) -> bool {
        self.assignments.contains(copy)
            || self.items.contains(&copy.item)
            || self.members.contains(&copy.member)
    }
}

/// The rules that hold when the leader is at rest.
pub fn at_rest(state: &State, unreadable: &Unreadable) -> Vec<Finding> {
    let mut findings = Vec::new();
    for entry in state.dangling() {
        findings.push((
            "assignment of a gone item or member at rest",
            entry.key.to_string(),
        ));
    }
    let pinned = pinned_per_member(state, unreadable);
    for (m, member) in state.members().iter().enumerate() {
        let load = state.member_assignment_count(m);
        let may_hold = if member.value.exiting {
            0
        } else {
            member.value.item_limit
        };
        if load.saturating_sub(pinned[m]) > may_hold {
            findings.push((
                "over its limit at rest",
                format!(
                    "{} holds {load} (limit {}, exiting {}), of which only {} must stay",
                    member.key, member.value.item_limit, member.value.exiting, pinned[m]
                ),
            ));
        }
    }
    for (x, item) in state.items().iter().enumerate() {
        let copies = state.item_assignments(x);
        if copies.iter().any(|c| unreadable.concerns(&c.key)) {
            continue;
        }
        let mut slots: Vec<u16> = copies.iter().map(|a| a.key.slot.0).collect();
        slots.sort_unstable();
        if slots.iter().enumerate().any(|(i, &s)| usize::from(s) != i) {
            findings.push((
                "slots not contiguous from 0 at rest",
                format!("{}: slots {slots:?}", item.key),
            ));
        }
    }
    findings
}

/// Per member, the copies the planner may not drop: releasing ones (the owner lets go in
/// its own time), ready ones of items with no more ready replicas than they want, and
/// those the leader may not know of.
fn pinned_per_member(state: &State, unreadable: &Unreadable) -> Vec<u32> {
    let mut pinned = vec![0u32; state.members().len()];
    for (x, item) in state.items().iter().enumerate() {
        let range = state.item_assignment_range(x);
        let copies = &state.assignments()[range.clone()];
        // A copy the leader may not know of may not count toward the item's ready ones.
        let ready = copies
            .iter()
            .filter(|a| a.value.ready && !unreadable.concerns(&a.key))
            .count();
        let needed = ready <= usize::from(item.value.replication());
        for (a, copy) in range.zip(copies) {
            let must_stay = copy.value.releasing
                || (copy.value.ready && needed)
                || unreadable.concerns(&copy.key);
            if must_stay {
                if let Some(m) = state.assignment_member(a) {
                    pinned[m] += 1;
                }
            }
        }
    }
    pinned
}

/// The rules that hold once the cluster has settled: at rest, and the solver's answer.
///
/// The settled assignment is the solver's answer for the settled state, except for the
/// copies the planner must not drop: the last replica of an item the solver can place
/// nowhere any more (capacity shrank below demand) stays where it is.
pub fn settled(state: &State, unreadable: &Unreadable) -> Vec<Finding> {
    let mut findings = at_rest(state, unreadable);
    let problem = problem(state, true);
    let again = match solver::solve(&problem) {
        Ok(solution) => solution,
        Err(e) => return vec![("solver refused the settled state", e.to_string())],
    };
    let mut kept = vec![0u64; problem.members.len()];
    let mut unexplained = Vec::new();
    for removed in &again.removed {
        let x = removed.item as usize;
        let last_of_unplaceable = again.replicas_of(removed.item).is_empty()
            && state.item_assignments(x).len() == 1
            && problem.items[x].replication > 0;
        if last_of_unplaceable {
            kept[removed.member as usize] += 1;
        } else {
            let copies: Vec<String> = state
                .item_assignments(x)
                .iter()
                .map(|a| format!("{}/{}", a.key.member, a.key.slot.0))
                .collect();
            let wanted: Vec<&str> = again
                .replicas_of(removed.item)
                .iter()
                .map(|r| state.members()[r.member as usize].key.as_str())
                .collect();
            let item = &state.items()[x];
            unexplained.push(format!(
                "{} (replication {}, exclusive {}) on {copies:?}, wanted on {wanted:?}",
                item.key, item.value.replication, item.value.exclusive
            ));
        }
    }
    if again.added > 0 || !unexplained.is_empty() {
        findings.push((
            "settled but not the solver's answer",
            format!(
                "solving the settled state again adds {} and removes {unexplained:?}",
                again.added
            ),
        ));
    }
    // Balance: wherever a solve from scratch puts every member in its band, the settled
    // loads (less the copies kept above) must be in theirs too.
    let scratch = match solver::solve(&problem_without_current(problem.clone())) {
        Ok(solution) => solution,
        Err(e) => return vec![("solver refused the settled state", e.to_string())],
    };
    let bands = Bands::new(&problem, scratch.replicas.len() as u64);
    let scratch_loads = loads_of(&problem, scratch.replicas.iter().map(|r| r.member));
    let balanced_possible = scratch_loads
        .iter()
        .enumerate()
        .all(|(m, &load)| bands.contains(&problem, m, load));
    if balanced_possible {
        for (m, member) in state.members().iter().enumerate() {
            let load = u64::from(state.member_assignment_count(m)) - kept[m];
            if !bands.contains(&problem, m, load) {
                findings.push((
                    "unbalanced when balance is possible",
                    format!(
                        "{} holds {load}, outside its band {:?}",
                        member.key,
                        bands.band(&problem, m)
                    ),
                ));
            }
        }
    }
    findings
}

/// The solver's input for `state`, read independently of the runtime's own conversion, so
/// that a mistake there shows up as a difference here. `current` includes the assignments.
fn problem(state: &State, current: bool) -> Problem {
    let mut zones = BTreeMap::new();
    let members = state
        .members()
        .iter()
        .map(|m| {
            let next = zones.len() as u32;
            Member {
                zone: *zones.entry(m.key.zone().to_string()).or_insert(next),
                item_limit: m.value.item_limit,
                exiting: m.value.exiting,
            }
        })
        .collect();
    let items = state
        .items()
        .iter()
        .map(|i| Item {
            replication: if i.value.exclusive {
                u32::from(i.value.replication).min(1)
            } else {
                u32::from(i.value.replication)
            },
        })
        .collect();
    let mut assigned = Vec::new();
    if current {
        for x in 0..state.items().len() {
            for a in state.item_assignment_range(x) {
                let entry = &state.assignments()[a];
                assigned.push(Current {
                    item: x as u32,
                    member: state.assignment_member(a).expect("live assignment") as u32,
                    slot: u32::from(entry.key.slot.0),
                    consistent: entry.value.ready,
                });
            }
        }
    }
    Problem {
        members,
        items,
        current: assigned,
        pinned: Vec::new(),
    }
}

fn problem_without_current(mut problem: Problem) -> Problem {
    problem.current.clear();
    problem
}

/// Loads per member of a list of member indices (one per replica).
fn loads_of(problem: &Problem, replicas: impl Iterator<Item = u32>) -> Vec<u64> {
    let mut loads = vec![0u64; problem.members.len()];
    for m in replicas {
        loads[m as usize] += 1;
    }
    loads
}

/// Fair-share bands: a member's share of the placed replicas is proportional to its
/// capacity (its limit, 0 while exiting); its band is that share rounded down and up.
struct Bands {
    placed: u64,
    capacity: u64,
}

impl Bands {
    fn new(problem: &Problem, placed: u64) -> Self {
        let capacity = problem
            .members
            .iter()
            .map(|m| u64::from(m.capacity()))
            .sum();
        Bands { placed, capacity }
    }

    fn band(&self, problem: &Problem, m: usize) -> (u64, u64) {
        if self.capacity == 0 {
            return (0, 0);
        }
        let share = self.placed * u64::from(problem.members[m].capacity());
        (share / self.capacity, share.div_ceil(self.capacity))
    }

    fn contains(&self, problem: &Problem, m: usize, load: u64) -> bool {
        let (lo, hi) = self.band(problem, m);
        (lo..=hi).contains(&load)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apportion::cluster::ClusterView;
    use apportion::store::MemoryStore;

    /// A state from (key under `/t`, JSON value) pairs, written to a fresh store in that
    /// order and read back as every tool reads one.
    fn state(entries: &[(&str, &str)]) -> State {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = MemoryStore::new();
            for (key, value) in entries {
                store.put(format!("/t/{key}"), *value, None).await.unwrap();
            }
            let observed = ClusterView::read(&store, "/t", JsonDecoder).await.unwrap();
            observed.state
        })
    }

    /// The rules `settled` finds broken with `copies` (assignment key, ready) on three
    /// members in two zones, each with room for three.
    fn settled_rules(copies: &[&str]) -> Vec<&'static str> {
        let mut entries = vec![
            ("members/a#1", r#"{"item_limit": 3}"#),
            ("members/b#1", r#"{"item_limit": 3}"#),
            ("members/b#2", r#"{"item_limit": 3}"#),
            ("items/r", r#"{"replication": 2}"#),
            ("items/x", r#"{"replication": 1, "exclusive": true}"#),
        ];
        let copies: Vec<String> = copies.iter().map(|c| format!("assign/{c}")).collect();
        entries.extend(copies.iter().map(|c| (c.as_str(), r#"{"ready": true}"#)));
        let state = state(&entries);
        let findings = settled(&state, &Unreadable::default());
        findings.into_iter().map(|(rule, _)| rule).collect()
    }

    const NOT_THE_ANSWER: &str = "settled but not the solver's answer";

    #[test]
    fn a_settled_placement_breaks_nothing() {
        let good = settled_rules(&["r#a#1#00000", "r#b#1#00001", "x#b#2#00000"]);
        assert_eq!(good, Vec::<&str>::new());
    }

    /// What the demo promises when nothing is broken: the solver's answer stays within
    /// limits, never puts an item twice on a member, spreads replicas over zones, fills
    /// every slot the capacity allows and gives an exclusive item one owner.
    #[test]
    fn the_demos_invariants_are_part_of_the_solvers_answer() {
        let cases: [(&str, &[&str]); 4] = [
            (
                "twice on one member",
                &["r#b#1#00000", "r#b#1#00001", "x#b#2#00000"],
            ),
            (
                "one zone though two are open",
                &["r#b#1#00000", "r#b#2#00001", "x#a#1#00000"],
            ),
            ("a slot unfilled", &["r#a#1#00000", "x#b#2#00000"]),
            (
                "two owners of an exclusive item",
                &["r#a#1#00000", "r#b#1#00001", "x#b#2#00000", "x#a#1#00001"],
            ),
        ];
        for (case, copies) in cases {
            assert!(
                settled_rules(copies).contains(&NOT_THE_ANSWER),
                "{case}: {:?}",
                settled_rules(copies)
            );
        }
    }

    #[test]
    fn a_member_above_its_limit_is_not_settled() {
        let mut entries = vec![
            ("members/a#1", r#"{"item_limit": 1}"#),
            ("members/b#1", r#"{"item_limit": 3}"#),
            ("items/r", r#"{"replication": 1}"#),
            ("items/s", r#"{"replication": 1}"#),
        ];
        entries.extend([
            ("assign/r#a#1#00000", r#"{"ready": true}"#),
            ("assign/s#a#1#00000", r#"{"ready": true}"#),
        ]);
        let findings = settled(&state(&entries), &Unreadable::default());
        let rules: Vec<&str> = findings.iter().map(|(rule, _)| *rule).collect();
        assert!(rules.contains(&NOT_THE_ANSWER), "{findings:?}");
    }
}
