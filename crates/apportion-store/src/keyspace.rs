//! `KeySpace`: a local mirror of every key under a prefix, kept current by a watch.
//!
//! It loads the prefix with one consistent read (in pages, see [`Store::range_all`], so a
//! prefix larger than one response allows still loads), then follows a watch from the revision after it,
//! applying bursts of changes together (a short, configurable delay gathers them), so that
//! observers, which typically rebuild the allocator's `State`, run once per burst rather than
//! once per key. When the watch's start revision has been compacted it reloads from a fresh
//! read; when the watch breaks it re-opens it from the revision after the last one applied.
//!
//! Values are decoded as they arrive, by a function the caller gives. A value that does not
//! decode is skipped, logged and counted, and never removes anything: a key that held a good
//! value keeps it (the bad write is reported in [`Snapshot::rejected`]), so a garbled write
//! cannot make the allocator believe a member or an item is gone. The key's metadata does
//! follow the bad write, so that a guarded write over it (which repairs it) can succeed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backoff::Backoff;
use crate::error::StoreError;
use crate::store::Store;
use crate::types::{EventKind, KeyRange, KeyValue, LeaseId, RangeResult, Revision, WatchBatch};
use crate::watch::Watch;

/// The pause before the first new attempt to re-open the watch or reload, doubled after
/// each further failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// The longest pause between attempts to re-open the watch or reload.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How many times the last burst's application (observers included) the next burst is
/// gathered for, at least: the mirror then spends at most about a fifth of its time
/// applying, however large the prefix. On a big cluster under a storm of changes, a
/// rebuild per 20 ms burst would otherwise take all the CPU, and every view would lag.
const GATHER_PER_APPLY: u32 = 4;

/// Settings of a [`KeySpace`].
#[derive(Clone, Debug)]
pub struct KeySpaceOptions {
    /// After a change arrives, how long to gather further changes before applying them all.
    /// Zero applies every batch as it comes.
    pub batch_delay: Duration,
}

impl Default for KeySpaceOptions {
    fn default() -> Self {
        KeySpaceOptions {
            batch_delay: Duration::from_millis(20),
        }
    }
}

/// A mirrored key: its decoded value and the store's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<V> {
    /// The decoded value.
    pub value: V,
    /// Revision that created the key.
    pub create_revision: Revision,
    /// Revision of the key's last write, even one whose value did not decode: guards on
    /// the key must compare with what the store has, or they would fail for good.
    pub mod_revision: Revision,
    /// Version of the key, as the store counts it (bad writes included).
    pub version: i64,
    /// Lease the key is attached to, if any.
    pub lease: Option<LeaseId>,
}

/// The mirror as of one revision.
#[derive(Debug)]
pub struct Snapshot<V> {
    revision: Revision,
    entries: BTreeMap<Vec<u8>, Entry<V>>,
    rejected: BTreeMap<Vec<u8>, String>,
}

impl<V> Snapshot<V> {
    /// Every change under the prefix up to this revision is applied.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// The decoded keys, in key order.
    pub fn entries(&self) -> &BTreeMap<Vec<u8>, Entry<V>> {
        &self.entries
    }

    /// Keys whose current value did not decode, with the reason. Such a key keeps its last
    /// good value in [`entries`](Self::entries), if it ever had one.
    pub fn rejected(&self) -> &BTreeMap<Vec<u8>, String> {
        &self.rejected
    }

    /// The mirror of one read (of a whole prefix, see [`Store::range_all`]), decoded with
    /// `decode` as a [`KeySpace`] would load it. A tool that looks once rather than follows
    /// builds on this, so that it sees what a live mirror of the same keys sees; unlike the
    /// key space, it leaves reporting the rejected keys to its caller.
    pub fn of_read(
        read: &RangeResult,
        decode: impl Fn(&KeyValue) -> Result<Option<V>, String>,
    ) -> Self {
        let mut snapshot = Snapshot {
            revision: read.revision,
            entries: BTreeMap::new(),
            rejected: BTreeMap::new(),
        };
        for kv in &read.kvs {
            snapshot.put(kv, decode(kv));
        }
        snapshot
    }

    /// Applies a put of `kv`, whose value decoded as `decoded`. A rejected value keeps the
    /// key's last good one (see the module docs) under the store's new metadata.
    fn put(&mut self, kv: &KeyValue, decoded: Result<Option<V>, String>) {
        match decoded {
            Ok(Some(value)) => {
                self.rejected.remove(&kv.key);
                self.entries.insert(
                    kv.key.clone(),
                    Entry {
                        value,
                        create_revision: kv.create_revision,
                        mod_revision: kv.mod_revision,
                        version: kv.version,
                        lease: kv.lease,
                    },
                );
            }
            Ok(None) => {
                self.entries.remove(&kv.key);
                self.rejected.remove(&kv.key);
            }
            Err(reason) => {
                if let Some(entry) = self.entries.get_mut(&kv.key) {
                    entry.mod_revision = kv.mod_revision;
                    entry.version = kv.version;
                    entry.lease = kv.lease;
                }
                self.rejected.insert(kv.key.clone(), reason);
            }
        }
    }
}

