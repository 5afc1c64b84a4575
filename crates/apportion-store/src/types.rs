//! The values that cross the `Store` interface, mirroring etcd v3's data model.

use crate::error::StoreError;

pub use apportion_core::lease::LeaseId;

/// A store revision: a counter that every write transaction advances by exactly one.
pub type Revision = i64;

/// A key with its value and the metadata etcd keeps for it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct KeyValue {
    /// The key bytes.
    pub key: Vec<u8>,
    /// The value bytes (empty in delete events).
    pub value: Vec<u8>,
    /// Revision of the write that created the key (since its last deletion).
    pub create_revision: Revision,
    /// Revision of the last write to the key; for a delete event, the delete's revision.
    pub mod_revision: Revision,
    /// Number of writes since creation (1 after the first put, 0 once deleted).
    pub version: i64,
    /// Lease the key is attached to, if any.
    pub lease: Option<LeaseId>,
}

/// Which keys an operation reads or deletes: one key, or every key starting with a prefix.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyRange {
    /// Exactly this key.
    Key(Vec<u8>),
    /// Every key that starts with these bytes (the empty prefix means every key).
    Prefix(Vec<u8>),
}

impl KeyRange {
    /// One key.
    pub fn key(key: impl Into<Vec<u8>>) -> Self {
        KeyRange::Key(key.into())
    }

    /// Every key under a prefix.
    pub fn prefix(prefix: impl Into<Vec<u8>>) -> Self {
        KeyRange::Prefix(prefix.into())
    }

    /// Whether `key` falls in this range.
    pub fn contains(&self, key: &[u8]) -> bool {
        match self {
            KeyRange::Key(k) => k.as_slice() == key,
            KeyRange::Prefix(p) => key.starts_with(p),
        }
    }

    /// The key or prefix bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            KeyRange::Key(k) | KeyRange::Prefix(k) => k,
        }
    }
}

/// How a read narrows its range, as etcd's Range request does: one page of a range that may
/// be too large for one response, at a chosen revision. The default reads the whole range at
/// the current revision.
///
/// A large range is read page by page: the first page at revision 0 (the current one), each
/// next page from the key after the last one read, at the revision the first page reported,
/// so that the pages together are one consistent snapshot ([`Store::range_all`] does this).
///
/// [`Store::range_all`]: crate::Store::range_all
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeOptions {
    /// The most keys to return; 0 means no limit (etcd's rule).
    pub limit: usize,
    /// Start at this key instead of the range's first one (the keys before it are skipped).
    /// It must lie in the range.
    pub from: Option<Vec<u8>>,
    /// Read the keys as they were at this revision; 0 means the current revision. A
    /// compacted revision fails with `Compacted`, one not yet reached with `FutureRevision`.
    pub revision: Revision,
}

/// The result of a read: the matching keys in key order and the store revision it saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeResult {
    /// Matching key-values, sorted by key.
    pub kvs: Vec<KeyValue>,
    /// The store's revision when it served the read. With [`RangeOptions::revision`] set,
    /// the keys are those of that revision and this is still the store's current one, as
    /// etcd reports it (the revision of a consistent paged read is its first page's).
    pub revision: Revision,
    /// Whether the range holds more keys after the last one returned: the read stopped at
    /// its [`RangeOptions::limit`].
    pub more: bool,
}

/// How a transaction compare relates the stored field to the given one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    /// Stored equals given.
    Equal,
    /// Stored differs from given.
    NotEqual,
    /// Stored is less than given.
    Less,
    /// Stored is greater than given.
    Greater,
}

/// The field of a key that a compare looks at, with the value to compare against.
///
/// A key that does not exist has version, create revision and mod revision 0 and no lease, and
/// any compare on its value fails (etcd's rule: there is no way to express "missing value").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompareTarget {
    /// The value bytes.
    Value(Vec<u8>),
    /// The version (0 when absent).
    Version(i64),
    /// The create revision (0 when absent).
    CreateRevision(Revision),
    /// The mod revision (0 when absent).
    ModRevision(Revision),
    /// The attached lease (`None` when none or absent). Ordered as etcd orders them, by
    /// id, with no lease as 0.
    Lease(Option<LeaseId>),
}

/// One guard of a transaction.
///
/// Over a prefix, the compare must hold for every key under it; with no key under it, it is
/// evaluated as for one absent key (so `mod_revision < R` over an empty prefix holds). This is
/// how a writer says "nothing under this prefix changed after revision R-1".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compare {
    /// The key, or the prefix of the keys, whose field is compared.
    pub range: KeyRange,
    /// The relation that must hold.
    pub op: CompareOp,
    /// The field and the value it is compared with.
    pub target: CompareTarget,
}

impl Compare {
    /// Compare the key's value.
    pub fn value(key: impl Into<Vec<u8>>, op: CompareOp, value: impl Into<Vec<u8>>) -> Self {
        Self::new(key, op, CompareTarget::Value(value.into()))
    }
    /// Compare the key's version.
    pub fn version(key: impl Into<Vec<u8>>, op: CompareOp, version: i64) -> Self {
        Self::new(key, op, CompareTarget::Version(version))
    }
    /// Compare the key's create revision.
    pub fn create_revision(key: impl Into<Vec<u8>>, op: CompareOp, rev: Revision) -> Self {
        Self::new(key, op, CompareTarget::CreateRevision(rev))
    }
    /// Compare the key's mod revision.
    pub fn mod_revision(key: impl Into<Vec<u8>>, op: CompareOp, rev: Revision) -> Self {
        Self::new(key, op, CompareTarget::ModRevision(rev))
    }
    /// Compare the key's lease.
    pub fn lease(key: impl Into<Vec<u8>>, op: CompareOp, lease: Option<LeaseId>) -> Self {
        Self::new(key, op, CompareTarget::Lease(lease))
    }
    /// The common constructor behind the named ones.
    pub fn new(key: impl Into<Vec<u8>>, op: CompareOp, target: CompareTarget) -> Self {
        Compare {
            range: KeyRange::Key(key.into()),
            op,
            target,
        }
    }

