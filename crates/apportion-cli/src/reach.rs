//! Reaching etcd: connect, then prove the connection works with one read, so that an
//! unreachable or mistyped endpoint is one clear message within seconds, not a member that
//! waits for its first lease or a story that stalls in its first phase.

use std::time::Duration;

use apportion::store::{EtcdStore, KeyRange, Store};

/// How long the first read may take before etcd counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to etcd at `endpoints` and reads one key; the error names the endpoints.
pub async fn etcd(endpoints: &[String]) -> Result<EtcdStore, String> {
    let joined = endpoints.join(",");
    let unreachable = |reason: String| format!("cannot reach etcd at {joined}: {reason}");
    let store = EtcdStore::connect(endpoints)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    match tokio::time::timeout(PROBE_TIMEOUT, store.range(KeyRange::key("/"))).await {
        Ok(Ok(_)) => Ok(store),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable(format!(
            "no answer within {} s",
            PROBE_TIMEOUT.as_secs()
        ))),
    }
}
