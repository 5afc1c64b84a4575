//! The size of a converge run, and what follows from it: the slots to fill, each member's
//! limit, the members' names and the refill's victim, the same in every shape.

use std::time::Duration;

/// How big a cluster to run and how long to watch it.
#[derive(Clone, Debug)]
pub struct ConvergeOptions {
    /// How many members to run.
    pub members: usize,
    /// How many items to place.
    pub items: usize,
    /// Replicas per item.
    pub replication: u16,
    /// Zones the members are spread over (member `i` in zone `i % zones`).
    pub zones: usize,
    /// The members' lease TTL, whole seconds (the refill waits for the victim's to end).
    pub lease_ttl: Duration,
    /// The key prefix; everything under it is deleted first.
    pub prefix: String,
    /// How long to watch the settled cluster for writes it should not make.
    pub idle: Duration,
}

impl ConvergeOptions {
    /// Refuses a run that could not end: the refill kills one member, and the others must
    /// still be able to hold every copy (each on a member of its own, within their limits),
    /// or the benchmark would wait for ever. The message names the options by the
    /// `bench converge` flags that set them.
    pub fn check(&self) -> Result<(), String> {
        let survivors = self.members.saturating_sub(1);
        if survivors < usize::from(self.replication.max(1))
            || survivors * (self.item_limit() as usize) < self.slots()
        {
            return Err(format!(
                "--members {} is too few for --replication {}: the refill kills one member, and the others must still hold every copy",
                self.members, self.replication
            ));
        }
        Ok(())
    }

    /// Replica slots to fill: every item's replication.
    pub(super) fn slots(&self) -> usize {
        self.items * usize::from(self.replication)
    }

    /// Each member's item limit: room for half as much again as a fair share, so that the
    /// limits shape the placement without making it tight.
    pub(super) fn item_limit(&self) -> u32 {
        (self.slots() * 3 / 2).div_ceil(self.members.max(1)) as u32
    }

    /// Member `i`'s zone and suffix (`z{i % zones}`, `m{i:03}`): the same names in both
    /// shapes, so that their lines can be compared member by member.
    pub(super) fn member_name(&self, i: usize) -> (String, String) {
        (format!("z{}", i % self.zones.max(1)), format!("m{i:03}"))
    }

    /// The id of the member the refill phase kills: the youngest (started last), which is
    /// not the leader (the oldest member leads), so the phase measures a replica loss, not
    /// a leader change.
    pub(super) fn victim(&self) -> String {
        let (zone, suffix) = self.member_name(self.members.saturating_sub(1));
        format!("{zone}#{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(members: usize, items: usize, replication: u16) -> ConvergeOptions {
        ConvergeOptions {
            members,
            items,
            replication,
            zones: 3,
            lease_ttl: Duration::from_secs(5),
            prefix: "/apportion-bench".into(),
            idle: Duration::from_secs(5),
        }
    }

    #[test]
    fn the_survivors_of_the_refill_must_hold_every_copy() {
        assert!(options(4, 60, 3).check().is_ok());
        let too_few = options(3, 60, 3).check().unwrap_err();
        assert!(too_few.starts_with("--members 3 is too few for --replication 3"));
        // One survivor could hold a copy of every item, but not within its limit.
        assert!(options(2, 60, 1).check().is_err());
        assert!(options(3, 60, 1).check().is_ok());
    }

    #[test]
    fn the_victim_is_the_youngest_member() {
        let options = options(10, 2000, 3);
        assert_eq!(options.member_name(0), ("z0".into(), "m000".into()));
        assert_eq!(options.victim(), "z0#m009");
        assert_eq!(options.item_limit(), 900);
    }
}
