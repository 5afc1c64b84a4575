//! The allocation loop, as the crate documentation describes it ("How it works"). The
//! leader is `State::leader`; a leader that loses its key simply stops, and assignments
//! stay where they are. A solve is reused while the solver's inputs are unchanged, and
//! rounds repeat until one has nothing to do; the loop then sleeps until the next change.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::hash::{Hash, Hasher};

use apportion_core::away;
use apportion_core::planner::{self, Consistency};
use apportion_core::restrain::restrain;
use apportion_core::values::{Decoder, MemberValue};
use apportion_store::{Compare, CompareOp, Op, Store, Txn};
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
///
/// [`MemberOptions::wall_clock`](crate::testing::MemberOptions::wall_clock) can fix the
/// reading instead: the simulation does, so that whether a freeze is in force at a given
/// simulated instant, hence the whole run, is a function of its seed and not of the day it
/// runs on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WallClock {
    unix_at_start: Duration,
    started: tokio::time::Instant,
}

impl WallClock {
    /// The system clock, read now.
    pub(crate) fn system() -> Self {
        WallClock::fixed(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
            tokio::time::Instant::now(),
        )
    }

    /// A clock that reads `unix` (time since the Unix epoch) at the runtime instant `at`,
    /// and advances with the runtime's clock from there.
    pub(crate) fn fixed(unix: Duration, at: tokio::time::Instant) -> Self {
        WallClock {
            unix_at_start: unix,
            started: at,
        }
    }

    /// Whole seconds since the Unix epoch.
    pub(crate) fn unix_now(&self) -> u64 {
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
    /// The clock freezes end by.
    pub clock: WallClock,
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
        let clock = self.clock;
        // The state before this one, to see members vanish (`record_lost`); kept while not
        // leading too, so that a new leader sees the loss of the old one, but only under a
        // refill delay: on a large cluster a second state is a lot of memory.
        let mut previous: Option<Arc<Observed<D>>> = None;
        loop {
            let observed = states.current();
            let leads = observed.state.is_local_leader() && *self.fence.borrow() == Fence::Healthy;
            let delayed = observed.state.settings().refill_delay_secs.is_some();
            let before = std::mem::replace(&mut previous, delayed.then(|| observed.clone()));
            if let Some(before) = before.filter(|b| leads && b.revision < observed.revision) {
                if self.record_lost(&before, &observed, &clock).await {
                    // Plan from a view with the records, or the items would be refilled.
                    continue;
                }
            }
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

    /// Writes an away record for each member that vanished between `before` and `observed`
    /// without draining or leaving one of its own, when the cluster has a refill delay:
    /// its items then wait for it (see `apportion_core::away`). Each record is created only
    /// if absent, under one lease of the delay's length. Returns whether it wrote any
    /// (after waiting for the view to show them).
    async fn record_lost(
        &self,
        before: &Observed<D>,
        observed: &Observed<D>,
        clock: &WallClock,
    ) -> bool {
        let Some(delay) = observed.state.settings().refill_delay_secs else {
            return false;
        };
        let lost: Vec<_> = away::lost_members(&before.state, &observed.state)
            .into_iter()
            .filter(|(_, items)| !items.is_empty())
            .collect();
        if lost.is_empty() {
            return false;
        }
        let store = &self.member.store;
        let lease = match store.grant(delay as i64).await {
            Ok(lease) => lease,
            Err(e) => {
                tracing::warn!(error = %e, "cannot record the members lost; their items are refilled at once");
                return false;
            }
        };
        let until_unix_secs = clock.unix_now() + delay;
        let mut reached = 0;
        for (member, items) in lost {
            let key = self.member.prefix.away_key(&member);
            let held = items.len();
            let record = away::AwayRecord {
                reason: away::AwayReason::Lost,
                until_unix_secs,
                items,
            };
            let txn = Txn::new()
                .when([Compare::create_revision(
                    key.as_bytes(),
                    CompareOp::Equal,
                    0,
                )])
                .and_then([Op::put_with_lease(
                    key.as_bytes(),
                    record.encode(),
                    lease.id,
                )]);
            match store.txn(txn).await {
                Ok(result) if result.succeeded => {
                    reached = result.revision;
                    tracing::info!(%member, items = held, delay_secs = delay, "member lost; its items wait for it");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(%member, error = %e, "cannot record a lost member"),
            }
        }
        if reached > 0 {
            let _ =
                tokio::time::timeout(OWN_WRITES, self.member.view.wait_for_revision(reached)).await;
        }
        reached > 0
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
        // What away members hold back depends on which copies are ready, which the
        // state's hash leaves out: both decide whether to solve again.
        let holds = away::holds(state, &*self.consistency);
        let hash = {
            let mut hasher = std::hash::DefaultHasher::new();
            (state.solver_hash(), &holds).hash(&mut hasher);
            hasher.finish()
        };
        metrics::gauge!("apportion_held_items").set(holds.held_items() as f64);
        if solved.as_ref().is_none_or(|(h, _)| *h != hash) {
            let started = Instant::now();
            let problem = problem(state, &*self.consistency, &holds);
            match solve(problem, self.solve_budget, &holds).await {
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
