//! `MemoryStore`: etcd's data model in the process.
//!
//! A multi-version store behind one mutex: the current keys in a `BTreeMap` (so prefix reads
//! are ordered), the history of events since the last compaction (watches replay it, then
//! follow live changes, with no gap because both happen under the lock), and leases whose
//! expiry is driven by tokio timers, so a test with paused time controls expiry exactly.
//!
//! The history is bounded: past [`DEFAULT_HISTORY_LIMIT`] changes (see
//! [`MemoryStore::with_history_limit`]) the oldest revisions are compacted away, as an etcd
//! with automatic compaction would, so a long-running process does not keep every write it
//! ever saw. A watch or read from before what is kept fails with `Compacted`, which the
//! runtime's key space answers by reading everything again.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};

use crate::error::StoreError;
use crate::lease::{self, KeepAlive, Renewer};
use crate::store::Store;
use crate::types::*;
use crate::validate::{self, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_TXN_OPS};
use crate::watch::Watch;
use crate::wire;

/// How many changes the history keeps by default: enough for any watch that is merely
/// behind (a few seconds of a busy cluster) to resume where it was, a few tens of
/// megabytes at most.
pub const DEFAULT_HISTORY_LIMIT: usize = 100_000;

/// An in-process store with etcd v3's semantics. Cloning gives another handle to the same
/// store over the same connection; it lives as long as any handle.
///
/// For fault injection, [`connect`](Self::connect) gives a handle with a connection of its
/// own, which [`set_reachable`](Self::set_reachable) can cut: calls then fail with
/// `Unavailable`, lease renewals are not acknowledged and watches go silent, as for a
/// process partitioned from etcd (and, like etcd watches re-opened after the partition,
/// they end with `Compacted` if what they missed was compacted meanwhile).
///
/// Like an etcd client, a handle refuses a response larger than its limit
/// ([`with_max_response_bytes`](Self::with_max_response_bytes), 4 MiB by default), so that
/// code which would meet that wall on etcd meets it in tests too.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
    link: Arc<Link>,
    max_response_bytes: usize,
}

/// One handle's connection to the store: whether it is up, as a watch channel so that
/// relays can wait for it to come back.
struct Link {
    up: tokio::sync::watch::Sender<bool>,
    /// How many times it was cut.
    cuts: AtomicU64,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            up: tokio::sync::watch::Sender::new(true),
            cuts: AtomicU64::new(0),
        }
    }
}

impl Link {
    fn check(&self) -> Result<()> {
        if *self.up.borrow() {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "the store is unreachable from this handle".into(),
            ))
        }
    }

    /// Forwards batches from `inner` to a new channel, holding them while the link is down.
    /// A client that was cut off watches again from the first revision it has not seen, as
    /// etcd clients do; if the store compacted that revision meanwhile, the watch ends with
    /// `Compacted`, as it would on etcd (and the watcher must reload).
    fn relay(
        self: &Arc<Self>,
        mut inner: mpsc::UnboundedReceiver<Result<WatchBatch>>,
        store: Weak<Shared>,
    ) -> (
        mpsc::UnboundedReceiver<Result<WatchBatch>>,
        tokio::task::JoinHandle<()>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut up = self.up.subscribe();
        let link = self.clone();
        let mut cuts_seen = link.cuts.load(Ordering::SeqCst);
        let task = tokio::spawn(async move {
            while let Some(batch) = inner.recv().await {
                if up.wait_for(|up| *up).await.is_err() {
                    return;
                }
                let cuts = link.cuts.load(Ordering::SeqCst);
                let was_cut = cuts != cuts_seen;
                cuts_seen = cuts;
                let batch = match (&batch, store.upgrade()) {
                    (Ok(b), Some(shared)) if was_cut => {
                        let first = b.events.first().map_or(b.revision, |e| e.kv.mod_revision);
                        let compacted = lock(&shared).compacted;
                        if first < compacted {
                            let _ = tx.send(Err(StoreError::Compacted {
                                requested: first,
                                compacted,
                            }));
                            return;
                        }
                        batch
                    }
                    _ => batch,
                };
                if tx.send(batch).is_err() {
                    return;
                }
            }
        });
        (rx, task)
    }
}

struct Shared {
    mvcc: Mutex<Mvcc>,
    max_txn_ops: usize,
}

