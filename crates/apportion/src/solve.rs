//! From a `State` to the solver's problem, and from its solution to the planner's `Desired`.

use apportion_core::planner::{Consistency, Desired};
use apportion_core::solver::{self, Current, Item, Member, Problem};
use apportion_core::state::State;
use apportion_core::values::{ItemValue, MemberValue};

/// What one solve produced.
pub(crate) struct Solved {
    /// The assignment to work toward.
    pub desired: Desired,
    /// Replica slots that cannot be filled with the members there are.
    pub unfilled_slots: u64,
}

/// Solves for the desired assignment of `state`. Exclusive items want one owner at most,
/// whatever their replication. Fails only on indices out of range, which a `State` cannot
/// produce; the caller then plans nothing rather than work toward an empty assignment.
pub(crate) fn solve<I: ItemValue, M: MemberValue, A>(
    state: &State<I, M, A>,
    consistency: &(impl Consistency<I, A> + ?Sized),
) -> Result<Solved, solver::ProblemError> {
    let mut zones: Vec<&str> = Vec::new();
    let members = state
        .members()
        .iter()
        .map(|m| {
            // Members are sorted by zone, so each new zone is the last one seen or a new one.
            if zones.last() != Some(&m.key.zone()) {
                zones.push(m.key.zone());
            }
            Member {
                zone: zones.len() as u32 - 1,
                item_limit: m.value.item_limit(),
                exiting: m.value.is_exiting(),
            }
        })
        .collect();
    let items = state
        .items()
        .iter()
        .map(|i| {
            let replication = u32::from(i.value.replication());
            Item {
                replication: if i.value.is_exclusive() {
                    replication.min(1)
                } else {
                    replication
                },
            }
        })
        .collect();
    let mut current = Vec::with_capacity(state.assignments().len());
    for (x, item) in state.items().iter().enumerate() {
        let range = state.item_assignment_range(x);
        let all = &state.assignments()[range.clone()];
        for (a, entry) in range.zip(all) {
            if let Some(member) = state.assignment_member(a) {
                current.push(Current {
                    item: x as u32,
                    member: member as u32,
                    slot: u32::from(entry.key.slot.0),
                    consistent: consistency.is_consistent(item, entry, all),
                });
            }
        }
    }
    let problem = Problem {
        members,
        items,
        current,
    };
    let solution = solver::solve(&problem)?;
    Ok(Solved {
        desired: Desired::from_lists(
            (0..solution.items() as u32).map(|x| solution.replicas_of(x).iter().map(|r| r.member)),
        ),
        unfilled_slots: solution.unfilled_slots,
    })
}
