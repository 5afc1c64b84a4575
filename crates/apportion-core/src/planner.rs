//! The planner: from the current [`State`] and the desired assignment, the changes that are
//! safe to make *now*.
//!
//! The solver says where every replica should end up; getting there safely takes several
//! rounds, and the planner computes one. It is pure, so every rule below is tested directly:
//!
//! - **Replicated items are make-before-break.** New replicas are added at once (with an
//!   empty, not-ready status). A replica that is no longer wanted is removed at once if it is
//!   not consistent (it serves nothing yet), and otherwise only while the item keeps at least
//!   as many consistent replicas as it wants. So a move completes in two rounds: add, wait
//!   for the new replica to become consistent, remove the old one. An item that wants any
//!   replica never loses its last consistent one, even when capacity has shrunk so far that
//!   the solver places it nowhere: a member then holds it above its limit until room appears.
//! - **Primaries** (slot 0) move to the solver's choice only once that replica is consistent.
//!   When slot 0 is empty, a consistent replica is promoted, the wanted one first.
//! - **Slots stay contiguous** from 0: a replica keeps its slot when it can, and the others
//!   fill the gaps.
//! - **Exclusive items are break-before-make.** An item has one owner at most. An owner that
//!   is not wanted is asked to release (its status is marked); it acknowledges by deleting
//!   its assignment once it has stopped serving. The new owner is added only once the item
//!   has no assignment left at all: not after a release request, and not while an
//!   assignment of a vanished member is still there (its lease may still be alive).
//! - **Dangling assignments** of a gone item are removed. One of an existing item whose
//!   member is missing from the view is left to its lease: the assignment exists, so the
//!   member's lease is alive and the member may well be serving it, its key only briefly
//!   gone or holding a value this view cannot read. It does not count as a replica; it
//!   goes when the lease ends (one without a lease is removed). An existing exclusive
//!   item's are asked to release like any other owner.
//!
//! The runtime writes each item's changes in one transaction, guarded on what the plan
//! depends on rather than on the whole item: the item's key as read and no assignment of
//! it created since the state was read, so a stale view can never double-assign, and the
//! consistent copies a removal relies on exactly as read (a lease may have ended in the
//! meantime, and a deletion changes no other key). A member's status write on a copy the
//! plan does not rely on fails nothing.

use std::collections::BTreeMap;

use crate::keys::{AssignmentKey, ItemId, Slot};
use crate::lease::LeaseId;
use crate::state::{Entry, State};
use crate::values::{AssignmentValue, ItemValue, MemberValue};

/// Decides whether one assignment of an item is consistent: caught up enough that the item
/// may rely on it (to drop another replica, or to make it primary).
pub trait Consistency<I, A> {
    /// `assignment` is one of `all`, the item's live assignments.
    fn is_consistent(
        &self,
        item: &Entry<ItemId, I>,
        assignment: &Entry<AssignmentKey, A>,
        all: &[Entry<AssignmentKey, A>],
    ) -> bool;
}

impl<I, A, F> Consistency<I, A> for F
where
    F: Fn(&Entry<ItemId, I>, &Entry<AssignmentKey, A>, &[Entry<AssignmentKey, A>]) -> bool,
{
    fn is_consistent(
        &self,
        item: &Entry<ItemId, I>,
        assignment: &Entry<AssignmentKey, A>,
        all: &[Entry<AssignmentKey, A>],
    ) -> bool {
        self(item, assignment, all)
    }
}

/// The default consistency check: the member reported the assignment ready.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadyStatus;

impl<I, A: AssignmentValue> Consistency<I, A> for ReadyStatus {
    fn is_consistent(
        &self,
        _item: &Entry<ItemId, I>,
        assignment: &Entry<AssignmentKey, A>,
        _all: &[Entry<AssignmentKey, A>],
    ) -> bool {
        assignment.value.is_ready()
    }
}

