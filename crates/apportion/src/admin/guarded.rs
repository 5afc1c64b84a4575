//! The guarded read-modify-write every edit of one key goes through.
//!
//! A key may be written by several parties at once: an item by two operators, a member key
//! by its own member (its limit, its step-down) while an operator drains it. A plain put of
//! a value computed from an earlier read would silently undo whatever was written in
//! between, so the write is a compare-and-swap on the key's mod revision, and a lost race
//! reads again and recomputes from what the winner wrote.

use apportion_store::{Compare, CompareOp, KeyRange, Op, Store, Txn};

use super::AdminError;

/// How many times a read-modify-write reads again after another writer changed the key
/// first. A key that changes this often is being fought over; the caller hears so rather
/// than spin.
const MAX_CONFLICTS: usize = 10;

/// Reads `key` and asks `change` what to make of its value (`None`: the key is absent).
/// `change` returns the bytes to write (`None`: write nothing) and the caller's outcome.
/// The write happens only if the key's mod revision is still the one read (0 for a key
/// that did not exist, so a concurrent creation is not overwritten either); otherwise it
/// reads and asks again.
///
/// The key stays under the lease it has: an edit changes a value, not who owns the key.
/// A member key written without its member's lease would outlive the member, and the
/// cluster would count a dead member's capacity forever.
pub(super) async fn update<S: Store, T>(
    store: &S,
    key: &str,
    mut change: impl FnMut(Option<&[u8]>) -> Result<(Option<Vec<u8>>, T), AdminError>,
) -> Result<T, AdminError> {
    for _ in 0..MAX_CONFLICTS {
        let current = store
            .range(KeyRange::key(key))
            .await?
            .kvs
            .into_iter()
            .next();
        let (value, outcome) = change(current.as_ref().map(|kv| kv.value.as_slice()))?;
        let Some(value) = value else {
            return Ok(outcome);
        };
        let (read_revision, lease) = current.map_or((0, None), |kv| (kv.mod_revision, kv.lease));
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, read_revision)])
            .and_then([Op::Put {
                key: key.into(),
                value,
                lease,
            }]);
        if store.txn(txn).await?.succeeded {
            return Ok(outcome);
        }
    }
    Err(AdminError::Contended {
        key: key.to_owned(),
        attempts: MAX_CONFLICTS,
    })
}
