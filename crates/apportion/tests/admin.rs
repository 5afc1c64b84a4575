//! The admin API on the embedded store: edits change only what they name, keep what they do
//! not know, never lose a concurrent write, keep a member's lease, and refuse what is absent
//! or unreadable, naming the key. The last test does the same edits on a real etcd, whose
//! transactions have an op limit and whose guards are its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use apportion::admin::{Admin, AdminError, Edit};
use apportion::core::keys::{ItemId, MemberId, Prefix};
use apportion::core::values::{Decoder, JsonDecoder, JsonItem, JsonMember};
use apportion::store::{
    EtcdStore, KeepAlive, KeyRange, KeyValue, Lease, LeaseId, MemoryStore, RangeOptions,
    RangeResult, Revision, Store, Txn, TxnResult, Watch,
};

const PREFIX: &str = "/svc";

fn admin<S: Store>(store: &S) -> Admin<S> {
    Admin::new(store.clone(), Prefix::new(PREFIX).unwrap())
}

fn item(id: &str) -> ItemId {
    ItemId::new(id).unwrap()
}

fn member(id: &str) -> MemberId {
    MemberId::parse(id).unwrap()
}

fn json_item(text: &str) -> JsonItem {
    JsonDecoder.decode_item(text.as_bytes()).unwrap()
}

fn json_member(text: &str) -> JsonMember {
    JsonDecoder.decode_member(text.as_bytes()).unwrap()
}

async fn read(store: &impl Store, key: &str) -> Option<KeyValue> {
    store.range(KeyRange::key(key)).await.unwrap().kvs.pop()
}

/// Registers a member as a running one does: its key under its own lease.
async fn register(store: &MemoryStore, id: &str, value: &str) -> LeaseId {
    let lease = store.grant(60).await.unwrap().id;
    let key = Prefix::new(PREFIX).unwrap().member_key(&member(id));
    store.put(key, value, Some(lease)).await.unwrap();
    lease
}

