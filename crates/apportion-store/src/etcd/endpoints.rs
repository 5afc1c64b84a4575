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
use tokio::sync::OnceCell;

use super::options::EtcdOptions;
use crate::error::StoreError;
use crate::types::Result;

/// How long a single request may take before it counts as unavailable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One endpoint: its URL and its client, made on first use. The client opens its
/// connection lazily and re-opens it after a failure, but with a user it authenticates as
/// it is made: made at once, a node that is down would fail the whole store.
struct Node {
    url: String,
    client: OnceCell<Client>,
}

/// A set of connections, one per endpoint, sharing the choice of the endpoint to use.
#[derive(Clone)]
pub(super) struct Endpoints {
    nodes: Arc<[Node]>,
    current: Arc<AtomicUsize>,
    options: Arc<EtcdOptions>,
}

impl Endpoints {
    /// A connection to each of `urls`, made with `options` when first used.
    pub(super) fn new(urls: &[String], options: Arc<EtcdOptions>) -> Self {
        let nodes: Vec<Node> = urls
            .iter()
            .map(|url| Node {
                url: url.clone(),
                client: OnceCell::new(),
            })
            .collect();
        Endpoints {
            nodes: nodes.into(),
            current: Arc::new(AtomicUsize::new(0)),
            options,
        }
    }

    /// The client of the endpoint in use, for streams that fail over by themselves (they
    /// call [`failed`](Self::failed) when their endpoint fails them). Making the client
    /// fails as a call does: unavailable if the endpoint cannot be reached to
    /// authenticate.
    pub(super) async fn client(&self) -> (usize, Result<Client>) {
        let index = self.current.load(Ordering::Relaxed) % self.nodes.len();
        let node = &self.nodes[index];
        let client = node
            .client
            .get_or_try_init(|| open(&node.url, &self.options))
            .await
            .cloned();
        (index, client)
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
            let (index, client) = self.client().await;
            let result = match client {
                Ok(client) => within_deadline(request(client)).await,
                Err(e) => Err(e),
            };
            match result {
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

/// Makes the client of one endpoint, authenticating with a user. Without one, nothing is
/// sent yet, so a failure is in the options (a URL or certificate etcd-client refuses):
/// an invalid argument, not worth retrying.
async fn open(url: &str, options: &EtcdOptions) -> Result<Client> {
    let base = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5))
        .with_keep_alive_while_idle(true);
    let connect = Client::connect([url], Some(options.apply(base)));
    match within_deadline(async { Ok(connect.await) }).await? {
        Ok(client) => Ok(client),
        Err(e @ etcd_client::Error::GRpcStatus(_)) => Err(super::classify(e)),
        Err(e) => Err(StoreError::InvalidArgument(format!(
            "cannot connect to etcd at {url}: {}",
            super::describe(&e)
        ))),
    }
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
