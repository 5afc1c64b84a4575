//! Why an edit of the deployment was refused or could not be made.

use apportion_core::keys::{ItemId, MemberId};
use apportion_core::settings::SettingsError;
use apportion_core::values::{JsonError, MAX_REPLICATION};
use apportion_store::StoreError;

/// Why an [`Admin`](super::Admin) call failed. Every variant about a key names it, so that an
/// operator can look at (or fix) exactly that key. After any error but [`Store`] nothing was
/// written. After a [`Store`] error a write may or may not have been applied (the store can
/// commit it and then lose the connection before answering), and a
/// [`put_items`](super::Admin::put_items) may have written some of its transactions: read
/// the keys again before deciding what to redo.
///
/// [`Store`]: AdminError::Store
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The store refused or could not be reached.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The item to remove does not exist.
    #[error("item `{item}` does not exist (no key `{key}`)")]
    ItemMissing {
        /// The item.
        item: ItemId,
        /// Its key.
        key: String,
    },
    /// The member to edit is not registered: it is not running (a member key lives as long
    /// as its member's lease), or the id is wrong.
    #[error("member `{member}` is not registered (no key `{key}`)")]
    MemberMissing {
        /// The member.
        member: MemberId,
        /// Its key.
        key: String,
    },
    /// The value under the key does not decode, so it is left alone rather than replaced by
    /// a guess: whoever wrote it may want it back, and an edit that kept none of its fields
    /// would lose them silently.
    #[error("the value under `{key}` does not decode: {source}")]
    Undecodable {
        /// The key.
        key: String,
        /// What is wrong with the value.
        source: JsonError,
    },
    /// The cluster settings are not valid: the stored value (left alone, as for any value
    /// that does not decode) or the edited one (not written).
    #[error("the cluster settings under `{key}`: {source}")]
    Settings {
        /// The settings key.
        key: String,
        /// What is wrong.
        source: SettingsError,
    },
    /// The new value could not be encoded (its extra fields cannot be written).
    #[error("cannot encode the value for `{key}`: {source}")]
    Unencodable {
        /// The key.
        key: String,
        /// The encoder's reason.
        source: JsonError,
    },
    /// An edit asked for more than one copy of an exclusive item, which has one owner at a
    /// time: the cluster would place one copy and the rest would never come, so the edit is
    /// taken for a mistake.
    #[error(
        "item `{item}` (key `{key}`) is exclusive (one owner at a time): its replication is 0 \
         or 1, not {replication}"
    )]
    ExclusiveReplication {
        /// The item.
        item: ItemId,
        /// Its key.
        key: String,
        /// The replication asked for.
        replication: u16,
    },
    /// The replication is above what the members accept: they would skip the item as a
    /// bad value.
    #[error(
        "item `{item}` (key `{key}`): replication {replication} is above the maximum of \
         {MAX_REPLICATION}"
    )]
    TooManyReplicas {
        /// The item.
        item: ItemId,
        /// Its key.
        key: String,
        /// The replication asked for.
        replication: u16,
    },
    /// Other writers changed the key between every read and write attempted.
    #[error("`{key}` kept changing while being written ({attempts} attempts); try again")]
    Contended {
        /// The key.
        key: String,
        /// How many read-modify-writes were tried.
        attempts: usize,
    },
}
