//! Turning planned changes into guarded transactions, batched to the store's op limit.
//!
//! Every transaction carries the leader's fence (its own member key unchanged since the view
//! was read, so a deposed leader's writes fail) and, per item, guards that the item and all of
//! its assignment keys are unchanged since the view's revision: a plan made from a stale view
//! fails instead of double-assigning. Those guards cannot see a key that was deleted (a
//! lease that ended), so the consistent copies a removal relies on are guarded to exist. Keys re-written under a lease are guarded on that lease,
//! so a lease that ended in the meantime fails the guard rather than the whole request.

use apportion_core::keys::Prefix;
use apportion_core::planner::{Change, ItemChanges};
use apportion_core::state::Entry;
use apportion_core::values::{AssignmentValue, Decoder};
use apportion_store::{Compare, CompareOp, KeyRange, Op, Revision, Txn};

use crate::error::Error;

/// One item's changes as store operations, with the guards they need.
struct ItemTxn {
    compares: Vec<Compare>,
    ops: Vec<Op>,
}

/// Builds the transactions for `plans`, each within `limit` compares and ops.
pub(crate) fn transactions<I, D: Decoder>(
    prefix: &Prefix,
    decoder: &D,
    view_revision: Revision,
    fence: Compare,
    plans: &[ItemChanges<'_, I, D::Assignment>],
    limit: usize,
) -> Result<Vec<Txn>, Error>
where
    D::Assignment: Clone,
{
    let mut txns = Vec::new();
    let mut current = Txn::new().when([fence.clone()]);
    for plan in plans {
        let item = item_txn(prefix, decoder, view_revision, plan, limit - 1)?;
        let fits = current.compares.len() + item.compares.len() <= limit
            && current.success.len() + item.ops.len() <= limit;
        if !fits {
            txns.push(std::mem::replace(
                &mut current,
                Txn::new().when([fence.clone()]),
            ));
        }
        current = current.when(item.compares).and_then(item.ops);
    }
    if !current.success.is_empty() {
        txns.push(current);
    }
    Ok(txns)
}

/// One item's guards and operations. Changes that would not fit in `limit` are left for a
/// later round (the item's guards make a second transaction for it fail anyway).
fn item_txn<I, D: Decoder>(
    prefix: &Prefix,
    decoder: &D,
    view_revision: Revision,
    plan: &ItemChanges<'_, I, D::Assignment>,
    limit: usize,
) -> Result<ItemTxn, Error>
where
    D::Assignment: Clone,
{
    let unchanged_since = view_revision + 1;
    let mut compares = vec![Compare::mod_revision(
        format!("{}{}#", prefix.assignments_dir(), plan.item),
        CompareOp::Less,
        unchanged_since,
    )
    .over_prefix()];
    if let Some(entry) = plan.entry {
        let key = prefix.item_key(plan.item);
        compares.push(Compare::create_revision(
            key.clone(),
            CompareOp::Equal,
            entry.meta.create_revision,
        ));
        compares.push(Compare::mod_revision(key, CompareOp::Less, unchanged_since));
    }
    // The copies a removal relies on must still be there: guards on the other keys cannot
    // see a lease that ended in the meantime. As many as fit, leaving room for a change.
    let room = limit.saturating_sub(compares.len() + 1);
    for entry in plan.relies_on.iter().take(room) {
        compares.push(Compare::create_revision(
            prefix.assignment_key(&entry.key),
            CompareOp::Equal,
            entry.meta.create_revision,
        ));
    }
    let mut ops = Vec::new();
    for change in &plan.changes {
        if compares.len() + 1 > limit || ops.len() + change.ops() > limit {
            break;
        }
        match change {
            Change::Add { key, lease } => {
                if *lease != 0 {
                    let member = prefix.member_key(&key.member);
                    compares.push(Compare::lease(member, CompareOp::Equal, *lease));
                }
                ops.push(put(prefix.assignment_key(key), Vec::new(), *lease));
            }
            Change::Remove(entry) => {
                ops.push(Op::Delete(KeyRange::key(prefix.assignment_key(&entry.key))));
            }
            Change::Reslot { from, to } => {
                guard_lease(prefix, from, &mut compares);
                ops.push(Op::Delete(KeyRange::key(prefix.assignment_key(&from.key))));
                let value = encode(decoder, &from.value)?;
                ops.push(put(prefix.assignment_key(to), value, from.meta.lease));
            }
            Change::RequestRelease(entry) => {
                guard_lease(prefix, entry, &mut compares);
                let mut value = entry.value.clone();
                value.request_release();
                let value = encode(decoder, &value)?;
                ops.push(put(
                    prefix.assignment_key(&entry.key),
                    value,
                    entry.meta.lease,
                ));
            }
        }
    }
    Ok(ItemTxn { compares, ops })
}

fn guard_lease<A>(
    prefix: &Prefix,
    entry: &Entry<apportion_core::keys::AssignmentKey, A>,
    compares: &mut Vec<Compare>,
) {
    if entry.meta.lease != 0 {
        let key = prefix.assignment_key(&entry.key);
        compares.push(Compare::lease(key, CompareOp::Equal, entry.meta.lease));
    }
}

fn put(key: String, value: Vec<u8>, lease: i64) -> Op {
    Op::Put {
        key: key.into_bytes(),
        value,
        lease: (lease != 0).then_some(lease),
    }
}

fn encode<D: Decoder>(decoder: &D, value: &D::Assignment) -> Result<Vec<u8>, Error> {
    decoder.encode_assignment(value).map_err(|e| Error::Encode {
        what: "assignment status",
        reason: e.to_string(),
    })
}
