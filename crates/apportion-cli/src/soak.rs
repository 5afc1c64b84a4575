//! `apportion bench plan-soak`: the solver on many small random instances, each a problem
//! and a few changes applied to the solver's own answers (`solver::soak`), every solve
//! checked against the exact references (`solver::check`). Prints one JSON line: the
//! failures by kind, the first failure and the slowest solve, each with the seed that
//! replays it (`--instances 1 --seed S`).
//!
//! A solve runs under a step budget as well as a time limit: the budget makes a solver
//! that would cycle return an error, so one bad instance cannot hang the run.

use std::time::Instant;

use apportion::core::solver::check::{check, Kind};
use apportion::core::solver::soak::Soak;
use apportion::core::solver::{solve_within, ProblemError};
use serde::Serialize;

/// Arguments of `apportion bench plan-soak`.
#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    /// How many random instances to solve.
    #[arg(long, default_value_t = 1000)]
    instances: u64,
    /// Seed of the first instance; instance `i` has seed `seed + i`.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Time limit of one solve, in milliseconds; a slower solve counts as a timeout.
    #[arg(long, default_value_t = 1000)]
    time_limit_ms: u64,
    /// Step budget of one solve; a solve over it counts as a timeout.
    #[arg(long, default_value_t = 5_000_000)]
    steps: u64,
}

/// Failed instances by what failed first.
#[derive(Default, Serialize)]
struct Failures {
    timeout: u64,
    error: u64,
    constraint: u64,
    fill: u64,
    spread: u64,
    moves: u64,
    balance: u64,
    primaries: u64,
}

impl Failures {
    fn count(&mut self, kind: &str) {
        let n = match kind {
            "timeout" => &mut self.timeout,
            "error" => &mut self.error,
            "constraint" => &mut self.constraint,
            "fill" => &mut self.fill,
            "spread" => &mut self.spread,
            "moves" => &mut self.moves,
            "balance" => &mut self.balance,
            _ => &mut self.primaries,
        };
        *n += 1;
    }
}

/// One failure, with what replays it.
#[derive(Serialize)]
struct Failure {
    seed: u64,
    /// Which solve of the instance: 0 the first, then one per change.
    solve: u32,
    kind: &'static str,
    detail: String,
}

/// The slowest solve.
#[derive(Default, Serialize)]
struct Slowest {
    seed: u64,
    solve: u32,
    solve_ms: f64,
    steps: u64,
}

/// The output line.
#[derive(Serialize)]
struct Line {
    instances: u64,
    solves: u64,
    seed: u64,
    failed_instances: u64,
    failures: Failures,
    first_failure: Option<Failure>,
    slowest: Slowest,
    most_steps: u64,
    wall_s: f64,
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Constraint => "constraint",
        Kind::Fill => "fill",
        Kind::Spread => "spread",
        Kind::Moves => "moves",
        Kind::Balance => "balance",
        Kind::Primaries => "primaries",
    }
}

/// Runs the soak and prints its line; fails when any instance failed.
pub fn run(args: &SoakArgs) -> Result<(), String> {
    let start = Instant::now();
    let mut line = Line {
        instances: args.instances,
        solves: 0,
        seed: args.seed,
        failed_instances: 0,
        failures: Failures::default(),
        first_failure: None,
        slowest: Slowest::default(),
        most_steps: 0,
        wall_s: 0.0,
    };
    for i in 0..args.instances {
        let seed = args.seed.wrapping_add(i);
        if let Some(failure) = instance(args, seed, &mut line) {
            line.failed_instances += 1;
            line.failures.count(failure.kind);
            line.first_failure.get_or_insert(failure);
        }
    }
    line.wall_s = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::to_string(&line).map_err(|e| e.to_string())?
    );
    match line.failed_instances {
        0 => Ok(()),
        n => Err(format!("{n} of {} instances failed", args.instances)),
    }
}

/// Solves and checks every problem of one instance; its first failure, if any.
fn instance(args: &SoakArgs, seed: u64, line: &mut Line) -> Option<Failure> {
    let mut soak = Soak::new(seed);
    for solve in 0.. {
        let p = soak.problem();
        let start = Instant::now();
        let result = solve_within(p, args.steps);
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        line.solves += 1;
        let failure = |kind, detail| {
            Some(Failure {
                seed,
                solve,
                kind,
                detail,
            })
        };
        let sol = match result {
            Ok(sol) => sol,
            Err(e @ ProblemError::OverBudget { .. }) => return failure("timeout", e.to_string()),
            Err(e) => return failure("error", e.to_string()),
        };
        if ms > line.slowest.solve_ms {
            line.slowest = Slowest {
                seed,
                solve,
                solve_ms: ms,
                steps: sol.steps,
            };
        }
        line.most_steps = line.most_steps.max(sol.steps);
        if ms > args.time_limit_ms as f64 {
            return failure("timeout", format!("{ms:.1} ms"));
        }
        if let Err(f) = check(p, &sol) {
            return failure(kind_name(f.kind), f.detail);
        }
        if !soak.advance(&sol) {
            return None;
        }
    }
    None
}
