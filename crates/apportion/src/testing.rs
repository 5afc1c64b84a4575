//! Hooks for tests, the simulation and benchmarks; a service needs none of them.
//!
//! [`Member::start_with`](crate::Member::start_with) takes [`MemberOptions`]: a
//! consistency check other than "the copy is ready", a [`RoundHook`] called with a
//! [`RoundReport`] after every allocation round the member leads (to tell when a cluster
//! has settled, or count its rounds and transactions), and a step budget for the solver
//! (set low to see a leader step down).

pub use crate::allocator::{ConsistencyCheck, RoundHook, RoundReport};
pub use crate::member::MemberOptions;
