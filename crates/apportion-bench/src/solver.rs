//! The solver benchmark (`apportion bench solver`): times the solver on synthetic clusters
//! and the changes a running service sees, one [`Line`] per scenario.
//!
//! Every scenario starts from the instance's settled solution (solved from empty, then
//! applied as the current assignment); `solve_ms` times only the solve, with the input
//! already in memory, as the median of [`SolverOptions::runs`].

use std::time::Instant;

use apportion::core::solver::scenario::{
    remove_members, settle, stats, RollingRestart, Shape, Stats,
};
use apportion::core::solver::{solve, Item, Member, Problem, Solution};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::procfs;

/// What to run: one instance, one scenario or all of them, and how many solves each.
#[derive(Clone, Copy, Debug)]
pub struct SolverOptions {
    /// The synthetic cluster to solve.
    pub instance: Instance,
    /// One scenario; `None` runs every one ([`Scenario::ALL`]), except rolling-deploy and
    /// rolling-restart on instance C (1,000 and 2,000 solves of a million items), which run
    /// only when named.
    pub scenario: Option<Scenario>,
    /// Solves per scenario; the median time is reported (at least one runs).
    pub runs: usize,
}

/// The synthetic clusters, named as the README's figures name them, so that a line can be
/// compared with them.
///
/// With the `clap` feature, the names are the command line's values; each variant's
/// `value(help = None)` keeps its doc out of the command's help, which lists the names on
/// one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Instance {
    /// 10,000 items on 100 members.
    #[cfg_attr(feature = "clap", value(help = None::<&str>))]
    A,
    /// 100,000 items on 1,000 members.
    #[cfg_attr(feature = "clap", value(help = None::<&str>))]
    B,
    /// 1,000,000 items on 1,000 members.
    #[cfg_attr(feature = "clap", value(help = None::<&str>))]
    C,
    /// 100,000 items on 10 members: the converge benchmark's shape, many items per
    /// member, where a cost per member's holdings shows (the primary balancing was once
    /// quadratic in it and no other instance showed it).
    #[cfg_attr(feature = "clap", value(help = None::<&str>))]
    D,
}

impl Instance {
    /// The instance's size: three zones, three replicas, and member limits with room for a
    /// third more copies than the items need.
    fn shape(self) -> Shape {
        let (items, members, item_limit) = match self {
            Instance::A => (10_000, 100, 400),
            Instance::B => (100_000, 1_000, 400),
            Instance::C => (1_000_000, 1_000, 4_000),
            Instance::D => (100_000, 10, 40_000),
        };
        Shape {
            items,
            members,
            zones: 3,
            item_limit,
            replication: 3,
        }
    }
}

/// One change to the settled cluster (or none), as a running service sees them. Named on
/// the command line as [`Instance`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Solve the empty cluster: a first start.
    #[cfg_attr(feature = "clap", value(help = None::<&str>))]
    Scratch,
    /// Solve the settled cluster again: what a round with nothing to do costs.
    #[cfg_attr(feature = "clap", value(help = None::<&str>))]
    Unchanged,
    /// One member gone (its lease ended).
    #[cfg_attr(feature = "clap", value(help = None::<&str>))]
    MemberLoss,
    /// One member draining.
    #[cfg_attr(feature = "clap", value(help = None::<&str>))]
    MemberExit,
    /// One new, empty member.
    #[cfg_attr(feature = "clap", value(help = None::<&str>))]
    MemberAdd,
    /// One new item.
    #[cfg_attr(feature = "clap", value(help = None::<&str>))]
    ItemAdd,
    /// A whole zone gone.
    #[cfg_attr(feature = "clap", value(help = None::<&str>))]
    ZoneLoss,
    /// Two thirds of one zone gone: too little room left there for every item to keep a
    /// replica in it.
    #[cfg_attr(feature = "clap", value(help = None::<&str>))]
    ZoneShrink,
    /// Every member replaced once, one after another, as a deploy does.
    #[cfg_attr(feature = "clap", value(help = None::<&str>))]
    RollingDeploy,
    /// Every member restarted once, one after another, in restart mode: its replicas wait
    /// for it and come back to it ([`RollingRestart`]), so no replica should move.
    #[cfg_attr(feature = "clap", value(help = None::<&str>))]
    RollingRestart,
}

impl Scenario {
    /// Every scenario, in the order a run without `scenario` goes through them.
    pub const ALL: [Scenario; 10] = [
        Scenario::Scratch,
        Scenario::Unchanged,
        Scenario::MemberLoss,
        Scenario::MemberExit,
        Scenario::MemberAdd,
        Scenario::ItemAdd,
        Scenario::ZoneLoss,
        Scenario::ZoneShrink,
        Scenario::RollingDeploy,
        Scenario::RollingRestart,
    ];

