//! The tables of the library's per-item, per-member and per-zone figures
//! ([`apportion::report`]).
//!
//! `items list`, `members list`, `status` and `items show` show the same rows, so they are
//! drawn here once; the `--json` flags print the rows themselves.

use apportion::cluster::Observed;
use apportion::report::{self, CopyRow, ItemRow, LeaseInfo, ListedItem, MemberRow, ZoneRow};
use apportion_core::keys::Prefix;
use apportion_core::values::JsonDecoder;

use crate::output::{Align, Table};

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

/// The line for a prefix holding nothing ([`report::is_vacant`]): most likely a mistyped
/// `--prefix`, which would otherwise look like an empty cluster.
pub fn nothing_under(view: &Observed<JsonDecoder>, prefix: &Prefix) -> Option<String> {
    report::is_vacant(view).then(|| format!("no members and no items under {prefix}"))
}

/// The member table: limit, exiting flag (`restart` for a member preparing a restart),
/// load, fair share, primaries, lease and the time left on it.
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
            if row.restarting {
                "restart".to_owned()
            } else {
                yes_no(row.exiting)
            },
            row.load.to_string(),
            format!("{:.1}", row.fair_share),
            row.primaries.to_string(),
            row.lease.lease.clone().unwrap_or_else(|| "-".to_owned()),
            ttl_text(&row.lease),
        ]);
    }
    table
}

/// The time left on a lease in words: `4s left`, `expired` once etcd no longer knows the
/// lease, `-` for no lease at all.
pub fn ttl_text(lease: &LeaseInfo) -> String {
    match (&lease.lease, lease.lease_ttl_secs) {
        (None, _) => "-".to_owned(),
        (Some(_), Some(secs)) => format!("{secs}s left"),
        (Some(_), None) => "expired".to_owned(),
    }
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
