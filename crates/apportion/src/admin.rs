//! Editing a deployment from outside its members: the items to place, and the members'
//! drain flag and limit.
//!
//! Members place what the item keys ask for and serve what the leader assigns; something
//! else has to write the items, and sometimes drain a member that cannot be asked directly
//! (a stuck host, a process run by another team). [`Admin`] is that something: the
//! `apportion` command line, the demo, the benchmarks, the simulation and the tests all
//! write through it, so there is one way to build the keys and one rule for editing them.
//!
//! The rules, and why:
//! - An edit changes only the fields it names and keeps every other field of the value,
//!   those apportion does not know included: applications keep their own data beside
//!   ours (a database URL on an item, an address on a member).
//! - An edit is a compare-and-swap on the key's mod revision, retried on a conflict, so a
//!   concurrent write (another operator, or the member updating its own value) is never
//!   silently undone.
//! - An edit keeps the key's lease: a member key stays under its member's lease, so it
//!   still goes when the member does.
//! - A value that does not decode is left alone and reported, never replaced by a guess.
//!
//! The edits are of the default JSON values ([`JsonDecoder`]): a service with its own
//! [`Decoder`] writes its own values.
//!
//! A member owns its key, and takes in an edit made here once its view shows it: when it
//! later changes its own value (its limit, a drain it starts itself, a step-down as
//! leader) it starts from the edited value, so an operator's drain or limit stays. Only a
//! change of its own made in the moment before it sees the edit (or one held back by its
//! fence) can still write over it; an edit here is safe to repeat. Where the application
//! can be asked, drain or re-limit a member through its own
//! [`MemberHandle`](crate::MemberHandle); these edits are for when it cannot.

mod error;
mod guarded;

use apportion_core::keys::{ItemId, MemberId, Prefix};
use apportion_core::settings::ClusterSettings;
use apportion_core::values::{
    Decoder, JsonDecoder, JsonError, JsonItem, JsonMember, MAX_REPLICATION,
};
use apportion_store::{Compare, CompareOp, KeyRange, Op, Store, Txn};

pub use error::AdminError;
use guarded::update;

use crate::cluster::{ClusterView, Observed};

/// Edits the deployment under one prefix of a store; see the module documentation. Cheap to
/// clone (a store handle and a prefix).
#[derive(Clone)]
pub struct Admin<S: Store> {
    store: S,
    prefix: Prefix,
}

/// What an edit found and what it left: `before` is `None` when the key did not exist (only
/// items are created by an edit). When the two are equal, nothing was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit<V> {
    /// The value read before the edit, if the key existed.
    pub before: Option<V>,
    /// The value the key holds after the edit.
    pub after: V,
}

impl<V: PartialEq> Edit<V> {
    /// Whether the edit wrote anything (a key created or a value changed).
    pub fn changed(&self) -> bool {
        self.before.as_ref() != Some(&self.after)
    }
}

impl<S: Store> Admin<S> {
    /// Edits the deployment under `prefix` in `store`.
    pub fn new(store: S, prefix: Prefix) -> Self {
        Admin { store, prefix }
    }

    /// The prefix edited.
    pub fn prefix(&self) -> &Prefix {
        &self.prefix
    }

    /// The cluster as of now, from one consistent read: what [`ClusterView::read`] sees
    /// (the same decoding, the same keys rejected).
    pub async fn read(&self) -> Result<Observed<JsonDecoder>, crate::Error> {
        ClusterView::read(&self.store, self.prefix.as_str(), JsonDecoder).await
    }

