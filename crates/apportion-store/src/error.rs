//! The errors a store call can return, the same for every backend.

use crate::types::{LeaseId, Revision};

/// Why a store call failed. Both backends map their failures onto these variants, so that
/// callers (the KeySpace, the runtime) handle them once.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The call's arguments are invalid (empty key, TTL not positive, duplicate key in a txn...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A transaction branch has more operations than the store accepts.
    #[error("transaction has {ops} {what}, more than the limit of {limit}; split it into batches")]
    TooManyOps {
        /// What was counted: "compares", "success operations" or "failure operations".
        what: &'static str,
        /// How many there were.
        ops: usize,
        /// The store's limit.
        limit: usize,
    },
    /// The lease does not exist: it was never granted, has expired or was revoked.
    #[error("lease {0} not found (never granted, expired or revoked)")]
    LeaseNotFound(LeaseId),
    /// The requested revision is older than the oldest the store still keeps.
    #[error("revision {requested} has been compacted (history starts at {compacted})")]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The store's compaction revision (0 when the store did not say: etcd's refusal of
        /// a read does not).
        compacted: Revision,
    },
    /// The requested revision has not happened yet.
    #[error("revision {requested} is in the future (the store is at {current})")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The store's current revision.
        current: Revision,
    },
    /// A response was larger than the client accepts (for etcd, the gRPC decoding limit,
    /// 4 MiB unless raised). A read this large must be split into pages.
    #[error(
        "response of {size} bytes is larger than the limit of {limit} bytes; read it in pages \
         (a range with a limit)"
    )]
    ResponseTooLarge {
        /// The response's size in bytes (for etcd, as encoded on the wire).
        size: u64,
        /// The most bytes the client accepts in one response.
        limit: u64,
    },
    /// The store refused who we are: a wrong user or password, a user without the
    /// permission, or a certificate refused in the TLS handshake (either side's). Retrying
    /// will not help, so it is not `Unavailable`: the configuration must change.
    #[error("access refused: {0}")]
    Auth(String),
    /// The store could not be reached or did not answer in time; the call may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Any other failure reported by the store.
    #[error("store error: {0}")]
    Other(String),
}

impl StoreError {
    /// Whether retrying the same call later may succeed (the store was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}
