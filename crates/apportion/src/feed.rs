//! The member's event feed: turns views and fence changes into [`Event`]s, and keeps the
//! member's own keys as the member wants them while it may act.

use std::collections::BTreeSet;
use std::sync::Arc;

use apportion_core::away;
use apportion_core::values::{Decoder, MemberValue};
use apportion_store::{Compare, CompareOp, KeyRange, Op, Store, Txn};
use tokio::sync::mpsc;

use crate::cluster::Observed;
use crate::error::Error;
use crate::events::{self, Event};
use crate::member::{encode_member, Shared};
use crate::session::Fence;

/// Turns views and fence changes into the member's events. While fenced it keeps track of
/// holdings silently; when the fence lifts it replays them. It also puts the member key back
/// if it vanished while the lease is healthy (deleted by hand), and its value and
/// assignment statuses if they were garbled.
pub(crate) async fn feed_events<S, D>(
    shared: Arc<Shared<S, D>>,
    events: mpsc::UnboundedSender<Event>,
) where
    S: Store,
    D: Decoder,
{
    let mut states = shared.view.subscribe();
    let mut fence = shared.fence.clone();
    let mut held = events::Held::new();
    let mut fenced = false;
    let mut was_drained = false;
    let mut was_ready_to_restart = false;
    let mut out = Vec::new();
    loop {
        let observed = states.current();
        let now = fence.borrow_and_update().clone();
        let next = events::held(&observed.state);
        let drained = next.is_empty()
            && observed
                .state
                .local_member()
                .is_some_and(|m| observed.state.members()[m].value.is_exiting());
        match (&now, fenced) {
            (Fence::Healthy, false) => events::diff(&held, &next, &mut out),
            (Fence::Healthy, true) => {
                fenced = false;
                out.push(Event::Unfenced);
                events::replay(&next, &mut out);
            }
            (Fence::Fenced | Fence::Lost(_), false) => {
                fenced = true;
                out.push(Event::Fenced);
            }
            (Fence::Fenced | Fence::Lost(_), true) => {}
        }
        if drained && !was_drained {
            out.push(Event::Drained);
        }
        was_drained = drained;
        let ready_to_restart = away::ready_to_leave(&observed.state, &*shared.consistency);
        if ready_to_restart && !was_ready_to_restart {
            out.push(Event::ReadyToRestart);
        }
        was_ready_to_restart = ready_to_restart;
        held = next;
        for event in out.drain(..) {
            if events.send(event).is_err() {
                return;
            }
        }
        if let Fence::Lost(reason) = &now {
            tracing::error!(member = %shared.id, %reason, "member session lost");
            return;
        }
        if now == Fence::Healthy {
            // Cut short if the fence goes up: the loop must tell the application at once.
            let _ = shared.while_healthy(maintain(&shared, &observed)).await;
        }
        tokio::select! {
            changed = states.changed() => if changed.is_none() { return },
            changed = fence.changed() => if changed.is_err() { return },
        }
    }
}

/// Keeps the member's own keys as it wants them: announces the member again if its key
/// was deleted, writes back a garbled value or status, and writes a change of its own value
/// that the fence cut short.
async fn maintain<S: Store, D: Decoder>(
    shared: &Shared<S, D>,
    observed: &Observed<D>,
) -> Result<(), Error> {
    if observed.state.local_member().is_none() && observed.revision > 0 {
        reannounce(shared).await;
    }
    repair(shared, observed).await;
    forget_return(shared, observed).await;
    shared.adopt_edits(observed);
    let own = shared.own_value();
    if own.written < own.version {
        tracing::info!(member = %shared.id, "writing the member's value changed while fenced");
        shared.write_value().await?;
    }
    Ok(())
}

/// Deletes this member's away record once it has done its work: the member is back and
/// nothing it names is offered any more (it holds the items again, or they went
/// elsewhere). Left in place, it would hold this member's items back after a later crash
/// as if it were still coming back from the restart. Guarded on the record as read.
async fn forget_return<S: Store, D: Decoder>(shared: &Shared<S, D>, observed: &Observed<D>) {
    let state = &observed.state;
    if away::pending_return(state, &*shared.consistency) != Some(0) {
        return;
    }
    let Some(record) = state.away_record(&shared.id) else {
        return;
    };
    let key = shared.prefix.away_key(&shared.id);
    let delete = Txn::new()
        .when([Compare::mod_revision(
            key.as_bytes(),
            CompareOp::Equal,
            record.meta.mod_revision,
        )])
        .and_then([Op::Delete(KeyRange::key(key.as_bytes()))]);
    match shared.store.txn(delete).await {
        Ok(result) if result.succeeded => {
            tracing::info!(member = %shared.id, "back from being away; record deleted")
        }
        // The record changed since this view: the next view decides again.
        Ok(_) => {}
        Err(e) => tracing::warn!(member = %shared.id, error = %e, "cannot delete the away record"),
    }
}

/// Writes back this member's own keys that someone overwrote with a value that does not
/// decode (this view kept the last good one): its member value and its assignment statuses.
/// The member owns them, and a member that never read the good value cannot even tell the
/// key is there: as leader, it would place this member's items again, and never move them
/// away from it (so a draining member would never be drained).
async fn repair<S: Store, D: Decoder>(shared: &Shared<S, D>, observed: &Observed<D>) {
    if observed.rejected.is_empty() {
        return;
    }
    let rejected: BTreeSet<&str> = observed.rejected.iter().map(|r| r.key.as_str()).collect();
    if rejected.contains(shared.key.as_str()) {
        tracing::warn!(member = %shared.id, "member value garbled; writing it back");
        if let Err(e) = shared.write_value().await {
            tracing::warn!(member = %shared.id, error = %e, "cannot write the value back");
        }
    }
    for local in observed.state.local_assignments() {
        let key = shared.prefix.assignment_key(&local.assignment.key);
        if rejected.contains(key.as_str()) {
            tracing::warn!(member = %shared.id, %key, "assignment status garbled; writing it back");
            if let Err(e) = shared.write_status(&local.item.key, |_| {}).await {
                tracing::warn!(member = %shared.id, %key, error = %e, "cannot write the status back");
            }
        }
    }
}

/// Puts the member key back under the member's lease after it was deleted by someone else.
async fn reannounce<S: Store, D: Decoder>(shared: &Shared<S, D>) {
    let value = encode_member(&*shared.decoder, &shared.own_value().value);
    let Ok(value) = value else { return };
    let txn = Txn::new()
        .when([Compare::version(shared.key.clone(), CompareOp::Equal, 0)])
        .and_then([Op::put_with_lease(
            shared.key.clone(),
            value,
            shared.lease.id,
        )]);
    match shared.store.txn(txn).await {
        Ok(result) if result.succeeded => {
            tracing::warn!(member = %shared.id, "member key was deleted; announced it again");
            shared.view.wait_for_revision(result.revision).await;
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(member = %shared.id, error = %e, "cannot announce the member again")
        }
    }
}
