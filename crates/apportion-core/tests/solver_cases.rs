//! Captured instances the solver once got wrong (issue 12), solved through the JSON form
//! as `apportion plan` reads it and checked against the exact references.

use apportion_core::solver::check::check;
use apportion_core::solver::input::PlanInput;
use apportion_core::solver::{solve_within, Problem, Solution};

/// Far above what these instances need (a few thousand steps); they once never returned.
const BUDGET: u64 = 1_000_000;

fn solved(text: &str) -> (PlanInput, Problem, Solution) {
    let input = PlanInput::parse(text).unwrap();
    let p = input.to_problem().unwrap();
    let sol = solve_within(&p, BUDGET).unwrap();
    check(&p, &sol).unwrap();
    (input, p, sol)
}

#[test]
fn the_first_instance_that_hung_is_solved() {
    let (_, _, sol) = solved(include_str!("cases/plan-hangs-1.json"));
    assert!(sol.steps < 100_000, "{} steps", sol.steps);
}

#[test]
fn the_second_instance_that_hung_is_solved() {
    let (_, _, sol) = solved(include_str!("cases/plan-hangs-2.json"));
    assert!(sol.steps < 100_000, "{} steps", sol.steps);
}

#[test]
fn tight_capacity_keeps_every_item_in_two_zones() {
    let (input, _, sol) = solved(include_str!("cases/plan-loses-spread.json"));
    assert_eq!(sol.unfilled_slots, 0);
    let plan = input.output(&sol, 0.0);
    for item in &input.items {
        let mut zones: Vec<&str> = plan
            .assignments
            .iter()
            .filter(|a| a.item == item.id)
            .map(|a| a.zone.as_str())
            .collect();
        zones.sort_unstable();
        zones.dedup();
        assert!(
            item.replication < 2 || zones.len() >= 2,
            "{} in {zones:?}",
            item.id
        );
    }
}