/// Turns a raw key-value into the mirror's value: `Ok(None)` ignores the key (not of interest),
/// `Err(reason)` rejects it.
pub type Decode<V> = dyn Fn(&KeyValue) -> Result<Option<V>, String> + Send + Sync;

/// Called after each applied burst (and after a reload) with the new snapshot.
pub type Observer<V> = Box<dyn Fn(&Snapshot<V>) + Send + Sync>;

/// A live mirror of a prefix. Cloning shares it; the watch stops when the last clone is
/// dropped.
pub struct KeySpace<V> {
    shared: Arc<Shared<V>>,
    _follower: Arc<AbortOnDrop>,
}

impl<V> Clone for KeySpace<V> {
    fn clone(&self) -> Self {
        KeySpace {
            shared: self.shared.clone(),
            _follower: self._follower.clone(),
        }
    }
}

struct Shared<V> {
    prefix: Vec<u8>,
    decode: Box<Decode<V>>,
    snapshot: RwLock<Snapshot<V>>,
    revision: watch::Sender<Revision>,
    observers: Mutex<Vec<Observer<V>>>,
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<V: Send + Sync + 'static> KeySpace<V> {
    /// Loads every key under `prefix` and starts following changes. Fails only if the first
    /// read fails; afterwards, store failures are retried in the background.
    pub async fn start<S: Store>(
        store: S,
        prefix: impl Into<Vec<u8>>,
        decode: impl Fn(&KeyValue) -> Result<Option<V>, String> + Send + Sync + 'static,
        options: KeySpaceOptions,
    ) -> Result<Self, StoreError> {
        let prefix = prefix.into();
        let loaded = store.range_all(KeyRange::Prefix(prefix.clone())).await?;
        let (revision, _) = watch::channel(loaded.revision);
        let shared = Arc::new(Shared {
            prefix,
            decode: Box::new(decode),
            snapshot: RwLock::new(Snapshot {
                revision: loaded.revision,
                entries: BTreeMap::new(),
                rejected: BTreeMap::new(),
            }),
            revision,
            observers: Mutex::new(Vec::new()),
        });
        shared.replace(loaded.kvs, loaded.revision);
        let follower = tokio::spawn(follow(store, shared.clone(), options));
        Ok(KeySpace {
            shared,
            _follower: Arc::new(AbortOnDrop(follower)),
        })
    }
}

impl<V> KeySpace<V> {
    /// The revision up to which every change is applied.
    pub fn revision(&self) -> Revision {
        *self.shared.revision.borrow()
    }

    /// Runs `read` on the current snapshot (under a read lock: keep it short, no awaits).
    pub fn read<R>(&self, read: impl FnOnce(&Snapshot<V>) -> R) -> R {
        read(&self.shared.read())
    }

    /// Registers a function called at once with the current snapshot, then after each applied
    /// burst with the new one, so it misses nothing. It runs under the read lock (after a
    /// burst, on the follower task): keep it quick.
    pub fn observe(&self, observer: impl Fn(&Snapshot<V>) + Send + Sync + 'static) {
        // The same lock order as `publish` (snapshot, then observers); holding the snapshot
        // lock keeps bursts out until the observer is registered.
        let snapshot = self.shared.read();
        observer(&snapshot);
        lock(&self.shared.observers).push(Box::new(observer));
    }

    /// A receiver of the applied revision, notified after each burst.
    pub fn subscribe(&self) -> watch::Receiver<Revision> {
        self.shared.revision.subscribe()
    }

