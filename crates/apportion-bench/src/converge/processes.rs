//! The processes shape: every member is an `apportion member` process on etcd, as a
//! deployment runs them: its own runtime, connection, lease renewals and memory. The
//! caller's launcher starts each one from a [`MemberSpec`]. Without `--exec` such a member
//! marks each assignment ready itself as soon as it is assigned, one after another in its
//! event loop.
//!
//! The benchmark watches them from outside:
//! - settled: its cluster view, as in process, and the leader's latest idle round from its
//!   metrics (`apportion_idle_round_revision`), the same rule as the in-process round hook
//!   (a quiet period used before could pass while a long solve was still running);
//! - rounds, transactions and changes: each member's Prometheus metrics (`--metrics-addr`
//!   on a free loopback port), summed over the members (only a leader counts any);
//! - lease losses: the `rejoined` lines of their `--json` output;
//! - their warnings: their stderr, passed on line by line with the member's id in front;
//! - memory and CPU: `/proc/PID`, read while the process is still alive.
//!
//! Each member is started once the one before it has joined, so that member 0 is the
//! oldest and leads, as in process. Every member is stopped at the end, and on every way
//! out (a [`Drop`] guard): SIGTERM then SIGINT (drain, then leave at once: with every member
//! draining there is nowhere to move the items), SIGKILL after a grace period; the launcher
//! ties each member's life to the benchmark's, so that it ends even if the benchmark dies.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apportion::cluster::ClusterView;
use apportion::core::values::JsonDecoder;
use apportion::store::EtcdStore;
use apportion::testing;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdout};

use super::line::{ProcessFigures, Spread};
use super::scrape::Metrics;
use super::{ConvergeOptions, Idle, Launch, Members, Totals};
use crate::procfs::{self, Pid};

/// How long a member may take from its start to its key in the view.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the members may take to leave when stopped, before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How often the benchmark looks whether a member has joined, or exited when stopped.
const POLL: Duration = Duration::from_millis(20);

/// What one member process is to be: the benchmark chooses its name and limits (the same as
/// in process) and where it serves the metrics it scrapes; the [`Launch`] turns this into
/// the command line of an `apportion member --json` on the benchmark's etcd.
#[derive(Clone, Debug)]
pub struct MemberSpec {
    /// The key prefix of the cluster (`--prefix`).
    pub prefix: String,
    /// The member's zone (`--zone`).
    pub zone: String,
    /// The member's suffix (`--suffix`); its id is `ZONE#SUFFIX`.
    pub suffix: String,
    /// Its lease TTL, whole seconds (`--lease-ttl`).
    pub lease_ttl: Duration,
    /// Its item limit (`--item-limit`).
    pub item_limit: u32,
    /// Where it serves its Prometheus metrics (`--metrics-addr`): a free loopback port,
    /// which the benchmark scrapes for the leader's rounds and solve times.
    pub metrics: SocketAddr,
}

/// The member processes.
pub(super) struct Processes {
    members: Vec<MemberProcess>,
    /// Set once the members are being stopped: what they say then (that they left before
    /// draining finished) is expected, and no longer passed on.
    stopping: Arc<AtomicBool>,
    /// The benchmark's own connection, to read the store's revision.
    store: EtcdStore,
}

/// One `apportion member` process.
struct MemberProcess {
    /// Its member id, `ZONE#SUFFIX`.
    id: String,
    child: Child,
    pid: u32,
    /// Where it serves its metrics.
    metrics: SocketAddr,
    /// How many times it said it joined again under a new lease (its output is read by a
    /// task of its own, which also keeps the pipe from filling up).
    rejoins: Arc<AtomicUsize>,
    /// What it had used and counted when it was killed (it cannot be read afterwards).
    killed: Option<Last>,
}

/// A killed member's last figures.
struct Last {
    peak_rss_mb: f64,
    cpu_secs: f64,
    totals: Totals,
}