struct Mvcc {
    revision: Revision,
    compacted: Revision,
    keys: BTreeMap<Vec<u8>, KeyValue>,
    history: VecDeque<Change>,
    /// The most changes `history` keeps (whole revisions are dropped, oldest first).
    history_limit: usize,
    leases: HashMap<LeaseId, LeaseEntry>,
    /// The id of the last lease granted (they count up, so are never 0).
    next_lease: i64,
    watchers: Vec<Watcher>,
}

/// One change in the history: the event watchers get, and the key as it was before,
/// which reads at an earlier revision need (watchers do not: see [`Event`]).
struct Change {
    event: Event,
    prev: Option<KeyValue>,
}

struct LeaseEntry {
    ttl_secs: i64,
    deadline: Instant,
    keys: BTreeSet<Vec<u8>>,
}

struct Watcher {
    range: KeyRange,
    tx: mpsc::UnboundedSender<Result<WatchBatch>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store at revision 1 (as a fresh etcd), with etcd's default txn op limit.
    pub fn new() -> Self {
        Self::with_max_txn_ops(DEFAULT_MAX_TXN_OPS)
    }

    /// An empty store that accepts at most `max_txn_ops` operations per transaction branch.
    pub fn with_max_txn_ops(max_txn_ops: usize) -> Self {
        MemoryStore {
            link: Arc::default(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            shared: Arc::new(Shared {
                mvcc: Mutex::new(Mvcc {
                    revision: 1,
                    compacted: 0,
                    keys: BTreeMap::new(),
                    history: VecDeque::new(),
                    history_limit: DEFAULT_HISTORY_LIMIT,
                    leases: HashMap::new(),
                    next_lease: 0x1000,
                    watchers: Vec::new(),
                }),
                max_txn_ops,
            }),
        }
    }

    /// Keeps at most `changes` changes of history (at least the newest revision's): older
    /// revisions are compacted away as new ones come.
    pub fn with_history_limit(self, changes: usize) -> Self {
        self.lock().history_limit = changes;
        self
    }

    /// Another handle to the same store, over a connection of its own (with this handle's
    /// response limit).
    pub fn connect(&self) -> Self {
        MemoryStore {
            shared: self.shared.clone(),
            link: Arc::default(),
            max_response_bytes: self.max_response_bytes,
        }
    }

    /// Sets the largest response this handle (and its clones) accepts, in bytes as etcd
    /// would encode it; a read or transaction whose response is larger fails with
    /// `ResponseTooLarge` (a transaction's writes are made all the same, as on etcd, where
    /// the server commits before the client refuses the answer).
    pub fn with_max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Refuses a response carrying `kvs` if it is larger than this handle accepts.
    fn check_size<'a>(&self, kvs: impl IntoIterator<Item = &'a KeyValue>) -> Result<()> {
        let size = wire::kvs_len(kvs);
        if size > self.max_response_bytes {
            return Err(StoreError::ResponseTooLarge {
                size: size as u64,
                limit: self.max_response_bytes as u64,
            });
        }
        Ok(())
    }

    /// Cuts (`false`) or restores (`true`) this handle's connection, and that of every clone
    /// of it. Watches opened through it deliver nothing while it is cut, then resume (or end
    /// with `Compacted` if the revisions they held back were compacted meanwhile).
    pub fn set_reachable(&self, reachable: bool) {
        if !reachable {
            self.link.cuts.fetch_add(1, Ordering::SeqCst);
        }
        self.link.up.send_replace(reachable);
    }

    fn lock(&self) -> MutexGuard<'_, Mvcc> {
        lock(&self.shared)
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, Mvcc> {
    // A panic while holding the lock cannot leave the map half-written (every mutation
    // completes before unlocking), so a poisoned lock is still consistent.
    shared.mvcc.lock().unwrap_or_else(|e| e.into_inner())
}

impl Mvcc {
    /// The current keys of `range`, in key order.
    fn matching<'a>(&'a self, range: &'a KeyRange) -> impl Iterator<Item = &'a KeyValue> + 'a {
        self.current_from(range, range.bytes())
    }

