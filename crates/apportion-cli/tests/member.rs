//! `apportion member` as a user runs it: the built binary against a real etcd, items put
//! straight into the store, and a small shell script as the service, which writes a line to
//! a file each time it starts or stops.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apportion::store::{EtcdStore, KeyRange, Store};
use apportion_testkit::{free_port, TestEtcd};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const PREFIX: &str = "/svc";
/// The service: logs its start and its stop (on SIGTERM) to $LOG.
// The trap is set before the start is logged: a test that stops the service as soon as it
// sees the start must find the stop logged too.
const SERVICE: &str = r#"trap 'echo "stop $APPORTION_ITEM" >> "$LOG"; exit 0' TERM
echo "start $APPORTION_ITEM primary=$APPORTION_PRIMARY" >> "$LOG"
while :; do sleep 0.1; done
"#;

/// A running `apportion member` and the lines it printed so far, on stdout and on stderr
/// (passed on to the test's stderr too).
struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }

    /// Waits for the member to exit, for at most `limit`; its exit code.
    async fn exit_code(&mut self, limit: Duration) -> Option<i32> {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .expect("the member did not exit in time")
            .unwrap()
            .code()
    }
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_apportion"))
}

/// Starts a member with `args` after the common ones; `log` is the service's log file.
fn start_member(etcd: &TestEtcd, log: &Path, args: &[&str]) -> Running {
    start_member_at(&etcd.endpoint(), log, args)
}

/// Starts a member of the etcd at `url`, which may not run yet.
fn start_member_at(url: &str, log: &Path, args: &[&str]) -> Running {
    let mut child = binary()
        .args(["member", "--etcd", url, "--prefix", PREFIX])
        .args(["--lease-ttl", "2"])
        .args(args)
        .env("LOG", log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let sink = lines.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = stdout.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    let errors = Arc::new(Mutex::new(Vec::new()));
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let sink = errors.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            eprintln!("{line}");
            sink.lock().unwrap().push(line);
        }
    });
    Running {
        child,
        lines,
        errors,
    }
}

async fn put_item(store: &EtcdStore, id: &str) {
    let value = r#"{"replication": 1}"#;
    store
        .put(format!("{PREFIX}/items/{id}"), value, None)
        .await
        .unwrap();
}

