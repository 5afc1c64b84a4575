//! The `Store` trait: etcd v3's data model as the rest of apportion sees it.

use std::future::Future;

use crate::lease::KeepAlive;
use crate::paged;
use crate::types::{
    KeyRange, Lease, LeaseId, Op, OpResult, RangeOptions, RangeResult, Result, Revision, Txn,
};
use crate::watch::Watch;

/// A key-value store with etcd v3's semantics: a single revision counter advanced by each
/// write transaction, keys carrying create/mod revisions and versions, watches that replay
/// history from a revision, leases whose end deletes their keys, and guarded transactions.
///
/// Handles are cheap to clone and share one underlying store (or connection).
pub trait Store: Clone + Send + Sync + 'static {
    /// Reads the keys of `range` as etcd's Range does, sorted by key: at most
    /// `options.limit` of them (saying whether there are `more`), from `options.from` on, as
    /// of `options.revision`. A response larger than the client accepts fails with
    /// `ResponseTooLarge`; a read of a range that may be large goes through
    /// [`range_all`](Store::range_all), which pages.
    fn range_with(
        &self,
        range: KeyRange,
        options: RangeOptions,
    ) -> impl Future<Output = Result<RangeResult>> + Send;

    /// Reads a key, or every key under a prefix in one response, at the current revision.
    /// For one key or a prefix known to be small; a whole prefix that may be large is read
    /// with [`range_all`](Store::range_all).
    fn range(&self, range: KeyRange) -> impl Future<Output = Result<RangeResult>> + Send {
        self.range_with(range, RangeOptions::default())
    }

    /// Reads every key of `range`, page by page, as one consistent snapshot: every page is
    /// read at the first page's revision, which the result reports. No response is larger
    /// than the client accepts, however much the range holds. If that revision is compacted
    /// between two pages, the whole read starts over at the current revision.
    fn range_all(&self, range: KeyRange) -> impl Future<Output = Result<RangeResult>> + Send {
        paged::range_all(self, range)
    }

    /// The store's current revision: that of the last write transaction. A caller that
    /// compares a revision it was told (a round's, a watch's) with the store's as it is now
    /// asks this rather than reading some key for the revision in the answer.
    fn revision(&self) -> impl Future<Output = Result<Revision>> + Send;

    /// Runs a transaction atomically. Each branch may hold at most
    /// [`max_txn_ops`](Store::max_txn_ops) operations; a key may be written once per branch.
    fn txn(&self, txn: Txn) -> impl Future<Output = Result<crate::types::TxnResult>> + Send;

    /// Streams every change under `range` from `from_revision` on (0: from the next
    /// revision). Fails with `Compacted` when that revision's history is gone.
    fn watch(
        &self,
        range: KeyRange,
        from_revision: Revision,
    ) -> impl Future<Output = Result<Watch>> + Send;

    /// Grants a lease that lives `ttl_secs` seconds unless kept alive.
    fn grant(&self, ttl_secs: i64) -> impl Future<Output = Result<Lease>> + Send;

    /// Starts renewing a lease in the background until the returned handle is dropped.
    fn keep_alive(&self, lease: Lease) -> impl Future<Output = Result<KeepAlive>> + Send;

    /// Ends a lease now, deleting its keys in one revision.
    fn revoke(&self, lease: LeaseId) -> impl Future<Output = Result<()>> + Send;

    /// How long `lease` has left before the store may expire it (whole seconds, as etcd
    /// reports it), or `None` if it no longer exists. Tells a process that finds a key held
    /// by another lease how long that holder will last if it is not renewed.
    fn time_to_live(
        &self,
        lease: LeaseId,
    ) -> impl Future<Output = Result<Option<std::time::Duration>>> + Send;

    /// Discards the history before `revision`; watches from earlier revisions then fail.
    fn compact(&self, revision: Revision) -> impl Future<Output = Result<()>> + Send;

    /// The most operations one transaction branch may hold.
    fn max_txn_ops(&self) -> usize;

    /// The largest response this handle accepts, in bytes as etcd encodes it; larger ones
    /// fail with `ResponseTooLarge`. Paged reads size their pages by it.
    fn max_response_bytes(&self) -> usize;

    /// Writes one key (attached to `lease` when given); returns the write's revision.
    fn put(
        &self,
        key: impl Into<Vec<u8>> + Send,
        value: impl Into<Vec<u8>> + Send,
        lease: Option<LeaseId>,
    ) -> impl Future<Output = Result<Revision>> + Send {
        let op = Op::Put {
            key: key.into(),
            value: value.into(),
            lease,
        };
        async move { Ok(self.txn(Txn::new().and_then([op])).await?.revision) }
    }

    /// Deletes a key or prefix; returns how many keys went and the store revision after.
    fn delete(&self, range: KeyRange) -> impl Future<Output = Result<(i64, Revision)>> + Send {
        async move {
            let result = self.txn(Txn::new().and_then([Op::Delete(range)])).await?;
            let deleted = match result.results.first() {
                Some(OpResult::Delete { deleted }) => *deleted,
                _ => 0,
            };
            Ok((deleted, result.revision))
        }
    }
}