    /// The current keys of `range` from `start` on, in key order.
    fn current_from<'a>(
        &'a self,
        range: &'a KeyRange,
        start: &[u8],
    ) -> impl Iterator<Item = &'a KeyValue> + 'a {
        self.keys
            .range::<[u8], _>((Bound::Included(start), Bound::Unbounded))
            .take_while(move |(k, _)| range.contains(k))
            .map(|(_, kv)| kv)
    }

    /// Refuses a read at a revision the store no longer has or has not reached.
    fn check_readable(&self, revision: Revision) -> Result<()> {
        if revision > 0 && revision < self.compacted {
            return Err(self.compacted_at(revision));
        }
        if revision > self.revision {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current: self.revision,
            });
        }
        Ok(())
    }

    /// The error of a call at `requested`, a revision the history no longer holds.
    fn compacted_at(&self, requested: Revision) -> StoreError {
        StoreError::Compacted {
            requested,
            compacted: self.compacted,
        }
    }

    /// The keys of `range` from `start` on, in key order, as they were at revision `at`
    /// (0: now). The writes after `at` are undone from the history: a key written since
    /// then reads as it was before the first of those writes (its previous value, or
    /// absent), which the caller has checked the history still holds.
    fn read_at<'a>(
        &'a self,
        range: &'a KeyRange,
        start: &'a [u8],
        at: Revision,
    ) -> impl Iterator<Item = &'a KeyValue> + 'a {
        let mut undone: BTreeMap<&[u8], Option<&KeyValue>> = BTreeMap::new();
        if at > 0 {
            let later = self.history.iter().rev();
            for change in later.take_while(|c| c.event.kv.mod_revision > at) {
                let key = change.event.kv.key.as_slice();
                if range.contains(key) && key >= start {
                    // Newest first, so the oldest write's previous value is kept.
                    undone.insert(key, change.prev.as_ref());
                }
            }
        }
        let mut past = undone
            .values()
            .filter_map(|kv| *kv)
            .collect::<Vec<_>>()
            .into_iter()
            .peekable();
        let mut current = self
            .current_from(range, start)
            .filter(move |kv| !undone.contains_key(kv.key.as_slice()))
            .peekable();
        std::iter::from_fn(move || match (current.peek(), past.peek()) {
            (Some(now), Some(then)) if then.key < now.key => past.next(),
            (Some(_), _) => current.next(),
            (None, _) => past.next(),
        })
    }

    fn apply(&mut self, txn: &Txn) -> Result<TxnResult> {
        let succeeded = txn
            .compares
            .iter()
            .all(|c| c.holds_for(self.matching(&c.range)));
        let ops = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        for op in ops {
            if let Op::Put { lease: Some(l), .. } = op {
                if !self.leases.contains_key(l) {
                    return Err(StoreError::LeaseNotFound(*l));
                }
            }
        }
        let next = self.revision + 1;
        let mut events = Vec::new();
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            results.push(match op {
                Op::Put { key, value, lease } => {
                    events.push(self.put(key, value, *lease, next));
                    OpResult::Put
                }
                Op::Delete(range) => {
                    let keys: Vec<Vec<u8>> =
                        self.matching(range).map(|kv| kv.key.clone()).collect();
                    let deleted = keys.len() as i64;
                    events.extend(keys.iter().map(|k| self.remove(k, next)));
                    OpResult::Delete { deleted }
                }
                Op::Range(range) => OpResult::Range(self.matching(range).cloned().collect()),
            });
        }
        self.commit(events);
        Ok(TxnResult {
            succeeded,
            revision: self.revision,
            results,
        })
    }

    fn put(&mut self, key: &[u8], value: &[u8], lease: Option<LeaseId>, rev: Revision) -> Change {
        let prev = self.keys.get(key).cloned();
        if let Some(p) = &prev {
            self.detach(p.lease, key);
        }
        if let Some(entry) = lease.and_then(|l| self.leases.get_mut(&l)) {
            entry.keys.insert(key.to_vec());
        }
        let kv = KeyValue {
            key: key.to_vec(),
            value: value.to_vec(),
            create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
            mod_revision: rev,
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            lease,
        };
        self.keys.insert(key.to_vec(), kv.clone());
        Change {
            event: Event {
                kind: EventKind::Put,
                kv,
            },
            prev,
        }
    }

    fn remove(&mut self, key: &[u8], rev: Revision) -> Change {
        let prev = self.keys.remove(key);
        if let Some(p) = &prev {
            self.detach(p.lease, key);
        }
        Change {
            event: Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key: key.to_vec(),
                    mod_revision: rev,
                    ..KeyValue::default()
                },
            },
            prev,
        }
    }

    fn detach(&mut self, lease: Option<LeaseId>, key: &[u8]) {
        if let Some(entry) = lease.and_then(|l| self.leases.get_mut(&l)) {
            entry.keys.remove(key);
        }
    }

    /// Records the events of one revision (if any), and hands them to the watchers.
    fn commit(&mut self, changes: Vec<Change>) {
        let Some(first) = changes.first().map(|c| &c.event) else {
            return;
        };
        self.revision = first.kv.mod_revision;
        let revision = self.revision;
        self.watchers.retain(|w| {
            let mine: Vec<Event> = changes
                .iter()
                .map(|c| &c.event)
                .filter(|e| w.range.contains(&e.kv.key))
                .cloned()
                .collect();
            let delivered = mine.is_empty()
                || w.tx
                    .send(Ok(WatchBatch {
                        events: mine,
                        revision,
                    }))
                    .is_ok();
            delivered && !w.tx.is_closed()
        });
        self.history.extend(changes);
        self.trim_history();
    }

    /// Compacts the oldest revisions away while the history holds more than its limit,
    /// keeping whole revisions (a watch resumes at a revision, never inside one).
    fn trim_history(&mut self) {
        let excess = self.history.len().saturating_sub(self.history_limit);
        if excess == 0 {
            return;
        }
        let Some(keep_from) = self.history.get(excess).map(|c| c.event.kv.mod_revision) else {
            return;
        };
        while self
            .history
            .front()
            .is_some_and(|c| c.event.kv.mod_revision < keep_from)
        {
            self.history.pop_front();
        }
        self.compacted = self.compacted.max(keep_from);
    }

    /// Ends a lease, deleting its keys in one revision.
    fn end_lease(&mut self, id: LeaseId) -> Result<()> {
        let entry = self
            .leases
            .remove(&id)
            .ok_or(StoreError::LeaseNotFound(id))?;
        let rev = self.revision + 1;
        let events = entry.keys.iter().map(|k| self.remove(k, rev)).collect();
        self.commit(events);
        Ok(())
    }
}

