//! Members that are away for a while: a restart (planned) or a lost lease under a refill
//! delay (unplanned). Their replicas wait for them instead of being placed elsewhere.
//!
//! Assignments live under their holder's lease, so the copies of a member that is gone are
//! gone too. What survives is an **away record** at `P/away/ZONE#SUFFIX`: the items the
//! member held (its replicated ones; an exclusive item is never held back), under a lease
//! of its own whose TTL is the time the member may take to come back. A member leaving to
//! restart writes its own record just before it ends its session; the leader writes one for
//! a member whose lease expired when the cluster setting `refill_delay_secs` asks for it.
//! The record ends with its lease, and with it every effect below.
//!
//! What [`holds`] makes of the records and of members marked `restarting`:
//!
//! - **Held slots.** An item with copies on an away member (restarting, or absent with a
//!   record naming the item) runs that many replicas short instead of loading them
//!   elsewhere, up to the slots its present members leave free, and never all of them
//!   (a present copy is the primary).
//! - **Unless that is too few.** If the item has fewer consistent copies on present,
//!   non-restarting members than its `min_ready` (its own, else the cluster's, at most
//!   its replication), nothing is held: it is
//!   refilled as after a crash (a restarting member's copy then moves make-before-break,
//!   as in a drain).
//! - **Frozen items.** A held item is left out of the solve and stays exactly as it is
//!   (its primary handed to a present copy if a restarting member holds it), its copies
//!   pinned in their holders' loads: otherwise the slot it holds would free a zone and a
//!   share of load that the balance would fill by moving the item's other copies. Only an
//!   item that misses nothing but its away copies, none of them on a draining member, is
//!   held: one that also lost a copy for another reason (a crash meanwhile) is refilled
//!   whole, and the planner never has a copy that is about to go to count on.
//! - **Kept copies.** The copies a restarting member still holds of held items stay in the
//!   desired assignment, never as the primary: the member hands its primaries over and
//!   keeps its replicas. It is leaving once [`ready_to_leave`] says so.
//! - **Return.** A member back with a record of its own is offered the recorded items it
//!   does not hold as if it held them (current, not consistent), in the slots the item
//!   has free: the solver keeps such a pair like any current one, so the member gets the
//!   same items back rather than new ones. It deletes its record once nothing more is
//!   offered ([`pending_return`]).
//!
//! Why this is safe: a record never makes anyone serve anything. Serving still needs an
//! assignment key under the holder's live lease, created by the leader through its guarded
//! transactions; the record only changes what the solver prefers and what it may leave
//! short. A record that outlives its purpose (a member that never returns) ends with its
//! lease, and the items are then refilled; `min_ready` bounds how short an item may run in
//! the meantime. Exclusive items are never held: an owner that restarts releases them
//! break-before-make like a drain, and one that crashed lost them with its lease.
//!
//! Why a record rather than keeping the member's keys alive under a longer lease: keys kept
//! alive would have to be re-attached to the returning process's lease one transaction at
//! a time, and a copy outliving its holder's fence could still be taken for a served one.
//! The record keeps the store's rule intact (a copy exists only while its holder lives) and
//! works the same for a member that could not say goodbye (an expired lease).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::keys::{ItemId, KeyError, MemberId};
use crate::planner::{Consistency, Desired};
use crate::solver::{Current, Problem, Solution};
use crate::state::State;
use crate::values::{ItemValue, MemberValue};

/// Why a member is away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AwayReason {
    /// It left to come back (`Member::leave_for_restart`).
    Restart,
    /// Its lease expired, and the cluster's `refill_delay_secs` gives it time to return.
    Lost,
}

impl std::fmt::Display for AwayReason {
    /// One word for the lines people read (`status`, `events`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AwayReason::Restart => "restarting",
            AwayReason::Lost => "lost",
        })
    }
}

/// The value at `P/away/ZONE#SUFFIX`: what a member that is away held, and until when it
/// may come back (the record's lease ends it then; the time is for people).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwayRecord {
    /// Why the member is away.
    pub reason: AwayReason,
    /// When the record's lease ends, in seconds since the Unix epoch.
    pub until_unix_secs: u64,
    /// The replicated items the member held when it went away.
    pub items: Vec<ItemId>,
}

/// The stored form: item ids as plain text, checked on decode.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    reason: AwayReason,
    until_unix_secs: u64,
    items: Vec<String>,
}

