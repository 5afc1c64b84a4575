//! `--exec`: one process per held item, run with `sh -c` and supervised.
//!
//! Each item has a task that starts the process (with `APPORTION_ITEM`, `APPORTION_SLOT`,
//! `APPORTION_PRIMARY`, `APPORTION_MEMBER` and `APPORTION_ROLE_FILE` in its environment),
//! tells when it is ready (once it has stayed up `--ready-after`, or when it prints the
//! `--ready-line` on stdout), restarts it with a growing back-off when it dies, gives up
//! after too many deaths in a row (a process that keeps crashing must not keep its item),
//! and stops it on request: SIGTERM to its process group, SIGKILL after the grace period.
//! A change of the item's role does not restart the process, since a primary moving would
//! then be an outage: the role file is rewritten and the process is sent a signal to
//! re-read it (or, with `--restart-on-role-change`, it is restarted as it used to be).
//! The process runs in its own group so that a stop reaches what the shell started too,
//! and (on Linux) is sent SIGTERM if the member itself dies: a process left serving after
//! its member was killed would still serve once the item has been given to another member.
//! The tasks report to the member's loop through [`Notice`]s; they never touch the store.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use apportion::core::keys::{ItemId, Slot};
use apportion::store::Backoff;
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

/// What to run and how; shared by the item tasks, so the role directory lives until the
/// last of them has ended.
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
    /// What to tell a running process when its role changes.
    pub on_role_change: OnRoleChange,
    /// Without a ready line, how long a process must stay up to be ready: one that dies at
    /// once must not be reported ready in between.
    pub ready_after: Duration,
    /// How many restarts within `restart_window` a process gets before its item is given up.
    pub max_restarts: u32,
    /// The window `max_restarts` counts in.
    pub restart_window: Duration,
    /// Where the role files live.
    pub role_dir: RoleDir,
}

/// How a running process learns that its item's role (slot, primary or not) changed.
#[derive(Clone, Copy, Debug)]
pub enum OnRoleChange {
    /// Rewrite the role file and send this signal (or none); the process keeps running.
    Signal(RoleSignal),
    /// Stop it and start it again with the new environment (an outage while it starts).
    Restart,
}

/// The signal that tells a process its role file changed (`--primary-signal`): a name like
/// `SIGHUP` or `USR1` (with or without `SIG`, any case), or `none`, parsed here so that a
/// typo is refused at start rather than at the first role change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleSignal(Option<libc::c_int>);

/// The signals a service may reasonably handle as "re-read your configuration".
const SIGNALS: [(&str, libc::c_int); 7] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("TERM", libc::SIGTERM),
    ("WINCH", libc::SIGWINCH),
];

impl FromStr for RoleSignal {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let upper = text.to_ascii_uppercase();
        if upper == "NONE" {
            return Ok(RoleSignal(None));
        }
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        SIGNALS
            .iter()
            .find(|(known, _)| *known == name)
            .map(|&(_, signal)| RoleSignal(Some(signal)))
            .ok_or_else(|| {
                let names: Vec<String> = SIGNALS.iter().map(|(n, _)| format!("SIG{n}")).collect();
                format!("expected none or one of {}", names.join(", "))
            })
    }
}

/// The directory of the role files, one per item, private to this member and removed
/// when the member is done with it (dropped).
#[derive(Debug)]
pub struct RoleDir(PathBuf);

