//! How a member is set up.

use std::time::Duration;

use apportion_core::values::JsonMember;
use apportion_store::renewal_period;

use crate::error::Error;

/// How long one leader election of the store may keep it from acknowledging renewals, by
/// default: etcd's default election timeout is 1 s, and an election after a leader dies
/// takes that timeout, a campaign, and the client's move to another node; 3 s covers it.
const DEFAULT_ELECTION_ALLOWANCE: Duration = Duration::from_secs(3);

/// The smallest fence margin chosen by default (unless the TTL is shorter than 3 s): the
/// time the application has to stop serving after [`Event::Fenced`](crate::Event::Fenced).
const MIN_DEFAULT_MARGIN: Duration = Duration::from_secs(1);

/// The settings of one member. Only the prefix, zone, suffix and value have no default.
///
/// `V` is the member's value type, the decoder's `Member` ([`JsonMember`] for the default
/// [`JsonDecoder`](crate::JsonDecoder), made by [`MemberConfig::json`]); the decoder itself
/// is given to [`Member::start`](crate::Member::start).
#[derive(Clone, Debug)]
pub struct MemberConfig<V = JsonMember> {
    /// The key prefix shared by the whole cluster, a clean absolute path like `/my-service`.
    pub prefix: String,
    /// The failure zone this member runs in (a rack, an availability zone).
    pub zone: String,
    /// What tells this member apart within its zone (a host name, a stateful pod's name).
    /// With the zone it is the member's identity: keep it across restarts, so the process
    /// that comes back is the member that left; a new suffix is a new member, and a process
    /// that starts while another one lives under the same identity is refused.
    pub suffix: String,
    /// The member's value: its item limit and whatever the application adds.
    pub value: V,
    /// The lease's time to live: how long a silent member keeps its items. Default 10 s.
    /// The store counts leases in whole seconds, so it must be a whole number of seconds,
    /// at least one ([`Member::start`](crate::Member::start) refuses anything else). With
    /// etcd, keep it at or above [`lowest_safe_ttl`](Self::lowest_safe_ttl) (5 s for
    /// etcd's default election timeout): below it, one etcd leader election fences every
    /// member, and a member starting with such a TTL logs a warning.
    pub lease_ttl: Duration,
    /// How long before the lease could expire the member stops serving when renewals are
    /// not acknowledged: the time the application has to stop. Default: a third of the TTL,
    /// made smaller (down to 1 s) where that lets the member ride out one store election
    /// (see [`election_allowance`](Self::election_allowance)).
    pub fence_margin: Option<Duration>,
    /// How long one leader election of the store may stop renewals from being
    /// acknowledged. A member whose TTL allows it rides such an outage out without
    /// fencing. Default 3 s, which covers an election with etcd's default timings (a 1 s
    /// election timeout, a campaign, the client's move to another node); raise it with
    /// etcd's `--election-timeout`.
    pub election_allowance: Duration,
    /// How long bursts of changes are gathered before the view is rebuilt. Default 20 ms.
    pub batch_delay: Duration,
    /// How long to wait for another process's claim on this member id to end before giving
    /// up. Default: three TTLs and two election allowances: a crashed process's lease is
    /// gone one TTL after its last renewal, but etcd extends every lease when it elects a
    /// new leader, so a lease can outlive its process by more than a TTL.
    pub announce_timeout: Option<Duration>,
}

impl<V> MemberConfig<V> {
    /// A configuration with default timings, for a member whose value is `value`.
    pub fn new(
        prefix: impl Into<String>,
        zone: impl Into<String>,
        suffix: impl Into<String>,
        value: V,
    ) -> Self {
        MemberConfig {
            prefix: prefix.into(),
            zone: zone.into(),
            suffix: suffix.into(),
            value,
            lease_ttl: Duration::from_secs(10),
            fence_margin: None,
            election_allowance: DEFAULT_ELECTION_ALLOWANCE,
            batch_delay: Duration::from_millis(20),
            announce_timeout: None,
        }
    }

    fn ttl(&self) -> Duration {
        self.lease_ttl.max(Duration::from_secs(1))
    }

    /// The lease TTL in the store's whole seconds, or why it is not a valid one.
    pub(crate) fn ttl_secs(&self) -> Result<i64, Error> {
        let ttl = self.lease_ttl;
        i64::try_from(ttl.as_secs())
            .ok()
            .filter(|&secs| secs >= 1 && ttl.subsec_nanos() == 0)
            .ok_or_else(|| {
                Error::Config(format!(
                    "lease TTL must be a whole number of seconds, at least 1 s, got {ttl:?}"
                ))
            })
    }

    /// How often the lease is renewed.
    fn renewal(&self) -> Duration {
        renewal_period(i64::try_from(self.ttl().as_secs()).unwrap_or(i64::MAX))
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
                .saturating_sub(self.renewal())
                .saturating_sub(self.election_allowance);
            third.min(riding_out.max(MIN_DEFAULT_MARGIN.min(third)))
        })
    }

    /// How long a store outage the member rides out without fencing, at worst.
    pub(crate) fn outage_tolerance(&self) -> Duration {
        self.ttl()
            .saturating_sub(self.margin())
            .saturating_sub(self.renewal())
    }

    /// The shortest TTL with which the default margin rides out one election of the
    /// store: the election allowance, a renewal period and the smallest default margin,
    /// rounded up to whole seconds (5 s with the default allowance).
    pub fn lowest_safe_ttl(&self) -> Duration {
        let floor = self.election_allowance + Duration::from_secs(1) + MIN_DEFAULT_MARGIN;
        Duration::from_secs(floor.as_secs_f64().ceil() as u64)
    }

    /// The announce timeout in force.
    pub(crate) fn announce_wait(&self) -> Duration {
        self.announce_timeout
            .unwrap_or(3 * self.ttl() + 2 * self.election_allowance)
    }
}

impl MemberConfig<JsonMember> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with_ttl(ttl: u64) -> MemberConfig {
        let mut config = MemberConfig::json("/p", "z", "s", 1);
        config.lease_ttl = Duration::from_secs(ttl);
        config
    }

    #[test]
    fn the_default_margin_rides_out_one_election_where_the_ttl_allows() {
        let lowest = with_ttl(10).lowest_safe_ttl().as_secs();
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

    #[test]
    fn the_lease_ttl_is_whole_seconds_of_at_least_one() {
        assert_eq!(with_ttl(7).ttl_secs().unwrap(), 7);
        for bad in [Duration::ZERO, Duration::from_millis(1500), Duration::MAX] {
            let mut config = with_ttl(1);
            config.lease_ttl = bad;
            assert!(
                matches!(config.ttl_secs(), Err(Error::Config(_))),
                "{bad:?}"
            );
        }
    }
}