    /// Creates `item` with `replication` copies, or sets the replication of the existing
    /// item, and its exclusivity when `exclusive` names it (`None` keeps it; a new item is
    /// then not exclusive). Every other field of the value is kept. Refused: a replication
    /// above [`MAX_REPLICATION`] (the members would skip the item), an existing value that
    /// does not decode, and a replication above 1 for an item that is (or is made)
    /// exclusive. The cluster would place one copy of such an item anyway; refusing says
    /// so to whoever raised the replication of an item without knowing it is exclusive,
    /// which an edit that keeps what it does not name makes easy.
    pub async fn put_item(
        &self,
        item: &ItemId,
        replication: u16,
        exclusive: Option<bool>,
    ) -> Result<Edit<JsonItem>, AdminError> {
        let key = self.prefix.item_key(item);
        update(&self.store, &key, |current| {
            let before = current
                .map(|bytes| JsonDecoder.decode_item(bytes))
                .transpose()
                .map_err(|source| undecodable(&key, source))?;
            let mut after = before.clone().unwrap_or_default();
            after.replication = replication;
            after.exclusive = exclusive.unwrap_or(after.exclusive);
            check_replication(item, &key, &after)?;
            if after.exclusive && replication > 1 {
                return Err(AdminError::ExclusiveReplication {
                    item: item.clone(),
                    key: key.clone(),
                    replication,
                });
            }
            written(&key, Edit { before, after }, |v| JsonDecoder.encode_item(v))
        })
        .await
    }

    /// Writes many whole item values, as many per transaction as the store allows: loading
    /// a deployment one guarded edit per item would take a round trip (two, with the read)
    /// per item. Each value replaces whatever the key held, fields and all; use
    /// [`put_item`](Admin::put_item) to edit an item that may carry fields of its own. The
    /// values are written as given, both fields named: only one the members would skip (a
    /// replication above [`MAX_REPLICATION`]) is refused, and then nothing is written.
    pub async fn put_items(
        &self,
        items: impl IntoIterator<Item = (ItemId, JsonItem)>,
    ) -> Result<(), AdminError> {
        let puts = items
            .into_iter()
            .map(|(item, value)| {
                let key = self.prefix.item_key(&item);
                check_replication(&item, &key, &value)?;
                let bytes = encode(&key, JsonDecoder.encode_item(&value))?;
                Ok(Op::put(key, bytes))
            })
            .collect::<Result<Vec<Op>, AdminError>>()?;
        for batch in puts.chunks(self.store.max_txn_ops()) {
            self.store.txn(Txn::new().and_then(batch.to_vec())).await?;
        }
        Ok(())
    }

    /// Deletes `item`; its copies are then removed by the leader. Refused when the item does
    /// not exist, so that a mistyped id is not taken for a removal that happened.
    pub async fn remove_item(&self, item: &ItemId) -> Result<(), AdminError> {
        let key = self.prefix.item_key(item);
        let txn = Txn::new()
            .when([Compare::version(key.as_str(), CompareOp::Greater, 0)])
            .and_then([Op::Delete(KeyRange::key(key.as_str()))]);
        if self.store.txn(txn).await?.succeeded {
            Ok(())
        } else {
            Err(AdminError::ItemMissing {
                item: item.clone(),
                key,
            })
        }
    }

    /// Marks `member` exiting: the leader stops counting its capacity and moves its copies
    /// away, and the member is told it is drained once it holds nothing. A member already
    /// exiting is left as it is.
    pub async fn drain(&self, member: &MemberId) -> Result<Edit<JsonMember>, AdminError> {
        self.edit_member(member, |value| value.exiting = true).await
    }

    /// Clears `member`'s exiting mark: it takes copies again. A member not exiting is left
    /// as it is.
    pub async fn undrain(&self, member: &MemberId) -> Result<Edit<JsonMember>, AdminError> {
        self.edit_member(member, |value| value.exiting = false)
            .await
    }

    /// Sets how many copies `member` may hold (0: none; it can still lead). The leader moves
    /// copies away from a member over its new limit.
    pub async fn set_item_limit(
        &self,
        member: &MemberId,
        item_limit: u32,
    ) -> Result<Edit<JsonMember>, AdminError> {
        self.edit_member(member, |value| value.item_limit = item_limit)
            .await
    }

