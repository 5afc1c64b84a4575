//! apportion assigns *items* (shards, partitions, queues) to the *members* of a service
//! (its running instances), with replication, per-member item limits and failure zones,
//! coordinated through etcd or the embedded [`MemoryStore`].
//!
//! # Using it
//!
//! Each instance of the service starts a [`Member`] and serves what its [`Event`]s say:
//!
//! - an item is served from [`Event::Assigned`] until [`Event::ReleaseRequested`],
//!   [`Event::Revoked`] or [`Event::Fenced`], whichever comes first;
//! - once it serves a copy, it reports it ready ([`Member::mark_ready`]), so the leader
//!   knows the copy can be relied on before it moves a primary or drops an old copy; every
//!   `Assigned` is a new assignment to report ready, including an item assigned again,
//!   which comes as `Revoked` then `Assigned`;
//! - exclusive items (one owner at a time) are handed over break-before-make: on
//!   `ReleaseRequested`, stop serving, then call [`Member::release`];
//! - while `Fenced`, it serves nothing; [`Event::Unfenced`] is followed by an `Assigned`
//!   for everything it still holds, so serving is rebuilt from that replay;
//! - to stop, [`Member::begin_drain`], keep serving events until [`Event::Drained`], then
//!   [`Member::leave`]; to restart (a deploy, a reboot), [`Member::begin_restart`], keep
//!   serving events until [`Event::ReadyToRestart`], stop serving, then
//!   [`Member::leave_for_restart`]: its replicas wait for it instead of loading elsewhere
//!   ([`core::away`]);
//! - a member's identity is its zone and suffix ([`MemberConfig::suffix`]): give an
//!   instance the same ones when it restarts (a host name, a stateful pod's name), so it
//!   comes back as the member that left, and never the same to two live instances (the
//!   second is refused).
//!
//! [`Event`] has the rules in full, [`Member`] the calls and what they promise while the
//! member is fenced.
//!
//! # Tutorial
//!
//! Three members in one process, on the embedded store, share two items: `orders`, with
//! two copies, and the exclusive `ledger`. They report their copies ready, then one of them
//! drains and leaves, and its copy moves to another member. With etcd, only the store
//! changes: `EtcdStore::connect(&["http://127.0.0.1:2379"]).await?` (or
//! [`EtcdStore::connect_with`] and [`EtcdOptions`] for TLS and authentication), and each
//! member is a process of its own.
//!
//! ```
#![doc = include_str!("../examples/tutorial.rs")]
//! ```
//!
//! # How it works
//!
//! Every member keeps a lease in the store, its key (`PREFIX/members/ZONE#SUFFIX`) under
//! it, and a live mirror of every key under the prefix (see [`cluster`]). The items are
//! keys the operator writes (`PREFIX/items/ID`); an assignment of an item to a member is a
//! key under that member's lease (`PREFIX/assign/ITEM#ZONE#SUFFIX#SLOT`, slot 0 the
//! primary), so a member's copies vanish with its lease.
//!
//! Every member runs the same allocation loop; it acts only while its member leads, and
//! the oldest live member leads, so leadership needs no election round trips. A round
//! solves for the desired assignment (a max-flow problem: the fewest re-assignments that
//! fill every replica slot, spread the copies of an item over zones, and bring members to
//! their fair share), plans the changes that are safe now, writes them, and waits until
//! its view shows what it wrote. What makes a change safe:
//!
//! - every transaction is guarded on the leader's own member key being unchanged since the
//!   view it planned from, so a deposed leader's writes fail, and on the item and its
//!   assignments being as read, so a plan made from a stale view fails rather than add a
//!   second owner of an exclusive item or a copy next to another leader's;
//! - a copy is removed only once the item stays consistent without it (by default: the
//!   copies that stay are ready), and a primary moves only to a ready copy;
//! - an exclusive item moves break-before-make: the leader asks the owner to release it,
//!   and assigns it anew only once the owner has deleted its assignment or its lease is
//!   gone;
//! - a member whose lease renewals go unacknowledged fences itself ([`Event::Fenced`]) a
//!   margin before the lease could expire, so it has stopped serving before the store can
//!   give its items to anyone else.
//!
//! A leader whose solves keep failing steps down, and the next-oldest member leads. The
//! planner's rules in full are in [`core::planner`], the solver's in [`core::solver`].
//! Operators say *when* the leader may act through the cluster settings (a maintenance
//! freeze that ends by itself, a floor of ready copies, a limit on copies loading at
//! once, a delay before a lost member's replicas load elsewhere; [`core::settings`],
//! edited with [`admin::Admin::update_settings`]), never where copies go.
//!
//! # Where things are
//!
//! What a service needs is at the top of the crate. [`cluster`] is the read-only picture
//! of a cluster that members and tools share; [`report`] computes from it what an operator
//! reads (per-item, per-member and per-zone figures, what changed, why an item is short of
//! copies), for `apportion status` and a service's own status page alike; [`admin`] edits
//! a deployment from outside its members; [`testing`] has the hooks that tests, the
//! simulation and benchmarks use. The pure parts
//! (keys, values, the cluster's state, the solver and the planner) are in [`core`], the
//! store interface and its two implementations in [`store`].

#![warn(missing_docs)]

pub mod admin;
mod allocator;
pub mod cluster;
mod config;
mod error;
mod events;
mod feed;
mod member;
pub mod report;
mod retry;
mod session;
mod solve;
mod status_writer;
mod telemetry;
pub mod testing;
mod writer;

pub use apportion_core as core;
pub use apportion_core::keys::{ItemId, MemberId, Prefix, Slot};
pub use apportion_core::values::{Decoder, JsonDecoder, JsonItem, JsonMember, JsonStatus};
pub use apportion_store as store;
pub use apportion_store::{EtcdOptions, EtcdStore, MemoryStore, Store};
pub use config::MemberConfig;
pub use error::Error;
pub use events::Event;
pub use member::{Member, MemberHandle};
pub use telemetry::describe_metrics;
