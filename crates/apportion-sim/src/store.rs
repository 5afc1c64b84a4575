//! `SimStore`: a member's connection to the `MemoryStore`, with two additions for the
//! simulation: it notes in a [`Journal`] which revisions the allocator wrote, and it can
//! carry a [`Tripwire`] that crashes its member right after the allocator's k-th write.
//!
//! The checker needs the first to tell a replica the leader deleted from one that went with
//! its member's lease or that its member released, and to know which view the leader
//! planned a write from (a freeze or throttle set after that view did not bind it); the schedule needs the second to crash a
//! leader in the middle of a round, between two of the round's transactions. Calls also
//! take time ([`Latency`]), so that what a member read can change before what it writes
//! arrives, as on a network.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use crate::rng::Rng;
use apportion::store::{
    CompareOp, CompareTarget, KeepAlive, KeyRange, Lease, LeaseId, MemoryStore, RangeOptions,
    RangeResult, Revision, Store, StoreError, Txn, TxnResult, Watch,
};

/// What the members' connections saw of the allocator's writes.
#[derive(Default)]
pub struct Journal {
    inner: Mutex<JournalInner>,
}

#[derive(Default)]
struct JournalInner {
    /// Revisions the allocator wrote, each with the revision of the view it planned from.
    allocator_revisions: BTreeMap<Revision, Revision>,
    allocator_txns: u64,
    reloads: u64,
}

impl Journal {
    /// If the allocator (some member's leader loop) wrote `revision`, the revision of the
    /// view it planned that write from.
    pub fn planned_from(&self, revision: Revision) -> Option<Revision> {
        lock(&self.inner)
            .allocator_revisions
            .get(&revision)
            .copied()
    }

    /// How many transactions allocators sent that reached the store.
    pub fn allocator_txns(&self) -> u64 {
        lock(&self.inner).allocator_txns
    }

    /// How many times a member's key space read the whole prefix again (after its watch
    /// reported a compaction).
    pub fn reloads(&self) -> u64 {
        lock(&self.inner).reloads
    }

    /// Counts one allocator transaction, planned from `view`, that reached the store.
    pub(crate) fn record(&self, view: Revision, result: &TxnResult) {
        let mut inner = lock(&self.inner);
        inner.allocator_txns += 1;
        if result.succeeded {
            inner.allocator_revisions.insert(result.revision, view);
        }
    }
}

/// Crashes a member after its allocator has sent `after` more transactions.
pub struct Tripwire {
    /// Transactions still allowed through before the crash (at least 1).
    pub after: u32,
    /// The crash: runs once, right after the last allowed transaction returns.
    pub fire: Box<dyn FnOnce() + Send>,
}

/// A member's own connection (see the module docs). Clones share the connection.
#[derive(Clone)]
pub struct SimStore {
    inner: MemoryStore,
    tap: Arc<Tap>,
}

struct Tap {
    /// The member's key: the allocator's transactions are the ones guarded on it first
    /// (the leader's fence, see `apportion`'s writer).
    member_key: Vec<u8>,
    journal: Arc<Journal>,
    tripwire: Mutex<Option<Tripwire>>,
    /// Reads of a whole prefix so far: the key space's first load, then its reloads.
    prefix_reads: AtomicU64,
    latency: Mutex<Latency>,
}

/// How long a connection's calls take: a random time up to a maximum, as a network and a
/// busy store would make them.
pub struct Latency {
    /// Draws each call's time.
    pub rng: Rng,
    /// The most a call takes, in milliseconds.
    pub max_ms: u64,
}

impl SimStore {
    /// A new connection to `store` for the member whose key is `member_key`.
    pub fn connect(
        store: &MemoryStore,
        member_key: String,
        journal: Arc<Journal>,
        latency: Latency,
    ) -> Self {
        SimStore {
            inner: store.connect(),
            tap: Arc::new(Tap {
                member_key: member_key.into_bytes(),
                journal,
                tripwire: Mutex::new(None),
                prefix_reads: AtomicU64::new(0),
                latency: Mutex::new(latency),
            }),
        }
    }

