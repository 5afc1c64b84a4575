//! [`State`]: one consistent snapshot of items, members and assignments, sorted and
//! indexed for the solver, the planner and the member runtime.
//!
//! The runtime mirrors the three directories (through the store crate's `KeySpace`, or one
//! paged read), decodes each key-value with [`decode_entry`] and files the results into a
//! [`Snapshot`] with [`Snapshot::push`]; [`State::build`] sorts them once and derives
//! everything the allocator asks about: zones with capacity, slot totals, per-member
//! counts, each item's assignments as one contiguous range, the leader, the local member's
//! view, assignments left behind by deleted items or members, and a hash of the solver's
//! inputs.
//!
//! Entries are moved in, never cloned, and the indexes are `u32` vectors, so a build costs
//! a handful of allocations however large the snapshot.

mod build;
mod decode;
mod hash;
mod order;

use std::ops::Range;

pub use decode::{decode_entry, Decoded, DecodedBy, EntryError};

use crate::away::AwayRecord;
use crate::keys::{AssignmentKey, ItemId, MemberId};
use crate::lease::LeaseId;
use crate::settings::ClusterSettings;
use crate::values::{ItemValue, JsonItem, JsonMember, JsonStatus, MemberValue};

/// The store's bookkeeping for one key, as etcd reports it. Core defines it so that
/// `State` can elect a leader and the runtime can make conditional writes without
/// depending on the store crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meta {
    /// Revision at which the key was created; the oldest member leads.
    pub create_revision: i64,
    /// Revision of the last write to the key; guards compare-and-swap updates.
    pub mod_revision: i64,
    /// How many writes the key has had since it was created (1 after creation), as etcd
    /// counts them; an alternative guard for conditional updates.
    pub version: i64,
    /// Lease the key is attached to, if any; members and assignments live under the
    /// member's lease so they vanish when the member dies.
    pub lease: Option<LeaseId>,
}

/// One decoded key-value pair with its store metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<K, V> {
    /// The parsed key.
    pub key: K,
    /// The decoded value.
    pub value: V,
    /// The store's metadata for the key.
    pub meta: Meta,
}

/// The raw input of [`State::build`]: everything under the prefix at one revision, in any
/// order.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot<I, M, A> {
    /// Entries under `P/items/`.
    pub items: Vec<Entry<ItemId, I>>,
    /// Entries under `P/members/`.
    pub members: Vec<Entry<MemberId, M>>,
    /// Entries under `P/assign/`.
    pub assignments: Vec<Entry<AssignmentKey, A>>,
    /// The value at `P/settings`, if there is one that decoded.
    pub settings: Option<ClusterSettings>,
    /// Entries under `P/away/`.
    pub away: Vec<Entry<MemberId, AwayRecord>>,
}

// A manual impl: deriving would needlessly require the value types to be `Default`.
impl<I, M, A> Default for Snapshot<I, M, A> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            members: Vec::new(),
            assignments: Vec::new(),
            settings: None,
            away: Vec::new(),
        }
    }
}

/// Why a snapshot could not become a [`State`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The same key appears twice, which a single store read can never produce; it means
    /// the snapshot was assembled wrongly, and picking either copy would hide that.
    #[error("snapshot holds {kind} `{key}` more than once")]
    Duplicate {
        /// `item`, `member` or `assignment`.
        kind: &'static str,
        /// The repeated key (its id part).
        key: String,
    },
    /// More entries of one kind than the `u32` indexes can address.
    #[error("snapshot holds {count} {kind} entries, more than {max}", max = u32::MAX)]
    TooLarge {
        /// `item`, `member` or `assignment`.
        kind: &'static str,
        /// How many there were.
        count: usize,
    },
}

/// The default state type, for values decoded by [`JsonDecoder`](crate::values::JsonDecoder).
pub type JsonState = State<JsonItem, JsonMember, JsonStatus>;

