//! `--exec`: one process per held item, run with `sh -c` and supervised.
//!
//! Each item has a task that starts the process (with `APPORTION_ITEM`, `APPORTION_SLOT`,
//! `APPORTION_PRIMARY` and `APPORTION_MEMBER` in its environment), tells when it is ready
//! (at once, or when it prints the `--ready-line` on stdout), restarts it with a growing
//! back-off when it dies, restarts it with the new environment when the item's role changes,
//! and stops it on request: SIGTERM to its process group, SIGKILL after the grace period.
//! The process runs in its own group so that a stop reaches what the shell started too,
//! and (on Linux) is sent SIGTERM if the member itself dies: a process left serving after
//! its member was killed would still serve once the item has been given to another member.
//! The tasks report to the member's loop through [`Notice`]s; they never touch the store.

use std::collections::BTreeMap;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use apportion::core::keys::{ItemId, Slot};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The first pause before restarting a process that died.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest pause between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A process that ran this long before dying is restarted after the first back-off again.
const STABLE_AFTER: Duration = Duration::from_secs(10);

/// What to run and how.
#[derive(Debug)]
pub struct ExecSpec {
    /// The shell command.
    pub command: String,
    /// The stdout line that means ready; `None`: ready once started.
    pub ready_line: Option<String>,
    /// How long a process may take to exit after SIGTERM.
    pub grace: Duration,
    /// The member id, for `APPORTION_MEMBER`.
    pub member: String,
}

/// What an item's task reports.
#[derive(Debug)]
pub enum Notice {
    /// The process started.
    Started {
        /// The item.
        item: ItemId,
        /// Its process id.
        pid: u32,
    },
    /// The process is ready to serve.
    Ready {
        /// The item.
        item: ItemId,
    },
    /// The process ended by itself (or could not start); it is restarted after the back-off.
    Exited {
        /// The item.
        item: ItemId,
        /// How it ended.
        status: String,
        /// The back-off before the next start.
        restart_in: Duration,
    },
    /// The task stopped the process on request and ended.
    Stopped {
        /// The item.
        item: ItemId,
    },
}

/// A request to an item's task.
enum Control {
    /// Stop the process and end.
    Stop,
    /// Restart the process with this slot in its environment.
    Restart(Slot),
}

/// An item's running task.
struct Running {
    control: mpsc::UnboundedSender<Control>,
    task: JoinHandle<()>,
}

/// The item tasks; see the module documentation.
pub struct Supervisor {
    spec: Arc<ExecSpec>,
    notices: mpsc::UnboundedSender<Notice>,
    running: BTreeMap<ItemId, Running>,
    /// Tasks asked to stop that may not have finished; a new start of the item waits for
    /// its old process to be gone first.
    stopping: BTreeMap<ItemId, JoinHandle<()>>,
}

impl Supervisor {
    /// A supervisor that reports on `notices`.
    pub fn new(spec: ExecSpec, notices: mpsc::UnboundedSender<Notice>) -> Self {
        Supervisor {
            spec: Arc::new(spec),
            notices,
            running: BTreeMap::new(),
            stopping: BTreeMap::new(),
        }
    }

    /// Starts the item's process, unless it runs already.
    pub fn start(&mut self, item: &ItemId, slot: Slot) {
        if self.running.contains_key(item) {
            return;
        }
        let (control, requests) = mpsc::unbounded_channel();
        let previous = self.stopping.remove(item);
        let task = tokio::spawn(supervise(
            self.spec.clone(),
            item.clone(),
            slot,
            requests,
            self.notices.clone(),
            previous,
        ));
        self.running.insert(item.clone(), Running { control, task });
    }

    /// Restarts the item's process with its new slot, if it runs.
    pub fn set_slot(&mut self, item: &ItemId, slot: Slot) {
        if let Some(running) = self.running.get(item) {
            let _ = running.control.send(Control::Restart(slot));
        }
    }

    /// Asks the item's process to stop; false if none runs. A [`Notice::Stopped`] follows.
    pub fn stop(&mut self, item: &ItemId) -> bool {
        let Some(running) = self.running.remove(item) else {
            return false;
        };
        let _ = running.control.send(Control::Stop);
        self.stopping.insert(item.clone(), running.task);
        true
    }

    /// Asks every process to stop.
    pub fn stop_all(&mut self) {
        let items: Vec<ItemId> = self.running.keys().cloned().collect();
        for item in &items {
            self.stop(item);
        }
    }

    /// Whether a process runs (or is restarting) for the item.
    pub fn is_running(&self, item: &ItemId) -> bool {
        self.running.contains_key(item)
    }

