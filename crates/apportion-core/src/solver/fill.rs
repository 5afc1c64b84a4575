//! Filling empty slots, objective 1 (as many as possible) ahead of objective 2 (spread).
//!
//! A greedy pass puts each missing replica on the member that is least loaded relative to
//! its limit among the members allowed to take it, preferring a dormant current member (a
//! free move). Each such direct placement is an augmenting path of length one; it is used
//! only when the counters certify it shortest (no other member can start a negative arc,
//! and no item with an empty slot has a free arc), otherwise a full path search places the
//! next replica. After the greedy pass, path searches continue until none is found, which
//! proves the maximum under the items' spread levels.
//!
//! Raising a level adds arcs to the network, and an arc added after the flow was built can
//! close a negative cycle (a replica that spread had dropped could now return). So levels
//! are never raised in place. While slots stay empty and members have room, `give_way`
//! loosens every item at once to stage 1 (at most `R - 1` per zone), then to stage 2 (no
//! spread), and augments along any paths it finds (this state is thrown away): the items
//! whose spread those paths break are the ones that must give way, and the caller solves
//! again from the current assignment with just those raised (past a few dozen paths, every
//! item with an empty slot is raised at once, and the next solve finds the rest exactly:
//! one search per slot would cost a minute when a zone loses most of its members). The
//! flow the paths built is feasible under the raised levels, so the next solve fills at
//! least as much as it; stage 2 is tried only once no path is left at stage 1, so when
//! all items can keep two zones at the maximum fill, none is raised past stage 1. Every
//! restart raises some item to a later stage, so there are at most `2 * items` of them (in
//! practice one to three); the last solve's flow is min-cost in its own network, and since
//! no path is left even with all spread relaxed, its fill is the true maximum flow.

use std::cmp::{Ordering, Reverse};
use std::collections::binary_heap::{BinaryHeap, PeekMut};

use super::assignment::{Assignment, NONE};
use super::search::{apply, path_cost, Origin, Search};

/// Fills every slot the items' current spread levels allow. Returns the raised levels to
/// solve again with when some item must give way for a slot to be filled, or `None` when
/// the fill is the true maximum.
pub(crate) fn fill(a: &mut Assignment, search: &mut Search) -> Option<Vec<u32>> {
    let items: Vec<u32> = (0..a.want.len() as u32)
        .filter(|&x| a.nfill[x as usize] < a.want[x as usize])
        .collect();
    let mut heaps = ZoneHeaps::new(a);
    greedy(a, search, &mut heaps, &items);
    // Each path fills one more slot, so at most as many as there are slots.
    while !a.exhausted() && augment(a, search) {}
    (1..=2).find_map(|stage| give_way(a, search, stage))
}

/// Paths `give_way` follows one by one before it raises every item with an empty slot at
/// once: a zone that lost most of its members can leave tens of thousands of items short,
/// and a search each would cost a minute.
const PATHS_BEFORE_ALL: usize = 32;

/// With every item loosened to at least `stage`, augments along any paths (whatever they
/// cost: this state is thrown away) and returns the levels with the items those paths
/// pushed past their own spread raised to the stage; `None` when no path exists or none
/// would raise anything. Past [`PATHS_BEFORE_ALL`] paths it raises every item that still
/// has an empty slot too, and the next solve's `give_way` finds the few other items that
/// must give way.
fn give_way(a: &mut Assignment, search: &mut Search, stage: u8) -> Option<Vec<u32>> {
    if a.spare_items == 0 || room(a) == 0 || a.exhausted() {
        return None;
    }
    let mut levels = a.level.clone();
    a.relax = stage;
    let mut paths = 0;
    // Every path fills one more slot: at most as many paths as slots.
    while let Some(path) = search.find_any(a, &Origin::Spare, &|m| a.load(m) < a.cap[m as usize]) {
        paths += 1;
        if paths > PATHS_BEFORE_ALL {
            for x in (0..a.want.len()).filter(|&x| a.nfill[x] < a.want[x]) {
                levels[x] = levels[x].max(a.stage_level(x as u32, stage));
            }
            break;
        }
        apply(a, &path);
        let items: Vec<u32> = path.iter().map(|step| step.item(a)).collect();
        let broken: Vec<u32> = items
            .iter()
            .copied()
            .filter(|&x| !a.spread_holds(x))
            .collect();
        // A path that breaks no spread only moved items twice; raise them all.
        for x in if broken.is_empty() { items } else { broken } {
            let l = &mut levels[x as usize];
            *l = (*l).max(a.stage_level(x, stage));
        }
        if a.spare_items == 0 || room(a) == 0 {
            break;
        }
    }
    a.relax = 0;
    (levels != a.level).then_some(levels)
}