/// A sorted, indexed snapshot. Indexes handed out (`usize`) refer to positions in
/// [`items`](Self::items), [`members`](Self::members) and
/// [`assignments`](Self::assignments).
#[derive(Debug, Clone)]
pub struct State<I, M, A> {
    items: Vec<Entry<ItemId, I>>,
    members: Vec<Entry<MemberId, M>>,
    assignments: Vec<Entry<AssignmentKey, A>>,
    dangling: Vec<Entry<AssignmentKey, A>>,
    /// For each live assignment, the index of its member.
    assignment_member: Vec<u32>,
    /// Item `i`'s assignments are `assignments[item_start[i]..item_start[i + 1]]`.
    item_start: Vec<u32>,
    /// Per member: how many live assignments it holds.
    member_assigned: Vec<u32>,
    /// Per member: how many of those are primaries.
    member_primaries: Vec<u32>,
    zones: Vec<Box<str>>,
    item_slots: u64,
    member_slots: u64,
    local: Option<u32>,
    /// The local member's assignments, as (assignment index, item index) pairs.
    local_assignments: Vec<(u32, u32)>,
    leader: Option<u32>,
    /// The cluster settings (the defaults when `P/settings` is missing or unreadable).
    settings: ClusterSettings,
    /// Away records, sorted by member.
    away: Vec<Entry<MemberId, AwayRecord>>,
    /// Computed on first use: only the leader asks, and every member builds a state per
    /// burst of changes.
    solver_hash: std::sync::OnceLock<u64>,
}

/// One copy held by the local member, with what the member needs to serve it.
#[derive(Debug)]
pub struct LocalAssignment<'a, I, A> {
    /// The item, with its value (which carries the application's item data).
    pub item: &'a Entry<ItemId, I>,
    /// The local member's assignment; its key's slot says whether this is the primary.
    pub assignment: &'a Entry<AssignmentKey, A>,
    /// All of the item's assignments, this one included, in (member, slot) order, so a
    /// replica can find its primary and a primary its replicas.
    pub copies: &'a [Entry<AssignmentKey, A>],
}

impl<'a, I, A> LocalAssignment<'a, I, A> {
    /// The item's assignments held by other members (or in other slots).
    pub fn others(&self) -> impl Iterator<Item = &'a Entry<AssignmentKey, A>> + use<'a, I, A> {
        let own: &'a AssignmentKey = &self.assignment.key;
        self.copies.iter().filter(move |copy| copy.key != *own)
    }
}

impl<I, M, A> State<I, M, A> {
    /// All items, sorted by id.
    pub fn items(&self) -> &[Entry<ItemId, I>] {
        &self.items
    }

    /// All members, sorted by (zone, suffix), so each zone's members are contiguous.
    pub fn members(&self) -> &[Entry<MemberId, M>] {
        &self.members
    }

    /// Assignments whose item and member both exist, sorted by (item, member, slot).
    pub fn assignments(&self) -> &[Entry<AssignmentKey, A>] {
        &self.assignments
    }

    /// Assignments whose item or member no longer exists, sorted. They are excluded from
    /// every count and from the solver hash, so they neither load a member nor fill a slot.
    /// The [planner](crate::planner) removes those of a gone item. Those of an existing
    /// item whose member is missing are left to their lease, since the member may still be
    /// serving them (one without a lease is removed, and an exclusive item's are asked to
    /// release).
    pub fn dangling(&self) -> &[Entry<AssignmentKey, A>] {
        &self.dangling
    }

    /// The index of an item, by binary search.
    pub fn item_index(&self, id: &ItemId) -> Option<usize> {
        self.items.binary_search_by(|e| e.key.cmp(id)).ok()
    }

    /// The index of a member, by binary search.
    pub fn member_index(&self, id: &MemberId) -> Option<usize> {
        self.members.binary_search_by(|e| e.key.cmp(id)).ok()
    }

    /// The positions in [`assignments`](Self::assignments) of item `item`'s copies;
    /// empty for an unplaced item or an index out of range.
    pub fn item_assignment_range(&self, item: usize) -> Range<usize> {
        match (self.item_start.get(item), self.item_start.get(item + 1)) {
            (Some(&start), Some(&end)) => start as usize..end as usize,
            _ => 0..0,
        }
    }

    /// Item `item`'s assignments, sorted by (member, slot).
    pub fn item_assignments(&self, item: usize) -> &[Entry<AssignmentKey, A>] {
        &self.assignments[self.item_assignment_range(item)]
    }

    /// The index of the member holding live assignment `assignment`.
    pub fn assignment_member(&self, assignment: usize) -> Option<usize> {
        self.assignment_member
            .get(assignment)
            .map(|&member| member as usize)
    }

    /// How many copies member `member` holds (0 for an index out of range).
    pub fn member_assignment_count(&self, member: usize) -> u32 {
        self.member_assigned.get(member).copied().unwrap_or(0)
    }

    /// How many primaries member `member` holds (0 for an index out of range).
    pub fn member_primary_count(&self, member: usize) -> u32 {
        self.member_primaries.get(member).copied().unwrap_or(0)
    }

