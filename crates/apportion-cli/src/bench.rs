//! `apportion bench solver`: times the solver on synthetic clusters and the changes a
//! running service sees, printing one JSON line per scenario.
//!
//! Every scenario starts from the instance's settled solution (solved from empty, then
//! applied as the current assignment); `solve_ms` times only the solve, with the input
//! already in memory, as the median of `--runs`.

use std::time::Instant;

use apportion::core::solver::scenario::{remove_members, settle, stats, Shape, Stats};
use apportion::core::solver::{solve, Item, Member, Problem, Solution};
use clap::{Subcommand, ValueEnum};
use serde::Serialize;

use crate::converge::procfs;

/// Arguments of `apportion bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

/// What to benchmark.
#[derive(Subcommand, Debug)]
enum BenchWhat {
    /// The solver on instance A, B or C.
    Solver(SolverArgs),
    /// The whole runtime: members converging on etcd (or the embedded store).
    Converge(crate::converge::ConvergeArgs),
    /// The solver on many small random instances, every solve checked exactly.
    PlanSoak(crate::soak::SoakArgs),
}

#[derive(clap::Args, Debug)]
struct SolverArgs {
    /// A: 10,000 items on 100 members; B: 100,000 on 1,000; C: 1,000,000 on 1,000.
    #[arg(long, ignore_case = true)]
    instance: Instance,
    /// One scenario; all by default (C leaves out rolling-deploy, 1,000 solves, unless named).
    #[arg(long)]
    scenario: Option<Scenario>,
    /// Solves per scenario; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

#[derive(Clone, Copy, Debug, ValueEnum, Serialize)]
enum Instance {
    A,
    B,
    C,
}

impl Instance {
    fn shape(self) -> Shape {
        let (items, members, item_limit) = match self {
            Instance::A => (10_000, 100, 400),
            Instance::B => (100_000, 1_000, 400),
            Instance::C => (1_000_000, 1_000, 4_000),
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Scenario {
    Scratch,
    Unchanged,
    MemberLoss,
    MemberExit,
    MemberAdd,
    ItemAdd,
    ZoneLoss,
    ZoneShrink,
    RollingDeploy,
}

/// One output line.
#[derive(Serialize)]
struct Line {
    instance: Instance,
    scenario: Scenario,
    items: usize,
    members: usize,
    zones: u32,
    replication: u32,
    solve_ms: f64,
    adds: u64,
    removes: u64,
    unfilled_slots: u64,
    min_load: u32,
    max_load: u32,
    fair_share: f64,
    min_zones_per_item: u32,
    primaries_min: u32,
    primaries_max: u32,
    primary_moves: u64,
    steps: u64,
    peak_rss_mb: f64,
}

/// Runs the chosen benchmark and prints its lines.
pub async fn run(args: &BenchArgs) -> Result<(), String> {
    match &args.what {
        BenchWhat::Solver(args) => solver(args),
        BenchWhat::Converge(args) => crate::converge::run(args).await,
        BenchWhat::PlanSoak(args) => crate::soak::run(args),
    }
}

/// Runs the solver benchmark.
fn solver(args: &SolverArgs) -> Result<(), String> {
    let shape = args.instance.shape();
    let scenarios: Vec<Scenario> = match args.scenario {
        Some(s) => vec![s],
        None => Scenario::value_variants()
            .iter()
            .copied()
            .filter(|&s| !matches!((args.instance, s), (Instance::C, Scenario::RollingDeploy)))
            .collect(),
    };
    let empty = shape.empty();
    let mut settled = empty.clone();
    if scenarios.iter().any(|&s| s != Scenario::Scratch) {
        let sol = solve(&empty).map_err(|e| e.to_string())?;
        settle(&mut settled, &sol);
    }
    for scenario in scenarios {
        let (ms, st, p) = match scenario {
            Scenario::Scratch => timed(&empty, args.runs)?,
            Scenario::RollingDeploy => rolling(&settled, shape)?,
            _ => timed(&changed(&settled, shape, scenario), args.runs)?,
        };
        let line = Line {
            instance: args.instance,
            scenario,
            items: p.items.len(),
            members: p.members.len(),
            zones: shape.zones,
            replication: shape.replication,
            solve_ms: ms,
            adds: st.adds,
            removes: st.removes,
            unfilled_slots: st.unfilled_slots,
            min_load: st.min_load,
            max_load: st.max_load,
            fair_share: st.fair_share,
            min_zones_per_item: st.min_zones_per_item,
            primaries_min: st.primaries_min,
            primaries_max: st.primaries_max,
            primary_moves: st.primary_moves,
            steps: st.steps,
            peak_rss_mb: procfs::peak_rss_mb(procfs::Pid::This),
        };
        println!(
            "{}",
            serde_json::to_string(&line).map_err(|e| e.to_string())?
        );
    }
    Ok(())
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
        Scenario::Scratch | Scenario::Unchanged | Scenario::RollingDeploy => {}
    }
    p
}

/// Median solve time over `runs`, and the stats of the solution.
fn timed(p: &Problem, runs: usize) -> Result<(f64, Stats, Problem), String> {
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
    Ok((times[times.len() / 2], stats(p, &sol), p.clone()))
}

/// Replaces every member once: a new member joins the old one's zone while the old one
/// exits, the plan is applied, and the old one leaves. Reports total moves (replicas and
/// primaries), the worst solve time and steps, and the stats of the last solve.
fn rolling(settled: &Problem, shape: Shape) -> Result<(f64, Stats, Problem), String> {
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
    Ok((worst, st, p))
}
