//! The admin commands run as the built binary against a real etcd: items, drain, and how
//! bad input and an unreachable etcd are reported.

// `Running::interrupt` is for the status tests' live view.
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use apportion_store::{KeyRange, Store};
use apportion_testkit::{free_port, TestEtcd};
use serde_json::{json, Value};
use support::{apportion, cluster, connect, Running};

/// Asserts a failed command printed exactly one line on stderr, and returns it.
fn one_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got: {stderr}");
    lines[0]
}

#[test]
fn items_put_list_and_rm_round_trip() {
    let etcd = TestEtcd::start();
    let url = etcd.endpoint();

    let put = apportion(
        &url,
        &[
            "items",
            "put",
            "orders",
            "--replication",
            "1",
            "--exclusive",
        ],
    );
    assert_eq!(
        (put.code, put.stdout.as_str()),
        (0, "created item orders (replication 1, exclusive)\n")
    );
    // An edit changes only what it names: the item stays exclusive, so two replicas are
    // refused until exclusivity is turned off, explicitly.
    let refused = apportion(&url, &["items", "put", "orders", "--replication", "2"]);
    assert_eq!(refused.code, 2);
    assert!(
        one_line(&refused.stderr).contains("item `orders` is exclusive"),
        "{}",
        refused.stderr
    );
    let both = apportion(
        &url,
        &["items", "put", "x", "--replication", "2", "--exclusive"],
    );
    assert_eq!(both.code, 2);
    assert!(one_line(&both.stderr).contains("one owner at a time"));
    let update = apportion(
        &url,
        &[
            "items",
            "put",
            "orders",
            "--replication",
            "2",
            "--no-exclusive",
        ],
    );
    assert_eq!(
        update.stdout,
        "updated item orders (replication 1 -> 2, no longer exclusive)\n"
    );
    let kept = apportion(&url, &["items", "put", "orders", "--replication", "2"]);
    assert_eq!(kept.stdout, "updated item orders (replication 2 -> 2)\n");
    assert_eq!(
        apportion(&url, &["items", "put", "parked", "--replication", "0"]).code,
        0
    );

    let table = apportion(&url, &["items", "list"]);
    assert_eq!(
        table.stdout,
        "ITEM    REPLICATION  EXCLUSIVE  ASSIGNED  CONSISTENT\n\
         orders            2  no                0           0\n\
         parked            0  no                0           0\n"
    );
    let listed: Value = serde_json::from_str(&apportion(&url, &["items", "list", "--json"]).stdout)
        .expect("items list --json prints JSON");
    assert_eq!(
        listed,
        json!([
            {"id": "orders", "replication": 2, "exclusive": false, "assigned": 0, "consistent": 0},
            {"id": "parked", "replication": 0, "exclusive": false, "assigned": 0, "consistent": 0},
        ])
    );

    let rm = apportion(&url, &["items", "rm", "parked"]);
    assert_eq!((rm.code, rm.stdout.as_str()), (0, "removed item parked\n"));
    let again = apportion(&url, &["items", "rm", "parked"]);
    assert_eq!(again.code, 1);
    assert_eq!(
        one_line(&again.stderr),
        "error: item `parked` does not exist under /apportion"
    );
    let listed: Value =
        serde_json::from_str(&apportion(&url, &["items", "list", "--json"]).stdout).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));

    // Another prefix is another deployment.
    let elsewhere = apportion(&url, &["items", "list", "--prefix", "/other"]);
    assert_eq!(elsewhere.stdout, "no items under /other\n");
}

#[test]
fn bad_input_exits_2_with_one_line_that_names_the_problem() {
    // Never contacted: input is checked before connecting.
    let url = format!("http://127.0.0.1:{}", free_port());

    let bad_id = apportion(&url, &["items", "put", "a b", "--replication", "1"]);
    assert_eq!(bad_id.code, 2);
    let line = one_line(&bad_id.stderr);
    assert!(line.contains("forbidden character ' ' at byte 1"), "{line}");

    let not_a_number = apportion(&url, &["items", "put", "orders", "--replication", "three"]);
    assert_eq!(not_a_number.code, 2);
    let line = one_line(&not_a_number.stderr);
    assert!(line.contains("'three' for '--replication <N>'"), "{line}");

    // What the members would skip as a bad value is refused here, where someone reads it.
    let too_many = apportion(&url, &["items", "put", "r", "--replication", "1000"]);
    assert_eq!(too_many.code, 2);
    let line = one_line(&too_many.stderr);
    assert!(line.contains("not a replication from 0 to 255"), "{line}");

    let bad_member = apportion(&url, &["drain", "eu"]);
    assert_eq!(bad_member.code, 2);
    let line = one_line(&bad_member.stderr);
    assert!(
        line.contains("expected 2 '#'-separated parts, found 1"),
        "{line}"
    );

    let bad_url = apportion(&url, &["status", "--etcd", "127.0.0.1:2379"]);
    assert_eq!(bad_url.code, 2);
    let line = one_line(&bad_url.stderr);
    assert!(
        line.contains("must start with http:// or https://"),
        "{line}"
    );
}

