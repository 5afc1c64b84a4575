//! Checks of call arguments shared by every backend, so that bad input gets the same clear
//! error whichever store is behind the trait, before anything is sent.

use crate::error::StoreError;
use crate::types::{KeyRange, Op, RangeOptions, Result, Txn};

/// The default limit on operations in one transaction branch, etcd's `--max-txn-ops` default.
pub const DEFAULT_MAX_TXN_OPS: usize = 128;

/// The largest response a client accepts unless told otherwise: gRPC's default decoding
/// limit (4 MiB), the wall etcd clients meet. The memory store keeps it, so that a test
/// reading more than this in one response fails as it would against an etcd client that
/// has not raised it.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 << 20;

/// Refuses an empty key.
pub fn key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(StoreError::InvalidArgument("key is empty".into()));
    }
    Ok(())
}

/// Refuses an empty single key; an empty prefix is allowed and means every key.
pub fn range(range: &KeyRange) -> Result<()> {
    match range {
        KeyRange::Key(k) => key(k),
        KeyRange::Prefix(_) => Ok(()),
    }
}

/// Checks a read: the range as [`range`] does, a start key inside the range and a revision
/// that is not negative.
pub fn range_options(range: &KeyRange, options: &RangeOptions) -> Result<()> {
    self::range(range)?;
    if let Some(from) = &options.from {
        if !range.contains(from) {
            return Err(StoreError::InvalidArgument(format!(
                "a read of {} cannot start at {}, which is outside it",
                String::from_utf8_lossy(range.bytes()),
                String::from_utf8_lossy(from)
            )));
        }
    }
    if options.revision < 0 {
        return Err(StoreError::InvalidArgument(format!(
            "a read of {} asks for revision {}; a revision is positive (or 0: the current one)",
            String::from_utf8_lossy(range.bytes()),
            options.revision
        )));
    }
    Ok(())
}

/// Refuses a lease time to live that is not positive.
pub fn ttl(ttl_secs: i64) -> Result<()> {
    if ttl_secs <= 0 {
        return Err(StoreError::InvalidArgument(format!(
            "lease TTL must be at least 1 second, got {ttl_secs}"
        )));
    }
    Ok(())
}

/// Checks a transaction: branch sizes within `limit`, no empty key, and, like etcd, no key
/// written twice in one branch nor both written and deleted by it.
pub fn txn(txn: &Txn, limit: usize) -> Result<()> {
    for (what, len) in [
        ("compares", txn.compares.len()),
        ("success operations", txn.success.len()),
        ("failure operations", txn.failure.len()),
    ] {
        if len > limit {
            return Err(StoreError::TooManyOps {
                what,
                ops: len,
                limit,
            });
        }
    }
    for compare in &txn.compares {
        range(&compare.range)?;
    }
    branch(&txn.success)?;
    branch(&txn.failure)
}

fn branch(ops: &[Op]) -> Result<()> {
    let mut puts: Vec<&[u8]> = Vec::new();
    let mut deletes: Vec<&KeyRange> = Vec::new();
    for op in ops {
        match op {
            Op::Put { key: k, lease, .. } => {
                key(k)?;
                if let Some(lease) = lease.filter(|l| l.get() < 0) {
                    return Err(StoreError::InvalidArgument(format!(
                        "put of {} names lease {lease}, which is not a lease id",
                        String::from_utf8_lossy(k),
                    )));
                }
                puts.push(k);
            }
            Op::Delete(r) => {
                range(r)?;
                deletes.push(r);
            }
            Op::Range(r) => range(r)?,
        }
    }
    puts.sort_unstable();
    if let Some(pair) = puts.windows(2).find(|w| w[0] == w[1]) {
        return Err(duplicate(pair[0]));
    }
    if let Some(k) = puts.iter().find(|k| deletes.iter().any(|d| d.contains(k))) {
        return Err(duplicate(k));
    }
    Ok(())
}

fn duplicate(key: &[u8]) -> StoreError {
    StoreError::InvalidArgument(format!(
        "key {} is written more than once in one transaction",
        String::from_utf8_lossy(key)
    ))
}
