//! The commands that edit or list the deployment: `items`, `members`, `drain`.
//!
//! Each command is a function generic over [`Store`], so it runs the same on etcd (from the
//! command line) and on the embedded `MemoryStore` (in the unit tests). This module holds
//! what they share: argument parsers and the guarded read-modify-write.

pub mod drain;
pub mod items;
pub mod members;

use apportion_core::keys::{ItemId, MemberId};
use apportion_store::{Compare, CompareOp, KeyRange, KeyValue, LeaseId, Op, Store, Txn};

use crate::error::{CliError, Result};

/// How many times a read-modify-write re-reads after another writer changed the key first.
const MAX_CONFLICTS: usize = 10;

/// Parses an item id on the command line; the error names the bad character.
pub fn parse_item(text: &str) -> Result<ItemId, String> {
    ItemId::new(text).map_err(|e| e.to_string())
}

/// Parses a member id (`ZONE#SUFFIX`) on the command line; the error names the bad part.
pub fn parse_member(text: &str) -> Result<MemberId, String> {
    MemberId::parse(text).map_err(|e| e.to_string())
}

/// A value to write in place of the one read, and the lease to write it under (`None`
/// detaches the key from any lease, so a key that has one must name it again).
#[derive(Debug)]
pub struct NewValue {
    /// The encoded value.
    pub value: Vec<u8>,
    /// The lease to attach the key to.
    pub lease: Option<LeaseId>,
}

/// Reads `key` (`None` when absent), asks `change` what to write, and writes it only if the
/// key's mod revision is still the one read (0 for a key that did not exist), so no
/// concurrent write is lost. On a conflict it reads again and asks again, a few times.
/// `change` returns the value to write (or `None` to write nothing) and the command's
/// outcome, which `update` returns once the write is done.
pub async fn update<S: Store, T>(
    store: &S,
    key: &str,
    mut change: impl FnMut(Option<&KeyValue>) -> Result<(Option<NewValue>, T)>,
) -> Result<T> {
    for _ in 0..MAX_CONFLICTS {
        let current = store
            .range(KeyRange::key(key))
            .await?
            .kvs
            .into_iter()
            .next();
        let (new, outcome) = change(current.as_ref())?;
        let Some(new) = new else {
            return Ok(outcome);
        };
        let read_revision = current.map_or(0, |kv| kv.mod_revision);
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, read_revision)])
            .and_then([Op::Put {
                key: key.into(),
                value: new.value,
                lease: new.lease,
            }]);
        if store.txn(txn).await?.succeeded {
            return Ok(outcome);
        }
    }
    Err(CliError::failed(format!(
        "`{key}` kept changing while being written ({MAX_CONFLICTS} attempts); try again"
    )))
}
