//! `EtcdStore`: the `Store` trait over a real etcd (3.4 or later) through `etcd-client`.
//!
//! Arguments are checked by the same validation as `MemoryStore` before anything is sent, so
//! both backends refuse bad input with the same error. Every call fails over to another
//! endpoint while the one in use is unavailable (see [`endpoints`]). Watches run in a task
//! that reconnects after a transport failure, to the next endpoint, and resumes from the
//! revision after the last one it delivered.

mod endpoints;
mod options;

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    CompactionOptions, DeleteOptions, GetOptions, KvClient, LeaseKeepAliveStream, LeaseKeeper,
    PutOptions, TxnOpResponse, WatchOptions,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::error::StoreError;
use crate::lease::{self, KeepAlive, Renewer};
use crate::store::Store;
use crate::types::*;
use crate::validate::{self, DEFAULT_MAX_TXN_OPS};
use crate::watch::Watch;
use endpoints::{within_deadline, Endpoints};
pub use options::{ClientCert, EtcdOptions, Tls};
/// The pause before re-opening a broken watch the first time, doubled after each further
/// failure up to [`MAX_WATCH_BACKOFF`].
const FIRST_WATCH_BACKOFF: Duration = Duration::from_millis(50);

/// The longest pause between two attempts to re-open a broken watch.
const MAX_WATCH_BACKOFF: Duration = Duration::from_secs(2);

/// The largest response accepted by default: what etcd's server sends at most (its gRPC send
/// limit is 2 GiB - 1) and what etcd's own Go client accepts. gRPC's default of 4 MiB would
/// refuse a watch catching up on many revisions at once (etcd sends up to 1,000 revisions'
/// events in one response) and then refuse it again on every re-open; whole prefixes are
/// read in pages ([`Store::range_all`]) whatever the limit.
const MAX_RESPONSE_BYTES: usize = i32::MAX as usize;

/// A handle to an etcd cluster. Cloning shares the connections.
///
/// Lease renewals travel on a connection of their own: on a connection shared with bulk
/// writes they would queue behind them, reach etcd late, and let a busy member's lease
/// expire although the member is alive.
///
/// With several endpoints, any live one serves: a call goes to the endpoint that answered
/// last and moves on to the next while that one is unavailable.
#[derive(Clone)]
pub struct EtcdStore {
    kv: Endpoints,
    leases: Endpoints,
    endpoints: Vec<String>,
    max_txn_ops: usize,
    max_response_bytes: usize,
}

impl EtcdStore {
    /// Connects to the cluster at `endpoints` (for example `http://127.0.0.1:2379`) without
    /// TLS or a user (see [`connect_with`](Self::connect_with)). The connections open
    /// lazily: an unreachable cluster shows in the first call.
    pub async fn connect(endpoints: &[impl AsRef<str>]) -> Result<Self> {
        Self::connect_with(endpoints, EtcdOptions::default()).await
    }

    /// Connects to the cluster at `endpoints` with TLS and/or a user, as `options` say;
    /// every connection (each endpoint has its own) uses them. The connections open
    /// lazily, and authenticate when they do: an unreachable cluster or a wrong password
    /// shows in the first call (as `Unavailable` or `Auth`). Endpoints must all be
    /// `https://` with TLS options, and all `http://` without: a mix, or `https://` with
    /// nothing to verify the server by, is refused here rather than after retries.
    pub async fn connect_with(endpoints: &[impl AsRef<str>], options: EtcdOptions) -> Result<Self> {
        let endpoints: Vec<String> = endpoints.iter().map(|e| e.as_ref().to_string()).collect();
        if endpoints.is_empty() {
            return Err(StoreError::InvalidArgument(
                "no etcd endpoint given".to_string(),
            ));
        }
        for url in &endpoints {
            let https = url.starts_with("https://");
            match (&options.tls, https) {
                (None, true) => {
                    return Err(StoreError::InvalidArgument(format!(
                        "{url} uses TLS: give the CA certificate that signed etcd's certificate"
                    )))
                }
                (Some(_), false) => {
                    return Err(StoreError::InvalidArgument(format!(
                        "{url} is not an https:// URL, but TLS options were given"
                    )))
                }
                _ => {}
            }
        }
        let options = Arc::new(options);
        Ok(EtcdStore {
            kv: Endpoints::new(&endpoints, options.clone()),
            leases: Endpoints::new(&endpoints, options),
            endpoints,
            max_txn_ops: DEFAULT_MAX_TXN_OPS,
            max_response_bytes: MAX_RESPONSE_BYTES,
        })
    }