impl RoleDir {
    /// Creates a fresh directory (mode 0700) under the system's temporary directory, named
    /// after the member and this process so that two members on a host never share one.
    pub fn create(member: &str) -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let path = std::env::temp_dir().join(format!("apportion-{member}-{}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(RoleDir(path))
    }

    /// The role file of `item` (item ids cannot be path steps or hold `/`).
    fn file(&self, item: &ItemId) -> PathBuf {
        self.0.join(item.as_str())
    }
}

impl Drop for RoleDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the role file: `primary 0` or `replica SLOT`, replacing the old one atomically
/// (a temporary file renamed over it) so the process never reads half a file. The
/// temporary name holds `#`, which no item id does, so it cannot be another item's file.
fn write_role(path: &Path, slot: Slot) -> std::io::Result<()> {
    let role = if slot.is_primary() {
        "primary"
    } else {
        "replica"
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push("#tmp");
    std::fs::write(&temporary, format!("{role} {}\n", slot.0))?;
    std::fs::rename(&temporary, path)
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
    /// The process ended (or could not start) once too often within the restart window;
    /// it is not restarted, and the task waits to be stopped.
    GaveUp {
        /// The item.
        item: ItemId,
        /// How it ended the last time.
        status: String,
        /// How often it ended within the window.
        crashes: usize,
        /// The window.
        window: Duration,
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
    /// The item's slot changed to this one.
    Role(Slot),
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

    /// Tells the item's process its new slot, if it runs (see [`OnRoleChange`]).
    pub fn set_slot(&mut self, item: &ItemId, slot: Slot) {
        if let Some(running) = self.running.get(item) {
            let _ = running.control.send(Control::Role(slot));
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

/// One item's task: runs the process until asked to stop, or until it has died too often.
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
    let role_file = spec.role_dir.file(&item);
    let stopped = |item: ItemId| {
        let _ = std::fs::remove_file(&role_file);
        notify(Notice::Stopped { item });
    };
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    let mut crashes: VecDeque<Instant> = VecDeque::new();
    loop {
        let started = Instant::now();
        let spawned = match write_role(&role_file, slot) {
            Ok(()) => spawn(&spec, &item, slot).await,
            Err(e) => Err(e),
        };
        let ended = match spawned {
            Ok(mut child) => {
                let pid = child.id();
                notify(Notice::Started {
                    item: item.clone(),
                    pid: pid.unwrap_or(0),
                });
                let mut ready_at = watch_ready(&spec, &mut child, &item, &notices);
                // The role signal sent to this process, if any: dying of it is not a crash.
                let mut told = None;
                let asked = loop {
                    let ready_timer = tokio::time::sleep_until(ready_at.unwrap_or(started));
                    tokio::select! {
                        status = child.wait() => {
                            if died_of(&status, told) {
                                break Ok(true);
                            }
                            break Err(describe(status));
                        }
                        () = ready_timer, if ready_at.is_some() => {
                            ready_at = None;
                            notify(Notice::Ready { item: item.clone() });
                        }
                        request = requests.recv() => match request {
                            Some(Control::Role(new_slot)) => {
                                slot = new_slot;
                                match spec.on_role_change {
                                    OnRoleChange::Restart => break Ok(true),
                                    OnRoleChange::Signal(signal) => {
                                        told = tell_role(&role_file, slot, pid, signal, &item)
                                            .or(told);
                                    }
                                }
                            }
                            Some(Control::Stop) | None => break Ok(false),
                        },
                    }
                };
                match asked {
                    Err(status) => status,
                    Ok(restart) => {
                        terminate(&mut child, spec.grace).await;
                        if restart {
                            continue;
                        }
                        stopped(item);
                        return;
                    }
                }
            }
            Err(e) => format!("cannot start: {e}"),
        };
        let now = Instant::now();
        crashes.push_back(now);
        while crashes
            .front()
            .is_some_and(|&at| now.duration_since(at) > spec.restart_window)
        {
            crashes.pop_front();
        }
        if crashes.len() > spec.max_restarts as usize {
            notify(Notice::GaveUp {
                item: item.clone(),
                status: ended,
                crashes: crashes.len(),
                window: spec.restart_window,
            });
            // Nothing runs; the member stops this task once it has let go of the item.
            while let Some(Control::Role(_)) = requests.recv().await {}
            stopped(item);
            return;
        }
        if started.elapsed() >= STABLE_AFTER {
            backoff.reset();
        }
        let pause = backoff.next_delay();
        notify(Notice::Exited {
            item: item.clone(),
            status: ended,
            restart_in: pause,
        });
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            request = requests.recv() => match request {
                Some(Control::Role(new_slot)) => slot = new_slot,
                Some(Control::Stop) | None => {
                    stopped(item);
                    return;
                }
            },
        }
    }
}

/// Whether the process died of the role signal it was sent: a service that does not
/// handle the signal is then restarted at once with its new environment, as without it,
/// rather than counted as a crash and restarted after the back-off.
fn died_of(status: &std::io::Result<ExitStatus>, told: Option<libc::c_int>) -> bool {
    use std::os::unix::process::ExitStatusExt;
    matches!((status, told), (Ok(status), Some(_)) if status.signal() == told)
}

/// Tells a running process its new role: the role file first, so that the signal finds
/// the new value, then the signal, to the process `sh` runs (not its group: helpers the
/// service started are its own business, and may not handle the signal). Returns the
/// signal sent, if any.
fn tell_role(
    role_file: &Path,
    slot: Slot,
    pid: Option<u32>,
    signal: RoleSignal,
    item: &ItemId,
) -> Option<libc::c_int> {
    if let Err(e) = write_role(role_file, slot) {
        tracing::warn!(%item, error = %e, file = %role_file.display(), "cannot write the role file");
    }
    let (Some(pid), RoleSignal(Some(signal))) = (pid, signal) else {
        return None;
    };
    let pid = libc::pid_t::try_from(pid).ok()?;
    // SAFETY: kill(2) only takes integers; a process already gone yields ESRCH, and its
    // exit is seen by the task's wait.
    unsafe {
        libc::kill(pid, signal);
    }
    Some(signal)
}

/// Starts `sh -c COMMAND` for the item in a process group of its own.
async fn spawn(spec: &ExecSpec, item: &ItemId, slot: Slot) -> std::io::Result<Child> {
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
        .env("APPORTION_ROLE_FILE", spec.role_dir.file(item))
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if spec.ready_line.is_some() {
        command.stdout(Stdio::piped());
    }
    crate::tied::spawn(command, libc::SIGTERM).await
}

/// With `--ready-line`, reports the process ready when it prints that line, passing its
/// stdout on line by line meanwhile, and returns `None`; otherwise returns when it will be
/// ready (`--ready-after` from now), for the task to report if it is still up then.
fn watch_ready(
    spec: &ExecSpec,
    child: &mut Child,
    item: &ItemId,
    notices: &mpsc::UnboundedSender<Notice>,
) -> Option<Instant> {
    let (Some(wanted), Some(stdout)) = (spec.ready_line.clone(), child.stdout.take()) else {
        return Some(Instant::now() + spec.ready_after);
    };
    let notices = notices.clone();
    let notice = Notice::Ready { item: item.clone() };
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut notice = Some(notice);
        while let Ok(Some(line)) = lines.next_line().await {
            super::output::print_line(&line);
            if line == wanted {
                if let Some(notice) = notice.take() {
                    let _ = notices.send(notice);
                }
            }
        }
    });
    None
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_signal_is_a_name_with_or_without_sig_in_any_case_or_none() {
        assert_eq!("SIGHUP".parse(), Ok(RoleSignal(Some(libc::SIGHUP))));
        assert_eq!("usr1".parse(), Ok(RoleSignal(Some(libc::SIGUSR1))));
        assert_eq!("None".parse(), Ok(RoleSignal(None)));
        let refused = "SIGKILL".parse::<RoleSignal>().unwrap_err();
        assert!(refused.contains("SIGHUP"), "{refused}");
    }

    #[test]
    fn the_role_file_says_the_role_and_the_slot() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("orders");
        write_role(&file, Slot(0)).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "primary 0\n");
        write_role(&file, Slot(2)).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "replica 2\n");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }
}