/// One change to the assignments of an item.
#[derive(Debug, Clone, PartialEq)]
pub enum Change<'a, A> {
    /// Create an assignment with an empty status, under the member's lease (if it has one).
    Add {
        /// The new assignment's key.
        key: AssignmentKey,
        /// The member's lease, which the assignment shares so that it ends with the member.
        lease: Option<LeaseId>,
    },
    /// Move an assignment to another slot, keeping its status and lease.
    Reslot {
        /// The assignment as it is.
        from: &'a Entry<AssignmentKey, A>,
        /// Its new key (same item and member, another slot).
        to: AssignmentKey,
    },
    /// Ask the owner of an exclusive item to let go of it.
    RequestRelease(&'a Entry<AssignmentKey, A>),
    /// Delete an assignment.
    Remove(&'a Entry<AssignmentKey, A>),
}

impl<A> Change<'_, A> {
    /// How many store operations the change takes.
    pub fn ops(&self) -> usize {
        match self {
            Change::Reslot { .. } => 2,
            _ => 1,
        }
    }
}

/// The changes planned for one item, applied together.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemChanges<'a, I, A> {
    /// The item.
    pub item: &'a ItemId,
    /// Its entry, unless the item is gone (only dangling assignments are then removed).
    pub entry: Option<&'a Entry<ItemId, I>>,
    /// The changes, in the order they should be written.
    pub changes: Vec<Change<'a, A>>,
    /// The consistent copies that make removing a consistent one safe: they stay. The
    /// changes must be written only while these still exist, since a lease may end
    /// between the read and the write (a deletion that no guard on the other keys sees).
    pub relies_on: Vec<&'a Entry<AssignmentKey, A>>,
}

/// The assignment the planner works toward: for each item index, the wanted member indices,
/// the wanted primary first. Stored flat (two vectors for any number of items), like the
/// solver's solution it is made from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    first: Vec<u32>,
    members: Vec<u32>,
}

impl Desired {
    /// Builds it from one list of member indices per item, in item order.
    pub fn from_lists<L: IntoIterator<Item = u32>>(lists: impl IntoIterator<Item = L>) -> Self {
        let mut desired = Desired {
            first: vec![0],
            members: Vec::new(),
        };
        for list in lists {
            desired.members.extend(list);
            desired.first.push(desired.members.len() as u32);
        }
        desired
    }

    /// The wanted members of item `x`, primary first (none for an unknown item).
    pub fn wanted(&self, x: usize) -> &[u32] {
        match (self.first.get(x), self.first.get(x + 1)) {
            (Some(&start), Some(&end)) => &self.members[start as usize..end as usize],
            _ => &[],
        }
    }
}

/// Plans the next safe changes toward `desired`. Items with nothing to do are left out.
pub fn plan<'a, I, M, A>(
    state: &'a State<I, M, A>,
    desired: &Desired,
    consistency: &(impl Consistency<I, A> + ?Sized),
) -> Vec<ItemChanges<'a, I, A>>
where
    I: ItemValue,
    M: MemberValue,
    A: AssignmentValue,
{
    let mut dangling: BTreeMap<&ItemId, Vec<&Entry<AssignmentKey, A>>> = BTreeMap::new();
    for entry in state.dangling() {
        dangling.entry(&entry.key.item).or_default().push(entry);
    }
    let mut plans = Vec::new();
    for (x, item) in state.items().iter().enumerate() {
        let wanted = desired.wanted(x);
        let orphans = dangling.remove(&item.key).unwrap_or_default();
        let (changes, relies_on) = if item.value.is_exclusive() {
            (plan_exclusive(state, x, wanted, &orphans), Vec::new())
        } else {
            let mut changes: Vec<_> = orphans
                .into_iter()
                .filter(|e| e.meta.lease.is_none())
                .map(Change::Remove)
                .collect();
            let (replicated, relies_on) = plan_replicated(state, x, wanted, consistency);
            changes.extend(replicated);
            (changes, relies_on)
        };
        if !changes.is_empty() {
            plans.push(ItemChanges {
                item: &item.key,
                entry: Some(item),
                changes,
                relies_on,
            });
        }
    }
    // What is left belongs to items that are gone: nothing can be served from it any more.
    plans.extend(dangling.into_iter().map(|(item, entries)| ItemChanges {
        item,
        entry: None,
        changes: entries.into_iter().map(Change::Remove).collect(),
        relies_on: Vec::new(),
    }));
    plans
}

