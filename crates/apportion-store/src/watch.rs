//! The receiving end of a watch, the same type for every backend.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::types::{Result, WatchBatch};

/// A stream of change batches for a key range, in revision order, from the revision the
/// watch started at. It ends after yielding an error (for example `Compacted`), or when the
/// store handle behind it is gone. Dropping it cancels the watch.
#[derive(Debug)]
pub struct Watch {
    rx: mpsc::UnboundedReceiver<Result<WatchBatch>>,
    task: Option<JoinHandle<()>>,
}

impl Watch {
    /// A watch fed through `rx`; `task`, when given, produces the batches and is stopped
    /// when the watch is dropped.
    pub(crate) fn new(
        rx: mpsc::UnboundedReceiver<Result<WatchBatch>>,
        task: Option<JoinHandle<()>>,
    ) -> Self {
        Watch { rx, task }
    }

    /// The next batch; `None` once the watch has ended.
    pub async fn next(&mut self) -> Option<Result<WatchBatch>> {
        self.rx.recv().await
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
