//! The allocation loop, as the crate documentation describes it ("How it works"). The
//! leader is `State::leader`; a leader that loses its key simply stops, and assignments
//! stay where they are. A solve is reused while the solver's inputs are unchanged, and
//! rounds repeat until one has nothing to do; the loop then sleeps until the next change.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apportion_core::planner::{self, Consistency};
use apportion_core::restrain::restrain;
use apportion_core::values::{Decoder, MemberValue};
use apportion_store::{Compare, CompareOp, Store};
use tokio::sync::watch;
use tracing::Instrument;

use crate::cluster::Observed;
use crate::member::Shared;
use crate::session::Fence;
use crate::solve::{problem, solve, Solved};
use crate::writer;

/// How long a round that wrote nothing waits for the next change before planning again.
const CATCH_UP: std::time::Duration = Duration::from_secs(1);

/// How long a round waits for the view to show its own writes. They are under the prefix,
/// so the view gets there unless its watch is broken: planning sooner, from a view without
/// them, would plan them again, and every such transaction would fail its guards.
const OWN_WRITES: std::time::Duration = Duration::from_secs(30);

/// How many of a round's transactions are in flight at once. They touch disjoint items, so
/// their order does not matter; keeping a few in flight hides the round trip (and etcd's
/// disk sync, which it shares between concurrent writes), while a bound keeps a big round
/// from flooding the store.
const TXNS_IN_FLIGHT: usize = 4;

/// The wall clock the loop judges freezes by (they end at a time the operator chose),
/// advanced by the runtime's clock from one reading of the system's: under a paused test
/// clock a freeze ends when the test's time reaches it, and a step of the system clock
/// (NTP) while the loop runs does not end a freeze early or stretch it.
struct WallClock {
    unix_at_start: Duration,
    started: tokio::time::Instant,
}

impl WallClock {
    fn start() -> Self {
        WallClock {
            unix_at_start: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
            started: tokio::time::Instant::now(),
        }
    }

    /// Whole seconds since the Unix epoch.
    fn unix_now(&self) -> u64 {
        (self.unix_at_start + self.started.elapsed()).as_secs()
    }
}

/// What one round did, for tests and monitoring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoundReport {
    /// Counts the rounds of this member's loop, from 1.
    pub round: u64,
    /// The store revision of the view the round planned from.
    pub revision: i64,
    /// The round found nothing to change.
    pub idle: bool,
    /// Changes planned (adds, removes, slot moves, release requests).
    pub changes: usize,
    /// Transactions written.
    pub txns: usize,
    /// Transactions whose guards failed (the view was stale, or leadership moved).
    pub failed_txns: usize,
    /// Replica slots the solver could not fill.
    pub unfilled_slots: u64,
}

/// Called after every round the local member leads.
pub type RoundHook = Arc<dyn Fn(&RoundReport) + Send + Sync>;

/// The check that decides when a replica is consistent.
pub type ConsistencyCheck<D> =
    Arc<dyn Consistency<<D as Decoder>::Item, <D as Decoder>::Assignment> + Send + Sync>;

/// How many solves in a row may fail before the leader steps down: one failure can be a
/// state the solver chokes on (it plans nothing and waits for the next change); several
/// in a row mean this member cannot lead (too slow, or a defect that another member's
/// version may not have), and holding on to leadership would leave nobody allocating.
const FAILED_SOLVES_BEFORE_STEPPING_DOWN: u32 = 3;

/// Everything the loop needs.
pub(crate) struct Allocator<S: Store, D: Decoder> {
    /// The member it runs in: its store, view, keys, and its own value (to step down).
    pub member: Arc<Shared<S, D>>,
    pub fence: watch::Receiver<Fence>,
    pub consistency: ConsistencyCheck<D>,
    pub hook: Option<RoundHook>,
    /// The solver's step budget; `None`: derived from each instance's size.
    pub solve_budget: Option<u64>,
}

