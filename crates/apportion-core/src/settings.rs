//! Cluster settings: one JSON value at `P/settings`, written by operators (`apportion
//! freeze`, `apportion config set`) and read by the leader every round.
//!
//! They are the operator's say over *when* the allocator acts, never over *where*: the
//! solver still decides the assignment, and the settings only hold back the planner's
//! changes ([`restrain`](crate::restrain::restrain)). So a bad or missing settings value can
//! delay moves but never place a replica wrongly, and the defaults (no freeze, no throttle,
//! `min_ready` 1) are exactly the allocator's behaviour without settings.
//!
//! A freeze carries its own end: a maintenance window left on by a failed script ends by
//! itself. Times are whole seconds since the Unix epoch, the clock every member shares
//! with the operator's machine closely enough for a window of minutes; the core has no
//! clock, so the leader passes `now` in.

use serde::{Deserialize, Serialize};

use crate::values::ItemValue;

/// The cluster's settings. Every field has a default, so `{}` is a valid value and a field
/// added later leaves older values valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// The fewest ready replicas an item may drop to because of something planned (a
    /// freeze, a throttle): below it, the item is repaired whatever else holds moves back.
    pub min_ready: u32,
    /// The most added replicas not yet consistent across the cluster, so that a rebalance
    /// does not make every member load at once; `None`: no limit. Repairs of items below
    /// `min_ready` are never held back by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_moves_in_flight: Option<u32>,
    /// A maintenance freeze: until it ends, only items below `min_ready` (or without a
    /// primary) are repaired, and nothing else moves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freeze: Option<Freeze>,
    /// How long the copies of a member whose lease expired wait for it to come back (in
    /// seconds) before they are placed elsewhere, as if it had left to restart (see
    /// [`away`](crate::away)); `None`: they are placed elsewhere at once. Items that would
    /// drop below `min_ready` are refilled at once either way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refill_delay_secs: Option<u64>,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            min_ready: 1,
            max_moves_in_flight: None,
            freeze: None,
            refill_delay_secs: None,
        }
    }
}

/// A maintenance freeze, with who set it and why, shown by `apportion status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Freeze {
    /// When it ends by itself, in seconds since the Unix epoch.
    pub until_unix_secs: u64,
    /// Why (free text for the operators who find the cluster frozen).
    #[serde(default)]
    pub reason: String,
    /// Who froze it (a user or host name).
    #[serde(default)]
    pub by: String,
}

/// Why a settings value was refused, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The value is not the settings' JSON.
    #[error("cluster settings are not valid JSON settings: {0}")]
    Json(String),
    /// `max_moves_in_flight` is 0: nothing could ever be added, not even a repair's
    /// follow-up, so the cluster would never rebalance.
    #[error("max_moves_in_flight must be at least 1 (leave it out for no limit)")]
    NoMoves,
    /// `refill_delay_secs` is 0, which a lease cannot last.
    #[error("refill_delay_secs must be at least 1 (leave it out to refill at once)")]
    NoDelay,
}

impl ClusterSettings {
    /// Parses and validates a stored value.
    pub fn decode(bytes: &[u8]) -> Result<Self, SettingsError> {
        let settings: ClusterSettings =
            serde_json::from_slice(bytes).map_err(|e| SettingsError::Json(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// The value to store.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("settings serialize")
    }

    /// Refuses what the allocator could not honour.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.max_moves_in_flight == Some(0) {
            return Err(SettingsError::NoMoves);
        }
        if self.refill_delay_secs == Some(0) {
            return Err(SettingsError::NoDelay);
        }
        Ok(())
    }

    /// The fewest ready copies `item` may be left with by a planned action: its own
    /// `min_ready` if it sets one, else the cluster's, never more than it wants copies.
    /// The one rule behind repairs ([`restrain`](crate::restrain)) and held slots
    /// ([`away`](crate::away)).
    pub fn min_ready_of(&self, item: &impl ItemValue) -> u32 {
        item.min_ready()
            .unwrap_or(self.min_ready)
            .min(u32::from(item.copies_wanted()))
    }

    /// The freeze in force at `now` (seconds since the epoch), if any: an expired freeze
    /// is no freeze, whether or not anyone removed it.
    pub fn frozen_at(&self, now_unix_secs: u64) -> Option<&Freeze> {
        self.freeze
            .as_ref()
            .filter(|f| f.until_unix_secs > now_unix_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_object_is_the_defaults() {
        assert_eq!(
            ClusterSettings::decode(b"{}").unwrap(),
            ClusterSettings::default()
        );
    }

    #[test]
    fn a_round_trip_keeps_every_field() {
        let settings = ClusterSettings {
            min_ready: 2,
            max_moves_in_flight: Some(10),
            freeze: Some(Freeze {
                until_unix_secs: 100,
                reason: "kernel update".into(),
                by: "ops".into(),
            }),
            refill_delay_secs: Some(300),
        };
        assert_eq!(
            ClusterSettings::decode(&settings.encode()).unwrap(),
            settings
        );
    }

    #[test]
    fn bad_values_name_what_is_wrong() {
        let unknown = ClusterSettings::decode(br#"{"min_redy": 2}"#).unwrap_err();
        assert!(unknown.to_string().contains("min_redy"), "{unknown}");
        let zero = ClusterSettings::decode(br#"{"max_moves_in_flight": 0}"#).unwrap_err();
        assert_eq!(zero, SettingsError::NoMoves);
        let negative = ClusterSettings::decode(br#"{"min_ready": -1}"#).unwrap_err();
        assert!(negative.to_string().contains("min_ready") || negative.to_string().contains("-1"));
    }

    #[test]
    fn a_freeze_ends_by_itself() {
        let settings = ClusterSettings {
            freeze: Some(Freeze {
                until_unix_secs: 100,
                reason: String::new(),
                by: String::new(),
            }),
            ..ClusterSettings::default()
        };
        assert!(settings.frozen_at(99).is_some());
        assert!(settings.frozen_at(100).is_none());
    }
}
