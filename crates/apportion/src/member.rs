//! `Member`: one running instance of the service, as the library sees it.
//!
//! Starting a member grants a lease, announces the member key under it, keeps the lease
//! alive, mirrors the prefix, and runs three tasks: the fence guard (stop serving before the
//! lease could expire), the event feed (what this member must start and stop serving), and
//! the allocation loop (which acts while this member leads). Dropping the member stops them
//! all; its lease then expires after one TTL. [`Member::drain`] is the graceful way out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use apportion_core::keys::{ItemId, MemberId, Prefix};
use apportion_core::planner::ReadyStatus;
use apportion_core::values::{AssignmentValue, Decoder, MemberValue};
use apportion_store::{
    Compare, CompareOp, KeepAlive, KeyRange, KeySpaceOptions, Lease, Op, Store, Txn,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::allocator::{Allocator, ConsistencyCheck, RoundHook};
use crate::config::MemberConfig;
use crate::error::Error;
use crate::events::{self, Event};
use crate::retry::retry_transient;
use crate::session::{self, Fence};
use crate::status_writer::StatusWriter;
use crate::view::{ClusterView, Observed, RuntimeDecoder};

/// A running member. See the module documentation. It derefs to a [`MemberHandle`], the
/// part that can be cloned into the application's tasks (to report an item ready from the
/// task that loaded it, for instance); the events stay here, in one place.
pub struct Member<S: Store, D: Decoder> {
    handle: MemberHandle<S, D>,
    events: mpsc::UnboundedReceiver<Event>,
    tasks: Vec<JoinHandle<()>>,
    _keep_alive: KeepAlive,
}

/// What a member's application can do from any task: report status, release items, change
/// its limit, start draining, read the view. Cheap to clone.
pub struct MemberHandle<S: Store, D: Decoder> {
    shared: Arc<Shared<S, D>>,
}

impl<S: Store, D: Decoder> Clone for MemberHandle<S, D> {
    fn clone(&self) -> Self {
        MemberHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<S: Store, D: Decoder> std::ops::Deref for Member<S, D> {
    type Target = MemberHandle<S, D>;

    fn deref(&self) -> &MemberHandle<S, D> {
        &self.handle
    }
}

/// What the member's handle and its tasks share.
struct Shared<S, D: Decoder> {
    store: S,
    decoder: Arc<D>,
    prefix: Prefix,
    id: MemberId,
    key: String,
    lease: Lease,
    value: Mutex<D::Member>,
    view: Arc<ClusterView<D>>,
    fence: watch::Receiver<Fence>,
    statuses: StatusWriter,
}

/// Optional parts of a member: the consistency check and the round hook.
pub struct MemberOptions<D: Decoder> {
    /// Decides when a replica may be relied on; default: its status is ready.
    pub consistency: ConsistencyCheck<D>,
    /// Called after each round this member leads.
    pub round_hook: Option<RoundHook>,
}

impl<D: Decoder> Default for MemberOptions<D>
where
    D::Assignment: AssignmentValue,
{
    fn default() -> Self {
        MemberOptions {
            consistency: Arc::new(ReadyStatus),
            round_hook: None,
        }
    }
}

impl<S, D> Member<S, D>
where
    S: Store,
    D: RuntimeDecoder,
{
    /// Starts a member with the default options.
    pub async fn start(store: S, decoder: D, config: MemberConfig<D>) -> Result<Self, Error> {
        Self::start_with(store, decoder, config, MemberOptions::default()).await
    }

    /// Starts a member: validates the configuration, claims the member key under a new
    /// lease (waiting for a previous holder's lease to end), and starts the loops.
    pub async fn start_with(
        store: S,
        decoder: D,
        config: MemberConfig<D>,
        options: MemberOptions<D>,
    ) -> Result<Self, Error> {
        let prefix = Prefix::new(&config.prefix)?;
        let id = MemberId::new(&config.zone, &config.suffix)?;
        if config.lease_ttl_secs < 1 {
            return Err(Error::Config(format!(
                "lease TTL must be at least 1 second, got {}",
                config.lease_ttl_secs
            )));
        }
        let margin = config.margin();
        if margin >= Duration::from_secs(config.lease_ttl_secs as u64) {
            return Err(Error::Config(format!(
                "fence margin {margin:?} must be shorter than the lease TTL of {} s",
                config.lease_ttl_secs
            )));
        }
        let key = prefix.member_key(&id);
        let value = encode_member(&decoder, &config.value)?;
        let lease = store.grant(config.lease_ttl_secs).await?;
        let keep_alive = store.keep_alive(lease).await?;
        session::announce(&store, &id, &key, &value, lease.id, config.announce_wait()).await?;
        let decoder = Arc::new(decoder);
        let keyspace = KeySpaceOptions {
            batch_delay: config.batch_delay,
        };
        let view = Arc::new(
            ClusterView::start_for(
                store.clone(),
                &prefix,
                decoder.clone(),
                Some(id.clone()),
                keyspace,
            )
            .await?,
        );
        let (fence_tx, fence) = watch::channel(Fence::Healthy);
        let (events_tx, events) = mpsc::unbounded_channel();
        let (statuses, status_task) = StatusWriter::start(store.clone());
        let shared = Arc::new(Shared {
            store,
            decoder,
            prefix,
            id,
            key,
            lease,
            value: Mutex::new(config.value),
            view,
            fence,
            statuses,
        });
        let allocator = Allocator {
            store: shared.store.clone(),
            decoder: shared.decoder.clone(),
            prefix: shared.prefix.clone(),
            view: shared.view.clone(),
            fence: shared.fence.clone(),
            consistency: options.consistency,
            hook: options.round_hook,
        };
        let tasks = vec![
            status_task,
            tokio::spawn(session::guard_lease(
                keep_alive.subscribe(),
                margin,
                fence_tx,
            )),
            tokio::spawn(feed_events(shared.clone(), events_tx)),
            tokio::spawn(allocator.run()),
        ];
        tracing::info!(member = %shared.id, lease = lease.id, "member started");
        Ok(Member {
            handle: MemberHandle { shared },
            events,
            tasks,
            _keep_alive: keep_alive,
        })
    }

    /// The next thing to act on; `None` once the session is over (see
    /// [`session_error`](MemberHandle::session_error)).
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// A handle for the application's other tasks.
    pub fn handle(&self) -> MemberHandle<S, D> {
        self.handle.clone()
    }

    /// Ends the session: revokes the lease, so the member key and every assignment it still
    /// holds go at once. After [`Event::Drained`] it holds nothing.
    pub async fn leave(mut self) -> Result<(), Error> {
        self.stop_tasks();
        self.shared.store.revoke(self.shared.lease.id).await?;
        Ok(())
    }

    fn stop_tasks(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl<S, D> MemberHandle<S, D>
where
    S: Store,
    D: RuntimeDecoder,
{
    /// This member's id.
    pub fn id(&self) -> &MemberId {
        &self.shared.id
    }

    /// The lease the member key and its assignments live under.
    pub fn lease(&self) -> Lease {
        self.shared.lease
    }

    /// The latest view of the cluster.
    pub fn state(&self) -> Arc<Observed<D>> {
        self.shared.view.current()
    }

    /// A receiver notified with every new view of the cluster.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Observed<D>>> {
        self.shared.view.subscribe()
    }

    /// Why the session ended, once it has: the lease was lost.
    pub fn session_error(&self) -> Option<Error> {
        match &*self.shared.fence.borrow() {
            Fence::Lost(reason) => Some(Error::LeaseLost {
                member: self.shared.id.to_string(),
                reason: reason.clone(),
            }),
            _ => None,
        }
    }

    /// Writes the status of this member's assignment of `item` (for example, ready once it
    /// has loaded the item), keeping a release request the leader may have made.
    pub async fn update_status(
        &self,
        item: &ItemId,
        update: impl Fn(&mut D::Assignment),
    ) -> Result<(), Error> {
        self.shared.write_status(item, update).await
    }

    /// Lets go of `item`: deletes this member's assignments of it. This is how a member
    /// acknowledges a release request once it has stopped serving an exclusive item.
    pub async fn release(&self, item: &ItemId) -> Result<(), Error> {
        let observed = self.shared.view.current();
        let ops: Vec<Op> = observed
            .state
            .local_assignments()
            .filter(|l| &l.item.key == item)
            .map(|l| {
                Op::Delete(KeyRange::key(
                    self.shared.prefix.assignment_key(&l.assignment.key),
                ))
            })
            .collect();
        if ops.is_empty() {
            return Err(Error::NotAssigned {
                item: item.to_string(),
                member: self.shared.id.to_string(),
            });
        }
        let txn = Txn::new().and_then(ops);
        let result = retry_transient(|| self.shared.store.txn(txn.clone())).await?;
        // Seen once the deletion arrives; nothing arrives if the keys were already gone.
        let seen = self.shared.view.wait_for_revision(result.revision);
        let _ = tokio::time::timeout(Duration::from_secs(1), seen).await;
        Ok(())
    }

    /// Changes this member's item limit (the leader then moves items to match).
    pub async fn set_item_limit(&self, item_limit: u32) -> Result<(), Error> {
        self.update_member(|v| v.set_item_limit(item_limit)).await
    }

    /// Starts leaving gracefully: marks the member exiting, so the leader moves every item
    /// it holds elsewhere (replicas only once the items stay consistent without them). Keep
    /// handling events meanwhile (exclusive items must still be released); once the member
    /// holds nothing, [`Event::Drained`] comes, and [`leave`](Self::leave) ends the session.
    pub async fn begin_drain(&self) -> Result<(), Error> {
        tracing::info!(member = %self.shared.id, "draining");
        self.update_member(|v| v.set_exiting(true)).await
    }

    /// Rewrites the member's own value, keeping its lease.
    async fn update_member(&self, change: impl Fn(&mut D::Member)) -> Result<(), Error> {
        self.shared.write_value(change).await
    }
}

impl<S: Store, D: Decoder> Drop for Member<S, D> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl<S, D> Shared<S, D>
where
    S: Store,
    D: Decoder + Send + Sync + 'static,
    D::Item: Clone + Send + Sync,
    D::Member: Clone + Send + Sync,
    D::Assignment: Clone + Send + Sync,
{
    /// Rewrites the member's own value, keeping its lease, guarded on the key still being
    /// held by that lease.
    async fn write_value(&self, change: impl Fn(&mut D::Member)) -> Result<(), Error> {
        let value = {
            let mut value = self.value.lock().unwrap_or_else(|e| e.into_inner());
            change(&mut value);
            encode_member(&*self.decoder, &value)?
        };
        let key = self.key.clone();
        let lease = self.lease.id;
        let txn = Txn::new()
            .when([Compare::lease(key.clone(), CompareOp::Equal, lease)])
            .and_then([Op::put_with_lease(key, value, lease)]);
        if retry_transient(|| self.store.txn(txn.clone()))
            .await?
            .succeeded
        {
            Ok(())
        } else {
            Err(Error::LeaseLost {
                member: self.id.to_string(),
                reason: "the member key is no longer held by this member's lease".into(),
            })
        }
    }

    /// See [`Member::update_status`].
    async fn write_status(
        &self,
        item: &ItemId,
        update: impl Fn(&mut D::Assignment),
    ) -> Result<(), Error> {
        loop {
            let observed = self.view.current();
            let local = observed
                .state
                .local_assignments()
                .find(|l| &l.item.key == item)
                .ok_or_else(|| Error::NotAssigned {
                    item: item.to_string(),
                    member: self.id.to_string(),
                })?;
            let entry = local.assignment;
            let mut value = entry.value.clone();
            update(&mut value);
            if entry.value.is_releasing() && !value.is_releasing() {
                value.request_release();
            }
            let bytes = self
                .decoder
                .encode_assignment(&value)
                .map_err(|e| Error::Encode {
                    what: "assignment status",
                    reason: e.to_string(),
                })?;
            let key = self.prefix.assignment_key(&entry.key);
            let guard =
                Compare::mod_revision(key.clone(), CompareOp::Equal, entry.meta.mod_revision);
            let put = Op::Put {
                key: key.into_bytes(),
                value: bytes,
                lease: (entry.meta.lease != 0).then_some(entry.meta.lease),
            };
            if self.statuses.write(guard, put).await? {
                return Ok(());
            }
            // The assignment changed under us (moved, released, re-written): look again once
            // the view has seen the change (it came after the revision read here).
            let changed = self.view.wait_for_revision(observed.revision + 1);
            let _ = tokio::time::timeout(Duration::from_secs(1), changed).await;
        }
    }
}

fn encode_member<D: Decoder>(decoder: &D, value: &D::Member) -> Result<Vec<u8>, Error> {
    decoder.encode_member(value).map_err(|e| Error::Encode {
        what: "member value",
        reason: e.to_string(),
    })
}

/// Turns views and fence changes into the member's events. While fenced it keeps track of
/// holdings silently; when the fence lifts it replays them. It also puts the member key back
/// if it vanished while the lease is healthy (deleted by hand), and its value and
/// assignment statuses if they were garbled.
async fn feed_events<S, D>(shared: Arc<Shared<S, D>>, events: mpsc::UnboundedSender<Event>)
where
    S: Store,
    D: RuntimeDecoder,
{
    let mut states = shared.view.subscribe();
    let mut fence = shared.fence.clone();
    let mut held = events::Held::new();
    let mut fenced = false;
    let mut was_drained = false;
    let mut out = Vec::new();
    loop {
        let observed = states.borrow_and_update().clone();
        let now = fence.borrow_and_update().clone();
        let next = events::held(&observed.state);
        let drained = next.is_empty()
            && observed
                .state
                .local_member()
                .is_some_and(|m| observed.state.members()[m].value.is_exiting());
        match (&now, fenced) {
            (Fence::Healthy, false) => events::diff(&held, &next, &mut out),
            (Fence::Healthy, true) => {
                fenced = false;
                out.push(Event::Unfenced);
                events::replay(&next, &mut out);
            }
            (Fence::Fenced | Fence::Lost(_), false) => {
                fenced = true;
                out.push(Event::Fenced);
            }
            (Fence::Fenced | Fence::Lost(_), true) => {}
        }
        if drained && !was_drained {
            out.push(Event::Drained);
        }
        was_drained = drained;
        held = next;
        for event in out.drain(..) {
            if events.send(event).is_err() {
                return;
            }
        }
        if let Fence::Lost(reason) = &now {
            tracing::error!(member = %shared.id, %reason, "member session lost");
            return;
        }
        if now == Fence::Healthy && observed.state.local_member().is_none() && observed.revision > 0
        {
            reannounce(&shared).await;
        }
        if now == Fence::Healthy {
            repair(&shared, &observed).await;
        }
        tokio::select! {
            changed = states.changed() => if changed.is_err() { return },
            changed = fence.changed() => if changed.is_err() { return },
        }
    }
}

/// Writes back this member's own keys that someone overwrote with a value that does not
/// decode (this view kept the last good one): its member value and its assignment statuses.
/// The member owns them, and a member that never read the good value cannot even tell the
/// key is there: as leader, it would place this member's items again, and never move them
/// away from it (so a draining member would never be drained).
async fn repair<S, D>(shared: &Shared<S, D>, observed: &Observed<D>)
where
    S: Store,
    D: Decoder + Send + Sync + 'static,
    D::Item: Clone + Send + Sync,
    D::Member: Clone + Send + Sync,
    D::Assignment: Clone + Send + Sync,
{
    if observed.rejected == 0 {
        return;
    }
    let rejected = shared.view.rejected_keys();
    if rejected.contains(shared.key.as_bytes()) {
        tracing::warn!(member = %shared.id, "member value garbled; writing it back");
        if let Err(e) = shared.write_value(|_| {}).await {
            tracing::warn!(member = %shared.id, error = %e, "cannot write the value back");
        }
    }
    for local in observed.state.local_assignments() {
        let key = shared.prefix.assignment_key(&local.assignment.key);
        if rejected.contains(key.as_bytes()) {
            tracing::warn!(member = %shared.id, %key, "assignment status garbled; writing it back");
            if let Err(e) = shared.write_status(&local.item.key, |_| {}).await {
                tracing::warn!(member = %shared.id, %key, error = %e, "cannot write the status back");
            }
        }
    }
}

/// Puts the member key back under the member's lease after it was deleted by someone else.
async fn reannounce<S: Store, D: Decoder>(shared: &Shared<S, D>) {
    let value = {
        let value = shared.value.lock().unwrap_or_else(|e| e.into_inner());
        encode_member(&*shared.decoder, &value)
    };
    let Ok(value) = value else { return };
    let txn = Txn::new()
        .when([Compare::version(shared.key.clone(), CompareOp::Equal, 0)])
        .and_then([Op::put_with_lease(
            shared.key.clone(),
            value,
            shared.lease.id,
        )]);
    match shared.store.txn(txn).await {
        Ok(result) if result.succeeded => {
            tracing::warn!(member = %shared.id, "member key was deleted; announced it again");
            shared.view.wait_for_revision(result.revision).await;
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(member = %shared.id, error = %e, "cannot announce the member again")
        }
    }
}
