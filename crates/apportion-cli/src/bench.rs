//! `apportion bench`: the command lines of the benchmarks, which run in `apportion_bench`;
//! here they are parsed, handed to the engines, and each result is printed as one JSON
//! line, so that runs can be compared across commits by a script.

use apportion_bench::solver::{self, Instance, Scenario, SolverOptions};
use clap::Subcommand;
use serde::Serialize;

use crate::error::{CliError, Result};
use crate::output::write_json_line;

/// Arguments of `apportion bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

/// What to benchmark.
#[derive(Subcommand, Debug)]
enum BenchWhat {
    /// The solver on instance A, B, C or D.
    Solver(SolverArgs),
    /// The whole runtime: members converging on etcd (or the embedded store).
    Converge(crate::converge::ConvergeArgs),
    /// The solver on many small random instances, every solve checked exactly.
    PlanSoak(crate::soak::SoakArgs),
}

/// Arguments of `apportion bench solver`.
#[derive(clap::Args, Debug)]
struct SolverArgs {
    /// A: 10,000 items on 100 members; B: 100,000 on 1,000; C: 1,000,000 on 1,000; D:
    /// 100,000 on 10.
    #[arg(long, ignore_case = true)]
    instance: Instance,
    /// One scenario; all by default (C leaves out rolling-deploy and rolling-restart, 1,000
    /// and 2,000 solves, unless named).
    #[arg(long)]
    scenario: Option<Scenario>,
    /// Solves per scenario; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// Runs the chosen benchmark and prints its lines. What the engines refuse or fail at is
/// an input error (exit 2), as it has always been for the offline commands.
pub async fn run(args: &BenchArgs) -> Result<()> {
    match &args.what {
        BenchWhat::Solver(args) => solver(args),
        BenchWhat::Converge(args) => crate::converge::run(args).await,
        BenchWhat::PlanSoak(args) => crate::soak::run(args),
    }
}

/// Runs the solver benchmark, printing each scenario's line as soon as it is measured.
fn solver(args: &SolverArgs) -> Result<()> {
    let options = SolverOptions {
        instance: args.instance,
        scenario: args.scenario,
        runs: args.runs,
    };
    for line in solver::run(&options).map_err(CliError::Input)? {
        print_line(&line.map_err(CliError::Input)?)?;
    }
    Ok(())
}

/// Prints a benchmark's result as one JSON line on stdout.
pub fn print_line(line: &impl Serialize) -> Result<()> {
    write_json_line(&mut std::io::stdout().lock(), line)
}
