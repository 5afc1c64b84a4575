//! `LeaseId`: the identifier of a store lease, the one form every crate of apportion uses.
//!
//! etcd encodes "no lease" as the id 0. Here a lease id is never 0, and a key without a
//! lease holds `None` (`Option<LeaseId>`): the type says whether there is a lease, so no code
//! tests for 0. Only the etcd wire itself speaks in raw numbers, through
//! [`LeaseId::new`] and [`LeaseId::to_wire`].

use std::fmt;
use std::num::NonZeroI64;

/// A lease's identifier, as etcd grants it: any number but 0.
///
/// It is shown the way `etcdctl` prints it and `etcdctl lease timetolive` reads it:
/// lowercase hex, no `0x`. Every message, table and JSON document of apportion shows lease
/// ids in this one form, so an id read in one place can be found in another, or in etcdctl.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseId(NonZeroI64);

impl LeaseId {
    /// The lease with this id; `None` for 0, which names no lease: a key's lease as etcd
    /// reports it (0 for none) is read with this.
    pub const fn new(id: i64) -> Option<LeaseId> {
        match NonZeroI64::new(id) {
            Some(id) => Some(LeaseId(id)),
            None => None,
        }
    }

    /// The id as a number.
    pub const fn get(self) -> i64 {
        self.0.get()
    }

    /// A key's lease as the etcd wire carries it: its id, or 0 for none. For a store
    /// backend writing to etcd, or counting what etcd would send.
    pub fn to_wire(lease: Option<LeaseId>) -> i64 {
        lease.map_or(0, LeaseId::get)
    }
}

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_no_lease_only_on_the_wire() {
        assert_eq!(LeaseId::new(0), None);
        assert_eq!(LeaseId::to_wire(None), 0);
        let lease = LeaseId::new(0x694d).unwrap();
        assert_eq!(LeaseId::to_wire(Some(lease)), 0x694d);
    }

    #[test]
    fn shown_in_lowercase_hex_as_etcdctl_does() {
        assert_eq!(LeaseId::new(0x694d_7a1b).unwrap().to_string(), "694d7a1b");
    }
}
