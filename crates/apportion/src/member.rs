//! `Member`: one running instance of the service, as the library sees it (its contract is
//! on [`Member`]), and [`MemberHandle`], the part of it other tasks can hold.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apportion_core::away::{AwayReason, AwayRecord};
use apportion_core::keys::{ItemId, MemberId, Prefix};
use apportion_core::planner::ReadyStatus;
use apportion_core::values::{AssignmentValue, Decoder, ItemValue, MemberValue};
use apportion_store::{
    Compare, CompareOp, KeepAlive, KeyRange, KeySpaceOptions, Lease, Op, Store, Txn,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::allocator::{Allocator, ConsistencyCheck, RoundHook, WallClock};
use crate::cluster::{ClusterView, Observed, Updates};
use crate::config::MemberConfig;
use crate::error::Error;
use crate::events::Event;
use crate::feed::feed_events;
use crate::retry::retry_transient;
use crate::session::{self, Claim, Fence};
use crate::status_writer::StatusWriter;

/// The clock of [`MemberOptions::wall_clock`].
fn wall_clock(fixed: Option<(Duration, tokio::time::Instant)>) -> WallClock {
    fixed.map_or_else(WallClock::system, |(unix, at)| WallClock::fixed(unix, at))
}

/// The calls an application makes on its member, from the event loop ([`Member`]) or
/// from any task ([`MemberHandle`]): written once, for both, so that they cannot differ.
/// Each type provides `shared()`.
macro_rules! member_calls {
    () => {
        /// This member's id, `ZONE#SUFFIX`.
        pub fn id(&self) -> &MemberId {
            &self.shared().id
        }

        /// The lease the member key and its assignments live under.
        pub fn lease(&self) -> Lease {
            self.shared().lease
        }

        /// The latest picture of the cluster this member has (see [`cluster`](crate::cluster)).
        pub fn state(&self) -> Arc<Observed<D>> {
            self.shared().view.current()
        }

        /// Follows this member's picture of the cluster: every new state, one per burst of
        /// changes it sees.
        pub fn subscribe(&self) -> Updates<D> {
            self.shared().view.subscribe()
        }

        /// Why the session ended, once it has: the lease was lost.
        pub fn session_error(&self) -> Option<Error> {
            let shared = self.shared();
            let lost = matches!(*shared.fence.borrow(), Fence::Lost(_));
            lost.then(|| shared.not_healthy())
        }

        /// Reports this member's copy of `item` ready: it serves the item (it has loaded
        /// it). The leader makes a copy primary only once it is ready, and drops an old
        /// copy only while the item keeps enough ready copies without it, so a copy never
        /// reported ready holds moves up. Report it again after each [`Event::Assigned`],
        /// which may be a new assignment of the same item (see [`Event`]).
        ///
        /// Fails with [`Error::Fenced`] as soon as the member is fenced (the replay after
        /// [`Event::Unfenced`] asks for it again), and with [`Error::NotAssigned`] if the
        /// item has moved on meanwhile (its [`Event::Revoked`] is on the way); neither
        /// needs more than to go on serving events.
        pub async fn mark_ready(&self, item: &ItemId) -> Result<(), Error> {
            self.update_status(item, |status| status.set_ready(true))
                .await
        }

        /// Reports this member's copy of `item` not ready: it can no longer serve it (its
        /// process died, say), so the leader relies on other copies. Fails as
        /// [`mark_ready`](Self::mark_ready) does.
        pub async fn mark_not_ready(&self, item: &ItemId) -> Result<(), Error> {
            self.update_status(item, |status| status.set_ready(false))
                .await
        }

        /// Changes the status of this member's copy of `item` with `update`: for an
        /// application's own status fields next to the ready mark (the leader's release
        /// request is kept whatever `update` does). Written side by side with other
        /// members' status writes, guarded on the assignment being the one read; `update`
        /// runs again if the assignment changed meanwhile. Fails as
        /// [`mark_ready`](Self::mark_ready) does.
        pub async fn update_status(
            &self,
            item: &ItemId,
            update: impl Fn(&mut D::Assignment),
        ) -> Result<(), Error> {
            let shared = self.shared();
            shared
                .while_healthy(shared.write_status(item, update))
                .await
        }

        /// Lets go of `item`: deletes this member's assignments of it. This is how a member
        /// acknowledges [`Event::ReleaseRequested`] once it has stopped serving an
        /// exclusive item (the next owner is assigned only then), or gives up an item it
        /// cannot serve. Fails with [`Error::Fenced`] as soon as the member is fenced (the
        /// request is told again, with the replay, once the fence lifts), and with
        /// [`Error::NotAssigned`] if the member holds no copy of it.
        pub async fn release(&self, item: &ItemId) -> Result<(), Error> {
            let shared = self.shared();
            shared.while_healthy(shared.release(item)).await
        }

        /// Changes this member's item limit (the leader then moves items to match). Returns
        /// once the store has it, or at once while the member is fenced: the change is kept
        /// and written as soon as the fence lifts.
        pub async fn set_item_limit(&self, item_limit: u32) -> Result<(), Error> {
            self.shared()
                .change_value(|v| v.set_item_limit(item_limit))
                .await
        }

        /// Starts leaving gracefully: marks the member exiting, so the leader moves every
        /// item it holds elsewhere (replicas only once the items stay consistent without
        /// them, exclusive items once released). Keep handling events meanwhile (exclusive
        /// items must still be released, and `Fenced` may come); once the member holds
        /// nothing, [`Event::Drained`] comes, and [`Member::leave`] ends the session.
        /// Items no other member can take (no room, or no other member) stay, so a drain
        /// can last forever: bound it with a timeout, then leave anyway. Returns once the
        /// store has the mark, or at once while the member is fenced: the mark is kept and
        /// written as soon as the fence lifts.
        pub async fn begin_drain(&self) -> Result<(), Error> {
            tracing::info!(member = %self.shared().id, "draining");
            self.shared().change_value(|v| v.set_exiting(true)).await
        }

        /// Starts leaving *to come back* (a restart, a redeploy on the same host): marks the
        /// member restarting, so the leader moves its primaries to other consistent
        /// replicas and asks for its exclusive items back, gives it nothing new, and keeps
        /// its replicas where they are (see [`away`](apportion_core::away)). Keep handling
        /// events meanwhile (exclusive items must be released); once the member holds only
        /// replicas that will wait for it, [`Event::ReadyToRestart`] comes, and
        /// [`Member::leave_for_restart`] ends the session. A replica whose item would drop
        /// below the cluster's `min_ready` without it moves first, as in a drain, so the
        /// wait can be long: bound it, then leave anyway (the items short of `min_ready`
        /// are then refilled at once). Returns once the store has the mark, or at once
        /// while fenced (the mark is written when the fence lifts).
        pub async fn begin_restart(&self) -> Result<(), Error> {
            tracing::info!(member = %self.shared().id, "preparing to restart");
            self.shared().change_value(|v| v.set_restarting(true)).await
        }

        /// Calls a restart off before [`Member::leave_for_restart`]: the member takes work
        /// again (its primaries come back as the leader rebalances).
        pub async fn cancel_restart(&self) -> Result<(), Error> {
            tracing::info!(member = %self.shared().id, "restart called off");
            self.shared().change_value(|v| v.set_restarting(false)).await
        }
    };
}

/// A running member: one instance of the service, as the library sees it.
///
/// [`start`](Self::start) grants the member a lease, announces its key
/// (`PREFIX/members/ZONE#SUFFIX`) under it, keeps the lease alive, mirrors the keys under
/// the prefix, and runs the member's tasks: the fence guard (stop serving before the lease
/// could expire), the event feed (what this member must start and stop serving), the
/// status writer, and the allocation loop, which acts while this member leads (see the
/// [crate documentation](crate)). Dropping the member stops them all; its lease then
/// expires after one TTL, and its items go to the other members.
///
/// The application takes [`Event`]s from [`next_event`](Self::next_event), in one loop,
/// and serves what they say ([`Event`] gives the rules and the order). It reports each
/// copy ready once it serves it ([`mark_ready`](Self::mark_ready)), which is what lets
/// the leader move a primary or drop an old copy, and hands exclusive items back when
/// asked ([`release`](Self::release)). Other tasks act through a [`MemberHandle`]
/// ([`handle`](Self::handle)), which has the same calls; the events stay here, in one
/// place.
///
/// [`begin_drain`](Self::begin_drain), then [`leave`](Self::leave) once
/// [`Event::Drained`] comes, is the graceful way out. When [`next_event`](Self::next_event)
/// returns `None`, the lease was lost ([`session_error`](Self::session_error) says why):
/// [`rejoin`](Self::rejoin) is the way back.
///
/// Fencing never waits on the application: every call that needs the store gives up with
/// [`Error::Fenced`] the moment the fence goes up (changes of the member's own value, its
/// limit and the drain, are kept and written once it lifts), so an application that awaits
/// a call in its event loop still sees [`Event::Fenced`] in time, whatever it was doing:
/// serving, draining, leaving.
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
    config: MemberConfig<D::Member>,
    options: MemberOptions<D>,
}