impl Store for MemoryStore {
    async fn range_with(&self, range: KeyRange, options: RangeOptions) -> Result<RangeResult> {
        self.link.check()?;
        validate::range_options(&range, &options)?;
        let mvcc = self.lock();
        mvcc.check_readable(options.revision)?;
        let start = options.from.as_deref().unwrap_or(range.bytes());
        let take = match options.limit {
            0 => usize::MAX,
            limit => limit + 1,
        };
        let mut kvs: Vec<KeyValue> = mvcc
            .read_at(&range, start, options.revision)
            .take(take)
            .cloned()
            .collect();
        let more = options.limit > 0 && kvs.len() > options.limit;
        if more {
            kvs.truncate(options.limit);
        }
        self.check_size(&kvs)?;
        Ok(RangeResult {
            kvs,
            revision: mvcc.revision,
            more,
        })
    }

    async fn revision(&self) -> Result<Revision> {
        self.link.check()?;
        Ok(self.lock().revision)
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        self.link.check()?;
        validate::txn(&txn, self.shared.max_txn_ops)?;
        let result = self.lock().apply(&txn)?;
        self.check_size(result.results.iter().flat_map(|r| match r {
            OpResult::Range(kvs) => kvs.as_slice(),
            _ => &[],
        }))?;
        Ok(result)
    }

    async fn watch(&self, range: KeyRange, from_revision: Revision) -> Result<Watch> {
        validate::range(&range)?;
        self.link.check()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut mvcc = self.lock();
        let from = if from_revision <= 0 {
            mvcc.revision + 1
        } else {
            from_revision
        };
        if from < mvcc.compacted {
            let _ = tx.send(Err(StoreError::Compacted {
                requested: from,
                compacted: mvcc.compacted,
            }));
            let (rx, relay) = self.link.relay(rx, Arc::downgrade(&self.shared));
            return Ok(Watch::new(rx, Some(relay), None));
        }
        let past: Vec<Event> = mvcc
            .history
            .iter()
            .map(|c| &c.event)
            .filter(|e| e.kv.mod_revision >= from && range.contains(&e.kv.key))
            .cloned()
            .collect();
        if let Some(last) = past.last() {
            let revision = last.kv.mod_revision;
            let _ = tx.send(Ok(WatchBatch {
                events: past,
                revision,
            }));
        }
        let progress_tx = tx.clone();
        mvcc.watchers.push(Watcher { range, tx });
        // Changes are handed to watchers under the lock, so a progress batch sent under the
        // lock comes after every change up to the revision it reports.
        let store = Arc::downgrade(&self.shared);
        let progress = move || {
            if let Some(shared) = store.upgrade() {
                let revision = lock(&shared).revision;
                let _ = progress_tx.send(Ok(WatchBatch {
                    events: Vec::new(),
                    revision,
                }));
            }
        };
        let (rx, relay) = self.link.relay(rx, Arc::downgrade(&self.shared));
        Ok(Watch::new(rx, Some(relay), Some(Box::new(progress))))
    }

