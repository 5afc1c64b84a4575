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
