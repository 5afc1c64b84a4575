//! [`State::build`]: sorting a snapshot and deriving the indexes, counts, leader and hash.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::hash::StableHasher;
use super::order::sort_unique;
use super::{BuildError, Entry, Snapshot, State};
use crate::away::AwayRecord;
use crate::keys::{AssignmentKey, ItemId, MemberId};
use crate::values::{ItemValue, MemberValue};

impl<I: ItemValue, M: MemberValue, A> State<I, M, A> {
    /// Builds the state from a snapshot, taking ownership of its entries so nothing is
    /// cloned. `local` is this process's member id, if it is a member, for
    /// [`local_member`](Self::local_member) and
    /// [`local_assignments`](Self::local_assignments).
    ///
    /// Fails only on input no store read can produce: a key listed twice, or more than
    /// `u32::MAX` entries of one kind.
    pub fn build(
        snapshot: Snapshot<I, M, A>,
        local: Option<&MemberId>,
    ) -> Result<Self, BuildError> {
        let Snapshot {
            mut items,
            mut members,
            mut assignments,
            settings,
            mut away,
        } = snapshot;
        check_len(items.len(), "item")?;
        check_len(members.len(), "member")?;
        check_len(assignments.len(), "assignment")?;
        sort_unique(&mut items, "item")?;
        sort_unique(&mut members, "member")?;
        sort_unique(&mut assignments, "assignment")?;
        sort_unique(&mut away, "away record")?;
        let member_table = table(&members);

        let local = local.and_then(|id| member_table.get(id.as_str()).copied());
        let links = Links::new(&items, &member_table, members.len(), assignments, local);
        let zones = zones_with_capacity(&members);
        let item_slots = items
            .iter()
            .map(|e| u64::from(e.value.copies_wanted()))
            .sum();
        let member_slots = members
            .iter()
            .filter(|e| !e.value.is_exiting() && !e.value.is_restarting())
            .map(|e| u64::from(e.value.item_limit()))
            .sum();
        let leader = members
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| {
                let value = &e.value;
                let key = (
                    value.is_exiting() || value.is_restarting(),
                    value.is_yielding(),
                );
                (key, e.meta.create_revision, &e.key)
            })
            .map(|(index, _)| index as u32);
        Ok(Self {
            items,
            members,
            assignments: links.live,
            dangling: links.dangling,
            assignment_member: links.assignment_member,
            item_start: links.item_start,
            member_assigned: links.member_assigned,
            member_primaries: links.member_primaries,
            zones,
            item_slots,
            member_slots,
            local,
            local_assignments: links.local_assignments,
            leader,
            settings: settings.unwrap_or_default(),
            away,
            solver_hash: std::sync::OnceLock::new(),
        })
    }
}

/// Rejects inputs too large for the `u32` indexes, so later `as u32` casts are lossless.
fn check_len(count: usize, kind: &'static str) -> Result<(), BuildError> {
    if u32::try_from(count).is_ok() {
        Ok(())
    } else {
        Err(BuildError::TooLarge { kind, count })
    }
}

/// Maps member ids (as text) to their index; hashing beats binary search by string
/// comparison when every assignment needs a lookup.
type Table<'a> = HashMap<&'a str, u32, BuildHasherDefault<StableHasher>>;

fn table<K: AsRef<str>, V>(entries: &[Entry<K, V>]) -> Table<'_> {
    entries
        .iter()
        .enumerate()
        .map(|(index, e)| (e.key.as_ref(), index as u32))
        .collect()
}

/// Marks a dangling assignment in `Links::assignment_member` until it is moved out.
const DANGLING: u32 = u32::MAX;

/// The assignments split into live and dangling, with the indexes that tie live ones to
/// their items and members.
struct Links<A> {
    live: Vec<Entry<AssignmentKey, A>>,
    dangling: Vec<Entry<AssignmentKey, A>>,
    assignment_member: Vec<u32>,
    item_start: Vec<u32>,
    member_assigned: Vec<u32>,
    member_primaries: Vec<u32>,
    local_assignments: Vec<(u32, u32)>,
}

