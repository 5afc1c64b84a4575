//! The errors of the runtime.

use std::time::Duration;

use apportion_core::keys::KeyError;
use apportion_store::StoreError;

/// Why a member could not start, or had to stop, or a call on it failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The prefix, zone or suffix is not a valid key part.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store refused or could not be reached.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration is unusable.
    #[error("invalid member configuration: {0}")]
    Config(String),
    /// A value could not be encoded by the application's decoder.
    #[error("cannot encode the {what}: {reason}")]
    Encode {
        /// Which value.
        what: &'static str,
        /// The decoder's reason.
        reason: String,
    },
    /// Another live process holds the member key.
    #[error(
        "member {member} is taken by another live process (its key is held by lease {lease}); \
         waited {waited:?} for that lease to end"
    )]
    Taken {
        /// The member id.
        member: String,
        /// The other process's lease.
        lease: i64,
        /// How long this process waited.
        waited: Duration,
    },
    /// The member's lease ended (expired or revoked): its key and assignments are gone.
    #[error("member {member} lost its lease: {reason}")]
    LeaseLost {
        /// The member id.
        member: String,
        /// What the session saw.
        reason: String,
    },
    /// A call named an item the member does not hold.
    #[error("item {item} is not assigned to member {member}")]
    NotAssigned {
        /// The item.
        item: String,
        /// The member.
        member: String,
    },
}
