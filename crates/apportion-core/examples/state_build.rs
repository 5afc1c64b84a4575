//! Measures `State::build` on a large deployment: 100,000 items with replication 3
//! (300,000 assignments) over 1,000 members in 5 zones.
//!
//! Run with `cargo run --release -p apportion-core --example state_build`. Prints one JSON
//! object with the median build time over several runs, for input in the order a store
//! read returns it (sorted by key) and for shuffled input (the sort's worst case).

use std::time::{Duration, Instant};

use apportion_core::keys::{AssignmentKey, ItemId, MemberId, Slot};
use apportion_core::state::{Entry, JsonState, Meta, Snapshot};
use apportion_core::values::{JsonItem, JsonMember, JsonStatus};

const ITEMS: usize = 100_000;
const MEMBERS: usize = 1_000;
const ZONES: usize = 5;
const REPLICATION: u16 = 3;
const RUNS: usize = 9;

type JsonSnapshot = Snapshot<JsonItem, JsonMember, JsonStatus>;

fn meta(revision: usize) -> Meta {
    Meta {
        create_revision: revision as i64,
        mod_revision: revision as i64,
        version: 1,
        lease: None,
    }
}

/// Builds the snapshot in key order. Copy `s` of item `i` goes to the member in zone
/// `s` (so copies are spread over zones) at position `i` within that zone.
fn snapshot() -> Result<JsonSnapshot, Box<dyn std::error::Error>> {
    let per_zone = MEMBERS / ZONES;
    let mut member_ids = Vec::with_capacity(MEMBERS);
    for zone in 0..ZONES {
        for host in 0..per_zone {
            member_ids.push(MemberId::new(
                &format!("zone-{zone}"),
                &format!("host-{host:04}"),
            )?);
        }
    }
    let mut snapshot = JsonSnapshot::default();
    for (revision, id) in member_ids.iter().enumerate() {
        let value = JsonMember {
            item_limit: 400,
            ..JsonMember::default()
        };
        snapshot.members.push(Entry {
            key: id.clone(),
            value,
            meta: meta(revision),
        });
    }
    for i in 0..ITEMS {
        let item = ItemId::new(&format!("item-{i:06}"))?;
        for slot in 0..REPLICATION {
            let member = member_ids[usize::from(slot) * per_zone + i % per_zone].clone();
            let key = AssignmentKey {
                item: item.clone(),
                member,
                slot: Slot(slot),
            };
            let value = JsonStatus {
                ready: true,
                ..JsonStatus::default()
            };
            snapshot.assignments.push(Entry {
                key,
                value,
                meta: meta(i),
            });
        }
        let value = JsonItem {
            replication: REPLICATION,
            ..JsonItem::default()
        };
        snapshot.items.push(Entry {
            key: item,
            value,
            meta: meta(i),
        });
    }
    Ok(snapshot)
}

/// A fixed-seed Fisher-Yates shuffle (xorshift64), so runs are repeatable without a
/// random number crate.
fn shuffle<T>(entries: &mut [T], seed: &mut u64) {
    for i in (1..entries.len()).rev() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        entries.swap(i, (*seed % (i as u64 + 1)) as usize);
    }
}

/// Median build time over `RUNS` builds of clones of `input` (cloning is not timed).
fn median_build(
    input: &JsonSnapshot,
    local: &MemberId,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let copy = input.clone();
        let start = Instant::now();
        let state = JsonState::build(copy, Some(local))?;
        times.push(start.elapsed());
        if state.assignments().len() != ITEMS * usize::from(REPLICATION) {
            return Err("not every assignment is live".into());
        }
        drop(state);
    }
    times.sort();
    Ok(times[RUNS / 2])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sorted = snapshot()?;
    let local = sorted.members[0].key.clone();
    let sorted_median = median_build(&sorted, &local)?;
    let mut shuffled = sorted.clone();
    let mut seed = 0x9e37_79b9_7f4a_7c15;
    shuffle(&mut shuffled.items, &mut seed);
    shuffle(&mut shuffled.members, &mut seed);
    shuffle(&mut shuffled.assignments, &mut seed);
    let shuffled_median = median_build(&shuffled, &local)?;
    let report = serde_json::json!({
        "benchmark": "state_build",
        "items": ITEMS,
        "members": MEMBERS,
        "assignments": ITEMS * usize::from(REPLICATION),
        "runs": RUNS,
        "median_ms_sorted_input": sorted_median.as_secs_f64() * 1e3,
        "median_ms_shuffled_input": shuffled_median.as_secs_f64() * 1e3,
    });
    println!("{report}");
    Ok(())
}