fn read(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits until `check` holds, for at most `limit`; panics with `what` otherwise.
async fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether every assignment in the store is marked ready.
async fn all_ready(store: &EtcdStore, expected: usize) -> bool {
    let assigned = store
        .range(KeyRange::prefix(format!("{PREFIX}/assign/")))
        .await
        .unwrap();
    assigned.kvs.len() == expected
        && assigned
            .kvs
            .iter()
            .all(|kv| String::from_utf8_lossy(&kv.value).contains(r#""ready":true"#))
}

fn service_script(dir: &Path) -> PathBuf {
    let script = dir.join("service.sh");
    std::fs::write(&script, SERVICE).unwrap();
    script
}

/// Makes a member that cannot drain (nowhere for its items to go) leave: the first SIGTERM
/// starts the drain, the second leaves at once, stopping its processes.
async fn leave_at_once(member: &mut Running) {
    sigterm(&member.child);
    eventually("the drain to start", Duration::from_secs(10), || {
        member.lines().iter().any(|l| l.contains("draining"))
    })
    .await;
    sigterm(&member.child);
    let status = tokio::time::timeout(Duration::from_secs(10), member.child.wait())
        .await
        .expect("the member did not leave on the second signal")
        .unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "leaving before the drain ends is a failure"
    );
}

fn sigterm(child: &Child) {
    signal(child, libc::SIGTERM);
}

fn signal(child: &Child, signal: libc::c_int) {
    let pid = child.id().expect("the member is running") as libc::pid_t;
    // SAFETY: kill(2) with a pid and a signal number.
    unsafe { libc::kill(pid, signal) };
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_a_process_per_item_stops_it_on_revoke_and_drains_on_sigterm() {
    let etcd = TestEtcd::start();
    let store = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("service.log");
    let exec = format!("sh {}", service_script(dir.path()).display());
    put_item(&store, "a").await;
    put_item(&store, "b").await;

    let mut one = start_member(
        &etcd,
        &log,
        &["--zone", "z1", "--suffix", "one", "--exec", &exec],
    );
    let wait = Duration::from_secs(15);
    eventually("both processes to start", wait, || {
        let lines = read(&log);
        lines.contains(&"start a primary=1".into()) && lines.contains(&"start b primary=1".into())
    })
    .await;
    let start = Instant::now();
    while !all_ready(&store, 2).await {
        assert!(start.elapsed() < wait, "assignments never marked ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Deleting an item revokes it: its process stops, the other one keeps running.
    store
        .delete(KeyRange::key(format!("{PREFIX}/items/a")))
        .await
        .unwrap();
    eventually("a's process to stop", wait, || {
        read(&log).contains(&"stop a".into())
    })
    .await;
    assert!(!read(&log).contains(&"stop b".into()));

    // A second member (no --exec) gives b somewhere to go; SIGTERM drains the first.
    let other = dir.path().join("other.log");
    let mut two = start_member(&etcd, &other, &["--zone", "z2", "--suffix", "two"]);
    eventually("the second member to join", wait, || {
        two.lines().iter().any(|l| l.starts_with("joined "))
    })
    .await;
    sigterm(&one.child);
    let status = tokio::time::timeout(wait, one.child.wait())
        .await
        .expect("the member did not exit after draining")
        .unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(read(&log).contains(&"stop b".into()));
    let printed = one.lines();
    for expected in ["revoked a", "revoked b", "drained: holds nothing any more"] {
        assert!(
            printed.iter().any(|l| l == expected),
            "{expected:?} not in {printed:?}"
        );
    }
    assert_eq!(printed.last().map(String::as_str), Some("left the cluster"));
    eventually("b to move to the second member", wait, || {
        two.lines().iter().any(|l| l.starts_with("assigned b "))
    })
    .await;
    two.child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_is_ready_when_it_prints_the_ready_line_and_is_restarted_when_it_dies() {
    let etcd = TestEtcd::start();
    let store = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("service.log");
    put_item(&store, "a").await;
    // Ready after its first start has logged twice; the first run dies at once.
    let exec = r#"echo run >> "$LOG"; [ "$(wc -l < "$LOG")" -ge 2 ] || exit 3; echo up; sleep 30"#;
    let mut member = start_member(
        &etcd,
        &log,
        &[
            "--zone",
            "z",
            "--suffix",
            "s",
            "--json",
            "--ready-line",
            "up",
            "--exec",
            exec,
        ],
    );
    let wait = Duration::from_secs(15);
    let start = Instant::now();
    while !all_ready(&store, 1).await {
        assert!(start.elapsed() < wait, "assignment never marked ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(read(&log).len(), 2, "one failed start, then a good one");
    // The member prints `ready` once its write returns, which may be just after the store
    // shows it: wait for the line.
    let events_of = |printed: &[String]| -> Vec<String> {
        printed
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["event"].as_str().map(str::to_string))
            .collect()
    };
    let start = Instant::now();
    while !events_of(&member.lines()).iter().any(|e| e == "ready") && start.elapsed() < wait {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let printed = member.lines();
    let events = events_of(&printed);
    let exited = events.iter().position(|e| e == "process_exited");
    let ready = events.iter().position(|e| e == "ready");
    assert!(
        exited.is_some() && exited < ready,
        "expected an exit before ready: {events:?}"
    );
    assert!(
        printed.contains(&"up".to_string()),
        "the process's stdout is passed on"
    );
    // Every JSON line carries its time, RFC 3339 in UTC to the second.
    for line in &printed {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let time = value["time"].as_str().unwrap_or_default();
        let shape = time.len() == 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z');
        assert!(shape, "no RFC 3339 time in {line}");
    }
    leave_at_once(&mut member).await;
    assert!(member.lines().iter().any(|l| l.contains("process_stopped")));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_processes_of_a_killed_member_are_told_to_stop() {
    let etcd = TestEtcd::start();
    let store = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("service.log");
    let exec = format!("exec sh {}", service_script(dir.path()).display());
    put_item(&store, "a").await;
    let mut member = start_member(&etcd, &log, &["--zone", "z", "--exec", &exec]);
    let wait = Duration::from_secs(15);
    eventually("the process to start", wait, || {
        read(&log).contains(&"start a primary=1".into())
    })
    .await;
    member.child.kill().await.unwrap();
    eventually("the process to stop", wait, || {
        read(&log).contains(&"stop a".into())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_id_held_by_a_live_process_is_refused() {
    let etcd = TestEtcd::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("unused.log");
    let mut first = start_member(&etcd, &log, &["--zone", "z", "--suffix", "same"]);
    let wait = Duration::from_secs(15);
    eventually("the first member to join", wait, || {
        first.lines().iter().any(|l| l.starts_with("joined "))
    })
    .await;
    let second = binary()
        .args(["member", "--etcd", &etcd.endpoint(), "--prefix", PREFIX])
        .args(["--lease-ttl", "2", "--zone", "z", "--suffix", "same"])
        .output();
    let output = tokio::time::timeout(wait, second).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    // Before it: the warning that a 2 s TTL is below the lowest safe one.
    let last = stderr.trim().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: member z#same is held by another process")
            && last.contains("that process is alive"),
        "{stderr}"
    );
    first.child.kill().await.unwrap();
}

#[tokio::test]
async fn a_bad_zone_is_refused_before_connecting() {
    let output = binary()
        .args([
            "member",
            "--etcd",
            "http://127.0.0.1:1",
            "--zone",
            "eu west",
        ])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("zone has forbidden character ' ' at byte 2"),
        "{stderr}"
    );
}

/// A member told to wait for etcd only so long says once what it waits for, then gives up
/// in one error line and exits 1.
#[tokio::test]
async fn an_etcd_that_stays_unreachable_is_given_up_on_with_exit_1() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let output = binary()
        .args([
            "member",
            "--etcd",
            &url,
            "--zone",
            "z",
            "--wait-for-etcd",
            "1s",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("waiting for etcd at {url} ("))
            && lines[0].ends_with("); giving up in 1s"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(&format!("error: cannot reach etcd at {url} (tried ")),
        "{stderr}"
    );
}

/// A member started before etcd (a host booting) waits for it and joins once it is up.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_started_before_etcd_waits_for_it_and_joins() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("unused.log");
    let mut member = start_member_at(
        &url,
        &log,
        &["--zone", "z", "--suffix", "early", "--wait-for-etcd", "10s"],
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let etcd = TestEtcd::start_on(port);
    eventually("the member to join", Duration::from_secs(15), || {
        member.lines().iter().any(|l| l.starts_with("joined "))
    })
    .await;
    let errors = member.errors();
    assert!(
        errors[0].starts_with(&format!("waiting for etcd at {url} ("))
            && errors[0].ends_with("); giving up in 10s"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with(&format!("reached etcd at {url} after ")),
        "{errors:?}"
    );
    // Nothing to move: the drain is over at once.
    sigterm(&member.child);
    assert_eq!(member.exit_code(Duration::from_secs(15)).await, Some(0));
    drop(etcd);
}

/// A stop signal that comes while the member is still starting (here: waiting for etcd)
/// is a clean stop at once, not death by the signal nor the rest of the wait.
#[tokio::test]
async fn a_stop_signal_while_waiting_for_etcd_is_a_clean_exit() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let child = binary()
        .args(["member", "--etcd", &url, "--zone", "z"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let signalled = Instant::now();
    sigterm(&child);
    let output = child.wait_with_output().await.unwrap();
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "{:?}",
        signalled.elapsed()
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("giving up in 60s"),
        "the default wait: {stderr}"
    );
    assert!(stderr.contains("SIGTERM before joining"), "{stderr}");
}

/// The last member cannot hand its items to anyone: its drain gives up after the drain
/// timeout, it leaves anyway, says what it dropped, and exits 1.
#[tokio::test(flavor = "multi_thread")]
async fn a_drain_nobody_can_take_over_ends_at_the_drain_timeout() {
    let etcd = TestEtcd::start();
    let store = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("unused.log");
    put_item(&store, "a").await;
    put_item(&store, "b").await;
    let mut member = start_member(
        &etcd,
        &log,
        &["--zone", "z", "--suffix", "last", "--drain-timeout", "2s"],
    );
    let wait = Duration::from_secs(15);
    eventually("both items to be assigned", wait, || {
        let lines = member.lines();
        ["assigned a ", "assigned b "]
            .iter()
            .all(|p| lines.iter().any(|l| l.starts_with(p)))
    })
    .await;
    let signalled = Instant::now();
    sigterm(&member.child);
    assert_eq!(member.exit_code(wait).await, Some(1));
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "{took:?}"
    );
    let printed = member.lines();
    assert!(
        printed
            .iter()
            .any(|l| l.starts_with("SIGTERM: draining") && l.contains("leaving anyway after 2s")),
        "{printed:?}"
    );
    assert_eq!(printed.last().map(String::as_str), Some("left the cluster"));
    let errors = member.errors();
    assert_eq!(
        errors.last().map(String::as_str),
        Some("error: the drain did not finish within 2s: left holding 2 items, dropped without another copy ready"),
        "{errors:?}"
    );
    let members = store
        .range(KeyRange::prefix(format!("{PREFIX}/members/")))
        .await
        .unwrap();
    assert!(members.kvs.is_empty(), "the member left");
}

/// A member id that is not one is refused in one line, escaped, before connecting.
#[tokio::test]
async fn a_bad_member_id_is_one_escaped_line_and_exit_2() {
    for (suffix, expected) in [
        ("a\nb", r"suffix has forbidden character '\n' at byte 3"),
        (
            "..",
            "suffix `..` at byte 2 is not allowed (it reads as a path step)",
        ),
    ] {
        let output = binary()
            .args(["member", "--etcd", "http://127.0.0.1:1", "--zone", "z"])
            .args(["--suffix", suffix])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: invalid member id: key `z#")
                && stderr.trim_end().ends_with(expected),
            "{stderr}"
        );
    }
}

/// A member stopped (SIGSTOP) for longer than its lease lives fences itself, is told its
/// lease is gone once it runs again, and joins again under a new lease: it serves again
/// without a supervisor.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_paused_past_its_lease_joins_again() {
    let etcd = TestEtcd::start();
    let store = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("unused.log");
    put_item(&store, "a").await;
    let mut member = start_member(&etcd, &log, &["--zone", "z", "--suffix", "p"]);
    let wait = Duration::from_secs(15);
    eventually("the item to be assigned", wait, || {
        member.lines().iter().any(|l| l.starts_with("assigned a"))
    })
    .await;
    signal(&member.child, libc::SIGSTOP);
    let key = format!("{PREFIX}/members/z#p");
    let gone = Instant::now();
    while !store
        .range(KeyRange::key(key.as_str()))
        .await
        .unwrap()
        .kvs
        .is_empty()
    {
        assert!(
            gone.elapsed() < wait,
            "the paused member's lease never ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    signal(&member.child, libc::SIGCONT);
    // Joined again, given the item, and marked it ready through the new session.
    eventually(
        "the member to join again, be assigned and mark it ready",
        wait,
        || {
            let lines = member.lines();
            let rejoined = lines
                .iter()
                .position(|l| l.contains("joined again under lease"));
            rejoined.is_some_and(|at| {
                let after = &lines[at..];
                after.iter().any(|l| l.starts_with("assigned a"))
                    && after.iter().any(|l| l == "ready: a")
            })
        },
    )
    .await;
    let copies = store
        .range(KeyRange::prefix(format!("{PREFIX}/assign/a#")))
        .await
        .unwrap()
        .kvs;
    let ready = copies.iter().any(|kv| {
        let status: serde_json::Value = serde_json::from_slice(&kv.value).unwrap();
        status["ready"] == true
    });
    assert!(ready, "{copies:?}");
    let printed = member.lines();
    assert!(
        printed.iter().any(|l| l.starts_with("fenced")),
        "{printed:?}"
    );
    assert!(!store
        .range(KeyRange::key(key))
        .await
        .unwrap()
        .kvs
        .is_empty());
    member.child.kill().await.unwrap();
}

/// etcd extends every lease when it restarts (or elects a new leader), so the key of a
/// member killed just before lives on past its TTL; a new process under the same name
/// waits it out instead of calling it a live duplicate.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_under_the_same_name_waits_out_a_lease_extended_by_etcd() {
    let mut etcd = TestEtcd::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("unused.log");
    let mut first = start_member(&etcd, &log, &["--zone", "z", "--suffix", "same"]);
    let wait = Duration::from_secs(30);
    eventually("the first member to join", wait, || {
        first.lines().iter().any(|l| l.starts_with("joined "))
    })
    .await;
    first.child.kill().await.unwrap();
    etcd.restart();
    let mut second = start_member(&etcd, &log, &["--zone", "z", "--suffix", "same"]);
    eventually(
        "the second process to join under the same name",
        wait,
        || second.lines().iter().any(|l| l.starts_with("joined ")),
    )
    .await;
    second.child.kill().await.unwrap();
}

/// With one node of a three-node etcd down, whichever it is, members start and the admin
/// commands work, given every endpoint.
#[tokio::test(flavor = "multi_thread")]
async fn every_command_works_with_one_of_three_etcd_nodes_down() {
    let mut nodes = TestEtcd::start_cluster(3);
    let endpoints: Vec<String> = nodes.iter().map(TestEtcd::endpoint).collect();
    let all = endpoints.join(",");
    for (down, node) in nodes.iter_mut().enumerate() {
        node.kill();
        let run = |args: &[&str]| {
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_apportion"))
                .args(args)
                .args(["--etcd", &all, "--prefix", PREFIX])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            assert_eq!(
                output.status.code(),
                Some(0),
                "{args:?} with node {down} down: {stderr}"
            );
        };
        let id = format!("item-{down}");
        // Parked (replication 0): the lone member must be able to drain.
        run(&["items", "put", &id, "--replication", "0"]);
        run(&["items", "list"]);
        run(&["status"]);
        let mut member = binary()
            .args(["member", "--etcd", &all, "--prefix", PREFIX])
            .args(["--zone", "z", "--suffix", &format!("n{down}")])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(member.stdout.take().unwrap()).lines();
        let joined = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
            .await
            .expect("the member did not join")
            .unwrap()
            .unwrap_or_default();
        assert!(
            joined.starts_with("joined "),
            "with node {down} down: {joined}"
        );
        run(&["drain", &format!("z#n{down}"), "--wait"]);
        let status = tokio::time::timeout(Duration::from_secs(20), member.wait())
            .await
            .expect("the drained member did not exit")
            .unwrap();
        assert!(status.success(), "with node {down} down: {status}");
        node.restart();
    }
}

/// `GET path` on the metrics endpoint at `port`: the status line and the body.
async fn http_get(port: u16, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_have_help_and_the_member_as_labels_and_other_paths_are_404() {
    let etcd = TestEtcd::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let args = ["--zone", "z", "--suffix", "m", "--metrics-addr", &addr];
    let member = start_member(&etcd, &dir.path().join("log"), &args);
    eventually("the member to join", Duration::from_secs(20), || {
        member.lines().iter().any(|l| l.starts_with("joined"))
    })
    .await;
    // The leader's gauge is set on its first round, just after joining.
    let start = Instant::now();
    let page = loop {
        let (status, page) = http_get(port, "/metrics").await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        if page.contains("apportion_leader{") {
            break page;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        page.contains("# HELP apportion_leader 1 while this member leads"),
        "{page}"
    );
    assert!(page.contains("# HELP apportion_rounds_total "), "{page}");
    assert!(
        page.contains(r#"apportion_leader{member="z#m",zone="z"} 1"#),
        "{page}"
    );

    let (status, body) = http_get(port, "/foo").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    assert!(body.contains("/metrics"), "{body}");
    let (status, _) = http_get(port, "/metrics?x=1").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
}

/// The service for role changes: logs its start and every SIGHUP with its pid and what its
/// role file says then.
const ROLE_SERVICE: &str = r#"role() { echo "$1 $APPORTION_ITEM $$ $(cat "$APPORTION_ROLE_FILE")" >> "$LOG"; }
trap 'role hup' HUP
trap 'echo "stop $APPORTION_ITEM" >> "$LOG"; exit 0' TERM
role start
while :; do sleep 0.1; done
"#;

/// A service that does not know the role signal: it dies of SIGHUP.
const UNAWARE_SERVICE: &str = r#"echo "start $APPORTION_ITEM $$ $(cat "$APPORTION_ROLE_FILE")" >> "$LOG"
while :; do sleep 0.1; done
"#;

/// Moves the primary of `a` (two copies) from a first member to a second, both running
/// `service`: the second starts as the replica, then the first is killed. Returns the
/// second's service log and printed lines.
async fn move_the_primary(service: &str, extra: &[&str]) -> (Vec<String>, Vec<String>) {
    let etcd = TestEtcd::start();
    let store = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("role.sh");
    std::fs::write(&script, service).unwrap();
    let exec = format!("exec sh {}", script.display());
    store
        .put(format!("{PREFIX}/items/a"), r#"{"replication": 2}"#, None)
        .await
        .unwrap();
    let wait = Duration::from_secs(20);
    let first_log = dir.path().join("first.log");
    let mut first = start_member(
        &etcd,
        &first_log,
        &["--zone", "z1", "--suffix", "one", "--exec", &exec],
    );
    eventually("the first member's process", wait, || {
        read(&first_log).iter().any(|l| l.starts_with("start a "))
    })
    .await;
    let second_log = dir.path().join("second.log");
    let mut args = vec!["--zone", "z2", "--suffix", "two", "--exec", &exec];
    args.extend_from_slice(extra);
    let mut second = start_member(&etcd, &second_log, &args);
    eventually("the replica to be ready", wait, || {
        second.lines().iter().any(|l| l == "ready: a")
    })
    .await;
    first.child.kill().await.unwrap();
    eventually("the replica to become primary", wait, || {
        second.lines().iter().any(|l| l == "primary of a now")
    })
    .await;
    // The process is told (or restarted) right after the line.
    eventually("the process to learn its new role", wait, || {
        read(&second_log).iter().any(|l| l.ends_with(" primary 0"))
    })
    .await;
    leave_at_once(&mut second).await;
    (read(&second_log), second.lines())
}

/// The pid in a line of [`ROLE_SERVICE`]'s log.
fn pid_of(line: &str) -> &str {
    line.split(' ').nth(2).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_primary_keeps_its_process_which_is_signalled_and_reads_its_role_file() {
    let (log, _) = move_the_primary(ROLE_SERVICE, &[]).await;
    let start = log
        .iter()
        .find(|l| l.starts_with("start a "))
        .expect("started");
    assert!(start.ends_with(" replica 1"), "{log:?}");
    let hup = log
        .iter()
        .find(|l| l.starts_with("hup a "))
        .unwrap_or_else(|| panic!("no SIGHUP in {log:?}"));
    assert!(hup.ends_with(" primary 0"), "{log:?}");
    assert_eq!(pid_of(start), pid_of(hup), "{log:?}");
    let starts = log.iter().filter(|l| l.starts_with("start ")).count();
    assert_eq!(starts, 1, "never restarted: {log:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_primary_is_restarted_with_restart_on_role_change() {
    let (log, _) = move_the_primary(ROLE_SERVICE, &["--restart-on-role-change"]).await;
    let starts: Vec<&String> = log.iter().filter(|l| l.starts_with("start a ")).collect();
    assert_eq!(starts.len(), 2, "{log:?}");
    assert!(starts[0].ends_with(" replica 1"), "{log:?}");
    assert!(starts[1].ends_with(" primary 0"), "{log:?}");
    assert_ne!(pid_of(starts[0]), pid_of(starts[1]), "{log:?}");
    assert!(log.contains(&"stop a".to_string()), "{log:?}");
    assert!(!log.iter().any(|l| l.starts_with("hup ")), "{log:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_primary_that_dies_of_the_signal_is_restarted_at_once_not_as_a_crash() {
    let (log, printed) = move_the_primary(UNAWARE_SERVICE, &[]).await;
    let starts: Vec<&String> = log.iter().filter(|l| l.starts_with("start a ")).collect();
    assert_eq!(starts.len(), 2, "{log:?}");
    assert!(starts[0].ends_with(" replica 1"), "{log:?}");
    assert!(starts[1].ends_with(" primary 0"), "{log:?}");
    assert!(
        !printed.iter().any(|l| l.starts_with("process for a ended")),
        "{printed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_that_keeps_crashing_is_never_ready_and_its_item_is_released() {
    let etcd = TestEtcd::start();
    let store = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("service.log");
    put_item(&store, "a").await;
    let mut member = start_member(
        &etcd,
        &log,
        &[
            "--zone",
            "z",
            "--suffix",
            "s",
            "--max-restarts",
            "2",
            "--restart-window",
            "30",
            "--exec",
            "exit 1",
        ],
    );
    let wait = Duration::from_secs(20);
    eventually("the member to give the item up", wait, || {
        member.lines().iter().any(|l| l == "released a")
    })
    .await;
    let printed = member.lines();
    let given_up = printed.iter().position(|l| {
        l == "giving up a: crashed 3 times in 30 s (last: exit status: 1); releasing it"
    });
    let released = printed.iter().position(|l| l == "released a");
    assert!(given_up.is_some() && given_up < released, "{printed:?}");
    let exits = printed[..given_up.unwrap()]
        .iter()
        .filter(|l| l.starts_with("process for a ended"))
        .count();
    assert_eq!(exits, 2, "restarted twice, then given up: {printed:?}");
    assert!(
        !printed.iter().any(|l| l.starts_with("ready")),
        "{printed:?}"
    );
    member.child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_is_ready_only_once_it_has_stayed_up_for_ready_after() {
    let etcd = TestEtcd::start();
    let store = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("service.log");
    put_item(&store, "a").await;
    let mut member = start_member(
        &etcd,
        &log,
        &[
            "--zone",
            "z",
            "--ready-after",
            "1",
            "--exec",
            "exec sleep 30",
        ],
    );
    let wait = Duration::from_secs(15);
    eventually("the process to start", wait, || {
        member
            .lines()
            .iter()
            .any(|l| l.starts_with("started process for a"))
    })
    .await;
    let started = Instant::now();
    eventually("the ready mark", wait, || {
        member.lines().iter().any(|l| l == "ready: a")
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "ready after {:?}",
        started.elapsed()
    );
    assert!(all_ready(&store, 1).await);
    leave_at_once(&mut member).await;
}

/// A member whose log reader goes away (its stdout a closed pipe) keeps serving: it
/// takes an item that arrives afterwards, marks it ready, lets it go when it is deleted,
/// and still drains and exits 0 on SIGTERM. (Printing used to panic in the event loop, which killed the member without a
/// drain.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_keeps_serving_after_its_stdout_is_closed() {
    let etcd = TestEtcd::start();
    let store = EtcdStore::connect(&[etcd.endpoint()]).await.unwrap();
    let mut child = binary()
        .args(["member", "--etcd", &etcd.endpoint(), "--prefix", PREFIX])
        .args(["--zone", "z1", "--lease-ttl", "2"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let joined = stdout.next_line().await.unwrap().unwrap();
    assert!(joined.starts_with("joined "), "{joined}");
    drop(stdout);

    put_item(&store, "a").await;
    let wait = Duration::from_secs(15);
    let start = Instant::now();
    while !all_ready(&store, 1).await {
        assert!(start.elapsed() < wait, "the item was never served");
        assert!(child.try_wait().unwrap().is_none(), "the member died");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // With the item gone the drain has nothing to wait for (the last member's items
    // would have nowhere to go).
    store
        .delete(KeyRange::key(format!("{PREFIX}/items/a")))
        .await
        .unwrap();
    sigterm(&child);
    let status = tokio::time::timeout(wait, child.wait())
        .await
        .expect("the member did not exit after its drain")
        .unwrap();
    assert!(status.success(), "exit status {status}");
}
