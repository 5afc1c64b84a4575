//! A cluster of members in one process, each driven by a small "application" that does what
//! a real service would: mark an item ready when assigned, release an exclusive item when
//! asked, leave once drained. Every event is logged, in order, for invariant checks.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apportion::admin::Admin;
use apportion::cluster::{ClusterView, Observed, StateOf};
use apportion::core::keys::Prefix;
use apportion::testing::{MemberOptions, RoundReport};
use apportion::{Event, ItemId, JsonDecoder, JsonItem, Member, MemberConfig, Store};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub const PREFIX: &str = "/test";

/// One line of the event log: when, which member, what.
#[derive(Clone, Debug)]
pub struct Logged {
    pub at: Instant,
    pub member: String,
    pub event: Event,
}

/// What the test can ask of a running member.
enum Command {
    Drain,
    Limit(u32),
}

struct App {
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

/// The cluster: a store, an observer view, and the running members by name (`zone#suffix`).
pub struct Cluster<S: Store> {
    pub store: S,
    /// Writes the items, as an operator would.
    admin: Admin<S>,
    pub view: ClusterView<JsonDecoder>,
    pub log: Arc<Mutex<Vec<Logged>>>,
    pub rounds: Arc<Mutex<Vec<RoundReport>>>,
    apps: BTreeMap<String, App>,
    pub ttl: Duration,
    /// Makes each member's store handle (memory: its own cuttable connection).
    connect: Box<dyn Fn(&S) -> S + Send + Sync>,
}

impl<S: Store> Cluster<S> {
    pub async fn new(
        store: S,
        ttl: Duration,
        connect: impl Fn(&S) -> S + Send + Sync + 'static,
    ) -> Self {
        let view = ClusterView::start(store.clone(), PREFIX, JsonDecoder)
            .await
            .unwrap();
        Cluster {
            admin: Admin::new(store.clone(), Prefix::new(PREFIX).unwrap()),
            store,
            view,
            log: Arc::default(),
            rounds: Arc::default(),
            apps: BTreeMap::new(),
            ttl,
            connect: Box::new(connect),
        }
    }

    /// Starts a member and its application; returns the member's own store handle.
    pub async fn join(&mut self, zone: &str, suffix: &str, limit: u32) -> S {
        self.join_with(zone, suffix, limit, None).await
    }

