//! The solver's working state: which member holds which replica slot, kept in flat vectors
//! of indices, plus the counters that let the fast paths prove they take a shortest path.
//!
//! Every item owns `want` consecutive replica *slots* (`first[x]..first[x + 1]`); a slot is
//! empty (`NONE`) or names its holder. Each member lists the slots it holds, and every slot
//! knows its position in that list, so placing, removing and moving a replica are O(1)
//! plus O(R) bookkeeping for its item.
//!
//! Costs follow the move-minimising flow model: holding item `x` on member `m` costs 0 if
//! `(x, m)` is a current assignment and 1 otherwise (a *fresh* replica). A current pair whose
//! member is eligible but does not hold the item is *dormant*: putting the item back there
//! is free. The counters below summarise where negative or free residual arcs can start, so
//! that a direct move can be certified shortest without a search (see `search`).

use std::cell::Cell;

use super::problem::{Problem, ProblemError, MAX_SLOTS};

/// Marks an empty slot or an absent member.
pub(crate) const NONE: u32 = u32::MAX;

/// The mutable assignment plus the static facts about members and items it needs.
pub(crate) struct Assignment {
    /// Dense zone index of every member.
    pub zone: Vec<u32>,
    /// Capacity of every member (0 when exiting).
    pub cap: Vec<u32>,
    /// Members with capacity, per dense zone, ascending.
    pub zone_members: Vec<Vec<u32>>,
    /// How many zones have at least one member with capacity.
    pub zones_with_capacity: u32,
    /// Slots held by every member, in no particular order.
    pub held: Vec<Vec<u32>>,
    /// How many replicas each item can have: its replication, capped by the members there are.
    pub want: Vec<u32>,
    /// The replication each item asked for, for counting unfilled slots.
    pub asked: Vec<u32>,
    /// Slot range of every item; `first.len() == items + 1`.
    pub first: Vec<u32>,
    /// Holder of every slot, or `NONE`.
    pub holder: Vec<u32>,
    /// Position of every held slot in its holder's `held` list.
    pub pos: Vec<u32>,
    /// Whether the slot's assignment is not a current one (it costs a move).
    pub fresh: Vec<bool>,
    /// Item of every slot.
    pub slot_item: Vec<u32>,
    /// Held slots per item.
    pub nfill: Vec<u32>,
    /// Spread level per item (see `spread`).
    pub level: Vec<u32>,
    /// While not 0, every item's spread is loosened to at least this stage: only to find
    /// which items must give way for a slot to be filled (see `fill`).
    pub relax: u8,
    /// Range of every item's current eligible members in `cur_member`.
    pub cur_first: Vec<u32>,
    /// Current eligible members of items, deduplicated, in (slot, member) order.
    pub cur_member: Vec<u32>,
    /// Whether that current replica is consistent.
    pub cur_consistent: Vec<bool>,
    /// Current primary member of every item, or `NONE`.
    pub cur_primary: Vec<u32>,
    /// Dormant current pairs per item.
    pub dormant: Vec<u32>,
    /// Fresh replicas held per member.
    pub new_count: Vec<u32>,
    /// Fresh replicas, of items with a dormant pair, held per member (negative arcs start there).
    pub hazard: Vec<u32>,
    /// Kept replicas, of items with a dormant pair, held per member (free arcs start there).
    pub kept_flagged: Vec<u32>,
    /// Members that hold nothing in the current assignment (nor pinned copies): they are
    /// joining, and take their fair share even where that only trades places with an
    /// equally loaded member.
    pub joining: Vec<bool>,
    /// Per member, copies held outside the problem ([`Problem::pinned`]).
    pub pinned: Vec<u32>,
    /// Replicas held per member whose item can never change zones (see `Self::zone_locked`).
    pub locked: Vec<u32>,
    /// Members with `hazard > 0`.
    pub hazard_members: u32,
    /// Items with an empty slot and a dormant pair.
    pub spare_dormant: u32,
    /// Items with an empty slot.
    pub spare_items: u32,
    /// Held slots in total.
    pub filled: u64,
    /// Work done so far: replicas placed, moved or dropped plus nodes taken from search
    /// queues (loading the current assignment is linear and not counted). A cell, so that
    /// searches, which only read the assignment, count too.
    steps: Cell<u64>,
    /// The most steps this solve may take; past it every loop stops at its next step.
    budget: u64,
}

