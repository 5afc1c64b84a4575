//! The commands against an etcd that serves clients over TLS only, requires client
//! certificates and has authentication enabled: `--cacert`, `--cert`, `--key`, `--user`
//! and the password from `$APPORTION_ETCD_PASSWORD` or `--password-file`.

#[allow(dead_code)]
mod support;

use std::process::Command;

use apportion_testkit::{TestCerts, TestEtcd};
use support::{Output, Running};

const PASSWORD: &str = "s3cret";

/// The TLS and user flags for `certs`, before the command's own arguments.
fn secured(certs: &TestCerts, args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    for (flag, path) in [
        ("--cacert", certs.ca_file()),
        ("--cert", certs.client_cert_file()),
        ("--key", certs.client_key_file()),
    ] {
        all.push(format!("{flag}={}", path.display()));
    }
    all.extend(["--user".to_string(), "root".to_string()]);
    all
}

/// `apportion ARGS` against `etcd` with `password` in the environment.
fn command(etcd: &str, args: &[String], password: &str) -> Command {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut command = support::command(etcd, &args);
    command.env("APPORTION_ETCD_PASSWORD", password);
    command
}

fn run(etcd: &str, args: &[String], password: &str) -> Output {
    let output = command(etcd, args, password)
        .output()
        .expect("cannot run the apportion binary");
    Output {
        code: output.status.code().expect("apportion was killed"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

#[test]
fn items_and_a_member_over_tls_with_a_user() {
    let certs = TestCerts::generate();
    let etcd = TestEtcd::start_tls(&certs);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(etcd.enable_auth(PASSWORD));
    let url = etcd.endpoint();

    // The member first: with no items, its drain on SIGINT is immediate.
    let password_file = certs.ca_file().with_file_name("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let mut args = secured(&certs, &["member", "--zone", "a", "--wait-for-etcd", "0"]);
    args.push(format!("--password-file={}", password_file.display()));
    let member = Running::spawn(command(&url, &args, "not the password"));
    let joined = member.next_line();
    assert!(joined.contains("joined"), "{joined}");
    member.interrupt();
    assert_eq!(member.wait(), 0);

    let put = run(
        &url,
        &secured(&certs, &["items", "put", "orders", "--replication", "1"]),
        PASSWORD,
    );
    assert_eq!(put.code, 0, "{}", put.stderr);
    let list = run(&url, &secured(&certs, &["items", "list"]), PASSWORD);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(list.stdout.contains("orders"), "{}", list.stdout);

    let refused = run(&url, &secured(&certs, &["items", "list"]), "wrong");
    assert_eq!(refused.code, 1);
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(
        refused.stderr.starts_with("error: etcd at ")
            && refused
                .stderr
                .contains("access refused: etcdserver: authentication failed"),
        "{}",
        refused.stderr
    );
}

#[test]
fn bad_tls_arguments_exit_2_naming_the_problem() {
    let certs = TestCerts::generate();
    let etcd = TestEtcd::start_tls(&certs);
    let url = etcd.endpoint();

    let missing = run(
        &url,
        &[
            "items".into(),
            "list".into(),
            "--cacert=/nonexistent/ca.pem".into(),
        ],
        PASSWORD,
    );
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.starts_with("error: ") && missing.stderr.contains("/nonexistent/ca.pem"),
        "{}",
        missing.stderr
    );

    let no_ca = run(&url, &["members".into(), "list".into()], PASSWORD);
    assert_eq!(no_ca.code, 2, "{}", no_ca.stderr);
    assert!(no_ca.stderr.contains("--cacert"), "{}", no_ca.stderr);

    let member = run(
        &url,
        &[
            "member".into(),
            "--zone=a".into(),
            format!("--cacert={}", certs.ca_file().display()),
            "--cert=/nonexistent/client.pem".into(),
            format!("--key={}", certs.client_key_file().display()),
        ],
        PASSWORD,
    );
    assert_eq!(member.code, 2, "{}", member.stderr);
    assert!(
        member.stderr.contains("/nonexistent/client.pem"),
        "{}",
        member.stderr
    );
}

/// The demo and the benchmark take the same TLS and user flags as every other command,
/// and their members (in-process for both, `apportion member` processes for
/// `bench converge --processes`) reach the secured etcd with them.
#[test]
fn demo_and_bench_converge_over_tls_with_a_user() {
    let certs = TestCerts::generate();
    let etcd = TestEtcd::start_tls(&certs);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(etcd.enable_auth(PASSWORD));
    let url = etcd.endpoint();

    let demo = run(
        &url,
        &secured(
            &certs,
            &["demo", "--etcd", &url, "--members", "4", "--items", "12"],
        ),
        PASSWORD,
    );
    assert_eq!(demo.code, 0, "{}\n{}", demo.stdout, demo.stderr);
    assert!(
        demo.stdout.contains("every invariant held"),
        "{}",
        demo.stdout
    );

    for shape in [&[][..], &["--processes"][..]] {
        let mut args = vec![
            "bench",
            "converge",
            "--etcd",
            &url,
            "--members",
            "4",
            "--items",
            "20",
            "--lease-ttl",
            "3",
            "--idle-secs",
            "0",
        ];
        args.extend_from_slice(shape);
        let bench = run(&url, &secured(&certs, &args), PASSWORD);
        assert_eq!(bench.code, 0, "{shape:?}: {}", bench.stderr);
        let line: serde_json::Value = serde_json::from_str(bench.stdout.trim()).unwrap();
        assert_eq!(line["lease_losses"], 0, "{line}");
    }
}
