//! Exact references for the solver's objectives, for the property tests and the soak
//! benchmark: a solution is checked against flows computed independently of the solver.
//!
//! - Fill: a maximum flow with no spread at all.
//! - Spread: if every item could keep two zones (at most `R - 1` replicas per zone) at the
//!   maximum fill, every item does; if every item could be balanced, every item is.
//! - Moves: no assignment with the same member loads and the solution's own spread keeps
//!   more current pairs: the solution's flow has no negative cycle in its residual network.
//! - Balance: if some assignment with the same fill and spread puts every member inside
//!   its fair-share band, the solution does; likewise for primaries over the replicas
//!   that may lead (only the kept ones of an item that lost its primary and keeps any).
//!
//! Everything is a plain Dinic maximum flow (with lower bounds by the usual circulation
//! reduction) or one Bellman-Ford pass, and references are computed only when the
//! solution does not already satisfy the objective trivially, so checking stays cheap
//! enough to run on every solve of a long soak.

use super::problem::Problem;
use super::solution::Solution;

/// What a failed check is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A hard constraint: a member over its limit, an item twice on a member, too many
    /// replicas, or counts that do not add up.
    Constraint,
    /// Fewer replicas placed than the maximum.
    Fill,
    /// Spread that every item could have had at once is missing.
    Spread,
    /// Another assignment with the same loads and spread keeps more current pairs.
    Moves,
    /// A member outside its band although a balanced assignment exists.
    Balance,
    /// Primaries unbalanced although the replicas allow a balance.
    Primaries,
}

/// A failed check: its kind and a line saying what exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Which objective failed.
    pub kind: Kind,
    /// What was wrong, naming the item or member.
    pub detail: String,
}

fn fail(kind: Kind, detail: String) -> Result<(), Failure> {
    Err(Failure { kind, detail })
}

/// Checks `sol` against `p` on every objective; the first failure found.
pub fn check(p: &Problem, sol: &Solution) -> Result<(), Failure> {
    let m = Model::new(p, sol);
    m.constraints()?;
    let best = m.max_fill()?;
    m.spread(best)?;
    m.moves()?;
    m.balance()?;
    m.primaries()
}

/// Whether a solve of `sol` made current must move nothing: every item holds the balanced
/// spread and no member with a share of at least one was left empty. Otherwise a later
/// solve may still find a better spread, or a member left empty by a tie counts as joining
/// and takes its share then.
pub fn settles(p: &Problem, sol: &Solution) -> bool {
    let m = Model::new(p, sol);
    let z = m.zones as i64;
    let balanced =
        z <= 1 || (0..p.items.len()).all(|x| Caps::stage(m.want[x], z, 0).holds(&m.count[x]));
    let band = m.bands(m.filled());
    let left_empty = m.eligible.iter().any(|&v| m.load[v] == 0 && band[v].0 >= 1);
    balanced && !left_empty
}

/// The instance as the solver sees it, plus the solution's counts.
struct Model<'a> {
    p: &'a Problem,
    sol: &'a Solution,
    /// Members with capacity.
    eligible: Vec<usize>,
    /// Dense zone of every member (only meaningful for eligible ones).
    zone: Vec<usize>,
    /// Zones with capacity.
    zones: usize,
    /// Replicas each item can have.
    want: Vec<i64>,
    /// Replicas per member in the solution.
    load: Vec<i64>,
    /// Replicas per item and zone in the solution.
    count: Vec<Vec<i64>>,
}

impl<'a> Model<'a> {
    fn new(p: &'a Problem, sol: &'a Solution) -> Self {
        let eligible: Vec<usize> = (0..p.members.len())
            .filter(|&m| p.members[m].capacity() > 0)
            .collect();
        let mut ids: Vec<u32> = eligible.iter().map(|&m| p.members[m].zone).collect();
        ids.sort_unstable();
        ids.dedup();
        let zone = p
            .members
            .iter()
            .map(|m| ids.binary_search(&m.zone).unwrap_or(0))
            .collect::<Vec<_>>();
        let want = p
            .items
            .iter()
            .map(|i| i64::from(i.replication).min(eligible.len() as i64))
            .collect();
        let mut load = vec![0; p.members.len()];
        let mut count = vec![vec![0; ids.len().max(1)]; p.items.len()];
        for (x, counts) in count.iter_mut().enumerate().take(sol.items()) {
            for r in sol.replicas_of(x as u32) {
                let m = r.member as usize;
                if m < load.len() {
                    load[m] += 1;
                    counts[zone[m]] += 1;
                }
            }
        }
        Model {
            p,
            sol,
            eligible,
            zone,
            zones: ids.len(),
            want,
            load,
            count,
        }
    }

