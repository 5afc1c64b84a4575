//! A live view of the cluster: a `KeySpace` over the prefix whose every burst of changes is
//! turned into a fresh [`State`], published on a watch channel. Members use one; tools and
//! tests that only watch use one too.

use std::collections::BTreeSet;
use std::sync::Arc;

use apportion_core::keys::{ItemId, Key, MemberId, Prefix};
use apportion_core::state::{decode_entry, Decoded, DecodedBy, Meta, Snapshot, State};
use apportion_core::values::Decoder;
use apportion_store::{KeySpace, KeySpaceOptions, Revision, Store};
use tokio::sync::watch;

/// A decoder the runtime can use: its values are shared between tasks and copied into each
/// new `State`. Every decoder with `Clone + Send + Sync` values is one.
pub trait RuntimeDecoder:
    Decoder<Item: Clone + Send + Sync, Member: Clone + Send + Sync, Assignment: Clone + Send + Sync>
    + Send
    + Sync
    + 'static
{
}

impl<D> RuntimeDecoder for D where
    D: Decoder<
            Item: Clone + Send + Sync,
            Member: Clone + Send + Sync,
            Assignment: Clone + Send + Sync,
        > + Send
        + Sync
        + 'static
{
}

/// The `State` of a decoder's values.
pub type StateOf<D> =
    State<<D as Decoder>::Item, <D as Decoder>::Member, <D as Decoder>::Assignment>;

/// A `State` and the store revision it reflects.
pub struct Observed<D: Decoder> {
    /// Every change up to this revision is in `state`.
    pub revision: Revision,
    /// The cluster as of `revision`.
    pub state: StateOf<D>,
    /// How many keys under the prefix hold a value that does not decode (skipped).
    pub rejected: usize,
}

/// The live view: the mirror and the state derived from it. Dropping it stops the watch.
pub struct ClusterView<D: Decoder> {
    keyspace: KeySpace<DecodedBy<D>>,
    states: watch::Receiver<Arc<Observed<D>>>,
}

impl<D: RuntimeDecoder> ClusterView<D> {
    /// Loads the cluster under `prefix` and starts following it, as an observer (no member).
    pub async fn start<S: Store>(store: S, prefix: &str, decoder: D) -> Result<Self, crate::Error> {
        let prefix = Prefix::new(prefix)?;
        let options = KeySpaceOptions::default();
        Ok(Self::start_for(store, &prefix, Arc::new(decoder), None, options).await?)
    }

    /// Loads the prefix and starts following it; `local` is the member it serves, if any.
    pub(crate) async fn start_for<S: Store>(
        store: S,
        prefix: &Prefix,
        decoder: Arc<D>,
        local: Option<MemberId>,
        options: KeySpaceOptions,
    ) -> Result<Self, apportion_store::StoreError> {
        let decode_prefix = prefix.clone();
        let keyspace = KeySpace::start(
            store,
            prefix.root_dir(),
            move |kv| {
                decode_entry(&decode_prefix, &*decoder, &kv.key, &kv.value)
                    .map(Some)
                    .map_err(|e| e.to_string())
            },
            options,
        )
        .await?;
        let (tx, states) = watch::channel(Arc::new(Observed {
            revision: 0,
            state: State::build(Snapshot::default(), None).expect("an empty state builds"),
            rejected: 0,
        }));
        let prefix = prefix.clone();
        keyspace.observe(move |snapshot| {
            match off_the_workers(|| build::<D>(snapshot, &prefix, local.as_ref())) {
                Ok(observed) => {
                    tx.send_replace(Arc::new(observed));
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot build the state; keeping the last one")
                }
            }
        });
        Ok(ClusterView { keyspace, states })
    }
}

impl<D: Decoder> ClusterView<D> {
    /// The latest state.
    pub fn current(&self) -> Arc<Observed<D>> {
        self.states.borrow().clone()
    }

    /// A receiver notified of every new state.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Observed<D>>> {
        self.states.clone()
    }

    /// The keys under the prefix whose current value does not decode.
    pub(crate) fn rejected_keys(&self) -> BTreeSet<Vec<u8>> {
        self.keyspace
            .read(|snapshot| snapshot.rejected().keys().cloned().collect())
    }

    /// Resolves once the view reflects `revision`.
    pub async fn wait_for_revision(&self, revision: Revision) {
        self.keyspace.wait_for_revision(revision).await;
        let mut states = self.subscribe();
        let _ = states.wait_for(|o| o.revision >= revision).await;
    }
}

/// Runs CPU-heavy work (a state build takes milliseconds on a big cluster) so that it does
/// not hold up the other tasks of a multi-threaded runtime, lease renewals among them:
/// their worker hands them to another thread meanwhile. On a single-threaded runtime
/// (tests, the simulation) it just runs.
fn off_the_workers<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// The state of a mirror. Assignments of an item whose key holds a value this view has
/// never been able to read are left out: the item is unknown here, so nothing may be
/// planned for it, and a value that does not decode must never be the reason its
/// replicas are removed (as they would be, if they looked like an item's that is gone).
fn build<D: RuntimeDecoder>(
    mirror: &apportion_store::Snapshot<DecodedBy<D>>,
    prefix: &Prefix,
    local: Option<&MemberId>,
) -> Result<Observed<D>, apportion_core::state::BuildError> {
    let unreadable_items: BTreeSet<ItemId> = mirror
        .rejected()
        .keys()
        .filter(|key| !mirror.entries().contains_key(*key))
        .filter_map(|key| match prefix.classify(key) {
            Ok(Key::Item(id)) => Some(id),
            _ => None,
        })
        .collect();
    let mut snapshot = Snapshot::default();
    for entry in mirror.entries().values() {
        if let Decoded::Assignment(key, _) = &entry.value {
            if unreadable_items.contains(&key.item) {
                continue;
            }
        }
        let meta = Meta {
            create_revision: entry.create_revision,
            mod_revision: entry.mod_revision,
            version: entry.version,
            lease: entry.lease,
        };
        snapshot.push(entry.value.clone(), meta);
    }
    Ok(Observed {
        revision: mirror.revision(),
        state: State::build(snapshot, local)?,
        rejected: mirror.rejected().len(),
    })
}
