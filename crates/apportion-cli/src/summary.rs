//! Per-item, per-member and per-zone figures derived from a [`JsonState`], and their tables.
//!
//! `items list`, `members list` and `status` show the same rows, so they are computed and
//! drawn here once; each row serializes to the JSON the `--json` flags print.

use std::collections::BTreeMap;

use apportion::cluster::Observed;
use apportion_core::keys::Prefix;
use apportion_core::state::JsonState;
use apportion_core::values::JsonDecoder;
use apportion_store::{LeaseId, Store};
use serde::Serialize;

use crate::error::Result;
use crate::output::{Align, Table};

/// One item with how many of its copies are placed and ready, and where they are.
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
    /// The assigned copies in slot order (the primary first), so a script or an operator
    /// can see where the item is served without reading the assignment keys.
    pub copies: Vec<CopyRow>,
}

impl ItemRow {
    /// Whether the item lacks copies or has copies that are not ready yet: what an operator
    /// looks at first.
    pub fn needs_attention(&self) -> bool {
        self.assigned < usize::from(self.replication) || self.consistent < self.assigned
    }
}

/// One assigned copy of an item: which member holds it in which slot, and its status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopyRow {
    /// The slot; 0 is the primary.
    pub slot: u16,
    /// The member holding the copy, `ZONE#SUFFIX`.
    pub member: String,
    /// The member's failure zone.
    pub zone: String,
    /// Whether the member reports the copy ready (`{"ready": true}`).
    pub ready: bool,
    /// Whether the leader asked the member to let go of it (exclusive items only).
    pub releasing: bool,
}

/// Item `index`'s assigned copies in (slot, member) order: the order an operator reads
/// them in, primary first (the state keeps them in member order).
pub fn copy_rows(state: &JsonState, index: usize) -> Vec<CopyRow> {
    let mut copies: Vec<CopyRow> = state
        .item_assignments(index)
        .iter()
        .map(|copy| CopyRow {
            slot: copy.key.slot.0,
            member: copy.key.member.to_string(),
            zone: copy.key.member.zone().to_owned(),
            ready: copy.value.ready,
            releasing: copy.value.releasing,
        })
        .collect();
    copies.sort_by(|a, b| (a.slot, &a.member).cmp(&(b.slot, &b.member)));
    copies
}

/// Every item, in id order.
pub fn item_rows(state: &JsonState) -> Vec<ItemRow> {
    state
        .items()
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let copies = copy_rows(state, index);
            ItemRow {
                id: item.key.to_string(),
                replication: item.value.replication,
                exclusive: item.value.exclusive,
                assigned: copies.len(),
                consistent: copies.iter().filter(|copy| copy.ready).count(),
                copies,
            }
        })
        .collect()
}

/// One row of `items list`: an item the cluster places, or an item key it ignores because
/// its value does not decode (or asks for too many copies). Ignored keys are listed so an
/// item does not silently vanish from the listing when its value is broken.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ListedItem {
    /// An item the members see.
    Item(ItemRow),
    /// An item key the members skip.
    Ignored {
        /// The id part of the key (what follows `P/items/`).
        id: String,
        /// The whole key, to fix or delete with etcdctl.
        key: String,
        /// Why it is skipped.
        ignored: String,
    },
}

/// Every key under `P/items/` in id order: the items of the view, and the item keys among
/// its rejected ones with the reason.
pub fn listed_items(view: &Observed<JsonDecoder>, prefix: &Prefix) -> Vec<ListedItem> {
    let items_dir = prefix.items_dir();
    let mut rows: Vec<ListedItem> = item_rows(&view.state)
        .into_iter()
        .map(ListedItem::Item)
        .collect();
    rows.extend(view.rejected.iter().filter_map(|rejected| {
        let id = rejected.key.strip_prefix(&items_dir)?;
        Some(ListedItem::Ignored {
            id: id.to_owned(),
            key: rejected.key.clone(),
            ignored: rejected.reason.clone(),
        })
    }));
    rows.sort_by(|a, b| a.id().cmp(b.id()));
    rows
}

impl ListedItem {
    /// The item id, by which the listing is sorted.
    fn id(&self) -> &str {
        match self {
            ListedItem::Item(row) => &row.id,
            ListedItem::Ignored { id, .. } => id,
        }
    }
}

/// The columns of an item table: the counts, then with `wide` the members holding each
/// item, and with `notes` why an item key is ignored.
fn item_columns(wide: bool, notes: bool) -> Table {
    let mut columns = vec![
        ("ITEM", Align::Left),
        ("REPLICATION", Align::Right),
        ("EXCLUSIVE", Align::Left),
        ("ASSIGNED", Align::Right),
        ("CONSISTENT", Align::Right),
    ];
    if wide {
        columns.push(("COPIES", Align::Left));
    }
    if notes {
        columns.push(("NOTE", Align::Left));
    }
    Table::new(&columns)
}

/// An item's cells under [`item_columns`] (`wide`, without notes).
fn item_cells(row: &ItemRow, wide: bool) -> Vec<String> {
    let mut cells = vec![
        row.id.clone(),
        row.replication.to_string(),
        yes_no(row.exclusive),
        row.assigned.to_string(),
        row.consistent.to_string(),
    ];
    if wide {
        cells.push(holders(&row.copies));
    }
    cells
}

