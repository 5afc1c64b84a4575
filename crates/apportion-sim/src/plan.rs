//! The plan of a run, drawn from its seed: the cluster to start with and the schedule of
//! steps (events and faults), each followed by a stretch of simulated time.
//!
//! Steps name their targets by a random `pick` rather than by name, and the driver resolves
//! a pick among the members or items that fit *when the step runs* (the running members
//! for a crash, the paused ones for a resume). So the plan is a pure function of the seed,
//! can be printed before the run, and never names a member that has already gone.

use std::fmt;
use std::time::Duration;

use crate::rng::Rng;

/// The prefix every run works under.
pub const PREFIX: &str = "/sim";

/// A member to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSpec {
    /// Its failure zone.
    pub zone: String,
    /// Tells it apart within the zone.
    pub suffix: String,
    /// Its item limit.
    pub limit: u32,
}

impl MemberSpec {
    /// The member's id as keys spell it, `zone#suffix`.
    pub fn name(&self) -> String {
        format!("{}#{}", self.zone, self.suffix)
    }
}

/// An item to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemSpec {
    /// The item id; exclusive items' ids start with `x` (see [`is_exclusive`]).
    pub id: String,
    /// How many replicas it wants.
    pub replication: u16,
}

impl ItemSpec {
    /// Whether the item is exclusive, which its id says.
    pub fn exclusive(&self) -> bool {
        is_exclusive(&self.id)
    }
}

/// Whether the item with this id is exclusive. The id says so, so that every checker
/// (the event-stream one included, which sees only ids) agrees on it without asking the
/// store, and an id is never reused with the other kind.
pub fn is_exclusive(id: &str) -> bool {
    id.starts_with('x')
}

/// The cluster a run starts with, and its settings.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// The members started before the first step.
    pub members: Vec<MemberSpec>,
    /// The items created before the first step.
    pub items: Vec<ItemSpec>,
    /// The members' lease TTL.
    pub ttl_secs: i64,
    /// The store's transaction op limit; a small one splits rounds into many transactions,
    /// which is where a leader can crash half-way.
    pub max_txn_ops: usize,
    /// The most a member's call to the store takes, in milliseconds (each call takes a
    /// random time up to it): the time in which a leader's view goes stale.
    pub latency_ms: u64,
}

/// One step: something happens, then simulated time passes.
#[derive(Clone, Debug)]
pub struct Step {
    /// What happens.
    pub action: Action,
    /// How long the cluster then runs on its own before the checks.
    pub then: Duration,
}

/// The events and faults a step can inject.
#[derive(Clone, Debug)]
pub enum Action {
    /// A member starts: `returning` picks a member that has gone (its name comes back, and
    /// waits for its old lease to end if need be); without one gone, `member` starts.
    Join {
        /// The new member, when none returns.
        member: MemberSpec,
        /// Picks a gone member to come back instead.
        returning: Option<u64>,
    },
    /// A member's process dies: no more renewals; its lease expires one TTL later.
    Crash {
        /// Picks among the live members.
        pick: u64,
    },
    /// The leader dies after `after` more transactions of its own, which a burst of
    /// changes (items removed, whose replicas it must delete, and items added) makes it
    /// write: a crash in the middle of a round.
    CrashLeaderMidRound {
        /// Transactions the leader gets through first.
        after: u32,
        /// Picks items to remove.
        removals: Vec<u64>,
        /// Items to add.
        additions: Vec<ItemSpec>,
    },
    /// A member's process stops (SIGSTOP): it acts on nothing, serves nothing, renews
    /// nothing.
    Pause {
        /// Picks among the members that are up.
        pick: u64,
    },
    /// A paused member goes on (SIGCONT).
    Resume {
        /// Picks among the paused members.
        pick: u64,
    },
    /// A member loses its connection to the store; it keeps running.
    Partition {
        /// Picks among the members that are up.
        pick: u64,
    },
    /// A partitioned member's connection comes back.
    Heal {
        /// Picks among the partitioned members.
        pick: u64,
    },
    /// A member drains and leaves once it holds nothing.
    Drain {
        /// Picks among the members that are up and not draining.
        pick: u64,
    },
    /// The store discards its history up to the current revision.
    Compact,
    /// A new item.
    AddItem {
        /// The item.
        item: ItemSpec,
    },
    /// An item goes.
    RemoveItem {
        /// Picks among the items.
        pick: u64,
    },
    /// An item's replication changes (0 parks it).
    SetReplication {
        /// Picks among the items.
        pick: u64,
        /// The new replication.
        replication: u16,
    },
    /// A member's item limit changes.
    SetLimit {
        /// Picks among the members that are up.
        pick: u64,
        /// The new limit.
        limit: u32,
    },
    /// Something writes what it should not.
    Bad(BadInput),
}