/// Why an away record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwayError {
    /// The value is not an away record's JSON.
    #[error("not a valid away record: {0}")]
    Json(String),
    /// An item in it is not a valid item id.
    #[error("away record names an invalid item: {0}")]
    Item(#[from] KeyError),
}

impl AwayRecord {
    /// Parses and validates a stored record.
    pub fn decode(bytes: &[u8]) -> Result<Self, AwayError> {
        let stored: Stored =
            serde_json::from_slice(bytes).map_err(|e| AwayError::Json(e.to_string()))?;
        let items = stored
            .items
            .iter()
            .map(|id| ItemId::new(id))
            .collect::<Result<_, _>>()?;
        Ok(AwayRecord {
            reason: stored.reason,
            until_unix_secs: stored.until_unix_secs,
            items,
        })
    }

    /// The value to store.
    pub fn encode(&self) -> Vec<u8> {
        let stored = Stored {
            reason: self.reason,
            until_unix_secs: self.until_unix_secs,
            items: self.items.iter().map(|i| i.as_str().to_owned()).collect(),
        };
        serde_json::to_vec(&stored).expect("away records serialize")
    }
}

/// What the solver makes of away members this round (see the module documentation).
/// Indices are those of the [`State`] it was computed from, which are those of the
/// solver's [`Problem`] built from it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Holds {
    /// Per item index with a held slot: how many.
    pub held: BTreeMap<u32, u32>,
    /// The items with a held slot, left out of the solve and left as they are: per item
    /// index, its members in the desired order (the primary first, kept copies last).
    pub frozen: BTreeMap<u32, Vec<u32>>,
    /// Members that are restarting: they take nothing new.
    pub restarting: Vec<u32>,
    /// Copies of restarting members that stay: (item index, member index), sorted.
    pub kept: Vec<(u32, u32)>,
    /// Recorded items offered to the member that returned: (item index, member index),
    /// sorted.
    pub returning: Vec<(u32, u32)>,
}

impl Holds {
    /// How many of item `x`'s slots are held for away members (frozen or not).
    pub fn held(&self, x: usize) -> u32 {
        self.held.get(&(x as u32)).copied().unwrap_or(0)
    }

    /// The number of items with a held slot.
    pub fn held_items(&self) -> usize {
        self.held.len()
    }

    /// Turns the problem of the state as it is into the one the solver must solve:
    /// restarting members take nothing new; frozen items leave the problem (replication 0,
    /// no current copy; [`Holds::desired`] puts them back as they are), their copies leave
    /// their holders' limits and are pinned there ([`Problem::pinned`]: they still count
    /// in the loads the balance evens out, so that nothing else moves to make up for
    /// them); offered copies join the current assignment as current, not consistent ones.
    pub fn apply(&self, problem: &mut Problem) {
        for &m in &self.restarting {
            problem.members[m as usize].exiting = true;
        }
        for (&x, members) in &self.frozen {
            problem.items[x as usize].replication = 0;
            for &m in members {
                let member = &mut problem.members[m as usize];
                if member.exiting {
                    continue; // a restarting member's kept copy: it takes nothing anyway
                }
                // Its room for the solved copies shrinks, and the copy counts in its load.
                member.item_limit = member.item_limit.saturating_sub(1);
                if problem.pinned.len() <= m as usize {
                    problem.pinned.resize(m as usize + 1, 0);
                }
                problem.pinned[m as usize] += 1;
            }
        }
        // Kept copies are copies of frozen items: they go with them.
        if !self.frozen.is_empty() {
            problem
                .current
                .retain(|c| !self.frozen.contains_key(&c.item));
        }
        problem
            .current
            .extend(self.returning.iter().map(|&(item, member)| Current {
                item,
                member,
                slot: OFFERED_SLOT,
                consistent: false,
            }));
    }

    /// The assignment to work toward: a frozen item's members as they are (kept copies
    /// last, so never as the primary), every other item's as solved.
    pub fn desired(&self, solution: &Solution) -> Desired {
        Desired::from_lists((0..solution.items() as u32).map(|x| {
            let frozen = self.frozen.get(&x);
            let solved = match frozen {
                Some(_) => &[][..],
                None => solution.replicas_of(x),
            };
            let as_is = frozen.into_iter().flatten().copied();
            as_is.chain(solved.iter().map(|r| r.member))
        }))
    }
}

/// The slot given to a returning member's offered copy: never the primary's, and after
/// every real slot, so the solver drops it first where something must give.
const OFFERED_SLOT: u32 = u16::MAX as u32;

