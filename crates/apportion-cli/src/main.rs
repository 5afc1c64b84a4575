//! The `apportion` command-line tool.
//!
//! `demo` tells the library's story on a simulated cluster in this process; `member` runs
//! one member of a real cluster on etcd. Every failure ends in one line on stderr and a
//! non-zero exit code: 2 for a wrong command line, 1 for a command that could not be
//! carried out (or, for `demo`, a broken invariant).

mod demo;
mod member_cmd;
mod reach;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Assigns items to the members of a service, coordinated through etcd.
#[derive(Parser)]
#[command(name = "apportion", version, about, arg_required_else_help = true)]
struct Cli {
    // The chosen subcommand (a doc comment here would become clap help text).
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
enum Command {
    /// Run a simulated cluster in this process and watch it allocate, lose members and a
    /// zone, restart, drain and grow, checking the invariants after every phase.
    Demo(demo::DemoArgs),
    /// Join a cluster on etcd as a member: print its events, optionally run a command for
    /// every item it holds; SIGTERM or SIGINT drains it.
    Member(member_cmd::MemberArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("apportion: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Member(args) => member_cmd::run(args).await,
        }
    })
}
