//! `Member`: one running instance of the service, as the library sees it.
//!
//! Starting a member grants a lease, announces the member key under it, keeps the lease
//! alive, mirrors the prefix, and runs four tasks: the fence guard (stop serving before the
//! lease could expire), the event feed (what this member must start and stop serving), the
//! status writer, and the allocation loop (which acts while this member leads). Dropping
//! the member stops them all; its lease then expires after one TTL.
//! [`MemberHandle::begin_drain`] then [`Member::leave`] is the graceful way out, and
//! [`Member::rejoin`] the way back after the lease was lost.
//!
//! Fencing never waits on the application: every call that needs the store gives up with
//! [`Error::Fenced`] the moment the fence goes up (changes of the member's own value are
//! kept and written once it lifts), so an application that awaits a call in its event loop
//! still sees [`Event::Fenced`] in time, whatever it was doing: serving, draining, leaving.

use std::future::Future;
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
use crate::events::Event;
use crate::feed::feed_events;
use crate::retry::retry_transient;
use crate::session::{self, Claim, Fence};
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
    /// What it was started with, to start again in [`rejoin`](Member::rejoin).
    setup: Setup<S, D>,
}

/// What a member is started from.
struct Setup<S, D: Decoder> {
    store: S,
    decoder: Arc<D>,
    config: MemberConfig<D>,
    options: MemberOptions<D>,
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

/// The member's own value as the application wants it, and whether the store has it.
pub(crate) struct OwnValue<M> {
    pub value: M,
    /// Counts the changes asked for.
    pub version: u64,
    /// The last version the store acknowledged.
    pub written: u64,
}

/// What the member's handle and its tasks share.
pub(crate) struct Shared<S, D: Decoder> {
    pub store: S,
    pub decoder: Arc<D>,
    pub prefix: Prefix,
    pub id: MemberId,
    pub key: String,
    pub lease: Lease,
    pub value: Mutex<OwnValue<D::Member>>,
    pub view: Arc<ClusterView<D>>,
    pub fence: watch::Receiver<Fence>,
    pub statuses: StatusWriter,
}

/// Optional parts of a member: the consistency check and the round hook.
pub struct MemberOptions<D: Decoder> {
    /// Decides when a replica may be relied on; default: its status is ready.
    pub consistency: ConsistencyCheck<D>,
    /// Called after each round this member leads.
    pub round_hook: Option<RoundHook>,
    /// The solver's step budget; default (`None`): derived from each instance's size, far
    /// above what a solve needs. A leader whose solves fail three times in a row steps
    /// down. Set it low only to see that happen.
    pub solve_budget: Option<u64>,
}

impl<D: Decoder> Clone for MemberOptions<D> {
    fn clone(&self) -> Self {
        MemberOptions {
            consistency: self.consistency.clone(),
            round_hook: self.round_hook.clone(),
            solve_budget: self.solve_budget,
        }
    }
}

impl<D: Decoder> Default for MemberOptions<D>
where
    D::Assignment: AssignmentValue,
{
    fn default() -> Self {
        MemberOptions {
            consistency: Arc::new(ReadyStatus),
            round_hook: None,
            solve_budget: None,
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
    /// lease (waiting for a previous holder's lease to end), and starts the loops. If it
    /// cannot start, it revokes the lease it was granted, so nothing of it stays behind.
    pub async fn start_with(
        store: S,
        decoder: D,
        config: MemberConfig<D>,
        options: MemberOptions<D>,
    ) -> Result<Self, Error> {
        Self::launch(Setup {
            store,
            decoder: Arc::new(decoder),
            config,
            options,
        })
        .await
    }

    async fn launch(setup: Setup<S, D>) -> Result<Self, Error> {
        let config = &setup.config;
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
        if config.outage_tolerance() < config.election_allowance {
            tracing::warn!(
                member = %id,
                ttl_secs = config.lease_ttl_secs,
                lowest_safe_ttl_secs = config.lowest_safe_ttl(),
                "the lease TTL is below the lowest safe TTL: one leader election of the store \
                 (up to {:?}) can fence this member and stop everything it serves",
                config.election_allowance
            );
        }
        let value = encode_member(&*setup.decoder, &config.value)?;
        let store = &setup.store;
        let lease = store.grant(config.lease_ttl_secs).await?;
        let started = async {
            let keep_alive = store.keep_alive(lease).await?;
            let key = prefix.member_key(&id);
            let claim = Claim {
                member: &id,
                key: &key,
                value: &value,
                lease: lease.id,
                timeout: config.announce_wait(),
                ttl: Duration::from_secs(config.lease_ttl_secs as u64),
            };
            session::announce(store, &claim).await?;
            let keyspace = KeySpaceOptions {
                batch_delay: config.batch_delay,
            };
            let view = ClusterView::start_for(
                store.clone(),
                &prefix,
                setup.decoder.clone(),
                Some(id.clone()),
                keyspace,
            )
            .await?;
            Ok::<_, Error>((keep_alive, key, view))
        };
        let (keep_alive, key, view) = match started.await {
            Ok(started) => started,
            Err(e) => {
                if let Err(revoke) = store.revoke(lease.id).await {
                    tracing::warn!(member = %id, lease = %lease.id, error = %revoke, "could not start, nor revoke the lease; it expires by itself");
                }
                return Err(e);
            }
        };
        let (fence_tx, fence) = watch::channel(Fence::Healthy);
        let (events_tx, events) = mpsc::unbounded_channel();
        let (statuses, status_task) = StatusWriter::start(store.clone());
        let shared = Arc::new(Shared {
            store: store.clone(),
            decoder: setup.decoder.clone(),
            prefix,
            id,
            key,
            lease,
            value: Mutex::new(OwnValue {
                value: config.value.clone(),
                version: 0,
                written: 0,
            }),
            view: Arc::new(view),
            fence,
            statuses,
        });
        let allocator = Allocator {
            member: shared.clone(),
            fence: shared.fence.clone(),
            consistency: setup.options.consistency.clone(),
            hook: setup.options.round_hook.clone(),
            solve_budget: setup.options.solve_budget,
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
        tracing::info!(member = %shared.id, lease = %lease.id, "member started");
        Ok(Member {
            handle: MemberHandle { shared },
            events,
            tasks,
            _keep_alive: keep_alive,
            setup,
        })
    }

    /// The next thing to act on; `None` once the session is over (see
    /// [`session_error`](MemberHandle::session_error), and [`rejoin`](Self::rejoin)).
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

    /// Starts a new session under the same id after the lease was lost (the event stream
    /// ended with [`Error::LeaseLost`], for instance after the process was paused for
    /// longer than the TTL): grants a new lease, announces the member again, with its
    /// current value (item limit, draining), and takes new assignments; its events start
    /// afresh (`Assigned` for whatever it is given). The lost session had already fenced
    /// the member, so nothing is being served that the new one could contradict. Called on a
    /// live session, it ends that one first (as [`leave`](Self::leave) does). On failure
    /// the member is stopped; call it again to retry.
    pub async fn rejoin(&mut self) -> Result<(), Error> {
        self.stop_tasks();
        let _ = self.shared.store.revoke(self.shared.lease.id).await;
        let mut config = self.setup.config.clone();
        config.value = self.shared.own_value().value;
        let setup = Setup {
            store: self.setup.store.clone(),
            decoder: self.setup.decoder.clone(),
            config,
            options: self.setup.options.clone(),
        };
        *self = Self::launch(setup).await?;
        tracing::warn!(member = %self.shared.id, lease = %self.shared.lease.id, "member rejoined under a new lease");
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

    /// The latest view of the cluster as this member needs it: every member, and the
    /// items this member holds a copy of with all their copies; the whole cluster only
    /// while it leads. (Rebuilding all of it after every change, in every member, was most
    /// of a large cluster's CPU.) For the whole cluster, start a
    /// [`ClusterView`](crate::ClusterView).
    pub fn state(&self) -> Arc<Observed<D>> {
        self.shared.view.current()
    }

    /// A receiver notified with every new view of the cluster, as [`state`](Self::state)
    /// describes it.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Observed<D>>> {
        self.shared.view.subscribe()
    }

    /// Why the session ended, once it has: the lease was lost.
    pub fn session_error(&self) -> Option<Error> {
        let lost = matches!(*self.shared.fence.borrow(), Fence::Lost(_));
        lost.then(|| self.shared.not_healthy())
    }

    /// Writes the status of this member's assignment of `item` (for example, ready once it
    /// has loaded the item), keeping a release request the leader may have made. Fails
    /// with [`Error::Fenced`] as soon as the member is fenced.
    pub async fn update_status(
        &self,
        item: &ItemId,
        update: impl Fn(&mut D::Assignment),
    ) -> Result<(), Error> {
        let shared = &self.shared;
        shared
            .while_healthy(shared.write_status(item, update))
            .await
    }

    /// Lets go of `item`: deletes this member's assignments of it. This is how a member
    /// acknowledges a release request once it has stopped serving an exclusive item. Fails
    /// with [`Error::Fenced`] as soon as the member is fenced (the request is told again,
    /// with the replay, once the fence lifts).
    pub async fn release(&self, item: &ItemId) -> Result<(), Error> {
        let shared = &self.shared;
        shared.while_healthy(shared.release(item)).await
    }

    /// Changes this member's item limit (the leader then moves items to match). Returns
    /// once the store has it, or at once while the member is fenced: the change is kept
    /// and written as soon as the fence lifts.
    pub async fn set_item_limit(&self, item_limit: u32) -> Result<(), Error> {
        self.shared
            .change_value(|v| v.set_item_limit(item_limit))
            .await
    }

    /// Starts leaving gracefully: marks the member exiting, so the leader moves every item
    /// it holds elsewhere (replicas only once the items stay consistent without them). Keep
    /// handling events meanwhile (exclusive items must still be released, and `Fenced` may
    /// come); once the member holds nothing, [`Event::Drained`] comes, and
    /// [`Member::leave`] ends the session. Returns once the store has the mark, or at
    /// once while the member is fenced: the mark is kept and written as soon as the fence
    /// lifts.
    pub async fn begin_drain(&self) -> Result<(), Error> {
        tracing::info!(member = %self.shared.id, "draining");
        self.shared.change_value(|v| v.set_exiting(true)).await
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
    D: RuntimeDecoder,
{
    /// Runs `call` while the member may act: gives up as soon as (or if already) the fence
    /// is up, with [`Error::Fenced`] (or [`Error::LeaseLost`]), so that no call holds the
    /// application away from its `Fenced` event.
    pub(crate) async fn while_healthy<T>(
        &self,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let mut fence = self.fence.clone();
        // The fence's read guard must be gone before `not_healthy` reads it again: a second
        // read while the fence guard waits to write would deadlock.
        let fenced = async move { fence.wait_for(|f| *f != Fence::Healthy).await.is_ok() };
        tokio::select! {
            biased;
            true = fenced => Err(self.not_healthy()),
            result = call => result,
        }
    }

    /// The error for a call made while the member is not healthy.
    fn not_healthy(&self) -> Error {
        match &*self.fence.borrow() {
            Fence::Lost(reason) => Error::LeaseLost {
                member: self.id.to_string(),
                reason: reason.clone(),
            },
            _ => Error::Fenced {
                member: self.id.to_string(),
            },
        }
    }

    /// A copy of the member's own value as the application wants it.
    pub(crate) fn own_value(&self) -> OwnValue<D::Member> {
        let own = self.value.lock().unwrap_or_else(|e| e.into_inner());
        OwnValue {
            value: own.value.clone(),
            version: own.version,
            written: own.written,
        }
    }

    /// Changes the member's own value and writes it; a write cut short by the fence is
    /// left for the event feed to finish once the fence lifts.
    pub(crate) async fn change_value(&self, change: impl Fn(&mut D::Member)) -> Result<(), Error> {
        {
            let mut own = self.value.lock().unwrap_or_else(|e| e.into_inner());
            change(&mut own.value);
            own.version += 1;
        }
        match self.while_healthy(self.write_value()).await {
            Err(Error::Fenced { .. }) => Ok(()),
            result => result,
        }
    }

    /// Writes the member's own value, keeping its lease, guarded on the key still being
    /// held by that lease.
    pub(crate) async fn write_value(&self) -> Result<(), Error> {
        let (value, version) = {
            let own = self.value.lock().unwrap_or_else(|e| e.into_inner());
            (encode_member(&*self.decoder, &own.value)?, own.version)
        };
        let key = self.key.clone();
        let lease = self.lease.id;
        let txn = Txn::new()
            .when([Compare::lease(key.clone(), CompareOp::Equal, Some(lease))])
            .and_then([Op::put_with_lease(key, value, lease)]);
        if retry_transient(|| self.store.txn(txn.clone()))
            .await?
            .succeeded
        {
            let mut own = self.value.lock().unwrap_or_else(|e| e.into_inner());
            own.written = own.written.max(version);
            Ok(())
        } else {
            Err(Error::LeaseLost {
                member: self.id.to_string(),
                reason: "the member key is no longer held by this member's lease".into(),
            })
        }
    }

    /// See [`MemberHandle::release`].
    async fn release(&self, item: &ItemId) -> Result<(), Error> {
        let observed = self.view.current();
        let ops: Vec<Op> = observed
            .state
            .local_assignments_of(item)
            .map(|l| Op::Delete(KeyRange::key(self.prefix.assignment_key(&l.assignment.key))))
            .collect();
        if ops.is_empty() {
            return Err(Error::NotAssigned {
                item: item.to_string(),
                member: self.id.to_string(),
            });
        }
        let txn = Txn::new().and_then(ops);
        let result = retry_transient(|| self.store.txn(txn.clone())).await?;
        // Seen once the deletion arrives; nothing arrives if the keys were already gone.
        let seen = self.view.wait_for_revision(result.revision);
        let _ = tokio::time::timeout(Duration::from_secs(1), seen).await;
        Ok(())
    }

    /// See [`MemberHandle::update_status`].
    pub(crate) async fn write_status(
        &self,
        item: &ItemId,
        update: impl Fn(&mut D::Assignment),
    ) -> Result<(), Error> {
        loop {
            let observed = self.view.current();
            let local = observed
                .state
                .local_assignments_of(item)
                .next()
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
                lease: entry.meta.lease,
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

pub(crate) fn encode_member<D: Decoder>(decoder: &D, value: &D::Member) -> Result<Vec<u8>, Error> {
    decoder.encode_member(value).map_err(|e| Error::Encode {
        what: "member value",
        reason: e.to_string(),
    })
}