/// Computes the holds of `state` (see the module documentation). The cost is in the items
/// of away members, plus one pass over the assignments while a member is restarting.
pub fn holds<I, M, A>(
    state: &State<I, M, A>,
    consistency: &(impl Consistency<I, A> + ?Sized),
) -> Holds
where
    I: ItemValue,
    M: MemberValue,
{
    let members = state.members();
    // A member both draining and restarting drains: an operator's drain wins.
    let restarting: Vec<bool> = members
        .iter()
        .map(|m| m.value.is_restarting() && !m.value.is_exiting())
        .collect();
    let mut holds = Holds {
        restarting: (0..members.len() as u32)
            .filter(|&m| restarting[m as usize])
            .collect(),
        ..Holds::default()
    };
    let mut absent: BTreeMap<u32, u32> = BTreeMap::new();
    let mut offered: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for record in state.away_records() {
        let member = state.member_index(&record.key);
        if member.is_some_and(|m| restarting[m]) {
            // Its live copies speak for it until it is gone.
            continue;
        }
        for id in &record.value.items {
            let Some(x) = state.item_index(id) else {
                continue;
            };
            match member {
                None => *absent.entry(x as u32).or_default() += 1,
                Some(m) => offered.entry(x as u32).or_default().push(m as u32),
            }
        }
    }
    let mut touched: BTreeSet<u32> = absent.keys().chain(offered.keys()).copied().collect();
    if restarting.iter().any(|&r| r) {
        for x in 0..state.items().len() {
            let range = state.item_assignment_range(x);
            if range
                .clone()
                .any(|a| state.assignment_member(a).is_some_and(|m| restarting[m]))
            {
                touched.insert(x as u32);
            }
        }
    }
    if touched.is_empty() {
        return holds; // nobody away: what nearly every round of the leader finds
    }
    // Primaries per member, counting the ones frozen items hand over as they are chosen.
    let mut primaries: Vec<u32> = (0..members.len())
        .map(|m| state.member_primary_count(m))
        .collect();
    for x in touched {
        let item = &state.items()[x as usize];
        let wanted = u32::from(item.value.copies_wanted());
        if item.value.is_exclusive() || wanted == 0 {
            continue;
        }
        let range = state.item_assignment_range(x as usize);
        let all = state.item_assignments(x as usize);
        let mut present: Vec<u32> = Vec::new();
        let mut leaving: Vec<u32> = Vec::new();
        let mut consistent: Vec<u32> = Vec::new();
        let mut primary = None;
        let mut ready = 0u32;
        for (a, copy) in range.zip(all) {
            let Some(m) = state.assignment_member(a) else {
                continue;
            };
            let list = if restarting[m] {
                &mut leaving
            } else {
                if consistency.is_consistent(item, copy, all) {
                    ready += 1;
                    consistent.push(m as u32);
                }
                if copy.key.slot.is_primary() {
                    primary = Some(m as u32);
                }
                &mut present
            };
            if !list.contains(&(m as u32)) {
                list.push(m as u32);
            }
        }
        let draining = present
            .iter()
            .any(|&m| members[m as usize].value.is_exiting());
        let copies = Copies {
            wanted,
            floor: state.settings().min_ready_of(&item.value),
            present: &present,
            ready,
            leaving: &leaving,
            absent: absent.get(&x).copied().unwrap_or(0),
            offered: offered.get(&x).map_or(&[], Vec::as_slice),
            draining,
            primary,
            consistent: &consistent,
        };
        holds.weigh(x, &copies, &mut primaries);
    }
    holds.kept.sort_unstable();
    holds.returning.sort_unstable();
    holds
}

/// One item's copies as the holds weigh them ([`Holds::weigh`]), whatever they were read
/// from: a [`State`] by [`holds`], or a solver's [`Problem`] by [`Holds::for_restart`] and
/// [`Holds::for_return`].
struct Copies<'a> {
    /// The copies the item wants.
    wanted: u32,
    /// The fewest ready copies it may be left with (`ClusterSettings::min_ready_of`).
    floor: u32,
    /// The distinct members holding a copy that are there and not restarting.
    present: &'a [u32],
    /// How many of those members' copies are consistent.
    ready: u32,
    /// The distinct restarting members holding a copy.
    leaving: &'a [u32],
    /// How many members gone have a record naming the item.
    absent: u32,
    /// The members back with a record naming the item.
    offered: &'a [u32],
    /// Whether a present member holding a copy is draining (then nothing is held).
    draining: bool,
    /// The present member in slot 0, if any: it leads the item if the item is held.
    primary: Option<u32>,
    /// The present members whose copies are consistent: else one of them leads it.
    consistent: &'a [u32],
}

