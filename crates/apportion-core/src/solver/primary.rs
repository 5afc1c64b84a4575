//! Primaries (objective 5): exactly one per item that has replicas.
//!
//! An item keeps its current primary while that member still holds it. Any other item
//! takes the replica ranked best by consistency (kept and consistent, then kept, then new)
//! and then by fewest primaries relative to capacity. Primaries are then balanced like
//! replicas (see `fair`), where a unit moves from `u` to `w` by making `w`'s replica of an
//! item primary instead of `u`'s: first directly between the holders of one item, then
//! along breadth-first paths over the "primary of an item that the next member also
//! holds" graph, one distinct key threshold at a time, until no path remains.

use std::collections::VecDeque;

use super::assignment::{Assignment, NONE};
use super::fair::Fair;

/// The primary slot of every item, `NONE` for an item without replicas.
pub(crate) fn choose(a: &Assignment) -> Vec<u32> {
    let mut p = Primaries {
        a,
        slot: vec![NONE; a.want.len()],
        count: vec![0; a.cap.len()],
        fair: Fair::new(0, 0),
    };
    p.keep_or_pick();
    let total: u64 = a.cap.iter().map(|&c| u64::from(c)).sum();
    let assigned = p.slot.iter().filter(|&&s| s != NONE).count() as u64;
    p.fair = Fair::new(total, assigned);
    if assigned > 0 {
        p.pull_direct();
        p.push_direct();
        p.by_paths();
    }
    p.slot
}

struct Primaries<'a> {
    a: &'a Assignment,
    slot: Vec<u32>,
    count: Vec<u32>,
    fair: Fair,
}

impl Primaries<'_> {
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
                .filter(|&s| a.holder[s] != NONE)
                .min_by_key(|&s| {
                    let m = a.holder[s] as usize;
                    (self.rank(s), Ratio(self.count[m], a.cap[m]), a.holder[s])
                });
            if let Some(s) = best {
                self.set(x, s as u32);
            }
        }
    }

    fn set(&mut self, x: u32, s: u32) {
        let old = self.slot[x as usize];
        if old != NONE {
            self.count[self.a.holder[old as usize] as usize] -= 1;
        }
        self.slot[x as usize] = s;
        self.count[self.a.holder[s as usize] as usize] += 1;
    }

    fn improves(&self, u: u32, w: u32) -> bool {
        let (a, c) = (self.a, &self.count);
        self.fair.improves(
            a.cap[u as usize],
            u64::from(c[u as usize]),
            a.cap[w as usize],
            u64::from(c[w as usize]),
        )
    }

    fn key(&self, m: u32, extra: u64) -> super::fair::Key {
        self.fair.key(
            self.a.cap[m as usize],
            u64::from(self.count[m as usize]) + extra,
        )
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
            for &s in &a.held[v as usize] {
                let x = a.slot_item[s as usize];
                let cur = self.slot[x as usize];
                if cur != s && self.improves(a.holder[cur as usize], v) {
                    self.set(x, s);
                }
            }
        }
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
            for &s in &a.held[u as usize] {
                let x = a.slot_item[s as usize];
                if self.slot[x as usize] != s {
                    continue;
                }
                let to = a
                    .slots(x)
                    .filter(|&t| a.holder[t] != NONE && t as u32 != s)
                    .filter(|&t| self.improves(u, a.holder[t]))
                    .min_by_key(|&t| (self.key(a.holder[t], 1), self.rank(t), a.holder[t]));
                if let Some(t) = to {
                    self.set(x, t as u32);
                }
            }
        }
    }

    /// Exact pass: paths from the members at or above each key to a member that may take a
    /// primary from them.
    fn by_paths(&mut self) {
        let a = self.a;
        let n = a.cap.len() as u32;
        loop {
            let mut keys: Vec<_> = (0..n)
                .filter(|&m| self.count[m as usize] > 0)
                .map(|m| self.key(m, 0))
                .collect();
            keys.sort_unstable_by(|p, q| q.cmp(p));
            keys.dedup();
            let mut improved = false;
            for &k in &keys {
                let is_target = |w: u32| {
                    a.cap[w as usize] > 0
                        && self.key(w, 1) < k
                        && (k.0 > 0
                            || self
                                .fair
                                .side(a.cap[w as usize], u64::from(self.count[w as usize]))
                                < 0)
                };
                if !(0..n).any(is_target) {
                    break;
                }
                let sources: Vec<u32> = (0..n)
                    .filter(|&m| self.count[m as usize] > 0 && self.key(m, 0) >= k)
                    .collect();
                if let Some(path) = self.bfs(&sources, &is_target) {
                    for s in path {
                        self.set(a.slot_item[s as usize], s);
                    }
                    improved = true;
                    break;
                }
            }
            if !improved {
                return;
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
            for &s in &a.held[u as usize] {
                let x = a.slot_item[s as usize];
                if self.slot[x as usize] != s {
                    continue;
                }
                for t in a.slots(x) {
                    let w = a.holder[t];
                    if w == NONE || seen[w as usize] {
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

/// `count / cap`, ordered exactly by cross-multiplication.
struct Ratio(u32, u32);

impl PartialEq for Ratio {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Ratio {}

impl Ord for Ratio {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (u64::from(self.0) * u64::from(other.1)).cmp(&(u64::from(other.0) * u64::from(self.1)))
    }
}

impl PartialOrd for Ratio {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
