//! Hooks and harnesses for tests, the simulation, benchmarks and the demo; a service needs
//! none of them.
//!
//! [`Member::start_with`](crate::Member::start_with) takes [`MemberOptions`]: a
//! consistency check other than "the copy is ready", a [`RoundHook`] called with a
//! [`RoundReport`] after every allocation round the member leads (to tell when a cluster
//! has settled, or count its rounds and transactions), and a step budget for the solver
//! (set low to see a leader step down).
//!
//! Every program that runs members in process and judges them needs the same three rules,
//! and each lives here once, so that the tests, the simulation, the converge benchmark and
//! the demo cannot come to mean different things by them:
//! - when a cluster has settled ([`settled_now`], [`settle`]; a tool in another process
//!   reads the leader's `apportion_idle_round_revision` gauge for [`at_rest`]);
//! - what an application serves, judged from its events, and whether two members serve an
//!   exclusive item at once ([`Serving`]);
//! - the event loop of a simple application ([`Application`], [`InProcessMember`]).

mod harness;
mod serving;
mod settle;

pub use crate::allocator::{ConsistencyCheck, RoundHook, RoundReport};
pub use crate::member::MemberOptions;
pub use harness::{Application, Command, InProcessMember};
pub use serving::{Overlap, Serving};
pub use settle::{at_rest, caught_up, is_settled_state, settle, settled_now, Unsettled};
