//! The cases of the conformance suite, each generic over the store.

use std::time::Duration;

use apportion_store::*;

use crate::support::{Hook, Hooked};

const SECOND: Duration = Duration::from_secs(1);

async fn get<S: Store>(store: &S, key: &str) -> Option<KeyValue> {
    store.range(KeyRange::key(key)).await.unwrap().kvs.pop()
}

fn keys(kvs: &[KeyValue]) -> Vec<String> {
    kvs.iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect()
}

/// Reads batches until one reaches `revision`; returns every event in order.
pub async fn events_until(watch: &mut Watch, revision: Revision) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        let batch = tokio::time::timeout(20 * SECOND, watch.next())
            .await
            .expect("watch delivered nothing for 20 s")
            .expect("watch ended")
            .expect("watch failed");
        events.extend(batch.events);
        if batch.revision >= revision {
            return events;
        }
    }
}

/// The keys of the events delivered up to `revision`.
pub async fn collect_until(watch: &mut Watch, revision: Revision) -> Vec<String> {
    let events = events_until(watch, revision).await;
    events
        .iter()
        .map(|e| String::from_utf8_lossy(&e.kv.key).into_owned())
        .collect()
}

/// Polls until `key` is gone; panics after `limit`.
async fn wait_gone<S: Store>(store: &S, key: &str, limit: Duration) {
    let start = tokio::time::Instant::now();
    while get(store, key).await.is_some() {
        assert!(
            start.elapsed() < limit,
            "{key} still present after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn put_sets_revisions_and_versions<S: Store>(store: S) {
    let r1 = store.put("k", "v1", None).await.unwrap();
    let kv = get(&store, "k").await.unwrap();
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (r1, r1, 1)
    );
    assert_eq!(kv.value, b"v1");
    let r2 = store.put("k", "v2", None).await.unwrap();
    assert_eq!(r2, r1 + 1);
    let kv = get(&store, "k").await.unwrap();
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (r1, r2, 2)
    );
    assert_eq!(store.range(KeyRange::key("k")).await.unwrap().revision, r2);
}

pub async fn revision_is_the_last_writes<S: Store>(store: S) {
    // A fresh store is at revision 1, as a fresh etcd.
    assert_eq!(store.revision().await.unwrap(), 1);
    let written = store.put("k", "v", None).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), written);
    // Neither a read, nor a transaction whose guard fails, nor a delete of nothing writes.
    store.range(KeyRange::key("k")).await.unwrap();
    let refused = store
        .txn(
            Txn::new()
                .when([Compare::version("k", CompareOp::Equal, 0)])
                .and_then([Op::put("k", "w")]),
        )
        .await
        .unwrap();
    assert!(!refused.succeeded);
    store.delete(KeyRange::key("missing")).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), written);
    let (_, deleted) = store.delete(KeyRange::key("k")).await.unwrap();
    assert_eq!(deleted, written + 1);
    assert_eq!(store.revision().await.unwrap(), deleted);
}

pub async fn delete_removes_and_recreate_starts_over<S: Store>(store: S) {
    let r1 = store.put("k", "v", None).await.unwrap();
    let (deleted, r2) = store.delete(KeyRange::key("k")).await.unwrap();
    assert_eq!((deleted, r2), (1, r1 + 1));
    assert!(get(&store, "k").await.is_none());
    let r3 = store.put("k", "w", None).await.unwrap();
    let kv = get(&store, "k").await.unwrap();
    assert_eq!((kv.create_revision, kv.version), (r3, 1));
}

pub async fn delete_of_missing_key_writes_nothing<S: Store>(store: S) {
    let r1 = store.put("other", "v", None).await.unwrap();
    let (deleted, r2) = store.delete(KeyRange::key("missing")).await.unwrap();
    assert_eq!((deleted, r2), (0, r1));
}

pub async fn prefix_range_is_sorted_and_bounded<S: Store>(store: S) {
    for k in ["a/2", "b", "a/10", "ab", "a/1", "a"] {
        store.put(k, k, None).await.unwrap();
    }
    let range = store.range(KeyRange::prefix("a/")).await.unwrap();
    assert_eq!(keys(&range.kvs), ["a/1", "a/10", "a/2"]);
    assert!(store
        .range(KeyRange::prefix("zz"))
        .await
        .unwrap()
        .kvs
        .is_empty());
}

