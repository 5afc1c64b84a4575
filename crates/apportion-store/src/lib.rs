//! The coordination store of apportion.
//!
//! Everything in apportion is coordinated through a key-value store with etcd v3's
//! semantics. The [`Store`] trait is that data model; [`MemoryStore`] implements it in the
//! process (for the demo, simulation and single-process use) and [`EtcdStore`] over a real
//! etcd. Both pass one conformance suite, so code written against the trait behaves the same
//! on either. A [`KeySpace`] mirrors a prefix of either store in memory and keeps it current.
//!
//! A response has a size limit (etcd's clients refuse more than 4 MiB unless raised), so
//! whatever reads a whole prefix reads it with [`Store::range_all`]: in pages, at one
//! revision.

#![warn(missing_docs)]

mod backoff;
mod error;
mod etcd;
mod keyspace;
mod lease;
mod memory;
mod paged;
mod store;
mod types;
pub mod validate;
mod watch;
mod wire;

pub use backoff::Backoff;
pub use error::StoreError;
pub use etcd::{ClientCert, EtcdOptions, EtcdStore, Tls};
pub use keyspace::{Decode, Entry, KeySpace, KeySpaceOptions, Observer, Snapshot};
pub use lease::{renewal_period, KeepAlive, LeaseStatus};
pub use memory::MemoryStore;
pub use store::Store;
pub use types::*;
pub use watch::Watch;
