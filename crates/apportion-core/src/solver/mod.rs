//! The solver: turns members, items and the current assignment into a desired assignment.
//!
//! # What it computes
//!
//! Every item `x` wants `R` replicas on distinct members; member `m` holds at most its
//! limit (0 while exiting). In priority order the solver
//!
//! 1. fills as many replica slots as possible — exactly the maximum flow;
//! 2. spreads each item over zones (`spread`), giving spread up before a slot;
//! 3. balances every member's load into the band around its fair share
//!    `filled * limit / total_limit` whenever the constraints allow, and as close as they
//!    allow otherwise (`fair`); a member inside its band gives nothing away;
//! 4. keeps as many current assignments as any assignment with the same loads can;
//! 5. keeps each item's primary, balancing primaries the same way (`primary`).
//!
//! It is pure and deterministic: same input, same output.
//!
//! # How: incremental min-cost flow over members
//!
//! The model is the flow network source -> item (capacity R) -> item-zone (spread) ->
//! member (capacity 1, cost 0 when the pair is current, 1 when it is new) -> sink
//! (capacity the member's limit). Objective 4 is "the flow is min-cost for its member
//! loads". The current assignment, minus what must go (see `Assignment::new`), is a flow
//! of cost 0 and therefore min-cost; augmenting only along paths that are *shortest between
//! their two ends* keeps the residual graph free of negative cycles, so the final flow is
//! min-cost for its loads whatever order the augmentations come in.
//!
//! Items are many and members few, so paths are searched on members only (`search`): an
//! arc moves one replica from member to member. Most augmentations are one arc long —
//! place a missing replica on the least loaded allowed member (`fill`), or let a member
//! below its share pull a replica from the fullest member of its zone (`balance`). Such a
//! direct move is applied without a search when cheap counters prove it is also a shortest
//! path (no other member can start a negative arc, and no cheaper first arc exists); the
//! general search handles the rest and proves that nothing more can be filled or balanced.
//! Starting from the current assignment, the work grows with the size of the change: a
//! lost member costs one greedy placement per lost replica plus a few verifying searches.
//!
//! Why this and not push-relabel over the whole network: the network has items x members
//! arcs, and a settled cluster needs almost none of them; a per-member search with
//! "members not reached yet" sets touches every replica at most once, and the greedy fast
//! path makes a scratch solve one heap operation per replica.

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
    balance::balance(&mut a, &mut search);
    let primary = primary::choose(&a);
    Ok(Solution::build(problem, &a, &primary))
}
