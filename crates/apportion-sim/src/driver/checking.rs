//! What the driver checks after each step: the view against a fresh read of the store
//! (rejected values), and the at-rest rules whenever the leader is at rest (as
//! [`testing::at_rest`] says, from the rounds its hook reported).

use std::sync::Arc;

use apportion::cluster::{Observed, StateOf};
use apportion::core::values::JsonDecoder;
use apportion::store::{Revision, Store};
use apportion::testing::{self, RoundReport};

use super::{settings, Driver, Mode};
use crate::checks::{self, Finding, Unreadable};
use crate::record::Record;
use crate::rounds::Rounds;

impl Driver {
    /// The leader, by the observer's view.
    pub(super) fn leader(&self) -> Option<String> {
        let observed = self.view.current();
        let state = &observed.state;
        state.leader().map(|l| state.members()[l].key.to_string())
    }

    /// The store's current revision.
    pub(super) async fn revision(&self) -> Revision {
        self.base
            .revision()
            .await
            .expect("the driver's connection is never cut")
    }

    /// The observer's state, once it has caught up with the store as it is now.
    pub(super) async fn caught_up(&self) -> (Revision, Arc<Observed<JsonDecoder>>) {
        testing::caught_up(&self.base, &self.view)
            .await
            .expect("the driver's connection is never cut")
    }

    /// The latest round of the leader of `state`, if its session is up: a paused or cut-off
    /// leader's last word is not a leader at rest.
    pub(super) fn leader_round(&self, state: &StateOf<JsonDecoder>) -> Option<RoundReport> {
        let leader = state.leader().map(|l| state.members()[l].key.to_string())?;
        let up = self
            .sessions
            .get(&leader)
            .is_some_and(|s| s.mode == Mode::Up);
        let rounds = Rounds::lock(&self.rounds);
        rounds.latest(&leader).filter(|_| up).cloned()
    }

    /// Whether the leader is up and at rest at `revision`.
    pub(super) fn leader_at_rest(
        &self,
        observed: &Observed<JsonDecoder>,
        revision: Revision,
    ) -> bool {
        let round = self.leader_round(&observed.state);
        observed.revision == revision && testing::at_rest(round.as_ref(), revision)
    }

    /// Judges the mirror's suspects now that the rounds behind them have reported: a write
    /// planned from a solve that left slots unfilled is excused (and so is one whose round
    /// never reported, its leader having died in it).
    pub(super) fn judge_suspects(&self) {
        let rounds = Rounds::lock(&self.rounds);
        Record::lock(&self.record)
            .judge_suspects(|s| rounds.unfilled_at(s.planned_from).is_none_or(|n| n > 0));
    }

    /// The checks after a step (or, with `None`, after the warm-up).
    pub(super) async fn check(&mut self, step: Option<usize>) {
        self.judge_suspects();
        let (revision, observed) = self.caught_up().await;
        let unreadable = self.unreadable().await;
        let mut findings = rejected_findings(&observed, &unreadable);
        let held_back = settings::holding_back(&observed.state, self.clock.unix_now());
        if !held_back && self.leader_at_rest(&observed, revision) {
            self.report.at_rest_checks += 1;
            findings.extend(checks::at_rest(&observed.state, &unreadable));
        }
        let mut record = Record::lock(&self.record);
        for (rule, detail) in findings {
            let at = step.map_or("after warm-up".into(), |s| format!("after step {s}"));
            record.violate(rule, format!("{at}: {detail}"));
        }
    }

    /// The keys whose value does not decode, as a fresh read shows them now.
    pub(super) async fn unreadable(&self) -> Unreadable {
        Unreadable::read(&self.base, &self.prefix)
            .await
            .expect("the driver's connection is never cut")
    }
}

/// The rejected-values rule: the view counts exactly the keys under the prefix whose
/// value does not decode (called with the view caught up with the read).
pub(super) fn rejected_findings(
    observed: &Observed<JsonDecoder>,
    unreadable: &Unreadable,
) -> Vec<Finding> {
    if unreadable.revision != observed.revision || unreadable.keys == observed.rejected.len() {
        Vec::new()
    } else {
        let detail = format!(
            "{} keys do not decode, the view counts {}",
            unreadable.keys,
            observed.rejected.len()
        );
        vec![("rejected values miscounted", detail)]
    }
}
