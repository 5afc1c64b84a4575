//! The time left on members' leases. A member that died still shows up until its lease runs
//! out, so the time left is what tells a dead member (counting down to 0) from a live one
//! (renewed, so it stays near the TTL). The state does not hold it: only the store knows,
//! so it is asked for once per lease and passed to the rows that show it.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use apportion_core::state::State;
use apportion_store::{LeaseId, Store, StoreError};
use serde::Serialize;

/// Seconds left on each lease asked about; `None` for one the store no longer knows
/// (expired or revoked).
pub type LeaseTimes = BTreeMap<LeaseId, Option<u64>>;

/// A member's lease and the time left on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaseInfo {
    /// The lease id in hex as etcdctl prints it ([`LeaseId`]'s form); `None` for a key
    /// without a lease.
    pub lease: Option<String>,
    /// Whole seconds left on the lease; `None` for no lease, or one that has expired.
    pub lease_ttl_secs: Option<u64>,
}

impl LeaseInfo {
    /// Lease `lease`, if any, with its time left from `times`.
    pub(crate) fn new(lease: Option<LeaseId>, times: &LeaseTimes) -> LeaseInfo {
        LeaseInfo {
            lease: lease.map(|lease| lease.to_string()),
            lease_ttl_secs: lease.and_then(|lease| times.get(&lease).copied().flatten()),
        }
    }
}

/// Asks the store how long each of `leases` has left ([`Store::time_to_live`], in whole
/// seconds), each lease once.
pub async fn lease_times<S: Store>(
    store: &S,
    leases: impl IntoIterator<Item = LeaseId>,
) -> Result<LeaseTimes, StoreError> {
    let mut times = LeaseTimes::new();
    for lease in leases {
        if let Entry::Vacant(entry) = times.entry(lease) {
            let left = store.time_to_live(lease).await?;
            entry.insert(left.map(|left| left.as_secs()));
        }
    }
    Ok(times)
}

/// The leases of every member of `state` that has one: what [`member_rows`] shows, to ask
/// [`lease_times`] about.
///
/// [`member_rows`]: super::member_rows
pub fn member_leases<I, M, A>(state: &State<I, M, A>) -> impl Iterator<Item = LeaseId> + '_ {
    state
        .members()
        .iter()
        .filter_map(|member| member.meta.lease)
}

/// The leases of the members holding item `index`'s copies: what [`item_copies`] shows, to
/// ask [`lease_times`] about.
///
/// [`item_copies`]: super::item_copies
pub fn item_leases<I, M, A>(
    state: &State<I, M, A>,
    index: usize,
) -> impl Iterator<Item = LeaseId> + '_ {
    state
        .item_assignment_range(index)
        .filter_map(|position| state.assignment_member(position))
        .filter_map(|member| state.members()[member].meta.lease)
}