pub async fn prefix_delete_removes_only_the_prefix<S: Store>(store: S) {
    for k in ["p/1", "p/2", "p", "q/1"] {
        store.put(k, "v", None).await.unwrap();
    }
    let (deleted, _) = store.delete(KeyRange::prefix("p/")).await.unwrap();
    assert_eq!(deleted, 2);
    let all = store.range(KeyRange::prefix("")).await.unwrap();
    assert_eq!(keys(&all.kvs), ["p", "q/1"]);
}

/// Runs a guarded txn that writes `then` on success and `else` on failure; returns whether it
/// succeeded, after checking the right branch ran.
async fn guarded<S: Store>(store: &S, compare: Compare) -> bool {
    let result = store
        .txn(
            Txn::new()
                .when([compare])
                .and_then([Op::put("branch", "then")])
                .or_else([Op::put("branch", "else")]),
        )
        .await
        .unwrap();
    let branch = get(store, "branch").await.unwrap().value;
    let expected: &[u8] = if result.succeeded { b"then" } else { b"else" };
    assert_eq!(branch, expected);
    result.succeeded
}

pub async fn txn_compares_value<S: Store>(store: S) {
    store.put("k", "m", None).await.unwrap();
    use CompareOp::*;
    assert!(guarded(&store, Compare::value("k", Equal, "m")).await);
    assert!(!guarded(&store, Compare::value("k", Equal, "x")).await);
    assert!(guarded(&store, Compare::value("k", NotEqual, "x")).await);
    assert!(!guarded(&store, Compare::value("k", NotEqual, "m")).await);
    assert!(guarded(&store, Compare::value("k", Less, "n")).await);
    assert!(!guarded(&store, Compare::value("k", Less, "m")).await);
    assert!(guarded(&store, Compare::value("k", Greater, "l")).await);
    assert!(!guarded(&store, Compare::value("k", Greater, "z")).await);
}

/// Checks the four relations of a numeric compare around the key's actual value `actual`.
async fn numeric<S: Store>(store: &S, make: impl Fn(CompareOp, i64) -> Compare, actual: i64) {
    use CompareOp::*;
    assert!(guarded(store, make(Equal, actual)).await);
    assert!(!guarded(store, make(Equal, actual + 1)).await);
    assert!(guarded(store, make(NotEqual, actual + 1)).await);
    assert!(!guarded(store, make(NotEqual, actual)).await);
    assert!(guarded(store, make(Less, actual + 1)).await);
    assert!(!guarded(store, make(Less, actual)).await);
    assert!(guarded(store, make(Greater, actual - 1)).await);
    assert!(!guarded(store, make(Greater, actual)).await);
}

pub async fn txn_compares_version<S: Store>(store: S) {
    store.put("k", "1", None).await.unwrap();
    store.put("k", "2", None).await.unwrap();
    numeric(&store, |op, n| Compare::version("k", op, n), 2).await;
}

pub async fn txn_compares_create_revision<S: Store>(store: S) {
    let created = store.put("k", "1", None).await.unwrap();
    store.put("k", "2", None).await.unwrap();
    numeric(
        &store,
        |op, n| Compare::create_revision("k", op, n),
        created,
    )
    .await;
}

pub async fn txn_compares_mod_revision<S: Store>(store: S) {
    store.put("k", "1", None).await.unwrap();
    let modified = store.put("k", "2", None).await.unwrap();
    numeric(&store, |op, n| Compare::mod_revision("k", op, n), modified).await;
}

pub async fn txn_compares_lease<S: Store>(store: S) {
    let lease = store.grant(30).await.unwrap();
    store.put("k", "1", Some(lease.id)).await.unwrap();
    // Leases compare by id, as etcd compares them.
    let compare = |op, n| Compare::lease("k", op, LeaseId::new(n));
    numeric(&store, compare, lease.id.get()).await;
}

pub async fn txn_compares_on_missing_key<S: Store>(store: S) {
    use CompareOp::*;
    assert!(guarded(&store, Compare::version("absent", Equal, 0)).await);
    assert!(guarded(&store, Compare::create_revision("absent", Equal, 0)).await);
    assert!(guarded(&store, Compare::mod_revision("absent", Equal, 0)).await);
    assert!(guarded(&store, Compare::lease("absent", Equal, None)).await);
    // A missing key has no value: every value compare fails, even "not equal".
    assert!(!guarded(&store, Compare::value("absent", Equal, "")).await);
    assert!(!guarded(&store, Compare::value("absent", NotEqual, "x")).await);
}