/// The members holding the copies in slot order, the primary marked `*`: `eu#h1*,us#h1`;
/// `-` for none.
fn holders(copies: &[CopyRow]) -> String {
    if copies.is_empty() {
        return "-".to_owned();
    }
    let names: Vec<String> = copies
        .iter()
        .map(|copy| {
            let primary = if copy.slot == 0 { "*" } else { "" };
            format!("{}{primary}", copy.member)
        })
        .collect();
    names.join(",")
}

/// The item table: id, replication, exclusive, assigned and consistent copies.
pub fn item_table(rows: &[ItemRow]) -> Table {
    let mut table = item_columns(false, false);
    for row in rows {
        table.row(item_cells(row, false));
    }
    table
}

/// The `items list` table: [`item_table`]'s columns, the holders with `wide`, and a note
/// column saying why a key is ignored when one is.
pub fn listed_item_table(rows: &[ListedItem], wide: bool) -> Table {
    let notes = rows
        .iter()
        .any(|row| matches!(row, ListedItem::Ignored { .. }));
    let mut table = item_columns(wide, notes);
    for row in rows {
        let cells = match row {
            ListedItem::Item(row) => {
                let mut cells = item_cells(row, wide);
                if notes {
                    cells.push(String::new());
                }
                cells
            }
            ListedItem::Ignored { id, ignored, .. } => {
                // A dash for each count, and for the holders with `wide`.
                let blanks = if wide { 5 } else { 4 };
                let mut cells = vec![id.clone()];
                cells.extend(std::iter::repeat_n("-".to_owned(), blanks));
                cells.push(format!("ignored: {ignored}"));
                cells
            }
        };
        table.row(cells);
    }
    table
}

/// The line for a prefix holding no member, no item and no key that failed to decode:
/// most likely a mistyped `--prefix`, which would otherwise look like an empty cluster.
pub fn nothing_under(view: &Observed<JsonDecoder>, prefix: &Prefix) -> Option<String> {
    let state = &view.state;
    (state.items().is_empty() && state.members().is_empty() && view.rejected.is_empty())
        .then(|| format!("no members and no items under {prefix}"))
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
    /// Its lease and the time left on it.
    #[serde(flatten)]
    pub lease: LeaseInfo,
}

/// A member's lease and the time left on it. A member that died still shows up until its
/// lease runs out, so the time left is what tells a dead member (counting down to 0) from
/// a live one (renewed, so it stays near the TTL).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaseInfo {
    /// The lease id in hex as etcdctl prints it ([`LeaseId`]'s form); `None` for a key
    /// without a lease.
    pub lease: Option<String>,
    /// Whole seconds left on the lease; `None` for no lease, or one that has expired.
    pub lease_ttl_secs: Option<u64>,
}

impl LeaseInfo {
    /// Lease `lease`, if any, with its time left from `times` (see [`lease_times`]).
    pub fn new(lease: Option<LeaseId>, times: &LeaseTimes) -> LeaseInfo {
        LeaseInfo {
            lease: lease.map(|lease| lease.to_string()),
            lease_ttl_secs: lease.and_then(|lease| times.get(&lease).copied().flatten()),
        }
    }

    /// The lease id for a table cell; `-` for none.
    pub fn id_text(&self) -> String {
        self.lease.clone().unwrap_or_else(|| "-".to_owned())
    }

    /// The time left in words: `4s left`, `expired` once etcd no longer knows the lease,
    /// `-` for no lease at all.
    pub fn ttl_text(&self) -> String {
        match (&self.lease, self.lease_ttl_secs) {
            (None, _) => "-".to_owned(),
            (Some(_), Some(secs)) => format!("{secs}s left"),
            (Some(_), None) => "expired".to_owned(),
        }
    }
}

/// Seconds left on each lease asked about; `None` for one etcd no longer knows (expired or
/// revoked).
pub type LeaseTimes = BTreeMap<LeaseId, Option<u64>>;

/// Asks the store how long each of `leases` has left, each lease once: what `status`,
/// `members list` and `items show` show next to a member.
pub async fn lease_times<S: Store>(
    store: &S,
    leases: impl IntoIterator<Item = LeaseId>,
) -> Result<LeaseTimes> {
    let mut times = LeaseTimes::new();
    for lease in leases {
        if let std::collections::btree_map::Entry::Vacant(entry) = times.entry(lease) {
            let left = store.time_to_live(lease).await?;
            entry.insert(left.map(|left| left.as_secs()));
        }
    }
    Ok(times)
}

/// The leases of every member of `state` that has one, to pass to [`lease_times`].
pub fn member_leases(state: &JsonState) -> impl Iterator<Item = LeaseId> + '_ {
    state
        .members()
        .iter()
        .filter_map(|member| member.meta.lease)
}

/// Every member, in (zone, suffix) order, with the time left on its lease from `times`
/// (see [`lease_times`]).
pub fn member_rows(state: &JsonState, times: &LeaseTimes) -> Vec<MemberRow> {
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
                lease: LeaseInfo::new(member.meta.lease, times),
            }
        })
        .collect()
}

/// The member table: limit, exiting flag, load, fair share, primaries, lease and the time
/// left on it.
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
        ("TTL", Align::Left),
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
            row.lease.id_text(),
            row.lease.ttl_text(),
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
pub fn yes_no(flag: bool) -> String {
    if flag { "yes" } else { "no" }.to_owned()
}
