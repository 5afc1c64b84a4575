//! `apportion bench converge`: the whole runtime end to end. Starts members in this process
//! (on a real etcd, or the embedded store with `--memory`), writes the items, and measures
//! the time until the cluster has settled; then kills one member and measures the time until
//! every slot is filled again; then watches the settled cluster for a while (it should write
//! nothing). Prints one JSON line, with the store's *floor* measured in the same run: the
//! time one client takes to write as many keys as the settle wrote (the assignments'
//! creations and the members' status writes), in transactions as large as the store allows,
//! so that `vs_floor` says how far the runtime is from what the store can do.
//!
//! Each member runs the loop a real service would: mark an item ready when assigned, release
//! an exclusive item when asked.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apportion::core::values::{Decoder, JsonDecoder, JsonItem};
use apportion::store::{EtcdStore, KeyRange, MemoryStore, Op, Store, Txn};
use apportion::{ClusterView, Event, Member, MemberConfig, MemberOptions, RoundReport};
use serde::Serialize;
use tokio::task::JoinHandle;

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
    /// etcd endpoint (ignored with --memory).
    #[arg(long, default_value = "http://127.0.0.1:2379")]
    etcd: String,
    /// Key prefix; everything under it is deleted first.
    #[arg(long, default_value = "/apportion-bench")]
    prefix: String,
    /// How long to watch the settled cluster for writes it should not make, in seconds.
    #[arg(long, default_value_t = 5)]
    idle_secs: u64,
}

/// The benchmark's result line.
#[derive(Serialize)]
struct Line {
    store: &'static str,
    members: usize,
    items: usize,
    replication: u16,
    zones: usize,
    /// From the first item written to settled (every slot filled and ready, leader idle).
    settle_ms: f64,
    rounds: usize,
    txns: usize,
    failed_txns: usize,
    /// Changes written (adds, removes, slot moves, release requests).
    changes: usize,
    /// From the kill to every slot filled and ready again (includes the lease TTL).
    refill_ms: f64,
    /// From the killed member's key vanishing (lease expiry) to every slot filled again.
    refill_after_expiry_ms: f64,
    refill_rounds: usize,
    refill_changes: usize,
    /// Keys the settle wrote: changes, and one status write per assignment.
    floor_keys: usize,
    /// One client writing `floor_keys` keys in transactions of the store's op limit.
    floor_ms: f64,
    /// `settle_ms / floor_ms`.
    vs_floor: f64,
    /// Transactions the leader wrote while the settled cluster was watched for `idle_secs`.
    idle_txns: usize,
    idle_secs: u64,
    /// Members whose session ended (lease lost) during the run; must be 0.
    lease_losses: usize,
    /// The process's peak resident memory (all members, the observer view, the client).
    peak_rss_mb: f64,
    /// CPU time of the whole process (every member's loops, the solver, the view builds).
    process_cpu_secs: f64,
}

/// Runs the benchmark against the chosen store.
pub async fn run(args: &ConvergeArgs) -> Result<(), String> {
    if args.memory {
        let store = MemoryStore::new();
        measure(store.clone(), "memory", args, || {
            let store = store.connect();
            async move { Ok(store) }
        })
        .await
    } else {
        // Each member connects on its own, as members in separate processes would.
        let connect = || async {
            EtcdStore::connect(&[&args.etcd])
                .await
                .map_err(|e| format!("{e} (start etcd, or use --memory)"))
        };
        measure(connect().await?, "etcd", args, connect).await
    }
}