impl Holds {
    /// Adds what item `x`'s copies make of away members (see the module documentation):
    /// held and frozen as it is, with its kept copies, if it misses nothing but its away
    /// copies, keeps its floor of ready copies and has no copy on a draining member; then
    /// the members back that are offered a copy, in the slots left free. The one place
    /// this rule lives, so that the benchmark's restart is the allocator's.
    ///
    /// A frozen item whose primary was on an away member hands it to the consistent
    /// present copy whose member has the fewest `primaries` (counted as they are handed),
    /// so that the hand-over leaves the primaries as balanced as they were and the solver
    /// moves no other item's primary to make up for it.
    fn weigh(&mut self, x: u32, copies: &Copies, primaries: &mut [u32]) {
        let vacancy = copies.wanted.saturating_sub(copies.present.len() as u32);
        let away = copies.leaving.len() as u32 + copies.absent;
        // Never every slot: a present copy is the primary (a kept copy never is), even
        // where min_ready 0 would let the item run empty.
        let held = away.min(vacancy).min(copies.wanted.saturating_sub(1));
        let holds = away > 0
            && copies.ready >= copies.floor
            && held > 0
            && held == vacancy
            && !copies.draining;
        let held = if holds { held } else { 0 };
        if holds {
            let kept = &copies.leaving[..held.min(copies.leaving.len() as u32) as usize];
            self.kept.extend(kept.iter().map(|&m| (x, m)));
            self.held.insert(x, held);
            let mut members = copies.present.to_vec();
            let handed = || {
                let least = copies
                    .consistent
                    .iter()
                    .copied()
                    .min_by_key(|&m| (primaries[m as usize], m));
                least.or_else(|| copies.present.first().copied())
            };
            if let Some(first) = copies.primary.or_else(handed) {
                if copies.primary.is_none() {
                    primaries[first as usize] += 1;
                }
                members.retain(|&m| m != first);
                members.insert(0, first);
            }
            members.extend_from_slice(kept);
            self.frozen.insert(x, members);
        }
        let open = (vacancy - held) as usize;
        self.returning.extend(
            copies
                .offered
                .iter()
                .filter(|m| !copies.present.contains(m))
                .take(open)
                .map(|&m| (x, m)),
        );
    }

    /// The holds while `member` of `problem` restarts and no other member is away: what
    /// [`holds`] computes for such a state, read from the solver's problem instead, so
    /// that the solver's benchmark and scenario tests measure a restart without a cluster.
    /// The copies' consistency is the problem's; every item counts as replicated (a
    /// problem does not say which items are exclusive, and those are never held).
    pub fn for_restart(problem: &Problem, member: u32, min_ready: u32) -> Holds {
        Holds::of_problem(problem, member, Turn::Restarting, min_ready)
    }

    /// The holds once `member` of `problem` is back from a restart with a record of the
    /// items `recorded` (item indices) and no other member is away: each recorded item it
    /// does not hold is offered to it where the item has a slot free, as [`holds`] offers
    /// them in such a state. Read from the problem, as [`Holds::for_restart`] is.
    pub fn for_return(problem: &Problem, member: u32, recorded: &[u32], min_ready: u32) -> Holds {
        Holds::of_problem(problem, member, Turn::Back { recorded }, min_ready)
    }

