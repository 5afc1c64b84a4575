//! The one place that turns what the store holds under a prefix into a [`JsonState`].
//!
//! `status`, `items list`, `members list` and `drain --wait` all look at the cluster through
//! a [`View`]: the state the allocator would see, the revision it was read at, and the
//! key-values that did not decode. A view comes either from one read of the prefix
//! ([`View::read`]) or from a live [`KeySpace`] ([`View::of_keyspace`], for the commands that
//! follow changes); both decode each key-value with [`decode`], so they agree on what a bad
//! value is.

use apportion_core::keys::Prefix;
use apportion_core::state::{decode_entry, DecodedBy, EntryError, JsonState, Meta, Snapshot};
use apportion_core::values::{JsonDecoder, JsonItem, JsonMember, JsonStatus};
use apportion_store::{KeyRange, KeySpace, KeyValue, Store};

use crate::error::{CliError, Result};

/// One decoded key-value under the prefix (an item, a member or an assignment).
pub type Decoded = DecodedBy<JsonDecoder>;

/// The raw input of a [`JsonState`].
type JsonSnapshot = Snapshot<JsonItem, JsonMember, JsonStatus>;

/// A key under the prefix whose key or value could not be decoded, and why. Such keys are
/// left out of the state and reported, as the runtime does: never a crash, never deleted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    /// The key, as text.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Rejected {
    /// Keys are shown as text; the rare bytes that are not UTF-8 become U+FFFD.
    fn new(key: &[u8], reason: String) -> Self {
        Rejected {
            key: String::from_utf8_lossy(key).into_owned(),
            reason,
        }
    }
}

/// The cluster as of one revision.
#[derive(Debug)]
pub struct View {
    /// Items, members and assignments, as the allocator sees them.
    pub state: JsonState,
    /// The store revision the view reflects.
    pub revision: i64,
    /// Keys left out because they did not decode, in key order.
    pub rejected: Vec<Rejected>,
}

/// Decodes one key-value under `prefix`. The reason of a bad value leaves out the key,
/// which callers show next to it; a key that is not an item, member or assignment key is
/// rejected with the parser's reason.
fn decode(prefix: &Prefix, kv: &KeyValue) -> Result<Decoded, String> {
    decode_entry(prefix, &JsonDecoder, &kv.key, &kv.value).map_err(|e| match e {
        EntryError::Key(e) => e.to_string(),
        EntryError::Value { source, .. } => source.to_string(),
        EntryError::Replication { replication, .. } => format!(
            "replication {replication} is above the maximum of {}",
            apportion_core::values::MAX_REPLICATION
        ),
    })
}

/// The store's bookkeeping of a key read from the store, in core's terms.
fn meta(kv: &KeyValue) -> Meta {
    Meta {
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
    }
}

/// The store's bookkeeping of a key mirrored by a [`KeySpace`], in core's terms.
fn entry_meta(entry: &apportion_store::Entry<Decoded>) -> Meta {
    Meta {
        create_revision: entry.create_revision,
        mod_revision: entry.mod_revision,
        version: entry.version,
        lease: entry.lease,
    }
}

impl View {
    /// Reads everything under the prefix (one consistent read, in pages) and builds the view.
    pub async fn read<S: Store>(store: &S, prefix: &Prefix) -> Result<View> {
        let read = store.range_all(KeyRange::prefix(prefix.root_dir())).await?;
        let mut snapshot = Snapshot::default();
        let mut rejected = Vec::new();
        for kv in &read.kvs {
            match decode(prefix, kv) {
                Ok(decoded) => snapshot.push(decoded, meta(kv)),
                Err(reason) => rejected.push(Rejected::new(&kv.key, reason)),
            }
        }
        View::build(snapshot, read.revision, rejected)
    }

    /// Builds the view from a live mirror's current snapshot (see [`follow`]).
    pub fn of_keyspace(space: &KeySpace<Decoded>) -> Result<View> {
        let (snapshot, revision, rejected) = space.read(|mirror| {
            let mut snapshot = Snapshot::default();
            for entry in mirror.entries().values() {
                snapshot.push(entry.value.clone(), entry_meta(entry));
            }
            let rejected = mirror
                .rejected()
                .iter()
                .map(|(key, reason)| Rejected::new(key, reason.clone()))
                .collect();
            (snapshot, mirror.revision(), rejected)
        });
        View::build(snapshot, revision, rejected)
    }

    /// The common end of both constructors.
    fn build(snapshot: JsonSnapshot, revision: i64, rejected: Vec<Rejected>) -> Result<View> {
        // A store read never lists a key twice, so this only fails on a bug.
        let state = JsonState::build(snapshot, None).map_err(CliError::failed)?;
        Ok(View {
            state,
            revision,
            rejected,
        })
    }
}

/// Starts a live mirror of everything under the prefix, for the commands that follow the
/// cluster as it changes (`status --watch`, `drain --wait`).
pub async fn follow<S: Store>(store: S, prefix: &Prefix) -> Result<KeySpace<Decoded>> {
    let decode_prefix = prefix.clone();
    let space = KeySpace::start(
        store,
        prefix.root_dir(),
        move |kv: &KeyValue| decode(&decode_prefix, kv).map(Some),
        Default::default(),
    )
    .await?;
    Ok(space)
}
