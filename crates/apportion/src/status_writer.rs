//! Coalescing a member's status writes.
//!
//! When a member is handed many items at once, its application reports each one ready as it
//! loads it: hundreds of small guarded writes in a burst. Sent one by one, each costs a round
//! trip and a disk sync in etcd. The writer queues them and sends whatever is waiting as one
//! transaction (up to the store's op limit), with every write's own guard. If any guard fails
//! (that assignment changed meanwhile), the batch is sent again one write at a time, so one
//! stale write never holds back the others.

use apportion_store::{Compare, Op, Store, StoreError, Txn};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::retry::retry_transient;

struct Request {
    guard: Compare,
    put: Op,
    /// Whether the guard held and the value was written.
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

impl Request {
    fn key(&self) -> &[u8] {
        match &self.put {
            Op::Put { key, .. } => key,
            _ => &[],
        }
    }
}

/// The sending side; the task behind it writes.
pub(crate) struct StatusWriter {
    requests: mpsc::UnboundedSender<Request>,
}

impl StatusWriter {
    /// Starts the writer task on `store`.
    pub(crate) fn start<S: Store>(store: S) -> (Self, JoinHandle<()>) {
        let (requests, rx) = mpsc::unbounded_channel();
        (StatusWriter { requests }, tokio::spawn(run(store, rx)))
    }

    /// Writes `put` if `guard` holds, together with whatever else is waiting; returns
    /// whether the guard held.
    pub(crate) async fn write(&self, guard: Compare, put: Op) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the member is stopping".into());
        self.requests
            .send(Request { guard, put, reply })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run<S: Store>(store: S, mut requests: mpsc::UnboundedReceiver<Request>) {
    let mut carried: Option<Request> = None;
    loop {
        let first = match carried.take() {
            Some(request) => request,
            None => match requests.recv().await {
                Some(request) => request,
                None => return,
            },
        };
        let mut batch = vec![first];
        // A key may be written once per transaction: a second write of it waits its turn.
        while batch.len() < store.max_txn_ops() {
            let Ok(next) = requests.try_recv() else { break };
            if batch.iter().any(|r| r.key() == next.key()) {
                carried = Some(next);
                break;
            }
            batch.push(next);
        }
        if batch.len() > 1 {
            let txn = Txn::new()
                .when(batch.iter().map(|r| r.guard.clone()))
                .and_then(batch.iter().map(|r| r.put.clone()));
            match retry_transient(|| store.txn(txn.clone())).await {
                Ok(result) if result.succeeded => {
                    for request in batch {
                        let _ = request.reply.send(Ok(true));
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    for request in batch {
                        let _ = request.reply.send(Err(e.clone()));
                    }
                    continue;
                }
            }
        }
        for request in batch {
            let txn = Txn::new().when([request.guard]).and_then([request.put]);
            let result = retry_transient(|| store.txn(txn.clone())).await;
            let _ = request.reply.send(result.map(|r| r.succeeded));
        }
    }
}