#[test]
fn an_unreachable_etcd_is_one_line_and_exit_1_within_seconds() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let listed = apportion(&url, &["items", "list"]);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(listed.code, 1);
    let line = one_line(&listed.stderr);
    assert!(
        line.starts_with(&format!("error: cannot reach etcd at {url} (tried ")),
        "{line}"
    );
    assert!(listed.stdout.is_empty());
}

#[test]
fn drain_marks_the_member_exiting_keeps_its_lease_and_can_wait() {
    let etcd = TestEtcd::start();
    let url = etcd.endpoint();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = connect(&runtime, &url);
    let leases = runtime.block_on(cluster::write(&store));
    let member_key = |member: &str| {
        let key = format!("{}/members/{member}", cluster::PREFIX);
        let read = runtime.block_on(store.range(KeyRange::key(key))).unwrap();
        read.kvs.into_iter().next().expect("the member key exists")
    };

    let drained = apportion(&url, &["drain", "us#h1"]);
    assert_eq!(drained.code, 0, "{}", drained.stderr);
    let kv = member_key("us#h1");
    assert_eq!(kv.lease, leases["us#h1"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&kv.value).unwrap(),
        json!({"item_limit": 8, "exiting": true, "addr": "10.0.0.3"})
    );

    let missing = apportion(&url, &["drain", "eu#nope"]);
    assert_eq!(missing.code, 1);
    assert!(one_line(&missing.stderr).contains("member `eu#nope` is not registered"));

    // eu#h1 holds the primary of `orders` and an assignment of the deleted item `gone`;
    // the test plays the leader and removes them.
    let waiting = Running::start(&url, &["drain", "eu#h1", "--wait"]);
    assert_eq!(
        waiting.next_line(),
        "member eu#h1 marked exiting; the leader moves its copies away"
    );
    assert_eq!(
        waiting.next_line(),
        "member eu#h1 holds 2 assignments; waiting"
    );
    assert_eq!(member_key("eu#h1").lease, leases["eu#h1"]);
    let assignments = format!("{}/assign/", cluster::PREFIX);
    for item in ["orders", "gone"] {
        let key = format!("{assignments}{item}#eu#h1#00000");
        runtime.block_on(store.delete(KeyRange::key(key))).unwrap();
    }
    let mut last = waiting.next_line();
    if last.contains("holds 1 assignment") {
        last = waiting.next_line();
    }
    assert_eq!(last, "member eu#h1 holds no assignment");
    assert_eq!(waiting.wait(), 0);
}

/// An id that is not one is refused in one line that shows it escaped, however it is
/// spelled: a newline does not cut the line short.
#[test]
fn a_bad_id_is_one_escaped_line_whatever_it_holds() {
    // Never contacted: input is checked before connecting.
    let url = format!("http://127.0.0.1:{}", free_port());
    let cases: [(&[&str], &str); 4] = [
        (
            &["items", "put", "nl\nx", "--replication", "1"],
            r"error: invalid value 'nl\nx' for '<ID>': key `nl\nx`: item id has forbidden character '\n' at byte 2",
        ),
        (
            &["items", "rm", ".."],
            "error: invalid value '..' for '<ID>': key `..`: item id `..` at byte 0 is not allowed (it reads as a path step)",
        ),
        (
            &["items", "rm", &"x".repeat(300)],
            "item id at byte 0 is 300 bytes long; the most is 256",
        ),
        (
            &["drain", "eu#a\rb"],
            r"error: invalid value 'eu#a\rb' for '<ZONE#SUFFIX>': key `eu#a\rb`: suffix has forbidden character '\r' at byte 4",
        ),
    ];
    for (args, expected) in cases {
        let refused = apportion(&url, args);
        assert_eq!(refused.code, 2, "{args:?}: {}", refused.stderr);
        let line = one_line(&refused.stderr);
        assert!(
            line.starts_with("error: ") && line.ends_with(expected),
            "{args:?}: {line}"
        );
    }
    // An id that starts with '-' is an id after `--`, as the help says.
    let help = apportion(&url, &["items", "rm", "--help"]);
    assert!(help.stdout.contains("`rm -- -x`"), "{}", help.stdout);
    let dashed = apportion(&url, &["items", "rm", "--", "-x"]);
    assert_eq!(dashed.code, 1, "parsed, then etcd is unreachable");
}
