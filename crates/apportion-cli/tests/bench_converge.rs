//! `apportion bench converge` as a user runs it, on the embedded store at a small size: one
//! JSON line whose figures agree with each other.

use std::process::Command;

#[test]
fn converge_prints_a_line_with_the_floor_and_no_idle_writes() {
    let output = Command::new(env!("CARGO_BIN_EXE_apportion"))
        .args([
            "bench",
            "converge",
            "--memory",
            "--members",
            "4",
            "--items",
            "60",
        ])
        .args(["--replication", "2", "--lease-ttl", "1", "--idle-secs", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    let number = |field: &str| line[field].as_f64().unwrap_or_else(|| panic!("no {field}"));
    assert!(number("changes") >= 120.0, "{line}");
    assert_eq!(number("floor_keys"), number("changes") + 120.0, "{line}");
    assert!(number("floor_ms") > 0.0, "{line}");
    let ratio = number("settle_ms") / number("floor_ms");
    assert!((number("vs_floor") - ratio).abs() < 1e-6, "{line}");
    assert_eq!(number("idle_txns"), 0.0, "a settled cluster wrote: {line}");
    assert_eq!(number("lease_losses"), 0.0, "{line}");
    assert!(number("peak_rss_mb") > 0.0, "{line}");
}
