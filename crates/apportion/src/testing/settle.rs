//! When a cluster has settled: the one definition every judge of a cluster uses.
//!
//! A cluster is settled when the leader has planned from the store as it is and found
//! nothing to change ([`at_rest`]), the view shows the store at that same revision, and the
//! state is the end of every story ([`is_settled_state`]): every copy ready, none being
//! released, none dangling. Asking only that nothing changed for a while would pass a
//! cluster whose leader is still solving; asking only for an idle round would pass a state
//! whose copies are still loading. The leader's word comes from its [`RoundHook`]; where no
//! hook reaches it (members in other processes), from its `apportion_idle_round_revision`
//! gauge, which says the same in one value.
//!
//! [`RoundHook`]: crate::testing::RoundHook

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use apportion_core::state::State;
use apportion_core::values::{AssignmentValue, Decoder};
use apportion_store::{Revision, Store, StoreError};
use tokio::time::Instant;

use crate::allocator::RoundReport;
use crate::cluster::{ClusterView, Observed, StateOf};

/// Whether `state` is what a settled cluster looks like: every copy is ready, none is being
/// released (a pending release means a handover is under way), and none is dangling (left
/// by an item or member that is gone, which the leader still has to remove).
pub fn is_settled_state<I, M, A: AssignmentValue>(state: &State<I, M, A>) -> bool {
    state.dangling().is_empty()
        && state
            .assignments()
            .iter()
            .all(|a| a.value.is_ready() && !a.value.is_releasing())
}

/// Whether `round`, the leader's latest, planned from the store as it is at `revision`
/// and found nothing to change: a leader plans again within moments of any change, so an
/// idle round at the current revision means it has nothing left to do.
pub fn at_rest(round: Option<&RoundReport>, revision: Revision) -> bool {
    round.is_some_and(|r| r.idle && r.revision == revision)
}

/// The store's current revision, and `view`'s state once it has caught up with it: the
/// state to judge, since an older one may miss the last change.
pub async fn caught_up<S: Store, D: Decoder>(
    store: &S,
    view: &ClusterView<D>,
) -> Result<(Revision, Arc<Observed<D>>), StoreError> {
    let revision = store.revision().await?;
    view.wait_for_revision(revision).await;
    Ok((revision, view.current()))
}

/// One look: the settled state if the cluster is settled right now. `leader_round` gives
/// the latest round of the member that leads in the state it is shown (`None`: none known),
/// so that the caller decides whose reports count.
pub async fn settled_now<S: Store, D: Decoder>(
    store: &S,
    view: &ClusterView<D>,
    leader_round: impl FnOnce(&StateOf<D>) -> Option<RoundReport>,
) -> Result<Option<Arc<Observed<D>>>, StoreError> {
    let (revision, observed) = caught_up(store, view).await?;
    let settled = observed.revision == revision
        && at_rest(leader_round(&observed.state).as_ref(), revision)
        && is_settled_state(&observed.state);
    Ok(settled.then_some(observed))
}

/// Waits until the cluster is settled ([`settled_now`]), looking every `poll`, and returns
/// that state; gives up after `limit`. A store error only delays the answer (the store may
/// be failing over): it is kept for the diagnosis if the cluster never settles.
pub async fn settle<S: Store, D: Decoder>(
    store: &S,
    view: &ClusterView<D>,
    leader_round: impl Fn(&StateOf<D>) -> Option<RoundReport>,
    poll: Duration,
    limit: Duration,
) -> Result<Arc<Observed<D>>, Unsettled> {
    let deadline = Instant::now() + limit;
    let mut store_error = None;
    while Instant::now() < deadline {
        tokio::time::sleep(poll).await;
        // A look waits for the view to reach the store's revision, which a write outside
        // the prefix never gives it: the limit bounds the look too.
        match tokio::time::timeout_at(deadline, settled_now(store, view, &leader_round)).await {
            Ok(Ok(Some(observed))) => return Ok(observed),
            Ok(Ok(None)) | Err(_) => {}
            Ok(Err(e)) => store_error = Some(e),
        }
    }
    let observed = view.current();
    let round = leader_round(&observed.state);
    Err(Unsettled::diagnose(limit, &observed, round, store_error))
}

/// The cluster did not settle in time, and what it looked like then.
#[derive(Debug)]
pub struct Unsettled {
    /// How long it was given.
    pub limit: Duration,
    /// Why it was not settled, as a sentence for a failure message.
    pub diagnosis: String,
}

impl Unsettled {
    fn diagnose<D: Decoder>(
        limit: Duration,
        observed: &Observed<D>,
        round: Option<RoundReport>,
        store_error: Option<StoreError>,
    ) -> Self {
        let state = &observed.state;
        let leader = state.leader().map(|i| state.members()[i].key.to_string());
        let round = match round {
            Some(r) => format!(
                "its last round {} at revision {} {}",
                r.round,
                r.revision,
                if r.idle { "was idle" } else { "made changes" }
            ),
            None => "no round of it known".to_string(),
        };
        let copies = state.assignments();
        let unready = copies.iter().filter(|a| !a.value.is_ready()).count();
        let releasing = copies.iter().filter(|a| a.value.is_releasing()).count();
        let mut diagnosis = format!(
            "view at revision {}, leader {}, {round}, {unready} assignment(s) not ready, \
             {releasing} releasing, {} dangling",
            observed.revision,
            leader.as_deref().unwrap_or("none"),
            state.dangling().len()
        );
        if let Some(e) = store_error {
            diagnosis.push_str(&format!("; the store last said: {e}"));
        }
        Unsettled { limit, diagnosis }
    }
}

impl fmt::Display for Unsettled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the cluster did not settle within {:?}: {}",
            self.limit, self.diagnosis
        )
    }
}

impl std::error::Error for Unsettled {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_rest_needs_an_idle_round_at_the_revision() {
        let round = |idle, revision| RoundReport {
            round: 1,
            revision,
            idle,
            changes: 0,
            txns: 0,
            failed_txns: 0,
            unfilled_slots: 0,
        };
        assert!(at_rest(Some(&round(true, 7)), 7));
        assert!(!at_rest(Some(&round(true, 6)), 7));
        assert!(!at_rest(Some(&round(false, 7)), 7));
        assert!(!at_rest(None, 7));
    }
}
