//! The member's loop: library events, process notices and signals in, store writes
//! (ready marks, releases, the drain) and printed lines out.
//!
//! The rules: an assigned item is served (its process started, or simply marked ready
//! without `--exec`); a revoked item's process stops; an item asked to be released is
//! released once its process has stopped; fencing stops everything (the replayed
//! assignments after `Unfenced` start it again); an assignment is ready while its process
//! is up, and marked not ready when the process dies; an item whose process keeps dying is
//! given up: released like an exclusive item, so the leader moves it. When the lease is
//! lost (the member was cut off, or paused, for longer than its TTL, and had fenced
//! itself), it joins again under a new lease, unless told not to.

use std::collections::BTreeSet;

use apportion::core::keys::ItemId;
use apportion::core::values::JsonDecoder;
use apportion::store::{Backoff, EtcdStore};
use apportion::{Error, Event, Member};
use std::time::Duration;

use tokio::sync::mpsc;

use super::exec::{ExecSpec, Notice, Supervisor};
use super::marks::{Marks, Written};
use super::output::{Line, Printer};
use super::prometheus;
use super::signals::Signals;
use crate::duration::Span;

/// The pause before the second attempt to join again after the lease was lost, doubled
/// after each further failure up to [`MAX_REJOIN_BACKOFF`].
const FIRST_REJOIN_BACKOFF: Duration = Duration::from_millis(200);

/// The longest pause between two attempts to join again after the lease was lost.
const MAX_REJOIN_BACKOFF: Duration = Duration::from_secs(10);

/// What a stopping signal does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnSignal {
    /// Move every item away, then leave for good.
    Drain,
    /// Hand primaries and exclusive items over, then leave to come back; the replicas wait.
    Restart,
}

/// How the member stops when a signal comes.
#[derive(Clone, Copy, Debug)]
pub struct Stop {
    /// Drain or restart.
    pub on_signal: OnSignal,
    /// How long the drain or the hand-over may take before the member leaves anyway.
    pub timeout: Span,
    /// How long the replicas wait for a restarted member.
    pub grace: Span,
}

/// How the member's run ended.
#[derive(Debug)]
pub enum Ending {
    /// Drained and left: everything moved away first.
    Drained,
    /// Handed its primaries and exclusive items over and left to come back.
    LeftToRestart,
    /// Left on a second signal, before draining finished.
    Abandoned,
    /// Left when the drain timeout ran out, still holding `held` items that no other
    /// member could take.
    TimedOut {
        /// The items held when it left.
        held: usize,
    },
    /// The lease ended while draining (or while joining again after it ended, when a
    /// signal came): the member holds nothing, and there is nothing to leave.
    Gone,
    /// The session could not go on; the reason.
    Failed(String),
}

/// The running member and what it serves.
pub struct Serving {
    member: Member<EtcdStore, JsonDecoder>,
    printer: Printer,
    supervisor: Option<Supervisor>,
    notices: mpsc::UnboundedReceiver<Notice>,
    /// Items held now.
    held: BTreeSet<ItemId>,
    /// Items whose assignment this member has marked ready (or is marking).
    ready: BTreeSet<ItemId>,
    /// The ready marks being written.
    marks: Marks,
    /// Items to release once their process has stopped.
    releasing: BTreeSet<ItemId>,
    fenced: bool,
    signals: Signals,
    /// Join again under a new lease when the lease is lost.
    rejoin: bool,
}

impl Serving {
    /// Serves `member`'s items, with a process each if `exec` is given.
    pub fn new(
        member: Member<EtcdStore, JsonDecoder>,
        exec: Option<ExecSpec>,
        printer: Printer,
        signals: Signals,
        rejoin: bool,
    ) -> Self {
        let (tx, notices) = mpsc::unbounded_channel();
        Serving {
            marks: Marks::new(member.handle()),
            member,
            printer,
            supervisor: exec.map(|spec| Supervisor::new(spec, tx)),
            notices,
            held: BTreeSet::new(),
            ready: BTreeSet::new(),
            releasing: BTreeSet::new(),
            fenced: false,
            signals,
            rejoin,
        }
    }

