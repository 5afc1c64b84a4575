//! Fair shares and the order in which members give and take (objectives 3 and 5).
//!
//! A member's fair share of `amount` units is `amount * capacity / total_capacity`; its
//! *band* is that share rounded down and up. The key of a member at load `L` is
//! `(band position, L - share, tie-breaker)`, compared exactly in integers: band position
//! is -1 below the band, 0 inside, +1 above. A unit may go from `u` to `w` when `w`'s key
//! after taking it is still below `u`'s key before giving it, and `u` is above its band or
//! `w` below its own. Each such transfer lowers the larger of the two keys, so the sorted
//! keys decrease and balancing ends. Two members inside their bands never trade (their
//! loads differ by less than a unit of share), so a member inside its band gives nothing
//! away unless a member below its band needs it. When no allowed path runs from a member
//! that may give to one that may take, the loads are decreasingly minimal: every member is
//! inside its band whenever some assignment with the same fill and spread allows that,
//! and as close as the constraints allow otherwise (the property tests check this against
//! an exact flow).

/// Position of a member relative to its band, its exact deviation from its share, and a
/// tie-breaker: 0 for a joining member, so that between equally placed members the one
/// that is joining takes and a newcomer gets its share even where that only trades
/// places; 0 too at load 1, so a giver is never emptied by a tie (it would count as
/// joining next time and take the unit back).
pub(crate) type Key = (i8, i128, u8);

/// Fair shares of `amount` units over the members, with every member's band computed once
/// (balancing compares keys constantly, and the band needs two wide divisions).
#[derive(Clone, Debug)]
pub(crate) struct Fair {
    total: i128,
    share: Vec<i128>,
    band: Vec<(u64, u64)>,
    joining: Vec<bool>,
}

impl Fair {
    /// Shares of `amount` over members with capacities `caps`; `joining` marks the members
    /// that hold nothing in the current assignment. `pinned` (per member, or empty) are
    /// copies held outside the problem: a member's weight is its capacity plus its pinned
    /// copies, the shares are of `amount` plus every pinned copy, and a member's pinned
    /// copies come off its share, so that loads balance *with* them.
    pub fn new(caps: &[u32], pinned: &[u32], joining: &[bool], amount: u64) -> Self {
        let pin = |m: usize| i128::from(pinned.get(m).copied().unwrap_or(0));
        let weight = |m: usize, c: u32| {
            if c == 0 {
                0
            } else {
                i128::from(c) + pin(m)
            }
        };
        let total: i128 = caps.iter().enumerate().map(|(m, &c)| weight(m, c)).sum();
        let all_pinned: i128 = (0..caps.len()).filter(|&m| caps[m] > 0).map(pin).sum();
        let share: Vec<i128> = caps
            .iter()
            .enumerate()
            .map(|(m, &c)| {
                if c == 0 {
                    0
                } else {
                    (i128::from(amount) + all_pinned) * weight(m, c) - pin(m) * total
                }
            })
            .collect();
        let band = share
            .iter()
            .map(|&num| {
                let num = num.max(0);
                let lo = num.checked_div(total).unwrap_or(0);
                let hi = (num + total)
                    .saturating_sub(1)
                    .checked_div(total)
                    .unwrap_or(0);
                (lo as u64, hi as u64)
            })
            .collect();
        Fair {
            total,
            share,
            band,
            joining: joining.to_vec(),
        }
    }

    /// -1, 0 or 1 as member `m` at `load` is below, inside or above its band.
    pub fn side(&self, m: u32, load: u64) -> i8 {
        let (lo, hi) = self.band[m as usize];
        if load < lo {
            -1
        } else if load > hi {
            1
        } else {
            0
        }
    }

    /// The key of member `m` at `load` (see the module docs).
    pub fn key(&self, m: u32, load: u64) -> Key {
        let dev = i128::from(load) * self.total - self.share[m as usize];
        let tie = !self.joining[m as usize] && load >= 2;
        (self.side(m, load), dev, u8::from(tie))
    }

