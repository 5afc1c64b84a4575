//! The member's claim on the store: announcing its key under its lease, and fencing, which
//! tells the application to stop serving before the lease could expire.

use std::time::Duration;

use apportion_core::keys::MemberId;
use apportion_store::{
    Compare, CompareOp, EventKind, KeyRange, LeaseId, LeaseStatus, Op, OpResult, Store, Txn,
};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::Error;

/// Creates the member key under `lease`, or takes it over if it is already ours. If another
/// lease holds it (a previous process of this member that has not expired yet, or a live
/// duplicate), waits for that key to go, up to `timeout`.
pub(crate) async fn announce<S: Store>(
    store: &S,
    member: &MemberId,
    key: &str,
    value: &[u8],
    lease: LeaseId,
    timeout: Duration,
) -> Result<(), Error> {
    let start = Instant::now();
    loop {
        let claim = Txn::new()
            .when([Compare::version(key, CompareOp::Equal, 0)])
            .and_then([Op::put_with_lease(key, value, lease)])
            .or_else([Op::Range(KeyRange::key(key))]);
        let result = store.txn(claim).await?;
        if result.succeeded {
            return Ok(());
        }
        let holder = match result.results.first() {
            Some(OpResult::Range(kvs)) => kvs.first().map(|kv| kv.lease),
            _ => None,
        };
        match holder {
            None => continue,
            Some(holder) if holder == lease => {
                let update = Txn::new()
                    .when([Compare::lease(key, CompareOp::Equal, lease)])
                    .and_then([Op::put_with_lease(key, value, lease)]);
                if store.txn(update).await?.succeeded {
                    return Ok(());
                }
            }
            Some(holder) => {
                let waited = start.elapsed();
                if waited >= timeout {
                    return Err(Error::Taken {
                        member: member.to_string(),
                        lease: holder,
                        waited,
                    });
                }
                tracing::info!(%member, holder, "member key held by another lease; waiting for it to end");
                let mut watch = store.watch(KeyRange::key(key), result.revision + 1).await?;
                let gone = async {
                    while let Some(Ok(batch)) = watch.next().await {
                        if batch.events.iter().any(|e| e.kind == EventKind::Delete) {
                            return;
                        }
                    }
                };
                let _ = tokio::time::timeout(timeout - waited, gone).await;
            }
        }
    }
}

/// Whether the member may serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fence {
    /// Renewals are acknowledged in time.
    Healthy,
    /// No acknowledgement for too long: stop serving.
    Fenced,
    /// The lease is gone, with the reason: the session is over.
    Lost(String),
}

/// Follows the keep-alive status and publishes the fence: fenced from `margin` before the
/// earliest instant the store may expire the lease, healthy again once a renewal is
/// acknowledged in time, lost once the store says the lease is gone.
pub(crate) async fn guard_lease(
    mut status: watch::Receiver<LeaseStatus>,
    margin: Duration,
    fence: watch::Sender<Fence>,
) {
    loop {
        let current = status.borrow_and_update().clone();
        if current.expired {
            fence.send_replace(Fence::Lost(
                "the store reports the lease expired or revoked".into(),
            ));
            return;
        }
        let fence_at = current
            .deadline()
            .checked_sub(margin)
            .unwrap_or(current.last_ack);
        let fenced = Instant::now() >= fence_at;
        let next = if fenced {
            Fence::Fenced
        } else {
            Fence::Healthy
        };
        fence.send_if_modified(|f| {
            let changed = *f != next;
            if changed {
                tracing::warn!(fence = ?next, last_ack = ?current.last_ack, "lease fence changed");
                metrics::counter!("apportion_fencing_events_total", "event" => if fenced { "fenced" } else { "unfenced" }).increment(1);
                *f = next;
            }
            changed
        });
        tokio::select! {
            changed = status.changed() => if changed.is_err() { return },
            () = tokio::time::sleep_until(fence_at), if !fenced => {}
        }
    }
}
