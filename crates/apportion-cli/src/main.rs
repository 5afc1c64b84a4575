//! The `apportion` command-line tool.

use clap::{Parser, Subcommand};

/// Assigns items to the members of a service, coordinated through etcd.
#[derive(Parser)]
#[command(name = "apportion", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What the tool can do; each subcommand lives in its own module.
#[derive(Subcommand)]
enum Command {}

fn main() {
    let cli = Cli::parse();
    match cli.command {}
}