    /// The potential every allowed transfer lowers (see `by_paths`): the sum of squared
    /// deviations from the shares, then, for a transfer decided by the tie-breaker, the
    /// units on joining members plus the other members holding any, negated.
    pub fn potential(&self, loads: impl Iterator<Item = (u32, u64)>) -> (i128, i128) {
        let (mut squares, mut settled) = (0i128, 0i128);
        for (m, load) in loads {
            let dev = self.key(m, load).1;
            squares = squares.saturating_add(dev.saturating_mul(dev));
            settled += if self.joining[m as usize] {
                i128::from(load)
            } else {
                i128::from(load > 0)
            };
        }
        (squares, -settled)
    }

    /// Whether one unit may go from member `u` at load `lu` to member `w` at load `lw`.
    pub fn improves(&self, u: u32, lu: u64, w: u32, lw: u64) -> bool {
        lu > 0
            && self.key(w, lw + 1) < self.key(u, lu)
            && (self.side(u, lu) > 0 || self.side(w, lw) < 0)
    }
}

/// A load that can be balanced along paths: replicas over members, or primaries.
pub(crate) trait Paths {
    /// The shares the loads are balanced to.
    fn fair(&self) -> &Fair;
    /// How many members there are.
    fn members(&self) -> u32;
    /// Member `m`'s load.
    fn load(&self, m: u32) -> u64;
    /// Whether member `m` can take one more unit at all.
    fn room(&self, m: u32) -> bool;
    /// Moves one unit along a shortest path from any of `sources` to a member marked in
    /// `targets`; false if no target is reachable.
    fn augment(&mut self, sources: &[u32], targets: &[bool]) -> bool;
}

/// The exact pass of balancing. For each distinct key `k`, from the highest down, it moves
/// units from the members at or above `k` to members that may take one from them for as
/// long as a path exists, and repeats the whole pass until one moves nothing: then no
/// allowed path runs from a member that may give to one that may take.
///
/// Termination: a path changes only the loads of its two ends, a giver `u` whose key is at
/// least `k` and a taker `w` whose key after taking is below `k`, so every path is an
/// allowed transfer, `key(w, lw + 1) < key(u, lu)`. Such a transfer changes the sum of
/// squared deviations by `2T(dev(w, lw + 1) - dev(u, lu))`, which is negative unless the
/// two deviations are equal and the tie-breaker decided; then `u` is not joining and keeps
/// at least one unit, while `w` is joining or was empty, so the second part of
/// [`Fair::potential`] falls. The potential is a pair of integers bounded below and falls
/// with every path, so the passes end (debug builds check each step).
pub(crate) fn by_paths(p: &mut impl Paths) {
    let n = p.members();
    loop {
        let mut keys: Vec<Key> = (0..n)
            .filter(|&m| p.load(m) > 0)
            .map(|m| p.fair().key(m, p.load(m)))
            .collect();
        keys.sort_unstable_by(|x, y| y.cmp(x));
        keys.dedup();
        let mut changed = false;
        'keys: for k in keys {
            loop {
                let targets: Vec<bool> = (0..n)
                    .map(|w| {
                        let (fair, lw) = (p.fair(), p.load(w));
                        p.room(w) && fair.key(w, lw + 1) < k && (k.0 > 0 || fair.side(w, lw) < 0)
                    })
                    .collect();
                // Fewer members may take below a lower threshold: nothing left to do.
                if !targets.contains(&true) {
                    break 'keys;
                }
                let sources: Vec<u32> = (0..n)
                    .filter(|&m| p.load(m) > 0 && p.fair().key(m, p.load(m)) >= k)
                    .collect();
                let before = cfg!(debug_assertions).then(|| potential(&*p));
                if !p.augment(&sources, &targets) {
                    break;
                }
                debug_assert!(
                    before.is_none_or(|b| potential(&*p) < b),
                    "a path lowers the potential"
                );
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
}

/// The potential of the current loads (see [`Fair::potential`]).
fn potential(p: &impl Paths) -> (i128, i128) {
    p.fair().potential((0..p.members()).map(|m| (m, p.load(m))))
}
