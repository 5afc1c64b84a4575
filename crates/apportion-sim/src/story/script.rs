//! The script of a story, drawn from its size and seed before anything runs: zones,
//! members, items (which are exclusive), the members' limit, and who crashes, which zone
//! goes down, who drains and who joins. Drawing it all up front makes a story reproducible
//! from its seed and keeps the telling free of choices.

use std::collections::BTreeSet;
use std::fmt;

use crate::plan::MemberSpec;

/// How many replicas a replicated item wants.
pub(super) const REPLICATION: u16 = 3;
/// One item in this many is exclusive (one owner, handed over break-before-make).
const EXCLUSIVE_ONE_IN: u32 = 10;
/// How many members join in the last phase.
const JOINERS: u32 = 2;

/// One item of the story: its id, replication and whether it is exclusive. Unlike the
/// simulation's items, whose id says whether they are exclusive, these carry a flag, so
/// that every item is named alike (`item-007`) wherever the story runs.
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
pub struct Script {
    /// The members at the start, in the order they join.
    pub members: Vec<MemberSpec>,
    /// The items.
    pub items: Vec<ItemSpec>,
    /// Every member's item limit: enough for the survivors to hold every replica when the
    /// incident zone is down, so the story is about moves, not shortage.
    pub item_limit: u32,
    /// The zone whose members fail: first one of them, then the rest.
    pub incident_zone: String,
    /// The id of the member that crashes first (in the incident zone).
    pub crashed: String,
    /// The id of the member that drains for good near the end.
    pub drained: String,
    /// The members that join in the last phase.
    pub joiners: Vec<MemberSpec>,
}

/// The size of a story, as a person asks for it.
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

/// Why a story cannot be told at some size; the caller words it for its own flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeError {
    /// Zones must be from 2 (one goes down) to 26 (they are named by letter); the number
    /// asked for.
    Zones(u32),
    /// Every zone needs a member at the start.
    Members {
        /// The zones asked for.
        zones: u32,
        /// The members asked for.
        members: u32,
    },
    /// There must be something to place.
    NoItems,
}

impl Script {
    /// Draws the script for `size`, or says why the story cannot be told at that size.
    pub fn draw(size: Size) -> Result<Script, SizeError> {
        size.check()?;
        let mut rng = fastrand::Rng::with_seed(size.seed);
        let zone_names: Vec<String> = (0..size.zones).map(zone_name).collect();
        let width = digits(size.members + JOINERS);
        let spec = |i: u32| MemberSpec {
            zone: zone_names[(i % size.zones) as usize].clone(),
            suffix: format!("m{:0width$}", i + 1),
            limit: 0,
        };
        let mut members: Vec<MemberSpec> = (0..size.members).map(spec).collect();
        let mut joiners: Vec<MemberSpec> =
            (size.members..size.members + JOINERS).map(spec).collect();

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
        let in_zone: Vec<&MemberSpec> =
            members.iter().filter(|m| m.zone == incident_zone).collect();
        let crashed = in_zone[rng.usize(..in_zone.len())].name();
        let drained = members[rng.usize(..members.len())].name();

        let replicas: u32 = items.iter().map(|i| u32::from(i.replication)).sum();
        let survivors = size.members - largest as u32;
        let item_limit = round_up(replicas.div_ceil(survivors).max(1));
        for member in members.iter_mut().chain(&mut joiners) {
            member.limit = item_limit;
        }
        Ok(Script {
            members,
            items,
            item_limit,
            incident_zone,
            crashed,
            drained,
            joiners,
        })
    }

    /// The ids of the exclusive items.
    pub fn exclusive(&self) -> BTreeSet<String> {
        self.items
            .iter()
            .filter(|i| i.exclusive)
            .map(|i| i.id.clone())
            .collect()
    }

    /// The distinct zones of the starting members, in order of appearance.
    pub fn zones(&self) -> Vec<&str> {
        let mut zones: Vec<&str> = Vec::new();
        for m in &self.members {
            if !zones.contains(&m.zone.as_str()) {
                zones.push(&m.zone);
            }
        }
        zones
    }
}

impl Size {
    /// Refuses sizes the story cannot be told with.
    fn check(&self) -> Result<(), SizeError> {
        if !(2..=26).contains(&self.zones) {
            return Err(SizeError::Zones(self.zones));
        }
        if self.members < self.zones {
            return Err(SizeError::Members {
                zones: self.zones,
                members: self.members,
            });
        }
        if self.items == 0 {
            return Err(SizeError::NoItems);
        }
        Ok(())
    }
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeError::Zones(got) => write!(f, "zones must be from 2 to 26, got {got}"),
            SizeError::Members { zones, members } => {
                write!(f, "members must be at least zones ({zones}), got {members}")
            }
            SizeError::NoItems => write!(f, "items must be at least 1"),
        }
    }
}

impl std::error::Error for SizeError {}

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
        let script = Script::draw(size(9, 300, 3)).unwrap();
        assert_eq!(script.members.len(), 9);
        assert_eq!(script.items.iter().filter(|i| i.exclusive).count(), 30);
        // 270 * 3 + 30 replicas over the 6 members outside the incident zone.
        assert_eq!(script.item_limit, 140);
        assert!(script.members.iter().all(|m| m.limit == 140));
        assert!(script
            .crashed
            .starts_with(&format!("{}#", script.incident_zone)));
        assert_eq!(script.joiners[0].name(), "zone-a#m10");
        assert_eq!(script.members[0].name(), "zone-a#m01");
        assert_eq!(script.zones(), ["zone-a", "zone-b", "zone-c"]);
    }

    #[test]
    fn the_same_seed_draws_the_same_story() {
        let a = Script::draw(size(5, 40, 2)).unwrap();
        let b = Script::draw(size(5, 40, 2)).unwrap();
        assert_eq!(a.items, b.items);
        assert_eq!((a.crashed, a.drained), (b.crashed, b.drained));
    }

    #[test]
    fn the_incident_zone_is_one_of_the_largest() {
        for seed in 0..20 {
            let script = Script::draw(Size {
                seed,
                ..size(4, 10, 3)
            });
            assert_eq!(script.unwrap().incident_zone, "zone-a", "seed {seed}");
        }
    }

    #[test]
    fn sizes_the_story_cannot_use_are_refused() {
        let refused = |s: Size| Script::draw(s).unwrap_err();
        assert_eq!(refused(size(9, 300, 1)), SizeError::Zones(1));
        let members = SizeError::Members {
            zones: 3,
            members: 2,
        };
        assert_eq!(refused(size(2, 300, 3)), members);
        assert_eq!(refused(size(3, 0, 3)), SizeError::NoItems);
        assert!(Script::draw(size(3, 1, 3)).is_ok());
    }
}