    /// The zones copies can be placed in, sorted: those with at least one member that has
    /// a positive item limit and is not exiting. Spreading copies over zones only counts
    /// zones that can take them.
    pub fn zones(&self) -> &[Box<str>] {
        &self.zones
    }

    /// How many copies all items ask for: the sum of the copies each wants
    /// ([`ItemValue::copies_wanted`]: an exclusive item wants one, whatever its replication).
    pub fn item_slots(&self) -> u64 {
        self.item_slots
    }

    /// How many copies the members can hold: the sum of the item limits of members that
    /// are not exiting. Less than [`item_slots`](Self::item_slots) means some copies
    /// cannot be placed.
    pub fn member_slots(&self) -> u64 {
        self.member_slots
    }

    /// The index of the local member, if one was given to [`State::build`] and is
    /// registered.
    pub fn local_member(&self) -> Option<usize> {
        self.local.map(|member| member as usize)
    }

    /// The copies the local member holds, in item order; empty without a local member.
    pub fn local_assignments(&self) -> impl ExactSizeIterator<Item = LocalAssignment<'_, I, A>> {
        self.local_assignments
            .iter()
            .map(|&link| self.local_link(link))
    }

    /// The copies the local member holds of item `id` (usually one; more only while a
    /// copy moves between slots), found by binary search: a member answering for each of
    /// its thousands of items must not scan all of them every time.
    pub fn local_assignments_of(
        &self,
        id: &ItemId,
    ) -> impl Iterator<Item = LocalAssignment<'_, I, A>> {
        let item = self.item_index(id).map_or(u32::MAX, |i| i as u32);
        let start = self.local_assignments.partition_point(|&(_, i)| i < item);
        self.local_assignments[start..]
            .iter()
            .take_while(move |&&(_, i)| i == item)
            .map(|&link| self.local_link(link))
    }

    /// A local copy from its (assignment, item) indices.
    fn local_link(&self, (assignment, item): (u32, u32)) -> LocalAssignment<'_, I, A> {
        LocalAssignment {
            item: &self.items[item as usize],
            assignment: &self.assignments[assignment as usize],
            copies: self.item_assignments(item as usize),
        }
    }

    /// The away records (see [`away`](crate::away)), sorted by member.
    pub fn away_records(&self) -> &[Entry<MemberId, AwayRecord>] {
        &self.away
    }

    /// The away record of `member`, if it has one.
    pub fn away_record(&self, member: &MemberId) -> Option<&Entry<MemberId, AwayRecord>> {
        self.away
            .binary_search_by(|e| e.key.cmp(member))
            .ok()
            .map(|i| &self.away[i])
    }

    /// The cluster settings the leader plans under: the value at `P/settings`, or the
    /// defaults (nothing held back) when there is none or it did not decode.
    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    /// The index of the member that should lead: the oldest (lowest create revision,
    /// ties broken by key) among members that are neither exiting (nor restarting) nor
    /// stepped down (yielding), else among those that are not exiting, else among all
    /// members. Skipping exiting members hands leadership over while the old leader is
    /// still draining (or preparing a restart) instead of leaving a gap when it
    /// disappears; skipping yielding ones lets a
    /// leader whose solves keep failing hand over without giving up its items.
    pub fn leader(&self) -> Option<usize> {
        self.leader.map(|member| member as usize)
    }

    /// Whether the local member is the leader.
    pub fn is_local_leader(&self) -> bool {
        self.local.is_some() && self.local == self.leader
    }
}

impl<I: ItemValue, M: MemberValue, A> State<I, M, A> {
    /// A hash of everything the solver reads, equal in every process for equal inputs:
    /// members with their item limits, exiting and restarting flags, items with their
    /// replication and exclusive flags, the keys (item, member, slot) of live assignments,
    /// and the away records. (What the away records hold back also depends on how many
    /// copies are ready, which this hash leaves out: the allocator compares
    /// [`away::holds`](crate::away::holds) besides.)
    ///
    /// Assignment keys are included so that the leader also re-solves when an assignment
    /// disappears without its member (deleted by hand, or by a failed write) and repairs
    /// it; a member loss changes the member list anyway, and the runtime's deletion of
    /// dangling assignments afterwards changes nothing here because dangling ones are
    /// excluded. Assignment values (the members' status), metadata and the leader are
    /// excluded: the solver does not read them, so a member turning ready must not
    /// trigger a re-solve. The leader's own writes do change the hash; re-solving then
    /// finds nothing to do.
    pub fn solver_hash(&self) -> u64 {
        *self.solver_hash.get_or_init(|| {
            build::solver_hash(&self.items, &self.members, &self.assignments, &self.away)
        })
    }
}