pub async fn txn_compares_over_a_prefix<S: Store>(store: S) {
    use CompareOp::*;
    // Over an empty prefix, a compare is judged as for one absent key.
    assert!(guarded(&store, Compare::mod_revision("g/", Less, 1).over_prefix()).await);
    assert!(guarded(&store, Compare::version("g/", Equal, 0).over_prefix()).await);
    let first = store.put("g/a", "1", None).await.unwrap();
    let second = store.put("g/b", "2", None).await.unwrap();
    store.put("h", "outside", None).await.unwrap();
    // Every key under the prefix must satisfy it.
    assert!(
        guarded(
            &store,
            Compare::mod_revision("g/", Less, second + 1).over_prefix()
        )
        .await
    );
    assert!(
        !guarded(
            &store,
            Compare::mod_revision("g/", Less, second).over_prefix()
        )
        .await
    );
    assert!(
        guarded(
            &store,
            Compare::mod_revision("g/", Greater, first - 1).over_prefix()
        )
        .await
    );
    assert!(!guarded(&store, Compare::value("g/", Equal, "1").over_prefix()).await);
    assert!(guarded(&store, Compare::version("g/", Equal, 1).over_prefix()).await);
}

pub async fn txn_takes_one_revision<S: Store>(store: S) {
    let before = store.put("d", "v", None).await.unwrap();
    let result = store
        .txn(Txn::new().and_then([
            Op::put("a", "1"),
            Op::put("b", "2"),
            Op::Delete(KeyRange::key("d")),
        ]))
        .await
        .unwrap();
    assert!(result.succeeded);
    assert_eq!(result.revision, before + 1);
    assert_eq!(result.results[2], OpResult::Delete { deleted: 1 });
    for k in ["a", "b"] {
        assert_eq!(get(&store, k).await.unwrap().mod_revision, before + 1);
    }
    assert!(get(&store, "d").await.is_none());
    // A transaction that only reads leaves the revision alone.
    let read = store
        .txn(Txn::new().and_then([Op::Range(KeyRange::key("a"))]))
        .await
        .unwrap();
    assert_eq!(read.revision, before + 1);
}

pub async fn txn_range_sees_earlier_ops<S: Store>(store: S) {
    store.put("r/old", "x", None).await.unwrap();
    let result = store
        .txn(Txn::new().and_then([
            Op::put("r/new", "y"),
            Op::Delete(KeyRange::key("r/old")),
            Op::Range(KeyRange::prefix("r/")),
        ]))
        .await
        .unwrap();
    match &result.results[2] {
        OpResult::Range(kvs) => assert_eq!(keys(kvs), ["r/new"]),
        other => panic!("expected a range result, got {other:?}"),
    }
}

pub async fn txn_op_limit_is_enforced<S: Store>(store: S) {
    let limit = store.max_txn_ops();
    assert_eq!(limit, 128, "the default limit is etcd's");
    let puts = |n: usize| (0..n).map(|i| Op::put(format!("k{i:04}"), "v"));
    let err = store
        .txn(Txn::new().and_then(puts(limit + 1)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::TooManyOps { ops, limit: l, .. } if ops == limit + 1 && l == limit),
        "{err}"
    );
    assert!(err.to_string().contains("129"), "{err}");
    let err = store
        .txn(Txn::new().or_else(puts(limit + 1)))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TooManyOps { .. }), "{err}");
    let ok = store.txn(Txn::new().and_then(puts(limit))).await.unwrap();
    assert!(ok.succeeded);
    let all = store.range(KeyRange::prefix("k")).await.unwrap();
    assert_eq!(all.kvs.len(), limit);
}

pub async fn txn_refuses_duplicate_keys<S: Store>(store: S) {
    let twice = Txn::new().and_then([Op::put("k", "1"), Op::put("k", "2")]);
    let err = store.txn(twice).await.unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidArgument(ref m) if m.contains("k")),
        "{err}"
    );
    let put_and_delete =
        Txn::new().and_then([Op::put("p/k", "1"), Op::Delete(KeyRange::prefix("p/"))]);
    assert!(matches!(
        store.txn(put_and_delete).await.unwrap_err(),
        StoreError::InvalidArgument(_)
    ));
    assert!(
        get(&store, "k").await.is_none(),
        "a refused txn writes nothing"
    );
}

