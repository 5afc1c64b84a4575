//! The converge benchmark (`apportion bench converge`): the whole runtime end to end.
//! Starts members, writes the items, and measures the time until the cluster has settled;
//! then kills one member and measures the time until every slot is filled again; then
//! watches the settled cluster for a while (it should write nothing). The result is one
//! [`Line`], with the store's *floor* measured in the same run: the time one client takes
//! to write as many keys as the settle wrote (the assignments' creations and the members'
//! status writes), in transactions as large as the store allows, so that `vs_floor` says
//! how far the runtime is from what the store can do.
//!
//! The members run in one of two shapes, behind `Members`, so that every phase is
//! measured by the same code (`phases`) in both:
//! - in this process (`in_process`), on a real etcd or the embedded store: the cheapest
//!   way to measure the runtime, with a hook into every leader round;
//! - as separate `apportion member` processes on etcd (`processes`), the shape of a real
//!   deployment: each member has its own runtime, connection and memory, and the benchmark
//!   watches them from outside (the cluster view, their Prometheus metrics, their output,
//!   `/proc`). The caller starts each process ([`Launch`]), since only it knows the
//!   program and how to tie a child's life to its own.
//!
//! Each member runs the loop a real service would: mark an item ready when assigned, release
//! an exclusive item when asked.

mod in_process;
mod line;
mod options;
mod phases;
mod processes;
mod scrape;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use apportion::cluster::{ClusterView, Observed};
use apportion::core::values::JsonDecoder;
use apportion::store::{EtcdOptions, EtcdStore, MemoryStore};
use tokio::process::Child;

use in_process::InProcess;
use processes::Processes;

pub use line::{Line, ProcessFigures, Spread};
pub use options::ConvergeOptions;
pub use processes::MemberSpec;

/// Where the members run and which store they share.
pub enum Deployment {
    /// Members in this process, on one embedded store.
    Memory,
    /// Members in this process, each on a connection of its own to etcd.
    Etcd(Etcd),
    /// `apportion member` processes on etcd, each started by the [`Launch`].
    Processes(Etcd, Launch),
}

/// Starts one member process: given a [`MemberSpec`], an `apportion member --json` with the
/// spec's flags on the same etcd, its stdout and stderr piped (the benchmark reads them).
/// It is the caller's, because only the caller knows the program and its command line; it
/// should tie the child's life to the benchmark's, so that a benchmark that dies leaves no
/// member running.
pub type Launch = Box<dyn Fn(MemberSpec) -> Pin<Box<dyn Future<Output = io::Result<Child>>>>>;

/// The etcd the benchmark and its members use.
#[derive(Clone, Debug)]
pub struct Etcd {
    /// The endpoint URL.
    pub endpoint: String,
    /// TLS and the user, if the etcd is secured.
    pub options: EtcdOptions,
}

impl Etcd {
    /// One new connection: the benchmark's own, or an in-process member's.
    async fn connect(&self) -> Result<EtcdStore, String> {
        EtcdStore::connect_with(&[&self.endpoint], self.options.clone())
            .await
            .map_err(|e| format!("{e} (start etcd, or use --memory)"))
    }
}

/// Runs the benchmark on the chosen deployment and returns its line. Fails when the
/// options could not make a run that ends ([`ConvergeOptions::check`]), when the store
/// cannot be reached, or when a member stops serving by itself.
pub async fn run(options: &ConvergeOptions, deployment: Deployment) -> Result<Line, String> {
    options.check()?;
    match deployment {
        Deployment::Memory => {
            let store = MemoryStore::new();
            let view = phases::prepare(&store, options).await?;
            let members = InProcess::start(&store, options, || {
                let store = store.connect();
                async move { Ok(store) }
            })
            .await?;
            phases::measure(store, "memory", view, members, options).await
        }
        Deployment::Etcd(etcd) => {
            let store = etcd.connect().await?;
            let view = phases::prepare(&store, options).await?;
            // Each member connects on its own, as members in separate processes would.
            let members = InProcess::start(&store, options, || etcd.connect()).await?;
            phases::measure(store, "etcd", view, members, options).await
        }
        Deployment::Processes(etcd, launch) => {
            let store = etcd.connect().await?;
            let view = phases::prepare(&store, options).await?;
            let members = Processes::start(&store, options, &view, launch).await?;
            phases::measure(store, "etcd", view, members, options).await
        }
    }
}

/// What the leaders did so far, summed over every member: the figures of the line that come
/// from the members' own accounts of their rounds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Totals {
    rounds: usize,
    txns: usize,
    failed_txns: usize,
    changes: usize,
}

impl std::ops::Add for Totals {
    type Output = Totals;

    fn add(self, other: Totals) -> Totals {
        Totals {
            rounds: self.rounds + other.rounds,
            txns: self.txns + other.txns,
            failed_txns: self.failed_txns + other.failed_txns,
            changes: self.changes + other.changes,
        }
    }
}

/// The observed state the leader has nothing more to do in, and the moment the benchmark
/// first saw it so.
type Idle = (Instant, Arc<Observed<JsonDecoder>>);

/// The members under test, however they run. The phases ([`phases::measure`]) drive them
/// only through this, so that settle, refill, idle writes and the floor are measured by one
/// piece of code in both shapes.
trait Members {
    /// The line's `shape`.
    const SHAPE: &'static str;

    /// Fails when a member stopped serving by itself (its session ended, its process
    /// exited): the figures would mean nothing then.
    fn check(&mut self) -> Result<(), String>;

    /// The state the leader is known to be idle in (its last round at the view's revision
    /// planned nothing), and since when; `None` while that is not known (yet).
    async fn idle(&mut self, view: &ClusterView<JsonDecoder>) -> Result<Option<Idle>, String>;

    /// The leaders' rounds, transactions and changes so far.
    async fn totals(&mut self) -> Result<Totals, String>;

    /// Kills the member without a goodbye (its lease has to expire); returns when the kill
    /// was done.
    async fn kill(&mut self, id: &str) -> Result<Instant, String>;

    /// Members whose lease was lost so far.
    fn lease_losses(&self) -> usize;

    /// Stops every member, leaving nothing running; `leader` is the member that led at the
    /// end. Returns the figures of the member processes, where the members are processes.
    async fn stop(self, leader: Option<String>) -> Result<Option<ProcessFigures>, String>;
}
