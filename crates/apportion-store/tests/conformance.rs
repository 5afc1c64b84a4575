//! The store conformance suite: every case runs on `MemoryStore` (with paused tokio time, so
//! lease expiry is exact and instant) and on `EtcdStore` against a real etcd started for the
//! test. Test names say the backend: `memory::case` and `etcd::case`.

mod conformance {
    pub mod cases;
}

#[macro_use]
mod support;

use apportion_store::{EtcdStore, MemoryStore};
use apportion_testkit::TestEtcd;

on_both_backends!(
    crate::conformance::cases =>
    put_sets_revisions_and_versions,
    revision_is_the_last_writes,
    delete_removes_and_recreate_starts_over,
    delete_of_missing_key_writes_nothing,
    prefix_range_is_sorted_and_bounded,
    prefix_delete_removes_only_the_prefix,
    txn_compares_value,
    txn_compares_version,
    txn_compares_create_revision,
    txn_compares_mod_revision,
    txn_compares_lease,
    txn_compares_on_missing_key,
    txn_compares_over_a_prefix,
    txn_takes_one_revision,
    txn_range_sees_earlier_ops,
    txn_op_limit_is_enforced,
    txn_refuses_duplicate_keys,
    bad_arguments_are_refused,
    put_with_unknown_lease_is_refused,
    put_without_lease_detaches_key,
    watch_replays_history_in_order,
    watch_reports_deletes_at_their_revision,
    watch_from_now_sees_only_later_changes,
    watch_filters_by_prefix,
    watch_events_of_one_txn_share_a_revision,
    watch_from_compacted_revision_fails,
    watch_progress_covers_writes_elsewhere,
    compact_refuses_bad_revisions,
    revoke_deletes_keys_in_one_revision,
    lease_expiry_deletes_keys_and_notifies,
    keep_alive_keeps_keys,
    keep_alive_reports_lost_lease,
    time_to_live_counts_down_until_the_lease_ends,
    concurrent_writers_lose_nothing,
    paged_reads_see_one_revision_once_in_order,
    reads_at_a_past_revision_see_it,
    reads_at_a_compacted_or_future_revision_fail,
    bad_read_options_are_refused,
    a_paged_read_compacted_between_pages_starts_over,
    a_prefix_beyond_one_response_loads_in_pages,
);

/// The memory store refuses a response over 4 MiB by default, as an etcd client does unless
/// it raised its limit, so tests meet the wall too.
#[tokio::test(start_paused = true)]
async fn memory_refuses_a_response_over_4_mib() {
    let limit = apportion_store::validate::DEFAULT_MAX_RESPONSE_BYTES;
    assert_eq!(limit, 4 << 20);
    conformance::cases::an_unpaged_read_beyond_the_limit_fails(MemoryStore::new(), limit).await;
}

/// An etcd client with gRPC's default limit (4 MiB) meets the wall on an unpaged read and
/// reports it as `ResponseTooLarge`; paged reads get past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_with_a_4_mib_limit_refuses_a_larger_response() {
    let etcd = TestEtcd::start();
    let limit = 4 << 20;
    let store = EtcdStore::connect(&[etcd.endpoint()])
        .await
        .unwrap()
        .with_max_response_bytes(limit);
    conformance::cases::an_unpaged_read_beyond_the_limit_fails(store, limit).await;
}

/// By default the etcd store accepts responses as large as etcd sends, so even an unpaged
/// read of more than 4 MiB succeeds (watches catching up on many revisions need this).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_accepts_responses_over_4_mib_by_default() {
    use apportion_store::{KeyRange, Store};
    let etcd = TestEtcd::start();
    let store = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
    conformance::cases::fill_beyond_one_response(&store).await;
    let read = store.range(KeyRange::prefix("big/")).await.unwrap();
    assert_eq!(read.kvs.len(), conformance::cases::LARGE_VALUES);
}

/// A memory store's limit is a setting of the handle.
#[tokio::test(start_paused = true)]
async fn memory_response_limit_is_configurable() {
    use apportion_store::{KeyRange, Store, StoreError};
    let store = MemoryStore::new().with_max_response_bytes(100);
    assert_eq!(store.max_response_bytes(), 100);
    assert_eq!(
        store.connect().max_response_bytes(),
        100,
        "a new connection keeps it"
    );
    store.put("k", vec![b'v'; 200], None).await.unwrap();
    let err = store.range(KeyRange::key("k")).await.unwrap_err();
    assert!(
        matches!(err, StoreError::ResponseTooLarge { limit: 100, size } if size > 200),
        "{err}"
    );
}

