//! `KeySpace` on both backends: load then follow, reload after compaction, bad values
//! skipped while good ones apply, observers, and waiting for revisions outside the prefix.

#[macro_use]
mod support;

mod cases {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use apportion_store::*;
    use tokio::sync::Notify;

    use crate::support::{Hook, Hooked};

    /// Decodes values as integers; keys under `p/` only.
    fn decode(kv: &KeyValue) -> Result<Option<i64>, String> {
        if !kv.key.starts_with(b"p/") {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&kv.value);
        text.parse()
            .map(Some)
            .map_err(|e| format!("{text:?} is not an integer: {e}"))
    }

    fn values(ks: &KeySpace<i64>) -> Vec<(String, i64)> {
        ks.read(|s| {
            s.entries()
                .iter()
                .map(|(k, e)| (String::from_utf8_lossy(k).into_owned(), e.value))
                .collect()
        })
    }

    fn pairs(list: &[(&str, i64)]) -> Vec<(String, i64)> {
        list.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    async fn wait(ks: &KeySpace<i64>, revision: Revision) {
        tokio::time::timeout(Duration::from_secs(20), ks.wait_for_revision(revision))
            .await
            .expect("the key space did not reach the revision");
    }

    async fn start<S: Store>(store: S, options: KeySpaceOptions) -> KeySpace<i64> {
        KeySpace::start(store, "p/", decode, options).await.unwrap()
    }

    pub async fn loads_then_follows<S: Store>(store: S) {
        store.put("p/a", "1", None).await.unwrap();
        store.put("p/b", "2", None).await.unwrap();
        store.put("q/x", "9", None).await.unwrap();
        let ks = start(store.clone(), KeySpaceOptions::default()).await;
        assert_eq!(values(&ks), pairs(&[("p/a", 1), ("p/b", 2)]));
        store.put("p/c", "3", None).await.unwrap();
        store.put("p/a", "10", None).await.unwrap();
        let last = store.delete(KeyRange::key("p/b")).await.unwrap().1;
        wait(&ks, last).await;
        assert_eq!(values(&ks), pairs(&[("p/a", 10), ("p/c", 3)]));
        let entry = ks.read(|s| s.entries()[&b"p/a"[..]].clone());
        assert_eq!(entry.version, 2);
        assert_eq!(ks.revision(), last);
    }

    pub async fn reloads_after_compaction<S: Store>(store: S) {
        store.put("p/a", "1", None).await.unwrap();
        let gated = Gated {
            inner: store.clone(),
            hook: Gate::default(),
        };
        let ks = start(gated.clone(), KeySpaceOptions::default()).await;
        // While the key space cannot open its watch, history moves on and is compacted.
        store.put("p/b", "2", None).await.unwrap();
        store.delete(KeyRange::key("p/a")).await.unwrap();
        let last = store.put("p/c", "3", None).await.unwrap();
        store.compact(last).await.unwrap();
        gated.hook.open();
        wait(&ks, last).await;
        assert_eq!(values(&ks), pairs(&[("p/b", 2), ("p/c", 3)]));
        // And it keeps following after the reload.
        let next = store.put("p/d", "4", None).await.unwrap();
        wait(&ks, next).await;
        assert_eq!(values(&ks).len(), 3);
    }

    pub async fn bad_values_are_skipped<S: Store>(store: S) {
        store.put("p/a", "1", None).await.unwrap();
        store.put("p/bad", "garbage", None).await.unwrap();
        let ks = start(store.clone(), KeySpaceOptions::default()).await;
        assert_eq!(values(&ks), pairs(&[("p/a", 1)]));
        assert!(ks.read(|s| s.rejected()[&b"p/bad"[..]].contains("garbage")));
        // A bad write to a good key keeps the good value; the good ones around it apply.
        store.put("p/c", "3", None).await.unwrap();
        store.put("p/a", "oops", None).await.unwrap();
        let last = store.put("p/d", "4", None).await.unwrap();
        wait(&ks, last).await;
        assert_eq!(values(&ks), pairs(&[("p/a", 1), ("p/c", 3), ("p/d", 4)]));
        assert_eq!(ks.read(|s| s.rejected().len()), 2);
        // The kept value carries the key's metadata as the store has it, so a write guarded
        // on it (which repairs the key) succeeds rather than failing for ever.
        let entry = ks.read(|s| s.entries()[&b"p/a"[..]].clone());
        assert_eq!((entry.value, entry.version), (1, 2));
        let repair = Txn::new()
            .when([Compare::mod_revision(
                "p/a",
                CompareOp::Equal,
                entry.mod_revision,
            )])
            .and_then([Op::put("p/a", "5")]);
        assert!(store.txn(repair).await.unwrap().succeeded);
        // A good write clears the rejection, and so does a delete.
        let last = store.delete(KeyRange::key("p/bad")).await.unwrap().1;
        wait(&ks, last).await;
        assert_eq!(values(&ks)[0], ("p/a".to_string(), 5));
        assert!(ks.read(|s| s.rejected().is_empty()));
    }

    /// A one-shot reader sees what a key space loading the same keys sees.
    pub async fn a_read_is_mirrored_as_the_key_space_loads_it<S: Store>(store: S) {
        store.put("p/a", "1", None).await.unwrap();
        store.put("p/bad", "garbage", None).await.unwrap();
        store.put("q/x", "9", None).await.unwrap();
        let ks = start(store.clone(), KeySpaceOptions::default()).await;
        let read = store.range_all(KeyRange::prefix("p/")).await.unwrap();
        let once = Snapshot::of_read(&read, decode);
        let parts = |s: &Snapshot<i64>| (s.revision(), s.entries().clone(), s.rejected().clone());
        assert_eq!(parts(&once), ks.read(parts));
        assert_eq!(once.entries().len(), 1);
        assert!(once.rejected()[&b"p/bad"[..]].contains("garbage"));
    }

    pub async fn observers_see_each_burst<S: Store>(store: S) {
        let ks = start(
            store.clone(),
            KeySpaceOptions {
                batch_delay: Duration::from_millis(300),
            },
        )
        .await;
        // Each observer logs (revision, entry count) per call.
        type Log = Arc<Mutex<Vec<(Revision, usize)>>>;
        let seen: Vec<Log> = (0..2).map(|_| Log::default()).collect();
        for log in &seen {
            let log = log.clone();
            ks.observe(move |s| log.lock().unwrap().push((s.revision(), s.entries().len())));
        }
        let mut last = 0;
        for i in 0..10 {
            last = store
                .put(format!("p/{i}"), i.to_string(), None)
                .await
                .unwrap();
        }
        wait(&ks, last).await;
        for log in &seen {
            let log = log.lock().unwrap();
            assert_eq!(
                log.last(),
                Some(&(last, 10)),
                "every observer sees the final state"
            );
            assert!(
                log.len() < 10,
                "ten quick writes arrive in fewer bursts: {log:?}"
            );
        }
    }

    pub async fn revisions_come_only_from_applied_changes<S: Store>(store: S) {
        let ks = start(store.clone(), KeySpaceOptions::default()).await;
        let elsewhere = store.put("q/x", "1", None).await.unwrap();
        let early =
            tokio::time::timeout(Duration::from_secs(1), ks.wait_for_revision(elsewhere)).await;
        assert!(early.is_err(), "a write elsewhere does not move the mirror");
        let mine = store.put("p/a", "1", None).await.unwrap();
        wait(&ks, elsewhere).await;
        assert_eq!(ks.revision(), mine);
        assert_eq!(values(&ks), pairs(&[("p/a", 1)]));
    }

    /// A store whose `watch` waits until the test opens the gate: lets history be compacted
    /// between the key space's load and its watch, deterministically.
    type Gated<S> = Hooked<S, Gate>;

    /// The gate of a [`Gated`] store.
    #[derive(Clone, Default)]
    struct Gate(Arc<Notify>);

    impl Gate {
        fn open(&self) {
            self.0.notify_one();
        }
    }

    impl<S: Store> Hook<S> for Gate {
        async fn before_watch(&self) {
            self.0.notified().await;
            self.0.notify_one();
        }
    }
}

on_both_backends!(
    crate::cases =>
    loads_then_follows,
    reloads_after_compaction,
    bad_values_are_skipped,
    a_read_is_mirrored_as_the_key_space_loads_it,
    observers_see_each_burst,
    revisions_come_only_from_applied_changes,
);
