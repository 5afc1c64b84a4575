//! Drawing a plan from a seed: the cluster, then the schedule, every choice from one
//! generator in a fixed order.

use std::time::Duration;

use super::{Action, BadInput, ClusterSpec, ItemSpec, MemberSpec, Plan, SettingsChange, Step};
use crate::rng::Rng;

impl Plan {
    /// Draws the plan of `seed`: 2-4 zones, 3-8 members with random limits, 10-60 items
    /// with replication 1-3 (about a fifth exclusive), and 30-100 steps of 0.2-3 s each
    /// (or, after a fault that stops renewals, often about a lease TTL). About one step in
    /// eight is a planned event: a restart or a change of the cluster settings.
    pub fn generate(seed: u64) -> Plan {
        let mut rng = Rng::new(seed);
        let mut names = Names::default();
        let zones = rng.range(2, 4) as usize;
        let member_count = rng.range(3, 8) as usize;
        let item_count = rng.range(10, 60) as usize;
        let items: Vec<ItemSpec> = (0..item_count)
            .map(|_| {
                let exclusive = rng.chance(20);
                names.item(&mut rng, exclusive)
            })
            .collect();
        let slots: u64 = items
            .iter()
            .map(|i| {
                if i.exclusive() {
                    1
                } else {
                    u64::from(i.replication)
                }
            })
            .sum();
        let average = slots.div_ceil(member_count as u64).max(1);
        let limits = (average / 2).max(1)..=average * 2;
        let members = (0..member_count)
            .map(|i| {
                // The first members cover every zone; the rest land anywhere.
                let zone = if i < zones {
                    i
                } else {
                    rng.range(0, zones as u64 - 1) as usize
                };
                names.member(zone, rng.range(*limits.start(), *limits.end()) as u32)
            })
            .collect();
        let cluster = ClusterSpec {
            members,
            items,
            ttl_secs: rng.range(2, 4) as i64,
            max_txn_ops: [8, 16, 128][rng.weighted(&[2, 1, 1])],
            latency_ms: [0, 5, 40][rng.weighted(&[1, 1, 2])],
        };
        let step_count = rng.range(30, 100) as usize;
        let ttl_ms = cluster.ttl_secs as u64 * 1000;
        let steps = (0..step_count)
            .map(|_| {
                let action = draw_action(&mut rng, &mut names, zones, &limits);
                // After a fault that stops renewals, half the time the next step comes
                // around the instant the lease can end, where the races are.
                let near_expiry = matches!(
                    action,
                    Action::Crash { .. } | Action::Pause { .. } | Action::Partition { .. }
                ) && rng.chance(50);
                let then = if near_expiry {
                    rng.millis(ttl_ms - 500, ttl_ms + 1000)
                } else {
                    rng.millis(200, 3000)
                };
                Step { action, then }
            })
            .collect();
        Plan {
            seed,
            cluster,
            steps,
        }
    }
}

/// Hands out fresh member suffixes and item ids, so none is ever reused by accident.
#[derive(Default)]
struct Names {
    members: u32,
    items: u32,
}

impl Names {
    fn member(&mut self, zone: usize, limit: u32) -> MemberSpec {
        self.members += 1;
        MemberSpec {
            zone: format!("z{zone}"),
            suffix: format!("m{}", self.members),
            limit,
        }
    }

    fn item(&mut self, rng: &mut Rng, exclusive: bool) -> ItemSpec {
        self.items += 1;
        ItemSpec {
            id: format!("{}{:03}", if exclusive { 'x' } else { 'r' }, self.items),
            replication: rng.range(1, 3) as u16,
        }
    }

    fn bad(&mut self) -> String {
        self.items += 1;
        format!("bad{:03}", self.items)
    }
}

fn draw_action(
    rng: &mut Rng,
    names: &mut Names,
    zones: usize,
    limits: &std::ops::RangeInclusive<u64>,
) -> Action {
    let limit = |rng: &mut Rng| rng.range(*limits.start(), *limits.end()) as u32;
    let pick = rng.next_u64();
    // The faults and changes of issue 7 first, then the planned events of issue 15
    // (restarts, settings), about as often as a crash and a drain together.
    const WEIGHTS: [u64; 16] = [8, 6, 5, 6, 6, 6, 6, 5, 4, 8, 5, 8, 6, 6, 7, 6];
    match rng.weighted(&WEIGHTS) {
        0 => {
            let zone = rng.range(0, zones as u64 - 1) as usize;
            let member = names.member(zone, limit(rng));
            Action::Join {
                member,
                returning: rng.chance(40).then_some(pick),
            }
        }
        1 => Action::Crash { pick },
        2 => Action::CrashLeaderMidRound {
            after: rng.range(1, 2) as u32,
            removals: (0..rng.range(1, 4)).map(|_| rng.next_u64()).collect(),
            additions: (0..rng.range(1, 4))
                .map(|_| {
                    let exclusive = rng.chance(20);
                    names.item(rng, exclusive)
                })
                .collect(),
        },
        3 => Action::Pause { pick },
        4 => Action::Resume { pick },
        5 => Action::Partition { pick },
        6 => Action::Heal { pick },
        7 => Action::Drain { pick },
        8 => Action::Compact,
        9 => {
            let exclusive = rng.chance(20);
            Action::AddItem {
                item: names.item(rng, exclusive),
            }
        }
        10 => Action::RemoveItem { pick },
        11 => Action::SetReplication {
            pick,
            replication: rng.range(0, 3) as u16,
        },
        12 => Action::SetLimit {
            pick,
            limit: rng.range(0, *limits.end()) as u32,
        },
        13 => Action::Bad(draw_bad(rng, names, pick)),
        14 => draw_restart(rng, pick),
        _ => Action::Settings(draw_settings(rng)),
    }
}

