//! Synthetic clusters and the changes the benchmark and the scenario tests apply to them,
//! kept here so `apportion bench solver` and the tests exercise exactly the same cases.

use super::problem::{Current, Item, Member, Problem};
use super::solution::Solution;
use crate::away::Holds;
use crate::planner::Desired;
use crate::settings::ClusterSettings;

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
    let lists = (0..sol.items() as u32).map(|x| sol.replicas_of(x).iter().map(|r| r.member));
    settle_lists(p, lists);
}

/// Makes `desired` the current assignment of `p`, as [`settle`] does a solution: what the
/// runtime's planner works toward when the answer carries copies the solver did not place
/// (those [`Holds::desired`] keeps for a restarting member).
pub fn settle_desired(p: &mut Problem, desired: &Desired) {
    let lists = (0..p.items.len()).map(|x| desired.wanted(x).iter().copied());
    settle_lists(p, lists);
}

/// Makes the members of each item's list, in item order, its current replicas in slot
/// order, every one consistent.
fn settle_lists<L: IntoIterator<Item = u32>>(p: &mut Problem, lists: impl IntoIterator<Item = L>) {
    let mut current = Vec::with_capacity(p.current.len());
    for (x, list) in lists.into_iter().enumerate() {
        for (slot, member) in list.into_iter().enumerate() {
            current.push(Current {
                item: x as u32,
                member,
                slot: slot as u32,
                consistent: true,
            });
        }
    }
    p.current = current;
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
        primary_moves: primary_moves(p, sol),
        steps: sol.steps,
    }
}

/// Items whose primary moved: a current primary (slot 0) of `p` on another member than the
/// first replica of `sol`. Each costs a handoff of leadership, so churn shows here.
pub fn primary_moves(p: &Problem, sol: &Solution) -> u64 {
    primaries_changed(p, |x| sol.replicas_of(x).first().map(|r| r.member))
}

/// How many of `p`'s current primaries are not the first member `first` names for their
/// item.
fn primaries_changed(p: &Problem, first: impl Fn(u32) -> Option<u32>) -> u64 {
    p.current
        .iter()
        .filter(|c| c.slot == 0)
        .filter(|c| first(c.item) != Some(c.member))
        .count() as u64
}

/// A rolling restart in restart mode, one member's turn at a time ([`RollingRestart::turn`]),
/// with what it moved so far: a copy added on a member that held that item when the
/// restart began, or just before it left (the copies offered back to it), is **returned**;
/// any other added copy is a **replica move**. A restart that works moves no replica: the
/// member's replicas wait for it and come back to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollingRestart {
    /// The (item, member) pairs at the start, sorted.
    start: Vec<(u32, u32)>,
    /// Copies added on a member that held that item neither at the start nor when it left.
    pub replica_moves: u64,
    /// Copies added on a member that held that item at the start or when it left.
    pub returned: u64,
    /// Copies removed (the offered copies the solver did not take never existed: not
    /// counted).
    pub removes: u64,
    /// Items whose primary moved, summed over every solve.
    pub primary_moves: u64,
}

impl RollingRestart {
    /// A rolling restart of `p` as it is now, nothing moved yet.
    pub fn begin(p: &Problem) -> Self {
        let mut start: Vec<(u32, u32)> = p.current.iter().map(|c| (c.item, c.member)).collect();
        start.sort_unstable();
        start.dedup();
        RollingRestart {
            start,
            replica_moves: 0,
            returned: 0,
            removes: 0,
            primary_moves: 0,
        }
    }

    /// `member`'s turn, as the allocator sees it under the default settings (`min_ready`
    /// 1): (a) it restarts: the problem under [`Holds::for_restart`] is solved with
    /// `solve` and the answer ([`Holds::desired`]: its copies kept, its primaries handed
    /// over) settled; it leaves, and its copies end with its lease; (b) it is back: the
    /// problem under [`Holds::for_return`], offering it the items it held, is solved and
    /// settled. `solve` is the caller's, so that a benchmark can time it and a test check
    /// it; its error ends the turn. The moves are added to the figures.
    pub fn turn<E>(
        &mut self,
        p: &mut Problem,
        member: u32,
        mut solve: impl FnMut(&Problem) -> Result<Solution, E>,
    ) -> Result<(), E> {
        let min_ready = ClusterSettings::default().min_ready;
        let mut held: Vec<u32> = p
            .current
            .iter()
            .filter(|c| c.member == member)
            .map(|c| c.item)
            .collect();
        held.sort_unstable();
        held.dedup();
        let restarting = Holds::for_restart(p, member, min_ready);
        self.step(p, &restarting, &mut solve)?;
        p.current.retain(|c| c.member != member);
        let back = Holds::for_return(p, member, &held, min_ready);
        self.step(p, &back, &mut solve)
    }

    /// Solves `p` under `holds`, counts what the answer changes in `p`, and settles it.
    fn step<E>(
        &mut self,
        p: &mut Problem,
        holds: &Holds,
        solve: &mut impl FnMut(&Problem) -> Result<Solution, E>,
    ) -> Result<(), E> {
        let mut solving = p.clone();
        holds.apply(&mut solving);
        let sol = solve(&solving)?;
        let offered = |x: u32, m: u32| holds.returning.binary_search(&(x, m)).is_ok();
        for x in 0..sol.items() as u32 {
            for r in sol.replicas_of(x) {
                if !r.added && !offered(x, r.member) {
                    continue;
                }
                let before =
                    offered(x, r.member) || self.start.binary_search(&(x, r.member)).is_ok();
                if before {
                    self.returned += 1;
                } else {
                    self.replica_moves += 1;
                }
            }
        }
        let removes = sol.removed.iter().filter(|r| !offered(r.item, r.member));
        self.removes += removes.count() as u64;
        // Against the answer the planner gets: frozen items left the solved problem.
        let desired = holds.desired(&sol);
        self.primary_moves += primaries_changed(p, |x| desired.wanted(x as usize).first().copied());
        settle_desired(p, &desired);
        Ok(())
    }
}
