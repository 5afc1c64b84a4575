//! Chaos on real etcd. Several `apportion member --exec` processes serve items through a small
//! script that logs when it starts and stops serving; the test kills members (SIGKILL), pauses
//! them past their lease (SIGSTOP of the member and its children), restarts etcd, drains a
//! member (SIGTERM), restarts every member in turn in restart mode (`--on-sigterm
//! restart`), and on a three-node etcd cluster kills the etcd leader. From the log it
//! checks that no exclusive item was ever served by two processes at once, that every
//! item ends up served by as many processes as it has replicas, and that a rolling restart
//! serves no replica on a member that did not hold it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apportion::admin::Admin;
use apportion::core::keys::{ItemId, Prefix};
use apportion::core::values::JsonItem;
use apportion::store::EtcdStore;
use apportion_testkit::TestEtcd;

const PREFIX: &str = "/chaos";
const TTL: u64 = 3;
/// How long a resumed member's children may go on serving before it fences them: the time
/// for a woken process to see its lease is gone and stop them. Everywhere else, handoffs
/// are break-before-make and must not overlap at all.
const RESUME_MARGIN: f64 = 1.5;
const EXCLUSIVE: [&str; 6] = ["x0", "x1", "x2", "x3", "x4", "x5"];
const REPLICATED: [&str; 3] = ["r0", "r1", "r2"];

/// The service: logs start and stop, with nanosecond wall-clock times, and ignores the
/// SIGHUP that tells it of a role change. The traps are set before the start is logged,
/// so every logged start has its stop logged too.
const SERVICE: &str = r#"#!/bin/sh
log() { echo "$1 $APPORTION_ITEM $APPORTION_MEMBER $$ $(date +%s%N)" >> "$CHAOS_LOG"; }
trap 'log stop; exit 0' TERM INT
trap '' HUP # the member's role-change signal: this service serves every role alike
log start
while :; do sleep 0.05; done
"#;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The running member processes, the log, and the windows in which members were paused.
struct Chaos {
    dir: tempfile::TempDir,
    endpoints: Vec<String>,
    members: BTreeMap<String, Child>,
    paused: Vec<(String, f64, f64)>,
}