    /// The same compare applied to every key under the prefix formed by its key.
    pub fn over_prefix(self) -> Self {
        let prefix = self.range.bytes().to_vec();
        Compare {
            range: KeyRange::Prefix(prefix),
            ..self
        }
    }

    /// Evaluates the compare against the matching keys' current state (empty when absent).
    pub fn holds_for<'a>(&self, mut matching: impl Iterator<Item = &'a KeyValue>) -> bool {
        match matching.next() {
            None => self.holds(None),
            Some(first) => self.holds(Some(first)) && matching.all(|kv| self.holds(Some(kv))),
        }
    }

    /// Evaluates the compare against one key's current state (`None` when absent).
    pub fn holds(&self, current: Option<&KeyValue>) -> bool {
        use std::cmp::Ordering;
        let ordering: Ordering = match (&self.target, current) {
            (CompareTarget::Value(_), None) => return false,
            (CompareTarget::Value(v), Some(kv)) => kv.value.as_slice().cmp(v.as_slice()),
            (CompareTarget::Version(n), kv) => kv.map_or(0, |kv| kv.version).cmp(n),
            (CompareTarget::CreateRevision(n), kv) => kv.map_or(0, |kv| kv.create_revision).cmp(n),
            (CompareTarget::ModRevision(n), kv) => kv.map_or(0, |kv| kv.mod_revision).cmp(n),
            (CompareTarget::Lease(n), kv) => {
                let held = kv.and_then(|kv| kv.lease);
                LeaseId::to_wire(held).cmp(&LeaseId::to_wire(*n))
            }
        };
        match self.op {
            CompareOp::Equal => ordering == Ordering::Equal,
            CompareOp::NotEqual => ordering != Ordering::Equal,
            CompareOp::Less => ordering == Ordering::Less,
            CompareOp::Greater => ordering == Ordering::Greater,
        }
    }
}

/// One operation of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Write a value, attached to a lease when given (a put without lease detaches the key).
    Put {
        /// The key to write.
        key: Vec<u8>,
        /// The value to store.
        value: Vec<u8>,
        /// The lease to attach the key to.
        lease: Option<LeaseId>,
    },
    /// Delete a key or every key under a prefix.
    Delete(KeyRange),
    /// Read a key or prefix, seeing the transaction's earlier operations.
    Range(KeyRange),
}

impl Op {
    /// A put without lease.
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Op::Put {
            key: key.into(),
            value: value.into(),
            lease: None,
        }
    }

    /// A put attached to a lease.
    pub fn put_with_lease(
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        lease: LeaseId,
    ) -> Self {
        Op::Put {
            key: key.into(),
            value: value.into(),
            lease: Some(lease),
        }
    }
}

/// An atomic transaction: if every compare holds, `success` runs, else `failure`; either way
/// the whole transaction takes at most one revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Txn {
    /// Guards, all of which must hold for the success branch.
    pub compares: Vec<Compare>,
    /// Operations run when every compare holds.
    pub success: Vec<Op>,
    /// Operations run otherwise.
    pub failure: Vec<Op>,
}

impl Txn {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds guards.
    pub fn when(mut self, compares: impl IntoIterator<Item = Compare>) -> Self {
        self.compares.extend(compares);
        self
    }
    /// Adds operations to the success branch.
    pub fn and_then(mut self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.success.extend(ops);
        self
    }
    /// Adds operations to the failure branch.
    pub fn or_else(mut self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.failure.extend(ops);
        self
    }
}

/// The outcome of one operation of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// A put was applied.
    Put,
    /// A delete removed this many keys.
    Delete {
        /// Number of keys removed.
        deleted: i64,
    },
    /// A read returned these key-values, sorted by key.
    Range(Vec<KeyValue>),
}

/// The outcome of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnResult {
    /// Whether every compare held (so the success branch ran).
    pub succeeded: bool,
    /// The store revision after the transaction (unchanged when it wrote nothing).
    pub revision: Revision,
    /// One result per operation of the branch that ran.
    pub results: Vec<OpResult>,
}

/// Whether an event wrote or removed a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created or updated.
    Put,
    /// The key was deleted (explicitly, or because its lease ended).
    Delete,
}

/// One change seen by a watch.
///
/// It does not carry the key's previous value: etcd reads that once per event and
/// watcher (a range each; with ten members watching a busy prefix, nine in ten of the
/// reads etcd served) and sends it along, and nothing here needs it: a mirror knows what
/// it held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The key after the change; for a delete, the key with `mod_revision` set to the
    /// delete's revision and every other field zero, as etcd reports it.
    pub kv: KeyValue,
}

/// A group of events delivered together, in revision order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchBatch {
    /// The events, ordered by `kv.mod_revision` (events of one transaction share a revision).
    pub events: Vec<Event>,
    /// The store revision the watch had reached when it sent the batch (at least the last
    /// event's revision). A batch may have no events: it then only reports progress.
    pub revision: Revision,
}

/// A granted lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Its identifier, to attach keys and keep it alive.
    pub id: LeaseId,
    /// The time to live the store granted, in seconds (etcd may raise a very small request).
    pub ttl_secs: i64,
}

/// The result type of every store call.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