impl Processes {
    /// Starts the member processes with `launch`, one after another, each once the one
    /// before it has joined (its key is in `view`).
    pub async fn start(
        store: &EtcdStore,
        options: &ConvergeOptions,
        view: &ClusterView<JsonDecoder>,
        launch: Launch,
    ) -> Result<Self, String> {
        let mut processes = Processes {
            members: Vec::new(),
            stopping: Arc::default(),
            store: store.clone(),
        };
        for i in 0..options.members {
            let (zone, suffix) = options.member_name(i);
            let id = format!("{zone}#{suffix}");
            let metrics = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("cannot find a free port for member {id}'s metrics: {e}"))?;
            let spec = MemberSpec {
                prefix: options.prefix.clone(),
                zone,
                suffix,
                lease_ttl: options.lease_ttl,
                item_limit: options.item_limit(),
                metrics,
            };
            let mut child = launch(spec)
                .await
                .map_err(|e| format!("cannot start member {id}: {e}"))?;
            let pid = child
                .id()
                .ok_or_else(|| format!("member {id} exited at once"))?;
            let rejoins = Arc::default();
            let stdout = child.stdout.take().expect("the launcher pipes stdout");
            tokio::spawn(count_rejoins(stdout, Arc::clone(&rejoins)));
            let stderr = child.stderr.take().expect("the launcher pipes stderr");
            tokio::spawn(pass_on(stderr, id.clone(), Arc::clone(&processes.stopping)));
            processes.members.push(MemberProcess {
                id: id.clone(),
                child,
                pid,
                metrics,
                rejoins,
                killed: None,
            });
            processes.joined(view, &id).await?;
        }
        Ok(processes)
    }

    /// Waits until member `id` is in the view.
    async fn joined(&mut self, view: &ClusterView<JsonDecoder>, id: &str) -> Result<(), String> {
        let started = Instant::now();
        loop {
            self.check()?;
            let observed = view.current();
            if observed
                .state
                .members()
                .iter()
                .any(|m| m.key.as_str() == id)
            {
                return Ok(());
            }
            if started.elapsed() > JOIN_TIMEOUT {
                return Err(format!(
                    "member {id} did not join within {} s",
                    JOIN_TIMEOUT.as_secs()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Members for Processes {
    const SHAPE: &'static str = "processes";

    fn check(&mut self) -> Result<(), String> {
        for member in self.members.iter_mut().filter(|m| m.killed.is_none()) {
            let exited = member
                .child
                .try_wait()
                .map_err(|e| format!("cannot watch member {}: {e}", member.id))?;
            if let Some(status) = exited {
                return Err(format!(
                    "member {} exited during the benchmark ({status}; its last words are above)",
                    member.id
                ));
            }
        }
        Ok(())
    }

    /// Idle once the leader's latest round found nothing to do at the store's revision
    /// (`testing::at_rest`, read from its `apportion_idle_round_revision` gauge), with the
    /// view at that revision: the rule the in-process shape applies to its round hook.
    async fn idle(&mut self, view: &ClusterView<JsonDecoder>) -> Result<Option<Idle>, String> {
        let (revision, observed) = testing::caught_up(&self.store, view)
            .await
            .map_err(|e| e.to_string())?;
        let state = &observed.state;
        let leader = state.leader().map(|i| state.members()[i].key.as_str());
        let Some(member) = self
            .members
            .iter()
            .find(|m| Some(m.id.as_str()) == leader && m.killed.is_none())
        else {
            return Ok(None);
        };
        let idle_at = Metrics::fetch(member.metrics)
            .await?
            .sum("apportion_idle_round_revision");
        let idle = observed.revision == revision && idle_at == revision as f64;
        Ok(idle.then(|| (Instant::now(), observed)))
    }

    async fn totals(&mut self) -> Result<Totals, String> {
        let mut totals = Totals::default();
        for member in &self.members {
            totals = totals
                + match &member.killed {
                    Some(last) => last.totals,
                    None => Metrics::fetch(member.metrics).await?.totals(),
                };
        }
        Ok(totals)
    }

    /// Reads the member's figures, then sends it SIGKILL and reaps it.
    async fn kill(&mut self, id: &str) -> Result<Instant, String> {
        let member = self
            .members
            .iter_mut()
            .find(|m| m.id == id && m.killed.is_none())
            .ok_or_else(|| format!("no member {id} to kill"))?;
        let totals = Metrics::fetch(member.metrics).await?.totals();
        let last = Last {
            peak_rss_mb: procfs::peak_rss_mb(Pid::Of(member.pid)),
            cpu_secs: procfs::cpu_secs(Pid::Of(member.pid)),
            totals,
        };
        let killed_at = Instant::now();
        member
            .child
            .start_kill()
            .map_err(|e| format!("cannot kill member {id}: {e}"))?;
        member.killed = Some(last);
        member
            .child
            .wait()
            .await
            .map_err(|e| format!("cannot reap member {id}: {e}"))?;
        Ok(killed_at)
    }

    fn lease_losses(&self) -> usize {
        let lost = |m: &&MemberProcess| m.rejoins.load(Ordering::Relaxed) > 0;
        self.members.iter().filter(lost).count()
    }

    /// Reads every member's figures while it is alive, then stops them all.
    async fn stop(mut self, leader: Option<String>) -> Result<Option<ProcessFigures>, String> {
        let mut peaks = Vec::new();
        let mut members_cpu_secs = 0.0;
        let mut leader_cpu_secs = None;
        for member in &self.members {
            let (peak, cpu) = match &member.killed {
                Some(last) => (last.peak_rss_mb, last.cpu_secs),
                None => (
                    procfs::peak_rss_mb(Pid::Of(member.pid)),
                    procfs::cpu_secs(Pid::Of(member.pid)),
                ),
            };
            peaks.push(peak);
            members_cpu_secs += cpu;
            if leader.as_deref() == Some(member.id.as_str()) {
                leader_cpu_secs = Some(cpu);
            }
        }
        let mut members = std::mem::take(&mut self.members);
        let stopping = Arc::clone(&self.stopping);
        tokio::task::spawn_blocking(move || stop_all(&mut members, &stopping))
            .await
            .map_err(|e| format!("cannot stop the members: {e}"))?;
        Ok(Some(ProcessFigures {
            peak_rss_mb_per_member: Spread::of(peaks),
            leader_cpu_secs,
            members_cpu_secs,
        }))
    }
}

impl Drop for Processes {
    /// Leaves no member running, whichever way the benchmark ends.
    fn drop(&mut self) {
        stop_all(&mut self.members, &self.stopping);
    }
}

/// Stops the members that still run: SIGTERM then SIGINT (each member drains, then leaves
/// at once on the second signal), SIGKILL to those still running after [`STOP_GRACE`].
/// Blocks until every one has been reaped. Sets `stopping` first.
fn stop_all(members: &mut [MemberProcess], stopping: &AtomicBool) {
    stopping.store(true, Ordering::Relaxed);
    let mut running: Vec<&mut Child> = members
        .iter_mut()
        .map(|m| &mut m.child)
        .filter_map(|child| matches!(child.try_wait(), Ok(None)).then_some(child))
        .collect();
    for child in &running {
        if let Some(pid) = child.id().and_then(|pid| libc::pid_t::try_from(pid).ok()) {
            // SAFETY: kill(2) only takes integers; the child has not been reaped, so its
            // pid is still its own.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
                libc::kill(pid, libc::SIGINT);
            }
        }
    }
    let deadline = Instant::now() + STOP_GRACE;
    loop {
        running.retain_mut(|child| matches!(child.try_wait(), Ok(None)));
        if running.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            for child in &mut running {
                let _ = child.start_kill();
            }
        }
        std::thread::sleep(POLL);
    }
}

/// Reads a member's `--json` output to its end, counting the lines that say it joined
/// again under a new lease (its old one was lost).
async fn count_rejoins(stdout: ChildStdout, rejoins: Arc<AtomicUsize>) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        // Most lines are assignments and ready marks: only parse the likely ones.
        if line.contains("rejoined")
            && serde_json::from_str::<serde_json::Value>(&line)
                .is_ok_and(|v| v["event"] == "rejoined")
        {
            rejoins.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Passes a member's stderr on to the benchmark's, each line after the member's id, until
/// the member is being stopped.
async fn pass_on(stderr: ChildStderr, id: String, stopping: Arc<AtomicBool>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if !stopping.load(Ordering::Relaxed) {
            eprintln!("{id}: {line}");
        }
    }
}
