//! `apportion demo`: a simulated cluster in this process that tells the library's story in
//! phases (initial allocation, a crash, a zone down and back, a rolling restart draining
//! each member and one restarting each in place, a drain, members joining), printing after
//! each a table of the allocation, what it moved, and a check of the invariants, and the
//! two rolling restarts side by side. It runs on the embedded store by default, or on a real etcd with `--etcd`,
//! in real time with short leases, so the whole story takes seconds.
//!
//! The cluster, the script, the ledger and the invariants are the simulation's
//! ([`apportion_sim::story`]); this module reads the command line, connects to the store,
//! and prints: the banner, each phase's heading, a spinner while it settles, its tables and
//! verdict, and the final line.

mod narration;
mod progress;
mod report;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use apportion::store::{MemoryStore, Store};
use apportion_sim::story::{Phase, Script, Size, SizeError, Story, StoryError};

use crate::connect::{reach, Patience, Security};
use narration::narrate;
use progress::Progress;
use report::{Comparison, PhaseReport, RestartCost};

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
    let script = match Script::draw(size) {
        Ok(script) => script,
        Err(e) => {
            eprintln!("error: {}", refusal(e));
            return ExitCode::from(2);
        }
    };
    let options = match args.security.options(&args.etcd) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let told = if args.etcd.is_empty() {
        println!("{}", banner(&script, &args, "the embedded store"));
        tell(MemoryStore::new(), MEMORY_PREFIX, &args, script).await
    } else {
        match reach(&args.etcd, &options, Patience::Brief).await {
            Ok(store) => {
                let prefix = format!("/apportion-demo-{:08x}", fastrand::u32(..));
                let place = format!("etcd at {} under {prefix}", args.etcd.join(","));
                println!("{}", banner(&script, &args, &place));
                tell(store, &prefix, &args, script).await
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    let secs = started.elapsed().as_secs_f64();
    match told {
        Ok(Told { phases, broken: 0 }) => {
            println!("\ndemo: {phases} phases in {secs:.1} s, every invariant held");
            ExitCode::SUCCESS
        }
        Ok(Told { phases, broken }) => {
            println!("\ndemo: {phases} phases in {secs:.1} s, invariants broken in {broken}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How the story went.
struct Told {
    /// Phases told.
    phases: u32,
    /// Phases after which an invariant did not hold.
    broken: u32,
}

/// Tells the whole story on `store` under `prefix`, printing each phase as it goes, then
/// removes everything the story wrote (even when a phase failed).
async fn tell<S: Store>(
    store: S,
    prefix: &str,
    args: &DemoArgs,
    script: Script,
) -> Result<Told, StoryError> {
    let lease_ttl = Duration::from_secs(args.lease_ttl.unsigned_abs());
    let mut story = Story::start(store, prefix, lease_ttl, script).await?;
    let mut told = Told {
        phases: 0,
        broken: 0,
    };
    let played = play(&mut story, lease_ttl, &mut told).await;
    let ended = story.end().await;
    played?;
    ended?;
    Ok(told)
}

/// Plays the phases one by one: the heading, a spinner until the cluster settles, then the
/// report; after the second rolling restart, the two compared. Stops at the first phase
/// that cannot be played.
async fn play<S: Store>(
    story: &mut Story<S>,
    lease_ttl: Duration,
    told: &mut Told,
) -> Result<(), StoryError> {
    let mut restarts: Vec<RestartCost> = Vec::new();
    while let Some(phase) = story.next_phase() {
        told.phases += 1;
        let (title, detail) = narrate(&phase, lease_ttl);
        println!("\n{}. {title}", told.phases);
        println!("   {detail}");
        let progress = Progress::start("settling");
        let outcome = story.play(&phase).await;
        drop(progress);
        let outcome = outcome?;
        if !outcome.held() {
            told.broken += 1;
        }
        print!("{}", PhaseReport(&outcome));
        if let Phase::RollingRestart { mode } = phase {
            restarts.push(RestartCost::of(mode, &outcome));
            if restarts.len() == 2 {
                print!("{}", Comparison(&restarts));
            }
        }
    }
    Ok(())
}

/// Why the size is refused, in terms of the command's flags.
fn refusal(e: SizeError) -> String {
    match e {
        SizeError::Zones(got) => {
            format!("--zones must be from 2 to 26 (a zone goes down in the story), got {got}")
        }
        SizeError::Members { zones, members } => {
            format!("--members must be at least --zones ({zones}), got {members}")
        }
        SizeError::NoItems => "--items must be at least 1".into(),
    }
}

/// The opening line: the cast and where the story runs.
fn banner(script: &Script, args: &DemoArgs, place: &str) -> String {
    format!(
        "apportion demo: {} members in {} zones, {} items, seed {}, on {place} \
         (lease TTL {} s)",
        script.members.len(),
        args.zones,
        script.items.len(),
        args.seed,
        args.lease_ttl
    )
}