impl<A> Links<A> {
    /// One pass over the sorted assignments computes every index and count; the entries
    /// themselves are only moved when some are dangling. Items are found by walking the
    /// sorted item list alongside (both are in item order), members through a hash table.
    fn new<I>(
        items: &[Entry<ItemId, I>],
        member_table: &Table<'_>,
        members: usize,
        assignments: Vec<Entry<AssignmentKey, A>>,
        local: Option<u32>,
    ) -> Self {
        let mut links = Links {
            live: Vec::new(),
            dangling: Vec::new(),
            assignment_member: Vec::with_capacity(assignments.len()),
            item_start: vec![0; items.len() + 1],
            member_assigned: vec![0; members],
            member_primaries: vec![0; members],
            local_assignments: Vec::new(),
        };
        let mut item_cursor = 0;
        let mut dangling = 0;
        for (position, entry) in assignments.iter().enumerate() {
            while items
                .get(item_cursor)
                .is_some_and(|item| item.key < entry.key.item)
            {
                item_cursor += 1;
            }
            let item_exists = items
                .get(item_cursor)
                .is_some_and(|item| item.key == entry.key.item);
            match member_table.get(entry.key.member.as_str()) {
                Some(&member) if item_exists => {
                    let live_position = (position - dangling) as u32;
                    links.count(entry, live_position, item_cursor as u32, member, local);
                }
                _ => {
                    dangling += 1;
                    links.assignment_member.push(DANGLING);
                }
            }
        }
        if dangling == 0 {
            links.live = assignments;
        } else {
            links.split_dangling(assignments, dangling);
        }
        // Turn per-item counts (stored one place to the right) into start offsets.
        for index in 1..links.item_start.len() {
            links.item_start[index] += links.item_start[index - 1];
        }
        links
    }

    /// Records live assignment `entry`, which will sit at `position` among live ones.
    fn count(
        &mut self,
        entry: &Entry<AssignmentKey, A>,
        position: u32,
        item: u32,
        member: u32,
        local: Option<u32>,
    ) {
        self.item_start[item as usize + 1] += 1;
        self.member_assigned[member as usize] += 1;
        if entry.key.slot.is_primary() {
            self.member_primaries[member as usize] += 1;
        }
        if local == Some(member) {
            self.local_assignments.push((position, item));
        }
        self.assignment_member.push(member);
    }

    /// Moves the entries marked [`DANGLING`] out of the live list, keeping both sorted.
    fn split_dangling(&mut self, assignments: Vec<Entry<AssignmentKey, A>>, dangling: usize) {
        self.live = Vec::with_capacity(assignments.len() - dangling);
        self.dangling = Vec::with_capacity(dangling);
        for (entry, &member) in assignments.into_iter().zip(&self.assignment_member) {
            if member == DANGLING {
                self.dangling.push(entry);
            } else {
                self.live.push(entry);
            }
        }
        self.assignment_member.retain(|&member| member != DANGLING);
    }
}

/// The sorted, distinct zones of members that can take copies (limit above 0, neither
/// exiting nor restarting). Members are sorted by zone, so equal zones are adjacent.
fn zones_with_capacity<M: MemberValue>(members: &[Entry<MemberId, M>]) -> Vec<Box<str>> {
    let mut zones: Vec<Box<str>> = Vec::new();
    for member in members {
        let value = &member.value;
        let has_capacity = value.item_limit() > 0 && !value.is_exiting() && !value.is_restarting();
        let zone = member.key.zone();
        if has_capacity && zones.last().is_none_or(|last| **last != *zone) {
            zones.push(zone.into());
        }
    }
    zones
}

/// See [`State::solver_hash`] for what is included and why. Each section starts with its
/// length so entries cannot shift from one section to the next.
pub(super) fn solver_hash<I: ItemValue, M: MemberValue, A>(
    items: &[Entry<ItemId, I>],
    members: &[Entry<MemberId, M>],
    live: &[Entry<AssignmentKey, A>],
    away: &[Entry<MemberId, AwayRecord>],
) -> u64 {
    let mut hasher = StableHasher::default();
    hasher.write_u64(members.len() as u64);
    for member in members {
        hasher.write_str(member.key.as_str());
        hasher.write_u64(u64::from(member.value.item_limit()));
        hasher.write_u64(u64::from(member.value.is_exiting()));
        hasher.write_u64(u64::from(member.value.is_restarting()));
    }
    hasher.write_u64(items.len() as u64);
    for item in items {
        hasher.write_str(item.key.as_str());
        hasher.write_u64(u64::from(item.value.replication()));
        hasher.write_u64(u64::from(item.value.is_exclusive()));
    }
    hasher.write_u64(live.len() as u64);
    for assignment in live {
        hasher.write_str(assignment.key.item.as_str());
        hasher.write_str(assignment.key.member.as_str());
        hasher.write_u64(u64::from(assignment.key.slot.0));
    }
    hasher.write_u64(away.len() as u64);
    for record in away {
        hasher.write_str(record.key.as_str());
        hasher.write_u64(record.value.items.len() as u64);
        for item in &record.value.items {
            hasher.write_str(item.as_str());
        }
    }
    hasher.finish()
}
