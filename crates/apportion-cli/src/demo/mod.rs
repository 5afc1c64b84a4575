//! `apportion demo`: a simulated cluster in this process that tells the library's story in
//! phases (initial allocation, a crash, a zone down and back, a rolling restart, a drain,
//! members joining), printing after each a table of the allocation and a check of the
//! invariants. It runs on the embedded store by default, or on a real etcd with `--etcd`,
//! in real time with short leases, so the whole story takes seconds.

mod check;
mod cluster;
mod error;
mod ledger;
mod plan;
mod progress;
mod report;
mod story;

use std::process::ExitCode;
use std::time::Instant;

use apportion::store::MemoryStore;

use crate::connect::{reach, Patience, Security};
use error::DemoError;
use plan::{Plan, Size};
use story::{Outcome, Story};

/// The prefix the demo works under on the embedded store.
const MEMORY_PREFIX: &str = "/apportion-demo";

/// The command line of `apportion demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Seeds the story's choices: which items are exclusive, who crashes, which zone fails,
    /// who drains.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Members at the start (two more join at the end).
    #[arg(long, default_value_t = 9)]
    members: u32,
    /// Items to place; one in ten is exclusive, the others want 3 replicas.
    #[arg(long, default_value_t = 300)]
    items: u32,
    /// Failure zones the members are spread over (2 to 26).
    #[arg(long, default_value_t = 3)]
    zones: u32,
    /// Run on this etcd instead of the embedded store (repeat the flag or separate URLs
    /// with commas for several). The demo works under a fresh prefix and removes it at the
    /// end.
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    etcd: Vec<String>,
    #[command(flatten)]
    security: Security,
    /// The members' lease TTL in seconds: how long a crashed member keeps its items.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i64).range(1..=60))]
    lease_ttl: i64,
}

/// Runs the demo; exit 0 only if every invariant held in every phase.
pub async fn run(args: DemoArgs) -> ExitCode {
    let size = Size {
        seed: args.seed,
        members: args.members,
        items: args.items,
        zones: args.zones,
    };
    if let Err(e) = size.check() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let options = match args.security.options(&args.etcd) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let plan = Plan::draw(size);
    let started = Instant::now();
    let told = if args.etcd.is_empty() {
        println!("{}", banner(&plan, &args, "the embedded store"));
        Story::tell(MemoryStore::new(), MEMORY_PREFIX, args.lease_ttl, plan).await
    } else {
        match reach(&args.etcd, &options, Patience::Brief).await {
            Ok(store) => {
                let prefix = format!("/apportion-demo-{:08x}", fastrand::u32(..));
                let place = format!("etcd at {} under {prefix}", args.etcd.join(","));
                println!("{}", banner(&plan, &args, &place));
                Story::tell(store, &prefix, args.lease_ttl, plan).await
            }
            Err(e) => Err(DemoError::Unreachable(e)),
        }
    };
    let secs = started.elapsed().as_secs_f64();
    match told {
        Ok(Outcome { phases, broken: 0 }) => {
            println!("\ndemo: {phases} phases in {secs:.1} s, every invariant held");
            ExitCode::SUCCESS
        }
        Ok(Outcome { phases, broken }) => {
            println!("\ndemo: {phases} phases in {secs:.1} s, invariants broken in {broken}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The opening line: the cast and where the story runs.
fn banner(plan: &Plan, args: &DemoArgs, place: &str) -> String {
    format!(
        "apportion demo: {} members in {} zones, {} items, seed {}, on {place} \
         (lease TTL {} s)",
        plan.members.len(),
        args.zones,
        plan.items.len(),
        args.seed,
        args.lease_ttl
    )
}
