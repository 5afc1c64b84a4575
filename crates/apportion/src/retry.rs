//! Retrying store calls that failed for a reason that may pass.

use std::time::Duration;

use apportion_store::{Backoff, StoreError};

/// How long calls retry a store that cannot be reached before giving up.
const RETRY_FOR: Duration = Duration::from_secs(30);

/// The pause after the first failure, doubled after each further one up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(50);

/// The longest pause between two tries.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Runs a store call, retrying with backoff while it fails for a reason that may pass (the
/// store unreachable, an endpoint down), for up to [`RETRY_FOR`]. Every call retried this
/// way is guarded or idempotent, so a repeat cannot do harm.
pub(crate) async fn retry_transient<T, F, Fut>(mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let started = tokio::time::Instant::now();
    let mut backoff = Backoff::new(FIRST_PAUSE, MAX_PAUSE);
    loop {
        match call().await {
            Err(e) if e.is_transient() && started.elapsed() < RETRY_FOR => {
                tracing::debug!(error = %e, "store call failed; retrying");
                backoff.wait().await;
            }
            result => return result,
        }
    }
}