pub async fn bad_arguments_are_refused<S: Store>(store: S) {
    let err = store.put("", "v", None).await.unwrap_err();
    assert_eq!(err, StoreError::InvalidArgument("key is empty".into()));
    assert!(matches!(
        store.range(KeyRange::key("")).await.unwrap_err(),
        StoreError::InvalidArgument(_)
    ));
    for ttl in [0, -5] {
        let err = store.grant(ttl).await.unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidArgument(ref m) if m.contains(&ttl.to_string())),
            "{err}"
        );
    }
    let unknown = LeaseId::new(0x7777).unwrap();
    let err = store.revoke(unknown).await.unwrap_err();
    assert_eq!(err, StoreError::LeaseNotFound(unknown));
}

pub async fn put_with_unknown_lease_is_refused<S: Store>(store: S) {
    let unknown = LeaseId::new(0x7777).unwrap();
    let err = store.put("k", "v", Some(unknown)).await.unwrap_err();
    assert_eq!(err, StoreError::LeaseNotFound(unknown));
    assert!(get(&store, "k").await.is_none());
}

pub async fn put_without_lease_detaches_key<S: Store>(store: S) {
    let lease = store.grant(30).await.unwrap();
    store.put("k", "1", Some(lease.id)).await.unwrap();
    assert_eq!(get(&store, "k").await.unwrap().lease, Some(lease.id));
    store.put("k", "2", None).await.unwrap();
    assert_eq!(get(&store, "k").await.unwrap().lease, None);
    store.revoke(lease.id).await.unwrap();
    assert!(
        get(&store, "k").await.is_some(),
        "a detached key outlives its old lease"
    );
}

pub async fn watch_replays_history_in_order<S: Store>(store: S) {
    let first = store.put("h/a", "1", None).await.unwrap();
    store.put("h/b", "2", None).await.unwrap();
    store.put("h/a", "3", None).await.unwrap();
    let last = store.delete(KeyRange::key("h/b")).await.unwrap().1;
    let mut watch = store.watch(KeyRange::prefix("h/"), first).await.unwrap();
    let events = events_until(&mut watch, last).await;
    let seen: Vec<(EventKind, String, Revision)> = events
        .iter()
        .map(|e| {
            (
                e.kind,
                String::from_utf8_lossy(&e.kv.key).into_owned(),
                e.kv.mod_revision,
            )
        })
        .collect();
    use EventKind::*;
    assert_eq!(
        seen,
        [
            (Put, "h/a".into(), first),
            (Put, "h/b".into(), first + 1),
            (Put, "h/a".into(), first + 2),
            (Delete, "h/b".into(), first + 3),
        ]
    );
    assert_eq!(events[2].kv.version, 2);
    // Starting in the middle skips what came before.
    let mut later = store
        .watch(KeyRange::prefix("h/"), first + 2)
        .await
        .unwrap();
    assert_eq!(collect_until(&mut later, last).await, ["h/a", "h/b"]);
}

pub async fn watch_reports_deletes_at_their_revision<S: Store>(store: S) {
    let mut watch = store.watch(KeyRange::prefix("d/"), 0).await.unwrap();
    store.put("d/k", "old", None).await.unwrap();
    let deleted = store.delete(KeyRange::key("d/k")).await.unwrap().1;
    let events = events_until(&mut watch, deleted).await;
    assert_eq!(events.len(), 2);
    let delete = &events[1];
    assert_eq!(delete.kind, EventKind::Delete);
    let expected = KeyValue {
        key: b"d/k".to_vec(),
        mod_revision: deleted,
        ..KeyValue::default()
    };
    assert_eq!(delete.kv, expected);
}

pub async fn watch_from_now_sees_only_later_changes<S: Store>(store: S) {
    store.put("n/before", "v", None).await.unwrap();
    let mut watch = store.watch(KeyRange::prefix("n/"), 0).await.unwrap();
    let after = store.put("n/after", "v", None).await.unwrap();
    assert_eq!(collect_until(&mut watch, after).await, ["n/after"]);
}

