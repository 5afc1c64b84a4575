//! How a member is set up.

use std::time::Duration;

use apportion_core::values::{Decoder, JsonDecoder, JsonMember};
use apportion_store::renewal_period;

/// How long one leader election of the store may keep it from acknowledging renewals, by
/// default: etcd's default election timeout is 1 s, and an election after a leader dies
/// takes that timeout, a campaign, and the client's move to another node; 3 s covers it.
pub const DEFAULT_ELECTION_ALLOWANCE: Duration = Duration::from_secs(3);

/// The smallest fence margin chosen by default (unless the TTL is shorter than 3 s): the
/// time the application has to stop serving after [`Event::Fenced`](crate::Event::Fenced).
const MIN_DEFAULT_MARGIN: Duration = Duration::from_secs(1);

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
    /// With etcd, keep it at or above [`lowest_safe_ttl`](Self::lowest_safe_ttl) (5 s for
    /// etcd's default election timeout): below it, one etcd leader election fences every
    /// member, and a member starting with such a TTL logs a warning.
    pub lease_ttl_secs: i64,
    /// How long before the lease could expire the member stops serving when renewals are
    /// not acknowledged: the time the application has to stop. Default: a third of the TTL,
    /// made smaller (down to 1 s) where that lets the member ride out one store election
    /// (see [`election_allowance`](Self::election_allowance)).
    pub fence_margin: Option<Duration>,
    /// How long one leader election of the store may stop renewals from being
    /// acknowledged. A member whose TTL allows it rides such an outage out without
    /// fencing. Default [`DEFAULT_ELECTION_ALLOWANCE`] (etcd's default timings); raise it
    /// with etcd's `--election-timeout`.
    pub election_allowance: Duration,
    /// How long bursts of changes are gathered before the view is rebuilt. Default 20 ms.
    pub batch_delay: Duration,
    /// How long to wait for another process's claim on this member id to end before giving
    /// up. Default: three TTLs and two election allowances: a crashed process's lease is
    /// gone one TTL after its last renewal, but etcd extends every lease when it elects a
    /// new leader, so a lease can outlive its process by more than a TTL.
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
            election_allowance: DEFAULT_ELECTION_ALLOWANCE,
            batch_delay: Duration::from_millis(20),
            announce_timeout: None,
        }
    }

    fn ttl(&self) -> Duration {
        Duration::from_secs(self.lease_ttl_secs.max(1) as u64)
    }

    /// The fencing margin in force. A member fences once no renewal was acknowledged for
    /// `TTL - margin`; the last acknowledgement can be a renewal period old when the store
    /// goes away, so it rides out an outage of `TTL - margin - period`. The default is a
    /// third of the TTL, lowered (not below 1 s, or a third of the TTL if that is less) as
    /// far as needed for that to cover one election.
    pub(crate) fn margin(&self) -> Duration {
        self.fence_margin.unwrap_or_else(|| {
            let ttl = self.ttl();
            let third = ttl / 3;
            let riding_out = ttl
                .saturating_sub(renewal_period(self.lease_ttl_secs))
                .saturating_sub(self.election_allowance);
            third.min(riding_out.max(MIN_DEFAULT_MARGIN.min(third)))
        })
    }

    /// How long a store outage the member rides out without fencing, at worst.
    pub(crate) fn outage_tolerance(&self) -> Duration {
        self.ttl()
            .saturating_sub(self.margin())
            .saturating_sub(renewal_period(self.lease_ttl_secs))
    }

    /// The shortest TTL with which the default margin rides out one election of the
    /// store: the election allowance, a renewal period and the smallest default margin,
    /// in whole seconds (5 s with the default allowance).
    pub fn lowest_safe_ttl(&self) -> i64 {
        let floor = self.election_allowance + Duration::from_secs(1) + MIN_DEFAULT_MARGIN;
        floor.as_secs_f64().ceil() as i64
    }

    /// The announce timeout in force.
    pub(crate) fn announce_wait(&self) -> Duration {
        self.announce_timeout
            .unwrap_or(3 * self.ttl() + 2 * self.election_allowance)
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

impl<D: Decoder> Clone for MemberConfig<D>
where
    D::Member: Clone,
{
    fn clone(&self) -> Self {
        MemberConfig {
            prefix: self.prefix.clone(),
            zone: self.zone.clone(),
            suffix: self.suffix.clone(),
            value: self.value.clone(),
            lease_ttl_secs: self.lease_ttl_secs,
            fence_margin: self.fence_margin,
            election_allowance: self.election_allowance,
            batch_delay: self.batch_delay,
            announce_timeout: self.announce_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_ttl(ttl: i64) -> MemberConfig<JsonDecoder> {
        let mut config = MemberConfig::json("/p", "z", "s", 1);
        config.lease_ttl_secs = ttl;
        config
    }

    #[test]
    fn the_default_margin_rides_out_one_election_where_the_ttl_allows() {
        let lowest = with_ttl(10).lowest_safe_ttl();
        assert_eq!(lowest, 5);
        for ttl in lowest..=60 {
            let config = with_ttl(ttl);
            assert!(
                config.outage_tolerance() >= config.election_allowance,
                "TTL {ttl}: rides out {:?}",
                config.outage_tolerance()
            );
            assert!(config.margin() >= MIN_DEFAULT_MARGIN, "TTL {ttl}");
            assert!(config.margin() <= config.ttl() / 3, "TTL {ttl}");
        }
        assert!(with_ttl(lowest - 1).outage_tolerance() < DEFAULT_ELECTION_ALLOWANCE);
    }

    #[test]
    fn the_default_margin_is_a_third_of_a_long_ttl_and_never_more() {
        assert_eq!(with_ttl(30).margin(), Duration::from_secs(10));
        assert_eq!(with_ttl(5).margin(), Duration::from_secs(1));
        assert_eq!(with_ttl(3).margin(), Duration::from_secs(1));
        assert_eq!(with_ttl(1).margin(), Duration::from_secs(1) / 3);
        let mut set = with_ttl(10);
        set.fence_margin = Some(Duration::from_millis(1500));
        assert_eq!(set.margin(), Duration::from_millis(1500));
    }
}
