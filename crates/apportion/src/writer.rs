//! Turning planned changes into guarded transactions, batched to the store's op limit.
//!
//! Every transaction carries the leader's fence (its own member key unchanged since the view
//! was read, so a deposed leader's writes fail) and, per item, guards that the item and all of
//! its assignment keys are unchanged since the view's revision: a plan made from a stale view
//! fails instead of double-assigning. Those guards cannot see a key that was deleted (a
//! lease that ended), so the consistent copies a removal relies on are guarded to exist.
//! Each change is guarded on its own keys too: a new key must be absent (an assignment is
//! never overwritten by a re-creation), a key re-written must be exactly as read (which also
//! proves its lease still lives, so a lease that ended fails the guard rather than the whole
//! request), and a new assignment's member must still hold the lease it is created under.

use apportion_core::keys::{AssignmentKey, Prefix};
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
    let room = limit.saturating_sub(compares.len() + 2);
    for entry in plan.relies_on.iter().take(room) {
        compares.push(Compare::create_revision(
            prefix.assignment_key(&entry.key),
            CompareOp::Equal,
            entry.meta.create_revision,
        ));
    }
    let mut ops = Vec::new();
    for change in &plan.changes {
        // At most two compares per change.
        if compares.len() + 2 > limit || ops.len() + change.ops() > limit {
            break;
        }
        match change {
            Change::Add { key, lease } => {
                if *lease != 0 {
                    let member = prefix.member_key(&key.member);
                    compares.push(Compare::lease(member, CompareOp::Equal, *lease));
                }
                let key = prefix.assignment_key(key);
                compares.push(absent(&key));
                ops.push(put(key, Vec::new(), *lease));
            }
            Change::Remove(entry) => {
                ops.push(Op::Delete(KeyRange::key(prefix.assignment_key(&entry.key))));
            }
            Change::Reslot { from, to } => {
                let to = prefix.assignment_key(to);
                compares.push(as_read(prefix, from));
                compares.push(absent(&to));
                ops.push(Op::Delete(KeyRange::key(prefix.assignment_key(&from.key))));
                ops.push(put(to, encode(decoder, &from.value)?, from.meta.lease));
            }
            Change::RequestRelease(entry) => {
                compares.push(as_read(prefix, entry));
                let mut value = entry.value.clone();
                value.request_release();
                let value = encode(decoder, &value)?;
                let key = prefix.assignment_key(&entry.key);
                ops.push(put(key, value, entry.meta.lease));
            }
        }
    }
    Ok(ItemTxn { compares, ops })
}

/// The key does not exist.
fn absent(key: &str) -> Compare {
    Compare::version(key, CompareOp::Equal, 0)
}

/// The assignment is exactly as the view read it (so it exists, under the same lease).
fn as_read<A>(prefix: &Prefix, entry: &Entry<AssignmentKey, A>) -> Compare {
    let key = prefix.assignment_key(&entry.key);
    Compare::mod_revision(key, CompareOp::Equal, entry.meta.mod_revision)
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
