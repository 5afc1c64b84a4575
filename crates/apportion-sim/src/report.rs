//! The figures of a run, and their totals over many seeds.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::record::Violation;

/// How often an action ran, and how often it found no target (nothing paused to resume).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Times it ran.
    pub done: u64,
    /// Times it had nothing to act on.
    pub skipped: u64,
}

/// What one run did and found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The run's seed.
    pub seed: u64,
    /// Steps in its schedule.
    pub steps: usize,
    /// Actions by kind.
    pub actions: BTreeMap<&'static str, Tally>,
    /// What the members went through (events and faults), by kind.
    pub happenings: BTreeMap<&'static str, u64>,
    /// Simulated time covered, settling included.
    pub simulated: Duration,
    /// How long the cluster took to settle once the faults stopped (`None`: it did not).
    pub settled_after: Option<Duration>,
    /// Allocation rounds run, and how many planned changes.
    pub rounds: u64,
    /// Rounds that planned changes.
    pub busy_rounds: u64,
    /// Allocator transactions that reached the store.
    pub allocator_txns: u64,
    /// Leader crashes armed for the middle of a round that did fire.
    pub mid_round_crashes: u64,
    /// Key space reloads (a member's watch found its revisions compacted).
    pub reloads: u64,
    /// Steps that ended with the leader at rest, where the at-rest rules were checked.
    pub at_rest_checks: u64,
    /// Broken invariants.
    pub violations: Vec<Violation>,
    /// A hash of the whole run; equal for two runs of one seed.
    pub fingerprint: u64,
}

/// The command that replays the run of `seed`, traced.
pub fn replay_command(seed: u64) -> String {
    format!(
        "APPORTION_SIM_SEED={seed} cargo test -p apportion-sim --test simulation -- --nocapture"
    )
}

/// Figures added up over runs.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    /// Runs.
    pub seeds: u64,
    /// Runs with a violation (or that did not settle).
    pub failed: Vec<u64>,
    /// Steps.
    pub steps: u64,
    /// Actions by kind.
    pub actions: BTreeMap<&'static str, Tally>,
    /// Happenings by kind.
    pub happenings: BTreeMap<&'static str, u64>,
    /// Simulated time.
    pub simulated: Duration,
    /// The longest time to settle.
    pub slowest_settle: Duration,
    /// Rounds.
    pub rounds: u64,
    /// Allocator transactions.
    pub allocator_txns: u64,
    /// Leader crashes in the middle of a round.
    pub mid_round_crashes: u64,
    /// Key space reloads.
    pub reloads: u64,
    /// At-rest checks.
    pub at_rest_checks: u64,
    /// Violations.
    pub violations: u64,
}

impl Totals {
    /// Adds one run.
    pub fn add(&mut self, report: &Report) {
        self.seeds += 1;
        if !report.violations.is_empty() {
            self.failed.push(report.seed);
        }
        self.steps += report.steps as u64;
        for (kind, tally) in &report.actions {
            let total = self.actions.entry(kind).or_default();
            total.done += tally.done;
            total.skipped += tally.skipped;
        }
        for (kind, n) in &report.happenings {
            *self.happenings.entry(kind).or_default() += n;
        }
        self.simulated += report.simulated;
        self.slowest_settle = self
            .slowest_settle
            .max(report.settled_after.unwrap_or_default());
        self.rounds += report.rounds;
        self.allocator_txns += report.allocator_txns;
        self.mid_round_crashes += report.mid_round_crashes;
        self.reloads += report.reloads;
        self.at_rest_checks += report.at_rest_checks;
        self.violations += report.violations.len() as u64;
    }
}

impl fmt::Display for Totals {
    /// One summary line, then the breakdowns.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let done: u64 = self.actions.values().map(|t| t.done).sum();
        writeln!(
            f,
            "simulation: {} seeds, {} steps, {} actions injected, {:.0} s simulated, \
             {} rounds, {} allocator txns, {} mid-round leader crashes, {} key space reloads, \
             {} at-rest checks, slowest settle {:.1} s, {} violations in {} seeds {:?}",
            self.seeds,
            self.steps,
            done,
            self.simulated.as_secs_f64(),
            self.rounds,
            self.allocator_txns,
            self.mid_round_crashes,
            self.reloads,
            self.at_rest_checks,
            self.slowest_settle.as_secs_f64(),
            self.violations,
            self.failed.len(),
            self.failed,
        )?;
        write!(f, "  actions (done/no target):")?;
        for (kind, tally) in &self.actions {
            write!(f, " {kind} {}/{},", tally.done, tally.skipped)?;
        }
        writeln!(f)?;
        write!(f, "  member happenings:")?;
        for (kind, n) in &self.happenings {
            write!(f, " {kind} {n},")?;
        }
        Ok(())
    }
}
