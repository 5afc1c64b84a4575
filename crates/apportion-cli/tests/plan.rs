//! `apportion plan` run as a process: a valid problem, and bad inputs that must fail with
//! one line naming what and where, and exit code 2.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use apportion::core::solver::input::PlanOutput;

fn plan(input: &str, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_apportion"))
        .arg("plan")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn fails_with(input: &str, expected: &str) {
    let out = plan(input, &[]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(expected),
        "{stderr:?} should contain {expected:?}"
    );
}

const VALID: &str = r#"{
  "members": [
    {"zone": "a", "suffix": "m1", "item_limit": 2},
    {"zone": "b", "suffix": "m2", "item_limit": 2},
    {"zone": "c", "suffix": "m3", "item_limit": 2, "exiting": true},
    {"zone": "c", "suffix": "m4", "item_limit": 2}
  ],
  "items": [{"id": "i1", "replication": 3}, {"id": "i2", "replication": 2}],
  "assignments": [
    {"item": "i1", "zone": "c", "suffix": "m3", "slot": 0},
    {"item": "i1", "zone": "a", "suffix": "m1", "slot": 1, "consistent": false},
    {"item": "i2", "zone": "b", "suffix": "m2", "slot": 0}
  ]
}"#;

#[test]
fn plans_a_valid_problem() {
    let out = plan(VALID, &["--pretty"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: PlanOutput = serde_json::from_slice(&out.stdout).unwrap();
    // i1 over three zones (m3 exits, so m4 takes zone c); i2 keeps m2 and adds one.
    let holders = |item: &str| {
        let mut h: Vec<(String, u32)> = plan
            .assignments
            .iter()
            .filter(|a| a.item == item)
            .map(|a| (a.suffix.clone(), a.slot))
            .collect();
        h.sort();
        h
    };
    let i1: Vec<String> = holders("i1").into_iter().map(|(s, _)| s).collect();
    assert_eq!(i1, ["m1", "m2", "m4"]);
    assert_eq!(holders("i2").len(), 2);
    assert!(
        holders("i2").contains(&("m2".to_string(), 0)),
        "i2 keeps its primary"
    );
    assert_eq!(plan.summary.unfilled_slots, 0);
    assert_eq!(plan.summary.kept, 2);
    assert_eq!(plan.summary.added, 3);
    assert_eq!(plan.summary.removed, 1);
    assert_eq!(plan.removed[0].suffix, "m3");
    assert_eq!(plan.added.len(), 3);
    assert!(plan.summary.solve_ms >= 0.0);
}

#[test]
fn reads_a_file() {
    let path = std::env::temp_dir().join(format!("apportion-plan-{}.json", std::process::id()));
    std::fs::write(&path, VALID).unwrap();
    let out = plan("", &["--input", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out.status.code(), Some(0));
    let plan: PlanOutput = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan.assignments.len(), 5);
}

#[test]
fn rejects_a_missing_file() {
    let out = plan("", &["--input", "/nonexistent/problem.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/problem.json"));
}

#[test]
fn rejects_malformed_json() {
    fails_with(r#"{"members": ["#, "invalid input JSON");
    fails_with(r#"{"members": [], "bogus": 1}"#, "unknown field `bogus`");
}

#[test]
fn rejects_negative_numbers() {
    fails_with(
        r#"{"members": [{"zone": "a", "suffix": "m", "item_limit": -1}]}"#,
        "invalid value: integer `-1`",
    );
}

#[test]
fn rejects_bad_names_with_the_character_and_its_position() {
    fails_with(
        r#"{"members": [{"zone": "a", "suffix": "m#1", "item_limit": 1}]}"#,
        "members[0]: key `a#m#1`: suffix has forbidden character '#' at byte 3",
    );
    fails_with(
        r#"{"items": [{"id": "x/y", "replication": 1}]}"#,
        "items[0]: key `x/y`: item id has forbidden character '/' at byte 1",
    );
    fails_with(
        r#"{"members": [{"zone": "", "suffix": "m", "item_limit": 1}]}"#,
        "members[0]: key `#m`: empty zone at byte 0",
    );
    // The store's rules, not a looser copy: `..` reads as a path step.
    fails_with(
        r#"{"items": [{"id": "..", "replication": 1}]}"#,
        "items[0]: key `..`: item id `..` at byte 0 is not allowed",
    );
}

#[test]
fn rejects_replication_above_the_stores_maximum() {
    fails_with(
        r#"{"items": [{"id": "i", "replication": 1000}]}"#,
        r#"items[0]: item "i" has replication 1000; the most is 255"#,
    );
}

#[test]
fn rejects_duplicate_assignments_naming_both() {
    let input = |second: &str| {
        format!(
            r#"{{"members": [{{"zone": "a", "suffix": "m", "item_limit": 2}},
                             {{"zone": "b", "suffix": "n", "item_limit": 2}}],
                "items": [{{"id": "i", "replication": 2}}],
                "assignments": [{{"item": "i", "zone": "a", "suffix": "m", "slot": 0}}, {second}]}}"#
        )
    };
    fails_with(
        &input(r#"{"item": "i", "zone": "a", "suffix": "m", "slot": 1}"#),
        r#"assignments[1]: item "i" already on member a#m (first at assignments[0])"#,
    );
    fails_with(
        &input(r#"{"item": "i", "zone": "b", "suffix": "n", "slot": 0}"#),
        r#"assignments[1]: item "i" slot 0 twice (first at assignments[0])"#,
    );
}

#[test]
fn rejects_duplicates() {
    fails_with(
        r#"{"members": [{"zone": "a", "suffix": "m", "item_limit": 1}, {"zone": "a", "suffix": "m", "item_limit": 2}]}"#,
        r#"members[1]: duplicate member zone "a" suffix "m" (first at members[0])"#,
    );
    fails_with(
        r#"{"items": [{"id": "i", "replication": 1}, {"id": "i", "replication": 1}]}"#,
        r#"items[1]: duplicate item "i" (first at items[0])"#,
    );
}

#[test]
fn rejects_assignments_to_unknown_items_and_members() {
    fails_with(
        r#"{"items": [{"id": "i", "replication": 1}], "assignments": [{"item": "j", "zone": "a", "suffix": "m", "slot": 0}]}"#,
        r#"assignments[0]: unknown item "j""#,
    );
    fails_with(
        r#"{"items": [{"id": "i", "replication": 1}], "assignments": [{"item": "i", "zone": "a", "suffix": "m", "slot": 0}]}"#,
        r#"assignments[0]: unknown member zone "a" suffix "m""#,
    );
}

#[test]
fn plans_the_instances_that_once_hung() {
    for case in ["plan-hangs-1.json", "plan-hangs-2.json"] {
        let text = std::fs::read_to_string(format!(
            "{}/../apportion-core/tests/cases/{case}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let out = plan(&text, &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{case}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let plan: PlanOutput = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(plan.summary.unfilled_slots, 0, "{case}");
    }
}

#[test]
fn the_schema_is_json_with_a_valid_example_and_every_field_explained() {
    let out = plan("", &["--schema"]);
    assert_eq!(out.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fields = schema["fields"].as_object().unwrap();
    for field in [
        "members[].zone",
        "members[].item_limit",
        "items[].replication",
        "assignments[].slot",
        "assignments[].consistent",
    ] {
        assert!(
            fields[field].as_str().is_some_and(|text| !text.is_empty()),
            "{field}"
        );
    }
    let example = schema["example"].to_string();
    let solved = plan(&example, &[]);
    assert_eq!(solved.status.code(), Some(0), "{example}");
    // `--help` shows the same fields, and says where the example is.
    let help = Command::new(env!("CARGO_BIN_EXE_apportion"))
        .args(["plan", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("apportion plan --schema"), "{help}");
    assert!(help.contains("  items[].replication  "), "{help}");
}