    /// Whether this scenario solves once per member (or twice), too many solves of a
    /// million items to run on instance C unless named.
    fn rolls(self) -> bool {
        matches!(self, Scenario::RollingDeploy | Scenario::RollingRestart)
    }
}

/// The figures of one scenario: its size, the solve's time, and the solution's stats.
#[derive(Debug, Serialize)]
pub struct Line {
    /// The instance solved.
    pub instance: Instance,
    /// The change solved for.
    pub scenario: Scenario,
    /// Items in the solved problem.
    pub items: usize,
    /// Members in the solved problem.
    pub members: usize,
    /// Zones of the instance.
    pub zones: u32,
    /// Replicas per item.
    pub replication: u32,
    /// The median solve time in milliseconds (rolling-deploy and rolling-restart: the
    /// slowest of their solves).
    pub solve_ms: f64,
    /// The solution's figures (rolling-deploy and rolling-restart: adds, removes and
    /// primary moves summed over every solve, steps the most of any, the rest of the last
    /// solve). The line has them as fields of its own, beside the others.
    #[serde(flatten, serialize_with = "stats_fields")]
    pub stats: Stats,
    /// A rolling restart's own figures (only that scenario's line has them), as fields of
    /// the line.
    #[serde(flatten)]
    pub restart: Option<Restarts>,
    /// This process's peak resident memory so far, in MiB.
    pub peak_rss_mb: f64,
}

/// What a rolling restart moved, by the measure of [`RollingRestart`]: whether the
/// members' replicas waited for them, which the summed adds of the line cannot tell.
#[derive(Debug, Serialize)]
pub struct Restarts {
    /// Copies added on a member that held that item neither at the start nor when it left:
    /// the replicas that moved (the aim is none).
    pub replica_moves: u64,
    /// Copies added back on a member that held them at the start or when it left.
    pub returned: u64,
    /// The solves timed: two per member (restarting, then back).
    pub solves: usize,
    /// The median of their times in milliseconds (the line's `solve_ms` is the slowest).
    pub solve_ms_median: f64,
}

/// One scenario measured: the solve time, the stats, the problem solved (for its size),
/// and a rolling restart's own figures.
struct Measured {
    solve_ms: f64,
    stats: Stats,
    problem: Problem,
    restart: Option<Restarts>,
}

/// Writes a solution's stats as fields of the line, named as [`Stats`] names them, so that
/// a script reads every figure at the top level of the line.
fn stats_fields<S: Serializer>(stats: &Stats, serializer: S) -> Result<S::Ok, S::Error> {
    let mut fields = serializer.serialize_map(Some(11))?;
    fields.serialize_entry("adds", &stats.adds)?;
    fields.serialize_entry("removes", &stats.removes)?;
    fields.serialize_entry("unfilled_slots", &stats.unfilled_slots)?;
    fields.serialize_entry("min_load", &stats.min_load)?;
    fields.serialize_entry("max_load", &stats.max_load)?;
    fields.serialize_entry("fair_share", &stats.fair_share)?;
    fields.serialize_entry("min_zones_per_item", &stats.min_zones_per_item)?;
    fields.serialize_entry("primaries_min", &stats.primaries_min)?;
    fields.serialize_entry("primaries_max", &stats.primaries_max)?;
    fields.serialize_entry("primary_moves", &stats.primary_moves)?;
    fields.serialize_entry("steps", &stats.steps)?;
    fields.end()
}

/// Runs the benchmark: solves the instance's settled state first (unless only scratch is
/// asked for), then yields one line per scenario as each is measured, so that a slow
/// instance shows its lines as they come. Fails when a solve fails.
pub fn run(options: &SolverOptions) -> Result<impl Iterator<Item = Result<Line, String>>, String> {
    let SolverOptions {
        instance,
        scenario,
        runs,
    } = *options;
    let shape = instance.shape();
    let scenarios: Vec<Scenario> = match scenario {
        Some(s) => vec![s],
        None => Scenario::ALL
            .into_iter()
            .filter(|&s| !(instance == Instance::C && s.rolls()))
            .collect(),
    };
    let empty = shape.empty();
    let mut settled = empty.clone();
    if scenarios.iter().any(|&s| s != Scenario::Scratch) {
        let sol = solve(&empty).map_err(|e| e.to_string())?;
        settle(&mut settled, &sol);
    }
    Ok(scenarios.into_iter().map(move |scenario| {
        let measured = match scenario {
            Scenario::Scratch => timed(&empty, runs)?,
            Scenario::RollingDeploy => rolling(&settled, shape)?,
            Scenario::RollingRestart => restarting(&settled)?,
            _ => timed(&changed(&settled, shape, scenario), runs)?,
        };
        Ok(Line {
            instance,
            scenario,
            items: measured.problem.items.len(),
            members: measured.problem.members.len(),
            zones: shape.zones,
            replication: shape.replication,
            solve_ms: measured.solve_ms,
            stats: measured.stats,
            restart: measured.restart,
            peak_rss_mb: procfs::peak_rss_mb(procfs::Pid::This),
        })
    }))
}

