//! Shortest residual paths over members, the solver's fallback whenever a direct move
//! cannot be certified shortest.
//!
//! The flow network has item and member nodes, but every residual path alternates between
//! them, so the search runs on members only: an arc `A -> B` is "move a replica held by `A`
//! to `B`" (allowed when `B` does not hold the item and spread allows the zone change), and
//! costs `c(x, B) - c(x, A)` with `c` 1 for a fresh pair and 0 for a current one, so -1, 0
//! or +1. One extra node `S` stands for the item source: reaching it means dropping a
//! replica, leaving it means placing an item that has an empty slot.
//!
//! Distances are found Dijkstra-style with a heap. Enumerating arcs naively would cost
//! items x members per visited member, so each zone keeps the members not yet reached
//! (`unreached`) and those reached one above the current level (`next`): a replica scans
//! only those sets, every member it reaches leaves them, and a member it skips holds the
//! item, so a whole search costs O(members + replicas scanned).
//!
//! Negative arcs (a fresh replica back onto a dormant current member, or dropping a fresh
//! replica when an item with an empty slot has a dormant pair) are rare and start only at
//! members the counters know. While any exist the search does not stop at the first target
//! but runs until labels are stable, and a member whose label falls below the settled level
//! is expanded exhaustively, over every member rather than the zone sets, so that the
//! labels it lowers are found too. Without negative cycles (the solver's invariant) this is
//! a correct label-correcting shortest path search.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::assignment::{Assignment, NONE};

/// Where a path starts.
pub(crate) enum Origin<'a> {
    /// The item source: any item with an empty slot gains a replica (a fill path).
    Spare,
    /// Any of these members gives one replica away (a balancing path).
    Members(&'a [u32]),
}

/// One step of a residual path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The replica in `slot` moves to member `to`.
    Move { slot: u32, to: u32 },
    /// Item `item` gains a replica on member `to`.
    Place { item: u32, to: u32 },
    /// The replica in `slot` is dropped (its item gets an empty slot).
    Drop { slot: u32 },
}

impl Step {
    /// The item the step changes, read before the step is applied.
    pub fn item(&self, a: &Assignment) -> u32 {
        match *self {
            Step::Move { slot, .. } | Step::Drop { slot } => a.slot_item[slot as usize],
            Step::Place { item, .. } => item,
        }
    }
}

const UNSEEN: i64 = i64::MAX;
const IN_NONE: u8 = 0;
const IN_UNREACHED: u8 = 1;
const IN_NEXT: u8 = 2;

/// Reusable buffers for path searches, sized to the members.
#[derive(Default)]
pub(crate) struct Search {
    dist: Vec<i64>,
    pred_from: Vec<u32>,
    pred_via: Vec<u32>,
    set: Vec<u8>,
    set_pos: Vec<u32>,
    unreached: Vec<Vec<u32>>,
    next: Vec<Vec<u32>>,
    heap: BinaryHeap<Reverse<(i64, u32)>>,
    spare: Vec<u32>,
    spare_built: bool,
    level: i64,
    source: u32,
    source_is_origin: bool,
    unit_cost: bool,
}

impl Search {
    /// The cheapest residual path from `origin` to a member for which `is_target` holds,
    /// ties broken towards the lower member index; `None` if no target is reachable.
    pub fn find(
        &mut self,
        a: &Assignment,
        origin: &Origin,
        is_target: &dyn Fn(u32) -> bool,
    ) -> Option<Vec<Step>> {
        self.unit_cost = false;
        self.run(a, origin, is_target)
    }

    /// A path with the fewest arcs from `origin` to a target, whatever it costs: only
    /// whether one exists matters, in a network that may have negative cycles.
    pub fn find_any(
        &mut self,
        a: &Assignment,
        origin: &Origin,
        is_target: &dyn Fn(u32) -> bool,
    ) -> Option<Vec<Step>> {
        self.unit_cost = true;
        self.run(a, origin, is_target)
    }

