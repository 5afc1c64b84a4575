//! Primaries (objective 5): exactly one per item that has replicas.
//!
//! An item that lost its primary (nobody holds slot 0: its member is gone) takes it from
//! a kept replica when it has one; a new replica may lead only the other items. The
//! planner must promote a consistent copy of such an item at once, so a new replica
//! chosen as primary would be served by another copy first and moved to later: every
//! primary of a lost member would move twice, in two rounds. An item whose primary still
//! serves (on a draining member, say) may hand it to a new replica: the planner keeps the
//! old primary until the new one is consistent, one move.
//!
//! An item keeps its current primary while that member still holds it. Any other item
//! takes the replica that may lead whose member is furthest below its share of primaries
//! (see `fair`), and among equals the one ranked best by consistency (kept and consistent,
//! then kept, then new). Primaries are then balanced like replicas: a unit moves from `u` to `w` by
//! making `w`'s replica of an item primary instead of `u`'s, first directly between the
//! holders of one item, then along breadth-first paths over the "primary of an item that
//! the next member also holds" graph (`fair::by_paths`) until no path remains. A member
//! pulling directly takes one primary at a time from whichever holder has the highest key
//! at that moment, so no holder is drained below its band (and then pulls primaries back
//! from others, each one more move) while another holder is still above it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use super::assignment::{Assignment, NONE};
use super::fair::{by_paths, Fair, Key, Paths};

/// The primary slot of every item, `NONE` for an item without replicas.
pub(crate) fn choose(a: &Assignment) -> Vec<u32> {
    let assigned = a.nfill.iter().filter(|&&n| n > 0).count() as u64;
    // Pinned copies are left out here (see `Problem::pinned`).
    let fair = Fair::new(&a.cap, &[], &a.joining, assigned);
    // Every member starts with no primary: below its band whenever its band is not empty.
    let below = (0..a.cap.len() as u32)
        .filter(|&m| fair.side(m, 0) < 0)
        .count() as u32;
    let orphaned = (0..a.want.len() as u32)
        .map(|x| {
            a.cur_primary[x as usize] == NONE
                && a.slots(x).any(|s| a.holder[s] != NONE && !a.fresh[s])
        })
        .collect();
    let mut p = Primaries {
        a,
        orphaned,
        slot: vec![NONE; a.want.len()],
        count: vec![0; a.cap.len()],
        above: 0,
        below,
        fair,
    };
    p.keep_or_pick();
    if assigned > 0 {
        p.pull_direct();
        p.push_direct();
        by_paths(&mut p);
    }
    p.slot
}

struct Primaries<'a> {
    a: &'a Assignment,
    /// Per item: whether it lost its primary and keeps a replica (then only kept replicas
    /// may lead).
    orphaned: Vec<bool>,
    slot: Vec<u32>,
    count: Vec<u32>,
    /// Members above their band.
    above: u32,
    /// Members below their band.
    below: u32,
    fair: Fair,
}

