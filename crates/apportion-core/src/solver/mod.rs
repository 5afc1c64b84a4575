//! The solver: turns members, items and the current assignment into a desired assignment.
//!
//! # What it computes
//!
//! Every item wants `R` replicas on distinct members; a member holds at most its limit (0
//! while exiting). In priority order the solver
//!
//! 1. fills as many replica slots as possible: exactly the maximum flow;
//! 2. spreads each item over zones (`spread`): if every item can be balanced at the
//!    maximum fill, every item is; else if every item with `R >= 2` can keep two zones (at
//!    most `R - 1` per zone), every item does; an item that had to give way wins back as
//!    even a spread as the room left allows; spread is given up before a slot is;
//! 3. balances every member's load into the band `[floor, ceil]` of its fair share
//!    `filled * limit / total_limit` whenever the constraints allow, and as close as they
//!    allow otherwise (`fair`); a member inside its band gives nothing away, and a joining
//!    member (one holding nothing) takes its share;
//! 4. keeps as many current assignments as any assignment with the same fill, spread and
//!    member loads can (fewest moves);
//! 5. keeps each item's primary where it is unless balance needs it moved, and balances
//!    primaries the same way, preferring consistent replicas; an item that lost its
//!    primary takes it from a kept replica when it has one (`primary`).
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
//! Raising an item's spread level adds arcs, which could close a negative cycle, so levels
//! are raised only between whole solves: when slots stay empty while members have room,
//! `fill` loosens every item to "two zones", then to "no spread", finds which items the
//! extra fill needs, and the solve restarts from the current assignment with just those
//! raised (none when every slot is filled or every member is full). Once the fill is
//! final and balanced, an item whose level was raised wins back spread wherever a zone
//! holding two fewer than its fullest has room and the move is also a shortest path; its
//! level is tightened to what it now satisfies so balancing cannot undo it, and balancing
//! runs again.
//!
//! # Why every loop ends
//!
//! Each loop has a potential that strictly falls, or an explicit bound from the instance's
//! size, checked by a debug assertion next to it:
//!
//! - restarts (`solve_within`): each raises some item to a later stage, and an item passes
//!   at most two, so there are at most `2 * items`;
//! - filling (`fill`): every greedy turn and every augmenting path places one more replica,
//!   so at most as many as there are slots; `give_way` likewise;
//! - balancing and primaries (`balance`, `fair::by_paths`): every transfer lowers the pair
//!   (sum of squared deviations from the shares, then minus the units on joining members
//!   and the non-empty others) of integers bounded below (see `fair::by_paths`);
//! - winning spread back (`fill::spread_out`) and the loop that alternates it with
//!   balancing: every spread move lowers its item's level (`(M - 1)Z + n` for a fullest
//!   zone count `M` in `n` zones, see `spread`), never below balanced, and balancing never
//!   raises a level, so there are at most as many rounds as the levels' sum above balanced
//!   when the loop starts;
//! - a path search (`search`): a member is queued only when its label strictly falls, and
//!   expanded at most `n` times without negative cycles, an explicit `4n^2` bound.
//!
//! The cause of the hang this replaced (issue 12): spread was won back by moves that did
//! not tighten the item's tier (3 + 1 + 0 + 0 to 2 + 1 + 1 + 0 stays "at most R - 1 per
//! zone"), so balancing moved the replica back and the two alternated forever. Levels
//! finer than the old three tiers make every winning move tighten. On top of the bounds,
//! every solve counts its steps against a budget (`solve_within`), so a defect shows as
//! [`ProblemError::OverBudget`] rather than a hang.
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
//! When not every item can keep two zones (or be balanced) at once, which items give way
//! is decided by the first augmenting paths found, not by the fewest items; an item that
//! gave up its balanced spread may find a better one in a later solve of the settled
//! result and move replicas for it; and where winning spread back would cost more moves
//! than another way of giving the same member loads, the moves win (the checks ask for
//! spread won back exactly only when nothing is current). A member that a balance tie
//! leaves empty counts as joining in the next solve and takes its share then.

mod assignment;
mod balance;
pub mod check;
mod fair;
mod fill;
pub mod input;
mod primary;
mod problem;
pub mod scenario;
mod search;
pub mod soak;
mod solution;
mod spread;

pub use problem::{Current, Item, Member, Problem, ProblemError, MAX_SLOTS};
pub use solution::{Removed, Replica, Solution};

/// Computes the desired assignment for `problem`; fails only when the problem names an
/// index that does not exist or is too large for the solver's `u32` indices.
pub fn solve(problem: &Problem) -> Result<Solution, ProblemError> {
    solve_within(problem, u64::MAX)
}

/// A step budget far above what a correct solve of `problem` takes (about one step per
/// replica slot and current assignment, plus searches of at most every member), and far
/// below a hang: what a runtime passes to [`solve_within`] so that a solver defect costs
/// one failed solve, not the leader's allocation loop.
pub fn default_budget(problem: &Problem) -> u64 {
    let slots: u64 = problem
        .items
        .iter()
        .map(|i| u64::from(i.replication).min(problem.members.len() as u64))
        .sum();
    let size = slots
        + problem.current.len() as u64
        + problem.items.len() as u64
        + problem.members.len() as u64
        + 1;
    size.saturating_mul(problem.members.len() as u64 + 64)
        .saturating_add(1_000_000)
}

/// [`solve`] that gives up after `budget` steps (replicas placed, moved or dropped plus
/// members taken from a search queue) with [`ProblemError::OverBudget`]. Every loop of the solver
/// is bounded by the instance's size (see the module docs), so the budget never binds on a
/// correct solver; it turns a defect into an error instead of a hang, for the tests and
/// for a runtime that must not spin forever. [`Solution::steps`] tells what a solve took.
pub fn solve_within(problem: &Problem, budget: u64) -> Result<Solution, ProblemError> {
    let mut search = search::Search::default();
    let mut spent = 0u64;
    let mut levels = None;
    let mut restarts = 0usize;
    let mut a = loop {
        let mut a = assignment::Assignment::new(problem, levels, budget.saturating_sub(spent))?;
        match fill::fill(&mut a, &mut search) {
            Some(raised) if !a.exhausted() => {
                // Each restart raises some item to a later stage, and there are two.
                restarts += 1;
                debug_assert!(restarts <= 2 * problem.items.len());
                spent += a.steps();
                levels = Some(raised);
            }
            _ => break a,
        }
    };
    // Balancing can free room in a zone that an item with a raised level misses; spread
    // comes first, so win it back and balance again until neither moves anything. Every
    // round that moves lowers the sum of levels, which never falls below balanced.
    balance::balance(&mut a, &mut search);
    let slack = |a: &assignment::Assignment| -> u64 {
        a.level
            .iter()
            .zip(&a.want)
            .map(|(&l, &w)| u64::from(l - w))
            .sum()
    };
    let bound = cfg!(debug_assertions).then(|| slack(&a));
    let mut rounds = 0u64;
    while !a.exhausted() && fill::spread_out(&mut a, &mut search) {
        rounds += 1;
        debug_assert!(bound.is_some_and(|b| rounds <= b && slack(&a) <= b - rounds));
        balance::balance(&mut a, &mut search);
    }
    let primary = primary::choose(&a);
    let steps = spent + a.steps();
    if a.exhausted() {
        return Err(ProblemError::OverBudget { steps, budget });
    }
    Ok(Solution::build(problem, &a, &primary, steps))
}