    fn run(
        &mut self,
        a: &Assignment,
        origin: &Origin,
        is_target: &dyn Fn(u32) -> bool,
    ) -> Option<Vec<Step>> {
        if let Origin::Members(sources) = origin {
            if confined(a, sources, is_target) {
                return None;
            }
        }
        self.reset(a);
        self.source_is_origin = matches!(origin, Origin::Spare);
        match origin {
            Origin::Spare => self.relax(a, self.source, 0, NONE, NONE),
            Origin::Members(ms) => {
                for &m in ms.iter() {
                    self.relax(a, m, 0, NONE, NONE);
                }
            }
        }
        // Without arcs of negative cost into members, the first target popped is the
        // closest, as in Dijkstra. With them, labels may still fall after a target is
        // popped, so the search runs until every label is stable. Negative arcs are a
        // fresh replica returning to a dormant member, and dropping a fresh replica to
        // place, for free, an item with an empty slot on a dormant member (which a search
        // that starts at the item source never does).
        let through_source = !self.source_is_origin && a.spare_dormant > 0;
        let negative = !self.unit_cost && (a.hazard_members > 0 || through_source);
        // Termination: a node is pushed only when its label strictly falls, and expanded
        // only when popped with its current label. Without negative cycles (the solver's
        // invariant) labels are bounded below, so each node is expanded at most n times
        // (Bellman-Ford); `budget` makes that bound explicit, and once it is spent nothing
        // more is pushed, so the heap drains. The solve's own step budget stops it too.
        let n = self.dist.len() as u64;
        let mut budget = n.saturating_mul(n).saturating_mul(4).saturating_add(64);
        while let Some(Reverse((d, node))) = self.heap.pop() {
            if !a.tick() {
                return None;
            }
            if d != self.dist[node as usize] || budget == 0 {
                debug_assert!(
                    budget > 0,
                    "a label fell more often than without negative cycles"
                );
                continue;
            }
            budget -= 1;
            // A label below the settled level may improve members the zone sets no longer
            // list (the source's arcs cost 1, so it may sit one below): expand exhaustively.
            let slack = i64::from(node == self.source);
            let exhaustive = d + slack < self.level;
            if d > self.level {
                self.advance(d);
            }
            if node != self.source && is_target(node) && !negative {
                return Some(self.path(a, node));
            }
            if node == self.source {
                self.expand_source(a, d, exhaustive);
            } else {
                self.expand_member(a, node, d, exhaustive);
            }
        }
        (0..self.source)
            .filter(|&m| self.dist[m as usize] != UNSEEN && is_target(m))
            .min_by_key(|&m| (self.dist[m as usize], m))
            .map(|t| self.path(a, t))
    }

    fn reset(&mut self, a: &Assignment) {
        let n = a.cap.len();
        self.source = n as u32;
        self.dist.clear();
        self.dist.resize(n + 1, UNSEEN);
        self.pred_from.clear();
        self.pred_from.resize(n + 1, NONE);
        self.pred_via.clear();
        self.pred_via.resize(n + 1, NONE);
        self.set.clear();
        self.set.resize(n + 1, IN_NONE);
        self.set_pos.resize(n + 1, 0);
        self.unreached.resize(a.zone_members.len(), Vec::new());
        self.next.resize(a.zone_members.len(), Vec::new());
        for (z, members) in a.zone_members.iter().enumerate() {
            self.next[z].clear();
            self.unreached[z].clear();
            for &m in members {
                self.set[m as usize] = IN_UNREACHED;
                self.set_pos[m as usize] = self.unreached[z].len() as u32;
                self.unreached[z].push(m);
            }
        }
        self.heap.clear();
        self.spare_built = false;
        self.level = 0;
    }

    /// The label an arc of cost `cost` leads to from label `d`; every arc counts 1 when
    /// only the number of arcs matters.
    fn arc(&self, d: i64, cost: i64) -> i64 {
        d + if self.unit_cost { 1 } else { cost }
    }