    /// Sets the largest response (reads, transactions, watch batches) this handle accepts,
    /// in bytes as encoded on the wire; a larger one fails with `ResponseTooLarge`. By
    /// default, anything etcd sends (2 GiB - 1).
    pub fn with_max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The key-value client of `client`, accepting responses up to this handle's limit.
    fn kv_client(&self, client: &etcd_client::Client) -> KvClient {
        client
            .kv_client()
            .max_decoding_message_size(self.max_response_bytes)
    }

    /// The error of a call that named `requested` as a revision, with the revisions filled
    /// in (etcd's message names neither; the store's current one is read for a revision in
    /// the future; the compaction revision is not known, so it is left at 0).
    async fn revision_error(&self, e: StoreError, requested: Revision) -> StoreError {
        match e {
            StoreError::Compacted { .. } => StoreError::Compacted {
                requested,
                compacted: 0,
            },
            StoreError::FutureRevision { .. } => match self.revision().await {
                Ok(current) => StoreError::FutureRevision { requested, current },
                Err(e) => e,
            },
            other => other,
        }
    }

    /// Sets the most operations per transaction branch; it must not exceed the server's
    /// `--max-txn-ops` (128 by default), or the server refuses large transactions itself.
    pub fn with_max_txn_ops(mut self, max_txn_ops: usize) -> Self {
        self.max_txn_ops = max_txn_ops;
        self
    }

    /// The endpoints this handle was connected with.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }
}

/// What etcd says of a lease it does not know; it names no lease, so the error stays
/// `Other` until [`with_lease`] names it.
const LEASE_NOT_FOUND: &str = "lease not found";

/// Maps an etcd error onto the store's errors. Revisions are filled in by the caller where
/// the error concerns them, and a lease not found becomes `LeaseNotFound` in a call about
/// that lease (see [`with_lease`]).
pub(super) fn classify(e: etcd_client::Error) -> StoreError {
    use etcd_client::Error as E;
    match e {
        E::GRpcStatus(status) => {
            let message = status.message();
            // The message and its causes (a refused certificate is only among them); the
            // status's `Display` would add its code, details and metadata, noise in one line.
            let text = with_causes(message.to_string(), std::error::Error::source(&status));
            if let Some((size, limit)) = too_large(message) {
                StoreError::ResponseTooLarge { size, limit }
            } else if message.contains(LEASE_NOT_FOUND) {
                StoreError::Other(message.to_string())
            } else if message.contains("required revision has been compacted") {
                StoreError::Compacted {
                    requested: 0,
                    compacted: 0,
                }
            } else if message.contains("future revision") {
                StoreError::FutureRevision {
                    requested: 0,
                    current: 0,
                }
            } else if message.contains("too many operations") {
                StoreError::Other(message.to_string())
            } else if message.contains("authentication failed") {
                // etcd refuses a wrong password as an invalid argument.
                StoreError::Auth(message.to_string())
            } else if refused_certificate(&text) {
                StoreError::Auth(text)
            } else {
                // gRPC codes: 3 invalid argument, 4 deadline exceeded, 7 permission denied,
                // 14 unavailable, 16 unauthenticated.
                match i32::from(status.code()) {
                    4 | 14 => StoreError::Unavailable(text),
                    3 => StoreError::InvalidArgument(message.to_string()),
                    7 | 16 => StoreError::Auth(message.to_string()),
                    _ => StoreError::Other(message.to_string()),
                }
            }
        }
        E::LeaseKeepAliveError(message) if message.contains(LEASE_NOT_FOUND) => {
            StoreError::Other(message)
        }
        E::TransportError(_) | E::IoError(_) | E::WatchError(_) | E::LeaseKeepAliveError(_) => {
            StoreError::Unavailable(describe(&e))
        }
        other => StoreError::Other(other.to_string()),
    }
}

