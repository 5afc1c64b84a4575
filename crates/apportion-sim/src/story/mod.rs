//! The story the demo tells: a cluster in this process, over any [`Store`] (the embedded
//! one or a real etcd), in real time with short leases, taken through eight phases (initial
//! allocation, a crash, a zone down and back, a rolling restart that drains each member and
//! one that restarts each in place, a drain, members joining).
//!
//! Where the simulation draws random faults on a paused clock to hunt for bugs, the story
//! shows a person what the library does, at the pace it does it. It is judged by the
//! simulation's own rules, so the two cannot disagree on what correct means: after each
//! phase the cluster must settle ([`apportion::testing::settle`]) to a state that passes
//! [`checks::settled`], and the applications' event streams must never show two owners
//! of an exclusive item at once (the ledger, by the library's serving rule).
//!
//! Besides the verdict, each phase reports what it cost: the replicas and primaries that
//! moved and the copies returned to their holders ([`Figures`], from the event streams),
//! the fewest ready copies any replicated item had meanwhile (from every state the view
//! showed), and how long it took. The two rolling restarts are told one after the other so
//! that their figures can be compared.
//!
//! This module returns data: what each phase is about to do ([`Phase`]) and how it went
//! ([`Outcome`]). Wording and printing them is the caller's job (`apportion demo`). A
//! broken invariant is an outcome and the story goes on; only a failure to act (the store
//! gone, a cluster that never settles) is a [`StoryError`].

mod cluster;
mod error;
mod ledger;
mod lowest;
mod script;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apportion::cluster::{Observed, StateOf};
use apportion::core::values::{ItemValue, JsonDecoder};
use apportion::store::Store;

use crate::checks;
use crate::plan::MemberSpec;
use cluster::Cluster;
pub use error::StoryError;
pub use ledger::Figures;
use ledger::Ledger;
use lowest::LowestReady;
use script::REPLICATION;
pub use script::{ItemSpec, Script, Size, SizeError};

/// The longest a cluster may take to settle after one action.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);
/// How long a member restarting in place may stay away before its replicas are placed
/// elsewhere: ample, since it starts again at once.
const RESTART_GRACE: Duration = Duration::from_secs(30);

/// One phase, as it stands when it begins: what will happen, and to whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The members join and the items arrive.
    InitialAllocation {
        /// Members joining.
        members: usize,
        /// Zones they are in.
        zones: usize,
        /// Each member's item limit.
        item_limit: u32,
        /// Items arriving.
        items: usize,
        /// How many of them are exclusive.
        exclusive: usize,
        /// The replication of the others.
        replication: u16,
    },
    /// One member's process dies without a word; its lease ends one TTL later.
    MemberCrash {
        /// Its id.
        member: String,
        /// Whether it leads now.
        leader: bool,
        /// How many items it holds now.
        load: u32,
    },
    /// The rest of the crashed member's zone dies.
    ZoneDown {
        /// The zone.
        zone: String,
        /// The ids of its members still running.
        members: Vec<String>,
    },
    /// Every member of that zone starts again.
    ZoneBack {
        /// The zone.
        zone: String,
        /// The ids of its members.
        members: Vec<String>,
    },
    /// Every member in turn leaves and starts again, once the cluster has settled.
    RollingRestart {
        /// How each member leaves.
        mode: RestartMode,
    },
    /// One member drains and leaves for good.
    GracefulDrain {
        /// Its id.
        member: String,
    },
    /// New members join.
    MembersJoin {
        /// Their ids.
        members: Vec<String>,
    },
}

/// How a rolling restart takes each member out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartMode {
    /// It drains first: its items move to the others before it leaves, and it starts
    /// again empty.
    Drain,
    /// It restarts in place (`Command::Restart`): it hands its primaries and exclusive
    /// items over, and its replicas wait for it, one short, for up to `grace`; started
    /// again under the same id, it gets them back.
    Restart {
        /// How long its replicas wait.
        grace: Duration,
    },
}

/// How one phase went, once the cluster settled.
pub struct Outcome {
    /// The settled state, for the caller's tables.
    pub settled: Arc<Observed<JsonDecoder>>,
    /// From the phase's first action until the cluster settled.
    pub took: Duration,
    /// Wanted replicas that no member holds (a lost zone can leave some).
    pub unfilled: u64,
    /// What the applications' event streams showed.
    pub figures: Figures,
    /// The fewest members holding a ready copy of any replicated item in any state the
    /// view showed during the phase; `None` without replicated items.
    pub lowest_ready: Option<u32>,
    /// Every broken invariant, one sentence each: the settled state's first, then what
    /// the event streams showed. Empty when every invariant held.
    pub problems: Vec<String>,
}