impl Assignment {
    /// Builds the state from a validated problem with the given spread level per item
    /// (`None`: every item balanced):
    /// indexes members and items, then keeps every current assignment the hard constraints
    /// and spread allow, dropping the rest (exiting or zero-limit members, duplicates, excess
    /// over the replication, excess over a member's limit, excess in a zone) in item, slot,
    /// member order.
    pub fn new(p: &Problem, level: Option<Vec<u32>>, budget: u64) -> Result<Self, ProblemError> {
        p.validate()?;
        let members = p.members.len();
        let mut zone_ids: Vec<u32> = p.members.iter().map(|m| m.zone).collect();
        zone_ids.sort_unstable();
        zone_ids.dedup();
        let zone: Vec<u32> = p
            .members
            .iter()
            .map(|m| zone_ids.binary_search(&m.zone).unwrap_or(0) as u32)
            .collect();
        let cap: Vec<u32> = p.members.iter().map(|m| m.capacity()).collect();
        let mut zone_members = vec![Vec::new(); zone_ids.len()];
        for m in 0..members {
            if cap[m] > 0 {
                zone_members[zone[m] as usize].push(m as u32);
            }
        }
        let zones_with_capacity = zone_members.iter().filter(|z| !z.is_empty()).count() as u32;
        let eligible: u32 = zone_members.iter().map(|z| z.len() as u32).sum();

        let items = p.items.len();
        let asked: Vec<u32> = p.items.iter().map(|i| i.replication).collect();
        let want: Vec<u32> = asked.iter().map(|&r| r.min(eligible)).collect();
        let total: u64 = want.iter().map(|&w| w as u64).sum();
        if total > MAX_SLOTS {
            return Err(ProblemError::TooLarge {
                what: "the number of replica slots",
                count: total,
                max: MAX_SLOTS,
            });
        }
        let mut first = Vec::with_capacity(items + 1);
        let mut slot_item = Vec::with_capacity(total as usize);
        let mut acc = 0u32;
        for (x, &w) in want.iter().enumerate() {
            first.push(acc);
            acc += w;
            slot_item.extend(std::iter::repeat_n(x as u32, w as usize));
        }
        first.push(acc);
        let total = total as usize;
        let level = level.unwrap_or_else(|| want.clone());
        debug_assert_eq!(level.len(), items);

        let mut a = Assignment {
            zone,
            cap,
            zone_members,
            zones_with_capacity,
            held: vec![Vec::new(); members],
            want,
            asked,
            first,
            holder: vec![NONE; total],
            pos: vec![0; total],
            fresh: vec![false; total],
            slot_item,
            nfill: vec![0; items],
            level,
            relax: 0,
            cur_first: Vec::new(),
            cur_member: Vec::new(),
            cur_consistent: Vec::new(),
            cur_primary: vec![NONE; items],
            dormant: vec![0; items],
            new_count: vec![0; members],
            hazard: vec![0; members],
            kept_flagged: vec![0; members],
            locked: vec![0; members],
            joining: vec![false; members],
            pinned: (0..members)
                .map(|m| p.pinned.get(m).copied().unwrap_or(0))
                .collect(),
            hazard_members: 0,
            spare_dormant: 0,
            spare_items: 0,
            filled: 0,
            steps: Cell::new(0),
            budget,
        };
        a.load_current(p);
        Ok(a)
    }