    /// The holds of `problem` whose only away member is `member`, at `turn`.
    fn of_problem(problem: &Problem, member: u32, turn: Turn, min_ready: u32) -> Holds {
        /// One touched item's copies: present members, their consistent copies, leaving,
        /// the present members with a consistent copy, and the present one in slot 0.
        type Seen = (Vec<u32>, u32, Vec<u32>, Vec<u32>, Option<u32>);
        let restarting = matches!(turn, Turn::Restarting);
        let touched: BTreeSet<u32> = match turn {
            Turn::Restarting => problem
                .current
                .iter()
                .filter(|c| c.member == member)
                .map(|c| c.item)
                .collect(),
            Turn::Back { recorded } => recorded.iter().copied().collect(),
        };
        let mut seen: BTreeMap<u32, Seen> =
            touched.into_iter().map(|x| (x, Seen::default())).collect();
        for c in &problem.current {
            let Some((present, ready, leaving, consistent, primary)) = seen.get_mut(&c.item) else {
                continue;
            };
            let list = if restarting && c.member == member {
                leaving
            } else {
                *ready += u32::from(c.consistent);
                if c.consistent {
                    consistent.push(c.member);
                }
                if c.slot == 0 {
                    *primary = Some(c.member);
                }
                present
            };
            if !list.contains(&c.member) {
                list.push(c.member);
            }
        }
        let mut holds = Holds {
            restarting: if restarting { vec![member] } else { Vec::new() },
            ..Holds::default()
        };
        let offered: &[u32] = if restarting {
            &[]
        } else {
            std::slice::from_ref(&member)
        };
        let mut primaries = vec![0u32; problem.members.len()];
        for c in problem.current.iter().filter(|c| c.slot == 0) {
            primaries[c.member as usize] += 1;
        }
        for (x, (present, ready, leaving, consistent, primary)) in seen {
            let wanted = problem.items[x as usize].replication;
            if wanted == 0 {
                continue;
            }
            let draining = present.iter().any(|&m| problem.members[m as usize].exiting);
            let copies = Copies {
                wanted,
                floor: min_ready.min(wanted),
                present: &present,
                ready,
                leaving: &leaving,
                absent: 0,
                offered,
                draining,
                primary,
                consistent: &consistent,
            };
            holds.weigh(x, &copies, &mut primaries);
        }
        // Item by item, one member each: sorted already.
        holds
    }
}

/// Where the one away member of a problem is in its restart.
#[derive(Clone, Copy)]
enum Turn<'a> {
    /// Restarting: it still holds its copies and takes nothing new.
    Restarting,
    /// Back, with a record of these items.
    Back {
        /// The item indices its record names.
        recorded: &'a [u32],
    },
}

/// Whether the local member, restarting, may leave now: it holds no primary and no
/// exclusive item, and every copy it holds is one the solver keeps for it (so none of its
/// items drops below `min_ready` when it goes). `false` if it is not restarting.
pub fn ready_to_leave<I, M, A>(
    state: &State<I, M, A>,
    consistency: &(impl Consistency<I, A> + ?Sized),
) -> bool
where
    I: ItemValue,
    M: MemberValue,
{
    let Some(local) = state.local_member() else {
        return false;
    };
    if !state.members()[local].value.is_restarting() {
        return false;
    }
    let holds = holds(state, consistency);
    state.local_assignments().all(|copy| {
        let x = state
            .item_index(&copy.item.key)
            .expect("a local copy's item exists") as u32;
        !copy.assignment.key.slot.is_primary()
            && !copy.item.value.is_exclusive()
            && holds.kept.binary_search(&(x, local as u32)).is_ok()
    })
}

/// For the local member back from being away: how many of the items its record names are
/// still offered to it (`None` when it has no record, or is restarting again). At 0 the
/// record has done its work and the member deletes it, so that a later crash is not taken
/// for this absence.
pub fn pending_return<I, M, A>(
    state: &State<I, M, A>,
    consistency: &(impl Consistency<I, A> + ?Sized),
) -> Option<usize>
where
    I: ItemValue,
    M: MemberValue,
{
    let local = state.local_member()?;
    let member = &state.members()[local];
    if member.value.is_restarting() {
        return None;
    }
    state.away_record(&member.key)?;
    let holds = holds(state, consistency);
    Some(
        holds
            .returning
            .iter()
            .filter(|&&(_, m)| m as usize == local)
            .count(),
    )
}

/// The members of `before` that are gone from `after` without leaving on purpose (not
/// draining) and without an away record, each with the replicated items it held that
/// still exist: what the leader records when the cluster has a refill delay.
pub fn lost_members<I, M, A>(
    before: &State<I, M, A>,
    after: &State<I, M, A>,
) -> Vec<(MemberId, Vec<ItemId>)>
where
    I: ItemValue,
    M: MemberValue,
{
    let gone: Vec<usize> = before
        .members()
        .iter()
        .enumerate()
        .filter(|(_, m)| {
            !m.value.is_exiting()
                && after.member_index(&m.key).is_none()
                && after.away_record(&m.key).is_none()
        })
        .map(|(index, _)| index)
        .collect();
    gone.into_iter()
        .map(|m| {
            let mut items: Vec<ItemId> = before
                .assignments()
                .iter()
                .enumerate()
                .filter(|(a, _)| before.assignment_member(*a) == Some(m))
                .map(|(_, copy)| &copy.key.item)
                .filter(|id| {
                    after
                        .item_index(id)
                        .is_some_and(|x| !after.items()[x].value.is_exclusive())
                })
                .cloned()
                .collect();
            items.dedup();
            (before.members()[m].key.clone(), items)
        })
        .collect()
}
