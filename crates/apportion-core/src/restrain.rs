//! What the cluster settings let through of a round's plan: the planner says what is safe
//! to change now, and [`restrain`] keeps what the operators allow now (see
//! [`settings`](crate::settings)).
//!
//! Item plans are kept or held back whole: the changes of one item depend on each other
//! (slots are laid out together, a removal relies on the copies that stay), so a part of
//! one could leave the item in a shape the planner never chose. Holding a plan back is
//! always safe: the item stays as it is, and the next round plans it again.
//!
//! - **Repairs go through.** An item with fewer consistent copies than `min_ready` (capped
//!   at what it wants), or with copies but no primary, is served badly or not at all: its
//!   plan is written whatever else holds, first.
//! - **Frozen**, nothing else is written, except the removal of copies of items that are
//!   gone (they serve nothing).
//! - **Throttled** (`max_moves_in_flight`): a plan that adds copies is written only while
//!   the copies added so far and not yet consistent, plus its own, stay within the limit
//!   (a plan that adds more than the limit by itself goes alone, when nothing is in flight);
//!   plans that add nothing (a removal after a move completed, a primary moving to a copy
//!   that is ready) are not moves in flight and always go.

use crate::planner::{Change, Consistency, ItemChanges};
use crate::settings::ClusterSettings;
use crate::state::State;
use crate::values::{AssignmentValue, ItemValue, MemberValue};

/// Keeps the plans the settings allow at `now_unix_secs`, repairs first (see the module
/// documentation).
pub fn restrain<'a, I, M, A>(
    plans: Vec<ItemChanges<'a, I, A>>,
    state: &'a State<I, M, A>,
    settings: &ClusterSettings,
    now_unix_secs: u64,
    consistency: &(impl Consistency<I, A> + ?Sized),
) -> Vec<ItemChanges<'a, I, A>>
where
    I: ItemValue,
    M: MemberValue,
    A: AssignmentValue,
{
    let frozen = settings.frozen_at(now_unix_secs).is_some();
    if !frozen && settings.max_moves_in_flight.is_none() {
        return plans;
    }
    let (repairs, others): (Vec<_>, Vec<_>) = plans
        .into_iter()
        .partition(|plan| needs_repair(plan, state, settings, consistency));
    let mut kept = repairs;
    if frozen {
        kept.extend(others.into_iter().filter(|plan| plan.entry.is_none()));
        return kept;
    }
    let limit = settings.max_moves_in_flight.unwrap_or(u32::MAX) as usize;
    let mut in_flight = unready_copies(state, consistency) + adds(&kept);
    for plan in others {
        let adding = adds(std::slice::from_ref(&plan));
        // A plan adding more than the limit goes alone, once nothing else is in flight:
        // held back whole, it would never go.
        if adding == 0 || in_flight + adding <= limit || in_flight == 0 {
            in_flight += adding;
            kept.push(plan);
        }
    }
    kept
}

/// Whether an item is served too badly to wait: fewer consistent copies than it may drop
/// to, or copies without a primary. Copies of gone items are not repairs (they serve
/// nothing).
fn needs_repair<I, M, A>(
    plan: &ItemChanges<'_, I, A>,
    state: &State<I, M, A>,
    settings: &ClusterSettings,
    consistency: &(impl Consistency<I, A> + ?Sized),
) -> bool
where
    I: ItemValue,
    M: MemberValue,
    A: AssignmentValue,
{
    let Some(entry) = plan.entry else {
        return false;
    };
    let Some(x) = state.item_index(plan.item) else {
        return false;
    };
    let copies = state.item_assignments(x);
    let floor = settings.min_ready_of(&entry.value);
    let ready = copies
        .iter()
        .filter(|c| consistency.is_consistent(entry, c, copies))
        .count();
    let headless = !copies.is_empty() && !copies.iter().any(|c| c.key.slot.is_primary());
    ready < floor as usize || headless
}

/// Copies added and not yet consistent, across the cluster.
fn unready_copies<I, M, A>(
    state: &State<I, M, A>,
    consistency: &(impl Consistency<I, A> + ?Sized),
) -> usize
where
    I: ItemValue,
    M: MemberValue,
    A: AssignmentValue,
{
    (0..state.items().len())
        .map(|x| {
            let entry = &state.items()[x];
            let copies = state.item_assignments(x);
            copies
                .iter()
                .filter(|c| !consistency.is_consistent(entry, c, copies))
                .count()
        })
        .sum()
}

/// Copies the plans add.
fn adds<I, A>(plans: &[ItemChanges<'_, I, A>]) -> usize {
    plans
        .iter()
        .flat_map(|p| &p.changes)
        .filter(|c| matches!(c, Change::Add { .. }))
        .count()
}
