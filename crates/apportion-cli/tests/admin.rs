//! The admin commands run as the built binary against a real etcd: items, drain, and how
//! bad input and an unreachable etcd are reported.

// `Running::interrupt` is for the status tests' live view.
#[allow(dead_code)]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use apportion_store::{EtcdStore, KeyRange, Store};
use apportion_testkit::{free_port, TestEtcd};
use serde_json::{json, Value};
use support::{apportion, cluster, connect, Running};

/// Asserts a failed command printed exactly one line on stderr, and returns it.
fn one_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got: {stderr}");
    lines[0]
}

#[test]
fn items_put_list_and_rm_round_trip() {
    let etcd = TestEtcd::start();
    let url = etcd.endpoint();

    let put = apportion(
        &url,
        &[
            "items",
            "put",
            "orders",
            "--replication",
            "1",
            "--exclusive",
        ],
    );
    assert_eq!(
        (put.code, put.stdout.as_str()),
        (0, "created item orders (replication 1, exclusive)\n")
    );
    // An edit changes only what it names: the item stays exclusive, so two replicas are
    // refused until exclusivity is turned off, explicitly.
    let refused = apportion(&url, &["items", "put", "orders", "--replication", "2"]);
    assert_eq!(refused.code, 2);
    assert!(
        one_line(&refused.stderr).contains("item `orders` is exclusive"),
        "{}",
        refused.stderr
    );
    let both = apportion(
        &url,
        &["items", "put", "x", "--replication", "2", "--exclusive"],
    );
    assert_eq!(both.code, 2);
    assert!(one_line(&both.stderr).contains("one owner at a time"));
    let update = apportion(
        &url,
        &[
            "items",
            "put",
            "orders",
            "--replication",
            "2",
            "--no-exclusive",
        ],
    );
    assert_eq!(
        update.stdout,
        "updated item orders (replication 1 -> 2, no longer exclusive)\n"
    );
    let kept = apportion(&url, &["items", "put", "orders", "--replication", "2"]);
    assert_eq!(kept.stdout, "updated item orders (replication 2 -> 2)\n");
    assert_eq!(
        apportion(&url, &["items", "put", "parked", "--replication", "0"]).code,
        0
    );

    let table = apportion(&url, &["items", "list"]);
    assert_eq!(
        table.stdout,
        "ITEM    REPLICATION  EXCLUSIVE  ASSIGNED  CONSISTENT\n\
         orders            2  no                0           0\n\
         parked            0  no                0           0\n"
    );
    let listed: Value = serde_json::from_str(&apportion(&url, &["items", "list", "--json"]).stdout)
        .expect("items list --json prints JSON");
    assert_eq!(
        listed,
        json!([
            {"id": "orders", "replication": 2, "exclusive": false, "assigned": 0, "consistent": 0,
             "copies": []},
            {"id": "parked", "replication": 0, "exclusive": false, "assigned": 0, "consistent": 0,
             "copies": []},
        ])
    );

    let rm = apportion(&url, &["items", "rm", "parked"]);
    assert_eq!((rm.code, rm.stdout.as_str()), (0, "removed item parked\n"));
    let again = apportion(&url, &["items", "rm", "parked"]);
    assert_eq!(again.code, 1);
    assert_eq!(
        one_line(&again.stderr),
        "error: item `parked` does not exist under /apportion"
    );
    let listed: Value =
        serde_json::from_str(&apportion(&url, &["items", "list", "--json"]).stdout).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));

    // Another prefix is another deployment.
    let elsewhere = apportion(&url, &["items", "list", "--prefix", "/other"]);
    assert_eq!(elsewhere.stdout, "no items under /other\n");
}

/// Writes `(key, value, member)` triples under `prefix`, each key under its member's lease
/// (a new lease per member, 60 s), as the members and the leader would have.
fn write_keys(store: &EtcdStore, prefix: &str, keys: &[(&str, &str, Option<&str>)]) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut leases = BTreeMap::new();
        for &(key, value, member) in keys {
            let lease = match member {
                Some(member) => match leases.get(member) {
                    Some(&lease) => Some(lease),
                    None => {
                        let lease = store.grant(60).await.unwrap().id;
                        leases.insert(member, lease);
                        Some(lease)
                    }
                },
                None => None,
            };
            let key = format!("{prefix}/{key}");
            store.put(key, value.as_bytes(), lease).await.unwrap();
        }
    });
}