/// A live assignment of the item being planned, with what the planner needs to know of it.
struct Copy<'a, A> {
    entry: &'a Entry<AssignmentKey, A>,
    member: u32,
    consistent: bool,
}

impl<A> Copy<'_, A> {
    fn slot(&self) -> u16 {
        self.entry.key.slot.0
    }
}

fn copies<'a, I, M, A>(
    state: &'a State<I, M, A>,
    x: usize,
    consistency: &(impl Consistency<I, A> + ?Sized),
) -> Vec<Copy<'a, A>> {
    let range = state.item_assignment_range(x);
    let all = &state.assignments()[range.clone()];
    let item = &state.items()[x];
    range
        .zip(all)
        .map(|(index, entry)| Copy {
            entry,
            member: state.assignment_member(index).unwrap_or(u32::MAX as usize) as u32,
            consistent: consistency.is_consistent(item, entry, all),
        })
        .collect()
}

fn add<'a, I, M: MemberValue, A>(
    state: &State<I, M, A>,
    item: &ItemId,
    member: u32,
    slot: u16,
) -> Change<'a, A> {
    let entry = &state.members()[member as usize];
    Change::Add {
        key: AssignmentKey {
            item: item.clone(),
            member: entry.key.clone(),
            slot: Slot(slot),
        },
        lease: entry.meta.lease,
    }
}

fn plan_replicated<'a, I, M, A>(
    state: &'a State<I, M, A>,
    x: usize,
    wanted: &[u32],
    consistency: &(impl Consistency<I, A> + ?Sized),
) -> (Vec<Change<'a, A>>, Vec<&'a Entry<AssignmentKey, A>>)
where
    I: ItemValue,
    M: MemberValue,
{
    let item = &state.items()[x].key;
    let mut changes = Vec::new();
    let mut stay: Vec<Copy<'a, A>> = Vec::new();
    let mut leave: Vec<Copy<'a, A>> = Vec::new();
    for copy in copies(state, x, consistency) {
        if stay.iter().chain(&leave).any(|c| c.member == copy.member) {
            // A second copy on one member adds nothing; entries are in slot order, so the
            // first one seen keeps the lower slot.
            changes.push(Change::Remove(copy.entry));
        } else if wanted.contains(&copy.member) {
            stay.push(copy);
        } else {
            leave.push(copy);
        }
    }
    // Drop what is not wanted, as far as consistency allows: the copies that serve nothing
    // first, then replicas before the primary.
    let mut consistent = stay.iter().chain(&leave).filter(|c| c.consistent).count();
    let keep_at_least = wanted
        .len()
        .max(usize::from(state.items()[x].value.replication() > 0));
    leave.sort_by_key(|c| (c.consistent, c.slot() == 0, std::cmp::Reverse(c.slot())));
    let mut drops_consistent = false;
    for copy in leave {
        if !copy.consistent || consistent > keep_at_least {
            consistent -= usize::from(copy.consistent);
            drops_consistent |= copy.consistent;
            changes.push(Change::Remove(copy.entry));
        } else {
            stay.push(copy);
        }
    }
    let relies_on = if drops_consistent {
        stay.iter()
            .filter(|c| c.consistent)
            .map(|c| c.entry)
            .collect()
    } else {
        Vec::new()
    };
    let adds: Vec<u32> = wanted
        .iter()
        .copied()
        .filter(|m| !stay.iter().any(|c| c.member == *m))
        .collect();
    let primary = choose_primary(&stay, wanted);
    // Lay out the slots: the primary at 0, every other copy keeps its slot when it is in
    // range and free, and the rest fill the gaps in order.
    let n = stay.len() + adds.len();
    let mut taken = vec![false; n];
    let mut slot_of: Vec<Option<u16>> = vec![None; stay.len()];
    if let Some(p) = primary {
        slot_of[p] = Some(0);
        taken[0] = true;
    }
    let mut order: Vec<usize> = (0..stay.len()).collect();
    order.sort_by_key(|&i| stay[i].slot());
    for &i in &order {
        let slot = usize::from(stay[i].slot());
        if slot_of[i].is_none() && slot >= 1 && slot < n && !taken[slot] {
            slot_of[i] = Some(slot as u16);
            taken[slot] = true;
        }
    }
    let mut free = (0..n).filter(|&s| !taken[s]).map(|s| s as u16);
    for &i in &order {
        if slot_of[i].is_none() {
            slot_of[i] = free.next();
        }
    }
    for (copy, slot) in stay.iter().zip(slot_of) {
        let slot = slot.expect("n slots for n copies");
        if slot != copy.slot() {
            let mut to = copy.entry.key.clone();
            to.slot = Slot(slot);
            changes.push(Change::Reslot {
                from: copy.entry,
                to,
            });
        }
    }
    for (member, slot) in adds.into_iter().zip(free) {
        changes.push(add(state, item, member, slot));
    }
    (changes, relies_on)
}

