//! The driver: starts the cluster, runs the schedule step by step (resolving each step's
//! target among the members and items of the moment), checks the invariants after every
//! step, then lifts the faults and waits for the cluster to settle.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use apportion::admin::Admin;
use apportion::cluster::ClusterView;
use apportion::core::keys::{ItemId, MemberId, Prefix};
use apportion::core::values::{JsonDecoder, JsonItem};
use apportion::store::{MemoryStore, Store};
use apportion::testing::MemberOptions;
use apportion::{Member, MemberConfig};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::app::{self, Command, Pace};
use crate::mirror;
use crate::plan::{Action, ItemSpec, MemberSpec, Plan, SimClock, PREFIX};
use crate::record::{Record, SharedRecord};
use crate::report::Report;
use crate::rng::Rng;
use crate::rounds::{Rounds, SharedRounds};
use crate::serving::Happening;
use crate::store::{Journal, Latency, SimStore, Tripwire};

mod bad;
mod checking;
mod settings;
mod settle;

/// How long the cluster runs after the starting members and items, before the first step.
const WARM_UP: Duration = Duration::from_secs(2);
/// The size of a huge value.
const HUGE: usize = 1 << 20;

/// How a running member's process is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Up,
    Paused,
    Partitioned,
}

/// A member's session as the driver sees it: its process (the application task), its
/// connection, and the faults it is under.
struct Session {
    store: SimStore,
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
    mode: Mode,
    draining: bool,
}

/// The running simulation.
pub struct Driver {
    plan: Plan,
    base: MemoryStore,
    prefix: Prefix,
    /// Writes the items, as an operator would, over a connection that is never cut.
    admin: Admin<MemoryStore>,
    journal: Arc<Journal>,
    record: SharedRecord,
    rounds: SharedRounds,
    view: ClusterView<JsonDecoder>,
    mirror: JoinHandle<()>,
    sessions: BTreeMap<String, Session>,
    gone: BTreeSet<String>,
    items: BTreeMap<String, ItemSpec>,
    armed: Option<String>,
    /// Members started to settle so far (they are named after it).
    late: u32,
    /// The wall clock every member and check reads, fixed at the run's start.
    clock: SimClock,
    rng: Rng,
    report: Report,
    trace: bool,
}

impl Driver {
    /// Sets up the store, the observers and the checkers for `plan`; `trace` prints each
    /// step as it runs.
    pub async fn new(plan: Plan, trace: bool) -> Driver {
        let base = MemoryStore::with_max_txn_ops(plan.cluster.max_txn_ops);
        let journal = Arc::new(Journal::default());
        let record = Record::shared();
        let clock = SimClock::start();
        let mirror = mirror::start(&base, journal.clone(), record.clone(), clock).await;
        let view = ClusterView::start(base.clone(), PREFIX, JsonDecoder)
            .await
            .expect("the observer's connection is never cut");
        let prefix = Prefix::new(PREFIX).expect("the simulation's prefix is valid");
        Driver {
            report: Report {
                seed: plan.seed,
                steps: plan.steps.len(),
                ..Report::default()
            },
            rng: Rng::new(plan.seed ^ 0x5eed_5eed_5eed_5eed),
            plan,
            admin: Admin::new(base.clone(), prefix.clone()),
            base,
            prefix,
            journal,
            record,
            rounds: SharedRounds::default(),
            view,
            mirror,
            sessions: BTreeMap::new(),
            gone: BTreeSet::new(),
            items: BTreeMap::new(),
            armed: None,
            late: 0,
            clock,
            trace,
        }
    }

    /// Runs the whole plan and returns the figures. Stops early after a step that broke
    /// an invariant.
    pub async fn run(mut self) -> Report {
        for member in self.plan.cluster.members.clone() {
            self.join(&member);
        }
        for item in self.plan.cluster.items.clone() {
            self.put_item(item).await;
        }
        tokio::time::sleep(WARM_UP).await;
        self.check(None).await;
        for (i, step) in self.plan.steps.clone().into_iter().enumerate() {
            self.reap();
            let done = self.act(&step.action).await;
            self.trace_step(i, &step.action, done.as_deref());
            let tally = self.report.actions.entry(step.action.kind()).or_default();
            match done {
                Some(_) => tally.done += 1,
                None => tally.skipped += 1,
            }
            tokio::time::sleep(step.then).await;
            self.disarm();
            self.reap();
            self.check(Some(i)).await;
            if !Record::lock(&self.record).violations().is_empty() {
                break;
            }
        }
        if Record::lock(&self.record).violations().is_empty() {
            self.settle().await;
        }
        self.finish()
    }

    fn trace_step(&self, i: usize, action: &Action, done: Option<&str>) {
        if self.trace {
            let at = Record::lock(&self.record).elapsed();
            let what = done.unwrap_or("no target, skipped");
            println!("[{at:>9.3?}] step {i:>3}: {action} -> {what}");
        }
    }

