//! The status report: the library's [`Overview`] of the cluster, and whether etcd still
//! answers, as one serializable document, and its text rendering.

use std::io::Write;

use std::time::{SystemTime, UNIX_EPOCH};

use apportion::core::settings::ClusterSettings;
use apportion::report::{AwayRow, Overview};
use serde::Serialize;

use crate::admin::settings::{repairs_only, until_text};
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
        for line in settings_lines(&overview.settings, SystemTime::now()) {
            writeln!(out, "{line}")?;
        }
        for line in away_lines(&overview.away, SystemTime::now()) {
            writeln!(out, "{line}")?;
        }
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

/// What the settings hold back, in lines for the status summary: nothing when they are
/// the defaults, so a cluster nobody configured reads as before.
fn settings_lines(settings: &ClusterSettings, now: SystemTime) -> Vec<String> {
    let mut lines = Vec::new();
    let now_secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    if let Some(freeze) = settings.frozen_at(now_secs) {
        lines.push(format!(
            "FROZEN until {} ({}s left) by {}: {}; {}",
            until_text(freeze.until_unix_secs),
            freeze.until_unix_secs - now_secs,
            freeze.by,
            freeze.reason,
            repairs_only(settings.min_ready)
        ));
    }
    if settings.min_ready != 1
        || settings.max_moves_in_flight.is_some()
        || settings.refill_delay_secs.is_some()
    {
        let throttle = settings
            .max_moves_in_flight
            .map_or("no limit".to_owned(), |n| n.to_string());
        let delay = settings
            .refill_delay_secs
            .map_or("none".to_owned(), |s| format!("{s}s"));
        lines.push(format!(
            "settings: min_ready {}, max_moves_in_flight {throttle}, refill_delay {delay}",
            settings.min_ready
        ));
    }
    lines
}

/// One line per away record: a member away, whose replicas wait for it, or one back
/// that is getting its items again.
fn away_lines(away: &[AwayRow], now: SystemTime) -> Vec<String> {
    let now_secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    away.iter()
        .map(|row| {
            let reason = row.reason;
            let until = until_text(row.until_unix_secs);
            let left = row.until_unix_secs.saturating_sub(now_secs);
            if row.back {
                format!(
                    "back: {} ({reason}), getting its {} back (record ends {until})",
                    row.member,
                    plural(row.items, "item")
                )
            } else {
                format!(
                    "AWAY {} ({reason}) until {until} ({left}s left): {} wait for it, one \
                     replica short",
                    row.member,
                    plural(row.items, "item")
                )
            }
        })
        .collect()
}

#[cfg(test)]
mod settings_tests {
    use std::time::Duration;

    use apportion::core::settings::Freeze;

    use super::*;

    #[test]
    fn the_defaults_say_nothing_and_a_freeze_says_who_why_and_until_when() {
        let at = |secs| UNIX_EPOCH + Duration::from_secs(secs);
        assert!(settings_lines(&ClusterSettings::default(), at(0)).is_empty());
        let frozen = ClusterSettings {
            min_ready: 2,
            freeze: Some(Freeze {
                until_unix_secs: 100,
                reason: "kernel update".into(),
                by: "ops@h".into(),
            }),
            ..ClusterSettings::default()
        };
        assert_eq!(
            settings_lines(&frozen, at(40)),
            [
                "FROZEN until 1970-01-01T00:01:40Z (60s left) by ops@h: kernel update; only \
                 items with fewer than 2 copies ready (min_ready) are repaired",
                "settings: min_ready 2, max_moves_in_flight no limit, refill_delay none",
            ]
        );
        // Ended: no banner, though nobody removed it.
        assert_eq!(settings_lines(&frozen, at(100)).len(), 1);
    }
}
