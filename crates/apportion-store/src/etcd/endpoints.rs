//! The endpoints of an etcd cluster, and which one to use.
//!
//! etcd-client spreads requests over every endpoint it is given and fails a request that
//! lands on a node that is down, so with one node of three down about one call in three
//! fails although the cluster is healthy. Here each endpoint gets a connection of its own;
//! a call goes to the endpoint that answered last, and when that one is unavailable, to the
//! next, until one answers or every endpoint has been tried once. The endpoint that answers
//! becomes the one used next, so a dead node costs one failed attempt, not one in three.
//!
//! A call tried again on another endpoint may have reached the first one: every caller in
//! apportion guards its transactions (or makes them idempotent), and a caller that must
//! know has a guard that tells.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

use crate::error::StoreError;
use crate::types::Result;

/// How long a single request may take before it counts as unavailable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One endpoint: its URL and its connection (the connections are opened lazily, on first
/// use, and re-opened by the client after a failure).
struct Node {
    url: String,
    client: Client,
}

/// A set of connections, one per endpoint, sharing the choice of the endpoint to use.
#[derive(Clone)]
pub(super) struct Endpoints {
    nodes: Arc<[Node]>,
    current: Arc<AtomicUsize>,
}

impl Endpoints {
    /// Opens a connection to each of `urls`.
    pub(super) async fn open(urls: &[String]) -> Result<Self> {
        let mut nodes = Vec::with_capacity(urls.len());
        for url in urls {
            nodes.push(Node {
                url: url.clone(),
                client: open(url).await?,
            });
        }
        Ok(Endpoints {
            nodes: nodes.into(),
            current: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The client of the endpoint in use, for streams that fail over by themselves (they
    /// call [`failed`](Self::failed) when their endpoint fails them).
    pub(super) fn client(&self) -> (usize, Client) {
        let index = self.current.load(Ordering::Relaxed) % self.nodes.len();
        (index, self.nodes[index].client.clone())
    }

    /// Moves off endpoint `index` after it failed a call, unless another caller has
    /// already moved on.
    pub(super) fn failed(&self, index: usize) {
        let next = (index + 1) % self.nodes.len();
        let _ = self
            .current
            .compare_exchange(index, next, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Runs `request` on the endpoint in use; while the endpoint is unavailable, on the
    /// next one, until one answers or each was tried once. Errors other than unavailability
    /// (a failed compare is not an error) come back at once: another node would say the
    /// same.
    pub(super) async fn call<T, F, Fut>(&self, mut request: F) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let mut failures = Vec::new();
        for _ in 0..self.nodes.len() {
            let (index, client) = self.client();
            match within_deadline(request(client)).await {
                Err(StoreError::Unavailable(reason)) => {
                    tracing::debug!(endpoint = %self.nodes[index].url, %reason, "etcd endpoint unavailable; trying the next");
                    failures.push(format!("{}: {reason}", self.nodes[index].url));
                    self.failed(index);
                }
                result => return result,
            }
        }
        Err(StoreError::Unavailable(failures.join("; ")))
    }
}

/// Opens the connection to one endpoint.
async fn open(url: &str) -> Result<Client> {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5))
        .with_keep_alive_while_idle(true);
    Client::connect([url], Some(options))
        .await
        .map_err(|e| StoreError::Unavailable(format!("cannot connect to etcd at {url}: {e}")))
}

/// Runs one request with a deadline, mapping etcd's errors onto `StoreError`.
pub(super) async fn within_deadline<T>(
    request: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
) -> Result<T> {
    match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(result) => result.map_err(super::classify),
        Err(_) => Err(StoreError::Unavailable(format!(
            "etcd did not answer within {REQUEST_TIMEOUT:?}"
        ))),
    }
}