/// Whether a call failed because a TLS handshake refused a certificate (etcd's, not signed
/// by the CA given; or ours, missing or not signed by etcd's CA): trying again will not
/// help, so it is an `Auth` error rather than `Unavailable`.
fn refused_certificate(text: &str) -> bool {
    [
        "invalid peer certificate",
        "certificate required",
        "unknown ca",
        "bad certificate",
    ]
    .iter()
    .any(|sign| text.contains(sign))
}

/// An error and its causes on one line: the cause of a transport failure (a refused
/// certificate, a refused connection) is only in the chain.
fn describe(e: &dyn std::error::Error) -> String {
    with_causes(e.to_string(), e.source())
}

/// `text`, then each cause from `source` on that it does not already say.
fn with_causes(mut text: String, mut source: Option<&dyn std::error::Error>) -> String {
    while let Some(cause) = source {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
        source = source.and_then(|s| s.source());
    }
    text
}

/// The size and limit named by gRPC's refusal of a response larger than the client accepts
/// ("decoded message length too large: found N bytes, the limit is: M bytes").
fn too_large(message: &str) -> Option<(u64, u64)> {
    let number_after = |label: &str| -> Option<u64> {
        let rest = &message[message.find(label)? + label.len()..];
        let digits = rest.trim_start();
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        digits[..end].parse().ok()
    };
    if !message.contains("decoded message length too large") {
        return None;
    }
    Some((number_after("found")?, number_after("limit is:")?))
}

/// The error of a call about lease `id`: etcd's refusal of an unknown lease is
/// `LeaseNotFound(id)`.
fn with_lease(e: StoreError, id: LeaseId) -> StoreError {
    match e {
        StoreError::Other(message) if message.contains(LEASE_NOT_FOUND) => {
            StoreError::LeaseNotFound(id)
        }
        other => other,
    }
}

/// etcd's request for a read: the first key, and options holding the end of the range (the
/// key after every key with the prefix), the limit and the revision.
fn get_options(range: &KeyRange, options: &RangeOptions) -> (Vec<u8>, GetOptions) {
    let get = GetOptions::new()
        .with_limit(options.limit.try_into().unwrap_or(i64::MAX))
        .with_revision(options.revision);
    match range {
        KeyRange::Key(k) => (k.clone(), get),
        KeyRange::Prefix(p) => {
            let first = if p.is_empty() { vec![0] } else { p.clone() };
            let start = options.from.clone().unwrap_or(first);
            (start, get.with_range(prefix_end(p)))
        }
    }
}

/// The first key after every key starting with `prefix`: its last byte that is not 0xff,
/// plus one, with what follows dropped. etcd reads "\0" as "no end" (for the empty prefix,
/// or one of 0xff bytes only).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    match prefix.iter().rposition(|b| *b < 0xff) {
        Some(i) => {
            let mut end = prefix[..=i].to_vec();
            end[i] += 1;
            end
        }
        None => vec![0],
    }
}

fn delete_options(range: &KeyRange) -> (Vec<u8>, DeleteOptions) {
    match range {
        KeyRange::Key(k) => (k.clone(), DeleteOptions::new()),
        KeyRange::Prefix(p) if p.is_empty() => (vec![0], DeleteOptions::new().with_all_keys()),
        KeyRange::Prefix(p) => (p.clone(), DeleteOptions::new().with_prefix()),
    }
}

fn watch_options(range: &KeyRange, from: Revision) -> (Vec<u8>, WatchOptions) {
    let options = WatchOptions::new().with_start_revision(from);
    match range {
        KeyRange::Key(k) => (k.clone(), options),
        KeyRange::Prefix(p) if p.is_empty() => (vec![0], options.with_all_keys()),
        KeyRange::Prefix(p) => (p.clone(), options.with_prefix()),
    }
}

fn key_value(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: kv.key().to_vec(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
        lease: LeaseId::new(kv.lease()),
    }
}

