//! Bringing snapshot entries into key order, in one linear pass when they already are.

use std::fmt::Display;

use super::{BuildError, Entry};

/// Sorts entries by key and rejects a key that appears twice. A store read returns keys
/// already sorted and distinct, which one pass confirms without sorting; other input
/// (say, from a hash map cache) costs a full sort, several times slower at scale.
pub(super) fn sort_unique<K: Ord + Display, V>(
    entries: &mut [Entry<K, V>],
    kind: &'static str,
) -> Result<(), BuildError> {
    if entries.is_sorted_by(|a, b| a.key < b.key) {
        return Ok(());
    }
    entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    match entries.windows(2).find(|pair| pair[0].key == pair[1].key) {
        Some(pair) => Err(BuildError::Duplicate {
            kind,
            key: pair[0].key.to_string(),
        }),
        None => Ok(()),
    }
}
