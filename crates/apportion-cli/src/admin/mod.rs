//! The commands that edit or list the deployment: `items`, `members`, `drain`.
//!
//! Each command is a function generic over [`Store`], so it runs the same on etcd (from the
//! command line) and on the embedded `MemoryStore` (in the unit tests). This module holds
//! what they share: argument parsers and the guarded read-modify-write.

pub mod drain;
pub mod items;
pub mod members;
pub mod show;

use apportion::cluster::Observed;
use apportion_core::keys::{ItemId, MemberId, Prefix};
use apportion_core::values::JsonDecoder;
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

/// Says on stderr that nothing is under `prefix`, after a listing printed its empty table:
/// the listing itself succeeded, but a mistyped `--prefix` would otherwise look like an
/// empty cluster.
pub fn warn_if_empty(view: &Observed<JsonDecoder>, prefix: &Prefix) {
    if let Some(line) = crate::summary::nothing_under(view, prefix) {
        eprintln!("warning: {line}");
    }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use apportion_core::keys::Prefix;
    use apportion_store::{
        KeepAlive, Lease, MemoryStore, RangeOptions, RangeResult, Revision, TxnResult, Watch,
    };

    use super::*;
    use crate::cluster;

    /// A store where another writer changes `key` just before the first transaction, as a
    /// member updating its own value while `drain` runs would.
    #[derive(Clone)]
    struct Racing {
        inner: MemoryStore,
        key: String,
        value: &'static str,
        raced: Arc<AtomicBool>,
    }

    impl Store for Racing {
        async fn range_with(
            &self,
            range: KeyRange,
            options: RangeOptions,
        ) -> apportion_store::Result<RangeResult> {
            self.inner.range_with(range, options).await
        }
        async fn revision(&self) -> apportion_store::Result<Revision> {
            self.inner.revision().await
        }
        async fn txn(&self, txn: Txn) -> apportion_store::Result<TxnResult> {
            if !self.raced.swap(true, Ordering::SeqCst) {
                let current = self.inner.range(KeyRange::key(self.key.as_str())).await?;
                let lease = current.kvs.first().and_then(|kv| kv.lease);
                self.inner.put(self.key.as_str(), self.value, lease).await?;
            }
            self.inner.txn(txn).await
        }
        async fn watch(&self, range: KeyRange, from: Revision) -> apportion_store::Result<Watch> {
            self.inner.watch(range, from).await
        }
        async fn grant(&self, ttl_secs: i64) -> apportion_store::Result<Lease> {
            self.inner.grant(ttl_secs).await
        }
        async fn keep_alive(&self, lease: Lease) -> apportion_store::Result<KeepAlive> {
            self.inner.keep_alive(lease).await
        }
        async fn revoke(&self, lease: LeaseId) -> apportion_store::Result<()> {
            self.inner.revoke(lease).await
        }
        async fn time_to_live(
            &self,
            lease: LeaseId,
        ) -> apportion_store::Result<Option<std::time::Duration>> {
            self.inner.time_to_live(lease).await
        }
        async fn compact(&self, revision: Revision) -> apportion_store::Result<()> {
            self.inner.compact(revision).await
        }
        fn max_txn_ops(&self) -> usize {
            self.inner.max_txn_ops()
        }
        fn max_response_bytes(&self) -> usize {
            self.inner.max_response_bytes()
        }
    }

    #[tokio::test]
    async fn a_concurrent_write_is_re_read_not_overwritten() {
        let inner = MemoryStore::new();
        let leases = cluster::write(&inner).await;
        let key = format!("{}/members/eu#h1", cluster::PREFIX);
        let store = Racing {
            inner: inner.clone(),
            key: key.clone(),
            value: r#"{"item_limit": 6, "zone_note": "resized"}"#,
            raced: Arc::new(AtomicBool::new(false)),
        };
        let prefix = Prefix::new(cluster::PREFIX).unwrap();
        let member = parse_member("eu#h1").unwrap();
        drain::drain(&store, &prefix, &member, &mut Vec::new())
            .await
            .unwrap();
        let kv = inner.range(KeyRange::key(key)).await.unwrap().kvs.remove(0);
        assert_eq!(kv.lease, Some(leases["eu#h1"]));
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&kv.value).unwrap(),
            serde_json::json!({"item_limit": 6, "zone_note": "resized", "exiting": true})
        );
    }
}