/// Which remaining copy should hold slot 0, if any: the current primary, unless the wanted
/// primary is consistent and elsewhere; with slot 0 empty, a consistent copy (the wanted one
/// first), else any copy. `None` leaves slot 0 to the first new replica.
fn choose_primary<A>(stay: &[Copy<'_, A>], wanted: &[u32]) -> Option<usize> {
    let find = |pred: &dyn Fn(&Copy<'_, A>) -> bool| stay.iter().position(pred);
    let wanted_primary = wanted.first().copied();
    let consistent_wanted = find(&|c| Some(c.member) == wanted_primary && c.consistent);
    match find(&|c| c.slot() == 0) {
        Some(current) => Some(consistent_wanted.unwrap_or(current)),
        None => consistent_wanted
            .or_else(|| find(&|c| c.consistent && wanted.contains(&c.member)))
            .or_else(|| find(&|c| c.consistent))
            .or_else(|| find(&|c| Some(c.member) == wanted_primary))
            .or_else(|| (!stay.is_empty()).then_some(0)),
    }
}

fn plan_exclusive<'a, I, M, A>(
    state: &'a State<I, M, A>,
    x: usize,
    wanted: &[u32],
    orphans: &[&'a Entry<AssignmentKey, A>],
) -> Vec<Change<'a, A>>
where
    M: MemberValue,
    A: AssignmentValue,
{
    let item = &state.items()[x].key;
    let owner = wanted.first().copied();
    let range = state.item_assignment_range(x);
    let owners: Vec<(Option<u32>, &'a Entry<AssignmentKey, A>)> = range
        .clone()
        .map(|i| {
            (
                state.assignment_member(i).map(|m| m as u32),
                &state.assignments()[i],
            )
        })
        .chain(orphans.iter().map(|e| (None, *e)))
        .collect();
    if owners.is_empty() {
        return owner.map(|m| add(state, item, m, 0)).into_iter().collect();
    }
    let mut changes = Vec::new();
    let mut kept = false;
    for (member, entry) in owners {
        let keep = !kept && member.is_some() && member == owner;
        if keep {
            kept = true;
            if !entry.key.slot.is_primary() {
                let mut to = entry.key.clone();
                to.slot = Slot::PRIMARY;
                changes.push(Change::Reslot { from: entry, to });
            }
        } else if !entry.value.is_releasing() {
            changes.push(Change::RequestRelease(entry));
        }
    }
    changes
}
