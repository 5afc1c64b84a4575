//! The in-process shape: every member is a [`Member`] in this process, on a connection of
//! its own, served by a task; a round hook on every member reports each leader round, which
//! is how the benchmark knows the leader is idle and counts rounds, transactions and
//! changes.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use apportion::cluster::ClusterView;
use apportion::core::values::JsonDecoder;
use apportion::store::Store;
use apportion::testing::{self, Application, MemberOptions, RoundReport};
use apportion::{Member, MemberConfig};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::line::ProcessFigures;
use super::{ConvergeOptions, Idle, Members, Totals};

/// The members, as tasks of this process.
pub(super) struct InProcess<S> {
    /// The benchmark's own client, to read the store's current revision.
    store: S,
    /// Every leader round of every member, in order.
    rounds: Arc<Mutex<Vec<RoundReport>>>,
    /// Each member's id and the task serving it (it ends when the member's session does).
    apps: Vec<(String, JoinHandle<()>)>,
}

impl<S: Store> InProcess<S> {
    /// Starts `options.members` members one after another (so member 0 is the oldest and
    /// leads), each on a connection from `connect`.
    pub async fn start<F: Future<Output = Result<S, String>>>(
        store: &S,
        options: &ConvergeOptions,
        connect: impl Fn() -> F,
    ) -> Result<Self, String> {
        let rounds: Arc<Mutex<Vec<RoundReport>>> = Arc::default();
        let mut apps = Vec::new();
        for i in 0..options.members {
            let (zone, suffix) = options.member_name(i);
            let id = format!("{zone}#{suffix}");
            let mut config =
                MemberConfig::json(&options.prefix, zone, suffix, options.item_limit());
            config.lease_ttl = options.lease_ttl;
            let log = rounds.clone();
            let hooked = MemberOptions {
                round_hook: Some(Arc::new(move |r: &RoundReport| {
                    log.lock().unwrap().push(r.clone())
                })),
                ..MemberOptions::default()
            };
            let member = Member::start_with(connect().await?, JsonDecoder, config, hooked)
                .await
                .map_err(|e| e.to_string())?;
            apps.push((id, tokio::spawn(serve(member))));
        }
        Ok(InProcess {
            store: store.clone(),
            rounds,
            apps,
        })
    }
}

impl<S: Store> Members for InProcess<S> {
    const SHAPE: &'static str = "in-process";

    fn check(&mut self) -> Result<(), String> {
        if self.apps.iter().any(|(_, app)| app.is_finished()) {
            return Err("a member's session ended during the benchmark (see above)".into());
        }
        Ok(())
    }

    /// Idle when the leader's last round was at the store's current revision and planned
    /// nothing ([`testing::at_rest`]); the state is the view's once it has caught up with
    /// that revision.
    async fn idle(&mut self, view: &ClusterView<JsonDecoder>) -> Result<Option<Idle>, String> {
        let (revision, observed) = testing::caught_up(&self.store, view)
            .await
            .map_err(|e| e.to_string())?;
        let latest = self.rounds.lock().unwrap().last().cloned();
        let idle = observed.revision == revision && testing::at_rest(latest.as_ref(), revision);
        Ok(idle.then(|| (Instant::now(), observed)))
    }

    async fn totals(&mut self) -> Result<Totals, String> {
        let rounds = self.rounds.lock().unwrap();
        Ok(rounds.iter().fold(Totals::default(), |totals, report| {
            totals
                + Totals {
                    rounds: 1,
                    txns: report.txns,
                    failed_txns: report.failed_txns,
                    changes: report.changes,
                }
        }))
    }

    async fn kill(&mut self, id: &str) -> Result<Instant, String> {
        let at = self
            .apps
            .iter()
            .position(|(member, _)| member == id)
            .ok_or_else(|| format!("no member {id} to kill"))?;
        let killed_at = Instant::now();
        self.apps.remove(at).1.abort();
        Ok(killed_at)
    }

    fn lease_losses(&self) -> usize {
        self.apps
            .iter()
            .filter(|(_, app)| app.is_finished())
            .count()
    }

    async fn stop(self, _leader: Option<String>) -> Result<Option<ProcessFigures>, String> {
        for (_, app) in self.apps {
            app.abort();
        }
        Ok(None)
    }
}

/// Serves a member's events as a real service would ([`Application`]): each item is loaded
/// (here: at once) and reported ready by a task of its own, so reports do not queue behind
/// each other. Returns when the member's session ends, saying why.
async fn serve<S: Store>(member: Member<S, JsonDecoder>) {
    // The benchmark sends no commands: its members neither drain nor change their limits.
    let (_, commands) = mpsc::unbounded_channel();
    let app = Application::new(member).ready_concurrently();
    if let Err(e) = app.run(commands).await {
        eprintln!("{e}");
    }
}
