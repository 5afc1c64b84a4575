//! The simulated cluster: members running in this process over one store, each with the
//! library's simple [`Application`](apportion::testing::Application), plus an observer's
//! view, the latest round any leader reported, and the [`Ledger`] of what the applications
//! did.
//!
//! A crash aborts a member's application, which drops the member: renewals stop and the
//! store ends its lease one TTL later, exactly as for a process killed with SIGKILL. A
//! drain is the graceful way, as `apportion member` does on SIGTERM.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apportion::admin::Admin;
use apportion::cluster::{ClusterView, Observed};
use apportion::core::keys::{ItemId, Prefix};
use apportion::core::values::{JsonDecoder, JsonItem};
use apportion::store::{KeyRange, LeaseId, Store};
use apportion::testing::{MemberOptions, RoundReport};
use apportion::{Error, Member, MemberConfig};

use super::error::DemoError;
use super::ledger::{self, Ledger};
use super::plan::{Cast, ItemSpec};

/// How long views gather a burst of changes: short, so a demo phase settles quickly.
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
    prefix: String,
    ttl: i64,
    view: ClusterView<JsonDecoder>,
    last_round: Arc<Mutex<Option<RoundReport>>>,
    ledger: Arc<Mutex<Ledger>>,
    apps: BTreeMap<String, App>,
}

impl<S: Store> Cluster<S> {
    /// An empty cluster under `prefix`, whose members will hold leases of `ttl` seconds.
    pub async fn start(
        store: S,
        prefix: &str,
        ttl: i64,
        ledger: Arc<Mutex<Ledger>>,
    ) -> Result<Self, DemoError> {
        let view = ClusterView::start(store.clone(), prefix, JsonDecoder).await?;
        let admin = Admin::new(store.clone(), Prefix::new(prefix).map_err(Error::from)?);
        Ok(Cluster {
            store,
            admin,
            prefix: prefix.to_string(),
            ttl,
            view,
            last_round: Arc::default(),
            ledger,
            apps: BTreeMap::new(),
        })
    }

    /// Starts a member and its application.
    pub async fn join(&mut self, cast: &Cast, item_limit: u32) -> Result<(), DemoError> {
        let mut config = MemberConfig::json(&self.prefix, &cast.zone, &cast.suffix, item_limit);
        config.lease_ttl = Duration::from_secs(u64::try_from(self.ttl).unwrap_or(0));
        config.batch_delay = BATCH_DELAY;
        let last_round = self.last_round.clone();
        let options = MemberOptions {
            round_hook: Some(Arc::new(move |report: &RoundReport| {
                *last_round.lock().unwrap_or_else(|e| e.into_inner()) = Some(report.clone());
            })),
            ..MemberOptions::default()
        };
        let member = Member::start_with(self.store.clone(), JsonDecoder, config, options).await?;
        let lease = member.lease().id;
        let (ledger, name) = (self.ledger.clone(), cast.name());
        let member = apportion::testing::Application::new(member)
            .recording(move |event| ledger::lock(&ledger).record(&name, event))
            .spawn();
        self.apps.insert(cast.name(), App { member, lease });
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
    pub async fn wait_gone(&self, names: &[String], limit: Duration) -> Result<(), DemoError> {
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
            Err(_) => Err(DemoError::Timeout {
                what: format!("the end of the leases of {}", names.join(", ")),
                limit,
            }),
        }
    }

    /// Drains a member and waits until it has left.
    pub async fn drain(&mut self, name: &str, limit: Duration) -> Result<(), DemoError> {
        let Some(app) = self.apps.remove(name) else {
            return Ok(());
        };
        app.member.send(apportion::testing::Command::Drain);
        match tokio::time::timeout(limit, app.member.ended()).await {
            Ok(Ok(result)) => Ok(result?),
            Ok(Err(e)) => Err(DemoError::Crashed(format!("{name}: {e}"))),
            Err(_) => Err(DemoError::Timeout {
                what: format!("the drain of {name}"),
                limit,
            }),
        }
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
    pub async fn put_items(&self, items: &[ItemSpec]) -> Result<(), DemoError> {
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
            .collect::<Result<Vec<_>, DemoError>>()?;
        Ok(self.admin.put_items(values).await?)
    }

    /// Waits until the cluster has settled ([`apportion::testing::settle`], by the latest
    /// round any leader reported) and returns that state. A member whose session ends
    /// meanwhile is noted in the ledger.
    pub async fn settle(
        &mut self,
        limit: Duration,
    ) -> Result<Arc<Observed<JsonDecoder>>, DemoError> {
        let last_round = |_: &_| {
            let round = self.last_round.lock();
            round.unwrap_or_else(|e| e.into_inner()).clone()
        };
        let (store, view) = (&self.store, &self.view);
        let settled = apportion::testing::settle(store, view, last_round, POLL, limit).await;
        self.reap().await;
        settled.map_err(|unsettled| DemoError::Timeout {
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

    /// Ends the story: every member leaves at once and the items are deleted, so a real
    /// etcd is left as it was found.
    pub async fn shut_down(mut self) -> Result<(), DemoError> {
        for (_, app) in std::mem::take(&mut self.apps) {
            app.member.crash();
            // Already gone if the member left by itself; nothing to undo then.
            let _ = self.store.revoke(app.lease).await;
        }
        let everything = KeyRange::prefix(format!("{}/", self.prefix));
        self.store.delete(everything).await?;
        Ok(())
    }
}
