//! The errors of the runtime.

use std::time::Duration;

use apportion_core::keys::KeyError;
use apportion_core::state::BuildError;
use apportion_store::{LeaseId, StoreError};

/// Why a member could not start, or had to stop, or a call on it failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The prefix, zone or suffix is not a valid key part.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store refused or could not be reached.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The keys read cannot make a state (more than `u32::MAX` of one kind, or a key
    /// listed twice): no sane store read gets here, but a reader reports it rather than
    /// crash.
    #[error("cannot build the state of the cluster: {0}")]
    State(#[from] BuildError),
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
    /// Another process holds the member key, and its lease did not end while this one
    /// waited.
    #[error(
        "member {member} is held by another process: its key is {}, {}; \
         waited {:.1}s for it to end{}",
        match lease { Some(lease) => format!("under lease {lease}"), None => "without a lease".to_string() },
        match time_left { Some(left) => format!("which has {}s left", left.as_secs()), None => "which just ended".to_string() },
        waited.as_secs_f64(),
        if *renewed { " (the lease was renewed meanwhile: that process is alive; give this one another suffix)" }
        else { " (it was not renewed meanwhile: a process that died, whose lease the store extended; start again once it ends)" }
    )]
    Taken {
        /// The member id.
        member: String,
        /// The other process's lease (`None`: the key was written without one).
        lease: Option<LeaseId>,
        /// How long that lease had left when this process gave up, if it still existed.
        time_left: Option<Duration>,
        /// Whether the lease was renewed while this process waited (its holder is alive).
        renewed: bool,
        /// How long this process waited.
        waited: Duration,
    },
    /// The call needs the store, but the member is fenced (its lease renewals are not
    /// acknowledged) and must act as if it held nothing until they are again.
    #[error("member {member} is fenced: the store does not acknowledge its lease renewals")]
    Fenced {
        /// The member id.
        member: String,
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
