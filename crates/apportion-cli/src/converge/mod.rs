//! `apportion bench converge`: the whole runtime end to end. Starts members, writes the
//! items, and measures the time until the cluster has settled; then kills one member and
//! measures the time until every slot is filled again; then watches the settled cluster for
//! a while (it should write nothing). Prints one JSON line, with the store's *floor*
//! measured in the same run: the time one client takes to write as many keys as the settle
//! wrote (the assignments' creations and the members' status writes), in transactions as
//! large as the store allows, so that `vs_floor` says how far the runtime is from what the
//! store can do.
//!
//! The members run in one of two shapes, behind [`Members`], so that every phase is
//! measured by the same code in both:
//! - in this process ([`in_process`]), on a real etcd or the embedded store (`--memory`):
//!   the cheapest way to measure the runtime, with a hook into every leader round;
//! - as separate `apportion member` processes on etcd (`--processes`, see [`processes`]),
//!   the shape of a real deployment: each member has its own runtime, connection and
//!   memory, and the benchmark watches them from outside (the cluster view, their
//!   Prometheus metrics, their output, `/proc`).
//!
//! Each member runs the loop a real service would: mark an item ready when assigned, release
//! an exclusive item when asked.

mod in_process;
mod line;
mod processes;
pub(crate) mod procfs;
mod scrape;

use std::sync::Arc;
use std::time::{Duration, Instant};

use apportion::admin::Admin;
use apportion::cluster::{ClusterView, Observed};
use apportion::core::keys::{ItemId, Prefix};
use apportion::core::values::{JsonDecoder, JsonItem};
use apportion::store::{EtcdStore, KeyRange, MemoryStore, Op, Store, Txn};
use apportion::testing::is_settled_state;

use in_process::InProcess;
use line::{Line, ProcessFigures};
use processes::Processes;

/// Arguments of `apportion bench converge`.
#[derive(clap::Args, Debug)]
pub struct ConvergeArgs {
    /// How many members to run.
    #[arg(long, default_value_t = 10)]
    members: usize,
    /// How many items to place.
    #[arg(long, default_value_t = 2000)]
    items: usize,
    /// Replicas per item.
    #[arg(long, default_value_t = 3)]
    replication: u16,
    /// Zones the members are spread over (member i in zone i % zones).
    #[arg(long, default_value_t = 3)]
    zones: usize,
    /// Lease TTL of the members, in seconds (the kill phase waits for it to expire).
    #[arg(long, default_value_t = 5)]
    lease_ttl: i64,
    /// Use the embedded store instead of etcd (one store shared by all members).
    #[arg(long)]
    memory: bool,
    /// Run each member as a separate `apportion member` process, as deployed (etcd only).
    #[arg(long)]
    processes: bool,
    /// etcd endpoint (ignored with --memory).
    #[arg(long, default_value = "http://127.0.0.1:2379")]
    etcd: String,
    #[command(flatten)]
    security: crate::connect::Security,
    /// Key prefix; everything under it is deleted first.
    #[arg(long, default_value = "/apportion-bench")]
    prefix: String,
    /// How long to watch the settled cluster for writes it should not make, in seconds.
    #[arg(long, default_value_t = 5)]
    idle_secs: u64,
}

impl ConvergeArgs {
    /// Refuses a run that could not end: the refill kills one member, and the others must
    /// still be able to hold every copy (each on a member of its own, within their limits),
    /// or the benchmark would wait for ever.
    fn check(&self) -> Result<(), String> {
        if self.processes && self.memory {
            return Err("--processes runs `apportion member` processes on etcd; it cannot be used with --memory".into());
        }
        let survivors = self.members.saturating_sub(1);
        if survivors < usize::from(self.replication.max(1))
            || survivors * (self.item_limit() as usize) < self.slots()
        {
            return Err(format!(
                "--members {} is too few for --replication {}: the refill kills one member, and the others must still hold every copy",
                self.members, self.replication
            ));
        }
        Ok(())
    }

    /// Replica slots to fill: every item's replication.
    fn slots(&self) -> usize {
        self.items * usize::from(self.replication)
    }

    /// Each member's item limit: room for half as much again as a fair share, so that the
    /// limits shape the placement without making it tight.
    fn item_limit(&self) -> u32 {
        (self.slots() * 3 / 2).div_ceil(self.members.max(1)) as u32
    }

