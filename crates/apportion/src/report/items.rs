//! Per-item figures: how many copies each item has placed and ready, and where they are.

use apportion_core::keys::Prefix;
use apportion_core::state::State;
use apportion_core::values::{AssignmentValue, Decoder, ItemValue};
use apportion_store::LeaseId;
use serde::Serialize;

use super::leases::{LeaseInfo, LeaseTimes};
use crate::cluster::Observed;

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
    /// How many of those report ready ([`AssignmentValue::is_ready`]), the default
    /// consistency check.
    pub consistent: usize,
    /// The assigned copies in slot order (the primary first), so a script or an operator
    /// can see where the item is served without reading the assignment keys.
    pub copies: Vec<CopyRow>,
    /// How many copies the allocator places ([`ItemValue::copies_wanted`]: one for an
    /// exclusive item, whatever its replication); not printed, it only decides
    /// [`needs_attention`](Self::needs_attention).
    #[serde(skip)]
    pub wanted: u16,
}

impl ItemRow {
    /// Whether the item lacks copies, has copies that are not ready yet, or (exclusive) has
    /// more than its one owner: what an operator looks at first (the status report's
    /// `attention` list).
    pub fn needs_attention(&self) -> bool {
        let wanted = usize::from(self.wanted);
        self.assigned < wanted
            || self.consistent < self.assigned
            || (self.exclusive && self.assigned > wanted)
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
    /// Whether the member reports the copy ready.
    pub ready: bool,
    /// Whether the leader asked the member to let go of it (exclusive items only).
    pub releasing: bool,
}

/// One copy with the lease of the member holding it: a copy whose member stopped renewing
/// goes when the lease runs out, so the time left says how long it may still be counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldCopy {
    /// The slot, member, zone and status.
    #[serde(flatten)]
    pub copy: CopyRow,
    /// The member's lease and the time left on it.
    #[serde(flatten)]
    pub lease: LeaseInfo,
}

/// Item `index`'s assigned copies in (slot, member) order, the order an operator reads
/// them in, primary first (the state keeps them in member order), each with its holder's
/// lease.
fn copies<I, M, A: AssignmentValue>(
    state: &State<I, M, A>,
    index: usize,
) -> Vec<(CopyRow, Option<LeaseId>)> {
    let range = state.item_assignment_range(index);
    let mut copies: Vec<(CopyRow, Option<LeaseId>)> = state.assignments()[range.clone()]
        .iter()
        .zip(range)
        .map(|(copy, position)| {
            let lease = state
                .assignment_member(position)
                .and_then(|member| state.members()[member].meta.lease);
            let row = CopyRow {
                slot: copy.key.slot.0,
                member: copy.key.member.to_string(),
                zone: copy.key.member.zone().to_owned(),
                ready: copy.value.is_ready(),
                releasing: copy.value.is_releasing(),
            };
            (row, lease)
        })
        .collect();
    copies.sort_by(|(a, _), (b, _)| (a.slot, &a.member).cmp(&(b.slot, &b.member)));
    copies
}

/// Item `index`'s copies in slot order with the time left on each holder's lease, from
/// `times` (ask for [`item_leases`](super::item_leases) with
/// [`lease_times`](super::lease_times)): what `apportion items show` lists.
pub fn item_copies<I, M, A: AssignmentValue>(
    state: &State<I, M, A>,
    index: usize,
    times: &LeaseTimes,
) -> Vec<HeldCopy> {
    copies(state, index)
        .into_iter()
        .map(|(copy, lease)| HeldCopy {
            copy,
            lease: LeaseInfo::new(lease, times),
        })
        .collect()
}

/// Every item, in id order.
pub fn item_rows<I: ItemValue, M, A: AssignmentValue>(state: &State<I, M, A>) -> Vec<ItemRow> {
    state
        .items()
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let copies: Vec<CopyRow> = copies(state, index)
                .into_iter()
                .map(|(copy, _)| copy)
                .collect();
            ItemRow {
                id: item.key.to_string(),
                replication: item.value.replication(),
                exclusive: item.value.is_exclusive(),
                assigned: copies.len(),
                consistent: copies.iter().filter(|copy| copy.ready).count(),
                copies,
                wanted: item.value.copies_wanted(),
            }
        })
        .collect()
}

/// One key under `P/items/`: an item the cluster places, or an item key it ignores because
/// its value does not decode (or asks for too many copies). Ignored keys are listed so an
/// item does not silently vanish from a listing when its value is broken.
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

impl ListedItem {
    /// The item id, by which a listing is sorted.
    fn id(&self) -> &str {
        match self {
            ListedItem::Item(row) => &row.id,
            ListedItem::Ignored { id, .. } => id,
        }
    }
}

/// Every key under `P/items/` of `view` (read under `prefix`) in id order: its items, and
/// the item keys among its rejected ones with the reason.
pub fn listed_items<D: Decoder>(view: &Observed<D>, prefix: &Prefix) -> Vec<ListedItem> {
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
