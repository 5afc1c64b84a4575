//! How many bytes key-values take in an etcd response, as its protobuf encoding counts them.
//!
//! etcd's clients refuse a response larger than their decoding limit, so a read's size
//! matters as much as its key count. The memory store enforces the same limit with this
//! count (so tests meet the wall etcd's clients meet), and paged reads size their pages by
//! it (etcd limits a page by keys only).

use crate::types::{KeyValue, LeaseId};

/// The bytes a varint takes for `value`.
fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// A bytes field: tag, length, bytes (left out when empty, as proto3 does).
fn bytes_field(bytes: &[u8]) -> usize {
    if bytes.is_empty() {
        0
    } else {
        1 + varint_len(bytes.len() as u64) + bytes.len()
    }
}

/// An int64 field: tag and varint (left out when zero; a negative one takes ten bytes).
fn int_field(value: i64) -> usize {
    if value == 0 {
        0
    } else {
        1 + varint_len(value as u64)
    }
}

/// The bytes one key-value takes as an entry of a response's repeated `kvs` field.
pub(crate) fn kv_len(kv: &KeyValue) -> usize {
    let message = bytes_field(&kv.key)
        + int_field(kv.create_revision)
        + int_field(kv.mod_revision)
        + int_field(kv.version)
        + bytes_field(&kv.value)
        + int_field(LeaseId::to_wire(kv.lease));
    1 + varint_len(message as u64) + message
}

/// The bytes a response carrying `kvs` takes, its small header aside.
pub(crate) fn kvs_len<'a>(kvs: impl IntoIterator<Item = &'a KeyValue>) -> usize {
    kvs.into_iter().map(kv_len).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_take_seven_bits_a_byte() {
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(16_383), 2);
        assert_eq!(varint_len(16_384), 3);
        assert_eq!(varint_len(u64::MAX), 10);
    }

    #[test]
    fn a_key_value_counts_each_field_it_has() {
        let kv = KeyValue {
            key: b"k".to_vec(),
            value: vec![b'v'; 200],
            create_revision: 5,
            mod_revision: 300,
            version: 1,
            lease: None,
        };
        // key 1+1+1, create 1+1, mod 1+2, version 1+1, value 1+2+200, lease absent.
        let message = 3 + 2 + 3 + 2 + 203;
        assert_eq!(kv_len(&kv), 1 + 2 + message);
        assert_eq!(kvs_len([&kv, &kv]), 2 * kv_len(&kv));
    }
}