    /// Runs until drained (or ready to restart), abandoned, timed out or failed; stops
    /// every process before returning. A drain or hand-over that has not finished
    /// `stop.timeout` after the signal leaves anyway: a member that nobody can take over
    /// from would otherwise never stop. In restart mode it leaves with an away record
    /// (`Member::leave_for_restart`), timed out, cut short by a second signal or not, so
    /// that its replicas wait.
    pub async fn run(mut self, stop: Stop) -> Ending {
        let ending = self.serve(stop).await;
        if let Some(supervisor) = self.supervisor.take() {
            supervisor.shut_down().await;
            while let Ok(notice) = self.notices.try_recv() {
                self.print_notice(&notice);
            }
        }
        let restart = stop.on_signal == OnSignal::Restart;
        match ending {
            Ending::Failed(_) | Ending::Gone => ending,
            Ending::LeftToRestart | Ending::TimedOut { .. } | Ending::Abandoned if restart => {
                match self.member.leave_for_restart(stop.grace.0).await {
                    Ok(()) => {
                        self.printer
                            .print(&Line::LeftToRestart { grace: stop.grace });
                        ending
                    }
                    Err(e) => Ending::Failed(format!("cannot leave to restart: {e}")),
                }
            }
            ending => match self.member.leave().await {
                Ok(()) => {
                    self.printer.print(&Line::Left);
                    ending
                }
                Err(e) => Ending::Failed(format!("cannot leave: {e}")),
            },
        }
    }

    async fn serve(&mut self, stop: Stop) -> Ending {
        let mut draining = false;
        // Set when a signal starts the drain; its branch below is off until then.
        let deadline = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(deadline);
        loop {
            let signalled = tokio::select! {
                event = self.member.next_event() => {
                    let Some(event) = event else {
                        if draining {
                            return Ending::Gone;
                        }
                        if !self.rejoin {
                            return Ending::Failed(self.session_error());
                        }
                        if let Err(ending) = self.join_again().await {
                            return ending;
                        }
                        continue;
                    };
                    if let Some(ending) = self.on_event(event).await {
                        return ending;
                    }
                    None
                }
                Some(notice) = self.notices.recv() => {
                    self.on_notice(notice).await;
                    None
                }
                written = self.marks.next() => {
                    self.on_marked(written);
                    None
                }
                name = self.signals.next() => Some(name),
                () = &mut deadline, if draining => {
                    return Ending::TimedOut { held: self.held.len() };
                }
            };
            if let Some(name) = signalled {
                if draining {
                    return Ending::Abandoned;
                }
                draining = true;
                deadline
                    .as_mut()
                    .reset(tokio::time::Instant::now() + stop.timeout.0);
                let started = match stop.on_signal {
                    OnSignal::Drain => {
                        self.printer.print(&Line::Draining {
                            signal: name,
                            timeout: stop.timeout,
                        });
                        self.member.begin_drain().await
                    }
                    OnSignal::Restart => {
                        self.printer.print(&Line::Restarting {
                            signal: name,
                            timeout: stop.timeout,
                            grace: stop.grace,
                        });
                        self.member.begin_restart().await
                    }
                };
                if let Err(e) = started {
                    return Ending::Failed(format!("cannot start stopping: {e}"));
                }
            }
            self.record_metrics();
        }
    }

    /// Starts a new session after the lease was lost, trying until it works; a signal
    /// meanwhile ends the run (there is nothing to drain).
    async fn join_again(&mut self) -> Result<(), Ending> {
        let reason = self.session_error();
        self.held.clear();
        self.ready.clear();
        self.releasing.clear();
        if let Some(supervisor) = &mut self.supervisor {
            supervisor.stop_all();
        }
        let mut backoff = Backoff::new(FIRST_REJOIN_BACKOFF, MAX_REJOIN_BACKOFF);
        loop {
            let joined = tokio::select! {
                joined = self.member.rejoin() => joined,
                _ = self.signals.next() => return Err(Ending::Gone),
            };
            match joined {
                Ok(()) => {
                    self.fenced = false;
                    // The old session's handle writes nothing any more: marks go through
                    // the new one (dropping the old marks aborts what they had in flight).
                    self.marks = Marks::new(self.member.handle());
                    let lease = self.member.lease().id;
                    self.printer.print(&Line::Rejoined {
                        reason: &reason,
                        lease,
                    });
                    return Ok(());
                }
                Err(e) => {
                    let pause = backoff.next_delay();
                    eprintln!(
                        "apportion member: cannot join again yet ({e}); retrying in {pause:?}"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        _ = self.signals.next() => return Err(Ending::Gone),
                    }
                }
            }
        }
    }

    /// Acts on a library event; the ending once the member has drained or is ready to
    /// restart.
    async fn on_event(&mut self, event: Event) -> Option<Ending> {
        self.printer.print(&Line::Event(&event));
        match event {
            Event::Assigned { item, slot } => {
                self.held.insert(item.clone());
                match &mut self.supervisor {
                    Some(supervisor) => supervisor.start(&item, slot),
                    None => self.mark(&item, true),
                }
            }
            Event::PrimaryGained { item, slot } | Event::PrimaryLost { item, slot } => {
                if let Some(supervisor) = &mut self.supervisor {
                    supervisor.set_slot(&item, slot);
                }
            }
            Event::ReleaseRequested { item } => self.let_go(item).await,
            Event::Revoked { item } => {
                self.held.remove(&item);
                self.ready.remove(&item);
                self.releasing.remove(&item);
                if let Some(supervisor) = &mut self.supervisor {
                    supervisor.stop(&item);
                }
            }
            Event::Fenced => {
                self.fenced = true;
                self.ready.clear();
                if let Some(supervisor) = &mut self.supervisor {
                    supervisor.stop_all();
                }
            }
            Event::Unfenced => self.fenced = false,
            Event::Drained => return Some(Ending::Drained),
            Event::ReadyToRestart => return Some(Ending::LeftToRestart),
            // A kind of event added to the library since: nothing to serve differently.
            _ => {}
        }
        None
    }

