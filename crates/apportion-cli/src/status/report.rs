//! The status report: the library's [`Overview`] of the cluster, and whether etcd still
//! answers, as one serializable document, and its text rendering.

use std::io::Write;

use apportion::report::Overview;
use serde::Serialize;

use crate::error::Result;
use crate::output::plural;
use crate::summary;

/// The allocation as of one revision: what `status --json` prints.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The leader, the counts, and every zone, member and item.
    #[serde(flatten)]
    pub overview: Overview,
    /// Set by `status --watch` while etcd does not answer: the report then shows the last
    /// revision read, which may be out of date. `None` when the report is current.
    pub stale: Option<Stale>,
}

/// How long the report has not been confirmed by etcd.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stale {
    /// When etcd last answered, `HH:MM:SS` UTC.
    pub since: String,
    /// Whole seconds since then.
    pub secs: u64,
}

impl Report {
    /// Writes the report as text: a staleness banner if etcd does not answer, a summary
    /// line, then the zone, member and attention tables, then the undecodable keys; empty
    /// sections say so in one line.
    pub fn write_text(&self, out: &mut impl Write) -> Result<()> {
        let overview = &self.overview;
        let totals = &overview.totals;
        if let Some(stale) = &self.stale {
            writeln!(
                out,
                "stale: etcd unreachable since {} UTC ({}s); showing what it last said",
                stale.since, stale.secs
            )?;
        }
        writeln!(
            out,
            "prefix {}  revision {}  leader {}",
            overview.prefix,
            overview.revision,
            overview.leader.as_deref().unwrap_or("(none)")
        )?;
        writeln!(
            out,
            "{}, {} of {} copies placed, capacity {}, {}",
            plural(totals.items, "item"),
            totals.slots_filled,
            totals.slots_wanted,
            totals.capacity,
            plural(totals.members, "member")
        )?;
        if totals.dangling > 0 {
            writeln!(
                out,
                "{} left by deleted items or members, for the leader to remove",
                plural(totals.dangling, "assignment")
            )?;
        }
        writeln!(out)?;
        if overview.members.is_empty() {
            writeln!(out, "no members")?;
        } else {
            summary::zone_table(&overview.zones).write(out)?;
            writeln!(out)?;
            summary::member_table(&overview.members).write(out)?;
        }
        writeln!(out)?;
        if overview.attention.is_empty() {
            writeln!(out, "every item has all its copies, all ready")?;
        } else {
            writeln!(out, "items short of copies or not ready:")?;
            summary::item_table(&overview.attention).write(out)?;
        }
        let rejected = &overview.rejected;
        if rejected.count > 0 {
            writeln!(out)?;
            writeln!(
                out,
                "{} ignored (did not decode):",
                plural(rejected.count, "key")
            )?;
            for key in &rejected.first {
                writeln!(out, "  {}: {}", key.key, key.reason)?;
            }
            if rejected.count > rejected.first.len() {
                writeln!(
                    out,
                    "  ... and {} more",
                    rejected.count - rejected.first.len()
                )?;
            }
        }
        Ok(())
    }
}