impl<S, D> Allocator<S, D>
where
    S: Store,
    D: Decoder,
{
    /// Runs rounds for as long as the member lives.
    pub(crate) async fn run(mut self) {
        let mut states = self.member.view.subscribe();
        // The last solve's inputs hash and its plan; no plan when that solve failed, so the
        // same inputs are not solved again on every status change.
        let mut solved: Option<(u64, Option<Solved>)> = None;
        let mut round = 0u64;
        let mut failed_solves = 0u32;
        let clock = WallClock::start();
        loop {
            let observed = states.current();
            let leads = observed.state.is_local_leader() && *self.fence.borrow() == Fence::Healthy;
            metrics::gauge!("apportion_leader").set(if leads { 1.0 } else { 0.0 });
            if !leads {
                solved = None;
            } else {
                round += 1;
                let span = tracing::info_span!("round", round, revision = observed.revision);
                let report = self
                    .round(round, &observed, &mut solved, &mut failed_solves, &clock)
                    .instrument(span)
                    .await;
                if failed_solves >= FAILED_SOLVES_BEFORE_STEPPING_DOWN {
                    failed_solves = 0;
                    self.step_down().await;
                }
                // One gauge, so that a scrape never pairs one round's revision with another's
                // idleness (`testing::at_rest`, for tools in another process).
                let idle_at = if report.idle {
                    report.revision as f64
                } else {
                    -1.0
                };
                metrics::gauge!("apportion_idle_round_revision").set(idle_at);
                if let Some(hook) = &self.hook {
                    hook(&report);
                }
                if !report.idle {
                    continue;
                }
            }
            // A freeze ends by itself, with no change in the store to wake the loop.
            let now = clock.unix_now();
            let thaw = observed
                .state
                .settings()
                .frozen_at(now)
                .map(|f| Duration::from_secs(f.until_unix_secs - now));
            tokio::select! {
                changed = states.changed() => if changed.is_none() { return },
                changed = self.fence.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(thaw.unwrap_or_default()), if leads && thaw.is_some() => {}
            }
        }
    }

    /// Hands leadership to the next-oldest member: marks this member's value as yielding
    /// (see `MemberValue::is_yielding`). It keeps its items and goes on serving; its
    /// assignments stay where they are while the next leader takes over.
    async fn step_down(&self) {
        let member = &self.member;
        tracing::error!(member = %member.id, "solves keep failing; stepping down as leader");
        metrics::counter!("apportion_leader_step_downs_total").increment(1);
        if let Err(e) = member.change_value(|v| v.set_yielding(true)).await {
            tracing::warn!(member = %member.id, error = %e, "cannot step down");
        }
    }

    async fn round(
        &self,
        round: u64,
        observed: &Arc<Observed<D>>,
        solved: &mut Option<(u64, Option<Solved>)>,
        failed_solves: &mut u32,
        clock: &WallClock,
    ) -> RoundReport {
        metrics::counter!("apportion_rounds_total").increment(1);
        let state = &observed.state;
        let hash = state.solver_hash();
        if solved.as_ref().is_none_or(|(h, _)| *h != hash) {
            let started = Instant::now();
            match solve(problem(state, &*self.consistency), self.solve_budget).await {
                Ok(solution) => {
                    *failed_solves = 0;
                    metrics::histogram!("apportion_solve_seconds")
                        .record(started.elapsed().as_secs_f64());
                    metrics::gauge!("apportion_unfilled_slots").set(solution.unfilled_slots as f64);
                    *solved = Some((hash, Some(solution)));
                }
                Err(e) => {
                    metrics::counter!("apportion_solve_failures_total").increment(1);
                    tracing::error!(
                        revision = observed.revision,
                        error = %e,
                        "solve failed; the assignment stays as it is until the state changes"
                    );
                    *solved = Some((hash, None));
                    *failed_solves += 1;
                }
            }
        }
        let mut report = RoundReport {
            round,
            revision: observed.revision,
            idle: true,
            changes: 0,
            txns: 0,
            failed_txns: 0,
            unfilled_slots: 0,
        };
        let Some((_, Some(solution))) = solved.as_ref() else {
            return report;
        };
        report.unfilled_slots = solution.unfilled_slots;
        let plans = planner::plan(state, &solution.desired, &*self.consistency);
        let plans = restrain(
            plans,
            state,
            state.settings(),
            clock.unix_now(),
            &*self.consistency,
        );
        if plans.is_empty() {
            return report;
        }
        report.idle = false;
        for change in plans.iter().flat_map(|p| &p.changes) {
            report.changes += 1;
            let kind = match change {
                planner::Change::Add { .. } => "add",
                planner::Change::Remove(_) => "remove",
                planner::Change::Reslot { .. } => "reslot",
                planner::Change::RequestRelease(_) => "release",
            };
            metrics::counter!("apportion_changes_total", "kind" => kind).increment(1);
        }
        let leader = &state.members()[state.leader().expect("a leader leads")];
        let fence = Compare::mod_revision(
            self.member.prefix.member_key(&leader.key),
            CompareOp::Equal,
            leader.meta.mod_revision,
        );
        let txns = match writer::transactions(
            &self.member.prefix,
            &*self.member.decoder,
            observed.revision,
            fence,
            &plans,
            self.member.store.max_txn_ops(),
        ) {
            Ok(txns) => txns,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode the round's changes");
                report.idle = true;
                return report;
            }
        };
        // The newest revision this round wrote (failed transactions report the store's
        // revision, which may come from a write elsewhere, outside the view).
        let mut reached = observed.revision;
        let mut errors = 0;
        let mut waiting = txns.into_iter();
        let mut in_flight = tokio::task::JoinSet::new();
        loop {
            while in_flight.len() < TXNS_IN_FLIGHT {
                let Some(txn) = waiting.next() else { break };
                let store = self.member.store.clone();
                in_flight.spawn(async move { store.txn(txn).await });
            }
            let Some(written) = in_flight.join_next().await else {
                break;
            };
            let written = written.unwrap_or_else(|e| {
                Err(apportion_store::StoreError::Other(format!(
                    "the transaction's task failed: {e}"
                )))
            });
            report.txns += 1;
            match written {
                Ok(result) if result.succeeded => reached = reached.max(result.revision),
                Ok(_) => report.failed_txns += 1,
                Err(e) => {
                    report.failed_txns += 1;
                    errors += 1;
                    tracing::warn!(error = %e, "allocation transaction failed");
                }
            }
        }
        metrics::counter!("apportion_txns_total").increment(report.txns as u64);
        metrics::counter!("apportion_failed_txns_total").increment(report.failed_txns as u64);
        tracing::debug!(?report, "round written");
        if errors > 0 {
            // The store is failing: do not hammer it.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // Let the view catch up before planning again: with what was written, or, when
        // nothing landed, with whatever change made the guards fail. The guards, not this
        // wait, keep the next round safe, so a wait that runs long just ends.
        let (target, wait) = if reached > observed.revision {
            (reached, OWN_WRITES)
        } else {
            (observed.revision + 1, CATCH_UP)
        };
        let _ = tokio::time::timeout(wait, self.member.view.wait_for_revision(target)).await;
        report
    }
}