/// What a member's application can do from any task: report status, release items, change
/// its limit, start draining, read the view; the calls of [`Member`] but for the events
/// and the session's end. Cheap to clone. A handle belongs to one session: after
/// [`Member::rejoin`], take a new one.
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

/// The member's own value as the application wants it, and whether the store has it.
pub(crate) struct OwnValue<M> {
    pub value: M,
    /// Counts the changes asked for.
    pub version: u64,
    /// The last version the store acknowledged.
    pub written: u64,
    /// The mod revision of the member key as this member last wrote or adopted it: a newer
    /// one is someone else's edit (an operator's drain or limit), which the member adopts
    /// rather than undo with its next write.
    pub revision: i64,
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
    /// The check that says which copies are consistent (the allocator's), for the feed's
    /// judgement of when a restarting member may leave.
    pub consistency: ConsistencyCheck<D>,
}

/// Hooks into a member's allocation loop, for tests, the simulation and benchmarks
/// ([`Member::start_with`]): the consistency check, a call after every round, and the
/// solver's budget. A service uses [`Member::start`], which takes the defaults.
pub struct MemberOptions<D: Decoder> {
    /// Decides when a replica may be relied on; default: its status is ready.
    pub consistency: ConsistencyCheck<D>,
    /// Called after each round this member leads.
    pub round_hook: Option<RoundHook>,
    /// The solver's step budget; default (`None`): derived from each instance's size, far
    /// above what a solve needs. A leader whose solves fail three times in a row steps
    /// down. Set it low only to see that happen.
    pub solve_budget: Option<u64>,
    /// The wall clock a freeze's end and an away record's time are read from, as the time
    /// since the Unix epoch at a runtime instant, from which it advances with the runtime's
    /// clock; default (`None`): the system's, read when the member starts. The simulation
    /// fixes it, so that under paused time whether a freeze is in force at a simulated
    /// instant (hence the run) depends on the seed alone, not on the day it runs.
    pub wall_clock: Option<(Duration, tokio::time::Instant)>,
}