    /// Cuts or restores the connection (see [`MemoryStore::set_reachable`]).
    pub fn set_reachable(&self, reachable: bool) {
        self.inner.set_reachable(reachable);
    }

    /// Arms the tripwire, replacing any armed one.
    pub fn arm(&self, tripwire: Tripwire) {
        *lock(&self.tap.tripwire) = Some(tripwire);
    }

    /// Removes the tripwire; true if it was still armed (it never fired).
    pub fn disarm(&self) -> bool {
        lock(&self.tap.tripwire).take().is_some()
    }

    /// Waits as long as this call takes to reach the store.
    async fn travel(&self) {
        let delay = {
            let mut latency = lock(&self.tap.latency);
            let max = latency.max_ms;
            latency.rng.millis(0, max)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }

    /// Whether `txn` is one of the allocator's: guarded first on this member's own key's
    /// mod revision, which only the leader's fence is.
    fn is_allocator(&self, txn: &Txn) -> bool {
        txn.compares.first().is_some_and(|c| {
            c.range == KeyRange::Key(self.tap.member_key.clone())
                && matches!(c.target, CompareTarget::ModRevision(_))
        })
    }

    /// Counts one allocator transaction against the tripwire; fires it when due.
    fn step_tripwire(&self) {
        let fire = {
            let mut armed = lock(&self.tap.tripwire);
            match armed.as_mut() {
                Some(t) if t.after <= 1 => armed.take().map(|t| t.fire),
                Some(t) => {
                    t.after -= 1;
                    None
                }
                None => None,
            }
        };
        if let Some(fire) = fire {
            fire();
        }
    }
}

/// The view an allocator transaction was planned from: each item's "no new copy" guard
/// (see `apportion`'s writer) says no copy was created after it (`create_revision <
/// view + 1` over the item's copies). A transaction without one (none is written) counts
/// as planned from before anything.
fn planned_from(txn: &Txn) -> Revision {
    txn.compares
        .iter()
        .filter_map(|c| match (c.op, &c.target) {
            (CompareOp::Less, CompareTarget::CreateRevision(next)) => Some(next - 1),
            _ => None,
        })
        .min()
        .unwrap_or(0)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

type Result<T> = std::result::Result<T, StoreError>;

impl Store for SimStore {
    async fn range_with(&self, range: KeyRange, options: RangeOptions) -> Result<RangeResult> {
        // A read of a whole prefix starts with its first page.
        let whole_prefix = matches!(range, KeyRange::Prefix(_)) && options.from.is_none();
        self.travel().await;
        let result = self.inner.range_with(range, options).await;
        if whole_prefix && result.is_ok() && self.tap.prefix_reads.fetch_add(1, SeqCst) > 0 {
            lock(&self.tap.journal.inner).reloads += 1;
        }
        result
    }

    async fn revision(&self) -> Result<Revision> {
        self.travel().await;
        self.inner.revision().await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        let view = self.is_allocator(&txn).then(|| planned_from(&txn));
        self.travel().await;
        let result = self.inner.txn(txn).await;
        if let (Some(view), Ok(result)) = (view, &result) {
            self.tap.journal.record(view, result);
            self.step_tripwire();
        }
        result
    }

    async fn watch(&self, range: KeyRange, from_revision: Revision) -> Result<Watch> {
        self.inner.watch(range, from_revision).await
    }

    async fn grant(&self, ttl_secs: i64) -> Result<Lease> {
        self.inner.grant(ttl_secs).await
    }

    async fn keep_alive(&self, lease: Lease) -> Result<KeepAlive> {
        self.inner.keep_alive(lease).await
    }

    async fn revoke(&self, lease: LeaseId) -> Result<()> {
        self.travel().await;
        self.inner.revoke(lease).await
    }

    async fn time_to_live(&self, lease: LeaseId) -> Result<Option<std::time::Duration>> {
        self.travel().await;
        self.inner.time_to_live(lease).await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.inner.compact(revision).await
    }

    fn max_txn_ops(&self) -> usize {
        self.inner.max_txn_ops()
    }
    fn max_response_bytes(&self) -> usize {
        self.inner.max_response_bytes()
    }
}
