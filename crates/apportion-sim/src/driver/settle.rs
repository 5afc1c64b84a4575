//! The end of a run: the faults lift, and the cluster must settle (as
//! [`testing::settled_now`] says) to the solver's answer within a bound. The driver keeps
//! its own loop around that look: between looks it reaps ended sessions and starts members,
//! on the simulation's paused clock.

use std::time::Duration;

use apportion::testing;

use super::checking::rejected_findings;
use super::{settings, Driver, Mode};
use crate::app::Command;
use crate::checks;
use crate::plan::{ItemSpec, MemberSpec};
use crate::record::Record;
use crate::rounds::Rounds;

/// How long the cluster gets to settle once the faults stop.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);
/// How often settling is looked at.
const SETTLE_POLL: Duration = Duration::from_millis(100);
/// The fewest members that should be running when the faults stop; more join if needed.
const MIN_MEMBERS_TO_SETTLE: usize = 2;

impl Driver {
    /// Lifts every fault (the garbled items written over again, as an operator would; members
    /// repair their own keys), makes sure enough members run, and waits for the cluster to settle; then
    /// checks the settled rules.
    pub(super) async fn settle(&mut self) {
        let names: Vec<String> = self.sessions.keys().cloned().collect();
        for name in names {
            match self.sessions[&name].mode {
                Mode::Up => {}
                Mode::Paused => {
                    self.set_mode(&name, Mode::Up);
                    self.command(&name, Command::Resume);
                }
                Mode::Partitioned => self.set_mode(&name, Mode::Up),
            }
        }
        let unreadable = self.unreadable().await;
        let garbled: Vec<ItemSpec> = self
            .items
            .values()
            .filter(|item| unreadable.has_item(&item.id))
            .cloned()
            .collect();
        for item in garbled {
            self.put_item(item).await;
        }
        let began = Record::lock(&self.record).elapsed();
        // A freeze is never lifted by the schedule: the cluster must settle after it ends.
        let thaw = self
            .view
            .current()
            .state
            .settings()
            .freeze
            .as_ref()
            .map(|f| self.clock.instant_of(f.until_unix_secs));
        let deadline = thaw
            .unwrap_or_else(tokio::time::Instant::now)
            .max(tokio::time::Instant::now())
            + SETTLE_LIMIT;
        while tokio::time::Instant::now() < deadline {
            self.reap();
            self.ensure_members();
            tokio::time::sleep(SETTLE_POLL).await;
            self.reap();
            let settled =
                testing::settled_now(&self.base, &self.view, |state| self.leader_round(state));
            let settled = settled.await.expect("the driver's connection is never cut");
            let now = self.clock.unix_now();
            if let Some(observed) = settled.filter(|o| settings::nothing_deferred(&o.state, now)) {
                self.report.settled_after = Some(Record::lock(&self.record).elapsed() - began);
                let unreadable = self.unreadable().await;
                let mut findings = checks::settled(&observed.state, &unreadable);
                findings.extend(rejected_findings(&observed, &unreadable));
                let mut record = Record::lock(&self.record);
                for (rule, detail) in findings {
                    record.violate(rule, format!("settled: {detail}"));
                }
                return;
            }
        }
        let diagnosis = self.diagnose().await;
        Record::lock(&self.record).violate(
            "did not settle",
            format!(
                "not settled {SETTLE_LIMIT:?} after the faults stopped (and any freeze \
                 ended): {diagnosis}"
            ),
        );
    }

    /// Starts members until at least [`MIN_MEMBERS_TO_SETTLE`] run that are not draining
    /// (some may have lost their lease while paused or cut off, and end as the faults
    /// lift).
    fn ensure_members(&mut self) {
        let staying = self.sessions.values().filter(|s| !s.draining).count();
        let limit = self
            .plan
            .cluster
            .members
            .iter()
            .map(|m| m.limit)
            .max()
            .unwrap_or(1);
        for _ in staying..MIN_MEMBERS_TO_SETTLE {
            self.late += 1;
            self.join(&MemberSpec {
                zone: format!("z{}", self.late % 2),
                suffix: format!("late{}", self.late),
                limit,
            });
        }
    }

    /// Why the cluster is not settled, for the report.
    async fn diagnose(&self) -> String {
        let (revision, observed) = self.caught_up().await;
        let state = &observed.state;
        let leader = self.leader();
        let round = leader
            .as_ref()
            .and_then(|l| Rounds::lock(&self.rounds).latest(l).cloned());
        let unready: Vec<String> = state
            .assignments()
            .iter()
            .filter(|a| !a.value.ready)
            .map(|a| a.key.to_string())
            .collect();
        let releasing = state
            .assignments()
            .iter()
            .filter(|a| a.value.releasing)
            .count();
        let away: Vec<String> = state
            .away_records()
            .iter()
            .map(|r| format!("{} {:?}", r.key, r.value.reason))
            .collect();
        let restarting: Vec<String> = state
            .members()
            .iter()
            .filter(|m| m.value.restarting)
            .map(|m| m.key.to_string())
            .collect();
        format!(
            "revision {revision}, leader {leader:?} (session {:?}), its last round {round:?}, \
             not ready {unready:?}, {releasing} releasing, {} dangling, members {:?}, \
             sessions {:?}, settings {:?} at {}, away {away:?}, restarting {restarting:?}",
            leader
                .as_ref()
                .and_then(|l| self.sessions.get(l))
                .map(|s| (s.mode, s.draining)),
            state.dangling().len(),
            state
                .members()
                .iter()
                .map(|m| m.key.to_string())
                .collect::<Vec<_>>(),
            self.sessions.keys().collect::<Vec<_>>(),
            state.settings(),
            self.clock.unix_now(),
        )
    }
}
