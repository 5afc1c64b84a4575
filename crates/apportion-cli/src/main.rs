//! The `apportion` command-line tool.

use clap::{Parser, Subcommand};

mod bench;
mod plan;

/// Assigns items to the members of a service, coordinated through etcd.
#[derive(Parser)]
#[command(name = "apportion", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What the tool can do; each subcommand lives in its own module.
#[derive(Subcommand)]
enum Command {
    /// Solve a problem given as JSON offline and print the plan as JSON.
    Plan(plan::PlanArgs),
    /// Run a benchmark.
    Bench(bench::BenchArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Plan(args) => plan::run(args),
        Command::Bench(args) => bench::run(args),
    };
    if let Err(message) = result {
        eprintln!("apportion: {message}");
        std::process::exit(2);
    }
}