pub async fn watch_filters_by_prefix<S: Store>(store: S) {
    let mut watch = store.watch(KeyRange::prefix("in/"), 0).await.unwrap();
    store.put("out/1", "v", None).await.unwrap();
    store.put("in", "v", None).await.unwrap();
    let last = store.put("in/1", "v", None).await.unwrap();
    assert_eq!(collect_until(&mut watch, last).await, ["in/1"]);
    let mut single = store.watch(KeyRange::key("in/1"), 0).await.unwrap();
    store.put("in/2", "v", None).await.unwrap();
    let last = store.put("in/1", "w", None).await.unwrap();
    assert_eq!(collect_until(&mut single, last).await, ["in/1"]);
}

pub async fn watch_events_of_one_txn_share_a_revision<S: Store>(store: S) {
    let mut watch = store.watch(KeyRange::prefix("t/"), 0).await.unwrap();
    let result = store
        .txn(Txn::new().and_then([Op::put("t/1", "a"), Op::put("t/2", "b")]))
        .await
        .unwrap();
    let events = events_until(&mut watch, result.revision).await;
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.kv.mod_revision == result.revision));
}

pub async fn watch_from_compacted_revision_fails<S: Store>(store: S) {
    let first = store.put("c/k", "1", None).await.unwrap();
    store.put("c/k", "2", None).await.unwrap();
    let last = store.put("c/k", "3", None).await.unwrap();
    store.compact(last).await.unwrap();
    let mut watch = store.watch(KeyRange::prefix("c/"), first).await.unwrap();
    let outcome = tokio::time::timeout(20 * SECOND, watch.next())
        .await
        .expect("no answer from a watch on a compacted revision");
    match outcome {
        Some(Err(StoreError::Compacted {
            requested,
            compacted,
        })) => {
            assert_eq!(requested, first);
            assert_eq!(compacted, last);
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    // From the compaction revision on, history is still there.
    let mut watch = store.watch(KeyRange::prefix("c/"), last).await.unwrap();
    assert_eq!(collect_until(&mut watch, last).await, ["c/k"]);
}

pub async fn watch_progress_covers_writes_elsewhere<S: Store>(store: S) {
    let mut watch = store.watch(KeyRange::prefix("mine/"), 0).await.unwrap();
    let elsewhere = store.put("theirs/k", "v", None).await.unwrap();
    let start = tokio::time::Instant::now();
    loop {
        assert!(
            start.elapsed() < 20 * SECOND,
            "no progress batch reached {elsewhere}"
        );
        watch.request_progress();
        if let Ok(batch) = tokio::time::timeout(SECOND / 2, watch.next()).await {
            let batch = batch.expect("watch ended").expect("watch failed");
            assert!(batch.events.is_empty(), "nothing under the prefix changed");
            if batch.revision >= elsewhere {
                return;
            }
        }
    }
}

pub async fn compact_refuses_bad_revisions<S: Store>(store: S) {
    let rev = store.put("k", "v", None).await.unwrap();
    let err = store.compact(rev + 10).await.unwrap_err();
    assert_eq!(
        err,
        StoreError::FutureRevision {
            requested: rev + 10,
            current: rev
        }
    );
    store.compact(rev).await.unwrap();
    assert!(matches!(
        store.compact(rev).await.unwrap_err(),
        StoreError::Compacted { requested, .. } if requested == rev
    ));
}

pub async fn revoke_deletes_keys_in_one_revision<S: Store>(store: S) {
    let lease = store.grant(60).await.unwrap();
    store.put("l/a", "1", Some(lease.id)).await.unwrap();
    let before = store.put("l/b", "2", Some(lease.id)).await.unwrap();
    store.put("l/c", "3", None).await.unwrap();
    let mut watch = store.watch(KeyRange::prefix("l/"), 0).await.unwrap();
    store.revoke(lease.id).await.unwrap();
    let range = store.range(KeyRange::prefix("l/")).await.unwrap();
    assert_eq!(keys(&range.kvs), ["l/c"]);
    let revoked = range.revision;
    assert_eq!(revoked, before + 2);
    let events = events_until(&mut watch, revoked).await;
    assert_eq!(events.len(), 2);
    assert!(events
        .iter()
        .all(|e| e.kind == EventKind::Delete && e.kv.mod_revision == revoked));
    let err = store.put("l/d", "4", Some(lease.id)).await.unwrap_err();
    assert_eq!(err, StoreError::LeaseNotFound(lease.id));
}

pub async fn lease_expiry_deletes_keys_and_notifies<S: Store>(store: S) {
    let lease = store.grant(1).await.unwrap();
    assert!(lease.ttl_secs >= 1);
    let written = store.put("e/k", "v", Some(lease.id)).await.unwrap();
    let mut watch = store
        .watch(KeyRange::prefix("e/"), written + 1)
        .await
        .unwrap();
    wait_gone(&store, "e/k", 10 * SECOND).await;
    let batch = tokio::time::timeout(10 * SECOND, watch.next())
        .await
        .expect("no delete event after expiry")
        .unwrap()
        .unwrap();
    assert_eq!(batch.events.len(), 1);
    assert_eq!(batch.events[0].kind, EventKind::Delete);
    assert_eq!(
        store.revoke(lease.id).await.unwrap_err(),
        StoreError::LeaseNotFound(lease.id)
    );
}

pub async fn keep_alive_keeps_keys<S: Store>(store: S) {
    let lease = store.grant(1).await.unwrap();
    store.put("ka/k", "v", Some(lease.id)).await.unwrap();
    let keep = store.keep_alive(lease).await.unwrap();
    tokio::time::sleep(4 * SECOND).await;
    assert!(
        get(&store, "ka/k").await.is_some(),
        "kept-alive key expired"
    );
    let status = keep.status();
    assert!(!status.expired);
    assert!(
        status.last_ack.elapsed() < 2 * SECOND,
        "stale ack: {status:?}"
    );
    assert!(status.deadline() > tokio::time::Instant::now());
    drop(keep);
    wait_gone(&store, "ka/k", 10 * SECOND).await;
}

pub async fn keep_alive_reports_lost_lease<S: Store>(store: S) {
    let lease = store.grant(3).await.unwrap();
    let keep = store.keep_alive(lease).await.unwrap();
    let mut status = keep.subscribe();
    store.revoke(lease.id).await.unwrap();
    tokio::time::timeout(10 * SECOND, status.wait_for(|s| s.expired))
        .await
        .expect("keep-alive never reported the revoked lease")
        .unwrap();
    let err = store.keep_alive(lease).await.unwrap_err();
    assert_eq!(err, StoreError::LeaseNotFound(lease.id));
}

pub async fn concurrent_writers_lose_nothing<S: Store>(store: S) {
    const WRITERS: usize = 8;
    const INCREMENTS: usize = 20;
    store.put("counter", "0", None).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut revisions = Vec::new();
            let mut done = 0;
            while done < INCREMENTS {
                let kv = get(&store, "counter").await.unwrap();
                let n: usize = String::from_utf8_lossy(&kv.value).parse().unwrap();
                let result = store
                    .txn(
                        Txn::new()
                            .when([Compare::mod_revision(
                                "counter",
                                CompareOp::Equal,
                                kv.mod_revision,
                            )])
                            .and_then([
                                Op::put("counter", (n + 1).to_string()),
                                Op::put(format!("log/{w}/{done}"), "x"),
                            ]),
                    )
                    .await
                    .unwrap();
                if result.succeeded {
                    revisions.push(result.revision);
                    done += 1;
                }
                tokio::task::yield_now().await;
            }
            revisions
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let revisions = task.await.unwrap();
        assert!(
            revisions.windows(2).all(|w| w[0] < w[1]),
            "one writer's revisions must increase"
        );
        all.extend(revisions);
    }
    let count = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), count, "two writes shared a revision");
    let counter = get(&store, "counter").await.unwrap();
    assert_eq!(
        counter.value,
        (WRITERS * INCREMENTS).to_string().into_bytes()
    );
    let log = store.range(KeyRange::prefix("log/")).await.unwrap();
    assert_eq!(log.kvs.len(), WRITERS * INCREMENTS);
}

