// Three members of a service, in one process on the embedded store: they share two items,
// report their copies ready, and one of them drains and leaves.
use apportion::{Error, Event, JsonDecoder, Member, MemberConfig, MemoryStore, Store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A deployment connects to etcd instead:
    // `EtcdStore::connect(&["http://127.0.0.1:2379"]).await?`.
    let store = MemoryStore::new();
    // The operator's items (`apportion items put`): two copies of `orders`, and one owner
    // at a time for `ledger`.
    store
        .put("/shop/items/orders", r#"{"replication": 2}"#, None)
        .await?;
    let exclusive = r#"{"replication": 1, "exclusive": true}"#;
    store.put("/shop/items/ledger", exclusive, None).await?;

    let mut members = Vec::new();
    for zone in ["a", "b", "c"] {
        let config = MemberConfig::json("/shop", zone, "host-1", 10); // prefix, zone, suffix, item limit
        let member = Member::start(store.clone(), JsonDecoder, config).await?;
        members.push((member.handle(), tokio::spawn(serve(member))));
    }

    // Every member sees the whole cluster: wait until the three copies are served.
    let (handle, task) = members.remove(0);
    let mut updates = handle.subscribe();
    let ready = updates.wait_for(|o| {
        let copies = o.state.assignments();
        copies.len() == 3 && copies.iter().all(|copy| copy.value.ready)
    });
    ready.await;

    // What a member does on SIGTERM: drain, serve events until `Drained`, then leave.
    handle.begin_drain().await?;
    task.await??;
    Ok(())
}

/// A member's event loop: serves what the events say, until it has drained and left.
async fn serve(mut member: Member<MemoryStore, JsonDecoder>) -> Result<(), Error> {
    let me = member.id().clone();
    while let Some(event) = member.next_event().await {
        match event {
            // A new assignment: start serving (load the item), then report it ready, which
            // lets the leader move a primary or drop an old copy. An item assigned again
            // comes as `Revoked` then `Assigned`, and must be reported ready again.
            Event::Assigned { item, slot } => {
                println!("{me}: serving {item} (primary: {})", slot.is_primary());
                moved_on_or_fenced(member.mark_ready(&item).await)?;
            }
            // An exclusive item wanted elsewhere: stop serving it, then let go.
            Event::ReleaseRequested { item } => {
                println!("{me}: handing {item} over");
                moved_on_or_fenced(member.release(&item).await)?;
            }
            Event::Revoked { item } => println!("{me}: no longer serving {item}"),
            // Lease renewals unacknowledged: stop serving everything now. `Unfenced`
            // comes once they are acknowledged again, followed by an `Assigned` for every
            // item still held.
            Event::Fenced => println!("{me}: fenced, serving nothing"),
            Event::Drained => return member.leave().await,
            // `PrimaryGained`, `PrimaryLost` (the role of a copy), `Unfenced`, and kinds of
            // events added later.
            _ => {}
        }
    }
    // The lease was lost; `member.rejoin()` would start a new session.
    Err(member
        .session_error()
        .expect("the events end when the lease is lost"))
}

/// A call that failed because the item moved on (its `Revoked` is on the way) or the
/// member is fenced (the replay after `Unfenced` asks again) needs nothing more.
fn moved_on_or_fenced(result: Result<(), Error>) -> Result<(), Error> {
    match result {
        Err(Error::NotAssigned { .. } | Error::Fenced { .. }) => Ok(()),
        result => result,
    }
}
