//! The plan of a run, drawn from its seed: the cluster to start with and the schedule of
//! steps (events and faults), each followed by a stretch of simulated time.
//!
//! Steps name their targets by a random `pick` rather than by name, and the driver resolves
//! a pick among the members or items that fit *when the step runs* (the running members
//! for a crash, the paused ones for a resume). So the plan is a pure function of the seed,
//! can be printed before the run, and never names a member that has already gone.

use std::fmt;
use std::time::Duration;

mod clock;
mod draw;

pub use clock::{SimClock, EPOCH};

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
    /// A member leaves to restart ([`apportion::Member::leave_for_restart`]) and comes
    /// back under the same name `back_after` it left: within `grace` it gets its items
    /// back, after it they have been placed elsewhere.
    Restart {
        /// Picks among the members that are up and not draining.
        pick: u64,
        /// How long its items wait for it.
        grace: Duration,
        /// How long after leaving it starts again.
        back_after: Duration,
    },
    /// An operator changes the cluster settings (`P/settings`).
    Settings(SettingsChange),
    /// Something writes what it should not.
    Bad(BadInput),
}

/// A change of the cluster settings, as `apportion freeze` or `apportion config set` writes
/// it. The schedule never lifts a freeze: it must end by itself.
#[derive(Clone, Debug)]
pub enum SettingsChange {
    /// A maintenance freeze that ends `secs` from now.
    Freeze {
        /// Seconds until it ends.
        secs: u64,
    },
    /// The most added replicas not yet ready (`None`: no limit).
    Throttle {
        /// The limit.
        max_moves_in_flight: Option<u32>,
    },
    /// The fewest ready replicas a planned step may leave an item with.
    MinReady {
        /// The floor.
        min_ready: u32,
    },
    /// How long a lost member's items wait for it (`None`: not at all).
    RefillDelay {
        /// Seconds.
        secs: Option<u64>,
    },
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
            Action::Restart {
                back_after, grace, ..
            } if back_after < grace => "restart, back in time",
            Action::Restart { .. } => "restart, back too late",
            Action::Settings(change) => match change {
                SettingsChange::Freeze { .. } => "settings: freeze",
                SettingsChange::Throttle { .. } => "settings: throttle",
                SettingsChange::MinReady { .. } => "settings: min_ready",
                SettingsChange::RefillDelay { .. } => "settings: refill delay",
            },
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
