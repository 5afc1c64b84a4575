//! The operator's model of a cluster: the figures, differences and reasons an operator
//! reads, computed from the [`State`](apportion_core::state::State) of a
//! [`cluster`](crate::cluster) view.
//!
//! `apportion status`, `items list`, `members list`, `items show` and `events` show these,
//! and a service embedding the library wants the same ones for its own status page or
//! alerts. Each rule is computed here once, so the command line and every embedding cannot
//! come to mean different things by "needs attention", "fair share" or "why is this item
//! short of copies":
//! - per-item, per-member and per-zone rows, and a whole-cluster [`Overview`]
//!   ([`item_rows`], [`listed_items`], [`member_rows`], [`zone_rows`], [`item_copies`]),
//!   each serializing to the JSON the command line's `--json` prints;
//! - the time left on the members' leases, which tells a dead member (counting down) from
//!   a live one ([`lease_times`], [`LeaseInfo`]);
//! - what changed between two states ([`changes`]), as `apportion events` prints it;
//! - why an item is short of copies or not ready ([`shortfall`]), derived from the same
//!   state the leader plans from.
//!
//! Everything is read from a state the caller already has (a [`ClusterView`]'s, a
//! [`Member`](crate::Member)'s, or one [`ClusterView::read`]); only [`lease_times`] asks
//! the store. Nothing here is read by the runtime: it is a consumer of the view, kept apart
//! from [`cluster`](crate::cluster) so that what the keys mean stays in one small module
//! and the operator's words never feed back into allocation. The rows read values through
//! the value traits, so they work with any [`Decoder`](apportion_core::values::Decoder).
//!
//! [`ClusterView`]: crate::cluster::ClusterView
//! [`ClusterView::read`]: crate::cluster::ClusterView::read

mod changes;
mod items;
mod leases;
mod members;
mod overview;
mod shortfall;

pub use changes::{changes, Change};
pub use items::{item_copies, item_rows, listed_items, CopyRow, HeldCopy, ItemRow, ListedItem};
pub use leases::{item_leases, lease_times, member_leases, LeaseInfo, LeaseTimes};
pub use members::{member_rows, zone_rows, MemberRow, ZoneRow};
pub use overview::{is_vacant, AwayRow, Overview, RejectedSummary, Totals};
pub use shortfall::{shortfall, Shortfall};