    /// Groups the current assignment by item (a counting sort) and then, item by item:
    /// orders its entries by (slot, member), keeps each eligible member once, notes the
    /// current primary, keeps every pair the constraints and spread allow (in that order),
    /// and sets the item's counters. One pass per item keeps the work cache-friendly.
    fn load_current(&mut self, p: &Problem) {
        let items = self.want.len();
        let mut count = vec![0u32; items + 1];
        let mut per_member = vec![0u32; self.cap.len()];
        let mut grouped = true;
        let mut last = 0;
        for c in &p.current {
            count[c.item as usize + 1] += 1;
            per_member[c.member as usize] += 1;
            grouped &= c.item >= last;
            last = c.item;
        }
        for (m, &n) in per_member.iter().enumerate() {
            self.held[m].reserve(n.min(self.cap[m]) as usize);
            self.joining[m] = n == 0 && self.pinned[m] == 0;
        }
        for x in 0..items {
            count[x + 1] += count[x];
        }
        // Input grouped by item already (as a settled assignment is) needs no scatter.
        let order: Vec<u32> = if grouped {
            Vec::new()
        } else {
            let mut order = vec![0u32; p.current.len()];
            let mut next = count.clone();
            for (i, c) in p.current.iter().enumerate() {
                let at = &mut next[c.item as usize];
                order[*at as usize] = i as u32;
                *at += 1;
            }
            order
        };
        let key = |&i: &u32| {
            let c = &p.current[i as usize];
            (c.slot, c.member)
        };
        let mut group: Vec<u32> = Vec::new();
        self.cur_first = Vec::with_capacity(items + 1);
        self.cur_member = Vec::with_capacity(p.current.len());
        self.cur_consistent = Vec::with_capacity(p.current.len());
        for x in 0..items {
            let start = self.cur_member.len();
            self.cur_first.push(start as u32);
            let range = count[x] as usize..count[x + 1] as usize;
            group.clear();
            if grouped {
                group.extend(range.map(|i| i as u32));
            } else {
                group.extend_from_slice(&order[range]);
            }
            if !group.is_sorted_by_key(key) {
                group.sort_unstable_by_key(key);
            }
            for &i in group.iter() {
                let c = &p.current[i as usize];
                if c.slot == 0 && self.cur_primary[x] == NONE {
                    self.cur_primary[x] = c.member;
                }
                if self.cap[c.member as usize] > 0 && !self.cur_member[start..].contains(&c.member)
                {
                    self.cur_member.push(c.member);
                    self.cur_consistent.push(c.consistent);
                }
            }
            let x = x as u32;
            let (want, first) = (self.want[x as usize], self.first[x as usize]);
            // Kept replicas fill the item's first slots, so with an even balanced spread
            // (the common case) a zone is open while it holds fewer than R / Z of them.
            let zc = self.zones_with_capacity;
            let even = zc > 1 && self.level[x as usize] == want && want % zc == 0;
            for k in start..self.cur_member.len() {
                let m = self.cur_member[k];
                let n = self.nfill[x as usize];
                if n == want {
                    break;
                }
                if self.load(m) >= self.cap[m as usize] {
                    continue;
                }
                let z = self.zone[m as usize];
                let open = if even {
                    let held = &self.holder[first as usize..(first + n) as usize];
                    let here = held.iter().filter(|&&h| self.zone[h as usize] == z).count();
                    (here as u32) < want / zc
                } else {
                    self.allows(x, None, z)
                };
                if open {
                    self.attach(first + n, m, false);
                }
            }
            // Every holder is a distinct current member, so the rest are dormant.
            self.dormant[x as usize] =
                (self.cur_member.len() - start) as u32 - self.nfill[x as usize];
            self.account(x, 1);
        }
        self.cur_first.push(self.cur_member.len() as u32);
    }

    /// Counts one step of work; false once the budget is spent, when the caller stops.
    pub fn tick(&self) -> bool {
        let n = self.steps.get() + 1;
        self.steps.set(n);
        n <= self.budget
    }

    /// Whether the budget is spent: every loop ends and the solve reports an error.
    pub fn exhausted(&self) -> bool {
        self.steps.get() > self.budget
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps.get()
    }

    /// Replicas held by member `m`.
    pub fn load(&self, m: u32) -> u32 {
        self.held[m as usize].len() as u32
    }

    /// Slot range of item `x`.
    pub fn slots(&self, x: u32) -> std::ops::Range<usize> {
        self.first[x as usize] as usize..self.first[x as usize + 1] as usize
    }

    /// Current eligible members of item `x`.
    pub fn current_of(&self, x: u32) -> &[u32] {
        &self.cur_member
            [self.cur_first[x as usize] as usize..self.cur_first[x as usize + 1] as usize]
    }

    /// Whether member `m` holds item `x`.
    pub fn holds(&self, x: u32, m: u32) -> bool {
        self.slots(x).any(|s| self.holder[s] == m)
    }

    /// Whether `(x, m)` is a current assignment on an eligible member.
    pub fn is_current(&self, x: u32, m: u32) -> bool {
        self.current_of(x).contains(&m)
    }

    /// Change in moves if slot `s` moved to member `to`: +1 for moving a kept replica,
    /// 0 for moving a fresh one, one less when `to` is a dormant current member.
    pub fn move_cost(&self, s: u32, to: u32) -> i32 {
        let x = self.slot_item[s as usize];
        i32::from(!self.is_current(x, to)) - i32::from(self.fresh[s as usize])
    }

    /// The cheapest any residual path leaving member `u` can be, from the counters: -1 if
    /// `u` holds a fresh replica with a dormant pair, 0 if it holds any fresh replica or a
    /// kept one with a dormant pair, else 1.
    pub fn min_first(&self, u: u32) -> i32 {
        let u = u as usize;
        if self.hazard[u] > 0 {
            -1
        } else if self.new_count[u] > 0 || self.kept_flagged[u] > 0 {
            0
        } else {
            1
        }
    }

    /// Whether no member other than `a` and `b` can start a negative arc, so every path
    /// between them costs at least its first arc.
    pub fn hazards_only_at(&self, a: u32, b: u32) -> bool {
        let mut others = self.hazard_members;
        if self.hazard[a as usize] > 0 {
            others -= 1;
        }
        if b != a && self.hazard[b as usize] > 0 {
            others -= 1;
        }
        others == 0
    }

