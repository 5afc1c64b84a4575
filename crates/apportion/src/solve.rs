//! From a `State` to the solver's problem, and from its solution to the planner's `Desired`.
//!
//! On a multi-thread runtime the solve itself runs on tokio's blocking pool, never on an
//! async worker thread (it can take tens of milliseconds on a large cluster, and the lease
//! keep-alive and the member's events must not wait for it). A current-thread runtime is
//! one thread by choice, and the deterministic simulation runs on one with paused time,
//! where a task on another thread would let the clock jump: there it runs inline. Either
//! way it runs under a step budget derived from the instance's size
//! (`solver::default_budget`), so that a solver defect is an error the caller reports,
//! not a leader spinning forever.
//!
//! Members that are away (`apportion_core::away`) are the one place where the problem is
//! not the state as it is: held slots are left out of the items' replication, restarting
//! members take nothing and their kept copies are added back to the answer as replicas,
//! and a returning member's recorded items are offered to it as current copies.

use apportion_core::away::Holds;
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

/// Why a solve produced no plan; the caller then plans nothing rather than work toward an
/// empty assignment.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SolveFailure {
    /// The solver refused the problem (indices out of range, which a `State` cannot
    /// produce) or gave up over its step budget (a solver defect).
    #[error(transparent)]
    Problem(#[from] solver::ProblemError),
    /// The solver's thread panicked or was cancelled.
    #[error("the solver's thread failed: {0}")]
    Thread(String),
}

/// Solves `problem` under `budget` steps (by default its size's), on the blocking pool of
/// a multi-thread runtime (see the module docs). The copies `holds` keeps for restarting
/// members are added to the answer.
pub(crate) async fn solve(
    problem: Problem,
    budget: Option<u64>,
    holds: &Holds,
) -> Result<Solved, SolveFailure> {
    let budget = budget.unwrap_or_else(|| solver::default_budget(&problem));
    let flavor = tokio::runtime::Handle::current().runtime_flavor();
    let solution = if flavor == tokio::runtime::RuntimeFlavor::CurrentThread {
        solver::solve_within(&problem, budget)?
    } else {
        tokio::task::spawn_blocking(move || solver::solve_within(&problem, budget))
            .await
            .map_err(|e| SolveFailure::Thread(e.to_string()))??
    };
    Ok(Solved {
        desired: holds.desired(&solution),
        unfilled_slots: solution.unfilled_slots,
    })
}

/// The solver's problem for `state` under `holds` (see the module docs). Exclusive items
/// want one owner at most, whatever their replication.
pub(crate) fn problem<I: ItemValue, M: MemberValue, A>(
    state: &State<I, M, A>,
    consistency: &(impl Consistency<I, A> + ?Sized),
    holds: &Holds,
) -> Problem {
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
        .map(|i| Item {
            replication: u32::from(i.value.copies_wanted()),
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
    let mut problem = Problem {
        members,
        items,
        current,
        pinned: Vec::new(),
    };
    holds.apply(&mut problem);
    problem
}

#[cfg(test)]
mod tests {
    use super::*;
    use apportion_core::solver::Current;

    fn cluster() -> Problem {
        Problem {
            members: (0..3)
                .map(|zone| Member {
                    zone,
                    item_limit: 4,
                    exiting: false,
                })
                .collect(),
            items: vec![Item { replication: 3 }; 4],
            current: Vec::new(),
            pinned: Vec::new(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn solves_on_the_blocking_pool() {
        let solved = solve(cluster(), None, &Holds::default()).await.unwrap();
        assert_eq!(solved.unfilled_slots, 0);
    }

    #[tokio::test]
    async fn solves_inline_on_a_current_thread_runtime() {
        let solved = solve(cluster(), None, &Holds::default()).await.unwrap();
        assert_eq!(solved.unfilled_slots, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_refused_problem_is_an_error_not_a_panic() {
        let mut p = cluster();
        p.current.push(Current {
            item: 9,
            member: 0,
            slot: 0,
            consistent: true,
        });
        let err = solve(p, None, &Holds::default())
            .await
            .err()
            .expect("item 9 does not exist");
        assert!(matches!(
            err,
            SolveFailure::Problem(solver::ProblemError::UnknownItem { item: 9, .. })
        ));
    }
}
