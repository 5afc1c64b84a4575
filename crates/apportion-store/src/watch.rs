//! The receiving end of a watch, the same type for every backend.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::types::{Result, WatchBatch};

/// A stream of change batches for a key range, in revision order, from the revision the
/// watch started at. It ends after yielding an error (for example `Compacted`), or when the
/// store handle behind it is gone. Dropping it cancels the watch.
pub struct Watch {
    rx: mpsc::UnboundedReceiver<Result<WatchBatch>>,
    task: Option<JoinHandle<()>>,
    progress: Option<ProgressRequester>,
}

/// Asks the backend for a progress batch on this watch.
pub(crate) type ProgressRequester = Box<dyn Fn() + Send + Sync>;

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

impl Watch {
    /// A watch fed through `rx`; `task`, when given, produces the batches and is stopped
    /// when the watch is dropped.
    /// `progress`, when given, makes the backend send a progress batch.
    pub(crate) fn new(
        rx: mpsc::UnboundedReceiver<Result<WatchBatch>>,
        task: Option<JoinHandle<()>>,
        progress: Option<ProgressRequester>,
    ) -> Self {
        Watch { rx, task, progress }
    }

    /// Asks for a batch without events whose `revision` is the store revision up to which
    /// every change has been delivered (etcd answers only once the watch has caught up, so
    /// ask again if nothing comes). Beware: etcd before 3.4.25 and 3.5.8 can send this report
    /// ahead of events still queued (etcd issue 15220), so apportion's own mirror never
    /// relies on it.
    pub fn request_progress(&self) {
        if let Some(progress) = &self.progress {
            progress();
        }
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