    fn constraints(&self) -> Result<(), Failure> {
        let (p, sol) = (self.p, self.sol);
        if sol.items() != p.items.len() {
            return fail(Kind::Constraint, format!("{} items solved", sol.items()));
        }
        for x in 0..p.items.len() {
            let reps = sol.replicas_of(x as u32);
            let mut ms: Vec<u32> = reps.iter().map(|r| r.member).collect();
            ms.sort_unstable();
            ms.dedup();
            if ms.len() != reps.len() {
                return fail(Kind::Constraint, format!("item {x} twice on a member"));
            }
            if reps.len() as i64 > self.want[x] {
                return fail(Kind::Constraint, format!("item {x} over its replication"));
            }
            if ms.last().is_some_and(|&m| m as usize >= p.members.len()) {
                return fail(
                    Kind::Constraint,
                    format!("item {x} on a member out of range"),
                );
            }
        }
        for (m, member) in p.members.iter().enumerate() {
            if self.load[m] > i64::from(member.capacity()) {
                return fail(Kind::Constraint, format!("member {m} over its limit"));
            }
        }
        let asked: u64 = p.items.iter().map(|i| u64::from(i.replication)).sum();
        if sol.unfilled_slots + sol.replicas.len() as u64 != asked {
            return fail(Kind::Constraint, "unfilled slots do not add up".into());
        }
        let added = sol.replicas.iter().filter(|r| r.added).count() as u64;
        if added != sol.added || sol.kept + sol.added != sol.replicas.len() as u64 {
            return fail(Kind::Constraint, "kept and added do not add up".into());
        }
        Ok(())
    }

    fn filled(&self) -> i64 {
        self.sol.replicas.len() as i64
    }

    /// The maximum fill with no spread; checks the solution reaches it.
    fn max_fill(&self) -> Result<i64, Failure> {
        let free: i64 = self
            .eligible
            .iter()
            .map(|&m| i64::from(self.p.members[m].capacity()) - self.load[m])
            .sum();
        let total: i64 = self.want.iter().sum();
        if self.filled() == total || free == 0 {
            return Ok(self.filled());
        }
        let best = self.fill_with(|x| Caps::none(self.want[x]));
        if self.filled() < best {
            return fail(
                Kind::Fill,
                format!("{} placed, {best} possible", self.filled()),
            )
            .map(|_| 0);
        }
        Ok(best)
    }

    /// The most replicas any assignment places with item `x`'s zones capped by `caps(x)`.
    fn fill_with(&self, caps: impl Fn(usize) -> Caps) -> i64 {
        let mut g = Layout::new(self);
        let (s, t) = (g.s, g.t);
        g.items(self, &caps);
        g.choices(self);
        for &m in &self.eligible {
            let cap = i64::from(self.p.members[m].capacity());
            g.net.arc(g.member(m), t, cap);
        }
        g.net.max_flow(s, t)
    }

    fn spread(&self, best: i64) -> Result<(), Failure> {
        if self.zones <= 1 {
            return Ok(());
        }
        let z = self.zones as i64;
        for (stage, name) in [(1, "two zones"), (0, "balanced spread")] {
            let caps = |x: usize| Caps::stage(self.want[x], z, stage);
            let Some(x) = (0..self.p.items.len()).find(|&x| !caps(x).holds(&self.count[x])) else {
                continue;
            };
            if self.fill_with(caps) == best {
                return fail(
                    Kind::Spread,
                    format!("item {x} lacks {name}, which every item can have at the maximum fill"),
                );
            }
        }
        // Where nothing is current, no move is dearer than another: an item with a zone
        // holding two more than another zone where a member has room could move there.
        if self.p.current.is_empty() {
            for x in 0..self.p.items.len() {
                let top = self.count[x].iter().copied().max().unwrap_or(0);
                let holds = |m: usize| {
                    self.sol
                        .replicas_of(x as u32)
                        .iter()
                        .any(|r| r.member as usize == m)
                };
                let open = self.eligible.iter().any(|&m| {
                    self.count[x][self.zone[m]] + 2 <= top
                        && self.load[m] < i64::from(self.p.members[m].capacity())
                        && !holds(m)
                });
                if open {
                    return fail(Kind::Spread, format!("item {x} could spread more evenly"));
                }
            }
        }
        Ok(())
    }