    /// Starts a member's process.
    fn join(&mut self, spec: &MemberSpec) {
        let name = spec.name();
        let id = MemberId::new(&spec.zone, &spec.suffix).expect("generated ids are valid");
        let latency = Latency {
            rng: self.rng.fork(),
            max_ms: self.plan.cluster.latency_ms,
        };
        let member_key = self.prefix.member_key(&id);
        let store = SimStore::connect(&self.base, member_key, self.journal.clone(), latency);
        let mut config = MemberConfig::json(PREFIX, &spec.zone, &spec.suffix, spec.limit);
        config.lease_ttl = Duration::from_secs(self.plan.cluster.ttl_secs as u64);
        let options = MemberOptions {
            round_hook: Some(Rounds::hook(&self.rounds, name.clone())),
            wall_clock: Some(self.clock.base()),
            ..MemberOptions::default()
        };
        let connection = store.clone();
        let start = move || {
            Member::start_with(
                connection.clone(),
                JsonDecoder,
                config.clone(),
                options.clone(),
            )
        };
        let (commands, rx) = mpsc::unbounded_channel();
        let pace = Pace::new(self.rng.fork());
        let task = tokio::spawn(app::run(start, name.clone(), self.record.clone(), rx, pace));
        self.gone.remove(&name);
        self.sessions.insert(
            name,
            Session {
                store,
                commands,
                task,
                mode: Mode::Up,
                draining: false,
            },
        );
    }