/// Gives back spread that an item's raised level let go: while the item holds the most
/// replicas of any zone (`M >= 2`) in a zone and a member with room sits in a zone holding
/// `M - 2` or fewer, one replica moves there, and the item's level is tightened to what it
/// then satisfies, so balancing cannot undo it. Each move lowers the item's tightest level
/// strictly (see `spread`), which bounds this loop and the caller's. A move is made only
/// where no cheaper path joins the same two members, so the flow stays min-cost. Returns
/// whether anything moved.
pub(crate) fn spread_out(a: &mut Assignment, search: &mut Search) -> bool {
    let mut moved = false;
    for x in 0..a.want.len() as u32 {
        if a.level[x as usize] == a.want[x as usize] || a.nfill[x as usize] < 2 {
            continue;
        }
        a.tighten(x);
        // Every move lowers the item's level, which never falls below balanced.
        while a.level[x as usize] > a.want[x as usize] && !a.exhausted() {
            let Some((s, to)) = spread_move(a, search, x) else {
                break;
            };
            a.shift(s, to);
            let fell = a.tighten(x);
            debug_assert!(fell, "a spread move lowers the item's level");
            moved = true;
        }
    }
    moved
}

/// Path searches `spread_move` may run to prove a move shortest when the counters cannot:
/// an item with many candidate targets and replicas would otherwise cost a search for each
/// pair, every round.
const SPREAD_SEARCHES: u32 = 8;

/// A shortest move of one of `x`'s replicas in a fullest zone to a member with room in a
/// zone holding at least two fewer, trying the cheapest replicas and least loaded members
/// first; past [`SPREAD_SEARCHES`] searches, only moves the counters certify.
fn spread_move(a: &Assignment, search: &mut Search, x: u32) -> Option<(u32, u32)> {
    let counts = a.zone_counts(x, None);
    let top = counts.iter().map(|&(_, c)| c).max().unwrap_or(0);
    if top < 2 {
        return None;
    }
    let count = |z: u32| counts.iter().find(|&&(y, _)| y == z).map_or(0, |&(_, c)| c);
    let mut targets: Vec<u32> = (0..a.zone_members.len() as u32)
        .filter(|&z| count(z) + 2 <= top)
        .flat_map(|z| a.zone_members[z as usize].iter().copied())
        .filter(|&v| a.load(v) < a.cap[v as usize] && !a.holds(x, v))
        .collect();
    targets.sort_by(|&p, &q| Entry::of(a, p).cmp(&Entry::of(a, q)));
    let fullest: Vec<u32> = a
        .slots(x)
        .map(|s| s as u32)
        .filter(|&s| {
            let u = a.holder[s as usize];
            u != NONE && count(a.zone[u as usize]) == top
        })
        .collect();
    let mut searches = 0;
    for to in targets {
        let mut slots = fullest.clone();
        slots.sort_by_key(|&s| (a.move_cost(s, to), s));
        for s in slots {
            let u = a.holder[s as usize];
            let direct = i64::from(a.move_cost(s, to));
            let certified = a.spare_dormant == 0
                && a.hazards_only_at(u, to)
                && direct == i64::from(a.min_first(u));
            let shortest = certified
                || (searches < SPREAD_SEARCHES && {
                    searches += 1;
                    search
                        .find(a, &Origin::Members(&[u]), &|m| m == to)
                        .is_some_and(|path| direct <= path_cost(a, &path))
                });
            if shortest {
                return Some((s, to));
            }
        }
    }
    None
}

/// Free capacity left over all members.
fn room(a: &Assignment) -> u64 {
    a.cap
        .iter()
        .map(|&c| u64::from(c))
        .sum::<u64>()
        .saturating_sub(a.filled)
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

/// Every turn of its loop places a replica or ends the item, so it is bounded by the slots.
fn greedy(a: &mut Assignment, search: &mut Search, heaps: &mut ZoneHeaps, items: &[u32]) {
    for &x in items {
        while a.nfill[x as usize] < a.want[x as usize] && !a.exhausted() {
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

/// A member in a zone heap, ordered by load relative to capacity, then by a scrambled
/// tie-breaker.
///
/// Breaking ties by member index would walk every zone in the same order, so the
/// replicas of an item would always land on the same few members of the other zones: a
/// member's loss would then leave all its items' other replicas (and primaries) on two
/// members. Scrambling the order with the load makes each round pick a different pattern,
/// deterministically.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    load: u32,
    cap: u32,
    tie: u64,
    member: u32,
}

impl Entry {
    fn of(a: &Assignment, m: u32) -> Self {
        let load = a.load(m);
        Entry {
            load,
            cap: a.cap[m as usize],
            tie: scramble((u64::from(m) << 32) | u64::from(load)),
            member: m,
        }
    }
}

/// A fixed bijective mix of 64 bits (the SplitMix64 finaliser).
pub(crate) fn scramble(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (u64::from(self.load) * u64::from(other.cap))
            .cmp(&(u64::from(other.load) * u64::from(self.cap)))
            .then(self.tie.cmp(&other.tie))
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
            // Look at each zone's top without taking it; only the winner is taken.
            while let Some(mut top) = self.heaps[z].peek_mut() {
                let Reverse(e) = *top;
                let now = Entry::of(a, e.member);
                if now.load >= now.cap {
                    PeekMut::pop(top);
                } else if now != e {
                    *top = Reverse(now);
                } else if a.holds(x, e.member) {
                    self.stash.push((z, PeekMut::pop(top).0));
                } else {
                    if best.is_none_or(|(_, b)| e < b) {
                        best = Some((z, e));
                    }
                    break;
                }
            }
        }
        if let Some((z, _)) = best {
            self.heaps[z].pop();
        }
        for (z, e) in self.stash.drain(..) {
            self.heaps[z].push(Reverse(e));
        }
        best.map(|(_, e)| e.member)
    }
}