    /// Starts a member whose solver has `solve_budget` steps (`None`: the default).
    pub async fn join_with(
        &mut self,
        zone: &str,
        suffix: &str,
        limit: u32,
        solve_budget: Option<u64>,
    ) -> S {
        let name = format!("{zone}#{suffix}");
        let handle = (self.connect)(&self.store);
        let mut config = MemberConfig::json(PREFIX, zone, suffix, limit);
        config.lease_ttl = self.ttl;
        let rounds = self.rounds.clone();
        let options = MemberOptions {
            round_hook: Some(Arc::new(move |r: &RoundReport| {
                rounds.lock().unwrap().push(r.clone())
            })),
            solve_budget,
            ..MemberOptions::default()
        };
        let member = Member::start_with(handle.clone(), JsonDecoder, config, options)
            .await
            .unwrap();
        let (commands, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(serve(member, rx, name.clone(), self.log.clone()));
        self.apps.insert(name, App { commands, task });
        handle
    }

    /// The process dies: no more renewals; its lease expires one TTL later.
    pub fn crash(&mut self, name: &str) {
        let app = self.apps.remove(name).expect("no such member");
        app.task.abort();
        self.log.lock().unwrap().push(Logged {
            at: Instant::now(),
            member: name.to_string(),
            event: Event::Fenced,
        });
    }

    /// Waits until the member's key is gone from the store (its lease ended).
    pub async fn wait_gone(&self, name: &str) {
        let mut states = self.view.subscribe();
        let gone = states.wait_for(|o| o.state.members().iter().all(|m| m.key.as_str() != name));
        tokio::time::timeout(Duration::from_secs(60), gone)
            .await
            .expect("the member's key did not go")
            .expect("the view stopped");
    }

    /// Asks a member to drain; it leaves by itself once it holds nothing.
    pub fn drain(&mut self, name: &str) {
        self.apps[name].commands.send(Command::Drain).unwrap();
    }

    pub fn set_limit(&self, name: &str, limit: u32) {
        self.apps[name]
            .commands
            .send(Command::Limit(limit))
            .unwrap();
    }

    /// Whether the member's application is still running.
    pub fn is_running(&self, name: &str) -> bool {
        self.apps.get(name).is_some_and(|a| !a.task.is_finished())
    }

    /// Writes the item's whole value, replacing whatever the key held (garbage included:
    /// that is how a test repairs an item it garbled).
    pub async fn put_item(&self, id: &str, replication: u16, exclusive: bool) {
        let value = JsonItem {
            replication,
            exclusive,
            ..JsonItem::default()
        };
        let id = ItemId::new(id).unwrap();
        self.admin.put_items([(id, value)]).await.unwrap();
    }

    pub async fn remove_item(&self, id: &str) {
        let id = ItemId::new(id).unwrap();
        self.admin.remove_item(&id).await.unwrap();
    }

    /// Waits until the leader's latest round was idle at the store's current revision with
    /// every assignment ready, and returns that state. Panics after `limit`.
    pub async fn settle_within(&self, limit: Duration) -> Arc<Observed<JsonDecoder>> {
        let start = Instant::now();
        loop {
            assert!(
                start.elapsed() < limit,
                "the cluster did not settle within {limit:?}; last rounds: {:?}",
                self.rounds
                    .lock()
                    .unwrap()
                    .iter()
                    .rev()
                    .take(3)
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            let revision = self.store.revision().await.unwrap();
            let idle = self
                .rounds
                .lock()
                .unwrap()
                .last()
                .is_some_and(|r| r.idle && r.revision == revision);
            if !idle {
                continue;
            }
            self.view.wait_for_revision(revision).await;
            let observed = self.view.current();
            let ready = observed.state.assignments().iter().all(|a| a.value.ready);
            if ready && observed.state.dangling().is_empty() {
                return observed;
            }
        }
    }

    pub async fn settle(&self) -> Arc<Observed<JsonDecoder>> {
        self.settle_within(Duration::from_secs(120)).await
    }

    pub fn events_of(&self, member: &str) -> Vec<Event> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.member == member)
            .map(|l| l.event.clone())
            .collect()
    }
}

/// The application of one member: serves what it is told.
async fn serve<S: Store>(
    mut member: Member<S, JsonDecoder>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    name: String,
    log: Arc<Mutex<Vec<Logged>>>,
) {
    loop {
        tokio::select! {
            event = member.next_event() => {
                let Some(event) = event else { return };
                log.lock().unwrap().push(Logged { at: Instant::now(), member: name.clone(), event: event.clone() });
                match event {
                    Event::Assigned { item, .. } => {
                        // The item may already have moved on; that is not an error here.
                        let _ = member.mark_ready(&item).await;
                    }
                    Event::ReleaseRequested { item } => {
                        let _ = member.release(&item).await;
                    }
                    Event::Drained => {
                        member.leave().await.unwrap();
                        return;
                    }
                    _ => {}
                }
            }
            Some(command) = commands.recv() => match command {
                Command::Drain => member.begin_drain().await.unwrap(),
                Command::Limit(limit) => member.set_item_limit(limit).await.unwrap(),
            },
        }
    }
}

/// Items' replicas as (item, sorted member names) from a state.
pub fn placement(state: &StateOf<JsonDecoder>) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for item in state.items() {
        map.entry(item.key.to_string()).or_default();
    }
    for a in state.assignments() {
        map.entry(a.key.item.to_string())
            .or_default()
            .push(a.key.member.to_string());
    }
    for members in map.values_mut() {
        members.sort();
    }
    map
}

/// How many replicas of `after` were not in `before`: the moves between two placements.
pub fn moves(before: &StateOf<JsonDecoder>, after: &StateOf<JsonDecoder>) -> usize {
    let after = placement(after);
    placement(before)
        .iter()
        .map(|(item, was)| {
            after
                .get(item)
                .map_or(0, |now| now.iter().filter(|m| !was.contains(m)).count())
        })
        .sum()
}

/// Per-member assignment counts.
pub fn loads(state: &StateOf<JsonDecoder>) -> BTreeMap<String, u32> {
    state
        .members()
        .iter()
        .enumerate()
        .map(|(i, m)| (m.key.to_string(), state.member_assignment_count(i)))
        .collect()
}

/// Checks the exclusive-owner invariant over the event log: an exclusive item is served by
/// one member at most at any time. Serving starts at `Assigned`, ends at `ReleaseRequested`,
/// `Revoked` or `Fenced` (a crash is logged as `Fenced`); `Unfenced` replays `Assigned`.
pub fn assert_single_owner(log: &[Logged], exclusive: &[&str]) {
    let mut serving: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in log {
        let stop = |serving: &mut BTreeMap<String, Vec<String>>, item: &ItemId| {
            if let Some(owners) = serving.get_mut(item.as_str()) {
                owners.retain(|m| m != &line.member);
            }
        };
        match &line.event {
            Event::Assigned { item, .. } if exclusive.contains(&item.as_str()) => {
                let owners = serving.entry(item.to_string()).or_default();
                assert!(
                    owners.is_empty(),
                    "{} started serving exclusive item {item} while {owners:?} still served it",
                    line.member
                );
                owners.push(line.member.clone());
            }
            Event::ReleaseRequested { item } | Event::Revoked { item } => stop(&mut serving, item),
            Event::Fenced => {
                for owners in serving.values_mut() {
                    owners.retain(|m| m != &line.member);
                }
            }
            _ => {}
        }
    }
}
