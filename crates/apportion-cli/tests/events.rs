//! `events --json` runs as the built binary against a real etcd while a member, an item
//! and an assignment are written by hand, and prints a line for each.

#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use apportion_store::Store;
use apportion_testkit::TestEtcd;
use serde_json::Value;
use support::{connect, Running};

#[test]
fn events_prints_a_line_per_change_from_now_on() {
    let etcd = TestEtcd::start();
    let url = etcd.endpoint();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = connect(&runtime, &url);
    let key = |key| format!("/apportion/{key}");
    // Already there when `events` starts: not printed.
    runtime
        .block_on(store.put(key("items/old"), r#"{"replication": 1}"#, None))
        .unwrap();

    let events = Running::start(&url, &["events", "--json"]);
    // Nothing says when `events` has loaded the cluster and follows it: change a marker
    // item until a line shows it, so the writes after it are changes, not the baseline.
    let following = (1..=100).any(|replication| {
        let value = format!(r#"{{"replication": {replication}}}"#);
        runtime
            .block_on(store.put(key("items/marker"), value, None))
            .unwrap();
        let line = events.next_line_within(Duration::from_millis(200));
        line.is_some_and(|line| serde_json::from_str::<Value>(&line).unwrap()["item"] == "marker")
    });
    assert!(following, "events printed no line for 20 s of changes");
    let lease = runtime.block_on(store.grant(60)).unwrap().id;
    runtime.block_on(async {
        let member = key("members/eu#h1");
        store
            .put(member, r#"{"item_limit": 4}"#, Some(lease))
            .await
            .unwrap();
        let item = key("items/orders");
        store
            .put(item, r#"{"replication": 1}"#, None)
            .await
            .unwrap();
        let copy = key("assign/orders#eu#h1#00000");
        store.put(copy, "", Some(lease)).await.unwrap();
    });
    let mut seen = Vec::new();
    read_until(
        &events,
        &mut seen,
        &["member_joined", "item_created", "added"],
    );
    // Written apart from the rest: a burst of writes can reach the view as one change,
    // and a copy added ready is only `added`.
    let ready = key("assign/orders#eu#h1#00000");
    runtime
        .block_on(store.put(ready, r#"{"ready": true}"#, Some(lease)))
        .unwrap();
    read_until(&events, &mut seen, &["ready"]);
    events.interrupt();
    assert_eq!(events.wait(), 0, "Ctrl-C exits 0");

    assert!(
        seen.iter().all(|line| line["item"] != "old"),
        "the existing state prints nothing: {seen:?}"
    );
    let added = seen.iter().find(|line| line["kind"] == "added").unwrap();
    assert_eq!(added["item"], "orders");
    assert_eq!(added["member"], "eu#h1");
    assert_eq!(added["slot"], 0);
    assert!(added["revision"].as_i64().unwrap() > 0);
    assert!(added["time"].as_str().unwrap().ends_with('Z'));
}

/// Reads JSON lines from `events` into `seen` until lines of all `kinds` are there (at
/// most 20 s).
fn read_until(events: &Running, seen: &mut Vec<Value>, kinds: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !kinds
        .iter()
        .all(|kind| seen.iter().any(|line| line["kind"] == *kind))
    {
        assert!(Instant::now() < deadline, "missing kinds in {seen:?}");
        let line = events.next_line();
        seen.push(serde_json::from_str(&line).expect("a JSON line"));
    }
}
