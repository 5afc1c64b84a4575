//! The solver: turns members, items and the current assignment into a desired assignment.
//!
//! # What it computes
//!
//! Every item wants `R` replicas on distinct members; a member holds at most its limit (0
//! while exiting). In priority order the solver
//!
//! 1. fills as many replica slots as possible: exactly the maximum flow;
//! 2. spreads each item over zones (`spread`): `min(R, zones)` zones and an even spread
//!    whenever capacity allows, at least two zones before one, and spread is given up
//!    before a slot is;
//! 3. balances every member's load into the band `[floor, ceil]` of its fair share
//!    `filled * limit / total_limit` whenever the constraints allow, and as close as they
//!    allow otherwise (`fair`); a member inside its band gives nothing away, and a joining
//!    member (one holding nothing) takes its share;
//! 4. keeps as many current assignments as any assignment with the same fill, spread and
//!    member loads can (fewest moves);
//! 5. keeps each item's primary where it is unless balance needs it moved, and balances
//!    primaries the same way, preferring consistent replicas (`primary`).
//!
//! It is pure and deterministic: no I/O, no clock, same input, same output.
//!
//! # How: incremental min-cost flow over members
//!
//! The model is the flow network source -> item (capacity R) -> item-zone (spread caps) ->
//! member (capacity 1, cost 0 when the pair is current, 1 when it is new) -> sink
//! (capacity the member's limit). Objective 4 says the flow is min-cost for its member
//! loads. The current assignment, minus what must go (`Assignment::new` drops pairs on
//! exiting members, duplicates, and excess over a replication, a limit or a zone cap), is a
//! flow of cost 0 and so min-cost. Augmenting only along paths that are *shortest between
//! their two ends* keeps the residual graph free of negative cycles, so the final flow is
//! min-cost for its loads whatever order the augmentations came in. That is why the
//! solver is incremental: it starts from the current assignment as a feasible flow and only
//! repairs what changed.
//!
//! Items are many and members few, so paths are searched over members (`search`): an arc
//! moves one replica from one member to another, with cost -1, 0 or +1. Most augmentations
//! are one arc long: `fill` puts a missing replica on the least loaded member allowed to
//! take it (a heap per zone), and `balance` lets a member below its share pull a replica
//! from the fullest member of its zone. Such a direct move is applied without a search when
//! counters kept by `assignment` prove it shortest: no other member can start a negative
//! arc and no first arc is cheaper. Otherwise a Dijkstra-style search over members finds
//! the shortest path; per-zone sets of members not yet reached make one search touch each
//! replica at most once. After the direct moves, searches prove that nothing more can be
//! filled (the exact maximum, with spread relaxed if that is the only way) and that no
//! path runs from a member that may give to one that may take (`fair::by_paths`).
//!
//! Raising an item's spread tier adds arcs, which could close a negative cycle, so tiers
//! are raised only between whole solves: when slots stay empty while members have room,
//! the solve restarts from the current assignment with the items concerned one tier looser
//! (at most a few restarts, and none when every slot is filled or every member is full).
//! Once the fill is final and balanced, an item whose tier was raised wins back spread
//! wherever a zone it misses has room and the move is also a shortest path, its tier is
//! tightened to what it now satisfies so balancing cannot undo it, and balancing runs
//! again.
//!
//! Cost: a scratch solve is one heap operation per replica plus a few verifying searches;
//! an incremental one is linear in the current assignment for loading it, plus work
//! proportional to the change. Memory is a handful of flat `u32` vectors per replica slot
//! and per member; no per-item allocation.
//!
//! Why not push-relabel over the whole network: it has items x members arcs while a
//! settled cluster needs almost none of them, and a generic push-relabel cannot start from
//! the current assignment with the min-cost guarantee above.
//!
//! # Known limits
//!
//! When an item had to give up its balanced spread for a slot to be filled, a later solve
//! of the settled result may still find a better spread and move replicas for it; and
//! where winning spread back would cost more moves than another way of giving the same
//! member loads, the moves win (the property tests check spread recovery exactly only
//! when nothing is current). A member that a balance tie leaves empty counts as joining
//! in the next solve and takes its share then.

mod assignment;
mod balance;
mod fair;
mod fill;
pub mod input;
mod primary;
mod problem;
pub mod scenario;
mod search;
mod solution;
mod spread;

pub use problem::{Current, Item, Member, Problem, ProblemError, MAX_SLOTS};
pub use solution::{Removed, Replica, Solution};

/// Computes the desired assignment for `problem`; fails only when the problem names an
/// index that does not exist or is too large for the solver's `u32` indices.
pub fn solve(problem: &Problem) -> Result<Solution, ProblemError> {
    let mut search = search::Search::default();
    let mut tiers = vec![0; problem.items.len()];
    let mut a = loop {
        let mut a = assignment::Assignment::new(problem, tiers)?;
        match fill::fill(&mut a, &mut search) {
            Some(raised) => tiers = raised,
            None => break a,
        }
    };
    // Balancing can free room in a zone that an item with a raised tier misses; spread
    // comes first, so win it back and balance again until neither moves anything.
    balance::balance(&mut a, &mut search);
    while fill::spread_out(&mut a, &mut search) {
        balance::balance(&mut a, &mut search);
    }
    let primary = primary::choose(&a);
    Ok(Solution::build(problem, &a, &primary))
}
