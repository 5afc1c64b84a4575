//! How `bench converge --processes` starts a member: this same program as `apportion
//! member --json`, on the benchmark's etcd with its TLS and user flags, forked through
//! [`crate::tied`] so that the kernel kills it if the benchmark dies (even of `kill -9`)
//! and no member is left running that nobody tracks. The benchmark engine decides what
//! each member is ([`MemberSpec`]); only the program knows its own command line.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::process::Stdio;

use apportion_bench::converge::MemberSpec;
use tokio::process::{Child, Command};

use crate::connect::Security;

/// Starts `apportion member` processes on one etcd.
pub struct Launcher {
    /// This program.
    program: PathBuf,
    /// The etcd endpoint, passed on as `--etcd`.
    etcd: String,
    /// The TLS and user flags, passed on as given (the password's variable is inherited
    /// with the environment).
    security: Vec<String>,
}

impl Launcher {
    /// A launcher of members on `etcd`, secured as `security` says.
    pub fn new(etcd: &str, security: &Security) -> Result<Self, String> {
        let program = std::env::current_exe()
            .map_err(|e| format!("cannot find this program to start the members: {e}"))?;
        Ok(Launcher {
            program,
            etcd: etcd.to_owned(),
            security: security.to_args(),
        })
    }

    /// Starts the member `member` describes, its `--json` output and stderr piped to the
    /// benchmark, which reads them; it gets SIGKILL when this process dies.
    pub fn start(&self, member: MemberSpec) -> impl Future<Output = io::Result<Child>> {
        let mut command = Command::new(&self.program);
        command
            .arg("member")
            .args(["--etcd", &self.etcd, "--prefix", &member.prefix])
            .args(&self.security)
            .args(["--zone", &member.zone, "--suffix", &member.suffix])
            .args(["--lease-ttl", &member.lease_ttl.as_secs().to_string()])
            .args(["--item-limit", &member.item_limit.to_string()])
            .args(["--metrics-addr", &member.metrics.to_string(), "--json"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        crate::tied::spawn(command, libc::SIGKILL)
    }
}
