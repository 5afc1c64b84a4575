//! The wall clock of a run: a fixed Unix time at the instant the run starts, advanced by
//! the paused runtime clock. Every member's allocator reads it (through
//! `MemberOptions::wall_clock`), the driver sets freezes by it and the mirror judges them
//! by it, so that whether a freeze is in force at a simulated instant is the same in all
//! of them and in every replay of a seed, whatever day the run is on.

use std::time::Duration;

use tokio::time::Instant;

/// The Unix time at which every run starts: 2027-01-15T08:00:00Z, a fixed day so that the
/// times a run writes into the store (freeze ends, away records) replay exactly too.
pub const EPOCH: Duration = Duration::from_secs(1_800_000_000);

/// A run's wall clock (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub struct SimClock {
    started: Instant,
}

impl SimClock {
    /// The clock of a run that starts now, at [`EPOCH`].
    pub fn start() -> Self {
        SimClock {
            started: Instant::now(),
        }
    }

    /// The clock as `MemberOptions::wall_clock` takes it.
    pub fn base(&self) -> (Duration, Instant) {
        (EPOCH, self.started)
    }

    /// Whole seconds since the Unix epoch, now.
    pub fn unix_now(&self) -> u64 {
        (EPOCH + self.started.elapsed()).as_secs()
    }

    /// The runtime instant at which the clock reads `unix_secs`.
    pub fn instant_of(&self, unix_secs: u64) -> Instant {
        self.started + Duration::from_secs(unix_secs).saturating_sub(EPOCH)
    }
}
