//! The commands that read the whole prefix work when it holds more than one etcd response
//! carries by default (4 MiB): `items list`, `status` and the live `status --watch`, against
//! a real etcd holding 45 items of 100 KB each.

// `Running::interrupt` and `wait` are for the status tests' live view.
#[allow(dead_code)]
mod support;

use apportion_store::{Op, Store, Txn};
use apportion_testkit::TestEtcd;
use serde_json::Value;
use support::{apportion, cluster, connect, Running};

/// How many items, each with a 100 KB field of its own: about 4.5 MB under the prefix.
const ITEMS: usize = 45;

#[test]
fn items_list_and_status_read_more_than_4_mib() {
    let etcd = TestEtcd::start();
    let url = etcd.endpoint();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = connect(&runtime, &url);
    let note = "x".repeat(100_000);
    runtime.block_on(async {
        for i in 0..ITEMS {
            let key = format!("{}/items/item{i:02}", cluster::PREFIX);
            let value = serde_json::json!({"replication": 1, "note": note}).to_string();
            store
                .txn(Txn::new().and_then([Op::put(key, value)]))
                .await
                .unwrap();
        }
    });

    let listed = apportion(&url, &["items", "list", "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let items: Value = serde_json::from_str(&listed.stdout).expect("items list prints JSON");
    let items = items.as_array().expect("a list of items");
    assert_eq!(items.len(), ITEMS);
    assert_eq!(items[0]["id"], "item00");
    assert_eq!(items[ITEMS - 1]["id"], format!("item{:02}", ITEMS - 1));

    let status = apportion(&url, &["status", "--json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let report: Value = serde_json::from_str(&status.stdout).expect("status prints JSON");
    assert_eq!(report["totals"]["items"], ITEMS);
    assert_eq!(report["rejected"]["count"], 0);

    let watching = Running::start(&url, &["status", "--watch", "--json"]);
    let first: Value = serde_json::from_str(&watching.next_line()).unwrap();
    assert_eq!(first["totals"]["items"], ITEMS);
}
