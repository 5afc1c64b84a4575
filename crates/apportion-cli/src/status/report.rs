//! The status report: everything `apportion status` shows, as one serializable document,
//! and its text rendering.

use std::io::Write;

use serde::Serialize;

use crate::error::Result;
use crate::output::plural;
use crate::summary::{self, ItemRow, LeaseTimes, MemberRow, ZoneRow};
use apportion::cluster::{Observed, Rejected};
use apportion_core::values::JsonDecoder;

/// How many undecodable keys the report lists by name; the count covers all of them.
const REJECTED_SHOWN: usize = 5;

/// The allocation as of one revision.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The deployment's prefix.
    pub prefix: String,
    /// The store revision the report reflects.
    pub revision: i64,
    /// The member that leads (the oldest that is not exiting), if any member exists.
    pub leader: Option<String>,
    /// Cluster-wide counts.
    pub totals: Totals,
    /// Per zone, in zone order.
    pub zones: Vec<ZoneRow>,
    /// Per member, in (zone, suffix) order.
    pub members: Vec<MemberRow>,
    /// Items short of copies or with copies not ready, in id order.
    pub attention: Vec<ItemRow>,
    /// Every item with its copies (member, slot, status), in id order: where each item is
    /// served, for scripts (the text report shows only `attention`).
    pub items: Vec<ItemRow>,
    /// Keys that did not decode.
    pub rejected: RejectedSummary,
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

/// Cluster-wide counts.
#[derive(Debug, Serialize)]
pub struct Totals {
    /// How many items exist.
    pub items: usize,
    /// How many members exist.
    pub members: usize,
    /// Copies wanted: the sum of the items' replication.
    pub slots_wanted: u64,
    /// Copies placed on live members.
    pub slots_filled: usize,
    /// Copies the members that are not exiting can hold: the sum of their limits.
    pub capacity: u64,
    /// Assignments left behind by a deleted item or member (the leader removes them).
    pub dangling: usize,
}

/// How many keys did not decode, and the first few of them with the reason.
#[derive(Debug, Serialize)]
pub struct RejectedSummary {
    /// How many keys did not decode.
    pub count: usize,
    /// The first few, in key order.
    pub first: Vec<Rejected>,
}

impl Report {
    /// Summarises a view of the deployment under `prefix`, with the time left on the
    /// members' leases from `times`.
    pub fn new(prefix: &str, view: &Observed<JsonDecoder>, times: &LeaseTimes) -> Report {
        let state = &view.state;
        let members = summary::member_rows(state, times);
        let items = summary::item_rows(state);
        Report {
            prefix: prefix.to_owned(),
            revision: view.revision,
            leader: state
                .leader()
                .map(|index| state.members()[index].key.to_string()),
            totals: Totals {
                items: state.items().len(),
                members: state.members().len(),
                slots_wanted: state.item_slots(),
                slots_filled: state.assignments().len(),
                capacity: state.member_slots(),
                dangling: state.dangling().len(),
            },
            zones: summary::zone_rows(&members),
            members,
            attention: items
                .iter()
                .filter(|item| item.needs_attention())
                .cloned()
                .collect(),
            items,
            rejected: RejectedSummary {
                count: view.rejected.len(),
                first: view.rejected.iter().take(REJECTED_SHOWN).cloned().collect(),
            },
            stale: None,
        }
    }

    /// Writes the report as text: a staleness banner if etcd does not answer, a summary
    /// line, then the zone, member and attention tables, then the undecodable keys; empty
    /// sections say so in one line.
    pub fn write_text(&self, out: &mut impl Write) -> Result<()> {
        let totals = &self.totals;
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
            self.prefix,
            self.revision,
            self.leader.as_deref().unwrap_or("(none)")
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
        if self.members.is_empty() {
            writeln!(out, "no members")?;
        } else {
            summary::zone_table(&self.zones).write(out)?;
            writeln!(out)?;
            summary::member_table(&self.members).write(out)?;
        }
        writeln!(out)?;
        if self.attention.is_empty() {
            writeln!(out, "every item has all its copies, all ready")?;
        } else {
            writeln!(out, "items short of copies or not ready:")?;
            summary::item_table(&self.attention).write(out)?;
        }
        if self.rejected.count > 0 {
            writeln!(out)?;
            writeln!(
                out,
                "{} ignored (did not decode):",
                plural(self.rejected.count, "key")
            )?;
            for rejected in &self.rejected.first {
                writeln!(out, "  {}: {}", rejected.key, rejected.reason)?;
            }
            if self.rejected.count > self.rejected.first.len() {
                writeln!(
                    out,
                    "  ... and {} more",
                    self.rejected.count - self.rejected.first.len()
                )?;
            }
        }
        Ok(())
    }
}
