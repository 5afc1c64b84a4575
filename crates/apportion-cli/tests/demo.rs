//! `apportion demo` as a user runs it: the built binary, at a small size so it takes
//! seconds, on the embedded store and on a real etcd.

use std::process::Command;

use apportion_testkit::TestEtcd;

fn demo(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_apportion"))
        .arg("demo")
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Checks a story that went well: every phase told, every invariant held.
fn assert_told(code: Option<i32>, stdout: &str, stderr: &str) {
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let phases = [
        "1. Initial allocation",
        "2. A member crashes",
        "3. zone-a goes down",
        "4. zone-a comes back",
        "5. Rolling restart, draining",
        "6. Rolling restart, in place",
        "7. A member drains",
        "8. Members join",
        "Rolling restarts compared",
    ];
    for phase in phases {
        assert!(stdout.contains(phase), "{phase:?} missing:\n{stdout}");
    }
    assert_eq!(
        stdout.matches("   invariants held: ").count(),
        8,
        "{stdout}"
    );
    let last = stdout.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("demo: 8 phases in ") && last.ends_with(" s, every invariant held"),
        "{last}"
    );
}

/// The comparison's row `label`: one figure per rolling restart, draining then in place.
fn compared<'a>(stdout: &'a str, label: &str) -> Vec<&'a str> {
    let row = stdout.lines().find(|l| l.trim_start().starts_with(label));
    let row = row.unwrap_or_else(|| panic!("no {label:?} row:\n{stdout}"));
    row.trim_start()[label.len()..].split_whitespace().collect()
}

#[test]
fn a_small_story_on_the_embedded_store_holds_every_invariant() {
    let (code, stdout, stderr) = demo(&["--members", "4", "--items", "20"]);
    assert_told(code, &stdout, &stderr);
    // Restarting in place moves fewer replicas than draining (none where the zones are
    // even; here zone-a has two members, the others one, and the held slots let copies
    // cross zones while a member is away) and leaves every item at most one ready replica
    // short of its three; draining keeps all three ready.
    let moves: Vec<u32> = compared(&stdout, "replica moves")
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(moves[1] < moves[0], "{stdout}");
    assert_eq!(
        compared(&stdout, "lowest ready replicas"),
        ["3", "2"],
        "{stdout}"
    );
    // Four members in three zones: zone-a has two, so it is the one that fails.
    assert!(stdout.contains("zone-a#m1 (") || stdout.contains("zone-a#m4 ("));
}

#[test]
fn the_same_story_runs_on_etcd() {
    let etcd = TestEtcd::start();
    let (code, stdout, stderr) = demo(&[
        "--etcd",
        &etcd.endpoint(),
        "--members",
        "4",
        "--items",
        "20",
    ]);
    assert_told(code, &stdout, &stderr);
    assert!(stdout.contains(&format!("on etcd at {}", etcd.endpoint())));
}

#[test]
fn a_size_the_story_cannot_use_is_refused() {
    let (code, stdout, stderr) = demo(&["--zones", "1"]);
    assert_eq!(code, Some(2));
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(
        stderr.trim(),
        "error: --zones must be from 2 to 26 (a zone goes down in the story), got 1"
    );
}
