//! Filling empty slots, objective 1 (as many as possible) ahead of objective 2 (spread).
//!
//! A greedy pass puts each missing replica on the member that is least loaded relative to
//! its limit among the members allowed to take it, preferring a dormant current member (a
//! free move). Each such direct placement is an augmenting path of length one; it is used
//! only when the counters certify it shortest (no other member can start a negative arc,
//! and no item with an empty slot has a free arc), otherwise a full path search places the
//! next replica. After the greedy pass, path searches continue until none is found, which
//! proves the maximum under the items' spread tiers.
//!
//! Raising a tier adds arcs to the network, and an arc added after the flow was built can
//! close a negative cycle (a replica that spread had dropped could now return). So tiers
//! are never raised in place: while slots stay empty and members have room, the items with
//! empty slots move up one tier, or, once all are at tier 2, one path with every item's
//! spread relaxed shows which items must give way, and the caller solves again from the
//! current assignment with the raised tiers. Tiers only rise, so this ends, and the last
//! solve's flow is min-cost in its own network; its fill is the true maximum flow.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::assignment::Assignment;
use super::search::{apply, Origin, Search};

/// Fills every slot the items' current spread tiers allow. Returns the raised tiers to
/// solve again with when a tier must give way for a slot to be filled, or `None` when
/// the fill is the true maximum.
pub(crate) fn fill(a: &mut Assignment, search: &mut Search) -> Option<Vec<u8>> {
    let items: Vec<u32> = (0..a.want.len() as u32)
        .filter(|&x| a.nfill[x as usize] < a.want[x as usize])
        .collect();
    let mut heaps = ZoneHeaps::new(a);
    greedy(a, search, &mut heaps, &items);
    loop {
        while augment(a, search) {}
        if a.spare_items == 0 || room(a) == 0 {
            return None;
        }
        let spare = |x: usize| a.nfill[x] < a.want[x];
        if (0..a.want.len()).any(|x| spare(x) && a.tier[x] < 2) {
            let tiers = (0..a.want.len())
                .map(|x| {
                    if spare(x) {
                        (a.tier[x] + 1).min(2)
                    } else {
                        a.tier[x]
                    }
                })
                .collect();
            return Some(tiers);
        }
        a.relax_all = true;
        let path = find_fill(a, search);
        a.relax_all = false;
        let path = path?;
        apply(a, &path);
        let mut tiers = a.tier.clone();
        for step in &path {
            let x = step.item(a);
            if !a.spread_holds(x) {
                tiers[x as usize] = 2;
            }
        }
        if tiers != a.tier {
            return Some(tiers);
        }
    }
}

/// Free capacity left over all members.
fn room(a: &Assignment) -> u64 {
    a.cap.iter().map(|&c| u64::from(c)).sum::<u64>() - a.filled
}

/// One placement chosen without a search.
enum Pick {
    /// Place on this member: certified a shortest path.
    Direct(u32),
    /// A member can take it, but only a search can tell the cheapest way.
    Search,
    /// No member can take the item directly.
    Stuck,
}

fn greedy(a: &mut Assignment, search: &mut Search, heaps: &mut ZoneHeaps, items: &[u32]) {
    for &x in items {
        while a.nfill[x as usize] < a.want[x as usize] {
            match pick(a, heaps, x) {
                Pick::Direct(m) => {
                    a.place(x, m);
                    heaps.push(a, m);
                }
                Pick::Search => {
                    if !augment(a, search) {
                        return;
                    }
                    *heaps = ZoneHeaps::new(a);
                }
                Pick::Stuck => break,
            }
        }
    }
}

/// Places one more replica along a shortest path; false when no path exists.
fn augment(a: &mut Assignment, search: &mut Search) -> bool {
    match find_fill(a, search) {
        Some(path) => {
            apply(a, &path);
            true
        }
        None => false,
    }
}

