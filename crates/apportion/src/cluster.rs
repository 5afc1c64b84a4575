//! The read-only picture of a cluster: how the key space under a prefix becomes the
//! [`State`] everyone reasons about.
//!
//! Every reader builds it the same way, so the leader, each member, `apportion status`
//! (once or live), `items list`, `members list`, `drain --wait`, the demo, the benchmark
//! and the simulation cannot disagree on what the same keys mean: which values decode, why
//! those that do not are [`Rejected`], and which assignments count. Assignments of an item
//! whose value this reader has never been able to decode are left out: the item is unknown
//! here, so nothing may be planned for it, and a value that does not decode must never be
//! the reason its replicas are removed (as they would be if they looked like the replicas
//! of an item that is gone). They are not load either; the item's key is among the
//! rejected ones, which is where an operator finds it.
//!
//! The picture comes either from a live mirror ([`ClusterView::start`], which publishes a
//! fresh [`Observed`] after every burst of changes, followed with [`Updates`]) or from one
//! consistent paged read ([`ClusterView::read`], for tools that look once); both decode
//! each key-value with the same function. A [`Member`](crate::Member) has such a live view
//! of its own ([`Member::state`](crate::Member::state),
//! [`Member::subscribe`](crate::Member::subscribe)).

use std::collections::BTreeSet;
use std::sync::Arc;

use apportion_core::keys::{ItemId, Key, MemberId, Prefix};
use apportion_core::state::{decode_entry, BuildError, Decoded, DecodedBy, Meta, State};
use apportion_core::values::Decoder;
use apportion_store::{KeyRange, KeySpace, KeySpaceOptions, KeyValue, Revision, Snapshot, Store};
use tokio::sync::watch;

/// The [`State`] of a decoder's values: what [`Observed::state`] holds.
pub type StateOf<D> =
    State<<D as Decoder>::Item, <D as Decoder>::Member, <D as Decoder>::Assignment>;

/// The mirror of the key space under a prefix, each key decoded by `decode_with`.
type Mirror<D> = Snapshot<DecodedBy<D>>;

/// A key under the prefix whose current value (or the key itself) does not decode, and why.
/// Such keys are left out of the state, never deleted, and reported, so that an operator
/// can find and fix them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    /// The key, as text; the rare bytes that are not UTF-8 become U+FFFD.
    pub key: String,
    /// What is wrong with it ([`EntryError::reason`]), without the key.
    ///
    /// [`EntryError::reason`]: apportion_core::state::EntryError::reason
    pub reason: String,
}

/// A [`State`] and the store revision it reflects.
pub struct Observed<D: Decoder> {
    /// Every change up to this revision is in `state`.
    pub revision: Revision,
    /// The cluster as of `revision`.
    pub state: StateOf<D>,
    /// The keys under the prefix that do not decode, in key order (its length is how
    /// many). A live view keeps the last good value of such a key in `state`, if it ever
    /// read one.
    pub rejected: Vec<Rejected>,
}

/// A live view of the cluster under a prefix: a mirror of its keys, kept up to date by a
/// watch, and the state derived from it after every burst of changes. Dropping it stops
/// the watch.
pub struct ClusterView<D: Decoder> {
    /// The mirror; dropping it stops its watch.
    keyspace: KeySpace<DecodedBy<D>>,
    states: watch::Receiver<Arc<Observed<D>>>,
}

impl<D: Decoder> ClusterView<D> {
    /// Loads the cluster under `prefix` and starts following it, as an observer (no member).
    pub async fn start<S: Store>(store: S, prefix: &str, decoder: D) -> Result<Self, crate::Error> {
        let prefix = Prefix::new(prefix)?;
        let options = KeySpaceOptions::default();
        Ok(Self::start_for(store, &prefix, Arc::new(decoder), None, options).await?)
    }

    /// The cluster under `prefix` as of now, from one consistent read (in pages): for a
    /// tool that looks once, and sees what a live view loading the same keys would.
    pub async fn read<S: Store>(
        store: &S,
        prefix: &str,
        decoder: D,
    ) -> Result<Observed<D>, crate::Error> {
        let prefix = Prefix::new(prefix)?;
        let read = store.range_all(KeyRange::prefix(prefix.root_dir())).await?;
        let mirror = Snapshot::of_read(&read, decode_with(&prefix, Arc::new(decoder)));
        Ok(build(&mirror, &prefix, None)?)
    }