impl<D: Decoder> Clone for MemberOptions<D> {
    fn clone(&self) -> Self {
        MemberOptions {
            consistency: self.consistency.clone(),
            round_hook: self.round_hook.clone(),
            solve_budget: self.solve_budget,
            wall_clock: self.wall_clock,
        }
    }
}

impl<D: Decoder> Default for MemberOptions<D> {
    fn default() -> Self {
        MemberOptions {
            consistency: Arc::new(ReadyStatus),
            round_hook: None,
            solve_budget: None,
            wall_clock: None,
        }
    }
}

impl<S, D> Member<S, D>
where
    S: Store,
    D: Decoder,
{
    /// Starts a member on `store`, whose values `decoder` reads and writes
    /// ([`JsonDecoder`](crate::JsonDecoder) with [`MemberConfig::json`]): validates the
    /// configuration, claims the member key under a new lease (waiting for a previous
    /// holder's lease to end, see [`Error::Taken`]), and starts the loops. If it cannot
    /// start, it revokes the lease it was granted, so nothing of it stays behind.
    pub async fn start(
        store: S,
        decoder: D,
        config: MemberConfig<D::Member>,
    ) -> Result<Self, Error> {
        Self::start_with(store, decoder, config, MemberOptions::default()).await
    }

    /// [`start`](Self::start) with hooks into the allocation loop, for tests, the
    /// simulation and benchmarks (see [`testing`](crate::testing)).
    pub async fn start_with(
        store: S,
        decoder: D,
        config: MemberConfig<D::Member>,
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
        let ttl_secs = config.ttl_secs()?;
        let margin = config.margin();
        if margin >= config.lease_ttl {
            return Err(Error::Config(format!(
                "fence margin {margin:?} must be shorter than the lease TTL of {ttl_secs} s"
            )));
        }
        if config.outage_tolerance() < config.election_allowance {
            tracing::warn!(
                member = %id,
                ttl_secs,
                lowest_safe_ttl_secs = config.lowest_safe_ttl().as_secs(),
                "the lease TTL is below the lowest safe TTL: one leader election of the store \
                 (up to {:?}) can fence this member and stop everything it serves",
                config.election_allowance
            );
        }
        let value = encode_member(&*setup.decoder, &config.value)?;
        let store = &setup.store;
        let lease = store.grant(ttl_secs).await?;
        let started = async {
            let keep_alive = store.keep_alive(lease).await?;
            let key = prefix.member_key(&id);
            let claim = Claim {
                member: &id,
                key: &key,
                value: &value,
                lease: lease.id,
                timeout: config.announce_wait(),
                ttl: config.lease_ttl,
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
                revision: 0,
            }),
            view: Arc::new(view),
            fence,
            statuses,
            consistency: setup.options.consistency.clone(),
        });
        let allocator = Allocator {
            member: shared.clone(),
            fence: shared.fence.clone(),
            consistency: setup.options.consistency.clone(),
            hook: setup.options.round_hook.clone(),
            solve_budget: setup.options.solve_budget,
            clock: wall_clock(setup.options.wall_clock),
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

    /// The next thing to act on, in the order [`Event`] describes; `None` once the session
    /// is over: the lease was lost ([`session_error`](Self::session_error) says why, and
    /// [`rejoin`](Self::rejoin) starts a new session).
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// A handle for the application's other tasks: the same calls as the member's, for
    /// this session.
    pub fn handle(&self) -> MemberHandle<S, D> {
        self.handle.clone()
    }

    /// Ends the session: revokes the lease, so the member key and every assignment it still
    /// holds go at once. After [`Event::Drained`] it holds nothing; without a drain, its
    /// items are simply gone from it, and the leader places them again.
    pub async fn leave(mut self) -> Result<(), Error> {
        self.stop_tasks();
        self.shared().store.revoke(self.shared().lease.id).await?;
        Ok(())
    }

    /// Ends the session *to come back* within `grace`: writes this member's away record
    /// (the replicated items it holds, under a lease of its own that ends after `grace`),
    /// then revokes the session's lease. While the record lives, the leader leaves those
    /// items one replica short instead of loading them elsewhere (unless one would drop
    /// below `min_ready`); a process that starts again under the same zone and suffix
    /// within `grace` gets them back. Call it after [`Event::ReadyToRestart`] (see
    /// [`begin_restart`](MemberHandle::begin_restart)), once the application has stopped
    /// serving: the copies go with the session like on [`leave`](Self::leave). If this
    /// session no longer holds the member key (its lease was lost), no record is written
    /// and the error says so.
    pub async fn leave_for_restart(mut self, grace: Duration) -> Result<(), Error> {
        self.stop_tasks();
        let shared = self.shared();
        let observed = shared.view.current();
        let mut items: Vec<ItemId> = observed
            .state
            .local_assignments()
            .filter(|copy| !copy.item.value.is_exclusive())
            .map(|copy| copy.item.key.clone())
            .collect();
        items.dedup();
        let held = items.len();
        let ttl_secs = grace.as_secs().max(1) + u64::from(grace.subsec_nanos() > 0);
        let record = AwayRecord {
            reason: AwayReason::Restart,
            until_unix_secs: wall_clock(self.setup.options.wall_clock).unix_now() + ttl_secs,
            items,
        };
        let store = &shared.store;
        let lease = store.grant(ttl_secs as i64).await?;
        let write = Txn::new()
            .when([Compare::lease(
                shared.key.as_bytes(),
                CompareOp::Equal,
                Some(shared.lease.id),
            )])
            .and_then([Op::put_with_lease(
                shared.prefix.away_key(&shared.id),
                record.encode(),
                lease.id,
            )]);
        let written = store.txn(write).await;
        if !matches!(written, Ok(ref r) if r.succeeded) {
            let _ = store.revoke(lease.id).await;
            written?;
            return Err(Error::LeaseLost {
                member: shared.id.to_string(),
                reason: "the member key is no longer under this session's lease".into(),
            });
        }
        store.revoke(shared.lease.id).await?;
        tracing::info!(member = %shared.id, items = held, grace_secs = ttl_secs, "left to restart");
        Ok(())
    }

    /// Starts a new session under the same id after the lease was lost (the event stream
    /// ended with [`Error::LeaseLost`], for instance after the process was paused for
    /// longer than the TTL): grants a new lease, announces the member again, with its
    /// current value (item limit, draining), and takes new assignments; its events start
    /// afresh (`Assigned` for whatever it is given). The lost session had already fenced
    /// the member, so nothing is being served that the new one could contradict. Called on a
    /// live session, it ends that one first (as [`leave`](Self::leave) does). On failure
    /// the member is stopped; call it again to retry. Handles of the old session act on
    /// nothing any more: take new ones.
    pub async fn rejoin(&mut self) -> Result<(), Error> {
        self.stop_tasks();
        let _ = self.shared().store.revoke(self.shared().lease.id).await;
        let mut config = self.setup.config.clone();
        config.value = self.shared().own_value().value;
        let setup = Setup {
            store: self.setup.store.clone(),
            decoder: self.setup.decoder.clone(),
            config,
            options: self.setup.options.clone(),
        };
        *self = Self::launch(setup).await?;
        tracing::warn!(member = %self.shared().id, lease = %self.shared().lease.id, "member rejoined under a new lease");
        Ok(())
    }

    fn stop_tasks(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }

    fn shared(&self) -> &Shared<S, D> {
        &self.handle.shared
    }

    member_calls!();
}