    /// Member `i`'s zone and suffix (`z{i % zones}`, `m{i:03}`): the same names in both
    /// shapes, so that their lines can be compared member by member.
    fn member_name(&self, i: usize) -> (String, String) {
        (format!("z{}", i % self.zones.max(1)), format!("m{i:03}"))
    }

    /// The id of the member the refill phase kills: the youngest (started last), which is
    /// not the leader (the oldest member leads), so the phase measures a replica loss, not
    /// a leader change.
    fn victim(&self) -> String {
        let (zone, suffix) = self.member_name(self.members.saturating_sub(1));
        format!("{zone}#{suffix}")
    }
}

/// What the leaders did so far, summed over every member: the figures of the line that come
/// from the members' own accounts of their rounds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Totals {
    rounds: usize,
    txns: usize,
    failed_txns: usize,
    changes: usize,
}

impl std::ops::Add for Totals {
    type Output = Totals;

    fn add(self, other: Totals) -> Totals {
        Totals {
            rounds: self.rounds + other.rounds,
            txns: self.txns + other.txns,
            failed_txns: self.failed_txns + other.failed_txns,
            changes: self.changes + other.changes,
        }
    }
}

/// The observed state the leader has nothing more to do in, and the moment the benchmark
/// first saw it so.
type Idle = (Instant, Arc<Observed<JsonDecoder>>);

/// The members under test, however they run. The phases ([`measure`]) drive them only
/// through this, so that settle, refill, idle writes and the floor are measured by one piece
/// of code in both shapes.
trait Members {
    /// The line's `shape`.
    const SHAPE: &'static str;

    /// Fails when a member stopped serving by itself (its session ended, its process
    /// exited): the figures would mean nothing then.
    fn check(&mut self) -> Result<(), String>;

    /// The state the leader is known to be idle in (its last round at the view's revision
    /// planned nothing), and since when; `None` while that is not known (yet).
    async fn idle(&mut self, view: &ClusterView<JsonDecoder>) -> Result<Option<Idle>, String>;

    /// The leaders' rounds, transactions and changes so far.
    async fn totals(&mut self) -> Result<Totals, String>;

    /// Kills the member without a goodbye (its lease has to expire); returns when the kill
    /// was done.
    async fn kill(&mut self, id: &str) -> Result<Instant, String>;

    /// Members whose lease was lost so far.
    fn lease_losses(&self) -> usize;

    /// Stops every member, leaving nothing running; `leader` is the member that led at the
    /// end. Returns the figures of the member processes, where the members are processes.
    async fn stop(self, leader: Option<String>) -> Result<Option<ProcessFigures>, String>;
}

/// Runs the benchmark in the chosen shape, against the chosen store.
pub async fn run(args: &ConvergeArgs) -> Result<(), String> {
    args.check()?;
    if args.memory {
        let store = MemoryStore::new();
        let view = prepare(&store, args).await?;
        let members = InProcess::start(&store, args, || {
            let store = store.connect();
            async move { Ok(store) }
        })
        .await?;
        return measure(store, "memory", view, members, args).await;
    }
    let options = args.security.options(std::slice::from_ref(&args.etcd))?;
    let connect = || async {
        EtcdStore::connect_with(&[&args.etcd], options.clone())
            .await
            .map_err(|e| format!("{e} (start etcd, or use --memory)"))
    };
    let store = connect().await?;
    let view = prepare(&store, args).await?;
    if args.processes {
        let members = Processes::start(args, &view).await?;
        measure(store, "etcd", view, members, args).await
    } else {
        // Each member connects on its own, as members in separate processes would.
        let members = InProcess::start(&store, args, connect).await?;
        measure(store, "etcd", view, members, args).await
    }
}

/// Empties the prefix and starts the benchmark's own view of it.
async fn prepare<S: Store>(
    store: &S,
    args: &ConvergeArgs,
) -> Result<ClusterView<JsonDecoder>, String> {
    store
        .delete(KeyRange::prefix(format!("{}/", args.prefix)))
        .await
        .map_err(|e| e.to_string())?;
    ClusterView::start(store.clone(), &args.prefix, JsonDecoder)
        .await
        .map_err(|e| e.to_string())
}

