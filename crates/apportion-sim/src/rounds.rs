//! What the allocators' round hooks report: each member's latest round (to tell when the
//! leader is at rest), whether the solve behind a round's writes placed every replica, and
//! totals for the figures.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use apportion::testing::{RoundHook, RoundReport};

/// The rounds seen so far.
#[derive(Default)]
pub struct Rounds {
    latest: BTreeMap<String, RoundReport>,
    /// Rounds run, by every leader.
    pub total: u64,
    /// Rounds that planned changes.
    pub busy: u64,
    /// Transactions whose guards failed or that did not reach the store.
    pub failed_txns: u64,
    /// Per revision a round planned from, the most replica slots its solve left unfilled.
    unfilled: BTreeMap<i64, u64>,
}

/// The rounds, shared with the hooks.
pub type SharedRounds = Arc<Mutex<Rounds>>;

impl Rounds {
    /// Locks shared rounds.
    pub fn lock(shared: &SharedRounds) -> MutexGuard<'_, Rounds> {
        shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A round hook for `member` that reports here.
    pub fn hook(shared: &SharedRounds, member: String) -> RoundHook {
        let shared = shared.clone();
        Arc::new(move |report: &RoundReport| {
            let mut rounds = Rounds::lock(&shared);
            rounds.total += 1;
            rounds.busy += u64::from(!report.idle);
            rounds.failed_txns += report.failed_txns as u64;
            let unfilled = rounds.unfilled.entry(report.revision).or_default();
            *unfilled = (*unfilled).max(report.unfilled_slots);
            rounds.latest.insert(member.clone(), report.clone());
        })
    }

    /// How many replica slots the solve of the round that planned from `revision` left
    /// unfilled (the most, if two leaders did); `None` if no round reported on it.
    pub fn unfilled_at(&self, revision: i64) -> Option<u64> {
        self.unfilled.get(&revision).copied()
    }

    /// `member`'s latest round: whether it is at rest, and diagnostics.
    pub fn latest(&self, member: &str) -> Option<&RoundReport> {
        self.latest.get(member)
    }
}