impl<S, D> MemberHandle<S, D>
where
    S: Store,
    D: Decoder,
{
    fn shared(&self) -> &Shared<S, D> {
        &self.shared
    }

    member_calls!();
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
    D: Decoder,
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
            revision: own.revision,
        }
    }

    /// Takes in an edit someone else made to this member's value (an operator's drain or
    /// limit through `apportion drain` or [`Admin`](crate::admin::Admin)), so that the
    /// member's own next write (a limit it sets, a step-down as leader, a write-back after
    /// a fence) starts from it instead of undoing it. A change of its own still waiting to
    /// be written (cut short by the fence) wins: the application asked for it last.
    pub(crate) fn adopt_edits(&self, observed: &Observed<D>) {
        let Some(index) = observed.state.local_member() else {
            return;
        };
        let entry = &observed.state.members()[index];
        let mut own = self.value.lock().unwrap_or_else(|e| e.into_inner());
        if own.written == own.version
            && entry.meta.mod_revision > own.revision
            && entry.meta.lease == Some(self.lease.id)
        {
            own.value = entry.value.clone();
            own.revision = entry.meta.mod_revision;
        }
    }

    /// Changes the member's own value and writes it; a write cut short by the fence is
    /// left for the event feed to finish once the fence lifts.
    pub(crate) async fn change_value(&self, change: impl Fn(&mut D::Member)) -> Result<(), Error> {
        self.adopt_edits(&self.view.current());
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
        let response = retry_transient(|| self.store.txn(txn.clone())).await?;
        if response.succeeded {
            let mut own = self.value.lock().unwrap_or_else(|e| e.into_inner());
            own.written = own.written.max(version);
            own.revision = own.revision.max(response.revision);
            Ok(())
        } else {
            Err(Error::LeaseLost {
                member: self.id.to_string(),
                reason: "the member key is no longer held by this member's lease".into(),
            })
        }
    }

    /// See [`Member::release`].
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

    /// See [`Member::update_status`].
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