impl Outcome {
    /// Whether every invariant held.
    pub fn held(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The story being told; see the module documentation.
pub struct Story<S: Store> {
    cluster: Cluster<S>,
    script: Script,
    ledger: Arc<Mutex<Ledger>>,
    ttl: Duration,
    /// Phases begun so far.
    begun: usize,
}

impl<S: Store> Story<S> {
    /// An empty cluster on `store` under `prefix`, whose members hold leases of `ttl`,
    /// ready to play `script`. Call [`Story::end`] when done, whatever happened, to remove
    /// everything the story wrote.
    pub async fn start(
        store: S,
        prefix: &str,
        ttl: Duration,
        script: Script,
    ) -> Result<Self, StoryError> {
        let ledger = Arc::new(Mutex::new(Ledger::new(script.exclusive())));
        let cluster = Cluster::start(store, prefix, ttl, ledger.clone()).await?;
        Ok(Story {
            cluster,
            script,
            ledger,
            ttl,
            begun: 0,
        })
    }

    /// The next phase, described from the cluster as it is now (who leads, who holds
    /// what); `None` once all eight have begun.
    pub fn next_phase(&mut self) -> Option<Phase> {
        let script = &self.script;
        let phase = match self.begun {
            0 => Phase::InitialAllocation {
                members: script.members.len(),
                zones: script.zones().len(),
                item_limit: script.item_limit,
                items: script.items.len(),
                exclusive: script.exclusive().len(),
                replication: REPLICATION,
            },
            1 => {
                let member = script.crashed.clone();
                Phase::MemberCrash {
                    leader: self.cluster.leader().as_ref() == Some(&member),
                    load: self.cluster.load(&member),
                    member,
                }
            }
            2 => {
                let zone = script.incident_zone.clone();
                let in_zone = format!("{zone}#");
                let members = self.cluster.running();
                let members = members.into_iter().filter(|n| n.starts_with(&in_zone));
                Phase::ZoneDown {
                    members: members.collect(),
                    zone,
                }
            }
            3 => Phase::ZoneBack {
                zone: script.incident_zone.clone(),
                members: self.in_incident_zone().map(|m| m.name()).collect(),
            },
            4 => Phase::RollingRestart {
                mode: RestartMode::Drain,
            },
            5 => Phase::RollingRestart {
                mode: RestartMode::Restart {
                    grace: RESTART_GRACE,
                },
            },
            6 => Phase::GracefulDrain {
                member: script.drained.clone(),
            },
            7 => Phase::MembersJoin {
                members: script.joiners.iter().map(|m| m.name()).collect(),
            },
            _ => return None,
        };
        self.begun += 1;
        Some(phase)
    }

    /// Plays `phase`, waits for the cluster to settle, and judges the settled state and
    /// what the applications heard meanwhile, watching every state on the way.
    pub async fn play(&mut self, phase: &Phase) -> Result<Outcome, StoryError> {
        let began = Instant::now();
        ledger::lock(&self.ledger).begin();
        let mut lowest = LowestReady::watch(self.cluster.subscribe());
        let settled = lowest
            .during(async {
                self.act(phase).await?;
                self.cluster.settle(SETTLE_LIMIT).await
            })
            .await?;
        let took = began.elapsed();
        let unreadable = self.cluster.unreadable().await?;
        let findings = checks::settled(&settled.state, &unreadable);
        let mut problems: Vec<String> = findings
            .into_iter()
            .map(|(rule, detail)| format!("{rule}: {detail}"))
            .collect();
        let (figures, heard) = ledger::lock(&self.ledger).take();
        problems.extend(heard);
        Ok(Outcome {
            unfilled: unfilled(&settled.state),
            settled,
            took,
            figures,
            lowest_ready: lowest.lowest(),
            problems,
        })
    }

    /// Ends the story: every member stops and everything under the prefix is deleted, so a
    /// real etcd is left as it was found.
    pub async fn end(self) -> Result<(), StoryError> {
        self.cluster.shut_down().await
    }

    /// What `phase` does to the cluster.
    async fn act(&mut self, phase: &Phase) -> Result<(), StoryError> {
        match phase {
            Phase::InitialAllocation { .. } => {
                for member in &self.script.members {
                    self.cluster.join(member).await?;
                }
                self.cluster.put_items(&self.script.items).await?;
            }
            Phase::MemberCrash { member, .. } => {
                self.cluster.crash(member);
                let gone = std::slice::from_ref(member);
                self.cluster.wait_gone(gone, self.lease_limit()).await?;
            }
            Phase::ZoneDown { members, .. } => {
                for member in members {
                    self.cluster.crash(member);
                }
                self.cluster.wait_gone(members, self.lease_limit()).await?;
            }
            Phase::ZoneBack { .. } => {
                let back: Vec<_> = self.in_incident_zone().cloned().collect();
                for member in &back {
                    self.cluster.join(member).await?;
                }
            }
            Phase::RollingRestart { mode } => {
                for member in &self.script.members {
                    match *mode {
                        RestartMode::Drain => {
                            self.cluster.drain(&member.name(), SETTLE_LIMIT).await?;
                            self.cluster.join(member).await?;
                        }
                        RestartMode::Restart { grace } => {
                            self.cluster.restart(member, grace, SETTLE_LIMIT).await?;
                        }
                    }
                    self.cluster.settle(SETTLE_LIMIT).await?;
                }
            }
            Phase::GracefulDrain { member } => self.cluster.drain(member, SETTLE_LIMIT).await?,
            Phase::MembersJoin { .. } => {
                for member in &self.script.joiners {
                    self.cluster.join(member).await?;
                }
            }
        }
        Ok(())
    }

    /// The starting members of the zone that goes down.
    fn in_incident_zone(&self) -> impl Iterator<Item = &MemberSpec> {
        let zone = &self.script.incident_zone;
        self.script.members.iter().filter(move |m| &m.zone == zone)
    }

    /// How long a crashed member's lease may take to end.
    fn lease_limit(&self) -> Duration {
        3 * self.ttl + Duration::from_secs(10)
    }
}

/// How many wanted replicas have no member.
fn unfilled(state: &StateOf<JsonDecoder>) -> u64 {
    (0..state.items().len())
        .map(|i| {
            let wanted = u64::from(state.items()[i].value.replication());
            wanted.saturating_sub(state.item_assignments(i).len() as u64)
        })
        .sum()
}