impl Chaos {
    fn new(endpoints: Vec<String>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("service.sh");
        std::fs::write(&script, SERVICE).unwrap();
        Command::new("chmod")
            .arg("+x")
            .arg(&script)
            .status()
            .unwrap();
        Chaos {
            dir,
            endpoints,
            members: BTreeMap::new(),
            paused: Vec::new(),
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("serving.log")
    }

    fn start(&mut self, zone: &str, suffix: &str) {
        self.start_with(zone, suffix, &[]);
    }

    /// Starts a member with `extra` arguments after the usual ones.
    fn start_with(&mut self, zone: &str, suffix: &str, extra: &[&str]) {
        let name = format!("{zone}#{suffix}");
        let stderr =
            std::fs::File::create(self.dir.path().join(format!("{zone}-{suffix}.err"))).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_apportion"));
        command.arg("member");
        for endpoint in &self.endpoints {
            command.arg("--etcd").arg(endpoint);
        }
        let script = self.dir.path().join("service.sh");
        let child = command
            .args(["--prefix", PREFIX, "--zone", zone, "--suffix", suffix])
            .args([
                "--item-limit",
                "10",
                "--lease-ttl",
                &TTL.to_string(),
                "--grace",
                "2",
            ])
            .args(extra)
            .arg("--exec")
            .arg(format!("exec {}", script.display()))
            .env("CHAOS_LOG", self.log_path())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        self.members.insert(name, child);
    }

    fn signal(&self, name: &str, signal: i32) {
        let pid = self.members[name].id() as i32;
        // SAFETY: kill(2) takes plain integers.
        unsafe { libc::kill(pid, signal) };
    }

    fn kill(&mut self, name: &str) {
        let mut child = self.members.remove(name).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Freezes the member and its children (as a frozen machine would be) for `pause`.
    fn pause(&mut self, name: &str, pause: Duration) {
        let family = family(self.members[name].id());
        for pid in &family {
            // SAFETY: kill(2) takes plain integers.
            unsafe { libc::kill(*pid as i32, libc::SIGSTOP) };
        }
        let from = now();
        std::thread::sleep(pause);
        let to = now();
        for pid in &family {
            // SAFETY: as above.
            unsafe { libc::kill(*pid as i32, libc::SIGCONT) };
        }
        self.paused.push((name.to_string(), from, to));
    }

    /// Sends SIGTERM to a member (it drains, or prepares a restart) and waits for it to
    /// exit; returns its exit code.
    fn drain(&mut self, name: &str) -> Option<i32> {
        self.signal(name, libc::SIGTERM);
        let mut child = self.members.remove(name).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        panic!("{name} did not finish draining within 60 s");
    }

    fn intervals(&self) -> Vec<Interval> {
        read_log(&self.log_path())
    }

    /// A member serving an exclusive item now, and the item: faults aimed at it test a
    /// handoff, not just a replica loss.
    fn exclusive_holder(&self) -> (String, String) {
        let serving = serving_now(&self.intervals());
        EXCLUSIVE
            .iter()
            .find_map(|item| {
                let owner = serving.get(*item)?.first()?;
                self.members
                    .contains_key(owner)
                    .then(|| (owner.clone(), item.to_string()))
            })
            .expect("some exclusive item is served by a running member")
    }

    /// Asserts the item is served now, and by another member than `was`.
    fn assert_moved(&self, item: &str, was: &str) {
        let serving = serving_now(&self.intervals());
        let now = &serving[item];
        assert!(
            !now.contains(&was.to_string()),
            "{item} still served by {was}: {now:?}"
        );
    }

    /// Asserts the item was handed to another member than `was` after `since`. The member
    /// may have it back by now: one paused past its lease joins again under a new lease,
    /// and may be given the item again.
    fn assert_handed_over(&self, item: &str, was: &str, since: f64) {
        let handed = self
            .intervals()
            .iter()
            .any(|i| i.item == item && i.member != was && i.start >= since);
        assert!(handed, "{item} was not handed over from {was}");
    }

    /// Waits until every item is served by as many processes as it wants, on distinct
    /// members, and that has held for a second.
    fn wait_served(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut stable_since: Option<Instant> = None;
        while Instant::now() < deadline {
            let serving = serving_now(&self.intervals());
            let complete = EXCLUSIVE
                .iter()
                .all(|i| serving.get(*i).is_some_and(|m| m.len() == 1))
                && REPLICATED
                    .iter()
                    .all(|i| serving.get(*i).is_some_and(|m| m.len() == 2));
            match (complete, stable_since) {
                (true, Some(since)) if since.elapsed() > Duration::from_secs(1) => return,
                (true, None) => stable_since = Some(Instant::now()),
                (false, _) => stable_since = None,
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "after {what}, items were not all served: {:?}\n{}",
            serving_now(&self.intervals()),
            self.stderr_tail()
        );
    }

    /// Waits until `apportion status` says every item has all its copies, all ready: what
    /// an operator waits for between two restarts (a copy that is served but not yet
    /// marked ready does not count toward `min_ready`, and its item would be refilled).
    fn wait_ready(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let mut command = Command::new(env!("CARGO_BIN_EXE_apportion"));
            command.args(["status", "--json", "--prefix", PREFIX]);
            for endpoint in &self.endpoints {
                command.arg("--etcd").arg(endpoint);
            }
            let output = command.output().unwrap();
            let status: serde_json::Value =
                serde_json::from_slice(&output.stdout).unwrap_or_default();
            if status["attention"].as_array().is_some_and(Vec::is_empty) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "after {what}, copies were not all ready\n{}",
            self.stderr_tail()
        );
    }

    fn stderr_tail(&self) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            if entry.path().extension().is_some_and(|e| e == "err") {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(5).collect();
                out += &format!("--- {}\n{}\n", entry.path().display(), tail.join("\n"));
            }
        }
        out
    }

