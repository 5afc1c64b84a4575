//! From raw key-values to snapshot entries: classify the key, decode the value with the
//! application's [`Decoder`], and file the result under its kind.
//!
//! This is the one place that ties the key layout to the value types, so the store's
//! mirror can hold [`Decoded`] values and the runtime can fill a [`Snapshot`] from them
//! without knowing either.

use super::{Entry, Meta, Snapshot};
use crate::away::{AwayError, AwayRecord};
use crate::keys::{AssignmentKey, ItemId, Key, KeyError, MemberId, Prefix};
use crate::settings::{ClusterSettings, SettingsError};
use crate::values::{Decoder, ItemValue, MAX_REPLICATION};

/// One decoded key-value under the prefix, of any of the three kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded<I, M, A> {
    /// An item key and its value.
    Item(ItemId, I),
    /// A member key and its value.
    Member(MemberId, M),
    /// An assignment key and its status.
    Assignment(AssignmentKey, A),
    /// The cluster settings (always JSON, whatever the decoder).
    Settings(ClusterSettings),
    /// A member's away record (always JSON, whatever the decoder).
    Away(MemberId, AwayRecord),
}

/// The [`Decoded`] type of a decoder's values.
pub type DecodedBy<D> =
    Decoded<<D as Decoder>::Item, <D as Decoder>::Member, <D as Decoder>::Assignment>;

/// Why a raw key-value was not decoded: the key is not one of the three kinds, or its
/// value is malformed (then the message names the key as well as the [reason](Self::reason)).
#[derive(Debug, thiserror::Error)]
pub enum EntryError<E: std::error::Error + 'static> {
    /// The key is not an item, member or assignment key under the prefix.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The key is fine but its value did not decode.
    #[error("key `{key}`: {}", self.reason())]
    Value {
        /// The key, as text.
        key: String,
        /// The decoder's reason.
        source: E,
    },
    /// An item value that decoded but asks for more replicas than [`MAX_REPLICATION`].
    #[error("key `{key}`: {}", self.reason())]
    Replication {
        /// The key, as text.
        key: String,
        /// The replication asked for.
        replication: u16,
    },
    /// A settings value that is not valid.
    #[error("key `{key}`: {source}")]
    Settings {
        /// The key, as text.
        key: String,
        /// What is wrong with it.
        source: SettingsError,
    },
    /// An away record that is not valid.
    #[error("key `{key}`: {source}")]
    Away {
        /// The key, as text.
        key: String,
        /// What is wrong with it.
        source: AwayError,
    },
}

impl<E: std::error::Error + 'static> EntryError<E> {
    /// What is wrong, without naming the key: the text for lists that show each rejected
    /// key next to its reason (the cluster view, `apportion status`), so that every such
    /// list words a bad value the same way. A key that is not one of the three kinds is
    /// explained by the key parser, whose message names the key itself.
    pub fn reason(&self) -> String {
        match self {
            EntryError::Key(e) => e.to_string(),
            EntryError::Value { source, .. } => source.to_string(),
            EntryError::Replication { replication, .. } => {
                format!("replication {replication} is above the maximum of {MAX_REPLICATION}")
            }
            EntryError::Settings { source, .. } => source.to_string(),
            EntryError::Away { source, .. } => source.to_string(),
        }
    }
}

/// Classifies `key` under `prefix` and decodes `value` with `decoder` as the key's kind
/// requires. An item asking for more than [`MAX_REPLICATION`] replicas is refused too.
pub fn decode_entry<D: Decoder>(
    prefix: &Prefix,
    decoder: &D,
    key: &[u8],
    value: &[u8],
) -> Result<DecodedBy<D>, EntryError<D::Error>> {
    let parsed = prefix.classify(key)?;
    let value_error = |source| EntryError::Value {
        key: String::from_utf8_lossy(key).into_owned(),
        source,
    };
    Ok(match parsed {
        Key::Item(id) => {
            let item = decoder.decode_item(value).map_err(value_error)?;
            let replication = item.replication();
            if replication > MAX_REPLICATION {
                return Err(EntryError::Replication {
                    key: String::from_utf8_lossy(key).into_owned(),
                    replication,
                });
            }
            Decoded::Item(id, item)
        }
        Key::Member(id) => Decoded::Member(id, decoder.decode_member(value).map_err(value_error)?),
        Key::Assignment(id) => {
            Decoded::Assignment(id, decoder.decode_assignment(value).map_err(value_error)?)
        }
        Key::Settings => Decoded::Settings(ClusterSettings::decode(value).map_err(|source| {
            EntryError::Settings {
                key: String::from_utf8_lossy(key).into_owned(),
                source,
            }
        })?),
        Key::Away(id) => Decoded::Away(
            id,
            AwayRecord::decode(value).map_err(|source| EntryError::Away {
                key: String::from_utf8_lossy(key).into_owned(),
                source,
            })?,
        ),
    })
}

impl<I, M, A> Snapshot<I, M, A> {
    /// Files a decoded entry under its kind.
    pub fn push(&mut self, decoded: Decoded<I, M, A>, meta: Meta) {
        match decoded {
            Decoded::Item(key, value) => self.items.push(Entry { key, value, meta }),
            Decoded::Member(key, value) => self.members.push(Entry { key, value, meta }),
            Decoded::Assignment(key, value) => self.assignments.push(Entry { key, value, meta }),
            Decoded::Settings(settings) => self.settings = Some(settings),
            Decoded::Away(key, value) => self.away.push(Entry { key, value, meta }),
        }
    }
}
