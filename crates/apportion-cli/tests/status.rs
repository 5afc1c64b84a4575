//! `members list` and `status` run as the built binary against a real etcd holding a
//! hand-written deployment, including a value that does not decode.

#[allow(dead_code)]
mod support;

use apportion::admin::Admin;
use apportion::cluster::ClusterView;
use apportion_core::keys::{AssignmentKey, ItemId, Prefix};
use apportion_core::state::Entry;
use apportion_core::values::{JsonDecoder, JsonStatus};
use apportion_store::Store;
use apportion_testkit::TestEtcd;
use serde_json::{json, Value};
use support::{apportion, cluster, connect, Running};

#[test]
fn members_list_and_status_describe_a_hand_written_cluster() {
    let etcd = TestEtcd::start();
    let url = etcd.endpoint();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = connect(&runtime, &url);
    let leases = runtime.block_on(cluster::write(&store));

    let members = apportion(&url, &["members", "list"]);
    assert_eq!(members.code, 0, "{}", members.stderr);
    let lines: Vec<&str> = members.stdout.lines().collect();
    // The LEASE column is as wide as the longest lease id, whose hex length varies.
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    let expected = "MEMBER ZONE LIMIT EXITING LOAD FAIR PRIMARIES LEASE TTL";
    assert_eq!(header, expected.split(' ').collect::<Vec<_>>());
    let us = lines[3];
    let lease = format!("{:x}", leases["us#h1"].get());
    let prefix = format!("us#h1   us        8  no          2   2.0          1  {lease}");
    assert!(us.starts_with(&prefix), "{us}");
    assert!(us.ends_with("s left"), "{us}");
    assert_eq!(lines.len(), 4, "the undecodable member is not listed");

    let rows: Value =
        serde_json::from_str(&apportion(&url, &["members", "list", "--json"]).stdout).unwrap();
    let ttl = rows[0]["lease_ttl_secs"]
        .as_u64()
        .expect("a live lease has time left");
    assert!((1..=60).contains(&ttl), "{ttl}");
    assert_eq!(
        rows[0],
        json!({"member": "eu#h1", "zone": "eu", "limit": 4, "exiting": false,
               "restarting": false, "load": 1,
               "fair_share": 1.0, "primaries": 1, "lease": format!("{:x}", leases["eu#h1"].get()),
               "lease_ttl_secs": ttl})
    );

    let status = apportion(&url, &["status", "--json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let report: Value = serde_json::from_str(&status.stdout).expect("status --json prints JSON");
    assert_eq!(report["prefix"], "/apportion");
    assert_eq!(report["leader"], "eu#h1");
    assert_eq!(report["totals"]["slots_filled"], 4);
    assert_eq!(report["totals"]["dangling"], 1);
    assert_eq!(report["zones"].as_array().map(Vec::len), Some(2));
    assert_eq!(report["attention"][0]["id"], "orders");
    assert_eq!(report["attention"][0]["consistent"], 1);
    // Every item with where its copies are, primary first.
    let items: Vec<_> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].clone())
        .collect();
    assert_eq!(items, [json!("orders"), json!("parked"), json!("payments")]);
    assert_eq!(
        report["items"][2]["copies"],
        json!([
            {"slot": 0, "member": "us#h1", "zone": "us", "ready": true, "releasing": false},
            {"slot": 1, "member": "eu#h2", "zone": "eu", "ready": true, "releasing": false},
        ])
    );
    assert_eq!(report["items"][1]["copies"], json!([]));
    assert_eq!(report["rejected"]["count"], 1);
    assert_eq!(
        report["rejected"]["first"][0]["key"],
        "/apportion/members/eu#bad"
    );

    let text = apportion(&url, &["status"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.contains("leader eu#h1"), "{}", text.stdout);
    assert!(text.stdout.contains("1 key ignored (did not decode):"));
}

/// `status` shows what the leader sees. An item whose value no view has ever decoded is
/// unknown to the leader, which neither counts its replicas nor removes them (as it would an
/// item's that is gone): so `status` counts them neither as load nor as left for the leader
/// to remove, and lists the item's key among the keys that do not decode.
#[test]
fn status_and_the_runtime_agree_on_an_item_whose_value_does_not_decode() {
    let etcd = TestEtcd::start();
    let url = etcd.endpoint();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = connect(&runtime, &url);
    let leases = runtime.block_on(cluster::write(&store));
    runtime.block_on(async {
        let key = |key| format!("{}/{key}", cluster::PREFIX);
        store
            .put(key("items/broken"), "not json", None)
            .await
            .unwrap();
        let replica = key("assign/broken#eu#h2#00000");
        let lease = Some(leases["eu#h2"]);
        store
            .put(replica, r#"{"ready": true}"#, lease)
            .await
            .unwrap();
    });

    let status = apportion(&url, &["status", "--json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let report: Value = serde_json::from_str(&status.stdout).unwrap();
    // As without `broken`: eu#h2 holds one copy of payments, `gone` left one assignment.
    assert_eq!(report["members"][1]["member"], "eu#h2");
    assert_eq!(report["members"][1]["load"], 1);
    assert_eq!(report["totals"]["slots_filled"], 4);
    assert_eq!(report["totals"]["dangling"], 1);
    assert_eq!(report["rejected"]["count"], 2);
    assert_eq!(
        report["rejected"]["first"][0]["key"],
        "/apportion/items/broken"
    );

    // The runtime's view of the same keys, as a leader starting now would see them.
    let observed = runtime.block_on(async {
        let view = ClusterView::start(store.clone(), cluster::PREFIX, JsonDecoder).await;
        view.unwrap().current()
    });
    let state = &observed.state;
    let broken = ItemId::new("broken").unwrap();
    let held = |list: &[Entry<AssignmentKey, JsonStatus>]| {
        list.iter().filter(|a| a.key.item == broken).count()
    };
    assert_eq!((held(state.assignments()), held(state.dangling())), (0, 0));
    assert_eq!(report["totals"]["slots_filled"], state.assignments().len());
    assert_eq!(report["totals"]["dangling"], state.dangling().len());
    assert_eq!(
        report["rejected"]["first"],
        serde_json::to_value(&observed.rejected).unwrap()
    );
}

#[test]
fn the_live_view_follows_changes_and_ctrl_c_exits_0() {
    let etcd = TestEtcd::start();
    let url = etcd.endpoint();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = connect(&runtime, &url);
    runtime.block_on(cluster::write(&store));

    let watching = Running::start(&url, &["status", "--watch", "--json"]);
    let first: Value = serde_json::from_str(&watching.next_line()).unwrap();
    assert_eq!(first["totals"]["items"], 3);

    let admin = Admin::new(store.clone(), Prefix::new(cluster::PREFIX).unwrap());
    let invoices = ItemId::new("invoices").unwrap();
    runtime
        .block_on(admin.put_item(&invoices, 1, None))
        .unwrap();
    // Redraws that show nothing new (a watch progress report) may come first.
    let next = (0..5)
        .map(|_| serde_json::from_str::<Value>(&watching.next_line()).unwrap())
        .find(|report| report["totals"]["items"] == 4)
        .expect("a report with the new item");
    assert!(next["revision"].as_i64() > first["revision"].as_i64());

    watching.interrupt();
    assert_eq!(watching.wait(), 0);
}

/// The `status --json` report's row of member `id`.
fn member_row(url: &str, id: &str) -> Option<Value> {
    let status = apportion(url, &["status", "--json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let report: Value = serde_json::from_str(&status.stdout).unwrap();
    report["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["member"] == id)
        .cloned()
}

/// A member killed with SIGKILL stays registered until its lease runs out: `status` tells
/// it from a live one by the time left, which counts down for the dead one only.
#[test]
fn status_shows_a_killed_members_lease_counting_down() {
    let etcd = TestEtcd::start();
    let url = etcd.endpoint();
    let member = |suffix| {
        let args = [
            "member",
            "--zone",
            "z",
            "--suffix",
            suffix,
            "--lease-ttl",
            "6",
        ];
        let running = Running::start(&url, &args);
        assert!(running.next_line().starts_with("joined"));
        running
    };
    let _live = member("live");
    let dead = member("dead");

    let row = member_row(&url, "z#live").unwrap();
    assert!(row["lease"].as_str().is_some(), "{row}");
    let text = apportion(&url, &["status"]).stdout;
    assert!(
        text.lines()
            .any(|line| line.starts_with("z#live") && line.ends_with("s left")),
        "{text}"
    );

    drop(dead); // SIGKILL: no drain, no revoke; the lease just stops being renewed.
    let before = member_row(&url, "z#dead").unwrap()["lease_ttl_secs"].as_u64();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let after = member_row(&url, "z#dead").and_then(|row| row["lease_ttl_secs"].as_u64());
    let before = before.expect("the dead member's lease has not ended yet");
    // Down by at least 2 s, or ended (its key goes with it).
    assert!(
        after.is_none_or(|after| after + 2 <= before),
        "{before} then {after:?}"
    );
    let live = member_row(&url, "z#live").unwrap()["lease_ttl_secs"].as_u64();
    assert!(live.is_some_and(|left| left >= 2), "{live:?}");
}

/// `status --watch` keeps showing the last report when etcd goes away, under a banner that
/// says since when it is stale.
#[test]
fn the_live_view_says_when_etcd_stops_answering() {
    let mut etcd = TestEtcd::start();
    let url = etcd.endpoint();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = connect(&runtime, &url);
    runtime.block_on(cluster::write(&store));

    let watching = Running::start(&url, &["status", "--watch"]);
    assert!(watching.next_line().contains("prefix /apportion"));
    assert!(!(0..10).any(|_| watching.next_line().contains("stale")));
    etcd.kill();
    let banner = (0..200)
        .map(|_| watching.next_line())
        .find(|line| line.contains("stale: etcd unreachable since "))
        .expect("a staleness banner");
    assert!(banner.contains(" UTC ("), "{banner}");
    watching.interrupt();
    assert_eq!(watching.wait(), 0);
}
