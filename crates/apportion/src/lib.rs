//! apportion: assigns items (shards, partitions, queues) to the members of a service, with
//! replication, per-member item limits and failure zones, coordinated through etcd or the
//! embedded store.
//!
//! A service instance starts a [`Member`], then serves what its [`Event`]s say: `Assigned`
//! items until they are `Revoked`, nothing while `Fenced`. It reports each item ready with
//! [`Member::update_status`], so the leader knows when a replica can be relied on before it
//! moves a primary or drops an old copy. Exclusive items are handed over break-before-make:
//! on `ReleaseRequested`, stop serving, then call [`Member::release`].
//!
//! Every member runs the same loop; the oldest live member leads and writes the assignment
//! (see the `allocator` module docs). The pure parts (keys, values, state, solver, planner)
//! are in [`core`]; the stores are in [`store`].

pub mod admin;
mod allocator;
mod config;
mod error;
mod events;
mod feed;
mod member;
mod retry;
mod session;
mod solve;
mod status_writer;
mod telemetry;
mod view;
mod writer;

pub use allocator::{ConsistencyCheck, RoundHook, RoundReport};
pub use apportion_core as core;
pub use apportion_store as store;
pub use config::MemberConfig;
pub use error::Error;
pub use events::Event;
pub use member::{Member, MemberHandle, MemberOptions};
pub use telemetry::describe_metrics;
pub use view::{ClusterView, Observed, Rejected, RuntimeDecoder, StateOf};
