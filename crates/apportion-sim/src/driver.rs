//! The driver: starts the cluster, runs the schedule step by step (resolving each step's
//! target among the members and items of the moment), checks the invariants after every
//! step, then lifts the faults and waits for the cluster to settle.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use apportion::core::keys::{MemberId, Prefix};
use apportion::core::values::{Decoder, JsonDecoder, JsonItem};
use apportion::store::{KeyRange, MemoryStore, Revision, Store};
use apportion::{ClusterView, Member, MemberConfig, MemberOptions, Observed};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::app::{self, Command, Pace};
use crate::checks::{self, Finding, Unreadable};
use crate::mirror;
use crate::plan::{Action, BadInput, ItemSpec, MemberSpec, Plan, PREFIX};
use crate::record::{Record, SharedRecord};
use crate::report::Report;
use crate::rng::Rng;
use crate::rounds::{Rounds, SharedRounds};
use crate::serving::Happening;
use crate::store::{Journal, Latency, SimStore, Tripwire};

/// How long the cluster gets to settle once the faults stop.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);
/// How often settling is looked at.
const SETTLE_POLL: Duration = Duration::from_millis(100);
/// How long the cluster runs after the starting members and items, before the first step.
const WARM_UP: Duration = Duration::from_secs(2);
/// The fewest members that should be running when the faults stop; more join if needed.
const MIN_MEMBERS_TO_SETTLE: usize = 2;
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
        let mirror = mirror::start(&base, journal.clone(), record.clone()).await;
        let view = ClusterView::start(base.clone(), PREFIX, JsonDecoder)
            .await
            .expect("the observer's connection is never cut");
        Driver {
            report: Report {
                seed: plan.seed,
                steps: plan.steps.len(),
                ..Report::default()
            },
            rng: Rng::new(plan.seed ^ 0x5eed_5eed_5eed_5eed),
            plan,
            base,
            prefix: Prefix::new(PREFIX).expect("the simulation's prefix is valid"),
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
        config.lease_ttl_secs = self.plan.cluster.ttl_secs;
        let options = MemberOptions {
            round_hook: Some(Rounds::hook(&self.rounds, name.clone())),
            ..MemberOptions::default()
        };
        let start = Member::start_with(store.clone(), JsonDecoder, config, options);
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
                let name = self.pick_session(*pick, |s| up(s) && !s.draining)?;
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
                let name = self.pick_session(*pick, up)?;
                self.command(&name, Command::Limit(*limit));
                Some(format!("{name} to {limit}"))
            }
            Action::Bad(bad) => self.bad(bad).await,
        }
    }

    /// Writes bad input; returns the key written.
    async fn bad(&mut self, bad: &BadInput) -> Option<String> {
        let (key, value, lease) = match bad {
            BadInput::GarbageItem { id, value } => {
                (format!("{}{id}", self.prefix.items_dir()), value.clone(), 0)
            }
            BadInput::GarbleItem { pick, value } => {
                let id = self.pick_item(*pick)?;
                (format!("{}{id}", self.prefix.items_dir()), value.clone(), 0)
            }
            BadInput::GarbageMember { name, value } => (
                format!("{}{name}", self.prefix.members_dir()),
                value.clone(),
                0,
            ),
            BadInput::GarbleMember { pick, value } => {
                let kv = self.pick_key(&self.prefix.members_dir(), *pick).await?;
                (kv.0, value.clone(), kv.1)
            }
            BadInput::GarbleAssignment { pick, value } => {
                let kv = self.pick_key(&self.prefix.assignments_dir(), *pick).await?;
                (kv.0, value.clone(), kv.1)
            }
            BadInput::ForbiddenKey { key } => (
                format!("{}{key}", self.prefix.root_dir()),
                br#"{"replication": 1, "item_limit": 1}"#.to_vec(),
                0,
            ),
            BadInput::Huge { id, valid } => {
                let key = format!("{}{id}", self.prefix.items_dir());
                let value = if *valid {
                    self.items.insert(
                        id.clone(),
                        ItemSpec {
                            id: id.clone(),
                            replication: 1,
                        },
                    );
                    let pad = "x".repeat(HUGE);
                    format!(r#"{{"replication": 1, "pad": "{pad}"}}"#).into_bytes()
                } else {
                    vec![b'x'; HUGE]
                };
                (key, value, 0)
            }
            BadInput::AbsurdReplication { id } => (
                format!("{}{id}", self.prefix.items_dir()),
                br#"{"replication": 65535}"#.to_vec(),
                0,
            ),
        };
        let lease = (lease != 0).then_some(lease);
        self.base.put(key.clone(), value, lease).await.ok()?;
        Some(key)
    }

    /// The `pick`-th key under `dir` that is held by a lease, with the lease.
    async fn pick_key(&self, dir: &str, pick: u64) -> Option<(String, i64)> {
        let kvs = self.base.range(KeyRange::prefix(dir)).await.ok()?.kvs;
        let leased: Vec<(String, i64)> = kvs
            .into_iter()
            .filter(|kv| kv.lease != 0)
            .map(|kv| (String::from_utf8_lossy(&kv.key).into_owned(), kv.lease))
            .collect();
        pick_of(&leased, pick).cloned()
    }

    fn pick_item(&self, pick: u64) -> Option<String> {
        let ids: Vec<&String> = self.items.keys().collect();
        pick_of(&ids, pick).map(|id| id.to_string())
    }

    /// Deletes the `pick`-th item; returns its id.
    async fn remove_item(&mut self, pick: u64) -> Option<String> {
        let id = self.pick_item(pick)?;
        self.items.remove(&id);
        let key = format!("{}{id}", self.prefix.items_dir());
        self.base.delete(KeyRange::key(key)).await.ok()?;
        Some(id)
    }

    async fn put_item(&mut self, item: ItemSpec) {
        let value = JsonItem {
            replication: item.replication,
            exclusive: item.exclusive(),
            ..JsonItem::default()
        };
        let bytes = JsonDecoder.encode_item(&value).expect("items encode");
        let key = format!("{}{}", self.prefix.items_dir(), item.id);
        self.base
            .put(key, bytes, None)
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

    /// The leader, by the observer's view.
    fn leader(&self) -> Option<String> {
        let observed = self.view.current();
        let state = &observed.state;
        state.leader().map(|l| state.members()[l].key.to_string())
    }

    /// The store's current revision.
    async fn revision(&self) -> Revision {
        self.base
            .range(KeyRange::key(self.prefix.root_dir()))
            .await
            .expect("the driver's connection is never cut")
            .revision
    }

    /// The observer's state, once it has caught up with the store as it is now.
    async fn caught_up(&self) -> (Revision, Arc<Observed<JsonDecoder>>) {
        let revision = self.revision().await;
        self.view.wait_for_revision(revision).await;
        (revision, self.view.current())
    }

    /// Whether the leader is up and at rest at `revision`.
    fn leader_at_rest(&self, observed: &Observed<JsonDecoder>, revision: Revision) -> bool {
        let state = &observed.state;
        let Some(leader) = state.leader().map(|l| state.members()[l].key.to_string()) else {
            return false;
        };
        observed.revision == revision
            && self
                .sessions
                .get(&leader)
                .is_some_and(|s| s.mode == Mode::Up)
            && Rounds::lock(&self.rounds).at_rest(&leader, revision)
    }

    /// The checks after a step (or, with `None`, after the warm-up).
    async fn check(&mut self, step: Option<usize>) {
        let (revision, observed) = self.caught_up().await;
        let unreadable = self.unreadable().await;
        let mut findings = rejected_findings(&observed, &unreadable);
        if self.leader_at_rest(&observed, revision) {
            self.report.at_rest_checks += 1;
            findings.extend(checks::at_rest(&observed.state, &unreadable));
        }
        let mut record = Record::lock(&self.record);
        for (rule, detail) in findings {
            let at = step.map_or("after warm-up".into(), |s| format!("after step {s}"));
            record.violate(rule, format!("{at}: {detail}"));
        }
    }

    /// The keys whose value does not decode, as a fresh read shows them now.
    async fn unreadable(&self) -> Unreadable {
        let read = self
            .base
            .range(KeyRange::prefix(self.prefix.root_dir()))
            .await
            .expect("the driver's connection is never cut");
        Unreadable::of(&self.prefix, &read)
    }

    /// Lifts every fault (the garbled items written over again, as an operator would; members
    /// repair their own keys), makes sure enough members run, and waits for the cluster to settle; then
    /// checks the settled rules.
    async fn settle(&mut self) {
        let names: Vec<String> = self.sessions.keys().cloned().collect();
        for name in names {
            match self.sessions[&name].mode {
                Mode::Up => {}
                Mode::Paused => {
                    self.set_mode(&name, Mode::Up);
                    self.command(&name, Command::Resume);
                }
                Mode::Partitioned => self.set_mode(&name, Mode::Up),
            }
        }
        let unreadable = self.unreadable().await;
        let garbled: Vec<ItemSpec> = self
            .items
            .values()
            .filter(|item| unreadable.has_item(&item.id))
            .cloned()
            .collect();
        for item in garbled {
            self.put_item(item).await;
        }
        let began = Record::lock(&self.record).elapsed();
        let deadline = tokio::time::Instant::now() + SETTLE_LIMIT;
        while tokio::time::Instant::now() < deadline {
            self.reap();
            self.ensure_members();
            tokio::time::sleep(SETTLE_POLL).await;
            self.reap();
            let (revision, observed) = self.caught_up().await;
            if self.settled(&observed, revision) {
                self.report.settled_after = Some(Record::lock(&self.record).elapsed() - began);
                let unreadable = self.unreadable().await;
                let mut findings = checks::settled(&observed.state, &unreadable);
                findings.extend(rejected_findings(&observed, &unreadable));
                let mut record = Record::lock(&self.record);
                for (rule, detail) in findings {
                    record.violate(rule, format!("settled: {detail}"));
                }
                return;
            }
        }
        let diagnosis = self.diagnose().await;
        Record::lock(&self.record).violate(
            "did not settle",
            format!("not settled {SETTLE_LIMIT:?} after the faults stopped: {diagnosis}"),
        );
    }

    /// Starts members until at least [`MIN_MEMBERS_TO_SETTLE`] run that are not draining
    /// (some may have lost their lease while paused or cut off, and end as the faults
    /// lift).
    fn ensure_members(&mut self) {
        let staying = self.sessions.values().filter(|s| !s.draining).count();
        let limit = self
            .plan
            .cluster
            .members
            .iter()
            .map(|m| m.limit)
            .max()
            .unwrap_or(1);
        for _ in staying..MIN_MEMBERS_TO_SETTLE {
            self.late += 1;
            self.join(&MemberSpec {
                zone: format!("z{}", self.late % 2),
                suffix: format!("late{}", self.late),
                limit,
            });
        }
    }

    fn settled(&self, observed: &Observed<JsonDecoder>, revision: Revision) -> bool {
        let state = &observed.state;
        self.leader_at_rest(observed, revision)
            && state.dangling().is_empty()
            && state
                .assignments()
                .iter()
                .all(|a| a.value.ready && !a.value.releasing)
    }

    /// Why the cluster is not settled, for the report.
    async fn diagnose(&self) -> String {
        let (revision, observed) = self.caught_up().await;
        let state = &observed.state;
        let leader = self.leader();
        let round = leader
            .as_ref()
            .and_then(|l| Rounds::lock(&self.rounds).latest(l).cloned());
        let unready: Vec<String> = state
            .assignments()
            .iter()
            .filter(|a| !a.value.ready)
            .map(|a| a.key.to_string())
            .collect();
        let releasing = state
            .assignments()
            .iter()
            .filter(|a| a.value.releasing)
            .count();
        format!(
            "revision {revision}, leader {leader:?} (session {:?}), its last round {round:?}, \
             not ready {unready:?}, {releasing} releasing, {} dangling, members {:?}, \
             sessions {:?}",
            leader
                .as_ref()
                .and_then(|l| self.sessions.get(l))
                .map(|s| (s.mode, s.draining)),
            state.dangling().len(),
            state
                .members()
                .iter()
                .map(|m| m.key.to_string())
                .collect::<Vec<_>>(),
            self.sessions.keys().collect::<Vec<_>>(),
        )
    }

    fn finish(mut self) -> Report {
        self.mirror.abort();
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

/// The rejected-values rule: the view counts exactly the keys under the prefix whose
/// value does not decode (called with the view caught up with the read).
fn rejected_findings(observed: &Observed<JsonDecoder>, unreadable: &Unreadable) -> Vec<Finding> {
    if unreadable.revision != observed.revision || unreadable.keys == observed.rejected {
        Vec::new()
    } else {
        let detail = format!(
            "{} keys do not decode, the view counts {}",
            unreadable.keys, observed.rejected
        );
        vec![("rejected values miscounted", detail)]
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
