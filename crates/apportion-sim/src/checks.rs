//! The invariants judged on a whole `State`: those that hold whenever the leader is at
//! rest (its last round changed nothing, at the store's current revision), and those that
//! hold once the cluster has settled after the faults.
//!
//! At rest, every copy the planner could drop now is gone, so what remains must be
//! explained: a member holds more than it may only by copies the planner must keep (an
//! item's consistent replica it cannot spare, or an exclusive item waiting for its owner
//! to let go). Settled, the assignment must be the solver's own answer for the state:
//! solving it again changes nothing, and loads are balanced wherever balance is possible.

use std::collections::BTreeMap;

use apportion::core::solver::{self, Current, Item, Member, Problem};
use apportion::core::values::{ItemValue, JsonDecoder};
use apportion::StateOf;

type State = StateOf<JsonDecoder>;

/// A broken rule: its name and what was seen.
pub type Finding = (&'static str, String);

/// The rules that hold when the leader is at rest.
pub fn at_rest(state: &State) -> Vec<Finding> {
    let mut findings = Vec::new();
    for entry in state.dangling() {
        findings.push((
            "assignment of a gone item or member at rest",
            entry.key.to_string(),
        ));
    }
    let pinned = pinned_per_member(state);
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
        let mut slots: Vec<u16> = state
            .item_assignments(x)
            .iter()
            .map(|a| a.key.slot.0)
            .collect();
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
/// its own time), and ready ones of items with no more ready replicas than they want.
fn pinned_per_member(state: &State) -> Vec<u32> {
    let mut pinned = vec![0u32; state.members().len()];
    for (x, item) in state.items().iter().enumerate() {
        let range = state.item_assignment_range(x);
        let copies = &state.assignments()[range.clone()];
        let ready = copies.iter().filter(|a| a.value.ready).count();
        let needed = ready <= usize::from(item.value.replication());
        for (a, copy) in range.zip(copies) {
            if copy.value.releasing || (copy.value.ready && needed) {
                if let Some(m) = state.assignment_member(a) {
                    pinned[m] += 1;
                }
            }
        }
    }
    pinned
}

/// The rules that hold once the cluster has settled: at rest, and the solver's answer.
pub fn settled(state: &State) -> Vec<Finding> {
    let mut findings = at_rest(state);
    let problem = problem(state, true);
    let again = match solver::solve(&problem) {
        Ok(solution) => solution,
        Err(e) => return vec![("solver refused the settled state", e.to_string())],
    };
    if again.added > 0 || !again.removed.is_empty() {
        findings.push((
            "settled but not the solver's answer",
            format!(
                "solving the settled state again adds {} and removes {:?}",
                again.added, again.removed
            ),
        ));
    }
    // Balance: wherever a solve from scratch puts every member in its band, the settled
    // loads must be in theirs too.
    let scratch = match solver::solve(&problem_without_current(problem.clone())) {
        Ok(solution) => solution,
        Err(e) => return vec![("solver refused the settled state", e.to_string())],
    };
    let bands = Bands::new(&problem, state.assignments().len() as u64);
    let scratch_loads = loads_of(&problem, scratch.replicas.iter().map(|r| r.member));
    let balanced_possible = scratch_loads
        .iter()
        .enumerate()
        .all(|(m, &load)| bands.contains(&problem, m, load));
    if balanced_possible {
        for (m, member) in state.members().iter().enumerate() {
            let load = u64::from(state.member_assignment_count(m));
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