    /// Forgets the sessions whose process has ended (left, lost its lease, crashed).
    fn reap(&mut self) {
        let ended: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.task.is_finished())
            .map(|(name, _)| name.clone())
            .collect();
        for name in ended {
            self.sessions.remove(&name);
            self.gone.insert(name);
        }
    }

    /// The name of the `pick`-th session among those that pass `fits`.
    fn pick_session(&self, pick: u64, fits: impl Fn(&Session) -> bool) -> Option<String> {
        let names: Vec<&String> = self
            .sessions
            .iter()
            .filter(|(_, s)| fits(s))
            .map(|(name, _)| name)
            .collect();
        pick_of(&names, pick).map(|n| n.to_string())
    }

    /// Sends a command to a session's application (it may have just ended: no matter).
    fn command(&self, name: &str, command: Command) {
        let _ = self.sessions[name].commands.send(command);
    }

    fn set_mode(&mut self, name: &str, mode: Mode) {
        let session = self
            .sessions
            .get_mut(name)
            .expect("picked among the sessions");
        session.store.set_reachable(mode == Mode::Up);
        session.mode = mode;
    }

    /// Runs one action; returns what it acted on, or `None` when it found no target.
    async fn act(&mut self, action: &Action) -> Option<String> {
        let up = |s: &Session| s.mode == Mode::Up;
        // An application acts whether or not its member can reach the store (a drain
        // asked for while partitioned must not hold it away from its `Fenced` event).
        let acting = |s: &Session| matches!(s.mode, Mode::Up | Mode::Partitioned);
        match action {
            Action::Join { member, returning } => {
                let gone: Vec<&String> = self.gone.iter().collect();
                let spec = match returning.and_then(|pick| pick_of(&gone, pick)) {
                    Some(name) => {
                        let (zone, suffix) = name.split_once('#').expect("member names");
                        MemberSpec {
                            zone: zone.into(),
                            suffix: suffix.into(),
                            limit: member.limit,
                        }
                    }
                    None => member.clone(),
                };
                self.join(&spec);
                Some(spec.name())
            }
            Action::Crash { pick } => {
                let name = self.pick_session(*pick, |_| true)?;
                self.crash(&name);
                Some(name)
            }
            Action::CrashLeaderMidRound {
                after,
                removals,
                additions,
            } => {
                let leader = self
                    .leader()
                    .filter(|l| self.sessions.get(l).is_some_and(up))?;
                self.arm(&leader, *after);
                for pick in removals {
                    self.remove_item(*pick).await;
                }
                for item in additions {
                    self.put_item(item.clone()).await;
                }
                Some(format!("{leader} after {after} txns"))
            }
            Action::Pause { pick } => {
                let name = self.pick_session(*pick, up)?;
                self.set_mode(&name, Mode::Paused);
                self.command(&name, Command::Pause);
                Some(name)
            }
            Action::Resume { pick } => {
                let name = self.pick_session(*pick, |s| s.mode == Mode::Paused)?;
                self.set_mode(&name, Mode::Up);
                self.command(&name, Command::Resume);
                Some(name)
            }
            Action::Partition { pick } => {
                let name = self.pick_session(*pick, up)?;
                self.set_mode(&name, Mode::Partitioned);
                Some(name)
            }
            Action::Heal { pick } => {
                let name = self.pick_session(*pick, |s| s.mode == Mode::Partitioned)?;
                self.set_mode(&name, Mode::Up);
                Some(name)
            }
            Action::Drain { pick } => {
                let name = self.pick_session(*pick, |s| acting(s) && !s.draining)?;
                self.sessions.get_mut(&name)?.draining = true;
                self.command(&name, Command::Drain);
                Some(name)
            }
            Action::Compact => {
                let revision = self.revision().await;
                self.base.compact(revision).await.ok()?;
                Some(format!("at revision {revision}"))
            }
            Action::AddItem { item } => {
                self.put_item(item.clone()).await;
                Some(item.id.clone())
            }
            Action::RemoveItem { pick } => self.remove_item(*pick).await,
            Action::SetReplication { pick, replication } => {
                let id = self.pick_item(*pick)?;
                let item = ItemSpec {
                    id: id.clone(),
                    replication: *replication,
                };
                self.put_item(item).await;
                Some(format!("{id} to {replication}"))
            }
            Action::SetLimit { pick, limit } => {
                let name = self.pick_session(*pick, acting)?;
                self.command(&name, Command::Limit(*limit));
                Some(format!("{name} to {limit}"))
            }
            Action::Restart {
                pick,
                grace,
                back_after,
            } => {
                let name = self.pick_session(*pick, |s| up(s) && !s.draining)?;
                let restart = Command::Restart {
                    grace: *grace,
                    back_after: *back_after,
                };
                self.command(&name, restart);
                Some(name)
            }
            Action::Settings(change) => self.change_settings(change).await,
            Action::Bad(bad) => self.bad(bad).await,
        }
    }

    fn pick_item(&self, pick: u64) -> Option<String> {
        let ids: Vec<&String> = self.items.keys().collect();
        pick_of(&ids, pick).map(|id| id.to_string())
    }

    /// Deletes the `pick`-th item; returns its id.
    async fn remove_item(&mut self, pick: u64) -> Option<String> {
        let id = self.pick_item(pick)?;
        self.items.remove(&id);
        let item = ItemId::new(&id).expect("the plan's item ids are valid");
        self.admin.remove_item(&item).await.ok()?;
        Some(id)
    }

    /// Writes the item's whole value, as the plan says it: a value garbled by a bad-input
    /// step is replaced, not refused.
    async fn put_item(&mut self, item: ItemSpec) {
        let value = JsonItem {
            replication: item.replication,
            exclusive: item.exclusive(),
            ..JsonItem::default()
        };
        let id = ItemId::new(&item.id).expect("the plan's item ids are valid");
        self.admin
            .put_items([(id, value)])
            .await
            .expect("the driver's connection is never cut");
        self.items.insert(item.id.clone(), item);
    }

    /// A crash: the process dies at once, its connection with it.
    fn crash(&mut self, name: &str) {
        let session = self
            .sessions
            .remove(name)
            .expect("picked among the sessions");
        session.store.set_reachable(false);
        session.task.abort();
        Record::lock(&self.record).note(name, Happening::Crashed);
        self.gone.insert(name.to_string());
    }

    /// Arms `leader`'s connection to crash it after `after` more allocator transactions.
    fn arm(&mut self, leader: &str, after: u32) {
        let session = &self.sessions[leader];
        let store = session.store.clone();
        let task = session.task.abort_handle();
        let record = self.record.clone();
        let name = leader.to_string();
        let fire = Box::new(move || {
            store.set_reachable(false);
            task.abort();
            Record::lock(&record).note(&name, Happening::Crashed);
        });
        session.store.arm(Tripwire { after, fire });
        self.armed = Some(leader.to_string());
    }

    /// Takes an unfired tripwire off; counts the one that fired.
    fn disarm(&mut self) {
        if let Some(name) = self.armed.take() {
            let still_armed = self.sessions.get(&name).is_some_and(|s| s.store.disarm());
            if !still_armed {
                self.report.mid_round_crashes += 1;
            }
        }
    }

    fn finish(mut self) -> Report {
        self.mirror.abort();
        self.judge_suspects();
        for session in self.sessions.values() {
            session.task.abort();
        }
        let record = Record::lock(&self.record);
        if self.trace {
            for line in record.lines() {
                println!("[{:>9.3?}] {}: {:?}", line.at, line.member, line.happening);
            }
        }
        self.report.happenings = record.counts();
        self.report.simulated = record.elapsed();
        self.report.violations = record.violations().to_vec();
        self.report.fingerprint = record.fingerprint();
        let rounds = Rounds::lock(&self.rounds);
        self.report.rounds = rounds.total;
        self.report.busy_rounds = rounds.busy;
        self.report.allocator_txns = self.journal.allocator_txns();
        self.report.reloads = self.journal.reloads();
        drop(rounds);
        drop(record);
        self.report
    }
}

/// The `pick`-th of `candidates`, wrapping around; `None` when there are none.
fn pick_of<T>(candidates: &[T], pick: u64) -> Option<&T> {
    if candidates.is_empty() {
        None
    } else {
        candidates.get((pick % candidates.len() as u64) as usize)
    }
}