    /// Prints what a notice says by itself (a ready mark is printed once written).
    fn print_notice(&self, notice: &Notice) {
        let line = match notice {
            Notice::Started { item, pid } => Line::Started { item, pid: *pid },
            Notice::Exited {
                item,
                status,
                restart_in,
            } => Line::Exited {
                item,
                status,
                restart_in: *restart_in,
            },
            Notice::Stopped { item } => Line::Stopped { item },
            Notice::GaveUp {
                item,
                status,
                crashes,
                window,
            } => Line::GaveUp {
                item,
                status,
                crashes: *crashes,
                window: *window,
            },
            Notice::Ready { .. } => return,
        };
        self.printer.print(&line);
    }

    /// Acts on a process notice.
    async fn on_notice(&mut self, notice: Notice) {
        self.print_notice(&notice);
        match notice {
            Notice::Started { .. } => {}
            Notice::Ready { item } => {
                let serving = self
                    .supervisor
                    .as_ref()
                    .is_some_and(|s| s.is_running(&item));
                if serving && self.held.contains(&item) && !self.fenced {
                    self.mark(&item, true);
                }
            }
            Notice::Exited { item, .. } => {
                metrics::counter!(prometheus::PROCESS_EXITS).increment(1);
                if self.held.contains(&item) && !self.fenced {
                    self.mark(&item, false);
                }
            }
            Notice::GaveUp { item, .. } => {
                metrics::counter!(prometheus::PROCESS_EXITS).increment(1);
                if self.held.contains(&item) && !self.fenced {
                    self.mark(&item, false);
                    self.let_go(item).await;
                }
            }
            Notice::Stopped { item } => {
                if let Some(supervisor) = &mut self.supervisor {
                    supervisor.reap(&item);
                }
                if self.releasing.remove(&item) {
                    self.release(&item).await;
                }
            }
        }
    }

    /// Stops serving the item and releases it once its process (if any) has stopped: asked
    /// by the leader (an exclusive item), or because its process keeps crashing.
    async fn let_go(&mut self, item: ItemId) {
        self.ready.remove(&item);
        let stopping = self.supervisor.as_mut().is_some_and(|s| s.stop(&item));
        if stopping {
            self.releasing.insert(item);
        } else {
            self.release(&item).await;
        }
    }

    /// Writes the item's ready mark, when it changes (see [`Marks`]: side by side with
    /// the others, in order for the item).
    fn mark(&mut self, item: &ItemId, ready: bool) {
        let changed = if ready {
            self.ready.insert(item.clone())
        } else {
            self.ready.remove(item)
        };
        if changed {
            self.marks.write(item.clone(), ready);
        }
    }

    /// Reports a ready mark once written.
    fn on_marked(&self, written: Written) {
        let item = &written.item;
        match written.result {
            Ok(()) if written.ready => self.printer.print(&Line::Ready { item }),
            Ok(()) => {}
            // Moved on already (the revoke is on its way), fenced (the marks are written
            // again once the assignments are replayed), or the session ended (a new one
            // starts from nothing).
            Err(Error::NotAssigned { .. } | Error::Fenced { .. } | Error::LeaseLost { .. }) => {}
            Err(e) => tracing::warn!(%item, error = %e, "cannot write the assignment's status"),
        }
    }

    /// Hands an exclusive item back to the leader.
    async fn release(&mut self, item: &ItemId) {
        match self.member.release(item).await {
            Ok(()) => self.printer.print(&Line::Released { item }),
            Err(Error::NotAssigned { .. }) => {}
            Err(e) => tracing::warn!(%item, error = %e, "cannot release the item"),
        }
    }

    /// Why the session ended.
    fn session_error(&self) -> String {
        match self.member.session_error() {
            Some(e) => e.to_string(),
            None => "the member's event stream ended".to_string(),
        }
    }

    fn record_metrics(&self) {
        metrics::gauge!(prometheus::ITEMS).set(self.held.len() as f64);
        let processes = self.supervisor.as_ref().map_or(0, Supervisor::len);
        metrics::gauge!(prometheus::PROCESSES).set(processes as f64);
    }
}
