//! The solver's output: the desired assignment and its difference from the current one.

use super::assignment::{Assignment, NONE};
use super::problem::Problem;

/// One desired replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replica {
    /// Index into [`Problem::members`].
    pub member: u32,
    /// True when `(item, member)` is not a current assignment: the runtime must add it.
    pub added: bool,
}

/// One current assignment that the desired assignment does not keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Removed {
    /// Index into [`Problem::items`].
    pub item: u32,
    /// Index into [`Problem::members`].
    pub member: u32,
    /// Its slot in the current assignment.
    pub slot: u32,
}

/// The desired assignment, item by item, with the diff against the current one.
///
/// Replicas are stored flat (`first[x]..first[x + 1]` indexes `replicas`) so that a
/// million items cost two vectors, not a million allocations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Solution {
    /// Start of every item's replicas in `replicas`; one more entry than there are items.
    pub first: Vec<u32>,
    /// Desired replicas, grouped by item; an item's first replica is its primary (slot 0).
    pub replicas: Vec<Replica>,
    /// Current assignments not kept, in item order; each `(item, member)` pair once.
    pub removed: Vec<Removed>,
    /// Current assignments kept.
    pub kept: u64,
    /// Desired replicas that are not current.
    pub added: u64,
    /// Replica slots left empty: the sum of replications minus the replicas placed.
    pub unfilled_slots: u64,
    /// The work the solve took, in the steps a budget counts (see `solve_within`): a
    /// measure of cost that does not depend on the machine.
    pub steps: u64,
}

impl Solution {
    /// Desired replicas of item `x`, primary first.
    pub fn replicas_of(&self, x: u32) -> &[Replica] {
        &self.replicas[self.first[x as usize] as usize..self.first[x as usize + 1] as usize]
    }

    /// The number of items.
    pub fn items(&self) -> usize {
        self.first.len() - 1
    }

    /// Reads the final state: replicas primary first, then the removed current pairs.
    pub(crate) fn build(p: &Problem, a: &Assignment, primary: &[u32], steps: u64) -> Self {
        let items = a.want.len();
        let mut first = Vec::with_capacity(items + 1);
        let mut replicas = Vec::with_capacity(a.filled as usize);
        for x in 0..items as u32 {
            first.push(replicas.len() as u32);
            let p = primary[x as usize];
            let slots = a
                .slots(x)
                .map(|s| s as u32)
                .filter(|&s| a.holder[s as usize] != NONE);
            for s in std::iter::once(p)
                .filter(|&s| s != NONE)
                .chain(slots.filter(|&s| s != p))
            {
                replicas.push(Replica {
                    member: a.holder[s as usize],
                    added: a.fresh[s as usize],
                });
            }
        }
        first.push(replicas.len() as u32);
        let added = replicas.iter().filter(|r| r.added).count() as u64;
        let kept = replicas.len() as u64 - added;
        let asked: u64 = a.asked.iter().map(|&r| u64::from(r)).sum();
        let mut sol = Solution {
            first,
            replicas,
            removed: Vec::new(),
            kept,
            added,
            unfilled_slots: asked - a.filled,
            steps,
        };
        sol.removed = sol.diff_removed(p);
        sol
    }

    /// Current pairs the solution does not hold, each pair once (its first entry), in
    /// item then member order.
    fn diff_removed(&self, p: &Problem) -> Vec<Removed> {
        let mut removed: Vec<Removed> = p
            .current
            .iter()
            .filter(|c| {
                !self
                    .replicas_of(c.item)
                    .iter()
                    .any(|r| r.member == c.member)
            })
            .map(|c| Removed {
                item: c.item,
                member: c.member,
                slot: c.slot,
            })
            .collect();
        removed.sort_by_key(|r| (r.item, r.member));
        removed.dedup_by_key(|r| (r.item, r.member));
        removed
    }
}