fn compare(c: &Compare) -> etcd_client::Compare {
    use etcd_client::CompareOp as E;
    let op = match c.op {
        CompareOp::Equal => E::Equal,
        CompareOp::NotEqual => E::NotEqual,
        CompareOp::Less => E::Less,
        CompareOp::Greater => E::Greater,
    };
    let key = c.range.bytes().to_vec();
    let compare = match &c.target {
        CompareTarget::Value(v) => etcd_client::Compare::value(key, op, v.clone()),
        CompareTarget::Version(n) => etcd_client::Compare::version(key, op, *n),
        CompareTarget::CreateRevision(n) => etcd_client::Compare::create_revision(key, op, *n),
        CompareTarget::ModRevision(n) => etcd_client::Compare::mod_revision(key, op, *n),
        CompareTarget::Lease(n) => etcd_client::Compare::lease(key, op, LeaseId::to_wire(*n)),
    };
    match &c.range {
        KeyRange::Key(_) => compare,
        KeyRange::Prefix(p) if p.is_empty() => compare.with_range(vec![0]),
        KeyRange::Prefix(_) => compare.with_prefix(),
    }
}

fn txn_op(op: &Op) -> etcd_client::TxnOp {
    match op {
        Op::Put { key, value, lease } => {
            let options = lease.map(|l| PutOptions::new().with_lease(l.get()));
            etcd_client::TxnOp::put(key.clone(), value.clone(), options)
        }
        Op::Delete(range) => {
            let (key, options) = delete_options(range);
            etcd_client::TxnOp::delete(key, Some(options))
        }
        Op::Range(range) => {
            let (key, options) = get_options(range, &RangeOptions::default());
            etcd_client::TxnOp::get(key, Some(options))
        }
    }
}

fn revision(header: Option<&etcd_client::ResponseHeader>) -> Revision {
    header.map_or(0, |h| h.revision())
}

impl Store for EtcdStore {
    async fn range_with(&self, range: KeyRange, options: RangeOptions) -> Result<RangeResult> {
        validate::range_options(&range, &options)?;
        let (key, get) = get_options(&range, &options);
        let response = self
            .kv
            .call(|c| {
                let (mut kv, key, get) = (self.kv_client(&c), key.clone(), get.clone());
                async move { kv.get(key, Some(get)).await }
            })
            .await;
        let response = match response {
            Ok(response) => response,
            Err(e) => return Err(self.revision_error(e, options.revision).await),
        };
        Ok(RangeResult {
            kvs: response.kvs().iter().map(key_value).collect(),
            revision: revision(response.header()),
            more: response.more(),
        })
    }

