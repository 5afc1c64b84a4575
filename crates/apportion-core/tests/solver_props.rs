//! Property tests of the solver on random small instances, against exact references: a
//! plain max-flow for fill, and a Bellman-Ford min-cost flow for fewest moves and for
//! whether a balanced assignment exists.

use apportion_core::solver::{solve, Current, Item, Member, Problem, Solution};
use proptest::prelude::*;

/// A flow network solved by successive shortest paths with Bellman-Ford.
struct Network {
    head: Vec<usize>,
    cap: Vec<i64>,
    cost: Vec<i64>,
    adj: Vec<Vec<usize>>,
}

impl Network {
    fn new(nodes: usize) -> Self {
        Network {
            head: Vec::new(),
            cap: Vec::new(),
            cost: Vec::new(),
            adj: vec![Vec::new(); nodes],
        }
    }

    fn arc(&mut self, from: usize, to: usize, cap: i64, cost: i64) -> usize {
        let e = self.head.len();
        for (a, b, c, k) in [(from, to, cap, cost), (to, from, 0, -cost)] {
            self.adj[a].push(self.head.len());
            self.head.push(b);
            self.cap.push(c);
            self.cost.push(k);
        }
        e
    }

    fn flow(&self, e: usize) -> i64 {
        self.cap[e ^ 1]
    }

    /// Min-cost max-flow; returns (flow, cost).
    fn solve(&mut self, s: usize, t: usize) -> (i64, i64) {
        let n = self.adj.len();
        let (mut flow, mut total) = (0, 0);
        loop {
            let mut dist = vec![i64::MAX; n];
            let mut pred = vec![usize::MAX; n];
            dist[s] = 0;
            for _ in 0..n {
                let mut changed = false;
                for u in 0..n {
                    if dist[u] == i64::MAX {
                        continue;
                    }
                    for &e in &self.adj[u] {
                        let v = self.head[e];
                        if self.cap[e] > 0 && dist[u] + self.cost[e] < dist[v] {
                            dist[v] = dist[u] + self.cost[e];
                            pred[v] = e;
                            changed = true;
                        }
                    }
                }
                if !changed {
                    break;
                }
            }
            if dist[t] == i64::MAX {
                return (flow, total);
            }
            let mut push = i64::MAX;
            let mut v = t;
            while v != s {
                let e = pred[v];
                push = push.min(self.cap[e]);
                v = self.head[e ^ 1];
            }
            let mut v = t;
            while v != s {
                let e = pred[v];
                self.cap[e] -= push;
                self.cap[e ^ 1] += push;
                v = self.head[e ^ 1];
            }
            flow += push;
            total += push * dist[t];
        }
    }
}

/// What the instance allows, computed the solver-independent way.
struct Facts {
    eligible: Vec<usize>,
    zones: Vec<u32>,
    want: Vec<i64>,
}

fn facts(p: &Problem) -> Facts {
    let eligible: Vec<usize> = (0..p.members.len())
        .filter(|&m| p.members[m].capacity() > 0)
        .collect();
    let mut zones: Vec<u32> = eligible.iter().map(|&m| p.members[m].zone).collect();
    zones.sort_unstable();
    zones.dedup();
    let want = p
        .items
        .iter()
        .map(|i| i64::from(i.replication).min(eligible.len() as i64))
        .collect();
    Facts {
        eligible,
        zones,
        want,
    }
}

fn loads(p: &Problem, sol: &Solution) -> Vec<i64> {
    let mut load = vec![0; p.members.len()];
    for r in &sol.replicas {
        load[r.member as usize] += 1;
    }
    load
}

/// Per item and zone, the most replicas the solution's spread tier allows: the tightest of
/// balanced spread, "at least two zones" and none that the solution satisfies.
fn zone_caps(p: &Problem, f: &Facts, sol: &Solution, x: usize) -> (Vec<i64>, i64) {
    let z = f.zones.len() as i64;
    let r = f.want[x];
    let count = |zone: u32| {
        sol.replicas_of(x as u32)
            .iter()
            .filter(|rep| p.members[rep.member as usize].zone == zone)
            .count() as i64
    };
    let counts: Vec<i64> = f.zones.iter().map(|&zone| count(zone)).collect();
    if z <= 1 {
        return (vec![r; f.zones.len()], 0);
    }
    let (floor, extra) = (r / z, r % z);
    let above = counts.iter().filter(|&&c| c == floor + 1).count() as i64;
    if counts.iter().all(|&c| c <= floor + 1) && above <= extra {
        return (vec![floor; f.zones.len()], extra);
    }
    let two = (r - 1).max(1);
    if counts.iter().all(|&c| c <= two) {
        return (vec![two; f.zones.len()], 0);
    }
    (vec![r; f.zones.len()], 0)
}