    /// No two processes served one exclusive item at once, beyond the resume margin after a
    /// pause. Returns the longest overlap seen.
    fn check_exclusive(&self) -> f64 {
        let intervals = self.intervals();
        let end = now();
        let mut longest: f64 = 0.0;
        for item in EXCLUSIVE {
            let of_item: Vec<&Interval> = intervals.iter().filter(|i| i.item == item).collect();
            for (n, a) in of_item.iter().enumerate() {
                for b in &of_item[n + 1..] {
                    let from = a.start.max(b.start);
                    let to = a.stop.unwrap_or(end).min(b.stop.unwrap_or(end));
                    if to <= from {
                        continue;
                    }
                    let overlap = (to - from)
                        - self
                            .frozen(&a.member, from, to)
                            .max(self.frozen(&b.member, from, to));
                    longest = longest.max(overlap);
                    // A paused member's children, frozen with it, run again when it is
                    // resumed, until it sees its lease is gone and stops them: an overlap
                    // that follows a resume inside its window (or just before it) is that,
                    // however early in the pause the item was handed over.
                    let after_resume = self.paused.iter().any(|(m, _, resumed)| {
                        (m == &a.member || m == &b.member)
                            && *resumed >= from - RESUME_MARGIN
                            && *resumed <= to
                    });
                    let allowed = if after_resume { RESUME_MARGIN } else { 0.0 };
                    assert!(
                        overlap <= allowed,
                        "{item} served by {} (pid {}) and {} (pid {}) at once for {overlap:.3} s",
                        a.member,
                        a.pid,
                        b.member,
                        b.pid
                    );
                }
            }
        }
        longest
    }

    /// How long `member` was frozen within [from, to].
    fn frozen(&self, member: &str, from: f64, to: f64) -> f64 {
        self.paused
            .iter()
            .filter(|(m, _, _)| m == member)
            .map(|(_, a, b)| (b.min(to) - a.max(from)).max(0.0))
            .sum()
    }
}

impl Drop for Chaos {
    fn drop(&mut self) {
        for child in self.members.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One process serving one item: from its start line to its stop line (if any).
#[derive(Debug)]
struct Interval {
    item: String,
    member: String,
    pid: String,
    start: f64,
    stop: Option<f64>,
}

fn read_log(path: &Path) -> Vec<Interval> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut intervals: Vec<Interval> = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [kind, item, member, pid, nanos] = parts[..] else {
            continue;
        };
        let Ok(nanos) = nanos.parse::<f64>() else {
            continue;
        };
        let at = nanos / 1e9;
        match kind {
            "start" => intervals.push(Interval {
                item: item.into(),
                member: member.into(),
                pid: pid.into(),
                start: at,
                stop: None,
            }),
            "stop" => {
                if let Some(open) = intervals
                    .iter_mut()
                    .rev()
                    .find(|i| i.pid == pid && i.stop.is_none())
                {
                    open.stop = Some(at);
                }
            }
            _ => {}
        }
    }
    intervals
}

/// For each item, the members serving it now.
fn serving_now(intervals: &[Interval]) -> BTreeMap<String, Vec<String>> {
    let mut serving: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in intervals.iter().filter(|i| i.stop.is_none()) {
        let members = serving.entry(i.item.clone()).or_default();
        if !members.contains(&i.member) {
            members.push(i.member.clone());
        }
    }
    serving
}

/// A process and all its descendants, from /proc.
fn family(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The parent pid is the second field after the parenthesised command name.
        let Some(after) = stat.rfind(')') else {
            continue;
        };
        let fields: Vec<&str> = stat[after + 1..].split_whitespace().collect();
        if let Some(ppid) = fields.get(1).and_then(|p| p.parse().ok()) {
            parents.push((pid, ppid));
        }
    }
    let mut family = vec![root];
    let mut n = 0;
    while n < family.len() {
        let parent = family[n];
        family.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        n += 1;
    }
    family
}

