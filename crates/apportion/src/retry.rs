//! Retrying store calls that failed for a reason that may pass.

use std::time::Duration;

use apportion_store::StoreError;

/// How long calls retry a store that cannot be reached before giving up.
const RETRY_FOR: Duration = Duration::from_secs(30);

/// Runs a store call, retrying with backoff while it fails for a reason that may pass (the
/// store unreachable, an endpoint down), for up to [`RETRY_FOR`]. Every call retried this
/// way is guarded or idempotent, so a repeat cannot do harm.
pub(crate) async fn retry_transient<T, F, Fut>(mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let started = tokio::time::Instant::now();
    let mut backoff = Duration::from_millis(50);
    loop {
        match call().await {
            Err(e) if e.is_transient() && started.elapsed() < RETRY_FOR => {
                tracing::debug!(error = %e, "store call failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            result => return result,
        }
    }
}
