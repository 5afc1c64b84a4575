//! The story's cluster: members running in this process over one store (embedded or a
//! real etcd), in real time, each with the library's simple
//! [`Application`](apportion::testing::Application), plus an observer's view, the rounds
//! the allocators reported ([`Rounds`], as in the simulation), and the [`Ledger`] of what
//! the applications did.
//!
//! A crash aborts a member's application, which drops the member: renewals stop and the
//! store ends its lease one TTL later, exactly as for a process killed with SIGKILL. A
//! drain is the graceful way to go, as `apportion member` does on SIGTERM; a restart the
//! graceful way to come back (`apportion member --on-sigterm restart`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apportion::admin::Admin;
use apportion::cluster::{ClusterView, Observed, StateOf, Updates};
use apportion::core::keys::{ItemId, Prefix};
use apportion::core::values::{JsonDecoder, JsonItem};
use apportion::store::{KeyRange, LeaseId, Store};
use apportion::testing::{Command, MemberOptions};
use apportion::{Error, Member, MemberConfig};

use super::error::StoryError;
use super::ledger::{self, Ledger};
use super::script::ItemSpec;
use crate::checks::Unreadable;
use crate::plan::MemberSpec;
use crate::rounds::{Rounds, SharedRounds};

/// How long views gather a burst of changes: short, so a phase settles quickly.
const BATCH_DELAY: Duration = Duration::from_millis(5);
/// How often settling is checked.
const POLL: Duration = Duration::from_millis(50);

/// One running member's application, and the lease to revoke at the end.
struct App {
    member: apportion::testing::InProcessMember,
    lease: LeaseId,
}

/// The cluster; see the module documentation.
pub struct Cluster<S: Store> {
    store: S,
    /// Writes the items, as an operator would.
    admin: Admin<S>,
    prefix: Prefix,
    ttl: Duration,
    view: ClusterView<JsonDecoder>,
    rounds: SharedRounds,
    ledger: Arc<Mutex<Ledger>>,
    apps: BTreeMap<String, App>,
}

impl<S: Store> Cluster<S> {
    /// An empty cluster under `prefix`, whose members will hold leases of `ttl`.
    pub async fn start(
        store: S,
        prefix: &str,
        ttl: Duration,
        ledger: Arc<Mutex<Ledger>>,
    ) -> Result<Self, StoryError> {
        let view = ClusterView::start(store.clone(), prefix, JsonDecoder).await?;
        let prefix = Prefix::new(prefix).map_err(Error::from)?;
        let admin = Admin::new(store.clone(), prefix.clone());
        Ok(Cluster {
            store,
            admin,
            prefix,
            ttl,
            view,
            rounds: SharedRounds::default(),
            ledger,
            apps: BTreeMap::new(),
        })
    }

    /// Starts a member and its application.
    pub async fn join(&mut self, spec: &MemberSpec) -> Result<(), StoryError> {
        let prefix = self.prefix.as_str();
        let mut config = MemberConfig::json(prefix, &spec.zone, &spec.suffix, spec.limit);
        config.lease_ttl = self.ttl;
        config.batch_delay = BATCH_DELAY;
        let options = MemberOptions {
            round_hook: Some(Rounds::hook(&self.rounds, spec.name())),
            ..MemberOptions::default()
        };
        let member = Member::start_with(self.store.clone(), JsonDecoder, config, options).await?;
        let lease = member.lease().id;
        let (ledger, name) = (self.ledger.clone(), spec.name());
        let member = apportion::testing::Application::new(member)
            .recording(move |event| ledger::lock(&ledger).record(&name, event))
            .spawn();
        self.apps.insert(spec.name(), App { member, lease });
        Ok(())
    }

    /// The member's process dies; its lease ends one TTL later.
    pub fn crash(&mut self, name: &str) {
        if let Some(app) = self.apps.remove(name) {
            app.member.crash();
            ledger::lock(&self.ledger).stopped(name);
        }
    }

    /// Waits until none of `names` is registered any more (their leases ended).
    pub async fn wait_gone(&self, names: &[String], limit: Duration) -> Result<(), StoryError> {
        let mut states = self.view.subscribe();
        let gone = states.wait_for(|o| {
            o.state
                .members()
                .iter()
                .all(|m| !names.iter().any(|n| n == m.key.as_str()))
        });
        let gone = tokio::time::timeout(limit, gone).await.map(|_| ());
        match gone {
            Ok(()) => Ok(()),
            Err(_) => Err(StoryError::Timeout {
                what: format!("the end of the leases of {}", names.join(", ")),
                limit,
            }),
        }
    }

    /// Drains a member and waits until it has left.
    pub async fn drain(&mut self, name: &str, limit: Duration) -> Result<(), StoryError> {
        self.leave(name, Command::Drain, "drain", limit).await
    }

