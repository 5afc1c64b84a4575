//! Deterministic fault simulation of apportion.
//!
//! A seed draws a cluster and a schedule of events and faults ([`Plan`]), planned events
//! among them (restarts, freezes, throttles, `min_ready`, refill delays); the [`driver`]
//! runs it against `MemoryStore` on a single-threaded tokio runtime with paused time, so
//! leases, fencing and delays all happen in simulated time, and with a wall clock fixed at
//! the start ([`plan::SimClock`]) the same seed replays the same run. Invariants are checked as the run goes: at every store revision ([`mirror`]),
//! on every member event ([`serving`]), whenever the leader is at rest and once the
//! cluster has settled ([`checks`]).
//!
//! Members run a small application ([`app`]) that behaves like a service: it loads items
//! for a while before reporting them ready, lets go of exclusive items a while after it is
//! asked, leaves when drained, and leaves to restart (coming back under the same name)
//! when asked to.
//!
//! The same rules judge the [`story`] that `apportion demo` tells: a cluster over any store
//! (the embedded one or a real etcd), in real time, through a fixed sequence of phases.

#![warn(missing_docs)]

pub mod app;
pub mod checks;
pub mod driver;
pub mod mirror;
pub mod plan;
pub mod record;
pub mod report;
pub mod rng;
pub mod rounds;
pub mod serving;
pub mod store;
pub mod story;

pub use plan::Plan;
pub use report::{replay_command, Report, Totals};

/// Runs the plan of `seed` to the end and returns its figures and violations. `trace`
/// prints every step as it runs.
///
/// Each run gets a runtime of its own (current-thread, paused clock), so nothing of one
/// run leaks into the next, and task scheduling, hence the run, is a function of the seed.
pub fn run(seed: u64, trace: bool) -> Report {
    run_plan(Plan::generate(seed), trace)
}

/// Runs a plan (drawn from a seed, or written by hand for a scenario) to the end.
pub fn run_plan(plan: Plan, trace: bool) -> Report {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime builds");
    runtime.block_on(async move { driver::Driver::new(plan, trace).await.run().await })
}