    /// How many items have a process.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// Forgets the item's stopped task once it has ended.
    pub fn reap(&mut self, item: &ItemId) {
        if self.stopping.get(item).is_some_and(|t| t.is_finished()) {
            self.stopping.remove(item);
        }
    }

    /// Stops every process and waits until all have ended.
    pub async fn shut_down(mut self) {
        self.stop_all();
        for (_, task) in std::mem::take(&mut self.stopping) {
            let _ = task.await;
        }
    }
}

/// Why the wait for a running process ended.
enum Wake {
    Exited(std::io::Result<ExitStatus>),
    Asked(Option<Control>),
}

/// One item's task: runs the process until asked to stop.
async fn supervise(
    spec: Arc<ExecSpec>,
    item: ItemId,
    mut slot: Slot,
    mut requests: mpsc::UnboundedReceiver<Control>,
    notices: mpsc::UnboundedSender<Notice>,
    previous: Option<JoinHandle<()>>,
) {
    if let Some(previous) = previous {
        let _ = previous.await;
    }
    let notify = |notice| {
        let _ = notices.send(notice);
    };
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        let ended = match spawn(&spec, &item, slot) {
            Ok(mut child) => {
                notify(Notice::Started {
                    item: item.clone(),
                    pid: child.id().unwrap_or(0),
                });
                watch_ready(&spec, &mut child, &item, &notices);
                let wake = tokio::select! {
                    status = child.wait() => Wake::Exited(status),
                    request = requests.recv() => Wake::Asked(request),
                };
                match wake {
                    Wake::Exited(status) => describe(status),
                    Wake::Asked(Some(Control::Restart(new_slot))) => {
                        terminate(&mut child, spec.grace).await;
                        slot = new_slot;
                        continue;
                    }
                    Wake::Asked(Some(Control::Stop) | None) => {
                        terminate(&mut child, spec.grace).await;
                        notify(Notice::Stopped { item });
                        return;
                    }
                }
            }
            Err(e) => format!("cannot start: {e}"),
        };
        if started.elapsed() >= STABLE_AFTER {
            backoff = FIRST_BACKOFF;
        }
        notify(Notice::Exited {
            item: item.clone(),
            status: ended,
            restart_in: backoff,
        });
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            request = requests.recv() => match request {
                Some(Control::Restart(new_slot)) => slot = new_slot,
                Some(Control::Stop) | None => {
                    notify(Notice::Stopped { item });
                    return;
                }
            },
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Starts `sh -c COMMAND` for the item in a process group of its own.
fn spawn(spec: &ExecSpec, item: &ItemId, slot: Slot) -> std::io::Result<Child> {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(&spec.command)
        .env("APPORTION_ITEM", item.as_str())
        .env("APPORTION_SLOT", slot.0.to_string())
        .env(
            "APPORTION_PRIMARY",
            if slot.is_primary() { "1" } else { "0" },
        )
        .env("APPORTION_MEMBER", &spec.member)
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if spec.ready_line.is_some() {
        command.stdout(Stdio::piped());
    }
    #[cfg(target_os = "linux")]
    // SAFETY: the closure runs in the child between fork and exec; prctl(2) is
    // async-signal-safe and the closure touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn()
}

/// Reports the process ready: at once, or (with `--ready-line`) when it prints that line.
/// Its stdout is passed on line by line meanwhile.
fn watch_ready(
    spec: &ExecSpec,
    child: &mut Child,
    item: &ItemId,
    notices: &mpsc::UnboundedSender<Notice>,
) {
    let ready = || Notice::Ready { item: item.clone() };
    let (Some(wanted), Some(stdout)) = (spec.ready_line.clone(), child.stdout.take()) else {
        let _ = notices.send(ready());
        return;
    };
    let notices = notices.clone();
    let notice = ready();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut notice = Some(notice);
        while let Ok(Some(line)) = lines.next_line().await {
            println!("{line}");
            if line == wanted {
                if let Some(notice) = notice.take() {
                    let _ = notices.send(notice);
                }
            }
        }
    });
}

/// Stops the process: SIGTERM to its group, SIGKILL once `grace` has passed.
async fn terminate(child: &mut Child, grace: Duration) {
    let Some(pid) = child.id() else {
        return; // already reaped
    };
    signal_group(pid, libc::SIGTERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        signal_group(pid, libc::SIGKILL);
        let _ = child.wait().await;
    }
}

/// Sends `signal` to the process group led by `pid`.
fn signal_group(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) only takes integers; a group that is already gone yields ESRCH,
    // which is what we want to ignore.
    unsafe {
        libc::kill(-pid, signal);
    }
}

/// How a process ended, in words.
fn describe(status: std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(e) => format!("cannot wait for it: {e}"),
    }
}