pub async fn time_to_live_counts_down_until_the_lease_ends<S: Store>(store: S) {
    let lease = store.grant(30).await.unwrap();
    let left = store.time_to_live(lease.id).await.unwrap();
    assert!(
        left.is_some_and(|l| l > 27 * SECOND && l <= 30 * SECOND),
        "a new 30 s lease has {left:?} left"
    );
    tokio::time::sleep(3 * SECOND).await;
    let later = store.time_to_live(lease.id).await.unwrap();
    assert!(
        later.is_some_and(|l| l < left.unwrap()),
        "{later:?} left 3 s after {left:?}"
    );
    store.revoke(lease.id).await.unwrap();
    assert_eq!(store.time_to_live(lease.id).await.unwrap(), None);
    let unknown = LeaseId::new(0x5eed_0001).unwrap();
    assert_eq!(store.time_to_live(unknown).await.unwrap(), None);
}

/// Writes `count` keys `{prefix}{i:05}` holding `value`, in as few transactions as allowed;
/// returns the revision of the last.
async fn fill<S: Store>(store: &S, prefix: &str, count: usize, value: &[u8]) -> Revision {
    let keys: Vec<String> = (0..count).map(|i| format!("{prefix}{i:05}")).collect();
    let mut revision = 0;
    for batch in keys.chunks(store.max_txn_ops()) {
        let puts = batch.iter().map(|k| Op::put(k.as_str(), value));
        revision = store.txn(Txn::new().and_then(puts)).await.unwrap().revision;
    }
    revision
}