    /// The tightest spread caps item `x`'s replicas satisfy (the solver's spread level).
    fn own_caps(&self, x: usize) -> Caps {
        if self.zones <= 1 {
            return Caps::none(self.want[x]);
        }
        Caps::tightest(&self.count[x], self.want[x], self.zones as i64)
    }

    fn moves(&self) -> Result<(), Failure> {
        let mut g = Layout::new(self);
        let mut costs = Vec::new();
        g.items(self, &|x| self.own_caps(x));
        // Member arcs, current or not; the flow on them is the solution.
        for x in 0..self.p.items.len() {
            let holders: Vec<usize> = self
                .sol
                .replicas_of(x as u32)
                .iter()
                .map(|r| r.member as usize)
                .collect();
            let current: Vec<usize> = self
                .p
                .current
                .iter()
                .filter(|c| c.item as usize == x)
                .map(|c| c.member as usize)
                .collect();
            for &m in &self.eligible {
                let e = g.net.arc(g.iz(x, self.zone[m]), g.member(m), 1);
                if holders.contains(&m) {
                    g.net.push(e, 1);
                }
                costs.push((e, i64::from(!current.contains(&m))));
            }
        }
        g.route(self);
        let mut cost = vec![0; g.net.head.len()];
        for (e, c) in costs {
            cost[e] = c;
            cost[e ^ 1] = -c;
        }
        if g.net.negative_cycle(&cost) {
            return fail(
                Kind::Moves,
                "an assignment with the same loads keeps more current pairs".into(),
            );
        }
        Ok(())
    }

    fn bands(&self, amount: i64) -> Vec<(i64, i64)> {
        let total: i64 = self
            .eligible
            .iter()
            .map(|&m| i64::from(self.p.members[m].capacity()))
            .sum();
        self.p
            .members
            .iter()
            .map(|member| {
                let num = amount * i64::from(member.capacity());
                if total == 0 {
                    (0, 0)
                } else {
                    (num / total, (num + total - 1) / total)
                }
            })
            .collect()
    }

    fn balance(&self) -> Result<(), Failure> {
        let band = self.bands(self.filled());
        let outside = self
            .eligible
            .iter()
            .copied()
            .find(|&m| self.load[m] < band[m].0 || self.load[m] > band[m].1);
        let Some(m) = outside else {
            return Ok(());
        };
        let mut g = Layout::new(self);
        g.items(self, &|x| self.own_caps(x));
        g.choices(self);
        let bounds: Vec<(usize, (i64, i64))> = self
            .eligible
            .iter()
            .map(|&v| (g.member(v), band[v]))
            .collect();
        if g.feasible(&bounds, self.filled()) {
            return fail(
                Kind::Balance,
                format!(
                    "member {m} holds {} outside {:?}, a balanced assignment exists",
                    self.load[m], band[m]
                ),
            );
        }
        Ok(())
    }

    fn primaries(&self) -> Result<(), Failure> {
        let items = self.p.items.len();
        let with: Vec<usize> = (0..items)
            .filter(|&x| !self.sol.replicas_of(x as u32).is_empty())
            .collect();
        let mut count = vec![0i64; self.p.members.len()];
        for &x in &with {
            count[self.sol.replicas_of(x as u32)[0].member as usize] += 1;
        }
        let band = self.bands(with.len() as i64);
        let outside = self
            .eligible
            .iter()
            .copied()
            .find(|&m| count[m] < band[m].0 || count[m] > band[m].1);
        let Some(m) = outside else {
            return Ok(());
        };
        let (s, t) = (0, 1);
        let member = |v: usize| 2 + items + v;
        let mut net = Net::new(2 + items + self.p.members.len());
        let mut had_primary = vec![false; items];
        for c in self.p.current.iter().filter(|c| c.slot == 0) {
            had_primary[c.item as usize] = true;
        }
        for &x in &with {
            net.arc(s, 2 + x, 1);
            let replicas = self.sol.replicas_of(x as u32);
            // An item that lost its primary takes it from a kept replica when it has one
            // (see `solver::primary`).
            let orphaned = !had_primary[x] && replicas.iter().any(|r| !r.added);
            for r in replicas.iter().filter(|r| !(orphaned && r.added)) {
                net.arc(2 + x, member(r.member as usize), 1);
            }
        }
        let bounds: Vec<(usize, (i64, i64))> = self
            .eligible
            .iter()
            .map(|&v| (member(v), band[v]))
            .collect();
        if net.feasible(s, t, &bounds, with.len() as i64) {
            return fail(
                Kind::Primaries,
                format!(
                    "member {m} has {} primaries outside {:?}, a balance exists",
                    count[m], band[m]
                ),
            );
        }
        Ok(())
    }
}

