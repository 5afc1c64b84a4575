//! Fair shares and the order in which members give and take (objectives 3 and 5).
//!
//! A member's fair share of `amount` units is `amount * capacity / total_capacity`; its
//! *band* is that share rounded down and up. The key of a member at load `L` is
//! `(band position, L - share, not joining)`, compared exactly in integers: band position
//! is -1 below the band, 0 inside, +1 above; the last part lets a joining member (one that
//! holds nothing yet) win a tie, so it takes its share even where that only trades places. A unit may go from `u` to `w` when `w`'s key after taking
//! it is still below `u`'s key before giving it, and `u` is above its band or `w` below
//! its own. Every such transfer lowers the larger of the two keys, so the sorted keys
//! decrease and balancing ends; when it ends no member inside its band has given anything
//! away, and no allowed path runs from a member above its band to one below — which is
//! exactly when every member is inside its band if any feasible assignment allows it.

/// Position of a member relative to its band, its exact deviation from its share, and a
/// tie-breaker: 0 for a joining member, so that between equally placed members the one
/// that is joining takes and a newcomer gets its share even where that only trades
/// places; 0 too at load 1, so a giver is never emptied by a tie (it would count as
/// joining next time and take the unit back).
pub(crate) type Key = (i8, i128, u8);

/// Fair shares of `amount` units over members with the given total capacity.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fair {
    total: u128,
    amount: u128,
}

impl Fair {
    /// Shares of `amount` over members whose capacities add up to `total`.
    pub fn new(total: u64, amount: u64) -> Self {
        Fair {
            total: u128::from(total),
            amount: u128::from(amount),
        }
    }

    /// The band `[floor, ceil]` of a member with capacity `cap`.
    pub fn band(&self, cap: u32) -> (u64, u64) {
        if self.total == 0 {
            return (0, 0);
        }
        let num = self.amount * u128::from(cap);
        ((num / self.total) as u64, num.div_ceil(self.total) as u64)
    }

    /// -1, 0 or 1 as `load` is below, inside or above the band of capacity `cap`.
    pub fn side(&self, cap: u32, load: u64) -> i8 {
        let (lo, hi) = self.band(cap);
        if load < lo {
            -1
        } else if load > hi {
            1
        } else {
            0
        }
    }

    /// The key of a member with capacity `cap` at `load` (see the module docs).
    pub fn key(&self, cap: u32, load: u64, joining: bool) -> Key {
        let dev = i128::from(load) * self.total as i128 - (self.amount * u128::from(cap)) as i128;
        (self.side(cap, load), dev, u8::from(!joining && load >= 2))
    }

    /// Whether one unit may go from a member to another, each given as (capacity, load,
    /// joining).
    pub fn improves(&self, (cu, lu, ju): (u32, u64, bool), (cw, lw, jw): (u32, u64, bool)) -> bool {
        lu > 0
            && self.key(cw, lw + 1, jw) < self.key(cu, lu, ju)
            && (self.side(cu, lu) > 0 || self.side(cw, lw) < 0)
    }
}
