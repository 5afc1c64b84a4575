//! The record of a run: everything that happened to the members, in order, with the
//! simulated time it happened at, and every invariant violation found.
//!
//! Applications write to it as their events arrive, and the serving rules are checked on
//! each line as it is written, so a violation is caught at the instant it happens. The
//! record also yields the run's fingerprint: two runs of one seed must produce the same.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::serving::{Happening, Serving};

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Simulated time since the run started.
    pub at: Duration,
    /// Which rule.
    pub rule: &'static str,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:?}] {}: {}", self.at, self.rule, self.detail)
    }
}

/// A broken rule that stands unless what the round behind a write of the allocator reports
/// excuses it: the mirror sees the write before its round ends.
#[derive(Clone, Debug)]
pub struct Suspect {
    /// The revision of the view the write was planned from.
    pub planned_from: i64,
    /// The violation it is, unless excused.
    pub violation: Violation,
}

/// One line: when, which member, what.
#[derive(Clone, Debug)]
pub struct Line {
    /// Simulated time since the run started.
    pub at: Duration,
    /// The member, `zone#suffix`.
    pub member: String,
    /// What happened.
    pub happening: Happening,
}

/// The record (see the module docs). Shared by the driver, the applications and the
/// store mirror through [`SharedRecord`].
pub struct Record {
    start: Instant,
    lines: Vec<Line>,
    serving: Serving,
    violations: Vec<Violation>,
    suspects: Vec<Suspect>,
}

/// The record, shared.
pub type SharedRecord = Arc<Mutex<Record>>;

impl Record {
    /// An empty record whose clock starts now.
    pub fn shared() -> SharedRecord {
        Arc::new(Mutex::new(Record {
            start: Instant::now(),
            lines: Vec::new(),
            serving: Serving::default(),
            violations: Vec::new(),
            suspects: Vec::new(),
        }))
    }

    /// Locks a shared record.
    pub fn lock(shared: &SharedRecord) -> MutexGuard<'_, Record> {
        shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Simulated time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Writes a line, checking the exclusive-owner rule on it.
    pub fn note(&mut self, member: &str, happening: Happening) {
        for detail in self.serving.apply(member, &happening) {
            self.violate("exclusive item served twice", detail);
        }
        self.lines.push(Line {
            at: self.elapsed(),
            member: member.to_string(),
            happening,
        });
    }

    /// Checks that `member`, whose key just went with its lease, serves nothing: it must
    /// have been fenced (or stopped) before the store could expire the lease.
    pub fn member_gone(&mut self, member: &str) {
        let served = self.serving.served_by(member);
        if !served.is_empty() {
            self.violate(
                "served past the lease",
                format!("{member}'s lease ended while it still served {served:?}"),
            );
        }
    }

    /// Records a violation.
    pub fn violate(&mut self, rule: &'static str, detail: String) {
        let at = self.elapsed();
        self.violations.push(Violation { at, rule, detail });
    }

    /// Records a violation that the round of the allocator that planned from `planned_from`
    /// may yet excuse (see [`Record::judge_suspects`]).
    pub fn suspect(&mut self, planned_from: i64, rule: &'static str, detail: String) {
        let at = self.elapsed();
        let violation = Violation { at, rule, detail };
        self.suspects.push(Suspect {
            planned_from,
            violation,
        });
    }

    /// Turns the suspects that `excused` does not excuse into violations, and forgets the
    /// rest.
    pub fn judge_suspects(&mut self, excused: impl Fn(&Suspect) -> bool) {
        for suspect in std::mem::take(&mut self.suspects) {
            if !excused(&suspect) {
                self.violations.push(suspect.violation);
            }
        }
    }

    /// The violations so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Every line so far.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// How many lines of each kind (events by variant, faults by name).
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        let mut counts = BTreeMap::new();
        for line in &self.lines {
            *counts.entry(kind(&line.happening)).or_insert(0) += 1;
        }
        counts
    }

    /// A hash of every line: equal for two runs exactly when they saw the same things at
    /// the same simulated instants.
    pub fn fingerprint(&self) -> u64 {
        let mut hash = Fnv::default();
        for line in &self.lines {
            hash.write(format!("{:?}", line).as_bytes());
        }
        for violation in &self.violations {
            hash.write(violation.to_string().as_bytes());
        }
        hash.0
    }
}

fn kind(happening: &Happening) -> &'static str {
    use apportion::Event;
    match happening {
        Happening::Joined => "joined",
        Happening::Event(Event::Assigned { .. }) => "assigned",
        Happening::Event(Event::PrimaryGained { .. }) => "primary gained",
        Happening::Event(Event::PrimaryLost { .. }) => "primary lost",
        Happening::Event(Event::ReleaseRequested { .. }) => "release requested",
        Happening::Event(Event::Revoked { .. }) => "revoked",
        Happening::Event(Event::Fenced) => "fenced",
        Happening::Event(Event::Unfenced) => "unfenced",
        Happening::Event(Event::Drained) => "drained",
        Happening::Event(Event::ReadyToRestart) => "ready to restart",
        Happening::Event(_) => "other event",
        Happening::Paused => "paused",
        Happening::Resumed => "resumed",
        Happening::Crashed => "crashed",
        Happening::Left => "left",
        Happening::LeftToRestart => "left to restart",
        Happening::Ended(_) => "session ended",
    }
}

/// FNV-1a, 64 bits: a stable hash (std's `DefaultHasher` may change between releases).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}
