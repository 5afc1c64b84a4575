//! The benchmark's result: one JSON line, so that runs can be compared across commits by a
//! script.

use serde::Serialize;

/// The benchmark's result line.
#[derive(Serialize)]
pub(super) struct Line {
    /// `etcd` or `memory`.
    pub store: &'static str,
    /// `in-process`: the members are tasks of the benchmark process.
    pub shape: &'static str,
    /// The arguments the run had (members at the start, before the kill).
    pub members: usize,
    /// Items placed.
    pub items: usize,
    /// Replicas per item.
    pub replication: u16,
    /// Zones the members were spread over.
    pub zones: usize,
    /// From the first item written to settled: every slot filled and ready, leader idle
    /// (its round hook says its round at the store's current revision planned nothing).
    pub settle_ms: f64,
    /// Rounds the leaders ran until settled.
    pub rounds: usize,
    /// Transactions the leaders wrote until settled.
    pub txns: usize,
    /// Of those, the ones whose guards failed.
    pub failed_txns: usize,
    /// Changes written (adds, removes, slot moves, release requests).
    pub changes: usize,
    /// From the kill to every slot filled and ready again (includes the lease TTL).
    pub refill_ms: f64,
    /// From the killed member's key vanishing (lease expiry) to every slot filled again.
    pub refill_after_expiry_ms: f64,
    /// Rounds the leaders ran between the settle and the refill.
    pub refill_rounds: usize,
    /// Changes they wrote meanwhile (the victim's replicas placed elsewhere).
    pub refill_changes: usize,
    /// Keys the settle wrote: changes, and one status write per assignment.
    pub floor_keys: usize,
    /// One client writing `floor_keys` keys in transactions of the store's op limit.
    pub floor_ms: f64,
    /// `settle_ms / floor_ms`.
    pub vs_floor: f64,
    /// Transactions the leader wrote while the settled cluster was watched for `idle_secs`.
    pub idle_txns: usize,
    /// How long the settled cluster was watched.
    pub idle_secs: u64,
    /// Members whose session ended (lease lost) after the settle; must be 0 (one ending
    /// before fails the run).
    pub lease_losses: usize,
    /// The process's peak resident memory (all members, the observer view, the client).
    pub peak_rss_mb: f64,
    /// CPU time of the whole process (every member's loops, the solver, the view builds).
    pub process_cpu_secs: f64,
}
