//! Running the built `apportion` binary against a test etcd, and writing to that etcd
//! directly as members and the leader would.

pub mod cluster;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use apportion_store::EtcdStore;

/// How long a test waits for a line from a running command before failing.
const LINE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a finished command printed and how it exited.
pub struct Output {
    /// The exit code.
    pub code: i32,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

/// The `apportion` command pointed at `etcd`, with no prefix from the environment.
pub fn command(etcd: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_apportion"));
    command
        .args(args)
        .env("APPORTION_ETCD", etcd)
        .env_remove("APPORTION_PREFIX");
    command
}

/// Runs `apportion ARGS` against `etcd` to completion.
pub fn apportion(etcd: &str, args: &[&str]) -> Output {
    let output = command(etcd, args)
        .output()
        .expect("cannot run the apportion binary");
    Output {
        code: output
            .status
            .code()
            .expect("apportion was killed by a signal"),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

/// Connects a store client to the test etcd, for writing keys by hand.
pub fn connect(runtime: &tokio::runtime::Runtime, etcd: &str) -> EtcdStore {
    runtime
        .block_on(EtcdStore::connect(&[etcd]))
        .expect("connect to the test etcd")
}

/// A long-running command whose stdout is read line by line as it is printed.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    /// Starts `apportion ARGS` against `etcd` with its stdout piped.
    pub fn start(etcd: &str, args: &[&str]) -> Running {
        Self::spawn(command(etcd, args))
    }

    /// Starts `command` (made by [`command`], with more set) with its stdout piped.
    pub fn spawn(mut command: Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("cannot start the apportion binary");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Running { child, lines }
    }

    /// The next line of output; fails the test if none comes in time.
    pub fn next_line(&self) -> String {
        self.lines
            .recv_timeout(LINE_TIMEOUT)
            .expect("no line from the running command in time")
    }

    /// The next line if one comes within `timeout`: for polling a command that prints
    /// nothing until something changes.
    pub fn next_line_within(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Sends SIGINT, as Ctrl-C in a terminal does.
    pub fn interrupt(&self) {
        let status = Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .status()
            .expect("cannot run kill");
        assert!(status.success());
    }

    /// Waits for the command to exit (at most [`LINE_TIMEOUT`]); returns its exit code.
    pub fn wait(mut self) -> i32 {
        let deadline = std::time::Instant::now() + LINE_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("cannot wait for apportion") {
                return status.code().expect("apportion was killed by a signal");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "apportion did not exit in time"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed test must not leave the command running; after `wait` this is a no-op.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
