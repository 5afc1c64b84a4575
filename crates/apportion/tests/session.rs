//! A member's session with the store: claiming its key when another lease holds it, and
//! coming back after its lease was lost. Embedded store, paused time.

use std::time::Duration;

use apportion::admin::Admin;
use apportion::core::keys::Prefix;
use apportion::store::KeyRange;
use apportion::{Error, Event, ItemId, JsonDecoder, Member, MemberConfig, MemoryStore, Store};

const PREFIX: &str = "/session";
const KEY: &str = "/session/members/a#1";

fn config(ttl_secs: u64) -> MemberConfig {
    let mut config = MemberConfig::json(PREFIX, "a", "1", 5);
    config.lease_ttl = Duration::from_secs(ttl_secs);
    config
}

/// A dead process's key, its lease extended by the store (an election), is waited out:
/// the new process starts once that lease ends, however long past one TTL.
#[tokio::test(start_paused = true)]
async fn a_dead_holder_is_waited_out_even_past_one_ttl() {
    let store = MemoryStore::new();
    let dead = store.grant(9).await.unwrap();
    store
        .put(KEY, r#"{"item_limit":5}"#, Some(dead.id))
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let member = Member::start(store.clone(), JsonDecoder, config(3))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(9), "started after {waited:?}");
    let kv = store.range(KeyRange::key(KEY)).await.unwrap().kvs.remove(0);
    assert_eq!(kv.lease, Some(member.lease().id));
}

/// A live process holding the key is recognised by its renewals and refused within about
/// a TTL, with a message that says what is known.
#[tokio::test(start_paused = true)]
async fn a_live_holder_is_refused_with_what_is_known() {
    let store = MemoryStore::new();
    let live = store.grant(3).await.unwrap();
    let _keep = store.keep_alive(live).await.unwrap();
    store
        .put(KEY, r#"{"item_limit":5}"#, Some(live.id))
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let err = Member::start(store.clone(), JsonDecoder, config(3))
        .await
        .err()
        .expect("a live holder's key was taken");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(9), "refused after {waited:?}");
    match &err {
        Error::Taken {
            lease,
            renewed,
            time_left,
            ..
        } => {
            assert_eq!(*lease, Some(live.id));
            assert!(renewed);
            assert!(time_left.is_some());
        }
        other => panic!("unexpected error {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&live.id.to_string()) && text.contains("alive"),
        "{text}"
    );
    // Nothing of the refused process stays behind: its own lease was revoked.
    let kv = store.range(KeyRange::key(KEY)).await.unwrap().kvs.remove(0);
    assert_eq!(kv.lease, Some(live.id));
    // The memory store grants ids in order: the refused process had the next one.
    let refused = apportion::store::LeaseId::new(live.id.get() + 1).unwrap();
    let leases_left = store.time_to_live(refused).await.unwrap();
    assert_eq!(
        leases_left, None,
        "the refused process's lease is still there"
    );
}

/// A member whose lease expired while it was cut off (paused, partitioned) is fenced, then
/// told its session is over; `rejoin` announces it again under a new lease, and it is
/// given items again.
#[tokio::test(start_paused = true)]
async fn a_member_whose_lease_expired_rejoins() {
    let store = MemoryStore::new();
    let handle = store.connect();
    let mut member = Member::start(handle.clone(), JsonDecoder, config(3))
        .await
        .unwrap();
    let admin = Admin::new(store.clone(), Prefix::new(PREFIX).unwrap());
    let i1 = ItemId::new("i1").unwrap();
    admin.put_item(&i1, 1, None).await.unwrap();
    assert!(matches!(
        next(&mut member).await,
        Some(Event::Assigned { .. })
    ));
    let old_lease = member.lease().id;
    handle.set_reachable(false);
    assert_eq!(next(&mut member).await, Some(Event::Fenced));
    // The lease ends in the store; the member learns it once it reaches the store again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    handle.set_reachable(true);
    assert_eq!(next(&mut member).await, None, "the session did not end");
    assert!(matches!(
        member.session_error(),
        Some(Error::LeaseLost { .. })
    ));
    member.rejoin().await.unwrap();
    assert_ne!(member.lease().id, old_lease);
    assert!(matches!(
        next(&mut member).await,
        Some(Event::Assigned { .. })
    ));
    let kv = store.range(KeyRange::key(KEY)).await.unwrap().kvs.remove(0);
    assert_eq!(kv.lease, Some(member.lease().id));
}

async fn next(member: &mut Member<MemoryStore, JsonDecoder>) -> Option<Event> {
    tokio::time::timeout(Duration::from_secs(30), member.next_event())
        .await
        .expect("no event within 30 s")
}
