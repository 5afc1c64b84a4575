//! Balancing replicas across members (objective 3) without losing fill or spread.
//!
//! First a direct pass: every member that may take a unit (see `fair`) pulls replicas from
//! the members of its own zone with the highest keys, one move at a time, while the move
//! is an improvement and the counters certify it a shortest path; it hands over a replica
//! that is not its item's current primary where it can, since moving a primary replica
//! moves the primary too. Then the exact pass
//! (`fair::by_paths`), where each unit travels along a shortest residual path found by a
//! multi-source search (`search`) from the members that may give to those that may take.
//! A path changes only the loads of its two ends, so fill and every intermediate member
//! stay as they were, and spread caps hold on every arc.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::assignment::Assignment;
use super::fair::{by_paths, Fair, Key, Paths};
use super::search::{apply, Origin, Search};

/// Balances the member loads; see the module docs.
pub(crate) fn balance(a: &mut Assignment, search: &mut Search) {
    let total: u64 = a.cap.iter().map(|&c| u64::from(c)).sum();
    if total == 0 || a.filled == 0 {
        return;
    }
    let fair = Fair::new(&a.cap, &a.pinned, &a.joining, a.filled);
    direct(a, &fair);
    by_paths(&mut Replicas {
        a,
        search,
        fair: &fair,
    });
}

fn key(a: &Assignment, fair: &Fair, m: u32, extra: u64) -> Key {
    fair.key(m, u64::from(a.load(m)) + extra)
}

fn improves(a: &Assignment, fair: &Fair, u: u32, w: u32) -> bool {
    a.load(w) < a.cap[w as usize] && fair.improves(u, u64::from(a.load(u)), w, u64::from(a.load(w)))
}

fn direct(a: &mut Assignment, fair: &Fair) {
    let mut order: Vec<u32> = (0..a.cap.len() as u32)
        .filter(|&m| a.load(m) < a.cap[m as usize])
        .collect();
    order.sort_by_cached_key(|&m| (key(a, fair, m, 1), m));
    let zone_top =
        |a: &Assignment, z: usize| a.zone_members[z].iter().map(|&m| key(a, fair, m, 0)).max();
    let mut top: Vec<Option<Key>> = (0..a.zone_members.len()).map(|z| zone_top(a, z)).collect();
    for v in order {
        let z = a.zone[v as usize] as usize;
        if top[z].is_none_or(|k| k <= key(a, fair, v, 1)) {
            continue;
        }
        let mut donors: BinaryHeap<(Key, Reverse<u32>)> = a.zone_members[z]
            .iter()
            .filter(|&&u| u != v && improves(a, fair, u, v))
            .map(|&u| (key(a, fair, u, 0), Reverse(u)))
            .collect();
        let mut moved = false;
        while let Some((_, Reverse(u))) = donors.pop() {
            // Donors come highest key first, so the first that cannot give ends the pull.
            if !improves(a, fair, u, v) || a.exhausted() {
                break;
            }
            if let Some(s) = direct_slot(a, u, v) {
                a.shift(s, v);
                moved = true;
                donors.push((key(a, fair, u, 0), Reverse(u)));
            }
        }
        if moved {
            top[z] = zone_top(a, z);
        }
    }
}

/// A replica `u` can hand to `v` along a certified shortest path, if any; one of which
/// `u` is not the current primary when there is one, since moving a primary replica moves
/// the primary too, and the member that lost it would then take another one back.
fn direct_slot(a: &Assignment, u: u32, v: u32) -> Option<u32> {
    if a.spare_dormant > 0 || !a.hazards_only_at(u, v) {
        return None;
    }
    let need = a.min_first(u);
    let (zu, zv) = (a.zone[u as usize], a.zone[v as usize]);
    let mut primary = None;
    for &s in &a.held[u as usize] {
        let x = a.slot_item[s as usize];
        let is_primary = a.cur_primary[x as usize] == u;
        // Once a primary replica qualifies, only a replica that is not one can do better:
        // the others are not worth the checks (a donor's list can hold thousands of them).
        if is_primary && primary.is_some() {
            continue;
        }
        if !a.holds(x, v) && a.move_cost(s, v) == need && a.allows(x, Some(zu), zv) {
            if !is_primary {
                return Some(s);
            }
            primary = Some(s);
        }
    }
    primary
}

/// Replicas over members, balanced along residual paths.
struct Replicas<'a> {
    a: &'a mut Assignment,
    search: &'a mut Search,
    fair: &'a Fair,
}

impl Paths for Replicas<'_> {
    fn fair(&self) -> &Fair {
        self.fair
    }

    fn members(&self) -> u32 {
        self.a.cap.len() as u32
    }

    fn load(&self, m: u32) -> u64 {
        u64::from(self.a.load(m))
    }

    fn room(&self, m: u32) -> bool {
        self.a.load(m) < self.a.cap[m as usize]
    }

    fn augment(&mut self, sources: &[u32], targets: &[bool]) -> bool {
        let found = self
            .search
            .find(self.a, &Origin::Members(sources), &|w| targets[w as usize]);
        found.is_some_and(|path| {
            apply(self.a, &path);
            true
        })
    }
}
