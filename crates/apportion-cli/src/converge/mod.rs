//! `apportion bench converge`: the command line of the converge benchmark
//! (`apportion_bench::converge`, which starts the members and measures settle, refill, idle
//! writes and the store's floor) and its one JSON line.
//!
//! The flags choose the deployment: `--memory` runs the members in this process on the
//! embedded store, `--etcd` alone in this process on etcd, `--processes` as `apportion
//! member` processes on etcd, which this program starts as children of its own
//! ([`launch`]).

mod launch;

use std::time::Duration;

use apportion_bench::converge::{self, ConvergeOptions, Deployment, Etcd};

use launch::Launcher;

use crate::bench::print_line;
use crate::error::{CliError, Result};

/// Arguments of `apportion bench converge`.
#[derive(clap::Args, Debug)]
pub struct ConvergeArgs {
    /// How many members to run.
    #[arg(long, default_value_t = 10)]
    members: usize,
    /// How many items to place.
    #[arg(long, default_value_t = 2000)]
    items: usize,
    /// Replicas per item.
    #[arg(long, default_value_t = 3)]
    replication: u16,
    /// Zones the members are spread over (member i in zone i % zones).
    #[arg(long, default_value_t = 3)]
    zones: usize,
    /// Lease TTL of the members, in seconds (the kill phase waits for it to expire).
    #[arg(long, default_value_t = 5)]
    lease_ttl: i64,
    /// Use the embedded store instead of etcd (one store shared by all members).
    #[arg(long)]
    memory: bool,
    /// Run each member as a separate `apportion member` process, as deployed (etcd only).
    #[arg(long)]
    processes: bool,
    /// etcd endpoint (ignored with --memory).
    #[arg(long, default_value = "http://127.0.0.1:2379")]
    etcd: String,
    #[command(flatten)]
    security: crate::connect::Security,
    /// Key prefix; everything under it is deleted first.
    #[arg(long, default_value = "/apportion-bench")]
    prefix: String,
    /// How long to watch the settled cluster for writes it should not make, in seconds.
    #[arg(long, default_value_t = 5)]
    idle_secs: u64,
}

impl ConvergeArgs {
    /// The run's size, as the engine takes it. A negative lease TTL is zero, which the
    /// members refuse.
    fn options(&self) -> ConvergeOptions {
        ConvergeOptions {
            members: self.members,
            items: self.items,
            replication: self.replication,
            zones: self.zones,
            lease_ttl: Duration::from_secs(u64::try_from(self.lease_ttl).unwrap_or(0)),
            prefix: self.prefix.clone(),
            idle: Duration::from_secs(self.idle_secs),
        }
    }

    /// The etcd the benchmark and its members use, with the TLS and user files read.
    fn etcd(&self) -> std::result::Result<Etcd, String> {
        Ok(Etcd {
            endpoint: self.etcd.clone(),
            options: self.security.options(std::slice::from_ref(&self.etcd))?,
        })
    }
}

/// Runs the benchmark on the deployment the flags choose and prints its line. Whatever
/// stops it is an input error (exit 2), as it has always been for the benchmarks.
pub async fn run(args: &ConvergeArgs) -> Result<()> {
    if args.processes && args.memory {
        return Err(CliError::Input("--processes runs `apportion member` processes on etcd; it cannot be used with --memory".into()));
    }
    let deployment = if args.memory {
        Deployment::Memory
    } else {
        let etcd = args.etcd().map_err(CliError::Input)?;
        if args.processes {
            let launcher = Launcher::new(&args.etcd, &args.security).map_err(CliError::Input)?;
            Deployment::Processes(
                etcd,
                Box::new(move |member| Box::pin(launcher.start(member))),
            )
        } else {
            Deployment::Etcd(etcd)
        }
    };
    let line = converge::run(&args.options(), deployment).await;
    print_line(&line.map_err(CliError::Input)?)
}
