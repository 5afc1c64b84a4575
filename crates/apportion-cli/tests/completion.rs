//! `apportion completion SHELL` as a user runs it: a script for each shell etcdctl and
//! kubectl users expect, naming every subcommand.

use std::process::Command;

#[test]
fn completion_scripts_know_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(env!("CARGO_BIN_EXE_apportion"))
            .args(["completion", shell])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        for subcommand in ["status", "plan", "member", "drain", "completion"] {
            assert!(script.contains(subcommand), "{shell}: {subcommand}");
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_apportion"))
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
