//! apportion: assigns items to the members of a service, with replication, per-member item
//! limits and failure zones, coordinated through etcd (or the embedded store).
//!
//! This crate is the runtime; it re-exports the pure core and the store so that an
//! application depends on one crate.

pub use apportion_core as core;
pub use apportion_store as store;
