//! Turning planned changes into guarded transactions, batched to the store's op limit.
//!
//! Every transaction carries the leader's fence (its own member key unchanged since the view
//! was read, so a deposed leader's writes fail) and, per item, guards on exactly what the
//! item's plan depends on, so that a member writing its own status (marking a copy ready)
//! does not fail an unrelated change:
//! - the item is unchanged since the view (same key, same value);
//! - no assignment of the item was created since the view (a compare of create revisions
//!   over the item's assignment keys): a plan made from a stale view fails instead of
//!   adding a copy next to one another leader added, or a second owner of an exclusive item;
//! - the consistent copies a removal relies on are exactly as read: still there (a lease that
//!   ended deletes a key, which no compare over the other keys sees), under the same lease,
//!   and still consistent (a member that marks its copy not ready fails the removal).
//!
//! Each change is guarded on its own keys too: a key re-written or deleted must be exactly
//! as read (which also proves its lease still lives, that the value copied or changed is the
//! current one, and that a copy dropped as not consistent has not become consistent since),
//! and a new assignment's member must still hold the lease it is created under. A new key
//! needs no guard of its own: it was absent from the view, so if it exists now it was
//! created since, which the item's create-revision compare already refuses.
//!
//! Guards are what fills a transaction first (etcd limits compares and operations to the
//! same count, separately), so each is written once: the item's key by one compare, a
//! member's lease once per transaction however many of its copies the transaction adds.

use apportion_core::keys::{AssignmentKey, Prefix};
use apportion_core::planner::{Change, ItemChanges};
use apportion_core::state::Entry;
use apportion_core::values::{AssignmentValue, Decoder};
use apportion_store::{Compare, CompareOp, KeyRange, LeaseId, Op, Revision, Txn};

use crate::error::Error;