    /// Lowers item `x`'s level to the tightest one its replicas satisfy, so that later moves
    /// (balancing) keep the spread it has won back instead of undoing it. Removing arcs
    /// cannot close a negative cycle, so the flow stays min-cost. Returns whether it fell.
    pub fn tighten(&mut self, x: u32) -> bool {
        let t = self.tightest(x);
        if t >= self.level[x as usize] {
            return false;
        }
        self.account(x, -1);
        self.level[x as usize] = t;
        self.account(x, 1);
        true
    }

    /// Whether every member holds only replicas that cannot change zones, so a search can
    /// skip its replicas for every other zone.
    pub fn all_locked(&self, m: u32) -> bool {
        self.locked[m as usize] == self.load(m)
    }

    /// Puts item `x` on member `m` in one of its empty slots.
    pub fn place(&mut self, x: u32, m: u32) {
        self.tick();
        self.account(x, -1);
        let s = self
            .slots(x)
            .find(|&s| self.holder[s] == NONE)
            .expect("place is only called for an item with an empty slot") as u32;
        let fresh = !self.is_current(x, m);
        self.attach(s, m, fresh);
        self.dormant[x as usize] = self.count_dormant(x);
        self.account(x, 1);
    }

    /// Empties slot `s`.
    pub fn unplace(&mut self, s: u32) {
        self.tick();
        let x = self.slot_item[s as usize];
        self.account(x, -1);
        self.detach(s);
        self.dormant[x as usize] = self.count_dormant(x);
        self.account(x, 1);
    }

    /// Moves the replica in slot `s` to member `to`.
    pub fn shift(&mut self, s: u32, to: u32) {
        self.tick();
        let x = self.slot_item[s as usize];
        self.account(x, -1);
        self.detach(s);
        let fresh = !self.is_current(x, to);
        self.attach(s, to, fresh);
        self.dormant[x as usize] = self.count_dormant(x);
        self.account(x, 1);
    }

    fn attach(&mut self, s: u32, m: u32, fresh: bool) {
        let su = s as usize;
        debug_assert_eq!(self.holder[su], NONE);
        self.holder[su] = m;
        self.fresh[su] = fresh;
        self.pos[su] = self.held[m as usize].len() as u32;
        self.held[m as usize].push(s);
        self.nfill[self.slot_item[su] as usize] += 1;
        self.filled += 1;
    }

    fn detach(&mut self, s: u32) {
        let su = s as usize;
        let m = self.holder[su] as usize;
        let at = self.pos[su] as usize;
        let last = self.held[m]
            .pop()
            .expect("a held slot is in its holder's list");
        if last != s {
            self.held[m][at] = last;
            self.pos[last as usize] = at as u32;
        }
        self.holder[su] = NONE;
        self.nfill[self.slot_item[su] as usize] -= 1;
        self.filled -= 1;
    }

    fn count_dormant(&self, x: u32) -> u32 {
        let current = self.current_of(x);
        let slots = self.slots(x);
        // Few replicas (the usual case): compare directly. Many: sort the holders once.
        if slots.len() <= 16 {
            return current.iter().filter(|&&m| !self.holds(x, m)).count() as u32;
        }
        let mut holders: Vec<u32> = slots.map(|s| self.holder[s]).collect();
        holders.sort_unstable();
        current
            .iter()
            .filter(|m| holders.binary_search(m).is_err())
            .count() as u32
    }

    /// Adds (`sign` 1) or removes (`sign` -1) item `x`'s share of the counters.
    fn account(&mut self, x: u32, sign: i32) {
        let xu = x as usize;
        let flagged = self.dormant[xu] > 0;
        let spare = self.nfill[xu] < self.want[xu];
        let add = |v: &mut u32| *v = v.wrapping_add_signed(sign);
        if spare {
            add(&mut self.spare_items);
            if flagged {
                add(&mut self.spare_dormant);
            }
        }
        let locked = self.zone_locked(x);
        for s in self.slots(x) {
            let m = self.holder[s];
            if m == NONE {
                continue;
            }
            let m = m as usize;
            if locked {
                add(&mut self.locked[m]);
            }
            if self.fresh[s] {
                add(&mut self.new_count[m]);
                if flagged {
                    let before = self.hazard[m] > 0;
                    add(&mut self.hazard[m]);
                    let after = self.hazard[m] > 0;
                    if before != after {
                        add(&mut self.hazard_members);
                    }
                }
            } else if flagged {
                add(&mut self.kept_flagged[m]);
            }
        }
    }
}
