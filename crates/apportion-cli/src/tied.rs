//! Child processes tied to this process's life: they get a signal when it dies, even of
//! `kill -9`, so a killed member leaves no service running that nobody tracks (and a
//! killed benchmark no member).
//!
//! Linux delivers the "parent death" signal (`PR_SET_PDEATHSIG`) when the *thread* that
//! forked the child exits, not the process. Tokio retires threads all the time: a worker
//! that runs a `block_in_place` section (the member's state builds) hands its place to a
//! fresh thread and later ends as an idle blocking-pool thread, 10 s after its last job.
//! A child forked from such a thread got SIGTERM about ten seconds after it started, for
//! no reason its member could see. So every tied child is forked here, by one thread that
//! lives as long as the process.

use std::io;
use std::sync::{mpsc, OnceLock};

use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// One child to start: the command, the signal it gets when this process dies, the
/// runtime its `Child` belongs to, and where to send the result.
struct Request {
    command: Command,
    signal: libc::c_int,
    runtime: tokio::runtime::Handle,
    reply: oneshot::Sender<io::Result<Child>>,
}

/// Starts `command`, which gets `signal` when this process dies. Must be called from
/// within a Tokio runtime (the child is driven by it, as with [`Command::spawn`]).
pub async fn spawn(command: Command, signal: libc::c_int) -> io::Result<Child> {
    let (reply, answer) = oneshot::channel();
    let request = Request {
        command,
        signal,
        runtime: tokio::runtime::Handle::current(),
        reply,
    };
    forker()
        .send(request)
        .map_err(|_| io::Error::other("the process starter thread is gone"))?;
    answer
        .await
        .map_err(|_| io::Error::other("the process starter thread is gone"))?
}

/// The queue of the thread that forks every tied child, started on first use. The sender
/// sits in a static, so the thread (and with it the children's tie) lasts until the
/// process exits.
fn forker() -> &'static mpsc::Sender<Request> {
    static FORKER: OnceLock<mpsc::Sender<Request>> = OnceLock::new();
    FORKER.get_or_init(|| {
        let (sender, requests) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("apportion-forker".into())
            .spawn(move || {
                for request in requests {
                    let _runtime = request.runtime.enter();
                    let _ = request
                        .reply
                        .send(spawn_here(request.command, request.signal));
                }
            })
            .expect("cannot start the process starter thread");
        sender
    })
}

/// Forks `command` from the current thread with its parent-death signal set.
fn spawn_here(mut command: Command, signal: libc::c_int) -> io::Result<Child> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpid(2) cannot fail.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the closure runs in the child between fork and exec; prctl(2),
        // getppid(2) and _exit(2) are async-signal-safe, and it touches no memory of the
        // parent beyond two integers copied in.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, signal) == -1 {
                    return Err(io::Error::last_os_error());
                }
                // The parent died between the fork and the prctl: nobody will signal us.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = signal;
    command.spawn()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A child started from a thread that then ends must keep running: only the death of
    /// the process may signal it.
    #[test]
    fn a_child_outlives_the_thread_that_asked_for_it() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let handle = runtime.handle().clone();
        let mut child = std::thread::spawn(move || {
            handle.block_on(async {
                let mut command = Command::new("sleep");
                command.arg("30").kill_on_drop(true);
                spawn(command, libc::SIGTERM).await.unwrap()
            })
        })
        .join()
        .unwrap();
        runtime.block_on(async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(
                child.try_wait().unwrap().is_none(),
                "the child died with the thread that asked for it"
            );
            child.kill().await.unwrap();
        });
    }
}