async fn measure<S: Store, F: std::future::Future<Output = Result<S, String>>>(
    store: S,
    name: &'static str,
    args: &ConvergeArgs,
    connect: impl Fn() -> F,
) -> Result<(), String> {
    let e = |e: apportion::Error| e.to_string();
    let s = |e: apportion::store::StoreError| e.to_string();
    store
        .delete(KeyRange::prefix(format!("{}/", args.prefix)))
        .await
        .map_err(s)?;
    let view = ClusterView::start(store.clone(), &args.prefix, JsonDecoder)
        .await
        .map_err(e)?;
    let rounds: Arc<Mutex<Vec<RoundReport>>> = Arc::default();
    let slots = args.items * usize::from(args.replication);
    let limit = (slots * 3 / 2).div_ceil(args.members.max(1)) as u32;
    let mut apps: Vec<JoinHandle<()>> = Vec::new();
    for i in 0..args.members {
        let zone = format!("z{}", i % args.zones.max(1));
        let mut config = MemberConfig::json(&args.prefix, zone, format!("m{i:03}"), limit);
        config.lease_ttl_secs = args.lease_ttl;
        let log = rounds.clone();
        let options = MemberOptions {
            round_hook: Some(Arc::new(move |r: &RoundReport| {
                log.lock().unwrap().push(r.clone())
            })),
            ..MemberOptions::default()
        };
        let member = Member::start_with(connect().await?, JsonDecoder, config, options)
            .await
            .map_err(e)?;
        apps.push(tokio::spawn(serve(member)));
    }
    let started = Instant::now();
    write_items(&store, args).await.map_err(s)?;
    settled(&store, &view, &rounds, slots, &apps).await?;
    let settle_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (rounds_before, txns, failed_txns, changes) = totals(&rounds.lock().unwrap());

    // Kill the youngest member (not the leader): its lease expires, its replicas move.
    let killed = format!(
        "z{}#m{:03}",
        (args.members - 1) % args.zones.max(1),
        args.members - 1
    );
    let killed_at = Instant::now();
    apps.pop().expect("at least one member").abort();
    let mut states = view.subscribe();
    states
        .wait_for(|o| o.state.members().iter().all(|m| m.key.as_str() != killed))
        .await
        .map_err(|e| e.to_string())?;
    let expired_at = Instant::now();
    settled(&store, &view, &rounds, slots, &apps).await?;
    let refilled = Instant::now();
    let (rounds_after, txns_after, _, changes_after) = totals(&rounds.lock().unwrap());
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let (_, txns_idle, _, _) = totals(&rounds.lock().unwrap());
    let lease_losses = apps.iter().filter(|a| a.is_finished()).count();
    let line = Line {
        store: name,
        members: args.members,
        items: args.items,
        replication: args.replication,
        zones: args.zones,
        settle_ms,
        rounds: rounds_before,
        txns,
        failed_txns,
        changes,
        refill_ms: (refilled - killed_at).as_secs_f64() * 1000.0,
        refill_after_expiry_ms: (refilled - expired_at).as_secs_f64() * 1000.0,
        refill_rounds: rounds_after - rounds_before,
        refill_changes: changes_after - changes,
        floor_keys: 0,
        floor_ms: 0.0,
        vs_floor: 0.0,
        idle_txns: 0,
        idle_secs: 0,
        lease_losses: 0,
        peak_rss_mb: 0.0,
        process_cpu_secs: 0.0,
    };
    for app in apps {
        app.abort();
    }
    store
        .delete(KeyRange::prefix(format!("{}/", args.prefix)))
        .await
        .map_err(s)?;
    let floor_keys = line.changes + slots;
    let floor_ms = floor(&store, &args.prefix, floor_keys).await.map_err(s)?;
    let line = Line {
        floor_keys,
        floor_ms,
        vs_floor: line.settle_ms / floor_ms,
        idle_txns: txns_idle - txns_after,
        idle_secs: args.idle_secs,
        lease_losses,
        peak_rss_mb: peak_rss_mb(),
        process_cpu_secs: process_cpu_secs(),
        ..line
    };
    println!(
        "{}",
        serde_json::to_string(&line).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// Serves a member's events as a real service would: each item is loaded (here: at once)
/// and reported ready by a task of its own, so reports do not queue behind each other.
/// Returns when the member's session ends.
async fn serve<S: Store>(mut member: Member<S, JsonDecoder>) {
    while let Some(event) = member.next_event().await {
        match event {
            Event::Assigned { item, .. } => {
                let handle = member.handle();
                tokio::spawn(async move {
                    // The item may have moved on meanwhile; nothing to report then.
                    let _ = handle.update_status(&item, |s| s.ready = true).await;
                });
            }
            Event::ReleaseRequested { item } => {
                let _ = member.release(&item).await;
            }
            _ => {}
        }
    }
    if let Some(e) = member.session_error() {
        eprintln!("{e}");
    }
}

/// Writes the items in transactions as large as the store allows.
async fn write_items<S: Store>(store: &S, args: &ConvergeArgs) -> apportion::store::Result<()> {
    let value = JsonItem {
        replication: args.replication,
        ..JsonItem::default()
    };
    let bytes = JsonDecoder
        .encode_item(&value)
        .expect("a JSON item encodes");
    let ids: Vec<usize> = (0..args.items).collect();
    for chunk in ids.chunks(store.max_txn_ops()) {
        let puts = chunk
            .iter()
            .map(|i| Op::put(format!("{}/items/i{i:07}", args.prefix), bytes.clone()));
        store.txn(Txn::new().and_then(puts)).await?;
    }
    Ok(())
}

/// Waits until every slot is filled and ready and the leader's last round was idle at the
/// store's current revision. Fails if a member's session ends meanwhile.
async fn settled<S: Store>(
    store: &S,
    view: &ClusterView<JsonDecoder>,
    rounds: &Mutex<Vec<RoundReport>>,
    slots: usize,
    apps: &[JoinHandle<()>],
) -> Result<(), String> {
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if apps.iter().any(JoinHandle::is_finished) {
            return Err("a member's session ended during the benchmark (see above)".into());
        }
        let revision = store
            .range(KeyRange::key("/"))
            .await
            .map_err(|e| e.to_string())?
            .revision;
        let idle = rounds
            .lock()
            .unwrap()
            .last()
            .is_some_and(|r| r.idle && r.revision == revision);
        if !idle {
            continue;
        }
        view.wait_for_revision(revision).await;
        let observed = view.current();
        let assignments = observed.state.assignments();
        if assignments.len() == slots && assignments.iter().all(|a| a.value.ready) {
            return Ok(());
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

/// The process's peak resident set size in MiB, from `/proc/self/status` (0 where the
/// system has no such file).
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU seconds (user and system) the process has used so far.
fn process_cpu_secs() -> f64 {
    // SAFETY: getrusage fills the struct it is given; a zeroed rusage is a valid one.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Rounds, transactions, failed transactions and changes so far.
fn totals(rounds: &[RoundReport]) -> (usize, usize, usize, usize) {
    rounds.iter().fold((0, 0, 0, 0), |(r, t, f, c), report| {
        (
            r + 1,
            t + report.txns,
            f + report.failed_txns,
            c + report.changes,
        )
    })
}