/// Bad input, written straight into the store (issue 7, part 3). Every kind must be
/// skipped, logged and counted, and must change nothing else.
#[derive(Clone, Debug)]
pub enum BadInput {
    /// A new item key whose value does not decode.
    GarbageItem {
        /// The item id.
        id: String,
        /// The value.
        value: Vec<u8>,
    },
    /// An existing item's value replaced by one that does not decode: the item keeps its
    /// last good value.
    GarbleItem {
        /// Picks among the items.
        pick: u64,
        /// The value.
        value: Vec<u8>,
    },
    /// A member key no process holds, with a value that does not decode.
    GarbageMember {
        /// The member id, `zone#suffix`.
        name: String,
        /// The value.
        value: Vec<u8>,
    },
    /// A live member's value replaced (under its lease) by one that does not decode.
    GarbleMember {
        /// Picks among the live members.
        pick: u64,
        /// The value.
        value: Vec<u8>,
    },
    /// A live assignment's status replaced (under its lease) by one that does not decode.
    GarbleAssignment {
        /// Picks among the assignments.
        pick: u64,
        /// The value.
        value: Vec<u8>,
    },
    /// A key under the prefix that is not a valid key of any kind.
    ForbiddenKey {
        /// The key, below the prefix.
        key: String,
    },
    /// A value of a mebibyte under a new item key: garbage, or a valid item value padded
    /// with an unknown field (which must be kept and ignored, and allocate as usual).
    Huge {
        /// The item id.
        id: String,
        /// Whether the value is a valid item value.
        valid: bool,
    },
    /// An item asking for 65535 replicas.
    AbsurdReplication {
        /// The item id.
        id: String,
    },
}

/// Everything a run does, drawn from its seed.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The seed it was drawn from.
    pub seed: u64,
    /// The starting cluster.
    pub cluster: ClusterSpec,
    /// The schedule.
    pub steps: Vec<Step>,
}

impl Plan {
    /// Draws the plan of `seed`: 2-4 zones, 3-8 members with random limits, 10-60 items
    /// with replication 1-3 (about a fifth exclusive), and 30-100 steps of 0.2-3 s each
    /// (or, after a fault that stops renewals, often about a lease TTL).
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
    const WEIGHTS: [u64; 14] = [8, 6, 5, 6, 6, 6, 6, 5, 4, 8, 5, 8, 6, 6];
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
        _ => Action::Bad(draw_bad(rng, names, pick)),
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

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Bad(bad) => write!(f, "{}: {}", self.kind(), bad.what()),
            other => write!(f, "{other:?}"),
        }
    }
}

impl BadInput {
    /// The bad value or key, readably.
    fn what(&self) -> String {
        match self {
            BadInput::GarbageItem { value, .. }
            | BadInput::GarbleItem { value, .. }
            | BadInput::GarbageMember { value, .. }
            | BadInput::GarbleMember { value, .. }
            | BadInput::GarbleAssignment { value, .. } => {
                format!("{:?}", String::from_utf8_lossy(value))
            }
            BadInput::ForbiddenKey { key } => format!("{key:?}"),
            BadInput::Huge { valid, .. } => format!("1 MiB, valid {valid}"),
            BadInput::AbsurdReplication { .. } => "replication 65535".into(),
        }
    }
}

impl Action {
    /// The action's kind, for the figures.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Join { .. } => "join",
            Action::Crash { .. } => "crash",
            Action::CrashLeaderMidRound { .. } => "leader crash mid-round",
            Action::Pause { .. } => "pause",
            Action::Resume { .. } => "resume",
            Action::Partition { .. } => "partition",
            Action::Heal { .. } => "heal",
            Action::Drain { .. } => "drain",
            Action::Compact => "compact",
            Action::AddItem { .. } => "add item",
            Action::RemoveItem { .. } => "remove item",
            Action::SetReplication { .. } => "set replication",
            Action::SetLimit { .. } => "set limit",
            Action::Bad(bad) => match bad {
                BadInput::GarbageItem { .. } => "bad: garbage item",
                BadInput::GarbleItem { .. } => "bad: garbled item",
                BadInput::GarbageMember { .. } => "bad: garbage member",
                BadInput::GarbleMember { .. } => "bad: garbled member",
                BadInput::GarbleAssignment { .. } => "bad: garbled assignment",
                BadInput::ForbiddenKey { .. } => "bad: forbidden key",
                BadInput::Huge { .. } => "bad: huge value",
                BadInput::AbsurdReplication { .. } => "bad: replication 65535",
            },
        }
    }
}
