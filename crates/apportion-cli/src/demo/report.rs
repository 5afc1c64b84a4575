//! What a phase prints once the cluster has settled: a table of the members (zone, load
//! against limit, primaries; the leader marked), the zones' totals, the unfilled slots, the
//! moves the phase made, how long it took, and the invariants' verdict.

use std::collections::BTreeMap;
use std::fmt::{self, Write};
use std::time::Duration;

use apportion::cluster::StateOf;
use apportion::core::values::{JsonDecoder, MemberValue};

use super::check::{self, Verdict, INVARIANTS};
use super::ledger::Record;

/// How many violations are listed before the rest are only counted.
const SHOWN_PROBLEMS: usize = 5;

/// Everything one phase reports.
pub struct PhaseReport<'a> {
    /// The settled state at the end of the phase.
    pub state: &'a StateOf<JsonDecoder>,
    /// What the applications did during the phase.
    pub record: &'a Record,
    /// From the phase's first action until the cluster settled.
    pub took: Duration,
    /// The invariants' verdict.
    pub verdict: &'a Verdict,
}

impl fmt::Display for PhaseReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state;
        let leader = state.leader();
        let width = state
            .members()
            .iter()
            .map(|m| m.key.as_str().len())
            .max()
            .unwrap_or(0)
            .max("member".len());
        writeln!(
            f,
            "   {:width$}  {:8}  {:>12}  {:>9}",
            "member", "zone", "load / limit", "primaries"
        )?;
        let mut zones: BTreeMap<&str, ZoneTotal> = BTreeMap::new();
        for (i, member) in state.members().iter().enumerate() {
            let load = state.member_assignment_count(i);
            let limit = member.value.item_limit();
            let primaries = state.member_primary_count(i);
            let zone = zones.entry(member.key.zone()).or_default();
            zone.add(load, limit, primaries);
            let mut note = String::new();
            if Some(i) == leader {
                note.push_str("  leader");
            }
            if member.value.is_exiting() {
                note.push_str("  exiting");
            }
            writeln!(
                f,
                "   {:width$}  {:8}  {:>5} / {:<4}  {:>9}{note}",
                member.key.as_str(),
                member.key.zone(),
                load,
                limit,
                primaries
            )?;
        }
        writeln!(
            f,
            "   {:width$}  {:>8}  {:>12}  {:>9}",
            "zone", "members", "load / limit", "primaries"
        )?;
        for (zone, total) in &zones {
            writeln!(
                f,
                "   {:width$}  {:>8}  {:>5} / {:<4}  {:>9}",
                zone, total.members, total.load, total.limit, total.primaries
            )?;
        }
        let record = self.record;
        let mut footer = format!(
            "   unfilled slots: {}   moves: {}, {}   settled in {:.2} s",
            check::unfilled(state),
            count(record.replica_moves, "replica"),
            count(record.primary_moves, "primary"),
            self.took.as_secs_f64()
        );
        if record.fenced > 0 {
            let _ = write!(footer, "   fenced: {}", record.fenced);
        }
        writeln!(f, "{footer}")?;
        verdict(f, self.verdict)
    }
}

/// The verdict as one line when all held, else the violations.
fn verdict(f: &mut fmt::Formatter<'_>, verdict: &Verdict) -> fmt::Result {
    if verdict.held() {
        return writeln!(f, "   invariants held: {}", INVARIANTS.join(", "));
    }
    writeln!(
        f,
        "   INVARIANTS BROKEN ({} violation(s)):",
        verdict.problems.len()
    )?;
    for problem in verdict.problems.iter().take(SHOWN_PROBLEMS) {
        writeln!(f, "     - {problem}")?;
    }
    if verdict.problems.len() > SHOWN_PROBLEMS {
        writeln!(
            f,
            "     - and {} more",
            verdict.problems.len() - SHOWN_PROBLEMS
        )?;
    }
    Ok(())
}

/// `1 replica`, `2 replicas`, `0 primaries`.
fn count(n: u32, noun: &str) -> String {
    match (n, noun.strip_suffix('y')) {
        (1, _) => format!("1 {noun}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        (_, None) => format!("{n} {noun}s"),
    }
}

/// One zone's totals.
#[derive(Default)]
struct ZoneTotal {
    members: u32,
    load: u32,
    limit: u32,
    primaries: u32,
}

impl ZoneTotal {
    fn add(&mut self, load: u32, limit: u32, primaries: u32) {
        self.members += 1;
        self.load += load;
        self.limit += limit;
        self.primaries += primaries;
    }
}
