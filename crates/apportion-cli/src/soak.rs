//! `apportion bench plan-soak`: the command line of the plan soak (`apportion_bench::soak`),
//! its one JSON line, and its verdict as the exit code: the first failure and the slowest
//! solve come with the seed that replays them (`--instances 1 --seed S`).

use apportion_bench::soak::{self, SoakOptions};

use crate::bench::print_line;
use crate::error::{CliError, Result};

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

/// Runs the soak and prints its line; fails (exit 2) when any instance failed.
pub fn run(args: &SoakArgs) -> Result<()> {
    let line = soak::run(&SoakOptions {
        instances: args.instances,
        seed: args.seed,
        time_limit_ms: args.time_limit_ms,
        steps: args.steps,
    });
    print_line(&line)?;
    match line.failed_instances {
        0 => Ok(()),
        n => Err(CliError::Input(format!(
            "{n} of {} instances failed",
            args.instances
        ))),
    }
}