    /// A count-only read of one key (any key will do; the answer carries no key): etcd
    /// reports its revision in every response header.
    async fn revision(&self) -> Result<Revision> {
        let response = self
            .kv
            .call(|mut c| async move {
                c.get(vec![0], Some(GetOptions::new().with_count_only()))
                    .await
            })
            .await?;
        Ok(revision(response.header()))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResult> {
        validate::txn(&txn, self.max_txn_ops)?;
        let request = etcd_client::Txn::new()
            .when(txn.compares.iter().map(compare).collect::<Vec<_>>())
            .and_then(txn.success.iter().map(txn_op).collect::<Vec<_>>())
            .or_else(txn.failure.iter().map(txn_op).collect::<Vec<_>>());
        let response = self
            .kv
            .call(|c| {
                let (mut kv, request) = (self.kv_client(&c), request.clone());
                async move { kv.txn(request).await }
            })
            .await
            .map_err(|e| {
                let lease = txn
                    .success
                    .iter()
                    .chain(&txn.failure)
                    .find_map(|op| match op {
                        Op::Put { lease: Some(l), .. } => Some(*l),
                        _ => None,
                    });
                match lease {
                    Some(lease) => with_lease(e, lease),
                    None => e,
                }
            })?;
        let results = response
            .op_responses()
            .into_iter()
            .map(|r| match r {
                TxnOpResponse::Put(_) => OpResult::Put,
                TxnOpResponse::Delete(d) => OpResult::Delete {
                    deleted: d.deleted(),
                },
                TxnOpResponse::Get(g) => OpResult::Range(g.kvs().iter().map(key_value).collect()),
                TxnOpResponse::Txn(_) => OpResult::Put,
            })
            .collect();
        Ok(TxnResult {
            succeeded: response.succeeded(),
            revision: revision(response.header()),
            results,
        })
    }

    async fn watch(&self, range: KeyRange, from_revision: Revision) -> Result<Watch> {
        validate::range(&range)?;
        let from = if from_revision > 0 {
            from_revision
        } else {
            self.revision().await? + 1
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let (progress_tx, progress_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(follow(
            self.kv.clone(),
            self.max_response_bytes,
            range,
            from,
            tx,
            progress_rx,
        ));
        let progress = move || {
            let _ = progress_tx.send(());
        };
        Ok(Watch::new(rx, Some(task), Some(Box::new(progress))))
    }

    async fn grant(&self, ttl_secs: i64) -> Result<Lease> {
        validate::ttl(ttl_secs)?;
        let response = self
            .kv
            .call(|mut c| async move { c.lease_grant(ttl_secs, None).await })
            .await?;
        let id = LeaseId::new(response.id())
            .ok_or_else(|| StoreError::Other("etcd granted a lease without an id".to_string()))?;
        Ok(Lease {
            id,
            ttl_secs: response.ttl(),
        })
    }

    async fn keep_alive(&self, lease: Lease) -> Result<KeepAlive> {
        let granted_at = Instant::now();
        let mut renewer = EtcdRenewer {
            endpoints: self.leases.clone(),
            id: lease.id,
            stream: None,
        };
        // The first renewal proves the lease exists; it tries each endpoint once.
        let mut ttl = renewer.renew().await;
        for _ in 1..self.endpoints.len() {
            match ttl {
                Err(ref e) if e.is_transient() => ttl = renewer.renew().await,
                _ => break,
            }
        }
        let ttl = ttl?;
        if ttl <= 0 {
            return Err(StoreError::LeaseNotFound(lease.id));
        }
        Ok(lease::spawn(lease, granted_at, renewer))
    }

    async fn revoke(&self, lease: LeaseId) -> Result<()> {
        self.kv
            .call(|mut c| async move { c.lease_revoke(lease.get()).await })
            .await
            .map_err(|e| with_lease(e, lease))?;
        Ok(())
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let options = CompactionOptions::new().with_physical();
        let compacted = self
            .kv
            .call(|mut c| {
                let options = options.clone();
                async move { c.compact(revision, Some(options)).await }
            })
            .await;
        match compacted {
            Ok(_) => Ok(()),
            // Refused because `revision` is the compaction revision already, or below it.
            Err(StoreError::Compacted { .. }) => Err(StoreError::Compacted {
                requested: revision,
                compacted: revision,
            }),
            Err(e) => Err(self.revision_error(e, revision).await),
        }
    }

    async fn time_to_live(&self, lease: LeaseId) -> Result<Option<Duration>> {
        let answer = self
            .kv
            .call(|mut c| async move { c.lease_time_to_live(lease.get(), None).await })
            .await
            .map_err(|e| with_lease(e, lease));
        match answer {
            // etcd answers -1 for a lease it does not know (3.4), or refuses (later).
            Ok(response) => {
                Ok((response.ttl() >= 0).then(|| Duration::from_secs(response.ttl() as u64)))
            }
            Err(StoreError::LeaseNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn max_txn_ops(&self) -> usize {
        self.max_txn_ops
    }

    fn max_response_bytes(&self) -> usize {
        self.max_response_bytes
    }
}

/// Follows a watch for as long as the receiver lives: re-opens it after a transport failure
/// from the revision after the last delivered, and ends after reporting a compaction.
async fn follow(
    endpoints: Endpoints,
    max_response_bytes: usize,
    range: KeyRange,
    mut next: Revision,
    tx: mpsc::UnboundedSender<Result<WatchBatch>>,
    mut progress: mpsc::UnboundedReceiver<()>,
) {
    let mut backoff = Backoff::new(FIRST_WATCH_BACKOFF, MAX_WATCH_BACKOFF);
    while !tx.is_closed() {
        let (key, options) = watch_options(&range, next);
        let (index, client) = endpoints.client().await;
        let mut watcher = client.ok().map(|client| {
            client
                .watch_client()
                .max_decoding_message_size(max_response_bytes)
        });
        let opened = match watcher.as_mut() {
            Some(watcher) => watcher.watch(key, Some(options)).await.ok(),
            None => None,
        };
        if let Some(mut stream) = opened {
            loop {
                let response = tokio::select! {
                    message = stream.message() => match message {
                        Ok(Some(response)) => response,
                        _ => break,
                    },
                    Some(()) = progress.recv() => {
                        if stream.request_progress().await.is_err() {
                            break;
                        }
                        continue;
                    }
                };
                if response.compact_revision() > 0 {
                    let _ = tx.send(Err(StoreError::Compacted {
                        requested: next,
                        compacted: response.compact_revision(),
                    }));
                    return;
                }
                if response.canceled() {
                    break;
                }
                backoff.reset();
                let events: Vec<Event> = response.events().iter().filter_map(event).collect();
                let batch_revision = match events.last() {
                    Some(e) => e.kv.mod_revision,
                    None if response.created() => continue,
                    None => revision(response.header()),
                };
                // Resume after the last *event*: a progress report can run ahead of events
                // etcd has not sent yet (etcd issue 15220, before 3.4.25 / 3.5.8).
                if let Some(last) = events.last() {
                    next = next.max(last.kv.mod_revision + 1);
                }
                if tx
                    .send(Ok(WatchBatch {
                        events,
                        revision: batch_revision,
                    }))
                    .is_err()
                {
                    return;
                }
            }
        }
        endpoints.failed(index);
        backoff.wait().await;
    }
}

fn event(e: &etcd_client::Event) -> Option<Event> {
    let kind = match e.event_type() {
        etcd_client::EventType::Put => EventKind::Put,
        etcd_client::EventType::Delete => EventKind::Delete,
    };
    Some(Event {
        kind,
        kv: key_value(e.kv()?),
    })
}

/// Renews an etcd lease over one keep-alive stream, re-opened after any failure (on the
/// next endpoint, if the stream's own failed).
struct EtcdRenewer {
    endpoints: Endpoints,
    id: LeaseId,
    /// The stream, and the endpoint it runs to.
    stream: Option<(usize, LeaseKeeper, LeaseKeepAliveStream)>,
}

impl Renewer for EtcdRenewer {
    async fn renew(&mut self) -> Result<i64> {
        // A renewal that times out is dropped mid-way; its late answer must not be taken for
        // the next one's, so the stream is taken out and only put back after a full exchange.
        let (index, mut keeper, mut stream) = match self.stream.take() {
            Some(s) => s,
            None => {
                let (index, client) = self.endpoints.client().await;
                let opened = match client {
                    Ok(mut client) => within_deadline(client.lease_keep_alive(self.id.get())).await,
                    Err(e) => Err(e),
                };
                match opened {
                    Ok((keeper, stream)) => (index, keeper, stream),
                    Err(e) => return Err(self.failed(index, e)),
                }
            }
        };
        if let Err(e) = keeper.keep_alive().await {
            return Err(self.failed(index, classify(e)));
        }
        match stream.message().await {
            Ok(Some(response)) => {
                self.stream = Some((index, keeper, stream));
                Ok(response.ttl())
            }
            Ok(None) => Err(self.failed(
                index,
                StoreError::Unavailable(format!(
                    "keep-alive stream of lease {} closed by etcd",
                    self.id
                )),
            )),
            Err(e) => Err(self.failed(index, classify(e))),
        }
    }
}

impl EtcdRenewer {
    /// Notes a failed exchange with endpoint `index`: the next goes elsewhere if that
    /// endpoint is unavailable.
    fn failed(&self, index: usize, e: StoreError) -> StoreError {
        if e.is_transient() {
            self.endpoints.failed(index);
        }
        with_lease(e, self.id)
    }
}