/// A restart with a grace of 1-8 s (whole seconds, as the record's lease counts them),
/// back within it (at least 300 ms before its end) three times in five, else 0.5-5 s
/// after it.
fn draw_restart(rng: &mut Rng, pick: u64) -> Action {
    let grace_ms = rng.range(1, 8) * 1000;
    let back_after = if rng.chance(60) {
        rng.millis(200, grace_ms - 300)
    } else {
        rng.millis(grace_ms + 500, grace_ms + 5000)
    };
    Action::Restart {
        pick,
        grace: Duration::from_millis(grace_ms),
        back_after,
    }
}

/// A settings change: a freeze of 2-20 s, a throttle of 1-6 moves (or none), a floor of
/// 1-3 ready replicas, a refill delay of 2-10 s (or none).
fn draw_settings(rng: &mut Rng) -> SettingsChange {
    match rng.weighted(&[2, 2, 1, 1]) {
        0 => SettingsChange::Freeze {
            secs: rng.range(2, 20),
        },
        1 => SettingsChange::Throttle {
            max_moves_in_flight: rng.chance(80).then(|| rng.range(1, 6) as u32),
        },
        2 => SettingsChange::MinReady {
            min_ready: rng.range(1, 3) as u32,
        },
        _ => SettingsChange::RefillDelay {
            secs: rng.chance(75).then(|| rng.range(2, 10)),
        },
    }
}

fn draw_bad(rng: &mut Rng, names: &mut Names, pick: u64) -> BadInput {
    match rng.range(0, 7) {
        0 => BadInput::GarbageItem {
            id: names.bad(),
            value: garbage(rng),
        },
        1 => BadInput::GarbleItem {
            pick,
            value: garbage(rng),
        },
        2 => BadInput::GarbageMember {
            name: format!("z0#ghost{}", rng.range(0, 9)),
            value: garbage(rng),
        },
        3 => BadInput::GarbleMember {
            pick,
            value: garbage(rng),
        },
        4 => BadInput::GarbleAssignment {
            pick,
            value: garbage(rng),
        },
        5 => BadInput::ForbiddenKey {
            key: FORBIDDEN_KEYS[rng.range(0, FORBIDDEN_KEYS.len() as u64 - 1) as usize].into(),
        },
        6 => BadInput::Huge {
            id: names.bad(),
            valid: rng.chance(50),
        },
        _ => BadInput::AbsurdReplication { id: names.bad() },
    }
}

/// Keys under the prefix that no kind of key accepts: forbidden characters in every part,
/// empty parts, a malformed slot, an unknown directory.
const FORBIDDEN_KEYS: [&str; 8] = [
    "items/bad id",
    "items/quote\"d",
    "items/bang!",
    "members/z0#tab\there",
    "members/z0",
    "assign/r001#z0#m1#7",
    "assign/r001#z0#m1#00000#extra",
    "elsewhere/key",
];

/// A value no decoder of ours accepts, for any kind of key (never empty: an empty
/// assignment status is valid).
fn garbage(rng: &mut Rng) -> Vec<u8> {
    const SHAPES: [&[u8]; 10] = [
        b"not json",
        b"[]",
        b"null",
        b"{\"replication\": -1, \"item_limit\": -1, \"ready\": 1}",
        b"{\"replication\": \"3\", \"item_limit\": \"10\", \"ready\": \"yes\"}",
        b"{\"replication\": 1e99, \"item_limit\": 1e99, \"ready\": null}",
        b"{\"replication\": 2, \"item_limit\": 4",
        b"\xff\xfe\x00garbage",
        b"{\"exclusive\": \"no\", \"exiting\": 0, \"releasing\": []}",
        b"42",
    ];
    let shape = SHAPES[rng.range(0, SHAPES.len() as u64 - 1) as usize];
    shape.to_vec()
}