    /// Loads the prefix and starts following it; `local` is the member it serves, if any.
    pub(crate) async fn start_for<S: Store>(
        store: S,
        prefix: &Prefix,
        decoder: Arc<D>,
        local: Option<MemberId>,
        options: KeySpaceOptions,
    ) -> Result<Self, apportion_store::StoreError> {
        let keyspace = KeySpace::start(
            store,
            prefix.root_dir(),
            decode_with(prefix, decoder),
            options,
        )
        .await?;
        let (tx, states) = watch::channel(Arc::new(Observed {
            revision: 0,
            state: State::build(Default::default(), None).expect("an empty state builds"),
            rejected: Vec::new(),
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

    /// Follows the view: every new state, one per burst of changes the view applies.
    pub fn subscribe(&self) -> Updates<D> {
        Updates {
            states: self.states.clone(),
        }
    }

    /// Resolves once the view reflects `revision`.
    pub async fn wait_for_revision(&self, revision: Revision) {
        self.keyspace.wait_for_revision(revision).await;
        let _ = self.subscribe().wait_for(|o| o.revision >= revision).await;
    }
}

/// The successive states of a live view ([`ClusterView::subscribe`],
/// [`Member::subscribe`](crate::Member::subscribe)). Views skip states: a burst of changes
/// is one new state, and a reader that is slow sees only the latest.
pub struct Updates<D: Decoder> {
    states: watch::Receiver<Arc<Observed<D>>>,
}

impl<D: Decoder> Clone for Updates<D> {
    fn clone(&self) -> Self {
        Updates {
            states: self.states.clone(),
        }
    }
}

impl<D: Decoder> Updates<D> {
    /// The latest state, which [`changed`](Self::changed) then counts as seen.
    pub fn current(&mut self) -> Arc<Observed<D>> {
        self.states.borrow_and_update().clone()
    }

    /// Waits for a state newer than the last one seen, and returns it; `None` once the
    /// view has stopped (it was dropped, or its member's session ended).
    pub async fn changed(&mut self) -> Option<Arc<Observed<D>>> {
        self.states.changed().await.ok()?;
        Some(self.current())
    }

    /// Waits for a state that satisfies `ready` (the current one, if it does), and
    /// returns it; `None` once the view has stopped.
    pub async fn wait_for(
        &mut self,
        mut ready: impl FnMut(&Observed<D>) -> bool,
    ) -> Option<Arc<Observed<D>>> {
        let state = self.states.wait_for(|o| ready(o)).await.ok()?;
        Some(state.clone())
    }
}

/// How every view decodes a key-value under `prefix` into its mirror: a key of one of the
/// three kinds with a value that decodes, or the [reason](Rejected::reason) it does not.
fn decode_with<D: Decoder>(
    prefix: &Prefix,
    decoder: Arc<D>,
) -> impl Fn(&KeyValue) -> Result<Option<DecodedBy<D>>, String> + Send + Sync + 'static {
    let prefix = prefix.clone();
    move |kv| {
        decode_entry(&prefix, &*decoder, &kv.key, &kv.value)
            .map(Some)
            .map_err(|e| e.reason())
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

/// The state of a mirror: the one function every view of the cluster is built with.
///
/// Assignments of an item whose key holds a value this view has never been able to read
/// are left out: the item is unknown here, so nothing may be planned for it, and a value
/// that does not decode must never be the reason its replicas are removed (as they would
/// be, if they looked like an item's that is gone). They are not load either, nor left
/// behind for the leader to remove: the leader does not see them. The item's key is
/// among the rejected ones, which is where an operator finds it.
fn build<D: Decoder>(
    mirror: &Mirror<D>,
    prefix: &Prefix,
    local: Option<&MemberId>,
) -> Result<Observed<D>, BuildError> {
    let unreadable_items: BTreeSet<ItemId> = mirror
        .rejected()
        .keys()
        .filter(|key| !mirror.entries().contains_key(*key))
        .filter_map(|key| match prefix.classify(key) {
            Ok(Key::Item(id)) => Some(id),
            _ => None,
        })
        .collect();
    let mut snapshot = apportion_core::state::Snapshot::default();
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
    let rejected = mirror
        .rejected()
        .iter()
        .map(|(key, reason)| Rejected {
            key: String::from_utf8_lossy(key).into_owned(),
            reason: reason.clone(),
        })
        .collect();
    Ok(Observed {
        revision: mirror.revision(),
        state: State::build(snapshot, local)?,
        rejected,
    })
}

#[cfg(test)]
mod tests {
    use apportion_core::keys::AssignmentKey;
    use apportion_core::values::{JsonDecoder, JsonStatus};
    use apportion_store::MemoryStore;

    use super::*;

    const P: &str = "/v";

    /// A member holding a replica of a readable item and one of an item whose value never
    /// decoded, and an item asking for too many replicas.
    async fn write(store: &MemoryStore) {
        for (key, value) in [
            ("members/eu#h1", r#"{"item_limit": 4}"#),
            ("items/good", r#"{"replication": 1}"#),
            ("assign/good#eu#h1#00000", r#"{"ready": true}"#),
            ("items/garbled", "not json"),
            ("assign/garbled#eu#h1#00000", r#"{"ready": true}"#),
            ("items/huge", r#"{"replication": 1000}"#),
        ] {
            store.put(format!("{P}/{key}"), value, None).await.unwrap();
        }
    }

    /// What a reader of the view acts on: the assignments that count, those left for the
    /// leader to remove, and the rejected keys.
    fn picture(observed: &Observed<JsonDecoder>) -> (Vec<String>, Vec<String>, Vec<Rejected>) {
        let keys = |list: &[apportion_core::state::Entry<AssignmentKey, JsonStatus>]| {
            list.iter().map(|a| a.key.to_string()).collect()
        };
        let state = &observed.state;
        (
            keys(state.assignments()),
            keys(state.dangling()),
            observed.rejected.clone(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn updates_follow_the_view_until_it_stops() {
        let store = MemoryStore::new();
        let view = ClusterView::start(store.clone(), P, JsonDecoder)
            .await
            .unwrap();
        let mut updates = view.subscribe();
        let first = updates.current();
        let item = r#"{"replication": 1}"#;
        let written = store.put(format!("{P}/items/a"), item, None).await.unwrap();
        let next = updates.changed().await.expect("the view is live");
        assert!(next.revision >= written && next.revision > first.revision);
        assert_eq!(next.state.items().len(), 1);
        let now = updates.wait_for(|o| o.revision >= written).await;
        assert_eq!(now.expect("the view is live").revision, next.revision);
        drop(view);
        assert!(updates.changed().await.is_none(), "the view stopped");
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_and_a_live_view_agree_and_leave_out_the_replicas_of_an_unreadable_item() {
        let store = MemoryStore::new();
        write(&store).await;
        let once = ClusterView::read(&store, P, JsonDecoder).await.unwrap();
        let view = ClusterView::start(store.clone(), P, JsonDecoder)
            .await
            .unwrap();
        let live = view.current();
        assert_eq!(once.revision, live.revision);
        assert_eq!(picture(&once), picture(&live));

        let (assignments, dangling, rejected) = picture(&once);
        assert_eq!(assignments, ["good#eu#h1#00000"]);
        // Nobody can read `garbled`: its replica is neither load nor left for the leader
        // to remove, as it would be if it looked like the replica of a deleted item.
        assert_eq!(dangling, Vec::<String>::new());
        let rejected: Vec<_> = rejected
            .iter()
            .map(|r| (r.key.as_str(), r.reason.as_str()))
            .collect();
        assert_eq!(rejected[0].0, "/v/items/garbled");
        assert!(
            rejected[0].1.starts_with("item value is not valid JSON"),
            "{rejected:?}"
        );
        assert_eq!(
            rejected[1],
            (
                "/v/items/huge",
                "replication 1000 is above the maximum of 255"
            )
        );
        assert_eq!(rejected.len(), 2);
    }
}