    /// Restarts a member in place: it hands its primaries and exclusive items over and
    /// leaves with an away record that keeps its replicas waiting for it for `grace`;
    /// once its application has ended it starts again under the same id.
    pub async fn restart(
        &mut self,
        spec: &MemberSpec,
        grace: Duration,
        limit: Duration,
    ) -> Result<(), StoryError> {
        let name = spec.name();
        self.leave(&name, Command::Restart { grace }, "restart", limit)
            .await?;
        ledger::lock(&self.ledger).left(&name);
        self.join(spec).await
    }

    /// Sends a member `command`, after which its application ends by itself, and waits
    /// until it has (the `what` of `name`, for the timeout's message). Nothing to do for a
    /// member that is not running.
    async fn leave(
        &mut self,
        name: &str,
        command: Command,
        what: &str,
        limit: Duration,
    ) -> Result<(), StoryError> {
        let Some(app) = self.apps.remove(name) else {
            return Ok(());
        };
        app.member.send(command);
        match tokio::time::timeout(limit, app.member.ended()).await {
            Ok(Ok(result)) => Ok(result?),
            Ok(Err(e)) => Err(StoryError::Crashed(format!("{name}: {e}"))),
            Err(_) => Err(StoryError::Timeout {
                what: format!("the {what} of {name}"),
                limit,
            }),
        }
    }

    /// Follows the observer's view: every state it publishes from now on.
    pub fn subscribe(&self) -> Updates<JsonDecoder> {
        self.view.subscribe()
    }

    /// The id of the member that leads now, if any.
    pub fn leader(&self) -> Option<String> {
        let observed = self.view.current();
        let state = &observed.state;
        state.leader().map(|i| state.members()[i].key.to_string())
    }

    /// How many items member `name` holds now.
    pub fn load(&self, name: &str) -> u32 {
        let observed = self.view.current();
        let state = &observed.state;
        let index = state.members().iter().position(|m| m.key.as_str() == name);
        index.map_or(0, |i| state.member_assignment_count(i))
    }

    /// The ids of the members whose application runs, sorted.
    pub fn running(&self) -> Vec<String> {
        self.apps.keys().cloned().collect()
    }

    /// Writes the items, as many per transaction as the store allows.
    pub async fn put_items(&self, items: &[ItemSpec]) -> Result<(), StoryError> {
        let values = items
            .iter()
            .map(|spec| {
                let value = JsonItem {
                    replication: spec.replication,
                    exclusive: spec.exclusive,
                    ..JsonItem::default()
                };
                Ok((ItemId::new(&spec.id).map_err(Error::from)?, value))
            })
            .collect::<Result<Vec<_>, StoryError>>()?;
        Ok(self.admin.put_items(values).await?)
    }

    /// Waits until the cluster has settled ([`apportion::testing::settle`], by the latest
    /// round the leader of the state looked at reported) and returns that state. A member
    /// whose session ends meanwhile is noted in the ledger.
    pub async fn settle(
        &mut self,
        limit: Duration,
    ) -> Result<Arc<Observed<JsonDecoder>>, StoryError> {
        let leader_round = |state: &StateOf<JsonDecoder>| {
            let leader = state.leader().map(|l| state.members()[l].key.as_str())?;
            Rounds::lock(&self.rounds).latest(leader).cloned()
        };
        let (store, view) = (&self.store, &self.view);
        let settled = apportion::testing::settle(store, view, leader_round, POLL, limit).await;
        self.reap().await;
        settled.map_err(|unsettled| StoryError::Timeout {
            what: format!("settling ({})", unsettled.diagnosis),
            limit,
        })
    }

    /// Notes members whose application ended by itself (their session was lost).
    async fn reap(&mut self) {
        let ended: Vec<String> = self
            .apps
            .iter()
            .filter(|(_, app)| app.member.is_finished())
            .map(|(name, _)| name.clone())
            .collect();
        for name in ended {
            let Some(app) = self.apps.remove(&name) else {
                continue;
            };
            let why = match app.member.ended().await {
                Ok(Ok(())) => "it left".to_string(),
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            ledger::lock(&self.ledger).problem(format!("{name} stopped unexpectedly: {why}"));
        }
    }

    /// The keys under the prefix whose value does not decode, as a read shows them now.
    pub async fn unreadable(&self) -> Result<Unreadable, StoryError> {
        Ok(Unreadable::read(&self.store, &self.prefix).await?)
    }

    /// Ends the story: every member leaves at once and the items are deleted, so a real
    /// etcd is left as it was found.
    pub async fn shut_down(mut self) -> Result<(), StoryError> {
        for (_, app) in std::mem::take(&mut self.apps) {
            app.member.crash();
            // Already gone if the member left by itself; nothing to undo then.
            let _ = self.store.revoke(app.lease).await;
        }
        let everything = KeyRange::prefix(self.prefix.root_dir());
        self.store.delete(everything).await?;
        Ok(())
    }
}