/// A watch follows the store across an etcd restart, resuming after the last revision it
/// delivered: nothing is lost and nothing is repeated. (The memory store has no connection
/// to lose, so this case is etcd's alone.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_watch_resumes_after_restart() {
    use apportion_store::{KeyRange, Store};
    let mut etcd = TestEtcd::start();
    let store = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
    let mut watch = store.watch(KeyRange::prefix("w/"), 0).await.unwrap();
    store.put("w/1", "a", None).await.unwrap();
    etcd.restart();
    let mut written = None;
    for _ in 0..100 {
        match store.put("w/2", "b", None).await {
            Ok(rev) => {
                written = Some(rev);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    let written = written.expect("etcd did not come back after restart");
    let keys = conformance::cases::collect_until(&mut watch, written).await;
    assert_eq!(keys, vec!["w/1".to_string(), "w/2".to_string()]);
}

/// With several endpoints, any live one serves: the first endpoint is dead (nothing listens
/// there), yet every kind of call succeeds, every time, on the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_serves_through_any_live_endpoint() {
    use apportion_store::{KeyRange, Store};
    let etcd = TestEtcd::start();
    let dead = format!("http://127.0.0.1:{}", apportion_testkit::free_port());
    let store = EtcdStore::connect(&[dead, etcd.endpoint()]).await.unwrap();
    let mut watch = store.watch(KeyRange::prefix("f/"), 0).await.unwrap();
    let lease = store.grant(10).await.unwrap();
    let keep = store.keep_alive(lease).await.unwrap();
    let mut last = 0;
    for i in 0..10 {
        last = store
            .put(format!("f/{i}"), "v", Some(lease.id))
            .await
            .unwrap();
        assert_eq!(
            store.range(KeyRange::prefix("f/")).await.unwrap().kvs.len(),
            i + 1
        );
        assert!(store.time_to_live(lease.id).await.unwrap().is_some());
    }
    let keys = conformance::cases::collect_until(&mut watch, last).await;
    assert_eq!(keys.len(), 10);
    assert!(!keep.status().expired);
    store.revoke(lease.id).await.unwrap();
}

/// A three-node cluster with one node down serves every call through the other two,
/// whichever node is down (etcd-client alone sent a share of the calls to the dead one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_cluster_with_a_node_down_serves_every_call() {
    use apportion_store::{KeyRange, Store};
    let mut nodes = TestEtcd::start_cluster(3);
    let endpoints: Vec<String> = nodes.iter().map(TestEtcd::endpoint).collect();
    for down in 0..3 {
        nodes[down].kill();
        // The calls go on once the other two have a leader (an election if `down` led).
        let elected = std::time::Instant::now();
        while !nodes.iter().any(|n| n.is_running() && n.is_leader()) {
            assert!(
                elected.elapsed().as_secs() < 20,
                "no leader after a node went down"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let store = EtcdStore::connect(&endpoints).await.unwrap();
        let lease = store.grant(10).await.unwrap();
        let _keep = store.keep_alive(lease).await.unwrap();
        for i in 0..5 {
            let key = format!("n/{down}/{i}");
            store.put(key.as_str(), "v", Some(lease.id)).await.unwrap();
            assert_eq!(store.range(KeyRange::key(key)).await.unwrap().kvs.len(), 1);
        }
        store.revoke(lease.id).await.unwrap();
        nodes[down].restart();
    }
}

/// The op limit is a setting: a store built with a small one refuses what exceeds it.
#[tokio::test]
async fn memory_op_limit_is_configurable() {
    use apportion_store::{Op, Store, StoreError, Txn};
    let store = MemoryStore::with_max_txn_ops(3);
    let ops = (0..4).map(|i| Op::put(format!("k{i}"), "v"));
    let err = store.txn(Txn::new().and_then(ops)).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::TooManyOps {
                ops: 4,
                limit: 3,
                ..
            }
        ),
        "{err}"
    );
}