/// The phases, on members that have joined: settle, refill, idle, floor; prints the line.
async fn measure<S: Store, M: Members>(
    store: S,
    name: &'static str,
    view: ClusterView<JsonDecoder>,
    mut members: M,
    args: &ConvergeArgs,
) -> Result<(), String> {
    let s = |e: apportion::store::StoreError| e.to_string();
    let started = Instant::now();
    write_items(&store, args).await?;
    let settled_at = settled(&view, &mut members, args.slots()).await?;
    let before = members.totals().await?;

    // Kill the youngest member (not the leader): its lease expires, its replicas move.
    let killed = args.victim();
    let killed_at = members.kill(&killed).await?;
    let mut states = view.subscribe();
    states
        .wait_for(|o| o.state.members().iter().all(|m| m.key.as_str() != killed))
        .await
        .ok_or("the live view of the store stopped")?;
    let expired_at = Instant::now();
    let refilled = settled(&view, &mut members, args.slots()).await?;
    let after = members.totals().await?;
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let idle = members.totals().await?;
    let lease_losses = members.lease_losses();
    let state = view.current();
    let leader = state
        .state
        .leader()
        .map(|i| state.state.members()[i].key.to_string());
    let figures = members.stop(leader).await?;

    store
        .delete(KeyRange::prefix(format!("{}/", args.prefix)))
        .await
        .map_err(s)?;
    let settle_ms = (settled_at - started).as_secs_f64() * 1000.0;
    let floor_keys = before.changes + args.slots();
    let floor_ms = floor(&store, &args.prefix, floor_keys).await.map_err(s)?;
    let line = Line {
        store: name,
        shape: M::SHAPE,
        members: args.members,
        items: args.items,
        replication: args.replication,
        zones: args.zones,
        settle_ms,
        rounds: before.rounds,
        txns: before.txns,
        failed_txns: before.failed_txns,
        changes: before.changes,
        refill_ms: (refilled - killed_at).as_secs_f64() * 1000.0,
        refill_after_expiry_ms: (refilled - expired_at).as_secs_f64() * 1000.0,
        refill_rounds: after.rounds - before.rounds,
        refill_changes: after.changes - before.changes,
        floor_keys,
        floor_ms,
        vs_floor: settle_ms / floor_ms,
        idle_txns: idle.txns - after.txns,
        idle_secs: args.idle_secs,
        lease_losses,
        peak_rss_mb: procfs::peak_rss_mb(procfs::Pid::This),
        process_cpu_secs: procfs::cpu_secs(procfs::Pid::This),
        processes: figures,
    };
    println!(
        "{}",
        serde_json::to_string(&line).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// Writes the items in transactions as large as the store allows.
async fn write_items<S: Store>(store: &S, args: &ConvergeArgs) -> Result<(), String> {
    let prefix = Prefix::new(&args.prefix).map_err(|e| e.to_string())?;
    let value = JsonItem {
        replication: args.replication,
        ..JsonItem::default()
    };
    let items = (0..args.items)
        .map(|i| Ok((ItemId::new(&format!("i{i:07}"))?, value.clone())))
        .collect::<Result<Vec<_>, apportion::core::keys::KeyError>>()
        .map_err(|e| e.to_string())?;
    let admin = Admin::new(store.clone(), prefix);
    admin.put_items(items).await.map_err(|e| e.to_string())
}

/// Waits until every slot is filled in a settled state ([`is_settled_state`]) the leader is
/// idle in; returns
/// when that state was first seen. Fails if a member stops serving meanwhile.
async fn settled<M: Members>(
    view: &ClusterView<JsonDecoder>,
    members: &mut M,
    slots: usize,
) -> Result<Instant, String> {
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        members.check()?;
        let Some((since, observed)) = members.idle(view).await? else {
            continue;
        };
        let state = &observed.state;
        if state.assignments().len() == slots && is_settled_state(state) {
            return Ok(since);
        }
    }
}

/// The store's floor: one client writes `keys` assignment-sized keys (a key like an
/// assignment's, a ready status as value) in transactions of the store's op limit, one
/// after another; returns the milliseconds it took. The keys are removed afterwards.
async fn floor<S: Store>(store: &S, prefix: &str, keys: usize) -> apportion::store::Result<f64> {
    let dir = format!("{prefix}-floor/");
    let started = Instant::now();
    let ids: Vec<usize> = (0..keys).collect();
    for chunk in ids.chunks(store.max_txn_ops()) {
        let puts = chunk.iter().map(|i| {
            let key = format!("{dir}assign/i{:07}#z0#m000#{:05}", i / 3, i % 3);
            Op::put(key, r#"{"ready":true}"#)
        });
        store.txn(Txn::new().and_then(puts)).await?;
    }
    let floor_ms = started.elapsed().as_secs_f64() * 1000.0;
    store.delete(KeyRange::prefix(dir)).await?;
    Ok(floor_ms)
}