/// One page of `range`: at most `limit` keys from `from` on, at `revision`.
async fn page<S: Store>(
    store: &S,
    range: &str,
    limit: usize,
    from: Option<&str>,
    revision: Revision,
) -> Result<RangeResult> {
    let options = RangeOptions {
        limit,
        from: from.map(|f| f.as_bytes().to_vec()),
        revision,
    };
    store.range_with(KeyRange::prefix(range), options).await
}

pub async fn paged_reads_see_one_revision_once_in_order<S: Store>(store: S) {
    store.put("o", "outside, before", None).await.unwrap();
    store.put("q/", "outside, after", None).await.unwrap();
    let written = fill(&store, "p/", 25, b"first").await;
    let first = page(&store, "p/", 10, None, 0).await.unwrap();
    assert_eq!((first.kvs.len(), first.more), (10, true));
    assert_eq!(first.revision, written);
    // Writes after the first page change nothing the later pages show.
    store.put("p/00012", "second", None).await.unwrap();
    store.delete(KeyRange::key("p/00015")).await.unwrap();
    let now = store.put("p/00030", "new", None).await.unwrap();
    let second = page(&store, "p/", 10, Some("p/00009\0"), written)
        .await
        .unwrap();
    assert_eq!((second.kvs.len(), second.more), (10, true));
    assert_eq!(second.revision, now, "a page reports the store's revision");
    let third = page(&store, "p/", 10, Some("p/00019\0"), written)
        .await
        .unwrap();
    assert_eq!((third.kvs.len(), third.more), (5, false));
    let pages: Vec<KeyValue> = [first.kvs, second.kvs, third.kvs].concat();
    let expected: Vec<String> = (0..25).map(|i| format!("p/{i:05}")).collect();
    assert_eq!(keys(&pages), expected);
    assert!(pages.iter().all(|kv| kv.value == b"first"));
    assert!(pages.iter().all(|kv| kv.mod_revision <= written));
    // A page that ends exactly at the last key has no more after it.
    let exact = page(&store, "p/", 6, Some("p/00019\0"), now).await.unwrap();
    assert_eq!((exact.kvs.len(), exact.more), (6, false));
    // A limit of 0 is no limit.
    let whole = page(&store, "p/", 0, None, 0).await.unwrap();
    assert_eq!((whole.kvs.len(), whole.more), (25, false));
    let all = store.range_all(KeyRange::prefix("p/")).await.unwrap();
    assert_eq!(all, whole);
}

pub async fn reads_at_a_past_revision_see_it<S: Store>(store: S) {
    let created = store.put("r/a", "1", None).await.unwrap();
    store.put("r/b", "1", None).await.unwrap();
    store.put("r/a", "2", None).await.unwrap();
    store.delete(KeyRange::key("r/b")).await.unwrap();
    let now = store.put("r/c", "1", None).await.unwrap();
    let then = page(&store, "r/", 0, None, created + 1).await.unwrap();
    assert_eq!(keys(&then.kvs), ["r/a", "r/b"]);
    assert_eq!(then.kvs[0].value, b"1");
    assert_eq!(then.kvs[0].version, 1);
    assert_eq!(then.revision, now);
    let single = store
        .range_with(
            KeyRange::key("r/a"),
            RangeOptions {
                revision: created,
                ..RangeOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(single.kvs[0].mod_revision, created);
}

pub async fn reads_at_a_compacted_or_future_revision_fail<S: Store>(store: S) {
    let old = store.put("c/a", "1", None).await.unwrap();
    let compacted = store.put("c/a", "2", None).await.unwrap();
    store.compact(compacted).await.unwrap();
    let err = page(&store, "c/", 0, None, old).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Compacted { requested, .. } if requested == old),
        "{err}"
    );
    let at_compaction = page(&store, "c/", 0, None, compacted).await.unwrap();
    assert_eq!(at_compaction.kvs[0].value, b"2");
    let err = page(&store, "c/", 0, None, compacted + 5)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::FutureRevision {
            requested: compacted + 5,
            current: compacted
        }
    );
}

