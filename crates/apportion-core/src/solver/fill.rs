//! Filling empty slots, objective 1 (as many as possible) ahead of objective 2 (spread).
//!
//! Tier by tier (see `spread`), a greedy pass puts each missing replica on the member that
//! is least loaded relative to its limit among the members allowed to take it, preferring a
//! dormant current member (a free move). Each such direct placement is an augmenting path
//! of length one; it is used only when the counters certify it shortest (no other member
//! can start a negative arc, and no item with an empty slot has a free arc), otherwise a
//! full path search places the next replica. After the greedy pass, path searches continue
//! until none is found, which proves the tier's maximum. A last round relaxes every item's
//! spread, so the filled count equals the true maximum flow; the items such a path leaves
//! outside their spread drop to tier 2.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::assignment::Assignment;
use super::search::{apply, Origin, Search};

/// Fills every slot it can; see the module docs.
pub(crate) fn fill(a: &mut Assignment, search: &mut Search) {
    let mut heaps = ZoneHeaps::new(a);
    for tier in 0..=2u8 {
        if a.spare_items == 0 {
            return;
        }
        let items: Vec<u32> = (0..a.want.len() as u32)
            .filter(|&x| a.nfill[x as usize] < a.want[x as usize])
            .collect();
        for &x in &items {
            a.set_tier(x, a.tier[x as usize].max(tier));
        }
        greedy(a, search, &mut heaps, &items);
        while augment(a, search) {}
        heaps = ZoneHeaps::new(a);
    }
    a.relax_all = true;
    while let Some(path) = find_fill(a, search) {
        apply(a, &path);
        for step in &path {
            let x = step.item(a);
            if !a.spread_holds(x) {
                a.set_tier(x, 2);
            }
        }
    }
    a.relax_all = false;
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
    let room: u64 = a.cap.iter().map(|&c| u64::from(c)).sum::<u64>() - a.filled;
    if a.spare_items == 0 || room == 0 {
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
