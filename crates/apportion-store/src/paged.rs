//! Reading a whole range page by page, as one consistent snapshot.
//!
//! One response has a size limit (etcd's clients refuse more than 4 MiB unless raised), and a
//! prefix holding 100,000 items is larger than that. So a whole range is read in pages: a
//! range with a limit, continuing from the key after the last one read, every page at the
//! revision the first page saw, so the pages add up to the range as it was at that revision.
//!
//! etcd limits a page by keys, not bytes, so the pager sizes each page from the bytes per key
//! of the page before (keeping a page near [`PAGE_BYTES`]), and halves a page that is refused
//! as too large anyway. A compaction of the read's revision between two pages makes the rest
//! unreadable; the read then starts over at the current revision.

use crate::error::StoreError;
use crate::store::Store;
use crate::types::{KeyRange, KeyValue, RangeOptions, RangeResult, Result};
use crate::wire;

/// The keys asked for in the first page, before their size is known.
const FIRST_PAGE_KEYS: usize = 1_000;

/// The most keys asked for in one page, however small they are, so that one page does not
/// hold etcd's read transaction open for long.
const MAX_PAGE_KEYS: usize = 10_000;

/// The size a page aims at: well below the 4 MiB a client accepts by default, so that keys a
/// few times larger than those of the page before still fit.
const PAGE_BYTES: usize = 1 << 20;

/// Reads every key of `range` at one revision; see [`Store::range_all`].
pub(crate) async fn range_all<S: Store>(store: &S, range: KeyRange) -> Result<RangeResult> {
    loop {
        match read_pages(store, &range).await {
            Err(StoreError::Compacted { requested, .. }) => {
                tracing::info!(
                    range = %String::from_utf8_lossy(range.bytes()),
                    revision = requested,
                    "revision of a paged read compacted between pages; reading again"
                );
                metrics::counter!("apportion_store_paged_read_restarts_total").increment(1);
            }
            done => return done,
        }
    }
}

/// One attempt at reading `range` page by page at the first page's revision.
async fn read_pages<S: Store>(store: &S, range: &KeyRange) -> Result<RangeResult> {
    let mut kvs = Vec::new();
    let mut options = RangeOptions {
        limit: FIRST_PAGE_KEYS,
        from: None,
        revision: 0,
    };
    loop {
        let page = match store.range_with(range.clone(), options.clone()).await {
            Err(StoreError::ResponseTooLarge { .. }) if options.limit > 1 => {
                options.limit /= 2;
                continue;
            }
            page => page?,
        };
        if options.revision == 0 {
            options.revision = page.revision;
        }
        let Some(last) = page.kvs.last().filter(|_| page.more) else {
            kvs.extend(page.kvs);
            return Ok(RangeResult {
                kvs,
                revision: options.revision,
                more: false,
            });
        };
        let mut next = last.key.clone();
        next.push(0);
        options.from = Some(next);
        options.limit = next_limit(&page.kvs);
        kvs.extend(page.kvs);
    }
}

/// How many keys the next page should ask for, judging by the size of those of `page`.
fn next_limit(page: &[KeyValue]) -> usize {
    let per_key = (wire::kvs_len(page) / page.len().max(1)).max(1);
    (PAGE_BYTES / per_key).clamp(1, MAX_PAGE_KEYS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sized(value_bytes: usize) -> KeyValue {
        KeyValue {
            key: b"k".to_vec(),
            value: vec![b'v'; value_bytes],
            ..KeyValue::default()
        }
    }

    #[test]
    fn pages_hold_about_a_mebibyte() {
        assert_eq!(next_limit(&[sized(10)]), MAX_PAGE_KEYS);
        assert_eq!(next_limit(&[sized(100_000), sized(100_000)]), 10);
        assert_eq!(next_limit(&[sized(3 << 20)]), 1);
    }
}
