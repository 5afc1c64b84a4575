//! Property tests of the solver on random instances (`solver::soak`: up to 5 zones, 16
//! members, 50 items, random current assignments, then changes applied to the solver's own
//! answers), every solve checked against the exact references of `solver::check` and run
//! under a step budget, so that a cycle fails the test instead of hanging it.
//!
//! `SOLVER_PROPS_CASES` sets how many instances each test draws (default 1000); a failure
//! names its seed, which `apportion bench plan-soak --instances 1 --seed S` replays.

use apportion_core::solver::check::{check, settles};
use apportion_core::solver::scenario::settle;
use apportion_core::solver::soak::Soak;
use apportion_core::solver::{solve_within, Problem, Solution};
use proptest::prelude::*;

/// Far above what any of these instances needs (a few thousand steps), far below a hang.
const BUDGET: u64 = 5_000_000;

fn cases() -> u32 {
    std::env::var("SOLVER_PROPS_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// Solves `p` under the budget and checks the answer on every objective.
fn solved(p: &Problem) -> Result<Solution, TestCaseError> {
    let sol = solve_within(p, BUDGET).map_err(|e| TestCaseError::fail(e.to_string()))?;
    if let Err(f) = check(p, &sol) {
        return Err(TestCaseError::fail(format!("{:?}: {}", f.kind, f.detail)));
    }
    prop_assert_eq!(&solve_within(p, BUDGET).unwrap(), &sol, "not deterministic");
    Ok(sol)
}

/// Solves every problem of the instance named by `seed`, `scratch` without its current
/// assignments at first.
fn run(seed: u64, scratch: bool) -> Result<(), TestCaseError> {
    let mut soak = Soak::new(seed);
    if scratch {
        soak.clear_current();
    }
    loop {
        let p = soak.problem().clone();
        let sol = solved(&p)?;
        if settles(&p, &sol) {
            let mut again = p.clone();
            settle(&mut again, &sol);
            let next =
                solve_within(&again, BUDGET).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(
                next.added + next.removed.len() as u64,
                0,
                "settled solution moved"
            );
        }
        if !soak.advance(&sol) {
            return Ok(());
        }
    }
}

proptest! {
    // No failure file next to the sources: a failure prints its seed instead.
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn soak_instances_are_maximal_spread_minimal_and_balanced(seed in any::<u64>()) {
        run(seed, false)?;
    }

    #[test]
    fn soak_instances_from_scratch_also_win_back_spread(seed in any::<u64>()) {
        run(seed, true)?;
    }
}