    /// Moves the settled level to `d`: members waiting one above it are now at it.
    fn advance(&mut self, d: i64) {
        self.level = d;
        for z in 0..self.next.len() {
            for &m in &self.next[z] {
                self.set[m as usize] = IN_NONE;
            }
            self.next[z].clear();
        }
    }

    fn relax(&mut self, a: &Assignment, node: u32, nd: i64, from: u32, via: u32) {
        let n = node as usize;
        if nd >= self.dist[n] {
            return;
        }
        self.dist[n] = nd;
        self.pred_from[n] = from;
        self.pred_via[n] = via;
        if node != self.source {
            self.take_out(a, node);
            if nd == self.level + 1 {
                let z = a.zone[n] as usize;
                self.set[n] = IN_NEXT;
                self.set_pos[n] = self.next[z].len() as u32;
                self.next[z].push(node);
            }
        }
        self.heap.push(Reverse((nd, node)));
    }

    /// Removes member `m` from whichever zone set holds it.
    fn take_out(&mut self, a: &Assignment, m: u32) {
        let mu = m as usize;
        let list = match self.set[mu] {
            IN_UNREACHED => &mut self.unreached[a.zone[mu] as usize],
            IN_NEXT => &mut self.next[a.zone[mu] as usize],
            _ => return,
        };
        let at = self.set_pos[mu] as usize;
        list.swap_remove(at);
        if let Some(&moved) = list.get(at) {
            self.set_pos[moved as usize] = at as u32;
        }
        self.set[mu] = IN_NONE;
    }

    fn expand_member(&mut self, a: &Assignment, m: u32, d: i64, exhaustive: bool) {
        let za = a.zone[m as usize];
        let held = &a.held[m as usize];
        if a.spare_items > 0 && !self.source_is_origin {
            let drop = held
                .iter()
                .copied()
                .find(|&s| a.fresh[s as usize])
                .or_else(|| held.first().copied());
            if let Some(s) = drop {
                let cost = -i64::from(a.fresh[s as usize]);
                self.relax(a, self.source, self.arc(d, cost), m, s);
            }
        }
        // Replicas that cannot change zones reach only this member's zone. Once that zone
        // has nobody left to reach, only an arc of cost -1 could still lower a label, and
        // those start only at members holding a fresh replica with a dormant pair.
        let only = (a.all_locked(m) && a.relax == 0).then_some(za);
        if let Some(z) = only {
            let z = z as usize;
            let settled = self.unreached[z].is_empty() && self.next[z].is_empty();
            if settled && a.hazard[m as usize] == 0 && !exhaustive {
                return;
            }
        }
        for &s in held {
            let x = a.slot_item[s as usize];
            let fresh = i64::from(a.fresh[s as usize]);
            if a.dormant[x as usize] > 0 {
                for &b in a.current_of(x) {
                    if !a.holds(x, b) && a.allows(x, Some(za), a.zone[b as usize]) {
                        self.relax(a, b, self.arc(d, -fresh), m, s);
                    }
                }
            }
            let nd = self.arc(d, 1 - fresh);
            self.generic(a, x, Some(za), only, nd, (m, s), exhaustive);
        }
    }

    fn expand_source(&mut self, a: &Assignment, d: i64, exhaustive: bool) {
        if !self.spare_built {
            self.spare.clear();
            self.spare.extend(
                (0..a.want.len() as u32).filter(|&x| a.nfill[x as usize] < a.want[x as usize]),
            );
            self.spare_built = true;
        }
        let spare = std::mem::take(&mut self.spare);
        for &x in &spare {
            if a.dormant[x as usize] > 0 {
                for &b in a.current_of(x) {
                    if !a.holds(x, b) && a.allows(x, None, a.zone[b as usize]) {
                        self.relax(a, b, self.arc(d, 0), self.source, x);
                    }
                }
            }
            let nd = self.arc(d, 1);
            self.generic(a, x, None, None, nd, (self.source, x), exhaustive);
        }
        self.spare = spare;
    }

