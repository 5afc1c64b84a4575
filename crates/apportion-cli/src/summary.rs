//! Per-item, per-member and per-zone figures derived from a [`JsonState`], and their tables.
//!
//! `items list`, `members list` and `status` show the same rows, so they are computed and
//! drawn here once; each row serializes to the JSON the `--json` flags print.

use apportion_core::state::JsonState;
use serde::Serialize;

use crate::output::{Align, Table};

/// One item with how many of its copies are placed and ready.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemRow {
    /// The item id.
    pub id: String,
    /// How many copies it wants.
    pub replication: u16,
    /// Whether a member holding it may hold nothing else.
    pub exclusive: bool,
    /// How many copies are assigned to live members.
    pub assigned: usize,
    /// How many of those report `{"ready": true}`, the default consistency check.
    pub consistent: usize,
}

impl ItemRow {
    /// Whether the item lacks copies or has copies that are not ready yet: what an operator
    /// looks at first.
    pub fn needs_attention(&self) -> bool {
        self.assigned < usize::from(self.replication) || self.consistent < self.assigned
    }
}

/// Every item, in id order.
pub fn item_rows(state: &JsonState) -> Vec<ItemRow> {
    state
        .items()
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let copies = state.item_assignments(index);
            ItemRow {
                id: item.key.to_string(),
                replication: item.value.replication,
                exclusive: item.value.exclusive,
                assigned: copies.len(),
                consistent: copies.iter().filter(|copy| copy.value.ready).count(),
            }
        })
        .collect()
}

/// The item table: id, replication, exclusive, assigned and consistent copies.
pub fn item_table(rows: &[ItemRow]) -> Table {
    let mut table = Table::new(&[
        ("ITEM", Align::Left),
        ("REPLICATION", Align::Right),
        ("EXCLUSIVE", Align::Left),
        ("ASSIGNED", Align::Right),
        ("CONSISTENT", Align::Right),
    ]);
    for row in rows {
        table.row(vec![
            row.id.clone(),
            row.replication.to_string(),
            yes_no(row.exclusive),
            row.assigned.to_string(),
            row.consistent.to_string(),
        ]);
    }
    table
}

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
    /// How many copies it holds.
    pub load: u32,
    /// What it would hold if the placed copies were spread in proportion to the limits of
    /// the members that are not exiting: placed copies × limit / their total limit (0 for
    /// an exiting member). A load far from it means the allocation is unbalanced.
    pub fair_share: f64,
    /// How many of its copies are primaries (slot 0).
    pub primaries: u32,
    /// The lease its key lives under (0 for none), as etcd numbers it.
    pub lease: i64,
}

/// Every member, in (zone, suffix) order.
pub fn member_rows(state: &JsonState) -> Vec<MemberRow> {
    let placed = state.assignments().len() as f64;
    let capacity = state.member_slots() as f64;
    state
        .members()
        .iter()
        .enumerate()
        .map(|(index, member)| {
            let limit = member.value.item_limit;
            let fair_share = if member.value.exiting || capacity == 0.0 {
                0.0
            } else {
                placed * f64::from(limit) / capacity
            };
            MemberRow {
                member: member.key.to_string(),
                zone: member.key.zone().to_owned(),
                limit,
                exiting: member.value.exiting,
                load: state.member_assignment_count(index),
                fair_share,
                primaries: state.member_primary_count(index),
                lease: member.meta.lease,
            }
        })
        .collect()
}

/// The member table: limit, exiting flag, load, fair share, primaries and lease.
pub fn member_table(rows: &[MemberRow]) -> Table {
    let mut table = Table::new(&[
        ("MEMBER", Align::Left),
        ("ZONE", Align::Left),
        ("LIMIT", Align::Right),
        ("EXITING", Align::Left),
        ("LOAD", Align::Right),
        ("FAIR", Align::Right),
        ("PRIMARIES", Align::Right),
        ("LEASE", Align::Left),
    ]);
    for row in rows {
        table.row(vec![
            row.member.clone(),
            row.zone.clone(),
            row.limit.to_string(),
            yes_no(row.exiting),
            row.load.to_string(),
            format!("{:.1}", row.fair_share),
            row.primaries.to_string(),
            lease_text(row.lease),
        ]);
    }
    table
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

/// Sums member rows (sorted by zone, as [`member_rows`] returns them) per zone.
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

/// The zone table.
pub fn zone_table(rows: &[ZoneRow]) -> Table {
    let mut table = Table::new(&[
        ("ZONE", Align::Left),
        ("MEMBERS", Align::Right),
        ("LIMIT", Align::Right),
        ("LOAD", Align::Right),
        ("PRIMARIES", Align::Right),
    ]);
    for row in rows {
        table.row(vec![
            row.zone.clone(),
            row.members.to_string(),
            row.limit.to_string(),
            row.load.to_string(),
            row.primaries.to_string(),
        ]);
    }
    table
}

/// A flag as a word, which reads better in a table than `true`.
fn yes_no(flag: bool) -> String {
    if flag { "yes" } else { "no" }.to_owned()
}

/// A lease id the way `etcdctl` prints it (hex), so it can be looked up there; `-` for none.
fn lease_text(lease: i64) -> String {
    if lease == 0 {
        "-".to_owned()
    } else {
        format!("{lease:x}")
    }
}
