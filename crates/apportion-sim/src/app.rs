//! The application a member runs in the simulation: what a real service would do with its
//! events, at a service's pace.
//!
//! It marks an item ready a random while after it is assigned (loading takes time),
//! releases an exclusive item a random while after it is asked to, leaves once drained,
//! and, asked to restart, leaves with an away record once its member is ready to and
//! starts again (a new process under the same name) a while later; a restart that cannot
//! get ready in time is killed, as a supervisor's stop timeout would. Every event is
//! written to the record the moment it arrives, so the checker judges the library's
//! timing, not the application's. While paused it takes events in
//! (the library's tasks keep running, as the kernel keeps a stopped process's sockets) but
//! acts on nothing until resumed: its timers do not run. It awaits each call into the
//! library in its event loop, as the simplest application would, which holds the library
//! to its promise that fencing never waits on a call.
//!
//! It keeps this loop of its own rather than the simple application the tests and the demo
//! share ([`apportion::testing::Application`]), which acts at once on every event: a run
//! must be reproducible from its seed, so every delay is drawn from the run's generator
//! and waited on the paused clock, a pause must stop acting without stopping the events,
//! and a failed call must be retried on that same clock.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use apportion::core::keys::ItemId;
use apportion::core::values::JsonDecoder;
use apportion::{Error, Event, Member};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::record::{Record, SharedRecord};
use crate::rng::Rng;
use crate::serving::Happening;
use crate::store::SimStore;

/// The longest the application waits for `leave` (a revoke that cannot reach the store
/// leaves the lease to expire).
const LEAVE_LIMIT: Duration = Duration::from_millis(200);
/// How long the application waits before it tries a failed call again.
const RETRY: Duration = Duration::from_millis(500);
/// How long a restart may wait for the member to be ready to leave before the supervisor
/// kills the process (as systemd's stop timeout does): a member whose items have nowhere
/// else to go is never ready, like a drain that cannot end.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// What the driver asks of a running application.
#[derive(Debug)]
pub enum Command {
    /// Stop acting (SIGSTOP).
    Pause,
    /// Act again (SIGCONT).
    Resume,
    /// Drain, then leave.
    Drain,
    /// Change the item limit.
    Limit(u32),
    /// Restart: leave once ready to, with items waiting `grace` for the member, and start
    /// again `back_after` it left.
    Restart {
        /// How long the member's items wait for it.
        grace: Duration,
        /// How long the process is down.
        back_after: Duration,
    },
}

/// A restart asked for, until the member is ready to leave.
#[derive(Clone, Copy, Debug)]
struct Restart {
    grace: Duration,
    back_after: Duration,
}

/// Something the application does later.
#[derive(Debug)]
enum Chore {
    Ready(ItemId),
    Release(ItemId),
    Leave,
    LeaveToRestart,
    Kill,
}

impl Chore {
    /// Whether it ends the session (kept when the member is fenced: it leaves anyway).
    fn leaves(&self) -> bool {
        matches!(self, Chore::Leave | Chore::LeaveToRestart | Chore::Kill)
    }

    fn about(&self, item: &ItemId) -> bool {
        matches!(self, Chore::Ready(i) | Chore::Release(i) if i == item)
    }
}

/// The application's chores by when they are due (ties in the order they were added).
#[derive(Default)]
struct Chores {
    queue: BTreeMap<(Instant, u64), Chore>,
    added: u64,
}

impl Chores {
    fn add(&mut self, delay: Duration, chore: Chore) {
        self.added += 1;
        self.queue
            .insert((Instant::now() + delay, self.added), chore);
    }

    fn next_due(&self) -> Option<Instant> {
        self.queue.keys().next().map(|(at, _)| *at)
    }

    fn pop(&mut self) -> Option<Chore> {
        self.queue.pop_first().map(|(_, chore)| chore)
    }

    /// Drops the chores that `keep` refuses.
    fn retain(&mut self, keep: impl Fn(&Chore) -> bool) {
        self.queue.retain(|_, chore| keep(chore));
    }
}

/// The application's pace: its delays, drawn from its own generator.
pub struct Pace {
    rng: Rng,
}

impl Pace {
    /// A pace drawn from `rng`.
    pub fn new(rng: Rng) -> Self {
        Pace { rng }
    }

    fn ready_delay(&mut self) -> Duration {
        self.rng.millis(50, 2000)
    }

    fn release_delay(&mut self) -> Duration {
        self.rng.millis(50, 1500)
    }
}

type SimMember = Member<SimStore, JsonDecoder>;

