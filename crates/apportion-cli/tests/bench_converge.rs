//! `apportion bench converge` as a user runs it, at a small size: one JSON line whose
//! figures agree with each other, with the members in the benchmark's process (on the
//! embedded store) and as `apportion member` processes (on a real etcd, `--processes`).

use std::process::{Command, Output};

use apportion_testkit::TestEtcd;
use serde_json::Value;

/// Runs `apportion bench converge` with `args`.
fn converge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_apportion"))
        .args(["bench", "converge"])
        .args(args)
        .output()
        .unwrap()
}

/// The line of a run that succeeded.
fn line(output: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    serde_json::from_slice(&output.stdout).expect("one JSON line")
}

/// A numeric field of the line.
fn number(line: &Value, field: &str) -> f64 {
    line[field]
        .as_f64()
        .unwrap_or_else(|| panic!("no {field} in {line}"))
}

/// What holds in either shape for `slots` replica slots.
fn holds_together(line: &Value, slots: f64) {
    let number = |field: &str| number(line, field);
    assert!(number("changes") >= slots, "{line}");
    assert_eq!(number("floor_keys"), number("changes") + slots, "{line}");
    assert!(number("floor_ms") > 0.0, "{line}");
    let ratio = number("settle_ms") / number("floor_ms");
    assert!((number("vs_floor") - ratio).abs() < 1e-6, "{line}");
    assert!(
        number("refill_ms") > number("refill_after_expiry_ms"),
        "{line}"
    );
    assert!(number("refill_after_expiry_ms") > 0.0, "{line}");
    assert!(
        number("refill_changes") > 0.0,
        "the victim's copies moved: {line}"
    );
    assert_eq!(number("idle_txns"), 0.0, "a settled cluster wrote: {line}");
    assert_eq!(number("lease_losses"), 0.0, "{line}");
    assert!(number("peak_rss_mb") > 0.0, "{line}");
}

#[test]
fn converge_prints_a_line_with_the_floor_and_no_idle_writes() {
    let output = converge(&[
        "--memory",
        "--members",
        "4",
        "--items",
        "60",
        "--replication",
        "2",
        "--lease-ttl",
        "1",
        "--idle-secs",
        "1",
    ]);
    let line = line(&output);
    assert_eq!(line["shape"], "in-process", "{line}");
    assert!(line.get("peak_rss_mb_per_member").is_none(), "{line}");
    holds_together(&line, 120.0);
}

#[test]
fn member_processes_converge_and_none_is_left_running() {
    let etcd = TestEtcd::start();
    let endpoint = etcd.endpoint();
    let output = converge(&[
        "--processes",
        "--etcd",
        &endpoint,
        "--members",
        "3",
        "--items",
        "60",
        "--replication",
        "2",
        "--lease-ttl",
        "5",
        "--idle-secs",
        "1",
    ]);
    let line = line(&output);
    assert_eq!(line["shape"], "processes", "{line}");
    holds_together(&line, 120.0);
    // The leaders' counts come from the members' metrics.
    assert!(number(&line, "rounds") > 0.0, "{line}");
    assert!(number(&line, "txns") > 0.0, "{line}");
    let rss = &line["peak_rss_mb_per_member"];
    let (max, median) = (number(rss, "max"), number(rss, "median"));
    assert!(median > 0.0 && max >= median, "{line}");
    let members_cpu = number(&line, "members_cpu_secs");
    assert!(members_cpu > 0.0, "{line}");
    assert!(number(&line, "leader_cpu_secs") <= members_cpu, "{line}");
    assert_eq!(
        members_of(&endpoint),
        Vec::<String>::new(),
        "members left running"
    );
}

#[test]
fn processes_refuse_the_embedded_store() {
    let output = converge(&["--processes", "--memory"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--processes") && stderr.contains("--memory"),
        "{stderr}"
    );
}

/// The command lines of the `apportion member` processes still running on `endpoint`.
fn members_of(endpoint: &str) -> Vec<String> {
    let processes = std::fs::read_dir("/proc").expect("a /proc to look for processes in");
    processes
        .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(" member ") && cmdline.contains(endpoint))
        .collect()
}

#[test]
fn a_run_whose_refill_could_not_end_is_refused() {
    let output = converge(&["--memory", "--members", "3", "--replication", "3"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--members 3 is too few"), "{stderr}");
}
