//! The `apportion` command-line tool.
//!
//! The admin commands (`items`, `members`, `drain`, `status`) talk to the deployment's
//! etcd through the `Store` trait; `plan` and `bench` run the solver offline. Every failure
//! ends in one line on stderr and a non-zero exit code: 2 for a wrong command line or
//! input, 1 for a command that could not be carried out.

mod admin;
mod bench;
mod connect;
mod converge;
mod error;
mod output;
mod plan;
mod status;
mod summary;
mod view;

#[cfg(test)]
#[path = "../tests/support/cluster.rs"]
mod cluster;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

use admin::drain::DrainArgs;
use admin::items::ItemsCommand;
use admin::members::MembersCommand;
use error::{CliError, Result};
use status::StatusArgs;

/// Assigns items to the members of a service, coordinated through etcd.
#[derive(Parser)]
#[command(name = "apportion", version, arg_required_else_help = true)]
struct Cli {
    // The chosen subcommand (a doc comment here would become clap help text).
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
enum Command {
    /// Create, change, remove and list the items to place.
    #[command(subcommand)]
    Items(ItemsCommand),
    /// List the registered members.
    #[command(subcommand)]
    Members(MembersCommand),
    /// Mark a member exiting, so the leader moves its copies away.
    Drain(DrainArgs),
    /// Show the allocation: leader, zones, members, items needing attention.
    Status(StatusArgs),
    /// Solve a problem given as JSON offline and print the plan as JSON.
    Plan(plan::PlanArgs),
    /// Run a benchmark.
    Bench(bench::BenchArgs),
}

impl Command {
    /// Runs the chosen command.
    async fn run(self) -> Result<()> {
        match self {
            Command::Items(command) => command.run().await,
            Command::Members(command) => command.run().await,
            Command::Drain(args) => args.run().await,
            Command::Status(args) => args.run().await,
            Command::Plan(args) => plan::run(&args).map_err(CliError::Input),
            Command::Bench(args) => bench::run(&args).await.map_err(CliError::Input),
        }
    }
}

fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|e| exit_on_parse_error(e));
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the async runtime: {e}")))
        .and_then(|runtime| runtime.block_on(cli.command.run()));
    match result {
        Ok(()) | Err(CliError::OutputClosed) => {}
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(e.exit_code());
        }
    }
}

/// Reports a command line clap refused. A bad value (an id, a number, a URL) is reported
/// in clap's first line alone, which names the argument and the reason; other mistakes
/// keep clap's usage hint. Help and version requests print and exit 0.
fn exit_on_parse_error(e: clap::Error) -> ! {
    match e.kind() {
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let message = e.render().to_string();
            eprintln!(
                "{}",
                message.lines().next().unwrap_or("error: invalid value")
            );
            std::process::exit(2);
        }
        _ => e.exit(),
    }
}