#[tokio::test]
async fn put_item_changes_only_the_named_fields_and_keeps_unknown_ones() {
    let store = MemoryStore::new();
    let admin = admin(&store);
    let created = admin
        .put_item(&item("orders"), 1, Some(true))
        .await
        .unwrap();
    assert_eq!(
        created,
        Edit {
            before: None,
            after: json_item(r#"{"replication": 1, "exclusive": true}"#),
        }
    );
    let key = "/svc/items/orders";
    store
        .put(
            key,
            r#"{"replication": 1, "exclusive": true, "owner": "a"}"#,
            None,
        )
        .await
        .unwrap();

    // Exclusivity is not named: it stays, and so does the field apportion does not know.
    let parked = admin.put_item(&item("orders"), 0, None).await.unwrap();
    let expected = json_item(r#"{"replication": 0, "exclusive": true, "owner": "a"}"#);
    assert_eq!(parked.after, expected);
    let stored = read(&store, key).await.unwrap();
    assert_eq!(JsonDecoder.decode_item(&stored.value).unwrap(), expected);

    let spread = admin
        .put_item(&item("orders"), 3, Some(false))
        .await
        .unwrap();
    assert_eq!(
        spread.after,
        json_item(r#"{"replication": 3, "exclusive": false, "owner": "a"}"#)
    );
    assert!(spread.changed());

    // The same edit again writes nothing.
    let revision = read(&store, key).await.unwrap().mod_revision;
    let again = admin.put_item(&item("orders"), 3, None).await.unwrap();
    assert!(!again.changed());
    assert_eq!(read(&store, key).await.unwrap().mod_revision, revision);
}

#[tokio::test]
async fn put_item_refuses_what_the_cluster_would_not_place_and_writes_nothing() {
    let store = MemoryStore::new();
    let admin = admin(&store);
    let error = admin.put_item(&item("x"), 2, Some(true)).await.unwrap_err();
    assert!(
        matches!(&error, AdminError::ExclusiveReplication { key, replication: 2, .. } if key == "/svc/items/x"),
        "{error:?}"
    );
    admin.put_item(&item("x"), 1, Some(true)).await.unwrap();
    // Exclusive as stored, though not named in this edit.
    let error = admin.put_item(&item("x"), 3, None).await.unwrap_err();
    assert!(
        matches!(
            error,
            AdminError::ExclusiveReplication { replication: 3, .. }
        ),
        "{error:?}"
    );
    let error = admin.put_item(&item("y"), 256, None).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "item `y` (key `/svc/items/y`): replication 256 is above the maximum of 255"
    );
    assert!(read(&store, "/svc/items/y").await.is_none());
    let stored = read(&store, "/svc/items/x").await.unwrap();
    assert_eq!(
        JsonDecoder.decode_item(&stored.value).unwrap(),
        json_item(r#"{"replication": 1, "exclusive": true}"#)
    );
}

#[tokio::test]
async fn a_value_that_does_not_decode_is_left_alone() {
    let store = MemoryStore::new();
    store.put("/svc/items/bad", "not json", None).await.unwrap();
    register(&store, "eu#bad", "not json").await;
    let admin = admin(&store);
    let error = admin.put_item(&item("bad"), 1, None).await.unwrap_err();
    assert!(
        error.to_string().starts_with(
            "the value under `/svc/items/bad` does not decode: item value is not valid JSON"
        ),
        "{error}"
    );
    let error = admin.drain(&member("eu#bad")).await.unwrap_err();
    assert!(
        matches!(&error, AdminError::Undecodable { key, .. } if key == "/svc/members/eu#bad"),
        "{error:?}"
    );
    assert_eq!(
        read(&store, "/svc/items/bad").await.unwrap().value,
        b"not json"
    );
    assert_eq!(
        read(&store, "/svc/members/eu#bad").await.unwrap().value,
        b"not json"
    );
}

#[tokio::test]
async fn removing_an_item_that_does_not_exist_names_it() {
    let store = MemoryStore::new();
    let admin = admin(&store);
    admin.put_item(&item("orders"), 2, None).await.unwrap();
    admin.remove_item(&item("orders")).await.unwrap();
    assert!(read(&store, "/svc/items/orders").await.is_none());
    let error = admin.remove_item(&item("orders")).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "item `orders` does not exist (no key `/svc/items/orders`)"
    );
    assert!(matches!(error, AdminError::ItemMissing { item, .. } if item.as_str() == "orders"));
}

#[tokio::test]
async fn drain_undrain_and_limit_keep_the_members_lease_and_fields() {
    let store = MemoryStore::new();
    let lease = register(&store, "eu#h1", r#"{"item_limit": 8, "addr": "10.0.0.3"}"#).await;
    let admin = admin(&store);
    let key = "/svc/members/eu#h1";

    let drained = admin.drain(&member("eu#h1")).await.unwrap();
    assert!(drained.changed());
    let stored = read(&store, key).await.unwrap();
    assert_eq!(
        stored.lease,
        Some(lease),
        "the key must go when its member does"
    );
    assert_eq!(
        JsonDecoder.decode_member(&stored.value).unwrap(),
        json_member(r#"{"item_limit": 8, "exiting": true, "addr": "10.0.0.3"}"#)
    );
    let again = admin.drain(&member("eu#h1")).await.unwrap();
    assert!(
        !again.changed(),
        "a member already exiting is left as it is"
    );
    assert_eq!(
        read(&store, key).await.unwrap().mod_revision,
        stored.mod_revision
    );

    let limited = admin.set_item_limit(&member("eu#h1"), 3).await.unwrap();
    assert_eq!(limited.after.item_limit, 3);
    let undrained = admin.undrain(&member("eu#h1")).await.unwrap();
    let stored = read(&store, key).await.unwrap();
    assert_eq!(stored.lease, Some(lease));
    assert_eq!(
        JsonDecoder.decode_member(&stored.value).unwrap(),
        json_member(r#"{"item_limit": 3, "addr": "10.0.0.3"}"#)
    );
    assert_eq!(
        undrained.after,
        json_member(r#"{"item_limit": 3, "addr": "10.0.0.3"}"#)
    );

    // The lease ends: the key goes with it, edits or not.
    store.revoke(lease).await.unwrap();
    assert!(read(&store, key).await.is_none());
}

#[tokio::test]
async fn an_edit_of_a_member_that_is_not_registered_is_refused_and_creates_nothing() {
    let store = MemoryStore::new();
    let admin = admin(&store);
    let error = admin.drain(&member("eu#nope")).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "member `eu#nope` is not registered (no key `/svc/members/eu#nope`)"
    );
    let error = admin
        .set_item_limit(&member("eu#nope"), 1)
        .await
        .unwrap_err();
    assert!(
        matches!(error, AdminError::MemberMissing { .. }),
        "{error:?}"
    );
    assert!(read(&store, "/svc/members/eu#nope").await.is_none());
}

/// A store where another writer puts `value` under `key` (keeping its lease) just before
/// each of the first `races` transactions, as the member updating its own value, or a
/// second operator, would between an edit's read and its write.
#[derive(Clone)]
struct Racing {
    inner: MemoryStore,
    key: &'static str,
    value: &'static str,
    races: Arc<AtomicUsize>,
}

impl Racing {
    fn new(inner: &MemoryStore, key: &'static str, value: &'static str, races: usize) -> Self {
        Racing {
            inner: inner.clone(),
            key,
            value,
            races: Arc::new(AtomicUsize::new(races)),
        }
    }
}

impl Store for Racing {
    async fn range_with(
        &self,
        range: KeyRange,
        options: RangeOptions,
    ) -> apportion::store::Result<RangeResult> {
        self.inner.range_with(range, options).await
    }
    async fn revision(&self) -> apportion::store::Result<Revision> {
        self.inner.revision().await
    }
    async fn txn(&self, txn: Txn) -> apportion::store::Result<TxnResult> {
        let left = self.races.load(Ordering::SeqCst);
        if left > 0 {
            self.races.store(left - 1, Ordering::SeqCst);
            let lease = read(&self.inner, self.key).await.and_then(|kv| kv.lease);
            self.inner.put(self.key, self.value, lease).await?;
        }
        self.inner.txn(txn).await
    }
    async fn watch(&self, range: KeyRange, from: Revision) -> apportion::store::Result<Watch> {
        self.inner.watch(range, from).await
    }
    async fn grant(&self, ttl_secs: i64) -> apportion::store::Result<Lease> {
        self.inner.grant(ttl_secs).await
    }
    async fn keep_alive(&self, lease: Lease) -> apportion::store::Result<KeepAlive> {
        self.inner.keep_alive(lease).await
    }
    async fn revoke(&self, lease: LeaseId) -> apportion::store::Result<()> {
        self.inner.revoke(lease).await
    }
    async fn time_to_live(
        &self,
        lease: LeaseId,
    ) -> apportion::store::Result<Option<std::time::Duration>> {
        self.inner.time_to_live(lease).await
    }
    async fn compact(&self, revision: Revision) -> apportion::store::Result<()> {
        self.inner.compact(revision).await
    }
    fn max_txn_ops(&self) -> usize {
        self.inner.max_txn_ops()
    }
    fn max_response_bytes(&self) -> usize {
        self.inner.max_response_bytes()
    }
}

#[tokio::test]
async fn a_concurrent_write_between_read_and_write_is_read_again_not_lost() {
    let inner = MemoryStore::new();
    let lease = register(&inner, "eu#h1", r#"{"item_limit": 8}"#).await;
    let key = "/svc/members/eu#h1";
    let racing = Racing::new(&inner, key, r#"{"item_limit": 6, "note": "resized"}"#, 1);
    let drained = admin(&racing).drain(&member("eu#h1")).await.unwrap();
    assert_eq!(
        drained.before,
        Some(json_member(r#"{"item_limit": 6, "note": "resized"}"#)),
        "the edit is made on what the other writer left"
    );
    let stored = read(&inner, key).await.unwrap();
    assert_eq!(stored.lease, Some(lease));
    assert_eq!(
        JsonDecoder.decode_member(&stored.value).unwrap(),
        json_member(r#"{"item_limit": 6, "note": "resized", "exiting": true}"#)
    );

    // An item created by someone else between the read (absent) and the write.
    let key = "/svc/items/orders";
    let racing = Racing::new(&inner, key, r#"{"replication": 1, "owner": "b"}"#, 1);
    let put = admin(&racing)
        .put_item(&item("orders"), 2, None)
        .await
        .unwrap();
    assert!(put.before.is_some(), "the creation raced is seen");
    let stored = read(&inner, key).await.unwrap();
    assert_eq!(
        JsonDecoder.decode_item(&stored.value).unwrap(),
        json_item(r#"{"replication": 2, "owner": "b"}"#)
    );
}

#[tokio::test]
async fn a_key_that_never_stops_changing_is_given_up_on_naming_it() {
    let inner = MemoryStore::new();
    let key = "/svc/items/hot";
    let racing = Racing::new(&inner, key, r#"{"replication": 1}"#, usize::MAX);
    let error = admin(&racing)
        .put_item(&item("hot"), 2, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, AdminError::Contended { key: k, .. } if k == key),
        "{error:?}"
    );
    assert_eq!(
        JsonDecoder
            .decode_item(&read(&inner, key).await.unwrap().value)
            .unwrap()
            .replication,
        1
    );
}

#[tokio::test]
async fn put_items_writes_whole_values_in_transactions_of_the_op_limit() {
    let store = MemoryStore::with_max_txn_ops(4);
    let admin = admin(&store);
    let start = store.put("/start", "", None).await.unwrap();
    let value = json_item(r#"{"replication": 2}"#);
    let items = (0..10).map(|i| (item(&format!("i{i}")), value.clone()));
    admin.put_items(items).await.unwrap();
    let written = store.range(KeyRange::prefix("/svc/items/")).await.unwrap();
    assert_eq!(written.kvs.len(), 10);
    assert_eq!(written.revision, start + 3, "10 items in transactions of 4");

    let observed = admin.read().await.unwrap();
    assert_eq!(observed.state.items().len(), 10);

    // One value the members would skip among many: nothing is written.
    let bad = [
        (item("fine"), value.clone()),
        (item("huge"), json_item(r#"{"replication": 256}"#)),
    ];
    let error = admin.put_items(bad).await.unwrap_err();
    assert!(
        matches!(&error, AdminError::TooManyReplicas { key, .. } if key == "/svc/items/huge"),
        "{error:?}"
    );
    assert!(read(&store, "/svc/items/fine").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edits_on_a_real_etcd() {
    let etcd = apportion_testkit::TestEtcd::start();
    let store = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
    let admin = admin(&store);

    // More items than one etcd transaction may hold.
    let count = store.max_txn_ops() + 1;
    let value = json_item(r#"{"replication": 1}"#);
    let items = (0..count).map(|i| (item(&format!("i{i:04}")), value.clone()));
    admin.put_items(items).await.unwrap();
    assert_eq!(admin.read().await.unwrap().state.items().len(), count);

    // A creation is guarded too (mod revision 0), and an edit keeps unknown fields.
    let created = admin
        .put_item(&item("orders"), 1, Some(true))
        .await
        .unwrap();
    assert_eq!(created.before, None);
    let key = "/svc/items/orders";
    let owned = r#"{"replication": 1, "exclusive": true, "owner": "a"}"#;
    store.put(key, owned, None).await.unwrap();
    admin.put_item(&item("orders"), 0, None).await.unwrap();
    assert_eq!(
        JsonDecoder
            .decode_item(&read(&store, key).await.unwrap().value)
            .unwrap(),
        json_item(r#"{"replication": 0, "exclusive": true, "owner": "a"}"#)
    );
    admin.remove_item(&item("orders")).await.unwrap();
    let error = admin.remove_item(&item("orders")).await.unwrap_err();
    assert!(matches!(error, AdminError::ItemMissing { .. }), "{error:?}");

    // A drained member's key stays under its lease, and goes with it.
    let lease = store.grant(30).await.unwrap().id;
    let key = Prefix::new(PREFIX).unwrap().member_key(&member("eu#h1"));
    store
        .put(key.as_str(), r#"{"item_limit": 4}"#, Some(lease))
        .await
        .unwrap();
    admin.drain(&member("eu#h1")).await.unwrap();
    let stored = read(&store, &key).await.unwrap();
    assert_eq!(stored.lease, Some(lease));
    assert!(JsonDecoder.decode_member(&stored.value).unwrap().exiting);
    store.revoke(lease).await.unwrap();
    assert!(read(&store, &key).await.is_none());
    let error = admin.drain(&member("eu#h1")).await.unwrap_err();
    assert!(
        matches!(error, AdminError::MemberMissing { .. }),
        "{error:?}"
    );
}

/// A member owns its key, but an operator's drain through the admin API must survive the
/// member's own next write of its value (here a limit its application sets): the member
/// takes the edit in instead of writing back the value it held before.
#[tokio::test(start_paused = true)]
async fn a_members_own_later_write_keeps_an_operators_drain() {
    let store = MemoryStore::new();
    let config = apportion::MemberConfig::json("/svc", "eu", "h1", 8);
    let mut running = apportion::Member::start(store.clone(), JsonDecoder, config)
        .await
        .unwrap();
    let key = "/svc/members/eu#h1";
    let announced = read(&store, key).await.unwrap().mod_revision;
    let drained = admin(&store).drain(&member("eu#h1")).await.unwrap();
    assert!(drained.changed());
    // Let the member's view see the operator's edit.
    while read(&store, key).await.unwrap().mod_revision == announced
        || running
            .state()
            .state
            .members()
            .iter()
            .all(|m| !m.value.exiting)
    {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    running.set_item_limit(3).await.unwrap();
    let stored = read(&store, key).await.unwrap();
    assert_eq!(
        JsonDecoder.decode_member(&stored.value).unwrap(),
        json_member(r#"{"item_limit": 3, "exiting": true}"#),
        "the limit is the member's, the drain the operator's"
    );
    while let Some(event) = running.next_event().await {
        if matches!(event, apportion::Event::Drained) {
            break;
        }
    }
    running.leave().await.unwrap();
}
