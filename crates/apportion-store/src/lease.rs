//! Keeping a lease alive, with a status that tells how fresh the last acknowledgement is.
//!
//! One renewal loop serves every backend: a backend only says how to send one renewal. The
//! status is what self-fencing reads: a member that has not had a renewal acknowledged for
//! nearly a TTL must assume the store may expire its lease and stop serving.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::StoreError;
use crate::types::{Lease, Result};

/// What is known about a kept-alive lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseStatus {
    /// When the last acknowledged renewal was *sent* (or the lease granted, before any
    /// renewal). The store cannot expire the lease before `last_ack + ttl`, since it
    /// received the renewal after this instant, which makes this the safe base for fencing.
    pub last_ack: Instant,
    /// The TTL the store reported with the last acknowledgement, in seconds.
    pub ttl_secs: i64,
    /// The store said the lease no longer exists: its keys are gone. Final.
    pub expired: bool,
    /// The last renewal failure since the last acknowledgement, if any.
    pub error: Option<String>,
}

impl LeaseStatus {
    /// The earliest instant at which the store may consider the lease expired.
    pub fn deadline(&self) -> Instant {
        self.last_ack + Duration::from_secs(self.ttl_secs.max(0) as u64)
    }
}

/// How often a lease of `ttl_secs` is renewed: three times per TTL, and at least once a
/// second. Renewals are small; renewing often keeps the last acknowledgement fresh, so a
/// store outage (an etcd leader election) can last longer before the member must fence.
pub fn renewal_period(ttl_secs: i64) -> Duration {
    Duration::from_millis((ttl_secs.max(1) as u64 * 1000 / 3).clamp(100, 1000))
}

/// A running keep-alive: renews the lease every [`renewal_period`] until dropped.
#[derive(Debug)]
pub struct KeepAlive {
    lease: Lease,
    status: watch::Receiver<LeaseStatus>,
    task: JoinHandle<()>,
}

impl KeepAlive {
    /// The lease being kept alive.
    pub fn lease(&self) -> Lease {
        self.lease
    }

    /// The current status.
    pub fn status(&self) -> LeaseStatus {
        self.status.borrow().clone()
    }

    /// A receiver that is notified on every status change (acknowledgement, failure, expiry).
    pub fn subscribe(&self) -> watch::Receiver<LeaseStatus> {
        self.status.clone()
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How a backend sends one renewal: returns the remaining TTL in seconds, 0 or
/// `LeaseNotFound` when the lease is gone.
pub(crate) trait Renewer: Send + 'static {
    /// Sends one renewal and waits for its acknowledgement.
    fn renew(&mut self) -> impl Future<Output = Result<i64>> + Send;
}

/// Starts the renewal loop for `lease`, granted at `granted_at`.
pub(crate) fn spawn<R: Renewer>(lease: Lease, granted_at: Instant, renewer: R) -> KeepAlive {
    let (tx, status) = watch::channel(LeaseStatus {
        last_ack: granted_at,
        ttl_secs: lease.ttl_secs,
        expired: false,
        error: None,
    });
    let task = tokio::spawn(renew_loop(lease, renewer, tx));
    KeepAlive {
        lease,
        status,
        task,
    }
}

async fn renew_loop<R: Renewer>(lease: Lease, mut renewer: R, tx: watch::Sender<LeaseStatus>) {
    let period = renewal_period(lease.ttl_secs);
    let retry = period / 3;
    // A renewal answered late still renewed the lease when the store received it, and the
    // fence counts from its sending: giving up on it early only restarts the stream, which
    // a store under load answers later still. Half a TTL leaves time for one more try.
    let answer_within = period.max(Duration::from_millis(lease.ttl_secs.max(1) as u64 * 500));
    loop {
        let sent = Instant::now();
        let outcome = tokio::time::timeout(answer_within, renewer.renew()).await;
        let pause = match outcome {
            Ok(Ok(ttl)) if ttl > 0 => {
                tx.send_modify(|s| {
                    s.last_ack = sent;
                    s.ttl_secs = ttl;
                    s.error = None;
                });
                period
            }
            Ok(Ok(_)) | Ok(Err(StoreError::LeaseNotFound(_))) => {
                tx.send_modify(|s| s.expired = true);
                return;
            }
            Ok(Err(e)) => {
                tx.send_modify(|s| s.error = Some(e.to_string()));
                retry
            }
            Err(_) => {
                tx.send_modify(|s| {
                    s.error = Some(format!("renewal not answered in {answer_within:?}"))
                });
                retry
            }
        };
        tokio::time::sleep_until(sent + pause).await;
    }
}
