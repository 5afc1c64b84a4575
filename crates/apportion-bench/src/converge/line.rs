//! The benchmark's result: one JSON line, the same fields in both shapes (the member
//! processes' own figures are added when the members are processes), so that runs can be
//! compared across commits and shapes by a script.

use serde::Serialize;

/// The benchmark's result line.
#[derive(Debug, Serialize)]
pub struct Line {
    /// `etcd` or `memory`.
    pub store: &'static str,
    /// `in-process` (members are tasks of the benchmark process) or `processes` (members
    /// are `apportion member` processes, watched from outside).
    pub shape: &'static str,
    /// The arguments the run had (members at the start, before the kill).
    pub members: usize,
    /// Items placed.
    pub items: usize,
    /// Replicas per item.
    pub replication: u16,
    /// Zones the members were spread over.
    pub zones: usize,
    /// From the first item written to settled: every slot filled and ready, leader idle.
    /// In process the leader's round hook says when its round at the store's current
    /// revision planned nothing. Processes have no such hook: the state must then stay
    /// unchanged under the prefix for a quiet period (1 s, or twice the leader's longest
    /// solve if longer, from its metrics) and settled is when that state was first seen:
    /// the leader's last, idle, round is not counted there.
    pub settle_ms: f64,
    /// Rounds the leaders ran until settled (processes: every member's
    /// `apportion_rounds_total`, summed).
    pub rounds: usize,
    /// Transactions the leaders wrote until settled (`apportion_txns_total`).
    pub txns: usize,
    /// Of those, the ones whose guards failed (`apportion_failed_txns_total`).
    pub failed_txns: usize,
    /// Changes written (adds, removes, slot moves, release requests;
    /// `apportion_changes_total` over every kind).
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
    /// Members whose lease was lost during the run; must be 0. In process: sessions that
    /// ended (after the settle; one ending before fails the run). Processes: members that
    /// said they joined again under a new lease (`"event":"rejoined"`), over the whole run.
    pub lease_losses: usize,
    /// This process's peak resident memory: in process, every member, the observer view
    /// and the client; with processes, the observer and the client only.
    pub peak_rss_mb: f64,
    /// CPU time of this process: in process, every member's loops, the solver, the view
    /// builds; with processes, the observer's (its view builds) only.
    pub process_cpu_secs: f64,
    /// The member processes' figures (only when the members are processes).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub processes: Option<ProcessFigures>,
}

/// What the member processes used, read from `/proc` while each was still alive: just
/// before it was killed (the refill's victim) or stopped (the others, at the end).
#[derive(Debug, Serialize)]
pub struct ProcessFigures {
    /// Each member's peak resident memory (`VmHWM`), in MiB.
    pub peak_rss_mb_per_member: Spread,
    /// CPU time (user and system) of the member that led at the end: the solves, the
    /// plans, the writes.
    pub leader_cpu_secs: Option<f64>,
    /// CPU time of every member together (the victim's up to its kill).
    pub members_cpu_secs: f64,
}

/// The largest and the median of one figure over the members.
#[derive(Debug, Serialize)]
pub struct Spread {
    /// The largest value.
    pub max: f64,
    /// The middle value (the upper of the two middle ones for an even count).
    pub median: f64,
}

impl Spread {
    /// The spread of `values` (both 0 when there are none).
    pub(super) fn of(mut values: Vec<f64>) -> Spread {
        values.sort_by(f64::total_cmp);
        Spread {
            max: values.last().copied().unwrap_or(0.0),
            median: values.get(values.len() / 2).copied().unwrap_or(0.0),
        }
    }
}