/// Builds source -> item -> item-zone (with the solution's spread caps) -> member, and
/// returns (network, source, sink, member nodes, item-member arcs with whether current).
fn network(p: &Problem, f: &Facts, sol: &Solution) -> (Network, usize, usize, Vec<usize>) {
    let items = p.items.len();
    let zn = f.zones.len();
    // nodes: source, sink, items, extra per item, item-zone, members
    let (s, t) = (0, 1);
    let item = |x: usize| 2 + x;
    let extra = |x: usize| 2 + items + x;
    let iz = |x: usize, z: usize| 2 + 2 * items + x * zn + z;
    let member = |m: usize| 2 + 2 * items + items * zn + m;
    let mut net = Network::new(2 + 2 * items + items * zn + p.members.len());
    for x in 0..items {
        net.arc(s, item(x), f.want[x], 0);
        let (caps, ex) = zone_caps(p, f, sol, x);
        net.arc(item(x), extra(x), ex, 0);
        for (z, &cap) in caps.iter().enumerate() {
            net.arc(item(x), iz(x, z), cap, 0);
            net.arc(extra(x), iz(x, z), 1, 0);
        }
        for &m in &f.eligible {
            let z = f.zones.binary_search(&p.members[m].zone).unwrap();
            let current = p
                .current
                .iter()
                .any(|c| c.item as usize == x && c.member as usize == m);
            net.arc(iz(x, z), member(m), 1, i64::from(!current));
        }
    }
    let members = (0..p.members.len()).map(member).collect();
    (net, s, t, members)
}

/// The maximum number of replicas any assignment places (no spread).
fn max_fill(p: &Problem, f: &Facts) -> i64 {
    let items = p.items.len();
    let mut net = Network::new(2 + items + p.members.len());
    for x in 0..items {
        net.arc(0, 2 + x, f.want[x], 0);
        for &m in &f.eligible {
            net.arc(2 + x, 2 + items + m, 1, 0);
        }
    }
    for &m in &f.eligible {
        net.arc(2 + items + m, 1, i64::from(p.members[m].capacity()), 0);
    }
    net.solve(0, 1).0
}

const BIG: i64 = 1_000_000;

/// The most current assignments any assignment with the solution's loads and spread keeps.
fn max_kept(p: &Problem, f: &Facts, sol: &Solution) -> i64 {
    let (mut net, s, t, members) = network(p, f, sol);
    let load = loads(p, sol);
    for &m in &f.eligible {
        net.arc(members[m], t, load[m], -BIG);
    }
    let (flow, cost) = net.solve(s, t);
    assert_eq!(
        flow,
        load.iter().sum::<i64>(),
        "the solution itself is feasible"
    );
    flow - (cost + BIG * flow)
}

/// Fair-share bands of every member for `filled` replicas.
fn bands(p: &Problem, f: &Facts, filled: i64) -> Vec<(i64, i64)> {
    let total: i64 = f
        .eligible
        .iter()
        .map(|&m| i64::from(p.members[m].capacity()))
        .sum();
    (0..p.members.len())
        .map(|m| {
            let num = filled * i64::from(p.members[m].capacity());
            if total == 0 {
                (0, 0)
            } else {
                (num / total, (num + total - 1) / total)
            }
        })
        .collect()
}

/// Whether some assignment with the solution's fill and spread puts every member in its band.
fn balanced_exists(p: &Problem, f: &Facts, sol: &Solution, filled: i64) -> bool {
    let (mut net, s, t, members) = network(p, f, sol);
    let band = bands(p, f, filled);
    let mut lower = Vec::new();
    for &m in &f.eligible {
        let (lo, hi) = band[m];
        lower.push(net.arc(members[m], t, lo, -2 * BIG));
        net.arc(members[m], t, hi - lo, -BIG);
    }
    let (flow, _) = net.solve(s, t);
    let saturated = lower
        .iter()
        .zip(&f.eligible)
        .all(|(&e, &m)| net.flow(e) == band[m].0);
    flow == filled && saturated
}

fn problem() -> impl Strategy<Value = Problem> {
    let members = prop::collection::vec((0u32..3, 0u32..9, prop::bool::weighted(0.15)), 1..9);
    let items = prop::collection::vec(0u32..5, 0..13);
    (members, items).prop_flat_map(|(members, items)| {
        let (nm, ni) = (members.len() as u32, items.len() as u32);
        let current = if ni == 0 {
            Just(Vec::new()).boxed()
        } else {
            prop::collection::vec((0..ni, 0..nm, 0u32..4, prop::bool::weighted(0.8)), 0..40).boxed()
        };
        (Just(members), Just(items), current).prop_map(|(members, items, current)| Problem {
            members: members
                .into_iter()
                .map(|(zone, item_limit, exiting)| Member {
                    zone,
                    item_limit,
                    exiting,
                })
                .collect(),
            items: items
                .into_iter()
                .map(|replication| Item { replication })
                .collect(),
            current: current
                .into_iter()
                .map(|(item, member, slot, consistent)| Current {
                    item,
                    member,
                    slot,
                    consistent,
                })
                .collect(),
        })
    })
}