    /// The cluster settings as stored: the defaults when there are none. Refused when the
    /// stored value is not valid (the members then plan with the defaults).
    pub async fn settings(&self) -> Result<ClusterSettings, AdminError> {
        let key = self.prefix.settings_key();
        let read = self.store.range(KeyRange::key(key.as_str())).await?;
        read.kvs
            .first()
            .map(|kv| ClusterSettings::decode(&kv.value))
            .transpose()
            .map(Option::unwrap_or_default)
            .map_err(|source| AdminError::Settings { key, source })
    }

    /// Applies `change` to the cluster settings (the defaults when there are none), as a
    /// guarded edit like every other. Refused when the stored value or the result is not
    /// valid; nothing is written then, nor when the change changes nothing.
    pub async fn update_settings(
        &self,
        change: impl Fn(&mut ClusterSettings),
    ) -> Result<Edit<ClusterSettings>, AdminError> {
        let key = self.prefix.settings_key();
        let refused = |source| AdminError::Settings {
            key: key.clone(),
            source,
        };
        update(&self.store, &key, |current| {
            let before = current
                .map(ClusterSettings::decode)
                .transpose()
                .map_err(refused)?;
            let mut after = before.clone().unwrap_or_default();
            change(&mut after);
            after.validate().map_err(refused)?;
            let edit = Edit { before, after };
            let value = edit.changed().then(|| edit.after.encode());
            Ok((value, edit))
        })
        .await
    }

    /// Replaces the cluster settings with the defaults, whatever is stored: the way out when
    /// the stored value does not decode, since every other edit refuses to guess around it
    /// (the members keep planning with the last value they could read meanwhile).
    pub async fn reset_settings(&self) -> Result<(), AdminError> {
        let put = Op::put(
            self.prefix.settings_key(),
            ClusterSettings::default().encode(),
        );
        self.store.txn(Txn::new().and_then([put])).await?;
        Ok(())
    }

    /// Applies `change` to `member`'s value; refused when the member is not registered (an
    /// edit must not create a member key: one without the member's lease would never go)
    /// or its value does not decode.
    async fn edit_member(
        &self,
        member: &MemberId,
        change: impl Fn(&mut JsonMember),
    ) -> Result<Edit<JsonMember>, AdminError> {
        let key = self.prefix.member_key(member);
        update(&self.store, &key, |current| {
            let bytes = current.ok_or_else(|| AdminError::MemberMissing {
                member: member.clone(),
                key: key.clone(),
            })?;
            let before = JsonDecoder
                .decode_member(bytes)
                .map_err(|source| undecodable(&key, source))?;
            let mut after = before.clone();
            change(&mut after);
            let edit = Edit {
                before: Some(before),
                after,
            };
            written(&key, edit, |v| JsonDecoder.encode_member(v))
        })
        .await
    }
}

/// Refuses an item value the members would skip as bad.
fn check_replication(item: &ItemId, key: &str, value: &JsonItem) -> Result<(), AdminError> {
    if value.replication > MAX_REPLICATION {
        return Err(AdminError::TooManyReplicas {
            item: item.clone(),
            key: key.to_owned(),
            replication: value.replication,
        });
    }
    Ok(())
}

/// The error for a value read under `key` that does not decode.
fn undecodable(key: &str, source: JsonError) -> AdminError {
    AdminError::Undecodable {
        key: key.to_owned(),
        source,
    }
}

/// What an edit writes under `key`: the new value encoded, or nothing when it changes
/// nothing (a needless write would wake every member and the leader for no change).
fn written<V: PartialEq>(
    key: &str,
    edit: Edit<V>,
    encode_with: impl FnOnce(&V) -> Result<Vec<u8>, JsonError>,
) -> Result<(Option<Vec<u8>>, Edit<V>), AdminError> {
    let value = edit
        .changed()
        .then(|| encode(key, encode_with(&edit.after)))
        .transpose()?;
    Ok((value, edit))
}

/// An encoded value for `key`, or the error naming it.
fn encode(key: &str, encoded: Result<Vec<u8>, JsonError>) -> Result<Vec<u8>, AdminError> {
    encoded.map_err(|source| AdminError::Unencodable {
        key: key.to_owned(),
        source,
    })
}
