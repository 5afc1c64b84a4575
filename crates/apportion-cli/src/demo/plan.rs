//! The cast of the story, drawn from the command line and the seed before anything runs:
//! zones, members, items (which are exclusive), the members' limit, and who crashes, which
//! zone goes down, who drains and who joins. Drawing it all up front makes a run
//! reproducible from its seed and keeps the story itself free of choices.

use std::collections::BTreeSet;

/// How many replicas a replicated item wants.
pub const REPLICATION: u16 = 3;
/// One item in this many is exclusive (one owner, handed over break-before-make).
const EXCLUSIVE_ONE_IN: u32 = 10;
/// How many members join in the last phase.
pub const JOINERS: u32 = 2;

/// A member of the story: its zone and suffix (its id is `zone#suffix`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cast {
    /// The failure zone.
    pub zone: String,
    /// What tells it apart within the zone.
    pub suffix: String,
}

impl Cast {
    /// The member id, `zone#suffix`.
    pub fn name(&self) -> String {
        format!("{}#{}", self.zone, self.suffix)
    }
}

/// One item: its id, replication and whether it is exclusive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemSpec {
    /// The item id.
    pub id: String,
    /// How many replicas it wants.
    pub replication: u16,
    /// Whether it may have one owner only.
    pub exclusive: bool,
}

/// Everything the story needs to know in advance.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The members at the start, in the order they join.
    pub members: Vec<Cast>,
    /// The items.
    pub items: Vec<ItemSpec>,
    /// Every member's item limit: enough for the survivors to hold every replica when the
    /// incident zone is down, so the story is about moves, not shortage.
    pub item_limit: u32,
    /// The zone whose members fail: first one of them, then the rest.
    pub incident_zone: String,
    /// The member that crashes first (in the incident zone).
    pub crashed: Cast,
    /// The member that drains for good near the end.
    pub drained: Cast,
    /// The members that join in the last phase.
    pub joiners: Vec<Cast>,
}

/// The size of the story, from the command line.
#[derive(Clone, Copy, Debug)]
pub struct Size {
    /// Seeds every choice.
    pub seed: u64,
    /// Members at the start (at least `zones`).
    pub members: u32,
    /// Items.
    pub items: u32,
    /// Zones (2 to 26).
    pub zones: u32,
}

impl Plan {
    /// Draws the cast for `size`. The size must have been validated (see
    /// [`Size::check`]).
    pub fn draw(size: Size) -> Plan {
        let mut rng = fastrand::Rng::with_seed(size.seed);
        let zone_names: Vec<String> = (0..size.zones).map(zone_name).collect();
        let width = digits(size.members + JOINERS);
        let cast = |i: u32| Cast {
            zone: zone_names[(i % size.zones) as usize].clone(),
            suffix: format!("m{:0width$}", i + 1),
        };
        let members: Vec<Cast> = (0..size.members).map(cast).collect();
        let joiners = (size.members..size.members + JOINERS).map(cast).collect();

        let exclusive_count = size.items.div_ceil(EXCLUSIVE_ONE_IN) as usize;
        let mut ids: Vec<u32> = (0..size.items).collect();
        rng.shuffle(&mut ids);
        let exclusive: BTreeSet<u32> = ids.into_iter().take(exclusive_count).collect();
        let width = digits(size.items.saturating_sub(1)).max(3);
        let items: Vec<ItemSpec> = (0..size.items)
            .map(|i| {
                let exclusive = exclusive.contains(&i);
                ItemSpec {
                    id: format!("item-{i:0width$}"),
                    replication: if exclusive { 1 } else { REPLICATION },
                    exclusive,
                }
            })
            .collect();

        let per_zone = |zone: &str| members.iter().filter(|m| m.zone == zone).count();
        let largest = zone_names.iter().map(|z| per_zone(z)).max().unwrap_or(0);
        let candidates: Vec<&String> = zone_names
            .iter()
            .filter(|z| per_zone(z) == largest)
            .collect();
        let incident_zone = candidates[rng.usize(..candidates.len())].clone();
        let in_zone: Vec<&Cast> = members.iter().filter(|m| m.zone == incident_zone).collect();
        let crashed = in_zone[rng.usize(..in_zone.len())].clone();
        let drained = members[rng.usize(..members.len())].clone();

        let replicas: u32 = items.iter().map(|i| u32::from(i.replication)).sum();
        let survivors = size.members - largest as u32;
        let item_limit = round_up(replicas.div_ceil(survivors).max(1));
        Plan {
            members,
            items,
            item_limit,
            incident_zone,
            crashed,
            drained,
            joiners,
        }
    }

    /// The ids of the exclusive items.
    pub fn exclusive(&self) -> BTreeSet<String> {
        self.items
            .iter()
            .filter(|i| i.exclusive)
            .map(|i| i.id.clone())
            .collect()
    }
}

impl Size {
    /// Refuses sizes the story cannot be told with, saying why.
    pub fn check(&self) -> Result<(), String> {
        if !(2..=26).contains(&self.zones) {
            return Err(format!(
                "--zones must be from 2 to 26 (a zone goes down in the story), got {}",
                self.zones
            ));
        }
        if self.members < self.zones {
            return Err(format!(
                "--members must be at least --zones ({}), got {}",
                self.zones, self.members
            ));
        }
        if self.items == 0 {
            return Err("--items must be at least 1".into());
        }
        Ok(())
    }
}

/// `zone-a`, `zone-b`, ...
fn zone_name(index: u32) -> String {
    let letter = char::from(b'a' + index as u8);
    format!("zone-{letter}")
}

/// How many decimal digits `n` takes.
fn digits(n: u32) -> usize {
    n.max(1).ilog10() as usize + 1
}

/// Rounds a limit up to a multiple of ten, so tables read easily.
fn round_up(limit: u32) -> u32 {
    limit.div_ceil(10) * 10
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(members: u32, items: u32, zones: u32) -> Size {
        Size {
            seed: 7,
            members,
            items,
            zones,
        }
    }

    #[test]
    fn the_default_story_has_room_for_a_lost_zone() {
        let plan = Plan::draw(size(9, 300, 3));
        assert_eq!(plan.members.len(), 9);
        assert_eq!(plan.items.iter().filter(|i| i.exclusive).count(), 30);
        // 270 * 3 + 30 replicas over the 6 members outside the incident zone.
        assert_eq!(plan.item_limit, 140);
        assert_eq!(plan.crashed.zone, plan.incident_zone);
        assert_eq!(plan.joiners[0].name(), "zone-a#m10");
        assert_eq!(plan.members[0].name(), "zone-a#m01");
    }

    #[test]
    fn the_same_seed_draws_the_same_story() {
        let a = Plan::draw(size(5, 40, 2));
        let b = Plan::draw(size(5, 40, 2));
        assert_eq!(a.items, b.items);
        assert_eq!((a.crashed, a.drained), (b.crashed, b.drained));
    }

    #[test]
    fn the_incident_zone_is_one_of_the_largest() {
        for seed in 0..20 {
            let plan = Plan::draw(Size {
                seed,
                ..size(4, 10, 3)
            });
            assert_eq!(plan.incident_zone, "zone-a", "seed {seed}");
        }
    }

    #[test]
    fn sizes_the_story_cannot_use_are_refused() {
        assert!(size(9, 300, 1).check().unwrap_err().contains("--zones"));
        assert!(size(2, 300, 3).check().unwrap_err().contains("--members"));
        assert!(size(3, 0, 3).check().unwrap_err().contains("--items"));
        assert!(size(3, 1, 3).check().is_ok());
    }
}