/// One item's changes as store operations, with the guards they need.
struct ItemTxn {
    compares: Vec<Compare>,
    /// The members the item's new copies go to, with the lease each must still hold:
    /// guarded once per transaction, not once per copy.
    leases: Vec<Compare>,
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
        let new_leases = |txn: &Txn| {
            let fresh = |lease: &&Compare| !txn.compares.contains(lease);
            item.leases
                .iter()
                .filter(fresh)
                .cloned()
                .collect::<Vec<_>>()
        };
        let leases = new_leases(&current);
        let fits = current.compares.len() + item.compares.len() + leases.len() <= limit
            && current.success.len() + item.ops.len() <= limit;
        let leases = if fits {
            leases
        } else {
            txns.push(std::mem::replace(
                &mut current,
                Txn::new().when([fence.clone()]),
            ));
            new_leases(&current)
        };
        current = current.when(item.compares).when(leases).and_then(item.ops);
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
    let mut compares = vec![Compare::create_revision(
        format!("{}{}#", prefix.assignments_dir(), plan.item),
        CompareOp::Less,
        unchanged_since,
    )
    .over_prefix()];
    if let Some(entry) = plan.entry {
        // Unchanged since the view: the same incarnation of the key (a re-created key has
        // a new mod revision) with the same value; a deleted key has none.
        let key = prefix.item_key(plan.item);
        let read = entry.meta.mod_revision;
        compares.push(Compare::mod_revision(key, CompareOp::Equal, read));
    }
    // The copies a removal relies on must be as read: there, and still consistent. As many
    // as fit, leaving room for a change.
    let room = limit.saturating_sub(compares.len() + 2);
    for entry in plan.relies_on.iter().take(room) {
        compares.push(as_read(prefix, entry));
    }
    let mut leases: Vec<Compare> = Vec::new();
    let mut ops = Vec::new();
    for change in &plan.changes {
        // At most one compare per change.
        if compares.len() + leases.len() + 1 > limit || ops.len() + change.ops() > limit {
            break;
        }
        match change {
            Change::Add { key, lease } => {
                if lease.is_some() {
                    let member = prefix.member_key(&key.member);
                    let holds = Compare::lease(member, CompareOp::Equal, *lease);
                    if !leases.contains(&holds) {
                        leases.push(holds);
                    }
                }
                ops.push(put(prefix.assignment_key(key), Vec::new(), *lease));
            }
            Change::Remove(entry) => {
                // As read: a copy dropped as not consistent may have become so since.
                compares.push(as_read(prefix, entry));
                ops.push(Op::Delete(KeyRange::key(prefix.assignment_key(&entry.key))));
            }
            Change::Reslot { from, to } => {
                let to = prefix.assignment_key(to);
                compares.push(as_read(prefix, from));
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
    Ok(ItemTxn {
        compares,
        leases,
        ops,
    })
}

/// The assignment is exactly as the view read it (so it exists, under the same lease).
fn as_read<A>(prefix: &Prefix, entry: &Entry<AssignmentKey, A>) -> Compare {
    let key = prefix.assignment_key(&entry.key);
    Compare::mod_revision(key, CompareOp::Equal, entry.meta.mod_revision)
}

fn put(key: String, value: Vec<u8>, lease: Option<LeaseId>) -> Op {
    Op::Put {
        key: key.into_bytes(),
        value,
        lease,
    }
}

fn encode<D: Decoder>(decoder: &D, value: &D::Assignment) -> Result<Vec<u8>, Error> {
    decoder.encode_assignment(value).map_err(|e| Error::Encode {
        what: "assignment status",
        reason: e.to_string(),
    })
}

/// A plan made from a view, written after something else changed the store: which changes
/// must make the write fail (a stale leader must not double-assign or drop the last
/// consistent copy), and which must not (a member's status write on a copy the plan does
/// not rely on).
#[cfg(test)]
mod tests {
    use std::future::Future;

    use apportion_core::planner::{plan, Desired, ReadyStatus};
    use apportion_core::values::JsonDecoder;
    use apportion_store::{MemoryStore, Store};

    use super::*;
    use crate::cluster::ClusterView;

    const P: &str = "/w";
    const MEMBERS: [&str; 3] = ["a#1", "b#1", "c#1"];
    const READY: &str = r#"{"ready":true}"#;

    /// Three members, item `x` with `replication` and `copies` as (member, slot, ready).
    async fn cluster(
        replication: u16,
        copies: &[(usize, u16, bool)],
    ) -> (MemoryStore, Vec<LeaseId>) {
        let store = MemoryStore::new();
        let mut leases = Vec::new();
        for member in MEMBERS {
            let lease = store.grant(60).await.unwrap().id;
            let value = r#"{"item_limit":10}"#;
            store
                .put(format!("{P}/members/{member}"), value, Some(lease))
                .await
                .unwrap();
            leases.push(lease);
        }
        let item = format!(r#"{{"replication":{replication}}}"#);
        store.put(format!("{P}/items/x"), item, None).await.unwrap();
        for &(member, slot, ready) in copies {
            let value = if ready { READY } else { "{}" };
            let key = assignment(member, slot);
            store.put(key, value, Some(leases[member])).await.unwrap();
        }
        (store, leases)
    }

    fn assignment(member: usize, slot: u16) -> String {
        format!("{P}/assign/x#{}#{slot:05}", MEMBERS[member])
    }

    /// Plans toward `wanted` (member indices) from a view of `store`, lets `meanwhile`
    /// change the store, then writes the plan: whether every transaction succeeded.
    async fn written_after(
        store: &MemoryStore,
        wanted: &[u32],
        meanwhile: impl Future<Output = ()>,
    ) -> bool {
        let view = ClusterView::start(store.clone(), P, JsonDecoder)
            .await
            .unwrap();
        let observed = view.current();
        let desired = Desired::from_lists([wanted.iter().copied()]);
        let plans = plan(&observed.state, &desired, &ReadyStatus);
        assert!(!plans.is_empty(), "nothing to write");
        // The fence: a member key no scenario touches.
        let fence = Compare::version(format!("{P}/members/c#1"), CompareOp::Greater, 0);
        let prefix = Prefix::new(P).unwrap();
        let txns =
            transactions(&prefix, &JsonDecoder, observed.revision, fence, &plans, 128).unwrap();
        meanwhile.await;
        let mut all = true;
        for txn in txns {
            all &= store.txn(txn).await.unwrap().succeeded;
        }
        all
    }

    /// Writes copy (member, slot) of `x` with `value` under `lease`: another writer's
    /// change between the view and the write.
    async fn write_copy(
        store: MemoryStore,
        (member, slot): (usize, u16),
        value: &str,
        lease: LeaseId,
    ) {
        let key = assignment(member, slot);
        store.put(key, value, Some(lease)).await.unwrap();
    }

    #[tokio::test]
    async fn an_add_fails_when_another_leader_added_a_copy_after_the_view() {
        let (store, leases) = cluster(1, &[]).await;
        let meanwhile = write_copy(store.clone(), (1, 0), "{}", leases[1]);
        assert!(!written_after(&store, &[0], meanwhile).await);
    }

    #[tokio::test]
    async fn a_removal_fails_when_the_copy_it_relies_on_is_no_longer_ready() {
        let (store, leases) = cluster(1, &[(0, 0, true), (1, 1, true)]).await;
        let meanwhile = write_copy(store.clone(), (0, 0), "{}", leases[0]);
        assert!(!written_after(&store, &[0], meanwhile).await);
    }

    #[tokio::test]
    async fn a_removal_fails_when_the_copy_it_relies_on_lost_its_lease() {
        let (store, leases) = cluster(1, &[(0, 0, true), (1, 1, true)]).await;
        let other = store.clone();
        let meanwhile = async move { other.revoke(leases[0]).await.unwrap() };
        assert!(!written_after(&store, &[0], meanwhile).await);
    }

    #[tokio::test]
    async fn dropping_copies_that_were_not_ready_fails_when_one_became_ready() {
        let (store, leases) = cluster(1, &[(0, 0, false), (1, 1, false)]).await;
        let meanwhile = write_copy(store.clone(), (0, 0), READY, leases[0]);
        assert!(!written_after(&store, &[2], meanwhile).await);
    }

    #[tokio::test]
    async fn a_status_write_on_a_copy_the_plan_leaves_alone_does_not_fail_an_add() {
        let (store, leases) = cluster(2, &[(0, 0, false)]).await;
        let meanwhile = write_copy(store.clone(), (0, 0), READY, leases[0]);
        assert!(written_after(&store, &[0, 1], meanwhile).await);
    }

    #[tokio::test]
    async fn an_add_fails_when_the_very_same_copy_was_added_after_the_view() {
        let (store, leases) = cluster(1, &[]).await;
        let meanwhile = write_copy(store.clone(), (0, 0), READY, leases[0]);
        assert!(!written_after(&store, &[0], meanwhile).await);
        let copy = store.range(KeyRange::key(assignment(0, 0))).await.unwrap();
        assert_eq!(
            copy.kvs[0].value,
            READY.as_bytes(),
            "the copy was overwritten"
        );
    }

    #[tokio::test]
    async fn an_add_fails_when_the_item_was_rewritten_after_the_view() {
        let (store, _) = cluster(1, &[]).await;
        let other = store.clone();
        let meanwhile = async move {
            let item = format!("{P}/items/x");
            other.put(item, r#"{"replication":1}"#, None).await.unwrap();
        };
        assert!(!written_after(&store, &[0], meanwhile).await);
    }

    #[tokio::test]
    async fn an_add_fails_when_its_member_announced_itself_under_another_lease() {
        let (store, _) = cluster(1, &[]).await;
        let other = store.clone();
        let meanwhile = async move {
            let lease = other.grant(60).await.unwrap().id;
            let member = format!("{P}/members/{}", MEMBERS[0]);
            other
                .put(member, r#"{"item_limit":10}"#, Some(lease))
                .await
                .unwrap();
        };
        assert!(!written_after(&store, &[0], meanwhile).await);
    }

    /// Many items' adds to the same few members: each member's lease is guarded once per
    /// transaction, so a transaction carries as many adds as the op limit allows.
    #[tokio::test]
    async fn adds_fill_transactions_up_to_the_op_limit() {
        let store = MemoryStore::new();
        for member in MEMBERS {
            let lease = store.grant(60).await.unwrap().id;
            let key = format!("{P}/members/{member}");
            store
                .put(key, r#"{"item_limit":1000}"#, Some(lease))
                .await
                .unwrap();
        }
        for i in 0..200 {
            let key = format!("{P}/items/i{i:03}");
            store.put(key, r#"{"replication":3}"#, None).await.unwrap();
        }
        let view = ClusterView::start(store.clone(), P, JsonDecoder)
            .await
            .unwrap();
        let observed = view.current();
        let desired = Desired::from_lists((0..200).map(|_| [0u32, 1, 2]));
        let plans = plan(&observed.state, &desired, &ReadyStatus);
        let fence = Compare::version(format!("{P}/members/c#1"), CompareOp::Greater, 0);
        let prefix = Prefix::new(P).unwrap();
        let txns =
            transactions(&prefix, &JsonDecoder, observed.revision, fence, &plans, 128).unwrap();
        // 600 adds at 126 per transaction (42 whole items of 3 copies).
        assert_eq!(txns.len(), 5);
        for txn in &txns[..4] {
            assert_eq!(txn.success.len(), 126);
            // The fence, 3 leases, and 2 guards per item.
            assert_eq!(txn.compares.len(), 1 + 3 + 2 * 42);
        }
        for txn in txns {
            assert!(store.txn(txn).await.unwrap().succeeded);
        }
    }
}
