//! Reading a whole range page by page, as one consistent snapshot.
//!
//! One response has a size limit (etcd's clients refuse more than 4 MiB unless raised), and a
//! prefix holding 100,000 items is larger than that. So a whole range is read in pages: a
//! range with a limit, continuing from the key after the last one read, every page at the
//! revision the first page saw, so the pages add up to the range as it was at that revision.
//!
//! Pages are as large as the client allows, within reason: etcd (3.4 at least) walks every key
//! from a page's first key to the range's end to serve it, whatever its limit, so reading
//! 400,000 keys in pages of 10,000 walks them twenty times over (measured on etcd 3.4: 2.3 s,
//! against about 0.5 s for one read or for pages sized as here). A page aims at half the
//! client's response limit, at most [`MAX_PAGE_BYTES`]. etcd limits a page by keys, not bytes, so the pager sizes each page from
//! the bytes per key of the page before, and halves a page refused as too large anyway. A
//! compaction of the read's revision between two pages makes the rest unreadable; the read
//! then starts over at the current revision.

use crate::error::StoreError;
use crate::store::Store;
use crate::types::{KeyRange, KeyValue, RangeOptions, RangeResult, Result};
use crate::wire;

/// The keys asked for in the first page, before their size is known.
const FIRST_PAGE_KEYS: usize = 1_000;

/// The most a page aims at, however much the client accepts: enough that a prefix of
/// 100,000 items and their assignments takes a few pages, little enough that etcd and the
/// client do not buffer a huge response at once.
const MAX_PAGE_BYTES: usize = 16 << 20;

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
    // Half the limit, so that keys twice the size of the page before's still fit.
    let page_bytes = (store.max_response_bytes() / 2).clamp(1, MAX_PAGE_BYTES);
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
        options.limit = next_limit(&page.kvs, page_bytes);
        kvs.extend(page.kvs);
    }
}

/// How many keys the next page should ask for to hold about `page_bytes`, judging by the
/// size of those of `page`.
fn next_limit(page: &[KeyValue], page_bytes: usize) -> usize {
    let per_key = (wire::kvs_len(page) / page.len().max(1)).max(1);
    (page_bytes / per_key).max(1)
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
    fn pages_hold_about_the_bytes_asked_for() {
        let small = sized(10);
        assert_eq!(
            next_limit(std::slice::from_ref(&small), 2 << 20),
            (2 << 20) / wire::kv_len(&small)
        );
        assert_eq!(next_limit(&[sized(100_000), sized(100_000)], 2 << 20), 20);
        assert_eq!(next_limit(&[sized(3 << 20)], 2 << 20), 1);
    }
}
