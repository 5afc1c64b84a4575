//! Zone spread: how many replicas of an item one zone may hold.
//!
//! Every item has a *tier*, raised only when filling its slots needs it:
//!
//! - tier 0, balanced: with `R` replicas over the `Z` zones that have capacity, every zone
//!   holds at most `floor(R/Z) + 1`, and at most `R mod Z` zones hold that many. A full
//!   item then sits in `min(R, Z)` zones, which a plain per-zone cap of `ceil(R/Z)` does not
//!   guarantee (R = 4, Z = 3 could end 2 + 2 + 0).
//! - tier 1, two zones: at most `R - 1` replicas per zone, so an item with `R >= 2` keeps
//!   two zones when the balanced spread cannot be filled.
//! - tier 2, none: only "never twice on one member" remains; used before leaving a slot empty.

use super::assignment::{Assignment, NONE};

impl Assignment {
    /// Whether item `x` may gain a replica in zone `to`, after losing the one it has in zone
    /// `from` (a move) or losing none (`from` is `None`, a placement).
    pub fn allows(&self, x: u32, from: Option<u32>, to: u32) -> bool {
        if from == Some(to) || self.relax_all || self.zones_with_capacity <= 1 {
            return true;
        }
        let r = self.want[x as usize];
        match self.tier[x as usize] {
            0 => {
                let z = self.zones_with_capacity;
                let (floor, extra) = (r / z, r % z);
                if from.is_some() && self.zone_locked(x) {
                    return false;
                }
                let c = self.zone_count(x, to, from);
                c < floor || (c == floor && extra > 0 && self.zones_above(x, floor, from) < extra)
            }
            1 => self.zone_count(x, to, from) < r.saturating_sub(1).max(1),
            _ => true,
        }
    }

    /// Whether item `x` can never move to another zone under its tier: a full tier-0 item
    /// whose replicas divide evenly over the zones has exactly `R / Z` in every zone. This is
    /// the common case (R = 3 over 3 zones), and members count such replicas so that a
    /// search skips them for every other zone.
    pub fn zone_locked(&self, x: u32) -> bool {
        let (r, z) = (self.want[x as usize], self.zones_with_capacity);
        z > 1 && self.tier[x as usize] == 0 && r % z == 0 && self.nfill[x as usize] == r
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
        let zones = self.holder_zones(x);
        zones
            .clone()
            .enumerate()
            .filter(|&(i, z)| !zones.clone().take(i).any(|y| y == z))
            .filter(|&(_, z)| self.zone_count(x, z, from) > floor)
            .count() as u32
    }

    /// Zones of the holders of `x`, one per held slot.
    fn holder_zones(&self, x: u32) -> impl Iterator<Item = u32> + Clone + '_ {
        self.slots(x)
            .filter(|&s| self.holder[s] != NONE)
            .map(|s| self.zone[self.holder[s] as usize])
    }

    /// Whether item `x` satisfies the spread of its own tier. A path found with every
    /// constraint relaxed raises the tier of each item it leaves outside its own.
    pub fn spread_holds(&self, x: u32) -> bool {
        if self.zones_with_capacity <= 1 {
            return true;
        }
        let r = self.want[x as usize];
        let count = |z: u32| self.zone_count(x, z, None);
        match self.tier[x as usize] {
            0 => {
                let z = self.zones_with_capacity;
                let (floor, extra) = (r / z, r % z);
                self.holder_zones(x).all(|z| count(z) <= floor + 1)
                    && self.zones_above(x, floor, None) <= extra
            }
            1 => self
                .holder_zones(x)
                .all(|z| count(z) <= r.saturating_sub(1).max(1)),
            _ => true,
        }
    }
}
