//! Why the demo could not tell its story (as opposed to an invariant breaking, which it
//! reports and carries on from).

use std::time::Duration;

use apportion::store::StoreError;

/// A failure that ends the demo early, as one line.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A member could not start or act.
    #[error(transparent)]
    Runtime(#[from] apportion::Error),
    /// The store refused or could not be reached.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the items was refused.
    #[error(transparent)]
    Admin(#[from] apportion::admin::AdminError),
    /// Something the story waits for did not happen in time.
    #[error("{what} did not happen within {} s", .limit.as_secs())]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long the story waited.
        limit: Duration,
    },
    /// etcd could not be reached (the message names the endpoints).
    #[error("{0}")]
    Unreachable(String),
    /// A member's application panicked.
    #[error("a member's application failed: {0}")]
    Crashed(String),
}