/// The copies table of `items show` with the lease column's seconds replaced by `N`, as
/// they tick down.
fn without_seconds(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = match line.find("s left") {
            Some(end) => {
                let start = line[..end].rfind(' ').map_or(0, |i| i + 1);
                format!("{}Ns left{}", &line[..start], &line[end + 6..])
            }
            None => line.to_owned(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[test]
fn items_show_describes_an_item_and_says_why_it_is_short_of_copies() {
    let etcd = TestEtcd::start();
    let url = etcd.endpoint();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = connect(&runtime, &url);
    runtime.block_on(cluster::write(&store));
    write_keys(
        &store,
        cluster::PREFIX,
        &[
            (
                "items/ledger",
                r#"{"replication": 1, "exclusive": true, "owner": "team-a"}"#,
                None,
            ),
            ("items/broken", "not json", None),
        ],
    );
    runtime.block_on(async {
        // Under us#h1's lease, as the member would have written it.
        let members = store
            .range(KeyRange::key(format!("{}/members/us#h1", cluster::PREFIX)))
            .await
            .unwrap();
        let lease = members.kvs[0].lease;
        let key = format!("{}/assign/ledger#us#h1#00000", cluster::PREFIX);
        store.put(key, r#"{"ready": true}"#, lease).await.unwrap();
    });

    let orders = apportion(&url, &["items", "show", "orders"]);
    assert_eq!(orders.code, 0, "{}", orders.stderr);
    let revision = orders.stdout.lines().nth(2).unwrap().to_owned();
    assert!(revision.starts_with("revision     "), "{}", orders.stdout);
    assert_eq!(
        without_seconds(&orders.stdout),
        format!(
            "item         orders\n\
             key          /apportion/items/orders\n\
             {revision}\n\
             replication  2\n\
             exclusive    no\n\
             copies       2 of 2 placed, 1 ready\n\
             \n\
             SLOT  MEMBER  ZONE  READY  RELEASING  LEASE\n\
             \x20  0  eu#h1   eu    yes    no         Ns left\n\
             \x20  1  us#h1   us    no     no         Ns left\n\
             \n\
             why it is short of copies or not ready:\n\
             \x20 - 1 copy not ready yet: waiting for consistency (the leader moves a primary \
             or drops an old copy only once the new one is ready)\n"
        )
    );

    let ledger = apportion(&url, &["items", "show", "ledger"]);
    assert_eq!(ledger.code, 0, "{}", ledger.stderr);
    let text = without_seconds(&ledger.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[4], "exclusive    yes (one owner at a time)");
    assert_eq!(lines[5], r#"extra        {"owner":"team-a"}"#);
    assert_eq!(lines[6], "copies       1 of 1 placed, 1 ready");
    assert_eq!(lines[9], "   0  us#h1   us    yes    no         Ns left");
    assert_eq!(lines.last(), Some(&"all copies placed and ready"));

    let json: Value =
        serde_json::from_str(&apportion(&url, &["items", "show", "ledger", "--json"]).stdout)
            .unwrap();
    assert_eq!(json["wanted"], 1);
    assert_eq!(json["extra"], json!({"owner": "team-a"}));
    assert_eq!(json["copies"][0]["member"], "us#h1");
    assert_eq!(json["copies"][0]["slot"], 0);
    let left = json["copies"][0]["lease_ttl_secs"].as_u64().unwrap();
    assert!((1..=60).contains(&left), "{left}");
    assert_eq!(json["reasons"], json!([]));

    // Three copies wanted, two members, both in zone `a`.
    write_keys(
        &store,
        "/short",
        &[
            ("members/a#1", r#"{"item_limit": 5}"#, Some("a#1")),
            ("members/a#2", r#"{"item_limit": 5}"#, Some("a#2")),
            ("items/x", r#"{"replication": 3}"#, None),
            ("assign/x#a#1#00000", r#"{"ready": true}"#, Some("a#1")),
            ("assign/x#a#2#00001", r#"{"ready": true}"#, Some("a#2")),
        ],
    );
    let short = apportion(&url, &["items", "show", "x", "--prefix", "/short"]);
    assert_eq!(short.code, 0, "{}", short.stderr);
    let reasons: Vec<&str> = short
        .stdout
        .lines()
        .skip_while(|line| !line.starts_with("why"))
        .skip(1)
        .collect();
    assert_eq!(
        reasons,
        [
            "  - 1 copy missing but no member can take one (not exiting, below its item \
             limit, not already holding the item)",
            "  - only 1 zone can take copies, for 3 wanted: they cannot all be in different \
             zones",
        ],
        "{}",
        short.stdout
    );

    let unknown = apportion(&url, &["items", "show", "nope"]);
    assert_eq!(unknown.code, 1);
    assert_eq!(
        one_line(&unknown.stderr),
        "error: no item nope under /apportion"
    );
    assert!(unknown.stdout.is_empty());

    let broken = apportion(&url, &["items", "show", "broken"]);
    assert_eq!(broken.code, 1);
    let line = one_line(&broken.stderr);
    assert!(
        line.starts_with(
            "error: item key /apportion/items/broken is ignored by the cluster: \
             item value is not valid JSON"
        ),
        "{line}"
    );
}

#[test]
fn items_list_shows_holders_and_every_item_key_even_those_ignored() {
    let etcd = TestEtcd::start();
    let url = etcd.endpoint();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = connect(&runtime, &url);
    runtime.block_on(cluster::write(&store));

    let wide = apportion(&url, &["items", "list", "--wide"]);
    assert_eq!(wide.code, 0, "{}", wide.stderr);
    assert_eq!(
        wide.stdout,
        "ITEM      REPLICATION  EXCLUSIVE  ASSIGNED  CONSISTENT  COPIES\n\
         orders              2  no                2           1  eu#h1*,us#h1\n\
         parked              0  no                0           0  -\n\
         payments            3  yes               2           2  us#h1*,eu#h2\n"
    );

    write_keys(
        &store,
        cluster::PREFIX,
        &[
            ("items/garbled", "{garbage", None),
            ("items/huge", r#"{"replication": 1000}"#, None),
        ],
    );
    let listed = apportion(&url, &["items", "list"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "ITEM      REPLICATION  EXCLUSIVE  ASSIGNED  CONSISTENT  NOTE"
    );
    assert!(
        lines[1].starts_with(
            "garbled             -  -                 -           -  ignored: item value is \
             not valid JSON"
        ),
        "{}",
        listed.stdout
    );
    assert_eq!(
        lines[2],
        "huge                -  -                 -           -  ignored: replication 1000 \
         is above the maximum of 255"
    );
    assert_eq!(
        lines[3],
        "orders              2  no                2           1"
    );
    assert_eq!(lines.len(), 6);

    let rows: Value =
        serde_json::from_str(&apportion(&url, &["items", "list", "--json"]).stdout).unwrap();
    assert_eq!(
        rows[1],
        json!({"id": "huge", "key": "/apportion/items/huge",
               "ignored": "replication 1000 is above the maximum of 255"})
    );
    assert_eq!(
        rows[2]["copies"],
        json!([
            {"slot": 0, "member": "eu#h1", "zone": "eu", "ready": true, "releasing": false},
            {"slot": 1, "member": "us#h1", "zone": "us", "ready": false, "releasing": false},
        ])
    );
}

/// `text` with the seconds left on leases, which tick down between two runs, replaced by
/// `N`: in tables (`59s left`) and in JSON (`"lease_ttl_secs": 59`).
fn without_ticking_leases(text: &str) -> String {
    let field = "\"lease_ttl_secs\": ";
    without_seconds(text)
        .lines()
        .map(|line| match line.find(field) {
            Some(at) => {
                let start = at + field.len();
                let digits = line[start..].bytes().take_while(u8::is_ascii_digit).count();
                format!("{}N{}\n", &line[..start], &line[start + digits..])
            }
            None => format!("{line}\n"),
        })
        .collect()
}

/// `-o table|wide|json` and the `--json`/`--wide` shorthands mean the same on every
/// command that prints a result, and a contradiction is refused.
#[test]
fn output_flags_are_the_same_on_every_command() {
    let etcd = TestEtcd::start();
    let url = etcd.endpoint();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = connect(&runtime, &url);
    runtime.block_on(cluster::write(&store));

    for command in [
        &["items", "list"][..],
        &["items", "show", "orders"],
        &["members", "list"],
        &["status"],
    ] {
        let run = |flags: &[&str]| {
            let args: Vec<&str> = command.iter().chain(flags).copied().collect();
            let output = apportion(&url, &args);
            assert_eq!(output.code, 0, "{args:?}: {}", output.stderr);
            without_ticking_leases(&output.stdout)
        };
        let table = run(&[]);
        assert_eq!(run(&["-o", "table"]), table, "{command:?}");
        let json = run(&["--json"]);
        assert!(json.starts_with('{') || json.starts_with('['), "{json}");
        assert_eq!(run(&["-o", "json"]), json, "{command:?}");
        assert_eq!(run(&["--output=wide"]), run(&["--wide"]), "{command:?}");

        let args: Vec<&str> = command
            .iter()
            .chain(&["--json", "-o", "table"])
            .copied()
            .collect();
        let refused = apportion(&url, &args);
        assert_eq!(refused.code, 2, "{args:?}");
        assert!(
            refused
                .stderr
                .starts_with("error: the argument '--json' cannot be used with"),
            "{}",
            refused.stderr
        );
    }
    assert_ne!(
        apportion(&url, &["items", "list", "-o", "wide"]).stdout,
        apportion(&url, &["items", "list"]).stdout
    );
}

#[test]
fn a_prefix_with_nothing_under_it_is_said_and_status_fails() {
    let etcd = TestEtcd::start();
    let url = etcd.endpoint();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = connect(&runtime, &url);
    runtime.block_on(cluster::write(&store));

    let status = apportion(&url, &["status", "--prefix", "/apportoin"]);
    assert_eq!(status.code, 1);
    assert_eq!(
        one_line(&status.stderr),
        "error: no members and no items under /apportoin"
    );
    assert!(status.stdout.is_empty());

    let items = apportion(&url, &["items", "list", "--prefix", "/apportoin"]);
    assert_eq!(
        (items.code, items.stdout.as_str()),
        (0, "no items under /apportoin\n")
    );
    assert_eq!(
        one_line(&items.stderr),
        "warning: no members and no items under /apportoin"
    );
    let members = apportion(
        &url,
        &["members", "list", "--json", "--prefix", "/apportoin"],
    );
    assert_eq!((members.code, members.stdout.as_str()), (0, "[]\n"));
    assert_eq!(
        one_line(&members.stderr),
        "warning: no members and no items under /apportoin"
    );

    // The real prefix says nothing of the kind.
    let status = apportion(&url, &["status"]);
    assert_eq!((status.code, status.stderr.as_str()), (0, ""));
}

#[test]
fn bad_input_exits_2_with_one_line_that_names_the_problem() {
    // Never contacted: input is checked before connecting.
    let url = format!("http://127.0.0.1:{}", free_port());

    let bad_id = apportion(&url, &["items", "put", "a b", "--replication", "1"]);
    assert_eq!(bad_id.code, 2);
    let line = one_line(&bad_id.stderr);
    assert!(line.contains("forbidden character ' ' at byte 1"), "{line}");

    let not_a_number = apportion(&url, &["items", "put", "orders", "--replication", "three"]);
    assert_eq!(not_a_number.code, 2);
    let line = one_line(&not_a_number.stderr);
    assert!(line.contains("'three' for '--replication <N>'"), "{line}");

    // What the members would skip as a bad value is refused here, where someone reads it.
    let too_many = apportion(&url, &["items", "put", "r", "--replication", "1000"]);
    assert_eq!(too_many.code, 2);
    let line = one_line(&too_many.stderr);
    assert!(line.contains("not a replication from 0 to 255"), "{line}");

    let bad_member = apportion(&url, &["drain", "eu"]);
    assert_eq!(bad_member.code, 2);
    let line = one_line(&bad_member.stderr);
    assert!(
        line.contains("expected 2 '#'-separated parts, found 1"),
        "{line}"
    );

    let bad_url = apportion(&url, &["status", "--etcd", "127.0.0.1:2379"]);
    assert_eq!(bad_url.code, 2);
    let line = one_line(&bad_url.stderr);
    assert!(
        line.contains("must start with http:// or https://"),
        "{line}"
    );
}

#[test]
fn an_unreachable_etcd_is_one_line_and_exit_1_within_seconds() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let listed = apportion(&url, &["items", "list"]);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(listed.code, 1);
    let line = one_line(&listed.stderr);
    assert!(
        line.starts_with(&format!("error: cannot reach etcd at {url} (tried ")),
        "{line}"
    );
    assert!(listed.stdout.is_empty());
}

#[test]
fn drain_marks_the_member_exiting_keeps_its_lease_and_can_wait() {
    let etcd = TestEtcd::start();
    let url = etcd.endpoint();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = connect(&runtime, &url);
    let leases = runtime.block_on(cluster::write(&store));
    let member_key = |member: &str| {
        let key = format!("{}/members/{member}", cluster::PREFIX);
        let read = runtime.block_on(store.range(KeyRange::key(key))).unwrap();
        read.kvs.into_iter().next().expect("the member key exists")
    };

    let drained = apportion(&url, &["drain", "us#h1"]);
    assert_eq!(drained.code, 0, "{}", drained.stderr);
    let kv = member_key("us#h1");
    assert_eq!(kv.lease, Some(leases["us#h1"]));
    assert_eq!(
        serde_json::from_slice::<Value>(&kv.value).unwrap(),
        json!({"item_limit": 8, "exiting": true, "addr": "10.0.0.3"})
    );

    let missing = apportion(&url, &["drain", "eu#nope"]);
    assert_eq!(missing.code, 1);
    assert!(one_line(&missing.stderr).contains("member `eu#nope` is not registered"));

    // eu#h1 holds the primary of `orders` and an assignment of the deleted item `gone`;
    // the test plays the leader and removes them.
    let waiting = Running::start(&url, &["drain", "eu#h1", "--wait"]);
    assert_eq!(
        waiting.next_line(),
        "member eu#h1 marked exiting; the leader moves its copies away"
    );
    assert_eq!(
        waiting.next_line(),
        "member eu#h1 holds 2 assignments; waiting"
    );
    assert_eq!(member_key("eu#h1").lease, Some(leases["eu#h1"]));
    let assignments = format!("{}/assign/", cluster::PREFIX);
    for item in ["orders", "gone"] {
        let key = format!("{assignments}{item}#eu#h1#00000");
        runtime.block_on(store.delete(KeyRange::key(key))).unwrap();
    }
    let mut last = waiting.next_line();
    if last.contains("holds 1 assignment") {
        last = waiting.next_line();
    }
    assert_eq!(last, "member eu#h1 holds no assignment");
    assert_eq!(waiting.wait(), 0);
}

/// An id that is not one is refused in one line that shows it escaped, however it is
/// spelled: a newline does not cut the line short.
#[test]
fn a_bad_id_is_one_escaped_line_whatever_it_holds() {
    // Never contacted: input is checked before connecting.
    let url = format!("http://127.0.0.1:{}", free_port());
    let cases: [(&[&str], &str); 4] = [
        (
            &["items", "put", "nl\nx", "--replication", "1"],
            r"error: invalid value 'nl\nx' for '<ID>': key `nl\nx`: item id has forbidden character '\n' at byte 2",
        ),
        (
            &["items", "rm", ".."],
            "error: invalid value '..' for '<ID>': key `..`: item id `..` at byte 0 is not allowed (it reads as a path step)",
        ),
        (
            &["items", "rm", &"x".repeat(300)],
            "item id at byte 0 is 300 bytes long; the most is 256",
        ),
        (
            &["drain", "eu#a\rb"],
            r"error: invalid value 'eu#a\rb' for '<ZONE#SUFFIX>': key `eu#a\rb`: suffix has forbidden character '\r' at byte 4",
        ),
    ];
    for (args, expected) in cases {
        let refused = apportion(&url, args);
        assert_eq!(refused.code, 2, "{args:?}: {}", refused.stderr);
        let line = one_line(&refused.stderr);
        assert!(
            line.starts_with("error: ") && line.ends_with(expected),
            "{args:?}: {line}"
        );
    }
    // An id that starts with '-' is an id after `--`, as the help says.
    let help = apportion(&url, &["items", "rm", "--help"]);
    assert!(help.stdout.contains("`rm -- -x`"), "{}", help.stdout);
    let dashed = apportion(&url, &["items", "rm", "--", "-x"]);
    assert_eq!(dashed.code, 1, "parsed, then etcd is unreachable");
}
