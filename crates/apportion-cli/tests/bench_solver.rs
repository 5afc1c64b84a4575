//! `apportion bench solver` run as a process on the smallest instance.

use std::process::Command;

#[test]
fn prints_one_json_line_per_scenario() {
    let out = Command::new(env!("CARGO_BIN_EXE_apportion"))
        .args([
            "bench",
            "solver",
            "--instance",
            "A",
            "--scenario",
            "item-add",
            "--runs",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1);
    let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(line["instance"], "A");
    assert_eq!(line["scenario"], "item-add");
    assert_eq!(line["items"], 10_001);
    assert_eq!(line["adds"], 3);
    assert_eq!(line["removes"], 0);
    assert_eq!(line["unfilled_slots"], 0);
    assert_eq!(line["min_zones_per_item"], 3);
    for field in [
        "solve_ms",
        "fair_share",
        "peak_rss_mb",
        "min_load",
        "max_load",
        "primary_moves",
    ] {
        assert!(line[field].is_number(), "{field} missing");
    }
}

#[test]
fn rejects_an_unknown_instance() {
    let out = Command::new(env!("CARGO_BIN_EXE_apportion"))
        .args(["bench", "solver", "--instance", "Z"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn plan_soak_checks_every_solve_and_names_seeds() {
    let out = Command::new(env!("CARGO_BIN_EXE_apportion"))
        .args(["bench", "plan-soak", "--instances", "300", "--seed", "7"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(line["instances"], 300);
    assert_eq!(line["failed_instances"], 0);
    assert!(line["first_failure"].is_null());
    let failures = line["failures"].as_object().unwrap();
    for kind in ["timeout", "constraint", "fill", "spread", "moves"] {
        assert_eq!(failures[kind], 0, "{kind}");
    }
    // Instance i has seed 7 + i, and every instance has at least one solve.
    let slowest = line["slowest"]["seed"].as_u64().unwrap();
    assert!((7..307).contains(&slowest));
    assert!(line["solves"].as_u64().unwrap() >= 300);
}

#[test]
fn plan_soak_reports_a_solve_over_its_budget_as_a_timeout() {
    let out = Command::new(env!("CARGO_BIN_EXE_apportion"))
        .args([
            "bench",
            "plan-soak",
            "--instances",
            "20",
            "--seed",
            "3",
            "--steps",
            "5",
        ])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert!(line["failures"]["timeout"].as_u64().unwrap() > 0);
    assert_eq!(line["first_failure"]["kind"], "timeout");
    let seed = line["first_failure"]["seed"].as_u64().unwrap();
    assert!((3..23).contains(&seed));
}
