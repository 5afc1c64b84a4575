//! The application each simulated member runs: what a real service would do with its
//! events, reduced to what the library needs to see. It is ready as soon as it is assigned
//! an item, lets go of an exclusive item as soon as it is asked, and leaves once drained.
//! Every event goes to the [`Ledger`] first, so the single-owner check sees the order in
//! which the application acted.

use std::sync::{Arc, Mutex};

use apportion::core::values::JsonDecoder;
use apportion::store::Store;
use apportion::{Error, Event, Member};
use tokio::sync::oneshot;

use super::ledger::Ledger;

/// Serves `member`'s events until it has drained and left (`Ok`) or its session ended
/// (`Err`). A message on `drain` starts the graceful exit.
pub async fn serve<S: Store>(
    mut member: Member<S, JsonDecoder>,
    mut drain: oneshot::Receiver<()>,
    ledger: Arc<Mutex<Ledger>>,
) -> Result<(), Error> {
    let name = member.id().to_string();
    let mut draining = false;
    loop {
        tokio::select! {
            event = member.next_event() => {
                let Some(event) = event else {
                    return Err(member.session_error().unwrap_or_else(|| Error::LeaseLost {
                        member: name.clone(),
                        reason: "the event stream ended".into(),
                    }));
                };
                lock(&ledger).record(&name, &event);
                match event {
                    // An item may already have moved on by the time its status is written;
                    // the next event says so, so a refusal here needs no action.
                    Event::Assigned { item, .. } => {
                        let _ = member.mark_ready(&item).await;
                    }
                    Event::ReleaseRequested { item } => {
                        let _ = member.release(&item).await;
                    }
                    Event::Drained => return member.leave().await,
                    _ => {}
                }
            }
            Ok(()) = &mut drain, if !draining => {
                draining = true;
                member.begin_drain().await?;
            }
        }
    }
}

/// Locks the ledger, whether or not another task panicked while holding it (the record
/// stays usable: every update is a single push or retain).
pub fn lock(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(|e| e.into_inner())
}