/// The settled problem after one change.
fn changed(settled: &Problem, shape: Shape, scenario: Scenario) -> Problem {
    let mut p = settled.clone();
    match scenario {
        Scenario::MemberLoss => remove_members(&mut p, |m, _| m == 0),
        Scenario::MemberExit => p.members[0].exiting = true,
        Scenario::MemberAdd => p.members.push(Member {
            zone: 0,
            item_limit: shape.item_limit,
            exiting: false,
        }),
        Scenario::ItemAdd => p.items.push(Item {
            replication: shape.replication,
        }),
        Scenario::ZoneLoss => remove_members(&mut p, |_, m| m.zone == 2),
        // Two thirds of one zone gone: room is left, but too little in that zone for
        // every item to keep a replica there, so many items must give way to two zones.
        Scenario::ZoneShrink => remove_members(&mut p, |i, m| m.zone == 2 && i % 9 != 2),
        Scenario::Scratch
        | Scenario::Unchanged
        | Scenario::RollingDeploy
        | Scenario::RollingRestart => {}
    }
    p
}

/// Median solve time over `runs`, and the stats of the solution.
fn timed(p: &Problem, runs: usize) -> Result<Measured, String> {
    let mut times = Vec::new();
    let mut last: Option<Solution> = None;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let sol = solve(p).map_err(|e| e.to_string())?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        drop(last.replace(sol));
    }
    times.sort_by(f64::total_cmp);
    let sol = last.expect("at least one run");
    Ok(Measured {
        solve_ms: times[times.len() / 2],
        stats: stats(p, &sol),
        problem: p.clone(),
        restart: None,
    })
}

/// Replaces every member once: a new member joins the old one's zone while the old one
/// exits, the plan is applied, and the old one leaves. Reports total moves (replicas and
/// primaries), the worst solve time and steps, and the stats of the last solve.
fn rolling(settled: &Problem, shape: Shape) -> Result<Measured, String> {
    let mut p = settled.clone();
    let (mut adds, mut removes, mut primary_moves, mut steps, mut worst) = (0, 0, 0, 0, 0.0f64);
    let mut last = None;
    for _ in 0..shape.members {
        let zone = p.members[0].zone;
        p.members.push(Member {
            zone,
            item_limit: shape.item_limit,
            exiting: false,
        });
        p.members[0].exiting = true;
        let start = Instant::now();
        let sol = solve(&p).map_err(|e| e.to_string())?;
        worst = worst.max(start.elapsed().as_secs_f64() * 1000.0);
        let st = stats(&p, &sol);
        adds += st.adds;
        removes += st.removes;
        primary_moves += st.primary_moves;
        steps = steps.max(st.steps);
        settle(&mut p, &sol);
        remove_members(&mut p, |m, _| m == 0);
        last = Some(st);
    }
    let mut st = last.ok_or("the instance has no members")?;
    st.adds = adds;
    st.removes = removes;
    st.primary_moves = primary_moves;
    st.steps = steps;
    Ok(Measured {
        solve_ms: worst,
        stats: st,
        problem: p,
        restart: None,
    })
}

/// Restarts every member once in restart mode ([`RollingRestart::turn`]: it restarts, is
/// solved for, leaves and comes back, and is solved for again). Reports the slowest and
/// the median solve, the replicas that moved and those returned, adds, removes and primary
/// moves summed, the most steps, and the stats of the last solve.
fn restarting(settled: &Problem) -> Result<Measured, String> {
    let mut p = settled.clone();
    let mut restart = RollingRestart::begin(&p);
    let (mut times, mut steps, mut last) = (Vec::new(), 0, None);
    for member in 0..p.members.len() as u32 {
        restart.turn(&mut p, member, |solving| {
            let start = Instant::now();
            let sol = solve(solving).map_err(|e| e.to_string())?;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            let st = stats(solving, &sol);
            steps = st.steps.max(steps);
            last = Some(st);
            Ok::<_, String>(sol)
        })?;
    }
    let mut st = last.ok_or("the instance has no members")?;
    st.adds = restart.replica_moves + restart.returned;
    st.removes = restart.removes;
    st.primary_moves = restart.primary_moves;
    st.steps = steps;
    times.sort_by(f64::total_cmp);
    Ok(Measured {
        solve_ms: times.last().copied().unwrap_or(0.0),
        stats: st,
        problem: p,
        restart: Some(Restarts {
            replica_moves: restart.replica_moves,
            returned: restart.returned,
            solves: times.len(),
            solve_ms_median: times[times.len() / 2],
        }),
    })
}
