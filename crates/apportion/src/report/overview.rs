//! The whole cluster at one revision, as `apportion status` reports it.

use apportion_core::away::AwayReason;
use apportion_core::keys::Prefix;
use apportion_core::settings::ClusterSettings;
use apportion_core::values::Decoder;
use serde::Serialize;

use super::items::{item_rows, ItemRow};
use super::leases::LeaseTimes;
use super::members::{member_rows, zone_rows, MemberRow, ZoneRow};
use crate::cluster::{Observed, Rejected};

/// How many undecodable keys an overview lists by name; the count covers all of them.
const REJECTED_SHOWN: usize = 5;

/// The allocation as of one revision: the leader, cluster-wide counts, every zone, member
/// and item, the items that need attention, and the keys that did not decode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    /// The deployment's prefix.
    pub prefix: String,
    /// The store revision the overview reflects.
    pub revision: i64,
    /// The member that leads ([`State::leader`]), if any member exists.
    ///
    /// [`State::leader`]: apportion_core::state::State::leader
    pub leader: Option<String>,
    /// Cluster-wide counts.
    pub totals: Totals,
    /// Per zone, in zone order.
    pub zones: Vec<ZoneRow>,
    /// Per member, in (zone, suffix) order.
    pub members: Vec<MemberRow>,
    /// Items short of copies or with copies not ready ([`ItemRow::needs_attention`]), in
    /// id order.
    pub attention: Vec<ItemRow>,
    /// Every item with its copies (member, slot, status), in id order: where each item is
    /// served.
    pub items: Vec<ItemRow>,
    /// Keys that did not decode.
    pub rejected: RejectedSummary,
    /// The cluster settings the leader plans under (a freeze, with who set it, why and
    /// until when).
    pub settings: ClusterSettings,
    /// Members away for a while (restarting, or lost under a refill delay), and members
    /// back whose record has not done its work yet, in member order.
    pub away: Vec<AwayRow>,
}

/// One away record (see `apportion_core::away`): whose, why, until when, and what waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwayRow {
    /// The member, `ZONE#SUFFIX`.
    pub member: String,
    /// `restart` or `lost`.
    pub reason: AwayReason,
    /// When the record ends (the items are then placed elsewhere), seconds since the epoch.
    pub until_unix_secs: u64,
    /// How many items it names.
    pub items: usize,
    /// Whether the member is back (its record goes once it has its items again).
    pub back: bool,
}

/// Cluster-wide counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedSummary {
    /// How many keys did not decode.
    pub count: usize,
    /// The first few, in key order.
    pub first: Vec<Rejected>,
}

impl Overview {
    /// Summarises `view` of the deployment under `prefix`, with the time left on the
    /// members' leases from `times` (ask for [`member_leases`](super::member_leases) with
    /// [`lease_times`](super::lease_times)).
    pub fn new<D: Decoder>(prefix: &Prefix, view: &Observed<D>, times: &LeaseTimes) -> Overview {
        let state = &view.state;
        let members = member_rows(state, times);
        let items = item_rows(state);
        Overview {
            prefix: prefix.as_str().to_owned(),
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
            zones: zone_rows(&members),
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
            settings: state.settings().clone(),
            away: state
                .away_records()
                .iter()
                .map(|record| AwayRow {
                    member: record.key.to_string(),
                    reason: record.value.reason,
                    until_unix_secs: record.value.until_unix_secs,
                    items: record.value.items.len(),
                    back: state.member_index(&record.key).is_some(),
                })
                .collect(),
        }
    }
}

/// Whether `view` holds no member, no item and no key that failed to decode: under a
/// mistyped prefix, which would otherwise pass for an idle cluster.
pub fn is_vacant<D: Decoder>(view: &Observed<D>) -> bool {
    let state = &view.state;
    state.items().is_empty() && state.members().is_empty() && view.rejected.is_empty()
}
