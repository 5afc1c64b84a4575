//! The cluster settings in a run: the operator's changes the schedule makes, and what the
//! driver's own judgements make of the settings in force (the at-rest rules do not hold
//! while the settings hold moves back, and a cluster is not settled while anything is held
//! for later).

use apportion::cluster::StateOf;
use apportion::core::settings::{ClusterSettings, Freeze};
use apportion::core::values::JsonDecoder;

use super::Driver;
use crate::plan::SettingsChange;

type State = StateOf<JsonDecoder>;

impl Driver {
    /// Writes a settings change, as `apportion freeze` or `apportion config set` would;
    /// returns what it wrote.
    pub(super) async fn change_settings(&mut self, change: &SettingsChange) -> Option<String> {
        let now = self.clock.unix_now();
        let edit = self
            .admin
            .update_settings(|settings| apply(settings, change, now))
            .await
            .ok()?;
        Some(format!("{:?}", edit.after))
    }
}

/// `change` made to `settings` at `now_unix_secs`.
fn apply(settings: &mut ClusterSettings, change: &SettingsChange, now_unix_secs: u64) {
    match *change {
        SettingsChange::Freeze { secs } => {
            settings.freeze = Some(Freeze {
                until_unix_secs: now_unix_secs + secs,
                reason: "simulated maintenance".into(),
                by: "sim".into(),
            });
        }
        SettingsChange::Throttle {
            max_moves_in_flight,
        } => settings.max_moves_in_flight = max_moves_in_flight,
        SettingsChange::MinReady { min_ready } => settings.min_ready = min_ready,
        SettingsChange::RefillDelay { secs } => settings.refill_delay_secs = secs,
    }
}

/// Whether the settings may be holding plans back at `now_unix_secs`, so that a leader at
/// rest has not necessarily done what the at-rest rules ask: a freeze in force holds nearly
/// everything (and the leader may notice its end up to a second late, as it reads the
/// clock in whole seconds), a throttle holds moves while copies are loading.
pub(super) fn holding_back(state: &State, now_unix_secs: u64) -> bool {
    let settings = state.settings();
    settings
        .frozen_at(now_unix_secs.saturating_sub(1))
        .is_some()
        || (settings.max_moves_in_flight.is_some()
            && state.assignments().iter().any(|a| !a.value.ready))
}

/// Whether nothing is left for later: nothing held back by the settings, no member away
/// or restarting.
/// Until then the assignment is not the solver's answer for the state as it is, by design
/// (items wait for their members, moves wait for the freeze's end).
pub(super) fn nothing_deferred(state: &State, now_unix_secs: u64) -> bool {
    !holding_back(state, now_unix_secs)
        && state.away_records().is_empty()
        && !state.members().iter().any(|m| m.value.restarting)
}
