//! How a member is set up.

use std::time::Duration;

use apportion_core::values::{Decoder, JsonDecoder, JsonMember};

/// The settings of one member. Only the prefix, zone, suffix and value have no default.
pub struct MemberConfig<D: Decoder> {
    /// The key prefix shared by the whole cluster, a clean absolute path like `/my-service`.
    pub prefix: String,
    /// The failure zone this member runs in (a rack, an availability zone).
    pub zone: String,
    /// What tells this member apart within its zone (a host name, a pod name).
    pub suffix: String,
    /// The member's value: its item limit and whatever the application adds.
    pub value: D::Member,
    /// The lease's time to live: how long a silent member keeps its items. Default 10 s.
    pub lease_ttl_secs: i64,
    /// How long before the lease could expire the member stops serving when renewals are
    /// not acknowledged. Default: a third of the TTL.
    pub fence_margin: Option<Duration>,
    /// How long bursts of changes are gathered before the view is rebuilt. Default 20 ms.
    pub batch_delay: Duration,
    /// How long to wait for another process's claim on this member id to end before giving
    /// up. Default: three TTLs (a crashed process's lease is gone after one).
    pub announce_timeout: Option<Duration>,
}

impl<D: Decoder> MemberConfig<D> {
    /// A configuration with default timings.
    pub fn new(
        prefix: impl Into<String>,
        zone: impl Into<String>,
        suffix: impl Into<String>,
        value: D::Member,
    ) -> Self {
        MemberConfig {
            prefix: prefix.into(),
            zone: zone.into(),
            suffix: suffix.into(),
            value,
            lease_ttl_secs: 10,
            fence_margin: None,
            batch_delay: Duration::from_millis(20),
            announce_timeout: None,
        }
    }

    /// The fencing margin in force.
    pub(crate) fn margin(&self) -> Duration {
        self.fence_margin.unwrap_or(Duration::from_millis(
            self.lease_ttl_secs.max(1) as u64 * 1000 / 3,
        ))
    }

    /// The announce timeout in force.
    pub(crate) fn announce_wait(&self) -> Duration {
        self.announce_timeout
            .unwrap_or(Duration::from_secs(3 * self.lease_ttl_secs.max(1) as u64))
    }
}

impl MemberConfig<JsonDecoder> {
    /// A configuration for the default JSON values: a member that may hold `item_limit` items.
    pub fn json(
        prefix: impl Into<String>,
        zone: impl Into<String>,
        suffix: impl Into<String>,
        item_limit: u32,
    ) -> Self {
        let value = JsonMember {
            item_limit,
            ..JsonMember::default()
        };
        MemberConfig::new(prefix, zone, suffix, value)
    }
}
