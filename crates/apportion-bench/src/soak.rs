//! The plan soak (`apportion bench plan-soak`): the solver on many small random instances,
//! each a problem and a few changes applied to the solver's own answers (`solver::soak`),
//! every solve checked against the exact references (`solver::check`). The result is one
//! [`Line`]: the failures by kind, the first failure and the slowest solve, each with the
//! seed that replays it (one instance from that seed).
//!
//! A solve runs under a step budget as well as a time limit: the budget makes a solver
//! that would cycle return an error, so one bad instance cannot hang the run.

use std::time::Instant;

use apportion::core::solver::check::{check, Kind};
use apportion::core::solver::soak::Soak;
use apportion::core::solver::{solve_within, ProblemError};
use serde::Serialize;

/// How many instances to solve, from which seed, and the limits of one solve.
#[derive(Clone, Copy, Debug)]
pub struct SoakOptions {
    /// How many random instances to solve.
    pub instances: u64,
    /// Seed of the first instance; instance `i` has seed `seed + i`.
    pub seed: u64,
    /// Time limit of one solve, in milliseconds; a slower solve counts as a timeout.
    pub time_limit_ms: u64,
    /// Step budget of one solve; a solve over it counts as a timeout.
    pub steps: u64,
}

/// Failed instances by what failed first, so that a run shows at a glance which rule
/// broke.
#[derive(Debug, Default, Serialize)]
pub struct Failures {
    /// Solves over the time limit or the step budget.
    pub timeout: u64,
    /// Solves that returned an error.
    pub error: u64,
    /// Solutions that broke a hard constraint: a member over its limit, an item twice on
    /// a member, too many replicas.
    pub constraint: u64,
    /// Solutions that placed fewer replicas than the most possible.
    pub fill: u64,
    /// Solutions missing spread over zones that every item could have had at once.
    pub spread: u64,
    /// Solutions that moved copies another assignment as good would have kept.
    pub moves: u64,
    /// Solutions with a member outside its band although a balanced assignment exists.
    pub balance: u64,
    /// Solutions with primaries unbalanced although the replicas allow a balance.
    pub primaries: u64,
}

impl Failures {
    /// Counts one failed instance under `kind`.
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
#[derive(Debug, Serialize)]
pub struct Failure {
    /// The instance's seed.
    pub seed: u64,
    /// Which solve of the instance: 0 the first, then one per change.
    pub solve: u32,
    /// What failed: a field name of [`Failures`].
    pub kind: &'static str,
    /// What exactly, in words.
    pub detail: String,
}

/// The slowest solve, with what replays it.
#[derive(Debug, Default, Serialize)]
pub struct Slowest {
    /// The instance's seed.
    pub seed: u64,
    /// Which solve of the instance.
    pub solve: u32,
    /// How long it took, in milliseconds.
    pub solve_ms: f64,
    /// The solver's steps in it.
    pub steps: u64,
}

/// The soak's result.
#[derive(Debug, Serialize)]
pub struct Line {
    /// Instances solved.
    pub instances: u64,
    /// Solves over every instance (each instance solves once, then once per change).
    pub solves: u64,
    /// The first instance's seed.
    pub seed: u64,
    /// Instances that failed; the run passes only with none.
    pub failed_instances: u64,
    /// The failed instances by what failed first.
    pub failures: Failures,
    /// The first failure, if any.
    pub first_failure: Option<Failure>,
    /// The slowest solve.
    pub slowest: Slowest,
    /// The most steps any solve took, to size step budgets against.
    pub most_steps: u64,
    /// How long the whole soak took, in seconds.
    pub wall_s: f64,
}

/// The name a failure of the exact checks goes by, in [`Failures`] and [`Failure::kind`].
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

/// Solves and checks every instance; the line says what failed, if anything did.
pub fn run(options: &SoakOptions) -> Line {
    let start = Instant::now();
    let mut line = Line {
        instances: options.instances,
        solves: 0,
        seed: options.seed,
        failed_instances: 0,
        failures: Failures::default(),
        first_failure: None,
        slowest: Slowest::default(),
        most_steps: 0,
        wall_s: 0.0,
    };
    for i in 0..options.instances {
        let seed = options.seed.wrapping_add(i);
        if let Some(failure) = instance(options, seed, &mut line) {
            line.failed_instances += 1;
            line.failures.count(failure.kind);
            line.first_failure.get_or_insert(failure);
        }
    }
    line.wall_s = start.elapsed().as_secs_f64();
    line
}

/// Solves and checks every problem of one instance; its first failure, if any.
fn instance(options: &SoakOptions, seed: u64, line: &mut Line) -> Option<Failure> {
    let mut soak = Soak::new(seed);
    for solve in 0.. {
        let p = soak.problem();
        let start = Instant::now();
        let result = solve_within(p, options.steps);
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
        if ms > options.time_limit_ms as f64 {
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
