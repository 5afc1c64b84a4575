//! The simulation as a test: a fixed set of seeds on `cargo test`, more with
//! `APPORTION_SIM_SEEDS=N`, one traced seed with `APPORTION_SIM_SEED=S`.
//!
//! Every run gets a real-time watchdog: a run that hangs (a task spinning without ever
//! yielding stops the whole paused runtime) is reported with its seed like any failure.

use std::sync::mpsc;
use std::time::Duration;

use apportion_sim::{replay_command, run, Report, Totals};

/// The seeds `cargo test` runs (about half a second each in a debug build).
const FIXED_SEEDS: u64 = 40;
/// Real time one run may take before it is declared hung.
const WATCHDOG: Duration = Duration::from_secs(120);

/// Runs `seed` on a thread of its own; `Err` if it panicked or hung.
fn run_watched(seed: u64, trace: bool) -> Result<Report, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(run(seed, trace));
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(report) => Ok(report),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!("hung for {WATCHDOG:?} of real time")),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("panicked".into()),
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}"))
    })
}

#[test]
fn seeds_keep_every_invariant() {
    let single = env_u64("APPORTION_SIM_SEED");
    let seeds: Vec<u64> = match single {
        Some(seed) => vec![seed],
        None => (1..=env_u64("APPORTION_SIM_SEEDS").unwrap_or(FIXED_SEEDS)).collect(),
    };
    let mut totals = Totals::default();
    let mut failures = Vec::new();
    for seed in seeds {
        let replay = replay_command(seed);
        match run_watched(seed, single.is_some()) {
            Ok(report) => {
                totals.add(&report);
                if !report.violations.is_empty() {
                    println!("seed {seed} FAILED; replay with: {replay}");
                    for violation in &report.violations {
                        println!("  {violation}");
                    }
                    failures.push(seed);
                }
            }
            Err(why) => {
                println!("seed {seed} {why}; replay with: {replay}");
                failures.push(seed);
            }
        }
    }
    println!("{totals}");
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
}

/// The same seed gives the same run: every event at the same simulated instant, the same
/// rounds and transactions, the same findings.
#[test]
fn a_seed_replays_the_same_run() {
    let seed = env_u64("APPORTION_SIM_SEED").unwrap_or(7);
    let first = run_watched(seed, false).unwrap();
    let second = run_watched(seed, false).unwrap();
    assert_eq!(
        first.fingerprint, second.fingerprint,
        "seed {seed} diverged"
    );
    assert_eq!(
        (first.rounds, first.allocator_txns, first.simulated),
        (second.rounds, second.allocator_txns, second.simulated)
    );
}

/// Seed 43 once made the leader rely on a restarting member's kept copy to remove another
/// ready copy, and promote it (revision 168: `r024` and `r030` lost the draining `z2#m3`'s
/// copy, `z0#m1`'s moved to slot 0) after `z0#m1` was told `ReadyToRestart`; it left
/// moments later, and both items had no ready replica. Only an item missing nothing but
/// its away copies, none on a draining member, is held now (`core/away.rs`).
#[test]
fn a_restart_never_takes_an_item_below_min_ready() {
    let report = run_watched(43, false).unwrap();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
}