    /// Resolves once the mirror has applied a change at `revision` or later. The mirror's
    /// revision only ever comes from changes it applied, never from a progress report:
    /// etcd before 3.4.25 and 3.5.8 can report progress past events it has not yet sent
    /// (etcd issue 15220), which would let a reader believe it has seen what it has not. So
    /// a revision that changed nothing under the prefix is reached with the next change that
    /// does; callers that only need "something changed" wait with a timeout.
    pub async fn wait_for_revision(&self, revision: Revision) {
        let _ = self
            .subscribe()
            .wait_for(|applied| *applied >= revision)
            .await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl<V> Shared<V> {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Snapshot<V>> {
        self.snapshot.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Snapshot<V>> {
        self.snapshot.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the whole mirror with a fresh read.
    fn replace(&self, kvs: Vec<KeyValue>, revision: Revision) {
        {
            let mut snapshot = self.write();
            snapshot.entries.clear();
            snapshot.rejected.clear();
            for kv in &kvs {
                self.put(&mut snapshot, kv);
            }
            snapshot.revision = revision;
        }
        self.publish(revision);
    }

    /// Applies a burst of watch batches in order.
    fn apply(&self, batches: &[WatchBatch]) {
        let revision = {
            let mut snapshot = self.write();
            for event in batches.iter().flat_map(|b| &b.events) {
                match event.kind {
                    EventKind::Put => self.put(&mut snapshot, &event.kv),
                    EventKind::Delete => {
                        snapshot.entries.remove(&event.kv.key);
                        snapshot.rejected.remove(&event.kv.key);
                    }
                }
            }
            // Only batches with changes move the mirror (see `wait_for_revision`).
            let last = batches
                .iter()
                .filter(|b| !b.events.is_empty())
                .map(|b| b.revision)
                .max()
                .unwrap_or(0);
            snapshot.revision = snapshot.revision.max(last);
            snapshot.revision
        };
        self.publish(revision);
    }

    /// Decodes and applies a put, logging and counting a value that does not decode.
    fn put(&self, snapshot: &mut Snapshot<V>, kv: &KeyValue) {
        let decoded = (self.decode)(kv);
        if let Err(reason) = &decoded {
            tracing::warn!(
                key = %String::from_utf8_lossy(&kv.key),
                revision = kv.mod_revision,
                %reason,
                "skipping a value that does not decode"
            );
            metrics::counter!("apportion_keyspace_rejected_values_total").increment(1);
        }
        snapshot.put(kv, decoded);
    }

    /// Tells observers and waiters about the new snapshot.
    fn publish(&self, revision: Revision) {
        let snapshot = self.read();
        for observer in lock(&self.observers).iter() {
            observer(&snapshot);
        }
        drop(snapshot);
        self.revision.send_replace(revision);
    }
}

/// Follows the prefix for as long as the key space lives.
async fn follow<S: Store, V>(store: S, shared: Arc<Shared<V>>, options: KeySpaceOptions) {
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    loop {
        let from = shared.read().revision + 1;
        match store
            .watch(KeyRange::Prefix(shared.prefix.clone()), from)
            .await
        {
            Ok(mut watch) => match follow_watch(&mut watch, &shared, &options).await {
                Some(StoreError::Compacted { .. }) => {
                    reload(&store, &shared).await;
                    backoff.reset();
                    continue;
                }
                Some(e) => tracing::warn!(error = %e, "key space watch failed; re-opening it"),
                None => backoff.reset(),
            },
            Err(e) => tracing::warn!(error = %e, "cannot open the key space watch; retrying"),
        }
        backoff.wait().await;
    }
}

/// Applies a watch's batches until it ends; returns the error that ended it, if any.
async fn follow_watch<V>(
    watch: &mut Watch,
    shared: &Shared<V>,
    options: &KeySpaceOptions,
) -> Option<StoreError> {
    let mut last_apply = Duration::ZERO;
    loop {
        let mut burst = match watch.next().await {
            Some(Ok(batch)) => vec![batch],
            Some(Err(e)) => return Some(e),
            None => return None,
        };
        let mut ended = None;
        let gather = options.batch_delay.max(last_apply * GATHER_PER_APPLY);
        if !gather.is_zero() {
            let deadline = tokio::time::Instant::now() + gather;
            while let Ok(next) = tokio::time::timeout_at(deadline, watch.next()).await {
                match next {
                    Some(Ok(batch)) => burst.push(batch),
                    Some(Err(e)) => {
                        ended = Some(Some(e));
                        break;
                    }
                    None => {
                        ended = Some(None);
                        break;
                    }
                }
            }
        }
        // Tokio's clock: a simulation with paused time gathers exactly as configured.
        let started = tokio::time::Instant::now();
        shared.apply(&burst);
        last_apply = started.elapsed();
        if let Some(end) = ended {
            return end;
        }
    }
}

/// Re-reads the whole prefix after the watch's history was compacted away.
async fn reload<S: Store, V>(store: &S, shared: &Shared<V>) {
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    loop {
        match store
            .range_all(KeyRange::Prefix(shared.prefix.clone()))
            .await
        {
            Ok(loaded) => {
                tracing::info!(
                    revision = loaded.revision,
                    "key space reloaded after compaction"
                );
                shared.replace(loaded.kvs, loaded.revision);
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot reload the key space; retrying"),
        }
        backoff.wait().await;
    }
}
