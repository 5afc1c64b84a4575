//! The `apportion` command-line tool.

use clap::Parser;

/// Assigns items to the members of a service, coordinated through etcd.
#[derive(Parser)]
#[command(name = "apportion", version, about)]
struct Cli {}

fn main() {
    Cli::parse();
}