/// Spread caps of one item: at most `cap` replicas per zone, plus one more in at most
/// `extra` zones (the solver's spread level `cap * zones + extra`).
#[derive(Clone, Copy)]
struct Caps {
    cap: i64,
    extra: i64,
}

impl Caps {
    fn none(want: i64) -> Self {
        Caps {
            cap: want,
            extra: 0,
        }
    }

    /// Stage 0 (balanced) or stage 1 (at most `R - 1` per zone).
    fn stage(want: i64, zones: i64, stage: u8) -> Self {
        match stage {
            0 => Caps {
                cap: want / zones,
                extra: want % zones,
            },
            _ => Caps {
                cap: (want - 1).max(1),
                extra: 0,
            },
        }
    }

    fn tightest(count: &[i64], want: i64, zones: i64) -> Self {
        let top = count.iter().copied().max().unwrap_or(0);
        let at_top = count.iter().filter(|&&c| c == top).count() as i64;
        let level = ((top - 1).max(0) * zones + at_top).max(want);
        Caps {
            cap: level / zones,
            extra: level % zones,
        }
    }

    fn holds(&self, count: &[i64]) -> bool {
        let above = count.iter().filter(|&&c| c > self.cap).count() as i64;
        count.iter().all(|&c| c <= self.cap + 1) && above <= self.extra
    }
}

/// The assignment network: source -> item -> (extra) -> item-zone -> member -> sink.
struct Layout {
    net: Net,
    s: usize,
    t: usize,
    items: usize,
    zones: usize,
}

impl Layout {
    fn new(m: &Model) -> Self {
        let (items, zones) = (m.p.items.len(), m.zones.max(1));
        Layout {
            net: Net::new(2 + items * (2 + zones) + m.p.members.len()),
            s: 0,
            t: 1,
            items,
            zones,
        }
    }

    fn item(&self, x: usize) -> usize {
        2 + x
    }

    fn extra(&self, x: usize) -> usize {
        2 + self.items + x
    }

    fn iz(&self, x: usize, z: usize) -> usize {
        2 + 2 * self.items + x * self.zones + z
    }

    fn member(&self, m: usize) -> usize {
        2 + self.items * (2 + self.zones) + m
    }

    /// Source, item, extra and item-zone arcs; with `m`'s flow routed through them only
    /// by [`Self::route`].
    fn items(&mut self, m: &Model, caps: &dyn Fn(usize) -> Caps) {
        for x in 0..self.items {
            let c = caps(x);
            self.net.arc(self.s, self.item(x), m.want[x]);
            self.net.arc(self.item(x), self.extra(x), c.extra);
            for z in 0..self.zones {
                self.net.arc(self.item(x), self.iz(x, z), c.cap);
                self.net.arc(self.extra(x), self.iz(x, z), 1);
            }
        }
    }

    /// An arc from every item-zone to every member of the zone with capacity.
    fn choices(&mut self, m: &Model) {
        for x in 0..self.items {
            for &v in &m.eligible {
                self.net.arc(self.iz(x, m.zone[v]), self.member(v), 1);
            }
        }
    }

    /// Puts the solution's flow on the source, item, extra and item-zone arcs (the member
    /// arcs carry it already) and fixes every member's load: no residual arc reaches the
    /// sink, so a cycle cannot change a load.
    fn route(&mut self, m: &Model) {
        for x in 0..self.items {
            let c = m.own_caps(x);
            let base = self.net.adj[self.item(x)].clone();
            let filled: i64 = m.count[x].iter().sum();
            self.net.push(base[0] ^ 1, filled);
            for z in 0..self.zones {
                let n = m.count[x][z];
                let direct = n.min(c.cap);
                // Arcs from the item, in order: source (reverse), extra, then zones.
                self.net.push(base[2 + z], direct);
                if n > direct {
                    self.net.push(base[1], n - direct);
                    let via = self.net.adj[self.extra(x)][1 + z];
                    self.net.push(via, n - direct);
                }
            }
        }
    }

