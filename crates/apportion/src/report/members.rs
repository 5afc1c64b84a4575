//! Per-member and per-zone figures: load, measured against the limit and the fair share.

use apportion_core::state::State;
use apportion_core::values::MemberValue;
use serde::Serialize;

use super::leases::{LeaseInfo, LeaseTimes};

/// One member with its load, measured against its limit and its fair share.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberRow {
    /// The member id, `ZONE#SUFFIX`.
    pub member: String,
    /// Its failure zone.
    pub zone: String,
    /// How many copies it may hold.
    pub limit: u32,
    /// Whether it is draining (takes no new copies; its capacity no longer counts).
    pub exiting: bool,
    /// Whether it is preparing a restart (hands its primaries over; its replicas will wait
    /// for it).
    pub restarting: bool,
    /// How many copies it holds.
    pub load: u32,
    /// What it would hold if the placed copies were spread in proportion to the limits of
    /// the members that are not exiting: placed copies × limit / their total limit (0 for
    /// an exiting member). A load far from it means the allocation is unbalanced.
    pub fair_share: f64,
    /// How many of its copies are primaries (slot 0).
    pub primaries: u32,
    /// Its lease and the time left on it.
    #[serde(flatten)]
    pub lease: LeaseInfo,
}

/// Every member, in (zone, suffix) order, with the time left on its lease from `times`
/// (ask for [`member_leases`](super::member_leases) with
/// [`lease_times`](super::lease_times)).
pub fn member_rows<I, M: MemberValue, A>(
    state: &State<I, M, A>,
    times: &LeaseTimes,
) -> Vec<MemberRow> {
    let placed = state.assignments().len() as f64;
    let capacity = state.member_slots() as f64;
    state
        .members()
        .iter()
        .enumerate()
        .map(|(index, member)| {
            let limit = member.value.item_limit();
            let exiting = member.value.is_exiting();
            let restarting = member.value.is_restarting();
            let fair_share = if exiting || restarting || capacity == 0.0 {
                0.0
            } else {
                placed * f64::from(limit) / capacity
            };
            MemberRow {
                member: member.key.to_string(),
                zone: member.key.zone().to_owned(),
                limit,
                exiting,
                restarting,
                load: state.member_assignment_count(index),
                fair_share,
                primaries: state.member_primary_count(index),
                lease: LeaseInfo::new(member.meta.lease, times),
            }
        })
        .collect()
}

/// One zone's members and copies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneRow {
    /// The zone name.
    pub zone: String,
    /// How many members it has, exiting ones included.
    pub members: usize,
    /// The summed limits of its members that are not exiting: what it can take.
    pub limit: u64,
    /// How many copies its members hold.
    pub load: u64,
    /// How many of those are primaries.
    pub primaries: u64,
}

/// Sums member rows per zone; `members` in (zone, suffix) order, as [`member_rows`]
/// returns them.
pub fn zone_rows(members: &[MemberRow]) -> Vec<ZoneRow> {
    let mut zones: Vec<ZoneRow> = Vec::new();
    for member in members {
        if zones.last().is_none_or(|zone| zone.zone != member.zone) {
            zones.push(ZoneRow {
                zone: member.zone.clone(),
                members: 0,
                limit: 0,
                load: 0,
                primaries: 0,
            });
        }
        if let Some(zone) = zones.last_mut() {
            zone.members += 1;
            if !member.exiting {
                zone.limit += u64::from(member.limit);
            }
            zone.load += u64::from(member.load);
            zone.primaries += u64::from(member.primaries);
        }
    }
    zones
}