/// The memory store keeps a bounded history, compacting whole old revisions away: a watch
/// from a revision still kept replays from there, one from before fails with `Compacted`.
#[tokio::test]
async fn memory_history_is_bounded() {
    use apportion_store::{KeyRange, Op, RangeOptions, Store, StoreError, Txn};
    let store = MemoryStore::new().with_history_limit(4);
    let mut revisions = Vec::new();
    for i in 0..5 {
        // Two changes per revision: the limit keeps whole revisions.
        let puts = [
            Op::put(format!("h/a{i}"), "v"),
            Op::put(format!("h/b{i}"), "v"),
        ];
        revisions.push(store.txn(Txn::new().and_then(puts)).await.unwrap().revision);
    }
    // The newest two revisions (four changes) are kept.
    let kept = revisions[3];
    let mut watch = store.watch(KeyRange::prefix("h/"), kept).await.unwrap();
    let batch = watch.next().await.unwrap().unwrap();
    assert_eq!(batch.events.len(), 4);
    assert_eq!(batch.events[0].kv.mod_revision, kept);
    let mut old = store
        .watch(KeyRange::prefix("h/"), revisions[2])
        .await
        .unwrap();
    let err = old.next().await.unwrap().unwrap_err();
    assert!(
        matches!(err, StoreError::Compacted { compacted, .. } if compacted == kept),
        "{err}"
    );
    // Reading at a kept revision still works; before it, it fails the same way.
    let at = |revision| RangeOptions {
        revision,
        ..RangeOptions::default()
    };
    let read = store
        .range_with(KeyRange::prefix("h/"), at(kept))
        .await
        .unwrap();
    assert_eq!(read.kvs.len(), 8);
    let err = store
        .range_with(KeyRange::prefix("h/"), at(revisions[2]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err}");
}

/// A cut connection fails calls and stops renewals, holds back watch batches, and gives
/// them all once it is restored; other handles are unaffected.
#[tokio::test(start_paused = true)]
async fn memory_connections_can_be_cut_and_restored() {
    use apportion_store::{KeyRange, Store, StoreError};
    let store = MemoryStore::new();
    let cut = store.connect();
    let lease = cut.grant(3).await.unwrap();
    let keep = cut.keep_alive(lease).await.unwrap();
    let mut watch = cut.watch(KeyRange::prefix("k/"), 0).await.unwrap();
    cut.set_reachable(false);
    assert!(matches!(
        cut.put("k/x", "v", None).await,
        Err(StoreError::Unavailable(_))
    ));
    let written = store.put("k/1", "v", None).await.unwrap();
    let held = tokio::time::timeout(std::time::Duration::from_secs(1), watch.next()).await;
    assert!(held.is_err(), "a cut connection delivers nothing");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let status = keep.status();
    assert!(
        status.error.is_some(),
        "renewals fail while cut: {status:?}"
    );
    cut.set_reachable(true);
    let batch = watch.next().await.unwrap().unwrap();
    assert_eq!(batch.revision, written);
    assert!(cut.put("k/y", "v", None).await.is_ok());
}

/// Found by the simulation, which compacted the store while members were cut off and never
/// saw a key space reload: a watch held back across a compaction of the revisions it has
/// not delivered ends with `Compacted` once the connection returns, as a re-opened etcd
/// watch would; one with nothing held back goes on.
#[tokio::test(start_paused = true)]
async fn memory_connection_cut_across_a_compaction_reports_it() {
    use apportion_store::{KeyRange, Store, StoreError};
    let store = MemoryStore::new();
    let cut = store.connect();
    let mut behind = cut.watch(KeyRange::prefix("k/"), 0).await.unwrap();
    let mut idle = cut.watch(KeyRange::prefix("other/"), 0).await.unwrap();
    cut.set_reachable(false);
    store.put("k/1", "v", None).await.unwrap();
    let last = store.put("k/2", "v", None).await.unwrap();
    store.compact(last).await.unwrap();
    cut.set_reachable(true);
    assert!(matches!(
        behind.next().await,
        Some(Err(StoreError::Compacted { compacted, .. })) if compacted == last
    ));
    let next = store.put("other/1", "v", None).await.unwrap();
    assert_eq!(idle.next().await.unwrap().unwrap().revision, next);
}