/// Runs one member's application: starts the member, then serves until it leaves, its
/// session ends, or the task is aborted (a crash). After leaving to restart it starts
/// again, as a supervisor would start the process again, with a member from `start`.
pub async fn run<F>(
    start: impl Fn() -> F,
    name: String,
    record: SharedRecord,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut pace: Pace,
) where
    F: Future<Output = Result<SimMember, Error>>,
{
    loop {
        let member = match start().await {
            Ok(member) => member,
            Err(e) => {
                note(
                    &record,
                    &name,
                    Happening::Ended(format!("could not start: {e}")),
                );
                return;
            }
        };
        note(&record, &name, Happening::Joined);
        let back_after = match serve(member, &name, &record, &mut commands, &mut pace).await {
            Exit::Over => return,
            Exit::Restart(member, restart) => {
                // The session ends either way; if the record is not written, the items are
                // placed elsewhere as after a departure.
                let leaving = member.leave_for_restart(restart.grace);
                let _ = tokio::time::timeout(LEAVE_LIMIT, leaving).await;
                note(&record, &name, Happening::LeftToRestart);
                restart.back_after
            }
            Exit::Killed(restart) => {
                note(&record, &name, Happening::Crashed);
                restart.back_after
            }
        };
        tokio::time::sleep(back_after).await;
    }
}

/// How a session ended.
enum Exit {
    /// For good: the member left, or its session ended.
    Over,
    /// Ready to restart: the member is to leave with an away record.
    Restart(Box<SimMember>, Restart),
    /// Not ready to restart in time: the process was killed (the member is dropped, its
    /// lease left to expire).
    Killed(Restart),
}

/// Serves one session, until it ends (see [`Exit`]).
async fn serve(
    mut member: SimMember,
    name: &str,
    record: &SharedRecord,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    pace: &mut Pace,
) -> Exit {
    let mut chores = Chores::default();
    let mut paused = false;
    let mut restart = None;
    loop {
        let due = chores.next_due().filter(|_| !paused);
        tokio::select! {
            biased;
            event = member.next_event() => {
                let Some(event) = event else {
                    let reason = member.session_error().map(|e| e.to_string()).unwrap_or_default();
                    note(record, name, Happening::Ended(reason));
                    return Exit::Over;
                };
                note(record, name, Happening::Event(event.clone()));
                match event {
                    Event::Assigned { item, .. } => chores.add(pace.ready_delay(), Chore::Ready(item)),
                    Event::ReleaseRequested { item } => {
                        chores.retain(|c| !c.about(&item));
                        chores.add(pace.release_delay(), Chore::Release(item));
                    }
                    Event::Revoked { item } => chores.retain(|c| !c.about(&item)),
                    Event::Fenced => chores.retain(Chore::leaves),
                    Event::Drained => chores.add(Duration::ZERO, Chore::Leave),
                    Event::ReadyToRestart if restart.is_some() => {
                        chores.add(Duration::ZERO, Chore::LeaveToRestart);
                    }
                    _ => {}
                }
            }
            command = commands.recv() => match command {
                None => return Exit::Over,
                Some(Command::Pause) => {
                    paused = true;
                    note(record, name, Happening::Paused);
                }
                Some(Command::Resume) => {
                    paused = false;
                    note(record, name, Happening::Resumed);
                }
                Some(Command::Drain) => attempt(member.begin_drain()).await,
                Some(Command::Limit(limit)) => attempt(member.set_item_limit(limit)).await,
                Some(Command::Restart { grace, back_after }) => {
                    if restart.replace(Restart { grace, back_after }).is_none() {
                        chores.add(STOP_TIMEOUT, Chore::Kill);
                    }
                    attempt(member.begin_restart()).await;
                }
            },
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                let Some(chore) = chores.pop() else { continue };
                match chore {
                    Chore::Ready(item) => {
                        if !done(member.mark_ready(&item)).await {
                            chores.add(RETRY, Chore::Ready(item));
                        }
                    }
                    Chore::Release(item) => {
                        if !done(member.release(&item)).await {
                            chores.add(RETRY, Chore::Release(item));
                        }
                    }
                    Chore::Leave => {
                        // The session ends either way; a revoke that fails leaves the
                        // lease to expire.
                        let _ = tokio::time::timeout(LEAVE_LIMIT, member.leave()).await;
                        note(record, name, Happening::Left);
                        return Exit::Over;
                    }
                    Chore::LeaveToRestart => {
                        if let Some(restart) = restart {
                            return Exit::Restart(Box::new(member), restart);
                        }
                    }
                    Chore::Kill => {
                        if let Some(restart) = restart {
                            return Exit::Killed(restart);
                        }
                    }
                }
            }
        }
    }
}

/// Runs a call to its end, in the event loop, as a simple application would: the library
/// promises that no call holds the application away from its `Fenced` event (a call gives
/// up once the member is fenced), and the checks hold it to that. Failures are the normal
/// lot of a member in a faulty cluster: the application carries on, as a real one would.
async fn attempt(call: impl Future<Output = Result<(), Error>>) {
    let _ = call.await;
}

/// Runs a call about an item to its end (see [`attempt`]); false if it should be tried
/// again (it failed, but not because the item is no longer here).
async fn done(call: impl Future<Output = Result<(), Error>>) -> bool {
    matches!(call.await, Ok(()) | Err(Error::NotAssigned { .. }))
}

fn note(record: &SharedRecord, member: &str, happening: Happening) {
    Record::lock(record).note(member, happening);
}
