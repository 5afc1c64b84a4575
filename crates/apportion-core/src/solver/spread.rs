//! Zone spread: how many replicas of an item one zone may hold.
//!
//! Every item has a spread *level* `L`, the number of replicas its zone caps hold in
//! total: over the `Z` zones that have capacity, with `c = L div Z` and `e = L mod Z`,
//! every zone holds at most `c + 1` replicas and at most `e` zones hold that many. The
//! levels form a chain of ever looser constraints (level `cZ + Z` is level `(c + 1)Z`),
//! each one a plain capacity network (item -> zone with capacity `c`, plus `e` units of
//! one extra each), so every level keeps the flow model exact.
//!
//! - Level `R` (the item's replication) is the *balanced* spread: `floor(R/Z) + 1` at
//!   most, in at most `R mod Z` zones. A full item then sits in `min(R, Z)` zones, which a
//!   plain per-zone cap of `ceil(R/Z)` does not guarantee (R = 4, Z = 3 could end 2 + 2 + 0).
//!   Every item starts there.
//! - Stage 1, level `(R - 1)Z`: at most `R - 1` per zone, so a full item with `R >= 2`
//!   keeps two zones when the balanced spread cannot be filled.
//! - Stage 2, level `RZ`: no cap, only "never twice on one member"; used before a slot is
//!   left empty.
//!
//! Filling raises levels stage by stage, only where a slot needs it; winning spread back
//! lowers them to the tightest level the item's replicas satisfy (`tightest`), which is
//! `(M - 1)Z + n` for a largest zone count `M` held by `n` zones. A move from a zone at
//! `M` to one holding `M - 2` or fewer lowers that value strictly, which is what bounds the
//! loop that alternates winning spread back and balancing (see the solver's module docs).

use super::assignment::{Assignment, NONE};

impl Assignment {
    /// Whether item `x` may gain a replica in zone `to`, after losing the one it has in zone
    /// `from` (a move) or losing none (`from` is `None`, a placement).
    pub fn allows(&self, x: u32, from: Option<u32>, to: u32) -> bool {
        if from == Some(to) || self.zones_with_capacity <= 1 {
            return true;
        }
        let level = self.effective_level(x);
        let (cap, extra) = self.split(level);
        if from.is_some() && self.relax == 0 && self.zone_locked(x) {
            return false;
        }
        let c = self.zone_count(x, to, from);
        c < cap || (c == cap && extra > 0 && self.zones_above(x, cap, from) < extra)
    }

    /// The level item `x` is held to: its own, or a looser stage while `relax` asks
    /// which items must give way for a slot to be filled.
    fn effective_level(&self, x: u32) -> u32 {
        let own = self.level[x as usize];
        if self.relax == 0 {
            own
        } else {
            own.max(self.stage_level(x, self.relax))
        }
    }

    /// `(c, e)` of a level: every zone holds at most `c + 1`, at most `e` zones hold that.
    fn split(&self, level: u32) -> (u32, u32) {
        let z = self.zones_with_capacity.max(1);
        (level / z, level % z)
    }

    /// The level of stage `stage` for item `x`: 0 balanced, 1 at most `R - 1` per zone,
    /// 2 unconstrained.
    pub fn stage_level(&self, x: u32, stage: u8) -> u32 {
        let r = self.want[x as usize];
        let z = self.zones_with_capacity.max(1);
        match stage {
            0 => r,
            1 => r.saturating_sub(1).max(1).saturating_mul(z).max(r),
            _ => r.saturating_mul(z).max(r),
        }
    }

    /// Whether item `x` can never move to another zone under its level: a full item with
    /// exactly `c` replicas in every zone (`e = 0`). This is the common case (R = 3 over 3
    /// zones), and members count such replicas so that a search skips them for every
    /// other zone.
    pub fn zone_locked(&self, x: u32) -> bool {
        let z = self.zones_with_capacity;
        let level = self.level[x as usize];
        z > 1 && level % z == 0 && self.nfill[x as usize] == level
    }

    /// Replicas of `x` in `zone`, not counting one in zone `from`.
    fn zone_count(&self, x: u32, zone: u32, from: Option<u32>) -> u32 {
        let c = self
            .slots(x)
            .filter(|&s| self.holder[s] != NONE && self.zone[self.holder[s] as usize] == zone)
            .count() as u32;
        c - u32::from(from == Some(zone))
    }

    /// Zones holding more than `floor` replicas of `x`, not counting one in zone `from`.
    fn zones_above(&self, x: u32, floor: u32, from: Option<u32>) -> u32 {
        self.zone_counts(x, from)
            .iter()
            .filter(|&&(_, c)| c > floor)
            .count() as u32
    }

    /// Replicas of `x` per zone that holds any, not counting one in zone `from`; sorted,
    /// so O(R log R) even for an item replicated on every member.
    pub fn zone_counts(&self, x: u32, from: Option<u32>) -> Vec<(u32, u32)> {
        let mut zones: Vec<u32> = self.holder_zones(x).collect();
        zones.sort_unstable();
        let mut counts: Vec<(u32, u32)> = Vec::new();
        for z in zones {
            match counts.last_mut() {
                Some((last, c)) if *last == z => *c += 1,
                _ => counts.push((z, 1)),
            }
        }
        if let Some(entry) = counts.iter_mut().find(|(z, _)| Some(*z) == from) {
            entry.1 -= 1;
        }
        counts
    }

    /// Zones of the holders of `x`, one per held slot.
    fn holder_zones(&self, x: u32) -> impl Iterator<Item = u32> + '_ {
        self.slots(x)
            .filter(|&s| self.holder[s] != NONE)
            .map(|s| self.zone[self.holder[s] as usize])
    }

    /// Whether item `x` satisfies the spread of its own level.
    pub fn spread_holds(&self, x: u32) -> bool {
        self.tightest(x) <= self.level[x as usize]
    }

    /// The tightest level item `x`'s replicas satisfy, never below its balanced level:
    /// `(M - 1)Z + n` for the largest zone count `M`, held by `n` zones.
    pub fn tightest(&self, x: u32) -> u32 {
        let r = self.want[x as usize];
        let z = self.zones_with_capacity;
        if z <= 1 {
            return r;
        }
        let counts = self.zone_counts(x, None);
        let top = counts.iter().map(|&(_, c)| c).max().unwrap_or(0);
        let at_top = counts.iter().filter(|&&(_, c)| c == top).count() as u32;
        top.saturating_sub(1)
            .saturating_mul(z)
            .saturating_add(at_top)
            .max(r)
    }
}