    /// Whether a flow of exactly `amount` exists with every member's load in its bounds.
    fn feasible(&mut self, bounds: &[(usize, (i64, i64))], amount: i64) -> bool {
        self.net.feasible(self.s, self.t, bounds, amount)
    }
}

/// A flow network with unit arcs in pairs (arc `e` and its reverse `e ^ 1`).
struct Net {
    head: Vec<usize>,
    cap: Vec<i64>,
    adj: Vec<Vec<usize>>,
}

impl Net {
    fn new(nodes: usize) -> Self {
        Net {
            head: Vec::new(),
            cap: Vec::new(),
            adj: vec![Vec::new(); nodes],
        }
    }

    fn arc(&mut self, from: usize, to: usize, cap: i64) -> usize {
        let e = self.head.len();
        for (a, b, c) in [(from, to, cap), (to, from, 0)] {
            self.adj[a].push(self.head.len());
            self.head.push(b);
            self.cap.push(c);
        }
        e
    }

    /// Sends `amount` along arc `e` (from the residual capacity to its reverse).
    fn push(&mut self, e: usize, amount: i64) {
        self.cap[e] -= amount;
        self.cap[e ^ 1] += amount;
    }

    /// Dinic's maximum flow from `s` to `t`.
    fn max_flow(&mut self, s: usize, t: usize) -> i64 {
        let n = self.adj.len();
        let mut total = 0;
        loop {
            let mut level = vec![usize::MAX; n];
            level[s] = 0;
            let mut queue = std::collections::VecDeque::from([s]);
            while let Some(u) = queue.pop_front() {
                for &e in &self.adj[u] {
                    let v = self.head[e];
                    if self.cap[e] > 0 && level[v] == usize::MAX {
                        level[v] = level[u] + 1;
                        queue.push_back(v);
                    }
                }
            }
            if level[t] == usize::MAX {
                return total;
            }
            let mut next = vec![0; n];
            loop {
                let pushed = self.blocking(s, t, i64::MAX, &level, &mut next);
                if pushed == 0 {
                    break;
                }
                total += pushed;
            }
        }
    }

    fn blocking(
        &mut self,
        u: usize,
        t: usize,
        limit: i64,
        level: &[usize],
        next: &mut [usize],
    ) -> i64 {
        if u == t {
            return limit;
        }
        while next[u] < self.adj[u].len() {
            let e = self.adj[u][next[u]];
            let v = self.head[e];
            if self.cap[e] > 0 && level[v] == level[u] + 1 {
                let got = self.blocking(v, t, limit.min(self.cap[e]), level, next);
                if got > 0 {
                    self.push(e, got);
                    return got;
                }
            }
            next[u] += 1;
        }
        0
    }

    /// Whether a flow of exactly `amount` from `s` to `t` exists with the flow on every
    /// `node -> t` arc inside `(lo, hi)`: the circulation reduction of lower bounds.
    fn feasible(
        &mut self,
        s: usize,
        t: usize,
        bounds: &[(usize, (i64, i64))],
        amount: i64,
    ) -> bool {
        let (ss, tt) = (self.adj.len(), self.adj.len() + 1);
        self.adj.push(Vec::new());
        self.adj.push(Vec::new());
        let mut demand = amount;
        for &(v, (lo, hi)) in bounds {
            self.arc(v, t, hi - lo);
            self.arc(v, tt, lo);
            demand += lo;
        }
        // t -> s carries exactly `amount`: its lower bound is the whole capacity.
        self.arc(ss, s, amount);
        self.arc(t, tt, amount);
        let lows: i64 = bounds.iter().map(|&(_, (lo, _))| lo).sum();
        self.arc(ss, t, lows);
        self.max_flow(ss, tt) == demand
    }

    /// Whether the residual network has a cycle of negative total cost (`cost` per arc):
    /// Bellman-Ford from every node at once.
    fn negative_cycle(&self, cost: &[i64]) -> bool {
        let n = self.adj.len();
        let mut dist = vec![0i64; n];
        for _ in 0..=n {
            let mut changed = false;
            for u in 0..n {
                for &e in &self.adj[u] {
                    let v = self.head[e];
                    if self.cap[e] > 0 && dist[u] + cost[e] < dist[v] {
                        dist[v] = dist[u] + cost[e];
                        changed = true;
                    }
                }
            }
            if !changed {
                return false;
            }
        }
        true
    }
}
