//! The phases of a converge run, on members that have joined, the same in every shape:
//! write the items and wait for the settle, kill one member and wait for the refill, watch
//! the settled cluster for idle writes, then measure the store's floor.

use std::time::{Duration, Instant};

use apportion::admin::Admin;
use apportion::cluster::ClusterView;
use apportion::core::keys::{ItemId, Prefix};
use apportion::core::values::{JsonDecoder, JsonItem};
use apportion::store::{KeyRange, Op, Store, Txn};
use apportion::testing::is_settled_state;

use super::line::Line;
use super::{ConvergeOptions, Members};
use crate::procfs;

/// Empties the prefix and starts the benchmark's own view of it.
pub(super) async fn prepare<S: Store>(
    store: &S,
    options: &ConvergeOptions,
) -> Result<ClusterView<JsonDecoder>, String> {
    store
        .delete(KeyRange::prefix(format!("{}/", options.prefix)))
        .await
        .map_err(|e| e.to_string())?;
    ClusterView::start(store.clone(), &options.prefix, JsonDecoder)
        .await
        .map_err(|e| e.to_string())
}

/// The phases: settle, refill, idle, floor; returns the line.
pub(super) async fn measure<S: Store, M: Members>(
    store: S,
    name: &'static str,
    view: ClusterView<JsonDecoder>,
    mut members: M,
    options: &ConvergeOptions,
) -> Result<Line, String> {
    let s = |e: apportion::store::StoreError| e.to_string();
    let started = Instant::now();
    write_items(&store, options).await?;
    let settled_at = settled(&view, &mut members, options.slots()).await?;
    let before = members.totals().await?;

    // Kill the youngest member (not the leader): its lease expires, its replicas move.
    let killed = options.victim();
    let killed_at = members.kill(&killed).await?;
    let mut states = view.subscribe();
    states
        .wait_for(|o| o.state.members().iter().all(|m| m.key.as_str() != killed))
        .await
        .ok_or("the live view of the store stopped")?;
    let expired_at = Instant::now();
    let refilled = settled(&view, &mut members, options.slots()).await?;
    let after = members.totals().await?;
    tokio::time::sleep(options.idle).await;
    let idle = members.totals().await?;
    let lease_losses = members.lease_losses();
    let state = view.current();
    let leader = state
        .state
        .leader()
        .map(|i| state.state.members()[i].key.to_string());
    let figures = members.stop(leader).await?;

    store
        .delete(KeyRange::prefix(format!("{}/", options.prefix)))
        .await
        .map_err(s)?;
    let settle_ms = (settled_at - started).as_secs_f64() * 1000.0;
    let floor_keys = before.changes + options.slots();
    let floor_ms = floor(&store, &options.prefix, floor_keys)
        .await
        .map_err(s)?;
    Ok(Line {
        store: name,
        shape: M::SHAPE,
        members: options.members,
        items: options.items,
        replication: options.replication,
        zones: options.zones,
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
        idle_secs: options.idle.as_secs(),
        lease_losses,
        peak_rss_mb: procfs::peak_rss_mb(procfs::Pid::This),
        process_cpu_secs: procfs::cpu_secs(procfs::Pid::This),
        processes: figures,
    })
}

/// Writes the items in transactions as large as the store allows.
async fn write_items<S: Store>(store: &S, options: &ConvergeOptions) -> Result<(), String> {
    let prefix = Prefix::new(&options.prefix).map_err(|e| e.to_string())?;
    let value = JsonItem {
        replication: options.replication,
        ..JsonItem::default()
    };
    let items = (0..options.items)
        .map(|i| Ok((ItemId::new(&format!("i{i:07}"))?, value.clone())))
        .collect::<Result<Vec<_>, apportion::core::keys::KeyError>>()
        .map_err(|e| e.to_string())?;
    let admin = Admin::new(store.clone(), prefix);
    admin.put_items(items).await.map_err(|e| e.to_string())
}

/// Waits until every slot is filled in a settled state ([`is_settled_state`]) the leader is
/// idle in; returns when that state was first seen. Fails if a member stops serving
/// meanwhile.
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