    /// Relaxes the arcs that put item `x` (leaving zone `from`) on any member not holding
    /// it, at distance `nd`; `only` restricts them to one zone.
    /// `pred` is the arc's origin and its slot or item; `exhaustive` checks every member
    /// instead of only those the zone sets list.
    #[allow(clippy::too_many_arguments)]
    fn generic(
        &mut self,
        a: &Assignment,
        x: u32,
        from: Option<u32>,
        only: Option<u32>,
        nd: i64,
        (node, via): (u32, u32),
        exhaustive: bool,
    ) {
        let with_next = nd <= self.level;
        let zones = match only {
            Some(z) => z as usize..z as usize + 1,
            None => 0..a.zone_members.len(),
        };
        for z in zones {
            if exhaustive {
                if a.zone_members[z].is_empty() || !a.allows(x, from, z as u32) {
                    continue;
                }
                for &b in &a.zone_members[z] {
                    if !a.holds(x, b) {
                        self.relax(a, b, nd, node, via);
                    }
                }
                continue;
            }
            let open = !self.unreached[z].is_empty() || (with_next && !self.next[z].is_empty());
            if !open || !a.allows(x, from, z as u32) {
                continue;
            }
            let mut i = 0;
            while i < self.unreached[z].len() {
                let b = self.unreached[z][i];
                if a.holds(x, b) {
                    i += 1;
                } else {
                    self.relax(a, b, nd, node, via);
                }
            }
            if with_next {
                let mut i = 0;
                while i < self.next[z].len() {
                    let b = self.next[z][i];
                    if a.holds(x, b) || nd >= self.dist[b as usize] {
                        i += 1;
                    } else {
                        self.relax(a, b, nd, node, via);
                    }
                }
            }
        }
    }

    /// The steps from the origin to `t`, in order.
    fn path(&self, a: &Assignment, t: u32) -> Vec<Step> {
        let mut steps = Vec::new();
        let mut n = t;
        while self.pred_from[n as usize] != NONE && steps.len() <= a.cap.len() + 1 {
            let from = self.pred_from[n as usize];
            let via = self.pred_via[n as usize];
            steps.push(if n == self.source {
                Step::Drop { slot: via }
            } else if from == self.source {
                Step::Place { item: via, to: n }
            } else {
                Step::Move { slot: via, to: n }
            });
            n = from;
        }
        steps.reverse();
        steps
    }
}

/// Whether no path can leave the zones of `sources` and none of their members is a
/// target: every member there holds only replicas locked in their zone and no item has
/// an empty slot (the source node would lead anywhere). A zone-skewed cluster asks this
/// of every solve, and answering it costs one pass over the members instead of a search.
fn confined(a: &Assignment, sources: &[u32], is_target: &dyn Fn(u32) -> bool) -> bool {
    if a.spare_items > 0 || a.relax > 0 {
        return false;
    }
    let mut open = vec![false; a.zone_members.len()];
    for &m in sources {
        open[a.zone[m as usize] as usize] = true;
    }
    let inside = |m: &u32| open[a.zone[*m as usize] as usize];
    let members = || a.zone_members.iter().flatten().filter(|m| inside(m));
    members().all(|&m| a.all_locked(m)) && !members().any(|&m| is_target(m))
}

/// What a path costs in moves, read before it is applied.
pub(crate) fn path_cost(a: &Assignment, steps: &[Step]) -> i64 {
    steps
        .iter()
        .map(|&step| match step {
            Step::Move { slot, to } => i64::from(a.move_cost(slot, to)),
            Step::Place { item, to } => i64::from(!a.is_current(item, to)),
            Step::Drop { slot } => -i64::from(a.fresh[slot as usize]),
        })
        .sum()
}

/// Applies a path's steps to the assignment.
pub(crate) fn apply(a: &mut Assignment, steps: &[Step]) {
    for &step in steps {
        match step {
            Step::Move { slot, to } => a.shift(slot, to),
            Step::Place { item, to } => a.place(item, to),
            Step::Drop { slot } => a.unplace(slot),
        }
    }
}
