//! Why a story could not be told to the end (as opposed to an invariant breaking, which a
//! phase reports and the story carries on from).

use std::time::Duration;

use apportion::store::StoreError;

/// A failure that ends a story early, as one line.
#[derive(Debug, thiserror::Error)]
pub enum StoryError {
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
    /// A member's application panicked.
    #[error("a member's application failed: {0}")]
    Crashed(String),
}