    async fn grant(&self, ttl_secs: i64) -> Result<Lease> {
        self.link.check()?;
        validate::ttl(ttl_secs)?;
        let id = {
            let mut mvcc = self.lock();
            mvcc.next_lease += 1;
            let id = LeaseId::new(mvcc.next_lease).expect("lease ids count up from 0x1000");
            mvcc.leases.insert(
                id,
                LeaseEntry {
                    ttl_secs,
                    deadline: Instant::now() + Duration::from_secs(ttl_secs as u64),
                    keys: BTreeSet::new(),
                },
            );
            id
        };
        tokio::spawn(expire_when_due(Arc::downgrade(&self.shared), id));
        Ok(Lease { id, ttl_secs })
    }

    async fn keep_alive(&self, lease: Lease) -> Result<KeepAlive> {
        self.link.check()?;
        let renewer = MemoryRenewer {
            store: Arc::downgrade(&self.shared),
            link: self.link.clone(),
            id: lease.id,
        };
        let granted_at = Instant::now();
        renew(&self.shared, lease.id)?;
        Ok(lease::spawn(lease, granted_at, renewer))
    }

    async fn revoke(&self, lease: LeaseId) -> Result<()> {
        self.link.check()?;
        self.lock().end_lease(lease)
    }

    async fn time_to_live(&self, lease: LeaseId) -> Result<Option<Duration>> {
        self.link.check()?;
        let mvcc = self.lock();
        Ok(mvcc.leases.get(&lease).map(|entry| {
            // Whole seconds, cut down, as etcd reports it.
            let left = entry.deadline.saturating_duration_since(Instant::now());
            Duration::from_secs(left.as_secs())
        }))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.link.check()?;
        let mut mvcc = self.lock();
        mvcc.check_readable(revision)?;
        if revision <= mvcc.compacted {
            // Already compacted there: there is nothing left to discard.
            return Err(mvcc.compacted_at(revision));
        }
        mvcc.compacted = revision;
        while mvcc
            .history
            .front()
            .is_some_and(|c| c.event.kv.mod_revision < revision)
        {
            mvcc.history.pop_front();
        }
        Ok(())
    }

    fn max_txn_ops(&self) -> usize {
        self.shared.max_txn_ops
    }

    fn max_response_bytes(&self) -> usize {
        self.max_response_bytes
    }
}

/// Pushes a lease's deadline a TTL into the future; returns its TTL.
fn renew(shared: &Shared, id: LeaseId) -> Result<i64> {
    let mut mvcc = lock(shared);
    let entry = mvcc
        .leases
        .get_mut(&id)
        .ok_or(StoreError::LeaseNotFound(id))?;
    entry.deadline = Instant::now() + Duration::from_secs(entry.ttl_secs as u64);
    Ok(entry.ttl_secs)
}

/// Sleeps until the lease's deadline, re-reading it after each renewal, and ends the lease
/// once the deadline passes. Holds only a weak reference so a dropped store goes away.
async fn expire_when_due(store: Weak<Shared>, id: LeaseId) {
    loop {
        let deadline = {
            let Some(shared) = store.upgrade() else {
                return;
            };
            let mvcc = lock(&shared);
            match mvcc.leases.get(&id) {
                Some(entry) => entry.deadline,
                None => return,
            }
        };
        tokio::time::sleep_until(deadline).await;
        let Some(shared) = store.upgrade() else {
            return;
        };
        let mut mvcc = lock(&shared);
        match mvcc.leases.get(&id) {
            Some(entry) if entry.deadline <= Instant::now() => {
                let _ = mvcc.end_lease(id);
                return;
            }
            Some(_) => continue,
            None => return,
        }
    }
}

struct MemoryRenewer {
    store: Weak<Shared>,
    link: Arc<Link>,
    id: LeaseId,
}

impl Renewer for MemoryRenewer {
    async fn renew(&mut self) -> Result<i64> {
        self.link.check()?;
        match self.store.upgrade() {
            Some(shared) => renew(&shared, self.id),
            None => Err(StoreError::LeaseNotFound(self.id)),
        }
    }
}
