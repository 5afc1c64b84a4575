//! The event loop of a simple application, for members run in process by the tests, the
//! converge benchmark and the demo: written once, so that what they measure and check is
//! what the library does for an application that follows the contract, not what each copy
//! of the loop happened to do.
//!
//! The application serves every event in order, as [`Event`] documents: it reports an item
//! ready as soon as it is assigned (it loads nothing), stops serving and releases an
//! exclusive item as soon as it is asked to, and leaves once drained. A call about an item
//! that has moved on meanwhile is refused; the next event says so, so such a refusal needs
//! no action and is ignored.

use std::sync::Arc;

use apportion_core::values::Decoder;
use apportion_store::Store;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};

use crate::error::Error;
use crate::events::Event;
use crate::member::Member;

/// What the program running the members asks of one, as an operator or an orchestrator
/// would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Drain, then leave (what `apportion member` does on SIGTERM).
    Drain,
    /// Change the member's item limit.
    Limit(u32),
    /// Leave to come back within the grace (what `apportion member --on-sigterm restart`
    /// does on SIGTERM): hand primaries and exclusive items over, then leave with an away
    /// record once [`Event::ReadyToRestart`] comes.
    Restart {
        /// How long the member's items wait for it.
        grace: std::time::Duration,
    },
}

/// Sees every event before the application acts on it, so a checker judges the order in
/// which the application acted.
type Recorder = Arc<dyn Fn(&Event) + Send + Sync>;

/// One member's application; see the module documentation.
pub struct Application<S: Store, D: Decoder> {
    member: Member<S, D>,
    record: Option<Recorder>,
    ready_concurrently: bool,
}

impl<S: Store, D: Decoder> Application<S, D> {
    /// The application of `member`, started already.
    pub fn new(member: Member<S, D>) -> Self {
        Application {
            member,
            record: None,
            ready_concurrently: false,
        }
    }

    /// Hands every event to `record` first (an event log, a serving ledger).
    pub fn recording(mut self, record: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.record = Some(Arc::new(record));
        self
    }

    /// Reports each item ready from a task of its own, as a service that loads items in
    /// parallel would, so that the reports of a large assignment do not queue behind each
    /// other in the event loop (the benchmark measures the library, not this loop).
    pub fn ready_concurrently(mut self) -> Self {
        self.ready_concurrently = true;
        self
    }

    /// Runs the application on a task of its own.
    pub fn spawn(self) -> InProcessMember {
        let (commands, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(self.run(receiver));
        InProcessMember { commands, task }
    }

    /// Serves the events and `commands` until the member has drained and left (`Ok`), its
    /// session ended (`Err`, with the reason), or a command failed.
    pub async fn run(self, mut commands: mpsc::UnboundedReceiver<Command>) -> Result<(), Error> {
        let Application {
            mut member,
            record,
            ready_concurrently,
        } = self;
        let mut restart_grace = None;
        loop {
            tokio::select! {
                event = member.next_event() => {
                    let Some(event) = event else {
                        return Err(member.session_error().unwrap_or_else(|| Error::LeaseLost {
                            member: member.id().to_string(),
                            reason: "the event stream ended".into(),
                        }));
                    };
                    if let Some(record) = &record {
                        record(&event);
                    }
                    match event {
                        Event::Assigned { item, .. } if ready_concurrently => {
                            let handle = member.handle();
                            tokio::spawn(async move { handle.mark_ready(&item).await });
                        }
                        Event::Assigned { item, .. } => {
                            let _ = member.mark_ready(&item).await;
                        }
                        Event::ReleaseRequested { item } => {
                            let _ = member.release(&item).await;
                        }
                        Event::Drained => return member.leave().await,
                        Event::ReadyToRestart => {
                            if let Some(grace) = restart_grace {
                                return member.leave_for_restart(grace).await;
                            }
                        }
                        _ => {}
                    }
                }
                Some(command) = commands.recv() => match command {
                    Command::Drain => member.begin_drain().await?,
                    Command::Limit(limit) => member.set_item_limit(limit).await?,
                    Command::Restart { grace } => {
                        restart_grace = Some(grace);
                        member.begin_restart().await?;
                    }
                },
            }
        }
    }
}

/// A member whose [`Application`] runs on a task of this process: what a test or the demo
/// holds to drain it, change its limit, crash it, or see it end.
pub struct InProcessMember {
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<Result<(), Error>>,
}

impl InProcessMember {
    /// Asks the application to carry out `command` (ignored once it has ended).
    pub fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// Whether the application has ended (it left, or its session ended).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// The process dies: the application stops at once, and dropping the member stops its
    /// renewals, so its lease ends one TTL later, exactly as for a process killed with
    /// SIGKILL.
    pub fn crash(self) {
        self.task.abort();
    }

    /// Waits for the application to end; how it ended (`Err` from the task if it panicked).
    pub async fn ended(self) -> Result<Result<(), Error>, JoinError> {
        self.task.await
    }
}
