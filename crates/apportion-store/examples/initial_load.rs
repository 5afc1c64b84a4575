//! Measures what a key space's first load costs against a fresh etcd holding many small
//! items, and what paging costs against one read: `cargo run --release -p apportion-store
//! --example initial_load -- 100000` (the item count; 100,000 by default).
//!
//! It prints what one unpaged read does at gRPC's default limit (4 MiB: the wall), then the
//! median of five runs of: one unpaged read (at the raised default limit), a paged read at
//! 4 MiB and at the default limit, and `KeySpace::start`.

use std::future::Future;
use std::time::Instant;

use apportion_store::*;
use apportion_testkit::TestEtcd;

/// The gRPC default an etcd client starts with.
const GRPC_DEFAULT_LIMIT: usize = 4 << 20;

/// Runs `measured` five times; prints the median and every run, in milliseconds.
async fn time<F: Future<Output = usize>>(what: &str, expected: usize, measured: impl Fn() -> F) {
    let mut runs = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(measured().await, expected, "{what} missed keys");
        runs.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    println!("{what}: median {:.0} ms (runs {runs:.0?})", sorted[2]);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let items: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |n| n.parse().expect("the item count is a number"));
    let etcd = TestEtcd::start();
    let store = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
    let keys: Vec<String> = (0..items).map(|i| format!("/load/items/{i:06}")).collect();
    for batch in keys.chunks(store.max_txn_ops()) {
        let puts = batch
            .iter()
            .map(|k| Op::put(k.as_str(), r#"{"replication": 3}"#));
        store.txn(Txn::new().and_then(puts)).await.unwrap();
    }
    let walled = store.clone().with_max_response_bytes(GRPC_DEFAULT_LIMIT);
    let prefix = || KeyRange::prefix("/load/");
    match walled.range(prefix()).await {
        Ok(read) => println!("one read at 4 MiB: {} keys", read.kvs.len()),
        Err(e) => println!("one read at 4 MiB: {e}"),
    }
    time("one unpaged read", items, || async {
        store.range(prefix()).await.unwrap().kvs.len()
    })
    .await;
    time("range_all at 4 MiB", items, || async {
        walled.range_all(prefix()).await.unwrap().kvs.len()
    })
    .await;
    time("range_all at the default limit", items, || async {
        store.range_all(prefix()).await.unwrap().kvs.len()
    })
    .await;
    time("KeySpace::start", items, || async {
        let decode = |kv: &KeyValue| Ok(Some(kv.value.len()));
        let space = KeySpace::start(store.clone(), "/load/", decode, Default::default());
        space.await.unwrap().read(|s| s.entries().len())
    })
    .await;
}