/// Makes the solution the current assignment, as a cluster does after applying a plan.
fn settled(p: &Problem, sol: &Solution) -> Problem {
    let mut next = p.clone();
    apportion_core::solver::scenario::settle(&mut next, sol);
    next
}

fn check(p: &Problem) -> Result<(), TestCaseError> {
    let sol = solve(p).unwrap();
    let f = facts(p);
    let load = loads(p, &sol);
    // Hard constraints.
    for x in 0..p.items.len() as u32 {
        let reps = sol.replicas_of(x);
        let mut ms: Vec<u32> = reps.iter().map(|r| r.member).collect();
        ms.sort_unstable();
        ms.dedup();
        prop_assert_eq!(ms.len(), reps.len(), "item {} twice on a member", x);
        prop_assert!(reps.len() as u32 <= p.items[x as usize].replication);
    }
    for (m, member) in p.members.iter().enumerate() {
        prop_assert!(
            load[m] <= i64::from(member.capacity()),
            "member {} over its limit",
            m
        );
    }
    // Fill is the exact maximum.
    let filled = sol.replicas.len() as i64;
    prop_assert_eq!(filled, max_fill(p, &f));
    let asked: u64 = p.items.iter().map(|i| u64::from(i.replication)).sum();
    prop_assert_eq!(sol.unfilled_slots, asked - filled as u64);
    // Fewest moves for these loads.
    prop_assert_eq!(
        sol.kept as i64,
        max_kept(p, &f, &sol),
        "kept is not the maximum"
    );
    // Balanced whenever a balanced assignment exists.
    if balanced_exists(p, &f, &sol, filled) {
        let band = bands(p, &f, filled);
        for &m in &f.eligible {
            prop_assert!(
                band[m].0 <= load[m] && load[m] <= band[m].1,
                "member {} holds {} outside {:?}",
                m,
                load[m],
                band[m]
            );
        }
    }
    // Deterministic, and a settled solution is a fixed point unless some item had to give
    // up balanced spread (a later solve may then find a better spread).
    prop_assert_eq!(&solve(p).unwrap(), &sol);
    let spread = (0..p.items.len()).all(|x| {
        let (caps, extra) = zone_caps(p, &f, &sol, x);
        let r = f.want[x];
        f.zones.len() <= 1
            || (caps[0] == r / f.zones.len() as i64 && extra == r % f.zones.len() as i64)
    });
    if spread {
        let again = solve(&settled(p, &sol)).unwrap();
        prop_assert_eq!(
            again.added + again.removed.len() as u64,
            0,
            "settled solution moved"
        );
    }
    Ok(())
}

/// A change a running cluster sees, applied to a settled problem.
#[derive(Clone, Debug)]
enum Change {
    Lose(u32),
    Exit(u32),
    Join(u32, u32),
    Limit(u32, u32),
    Replication(u32, u32),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (0u32..8).prop_map(Change::Lose),
        (0u32..8).prop_map(Change::Exit),
        (0u32..3, 0u32..9).prop_map(|(z, l)| Change::Join(z, l)),
        (0u32..8, 0u32..9).prop_map(|(m, l)| Change::Limit(m, l)),
        (0u32..12, 0u32..5).prop_map(|(x, r)| Change::Replication(x, r)),
    ]
}

fn apply(p: &mut Problem, change: &Change) {
    let nm = p.members.len() as u32;
    if nm == 0 && !matches!(change, Change::Join(..)) {
        return;
    }
    match *change {
        Change::Lose(m) => {
            apportion_core::solver::scenario::remove_members(p, |i, _| i == m % nm);
        }
        Change::Exit(m) => p.members[(m % nm) as usize].exiting = true,
        Change::Join(zone, item_limit) => p.members.push(Member {
            zone,
            item_limit,
            exiting: false,
        }),
        Change::Limit(m, l) => p.members[(m % nm) as usize].item_limit = l,
        Change::Replication(x, r) => {
            if let Some(item) = p.items.get_mut(x as usize) {
                item.replication = r;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn solutions_are_maximal_minimal_and_balanced(p in problem()) {
        check(&p)?;
    }

    #[test]
    fn changes_to_a_settled_cluster_are_solved_as_well(
        p in problem(),
        changes in prop::collection::vec(change(), 1..4),
    ) {
        let mut p = settled(&p, &solve(&p).unwrap());
        for c in &changes {
            apply(&mut p, c);
            check(&p)?;
            p = settled(&p, &solve(&p).unwrap());
        }
    }
}
