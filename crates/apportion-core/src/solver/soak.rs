//! Random instances and the changes a running cluster sees, for the soak benchmark
//! (`apportion bench plan-soak`) and the property tests, so both draw exactly the same
//! cases and a seed names a case in either.
//!
//! An instance is a random problem (up to 5 zones, 16 members with limits 0-25 of which
//! some exit, 50 items with replication 0-5, and a random current assignment that may
//! name exiting and zero-limit members, duplicates and excess slots) followed by a few
//! changes, each applied to the solver's own previous answer: a member lost, exiting,
//! joining or changing its limit, an item changing its replication, an item added.

use super::fill::scramble;
use super::problem::{Current, Item, Member, Problem};
use super::scenario::{remove_members, settle};
use super::solution::Solution;

/// A SplitMix64 generator: a seed fixes the whole sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        scramble(self.0)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One soak instance: the problem to solve now and the changes still to come.
pub struct Soak {
    rng: Rng,
    problem: Problem,
    changes_left: u32,
}

impl Soak {
    /// The instance named by `seed`, at its first problem.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let zones = 1 + rng.below(5) as u32;
        let members: Vec<Member> = (0..1 + rng.below(16))
            .map(|_| Member {
                zone: rng.below(u64::from(zones)) as u32,
                item_limit: rng.below(26) as u32,
                exiting: rng.chance(15),
            })
            .collect();
        let items: Vec<Item> = (0..rng.below(51))
            .map(|_| Item {
                replication: rng.below(6) as u32,
            })
            .collect();
        let mut current = Vec::new();
        if !items.is_empty() {
            for _ in 0..rng.below(3 * items.len() as u64 + 1) {
                current.push(Current {
                    item: rng.below(items.len() as u64) as u32,
                    member: rng.below(members.len() as u64) as u32,
                    slot: rng.below(6) as u32,
                    consistent: rng.chance(80),
                });
            }
        }
        let changes_left = rng.below(5) as u32;
        Soak {
            rng,
            problem: Problem {
                members,
                items,
                current,
                pinned: Vec::new(),
            },
            changes_left,
        }
    }

    /// Forgets the current assignment of the problem to solve now: a solve from scratch,
    /// where spread must be won back exactly (see `check`).
    pub fn clear_current(&mut self) {
        self.problem.current.clear();
    }

    /// The problem to solve now.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }

    /// Makes `sol` (the solution of [`Self::problem`]) current, as a cluster does after
    /// applying a plan, and applies the next change; false when no change is left.
    pub fn advance(&mut self, sol: &Solution) -> bool {
        if self.changes_left == 0 {
            return false;
        }
        self.changes_left -= 1;
        settle(&mut self.problem, sol);
        self.change();
        true
    }

    fn change(&mut self) {
        let (rng, p) = (&mut self.rng, &mut self.problem);
        let nm = p.members.len() as u64;
        let ni = p.items.len() as u64;
        match rng.below(6) {
            0 if nm > 1 => {
                let gone = rng.below(nm) as u32;
                remove_members(p, |m, _| m == gone);
            }
            1 if nm > 0 => p.members[rng.below(nm) as usize].exiting = true,
            2 if nm > 0 => p.members[rng.below(nm) as usize].item_limit = rng.below(26) as u32,
            3 if ni > 0 => p.items[rng.below(ni) as usize].replication = rng.below(6) as u32,
            4 if ni < 50 => p.items.push(Item {
                replication: rng.below(6) as u32,
            }),
            _ if nm < 16 => {
                p.members.push(Member {
                    zone: rng.below(5) as u32,
                    item_limit: rng.below(26) as u32,
                    exiting: false,
                });
            }
            _ => p.members[rng.below(nm) as usize].exiting = false,
        }
    }
}