impl Primaries<'_> {
    /// Whether the replica in slot `s` may take its item's primary (see the module docs).
    fn may_lead(&self, s: usize) -> bool {
        let a = self.a;
        a.holder[s] != NONE && !(a.fresh[s] && self.orphaned[a.slot_item[s] as usize])
    }

    /// How good a replica is as primary: 0 kept and consistent, 1 kept, 2 new.
    fn rank(&self, s: usize) -> u8 {
        let a = self.a;
        if a.fresh[s] {
            return 2;
        }
        let x = a.slot_item[s];
        let at = a.current_of(x).iter().position(|&m| m == a.holder[s]);
        let consistent = at.is_some_and(|i| a.cur_consistent[a.cur_first[x as usize] as usize + i]);
        if consistent {
            0
        } else {
            1
        }
    }

    fn keep_or_pick(&mut self) {
        let a = self.a;
        for x in 0..a.want.len() as u32 {
            let p = a.cur_primary[x as usize];
            if p == NONE {
                continue;
            }
            if let Some(s) = a.slots(x).find(|&s| a.holder[s] == p) {
                self.set(x, s as u32);
            }
        }
        for x in 0..a.want.len() as u32 {
            if self.slot[x as usize] != NONE {
                continue;
            }
            let best = a
                .slots(x)
                .filter(|&s| self.may_lead(s))
                .min_by_key(|&s| (self.key(a.holder[s], 1), self.rank(s), a.holder[s]));
            if let Some(s) = best {
                self.set(x, s as u32);
            }
        }
    }

    fn set(&mut self, x: u32, s: u32) {
        let old = self.slot[x as usize];
        if old != NONE {
            self.add(self.a.holder[old as usize], -1);
        }
        self.slot[x as usize] = s;
        self.add(self.a.holder[s as usize], 1);
    }

    /// Changes member `m`'s primary count, keeping the counts of members above and below
    /// their band.
    fn add(&mut self, m: u32, delta: i32) {
        let c = &mut self.count[m as usize];
        let was = self.fair.side(m, u64::from(*c));
        *c = c.wrapping_add_signed(delta);
        let is = self.fair.side(m, u64::from(*c));
        self.above = (self.above + u32::from(is > 0)) - u32::from(was > 0);
        self.below = (self.below + u32::from(is < 0)) - u32::from(was < 0);
    }

    fn improves(&self, u: u32, w: u32) -> bool {
        let c = &self.count;
        self.fair
            .improves(u, u64::from(c[u as usize]), w, u64::from(c[w as usize]))
    }

    fn key(&self, m: u32, extra: u64) -> super::fair::Key {
        self.fair.key(m, u64::from(self.count[m as usize]) + extra)
    }

    /// Members below their share take primaries of items they hold.
    fn pull_direct(&mut self) {
        let a = self.a;
        let mut order: Vec<u32> = (0..a.cap.len() as u32)
            .filter(|&m| a.cap[m as usize] > 0)
            .collect();
        order.sort_by_cached_key(|&m| (self.key(m, 1), m));
        let top = (0..a.cap.len() as u32).map(|m| self.key(m, 0)).max();
        for v in order {
            // Keys only fall while pulling, so once no member is above this one's next
            // key, no later member (in ascending order) can pull either.
            if top.is_none_or(|t| t <= self.key(v, 1)) {
                break;
            }
            // A member inside its band only takes from one above its own.
            if self.above == 0 && self.fair.side(v, u64::from(self.count[v as usize])) >= 0 {
                continue;
            }
            // Take from the holder whose key is highest now, one primary at a time, so
            // members inside their band keep their primaries whenever members above it can
            // give instead, and no holder is drained below its band while others are above.
            // The offers are grouped by holder, lowest slot first: a pull changes only the
            // giver's key, so one heap entry per holder is refreshed, not one per offer.
            let mut by_holder: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
            for &s in &a.held[v as usize] {
                if self.slot[a.slot_item[s as usize] as usize] != s && self.may_lead(s as usize) {
                    by_holder
                        .entry(self.holder_of_primary(s))
                        .or_default()
                        .push(s);
                }
            }
            let mut givers: BinaryHeap<(Key, Reverse<u32>)> = BinaryHeap::new();
            for (&u, slots) in &mut by_holder {
                slots.sort_unstable_by(|x, y| y.cmp(x));
                givers.push((self.key(u, 0), Reverse(u)));
            }
            // Every turn makes a primary pull (a transfer, which lowers the potential of
            // `fair::by_paths`), refreshes the giver's stale key (at most once per pull), or
            // ends the member's turn.
            while let Some((k, Reverse(u))) = givers.pop() {
                let now = self.key(u, 0);
                if now != k {
                    givers.push((now, Reverse(u)));
                    continue;
                }
                // The holder with the highest key cannot give: no other can either.
                if !self.improves(u, v) {
                    break;
                }
                let slots = by_holder.get_mut(&u).expect("every giver has offers");
                let s = slots.pop().expect("a giver in the heap has an offer left");
                self.set(a.slot_item[s as usize], s);
                if !slots.is_empty() {
                    givers.push((self.key(u, 0), Reverse(u)));
                }
            }
        }
    }

    /// The member holding the primary of the item in slot `s`.
    fn holder_of_primary(&self, s: u32) -> u32 {
        let a = self.a;
        a.holder[self.slot[a.slot_item[s as usize] as usize] as usize]
    }

    /// Members above their share hand primaries to the holder that can best take them.
    fn push_direct(&mut self) {
        let a = self.a;
        let mut order: Vec<u32> = (0..a.cap.len() as u32)
            .filter(|&m| self.count[m as usize] > 0)
            .collect();
        order.sort_by_cached_key(|&m| (std::cmp::Reverse(self.key(m, 0)), m));
        let bottom = (0..a.cap.len() as u32)
            .filter(|&m| a.cap[m as usize] > 0)
            .map(|m| self.key(m, 1))
            .min();
        for u in order {
            // Next keys only rise while handing off, so once this member's key is not
            // above the lowest next key, no later member (in descending order) can give.
            if bottom.is_none_or(|b| self.key(u, 0) <= b) {
                break;
            }
            // A giver inside its band gives only to a member below its own; keys fall in
            // this order, so once there is none, no later member gives either.
            if self.below == 0 && self.fair.side(u, u64::from(self.count[u as usize])) <= 0 {
                break;
            }
            for &s in &a.held[u as usize] {
                let x = a.slot_item[s as usize];
                if self.slot[x as usize] != s {
                    continue;
                }
                let to = a
                    .slots(x)
                    .filter(|&t| self.may_lead(t) && t as u32 != s)
                    .filter(|&t| self.improves(u, a.holder[t]))
                    .min_by_key(|&t| (self.key(a.holder[t], 1), self.rank(t), a.holder[t]));
                if let Some(t) = to {
                    self.set(x, t as u32);
                }
            }
        }
    }

    /// The slots to make primary, in order, along a shortest path from `sources` to a
    /// target.
    fn bfs(&self, sources: &[u32], is_target: &dyn Fn(u32) -> bool) -> Option<Vec<u32>> {
        let a = self.a;
        let mut pred = vec![NONE; a.cap.len()];
        let mut seen = vec![false; a.cap.len()];
        let mut queue: VecDeque<u32> = VecDeque::new();
        for &m in sources {
            seen[m as usize] = true;
            queue.push_back(m);
        }
        while let Some(u) = queue.pop_front() {
            if !a.tick() {
                return None;
            }
            for &s in &a.held[u as usize] {
                let x = a.slot_item[s as usize];
                if self.slot[x as usize] != s {
                    continue;
                }
                for t in a.slots(x) {
                    let w = a.holder[t];
                    if !self.may_lead(t) || seen[w as usize] {
                        continue;
                    }
                    seen[w as usize] = true;
                    pred[w as usize] = t as u32;
                    if is_target(w) {
                        let mut path = Vec::new();
                        let mut at = w;
                        while pred[at as usize] != NONE {
                            let t = pred[at as usize];
                            path.push(t);
                            at = a.holder[self.slot[a.slot_item[t as usize] as usize] as usize];
                        }
                        path.reverse();
                        return Some(path);
                    }
                    queue.push_back(w);
                }
            }
        }
        None
    }
}

impl Paths for Primaries<'_> {
    fn fair(&self) -> &Fair {
        &self.fair
    }

    fn members(&self) -> u32 {
        self.a.cap.len() as u32
    }

    fn load(&self, m: u32) -> u64 {
        u64::from(self.count[m as usize])
    }

    fn room(&self, m: u32) -> bool {
        self.a.cap[m as usize] > 0
    }

    fn augment(&mut self, sources: &[u32], targets: &[bool]) -> bool {
        let found = self.bfs(sources, &|w| targets[w as usize]);
        found.is_some_and(|path| {
            for s in path {
                self.set(self.a.slot_item[s as usize], s);
            }
            true
        })
    }
}
