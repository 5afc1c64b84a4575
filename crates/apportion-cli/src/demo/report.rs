//! What a phase prints once the cluster has settled: a table of the members (zone, load
//! against limit, primaries; the leader marked), the zones' totals, the unfilled slots, the
//! moves the phase made and the copies it returned, the fewest ready replicas an item had,
//! how long it took, and the invariants' verdict. After the second rolling restart, the two
//! side by side ([`Comparison`]).

use std::collections::BTreeMap;
use std::fmt::{self, Write};
use std::time::Duration;

use apportion::core::values::MemberValue;
use apportion_sim::story::{Figures, Outcome, RestartMode};

/// What the story's judgement guarantees when nothing is broken, in words: the simulation's
/// settled rules ([`apportion_sim::checks::settled`]: the solver's own answer, which stays
/// within limits, never puts an item twice on a member, spreads replicas over zones and
/// fills every slot the capacity allows) and the event streams' one owner per exclusive
/// item.
const INVARIANTS: [&str; 5] = [
    "limits",
    "distinct members",
    "zone spread",
    "slots filled",
    "one owner per exclusive item",
];

/// How many violations are listed before the rest are only counted.
const SHOWN_PROBLEMS: usize = 5;

/// Everything one phase reports: its outcome, shown as tables and a verdict.
pub struct PhaseReport<'a>(pub &'a Outcome);

impl fmt::Display for PhaseReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = self.0;
        let state = &outcome.settled.state;
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
        let figures = &outcome.figures;
        let mut footer = format!(
            "   unfilled slots: {}   moves: {}, {}, {}   returned: {}   lowest ready: {}   \
             settled in {:.2} s",
            outcome.unfilled,
            count(figures.replica_moves, "replica"),
            count(figures.primary_moves, "primary"),
            count(figures.handovers, "handover"),
            figures.returned,
            lowest(outcome.lowest_ready),
            outcome.took.as_secs_f64()
        );
        if figures.fenced > 0 {
            let _ = write!(footer, "   fenced: {}", figures.fenced);
        }
        writeln!(f, "{footer}")?;
        verdict(f, &outcome.problems)
    }
}

/// The verdict as one line when all held, else the violations.
fn verdict(f: &mut fmt::Formatter<'_>, problems: &[String]) -> fmt::Result {
    if problems.is_empty() {
        return writeln!(f, "   invariants held: {}", INVARIANTS.join(", "));
    }
    writeln!(f, "   INVARIANTS BROKEN ({} violation(s)):", problems.len())?;
    for problem in problems.iter().take(SHOWN_PROBLEMS) {
        writeln!(f, "     - {problem}")?;
    }
    if problems.len() > SHOWN_PROBLEMS {
        writeln!(f, "     - and {} more", problems.len() - SHOWN_PROBLEMS)?;
    }
    Ok(())
}

/// What a rolling restart cost, kept from its outcome to be compared with the other.
pub struct RestartCost {
    /// How its members left.
    mode: RestartMode,
    figures: Figures,
    lowest_ready: Option<u32>,
    took: Duration,
}

impl RestartCost {
    /// The cost of the rolling restart in `mode` that ended in `outcome`.
    pub fn of(mode: RestartMode, outcome: &Outcome) -> Self {
        RestartCost {
            mode,
            figures: outcome.figures,
            lowest_ready: outcome.lowest_ready,
            took: outcome.took,
        }
    }
}

/// Rolling restarts side by side, one column each: what draining every member costs
/// against restarting each in place, the figure the restart mode exists to bring down.
pub struct Comparison<'a>(pub &'a [RestartCost]);

impl fmt::Display for Comparison<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row =
            |f: &mut fmt::Formatter<'_>, label: &str, cell: &dyn Fn(&RestartCost) -> String| {
                write!(f, "   {label:<22}")?;
                for cost in self.0 {
                    write!(f, "  {:>10}", cell(cost))?;
                }
                writeln!(f)
            };
        writeln!(f, "\nRolling restarts compared")?;
        row(f, "", &|c| match c.mode {
            RestartMode::Drain => "draining".into(),
            RestartMode::Restart { .. } => "in place".into(),
        })?;
        row(f, "replica moves", &|c| c.figures.replica_moves.to_string())?;
        row(f, "returned", &|c| c.figures.returned.to_string())?;
        row(f, "primary moves", &|c| c.figures.primary_moves.to_string())?;
        row(f, "exclusive handovers", &|c| {
            c.figures.handovers.to_string()
        })?;
        row(f, "lowest ready replicas", &|c| lowest(c.lowest_ready))?;
        row(f, "wall time", &|c| {
            format!("{:.1} s", c.took.as_secs_f64())
        })
    }
}

/// The fewest ready replicas, `-` when there was no replicated item.
fn lowest(ready: Option<u32>) -> String {
    ready.map_or_else(|| "-".into(), |n| n.to_string())
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
