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

/// How a member claims its key.
pub(crate) struct Claim<'a> {
    pub member: &'a MemberId,
    pub key: &'a str,
    pub value: &'a [u8],
    pub lease: LeaseId,
    /// The longest wait for another holder's lease to end.
    pub timeout: Duration,
    /// The lease TTL: a holder seen renewing over this long is alive.
    pub ttl: Duration,
}

/// How many renewals of the holder's lease, seen over at least a TTL, prove its process
/// alive. The end of a lease is estimated as now plus its time to live (whole seconds, so
/// up to a second early): a lease nobody renews keeps its estimated end, give or take that
/// second, so its estimate moves forward by more than half a second at most once, and once
/// more for each store election (which extends every lease). A live process renews every
/// second or more often, moving the estimate forward by a second at each look.
const RENEWALS_OF_A_LIVE_HOLDER: u32 = 3;

/// How far the estimated end of the holder's lease must move forward to count as renewed.
const RENEWED_BY: Duration = Duration::from_millis(500);

/// Creates the member key under the claim's lease, or takes it over if it is already
/// ours. If another lease holds it (a previous process of this member that has not expired
/// yet, or a live duplicate), follows that lease's time to live and waits for the key to
/// go, up to the timeout, or until the holder has renewed its lease often enough to be
/// known alive.
pub(crate) async fn announce<S: Store>(store: &S, claim: &Claim<'_>) -> Result<(), Error> {
    let start = Instant::now();
    let key = claim.key;
    let lease = claim.lease;
    // The holder, the latest estimated end of its lease, and how often it moved forward.
    let mut followed: Option<(Option<LeaseId>, Option<Instant>, u32)> = None;
    loop {
        let txn = Txn::new()
            .when([Compare::version(key, CompareOp::Equal, 0)])
            .and_then([Op::put_with_lease(key, claim.value, lease)])
            .or_else([Op::Range(KeyRange::key(key))]);
        let result = store.txn(txn).await?;
        if result.succeeded {
            return Ok(());
        }
        let holder = match result.results.first() {
            Some(OpResult::Range(kvs)) => kvs.first().map(|kv| kv.lease),
            _ => None,
        };
        match holder {
            None => continue,
            Some(Some(holder)) if holder == lease => {
                let update = Txn::new()
                    .when([Compare::lease(key, CompareOp::Equal, Some(lease))])
                    .and_then([Op::put_with_lease(key, claim.value, lease)]);
                if store.txn(update).await?.succeeded {
                    return Ok(());
                }
            }
            Some(holder) => {
                // A key without a lease has no time left: it stays until someone deletes it.
                let left = match holder {
                    Some(holder) => store.time_to_live(holder).await?,
                    None => None,
                };
                let end = left.map(|left| Instant::now() + left);
                let (latest, renewals) = match followed {
                    Some((seen, latest, n)) if seen == holder => {
                        let moved =
                            matches!((latest, end), (Some(l), Some(e)) if e > l + RENEWED_BY);
                        (latest.max(end), n + u32::from(moved))
                    }
                    _ => (end, 0),
                };
                followed = Some((holder, latest, renewals));
                let waited = start.elapsed();
                let alive = renewals >= RENEWALS_OF_A_LIVE_HOLDER && waited >= claim.ttl;
                if waited >= claim.timeout || alive {
                    return Err(Error::Taken {
                        member: claim.member.to_string(),
                        lease: holder,
                        time_left: left,
                        renewed: renewals >= RENEWALS_OF_A_LIVE_HOLDER,
                        waited,
                    });
                }
                if renewals == 0 {
                    tracing::info!(member = %claim.member, holder = ?holder.map(|l| l.to_string()), time_left = ?left, "member key held by another lease; waiting for it to end");
                }
                // Wait for the key to go, looking at the holder's lease again every second.
                let slice = (claim.timeout - waited).min(Duration::from_secs(1));
                let mut watch = store.watch(KeyRange::key(key), result.revision + 1).await?;
                let gone = async {
                    while let Some(Ok(batch)) = watch.next().await {
                        if batch.events.iter().any(|e| e.kind == EventKind::Delete) {
                            return;
                        }
                    }
                };
                let _ = tokio::time::timeout(slice, gone).await;
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