pub async fn bad_read_options_are_refused<S: Store>(store: S) {
    let err = page(&store, "p/", 0, Some("q/1"), 0).await.unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidArgument(ref m) if m.contains("q/1")),
        "{err}"
    );
    let err = page(&store, "p/", 0, None, -1).await.unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidArgument(ref m) if m.contains("-1")),
        "{err}"
    );
}

/// A hook that, just before the second page of a paged read, writes a key and compacts the
/// store at that write, so the page's revision is gone.
#[derive(Clone, Default)]
struct CompactBetweenPages {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl<S: Store> Hook<S> for CompactBetweenPages {
    async fn before_read(&self, store: &S, options: &RangeOptions) {
        use std::sync::atomic::Ordering::SeqCst;
        if options.from.is_some() && !self.done.swap(true, SeqCst) {
            let written = store.put("m/zz", "late", None).await.unwrap();
            store.compact(written).await.unwrap();
        }
    }
}

pub async fn a_paged_read_compacted_between_pages_starts_over<S: Store>(store: S) {
    // More keys than one page holds, so the read takes two pages at least.
    fill(&store, "m/", 3_000, b"v").await;
    let store = Hooked {
        inner: store,
        hook: CompactBetweenPages::default(),
    };
    let read = store.range_all(KeyRange::prefix("m/")).await.unwrap();
    assert!(store.hook.done.load(std::sync::atomic::Ordering::SeqCst));
    let late = get(&store, "m/zz").await.unwrap();
    assert_eq!(
        read.revision, late.mod_revision,
        "read again after the write"
    );
    assert_eq!(read.kvs.len(), 3_001);
    assert_eq!(read.kvs.last(), Some(&late));
}

/// 45 values of 100 KB: about 4.5 MB under one prefix, more than a response may carry
/// (4 MiB) unless the client raised its limit.
pub const LARGE_VALUES: usize = 45;

/// Fills `big/` with [`LARGE_VALUES`] values of 100 KB; returns the last write's revision.
pub async fn fill_beyond_one_response<S: Store>(store: &S) -> Revision {
    let value = vec![b'x'; 100_000];
    let mut revision = 0;
    for i in 0..LARGE_VALUES {
        revision = store
            .put(format!("big/{i:02}"), value.as_slice(), None)
            .await
            .unwrap();
    }
    revision
}

/// Reads of more than a response may carry: paged, and by a key space, they return it all.
pub async fn a_prefix_beyond_one_response_loads_in_pages<S: Store>(store: S) {
    let written = fill_beyond_one_response(&store).await;
    let read = store.range_all(KeyRange::prefix("big/")).await.unwrap();
    assert_eq!(read.revision, written);
    assert_eq!(read.kvs.len(), LARGE_VALUES);
    assert!(read.kvs.iter().all(|kv| kv.value.len() == 100_000));
    let space = KeySpace::start(
        store,
        "big/",
        |kv: &KeyValue| Ok(Some(kv.value.len())),
        KeySpaceOptions::default(),
    )
    .await
    .unwrap();
    space.read(|snapshot| {
        assert_eq!(snapshot.revision(), written);
        assert_eq!(snapshot.entries().len(), LARGE_VALUES);
        assert!(snapshot.entries().values().all(|e| e.value == 100_000));
    });
}

/// An unpaged read of more than `limit` bytes fails, naming its size and the limit; the
/// paged read of the same prefix succeeds.
pub async fn an_unpaged_read_beyond_the_limit_fails<S: Store>(store: S, limit: usize) {
    fill_beyond_one_response(&store).await;
    let err = store.range(KeyRange::prefix("big/")).await.unwrap_err();
    match err {
        StoreError::ResponseTooLarge { size, limit: named } => {
            assert!(size > 4_500_000, "{err}");
            assert_eq!(named, limit as u64, "{err}");
        }
        other => panic!("expected ResponseTooLarge, got {other}"),
    }
    let read = store.range_all(KeyRange::prefix("big/")).await.unwrap();
    assert_eq!(read.kvs.len(), LARGE_VALUES);
}