/// A shortest path from the item source to a member with room, unless every slot is held
/// or every member is full.
fn find_fill(a: &Assignment, search: &mut Search) -> Option<Vec<super::search::Step>> {
    if a.spare_items == 0 || room(a) == 0 {
        return None;
    }
    search.find(a, &Origin::Spare, &|m| a.load(m) < a.cap[m as usize])
}

fn pick(a: &Assignment, heaps: &mut ZoneHeaps, x: u32) -> Pick {
    if a.dormant[x as usize] > 0 {
        let best = a
            .current_of(x)
            .iter()
            .copied()
            .filter(|&b| {
                a.load(b) < a.cap[b as usize]
                    && !a.holds(x, b)
                    && a.allows(x, None, a.zone[b as usize])
            })
            .min_by(|&p, &q| Entry::of(a, p).cmp(&Entry::of(a, q)));
        if let Some(b) = best {
            return if a.hazards_only_at(b, b) {
                Pick::Direct(b)
            } else {
                Pick::Search
            };
        }
    }
    match heaps.least(a, x) {
        Some(b) if a.hazards_only_at(b, b) && a.spare_dormant == 0 => Pick::Direct(b),
        Some(_) => Pick::Search,
        None => Pick::Stuck,
    }
}

/// A member in a zone heap, ordered by load relative to capacity, then index.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    load: u32,
    cap: u32,
    member: u32,
}

impl Entry {
    fn of(a: &Assignment, m: u32) -> Self {
        Entry {
            load: a.load(m),
            cap: a.cap[m as usize],
            member: m,
        }
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (u64::from(self.load) * u64::from(other.cap))
            .cmp(&(u64::from(other.load) * u64::from(self.cap)))
            .then(self.member.cmp(&other.member))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Per zone, the members with room, least loaded first; entries are refreshed lazily.
struct ZoneHeaps {
    heaps: Vec<BinaryHeap<Reverse<Entry>>>,
    stash: Vec<(usize, Entry)>,
}

impl ZoneHeaps {
    fn new(a: &Assignment) -> Self {
        let heaps = a
            .zone_members
            .iter()
            .map(|ms| {
                ms.iter()
                    .filter(|&&m| a.load(m) < a.cap[m as usize])
                    .map(|&m| Reverse(Entry::of(a, m)))
                    .collect()
            })
            .collect();
        ZoneHeaps {
            heaps,
            stash: Vec::new(),
        }
    }

    /// Re-inserts member `m` after its load changed, if it still has room.
    fn push(&mut self, a: &Assignment, m: u32) {
        if a.load(m) < a.cap[m as usize] {
            self.heaps[a.zone[m as usize] as usize].push(Reverse(Entry::of(a, m)));
        }
    }

    /// Takes out the least loaded member with room that may take item `x`; the caller
    /// pushes it back after placing, or rebuilds the heaps after a search.
    fn least(&mut self, a: &Assignment, x: u32) -> Option<u32> {
        let mut best: Option<(usize, Entry)> = None;
        for z in 0..self.heaps.len() {
            if self.heaps[z].is_empty() || !a.allows(x, None, z as u32) {
                continue;
            }
            while let Some(Reverse(e)) = self.heaps[z].pop() {
                let now = Entry::of(a, e.member);
                if now.load >= now.cap {
                    continue;
                }
                if now != e {
                    self.heaps[z].push(Reverse(now));
                    continue;
                }
                if a.holds(x, e.member) {
                    self.stash.push((z, e));
                    continue;
                }
                match best {
                    Some((_, b)) if b <= e => self.stash.push((z, e)),
                    Some(old) => {
                        self.stash.push(old);
                        best = Some((z, e));
                    }
                    None => best = Some((z, e)),
                }
                break;
            }
        }
        for (z, e) in self.stash.drain(..) {
            self.heaps[z].push(Reverse(e));
        }
        best.map(|(_, e)| e.member)
    }
}
