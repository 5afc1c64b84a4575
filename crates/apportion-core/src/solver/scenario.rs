//! Synthetic clusters and the changes the benchmark and the scenario tests apply to them,
//! kept here so `apportion bench solver` and the tests exercise exactly the same cases.

use super::problem::{Current, Item, Member, Problem};
use super::solution::Solution;

/// A uniform cluster: member `i` in zone `i % zones`, every item with the same replication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Number of items.
    pub items: usize,
    /// Number of members.
    pub members: usize,
    /// Number of zones.
    pub zones: u32,
    /// Every member's item limit.
    pub item_limit: u32,
    /// Every item's replication.
    pub replication: u32,
}

impl Shape {
    /// The cluster with nothing assigned yet.
    pub fn empty(&self) -> Problem {
        Problem {
            members: (0..self.members)
                .map(|i| Member {
                    zone: i as u32 % self.zones,
                    item_limit: self.item_limit,
                    exiting: false,
                })
                .collect(),
            items: vec![
                Item {
                    replication: self.replication
                };
                self.items
            ],
            current: Vec::new(),
            pinned: Vec::new(),
        }
    }
}

/// Makes `sol` the current assignment of `p`: every replica consistent, primaries in slot 0.
pub fn settle(p: &mut Problem, sol: &Solution) {
    p.current.clear();
    p.current.reserve(sol.replicas.len());
    for x in 0..sol.items() as u32 {
        for (slot, r) in sol.replicas_of(x).iter().enumerate() {
            p.current.push(Current {
                item: x,
                member: r.member,
                slot: slot as u32,
                consistent: true,
            });
        }
    }
}

/// Removes the members for which `gone` holds, with their assignments, renumbering the rest.
pub fn remove_members(p: &mut Problem, gone: impl Fn(u32, &Member) -> bool) {
    let mut index = Vec::with_capacity(p.members.len());
    let mut kept = 0u32;
    for (i, m) in p.members.iter().enumerate() {
        if gone(i as u32, m) {
            index.push(u32::MAX);
        } else {
            index.push(kept);
            kept += 1;
        }
    }
    let mut i = 0;
    p.members.retain(|_| {
        i += 1;
        index[i - 1] != u32::MAX
    });
    p.current.retain_mut(|c| {
        c.member = index[c.member as usize];
        c.member != u32::MAX
    });
}

/// What the benchmark reports about one solution.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// Replicas added.
    pub adds: u64,
    /// Current replicas removed.
    pub removes: u64,
    /// Empty slots.
    pub unfilled_slots: u64,
    /// Least load of a member with capacity.
    pub min_load: u32,
    /// Largest load of a member with capacity.
    pub max_load: u32,
    /// Filled slots over the members with capacity.
    pub fair_share: f64,
    /// Fewest zones any item with replicas spans.
    pub min_zones_per_item: u32,
    /// Fewest primaries on a member with capacity.
    pub primaries_min: u32,
    /// Most primaries on a member.
    pub primaries_max: u32,
    /// Items whose primary moved: a current primary (slot 0) on another member than the
    /// solution's first replica. Each costs a handoff of leadership, so churn shows here.
    pub primary_moves: u64,
    /// The solve's steps (see `solve_within`), to size budgets against.
    pub steps: u64,
}

/// Measures a solution of `p`.
pub fn stats(p: &Problem, sol: &Solution) -> Stats {
    let mut load = vec![0u32; p.members.len()];
    let mut primaries = vec![0u32; p.members.len()];
    let mut min_zones = u32::MAX;
    let mut zones: Vec<u32> = Vec::new();
    for x in 0..sol.items() as u32 {
        let reps = sol.replicas_of(x);
        if let Some(first) = reps.first() {
            primaries[first.member as usize] += 1;
        }
        zones.clear();
        zones.extend(reps.iter().map(|r| p.members[r.member as usize].zone));
        zones.sort_unstable();
        zones.dedup();
        if !reps.is_empty() {
            min_zones = min_zones.min(zones.len() as u32);
        }
        for r in reps {
            load[r.member as usize] += 1;
        }
    }
    let primary_moves = p
        .current
        .iter()
        .filter(|c| c.slot == 0)
        .filter(|c| {
            sol.replicas_of(c.item)
                .first()
                .is_none_or(|r| r.member != c.member)
        })
        .count() as u64;
    let live: Vec<usize> = (0..p.members.len())
        .filter(|&m| p.members[m].capacity() > 0)
        .collect();
    let over =
        |v: &[u32], f: fn(u32, u32) -> u32, init: u32| live.iter().map(|&m| v[m]).fold(init, f);
    Stats {
        adds: sol.added,
        removes: sol.removed.len() as u64,
        unfilled_slots: sol.unfilled_slots,
        min_load: over(&load, u32::min, u32::MAX),
        max_load: over(&load, u32::max, 0),
        fair_share: sol.replicas.len() as f64 / live.len().max(1) as f64,
        min_zones_per_item: if min_zones == u32::MAX { 0 } else { min_zones },
        primaries_min: over(&primaries, u32::min, u32::MAX),
        primaries_max: primaries.iter().copied().max().unwrap_or(0),
        primary_moves,
        steps: sol.steps,
    }
}