async fn put_items(endpoints: &[String]) {
    let store = EtcdStore::connect(endpoints).await.unwrap();
    let items = EXCLUSIVE
        .iter()
        .map(|i| (i, 1, true))
        .chain(REPLICATED.iter().map(|i| (i, 2, false)));
    let values = items.map(|(id, replication, exclusive)| {
        let value = JsonItem {
            replication,
            exclusive,
            ..JsonItem::default()
        };
        (ItemId::new(id).unwrap(), value)
    });
    let admin = Admin::new(store, Prefix::new(PREFIX).unwrap());
    admin.put_items(values).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_survive_kills_pauses_an_etcd_restart_and_a_drain() {
    let mut etcd = TestEtcd::start();
    let mut chaos = Chaos::new(vec![etcd.endpoint()]);
    for (zone, suffix) in [("a", "m0"), ("a", "m1"), ("b", "m2"), ("b", "m3")] {
        chaos.start(zone, suffix);
    }
    put_items(&[etcd.endpoint()]).await;
    tokio::task::block_in_place(|| {
        chaos.wait_served("the start");
        let (victim, item) = chaos.exclusive_holder();
        chaos.kill(&victim);
        chaos.wait_served("a SIGKILL");
        chaos.assert_moved(&item, &victim);
        chaos.start("a", "m4");
        chaos.wait_served("a new member");
        let (victim, item) = chaos.exclusive_holder();
        chaos.pause(&victim, Duration::from_secs(TTL + 2));
        let paused_at = chaos.paused.last().expect("a pause").1;
        chaos.wait_served("a pause past the lease");
        chaos.assert_handed_over(&item, &victim, paused_at);
        etcd.restart();
        chaos.wait_served("an etcd restart");
        let (victim, item) = chaos.exclusive_holder();
        assert_eq!(chaos.drain(&victim), Some(0), "a drained member exits 0");
        chaos.wait_served("a drain");
        chaos.assert_moved(&item, &victim);
        let longest = chaos.check_exclusive();
        eprintln!("chaos: longest exclusive overlap after a resume: {longest:.3} s");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocation_goes_on_when_the_etcd_leader_dies() {
    let mut nodes = TestEtcd::start_cluster(3);
    let endpoints: Vec<String> = nodes.iter().map(TestEtcd::endpoint).collect();
    let mut chaos = Chaos::new(endpoints.clone());
    for (zone, suffix) in [("a", "m0"), ("b", "m1"), ("c", "m2")] {
        chaos.start(zone, suffix);
    }
    put_items(&endpoints).await;
    tokio::task::block_in_place(|| chaos.wait_served("the start"));
    let leader = nodes
        .iter()
        .position(TestEtcd::is_leader)
        .expect("the cluster has a leader");
    nodes[leader].kill();
    // The members must go on: a member crash now is handled by the surviving etcd nodes.
    tokio::task::block_in_place(|| {
        let (victim, item) = chaos.exclusive_holder();
        chaos.kill(&victim);
        chaos.wait_served("the etcd leader's death and a member crash");
        chaos.assert_moved(&item, &victim);
        chaos.check_exclusive();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_in_restart_mode_moves_no_replica_while_a_member_is_away() {
    let etcd = TestEtcd::start();
    let mut chaos = Chaos::new(vec![etcd.endpoint()]);
    let restart = ["--on-sigterm", "restart", "--restart-grace", "60s"];
    let members = [("a", "m0"), ("a", "m1"), ("b", "m2"), ("b", "m3")];
    for (zone, suffix) in members {
        chaos.start_with(zone, suffix, &restart);
    }
    put_items(&[etcd.endpoint()]).await;
    tokio::task::block_in_place(|| {
        chaos.wait_served("the start");
        chaos.wait_ready("the start");
        for (zone, suffix) in members {
            let name = format!("{zone}#{suffix}");
            let before = serving_now(&chaos.intervals());
            let left = now();
            assert_eq!(chaos.drain(&name), Some(0), "{name} left to restart");
            let back = now();
            chaos.start_with(zone, suffix, &restart);
            chaos.wait_served(&format!("the restart of {name}"));
            chaos.wait_ready(&format!("the restart of {name}"));
            // While it was away, no replica was loaded anywhere else: its items waited.
            // (Once it is back, the balance may move some items to it: it handed its
            // exclusive items over before leaving, so it returns below its share.)
            let intervals = chaos.intervals();
            let moved = intervals.iter().find(|i| {
                REPLICATED.contains(&i.item.as_str())
                    && i.start >= left
                    && i.start < back
                    && !before[&i.item].contains(&i.member)
            });
            if let Some(moved) = moved {
                panic!(
                    "{} loaded on {} while {name} was away",
                    moved.item, moved.member
                );
            }
            // It serves its replicas again.
            for item in REPLICATED.iter().filter(|i| before[**i].contains(&name)) {
                let again = intervals
                    .iter()
                    .any(|i| i.item == *item && i.member == name && i.start >= back);
                assert!(again, "{item} did not come back to {name}");
            }
        }
        chaos.check_exclusive();
    });
}

/// The checker itself: two members serving one exclusive item at once is caught.
#[test]
#[should_panic(expected = "at once")]
fn the_checker_catches_two_owners() {
    let chaos = Chaos::new(Vec::new());
    let log =
        "start x0 a#m0 10 1000000000\nstart x0 b#m1 11 1500000000\nstop x0 a#m0 10 2000000000\n";
    std::fs::write(chaos.log_path(), log).unwrap();
    chaos.check_exclusive();
}
