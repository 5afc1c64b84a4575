//! Test support for apportion: a real `etcd` server on free loopback ports.
//!
//! Tests that need etcd start one with [`TestEtcd::start`], or a cluster of several with
//! [`TestEtcd::start_cluster`]; each node runs from `PATH` with a temporary data directory,
//! is ready when the call returns, and is killed and cleaned up when dropped. Without an `etcd` binary the test fails, naming the package to install: a suite
//! that silently skips its etcd half would prove nothing.
//!
//! A node can also serve clients over TLS only, requiring client certificates, as
//! production etcd does ([`TestEtcd::start_tls`] with [`TestCerts`], made fresh for each
//! test), and have authentication enabled ([`TestEtcd::enable_auth`]).

#![warn(missing_docs)]

mod tls;

pub use tls::TestCerts;

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh etcd may take to answer its health check.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one question to a node (its status, a step of enabling authentication) may
/// take: a node that is starting or gone is asked again, or reported, rather than waited on.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// How many times a cluster is started on fresh ports when one it was given was taken
/// meanwhile: a free port is only known free until someone else binds it, and tests
/// starting etcd in parallel race for them.
const PORT_ATTEMPTS: usize = 5;

/// A running etcd node, stopped and deleted on drop.
pub struct TestEtcd {
    child: Option<Child>,
    data: tempfile::TempDir,
    name: String,
    client_port: u16,
    peer_port: u16,
    /// The `--initial-cluster` list: every node's name and peer URL.
    cluster: String,
    /// With TLS: the certificates it serves and asks clients for.
    tls: Option<TestCerts>,
}

impl TestEtcd {
    /// Starts etcd on free loopback ports and waits until it reports healthy.
    ///
    /// # Panics
    /// When `etcd` is not on `PATH` (the message names the package to install), or when it
    /// does not become healthy in time (the message includes its log).
    pub fn start() -> TestEtcd {
        Self::start_cluster(1).pop().expect("one node")
    }

    /// Starts a cluster of `size` nodes on loopback and waits until every node is healthy.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn start_cluster(size: usize) -> Vec<TestEtcd> {
        Self::start_with_ports(
            || (0..size).map(|_| (free_port(), free_port())).collect(),
            None,
        )
    }

    /// Starts one node serving clients on `client_port`, a port the test chose earlier
    /// (with [`free_port`]): what should find etcd there (a member told to wait for it)
    /// can be started before etcd is.
    ///
    /// # Panics
    /// As [`start`](Self::start), and when the port is taken.
    pub fn start_on(client_port: u16) -> TestEtcd {
        Self::start_with_ports(|| vec![(client_port, free_port())], None)
            .pop()
            .expect("one node")
    }

    /// Starts one node that serves clients over TLS only, with the server certificate of
    /// `certs`, and accepts only clients presenting a certificate signed by their CA
    /// (`--client-cert-auth`); its [`endpoint`](Self::endpoint) is an `https://` URL.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn start_tls(certs: &TestCerts) -> TestEtcd {
        Self::start_with_ports(|| vec![(free_port(), free_port())], Some(certs))
            .pop()
            .expect("one node")
    }

    /// Starts nodes on the (client, peer) ports `ports` gives, asking it again when one
    /// was taken meanwhile; with `certs`, over TLS.
    fn start_with_ports(
        ports: impl Fn() -> Vec<(u16, u16)>,
        certs: Option<&TestCerts>,
    ) -> Vec<TestEtcd> {
        for _ in 1..PORT_ATTEMPTS {
            match Self::try_start_cluster(ports(), certs) {
                Ok(nodes) => return nodes,
                Err(log) if log.contains("address already in use") => continue,
                Err(log) => panic!("etcd could not start; its log:\n{log}"),
            }
        }
        Self::try_start_cluster(ports(), certs)
            .unwrap_or_else(|log| panic!("etcd could not start; its log:\n{log}"))
    }

    /// One attempt of [`start_with_ports`](Self::start_with_ports): the nodes, or the log
    /// of one that did not become healthy.
    fn try_start_cluster(
        ports: Vec<(u16, u16)>,
        certs: Option<&TestCerts>,
    ) -> Result<Vec<TestEtcd>, String> {
        let cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("node{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes: Vec<TestEtcd> = ports
            .into_iter()
            .enumerate()
            .map(|(i, (client_port, peer_port))| TestEtcd {
                child: None,
                data: tempfile::Builder::new()
                    .prefix("apportion-etcd-")
                    .tempdir()
                    .expect("cannot create a temporary directory for etcd"),
                name: format!("node{i}"),
                client_port,
                peer_port,
                cluster: cluster.clone(),
                tls: certs.cloned(),
            })
            .collect();
        // Every node must be running before any can become healthy: a quorum is needed.
        for node in &mut nodes {
            node.spawn();
        }
        for node in &mut nodes {
            node.wait_healthy()?;
        }
        Ok(nodes)
    }

    /// The client URL, for example `http://127.0.0.1:40123` (`https://` with TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// Enables authentication, as an operator would: adds the user `root` with `password`
    /// and the `root` role (etcd refuses to enable authentication without them), then
    /// enables it. From then on every client must log in. Connects over TLS with the
    /// node's client certificate if it was started with TLS.
    ///
    /// # Panics
    /// When etcd refuses any step.
    pub async fn enable_auth(&self, password: &str) {
        let mut client = self
            .client()
            .await
            .expect("cannot connect to the test etcd");
        client
            .user_add("root", password, None)
            .await
            .expect("cannot add the user root");
        client
            .user_grant_role("root", "root")
            .await
            .expect("cannot grant the role root");
        client
            .auth_enable()
            .await
            .expect("cannot enable authentication");
    }

    /// A client of this node alone, over TLS with the test's client certificate if the
    /// node was started with TLS, each call bounded by [`CALL_TIMEOUT`].
    async fn client(&self) -> Result<etcd_client::Client, etcd_client::Error> {
        let mut options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(CALL_TIMEOUT)
            .with_timeout(CALL_TIMEOUT);
        if let Some(certs) = &self.tls {
            let pem = |path: PathBuf| TestCerts::read(&path);
            options = options.with_tls(
                etcd_client::TlsOptions::new()
                    .ca_certificate(etcd_client::Certificate::from_pem(pem(certs.ca_file())))
                    .identity(etcd_client::Identity::from_pem(
                        pem(certs.client_cert_file()),
                        pem(certs.client_key_file()),
                    )),
            );
        }
        etcd_client::Client::connect([self.endpoint()], Some(options)).await
    }

    /// The node's own status report (its member id, the leader it follows, its alarms),
    /// or `None` while it does not answer.
    fn status(&self) -> Option<etcd_client::StatusResponse> {
        block_on(async { self.client().await.ok()?.status().await.ok() })
    }

    /// Whether the node can serve requests: it answers, follows a leader and raises no
    /// alarm (what etcd's own health check asks).
    fn is_healthy(&self) -> bool {
        self.status()
            .is_some_and(|status| status.leader() != 0 && status.errors().is_empty())
    }

    /// Kills the server (SIGKILL) without removing its data, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same ports and data, after [`kill`](Self::kill).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    fn log_path(&self) -> PathBuf {
        self.data.path().join("etcd.log")
    }

    /// Whether the server runs (it was not killed, or was restarted since).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Whether this node is the cluster's raft leader, as its own status report says.
    pub fn is_leader(&self) -> bool {
        self.status().is_some_and(|status| {
            let member = status.header().map(|h| h.member_id());
            status.leader() != 0 && member == Some(status.leader())
        })
    }

    fn launch(&mut self) {
        self.spawn();
        if let Err(log) = self.wait_healthy() {
            panic!("etcd could not start again; its log:\n{log}");
        }
    }

    fn spawn(&mut self) {
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("cannot create the etcd log file");
        let mut command = Command::new("etcd");
        if let Some(certs) = &self.tls {
            command.args(certs.server_flags()).arg("--client-cert-auth");
        }
        let child = command
            .arg(format!("--name={}", self.name))
            .arg(format!(
                "--data-dir={}",
                self.data.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster={}", self.cluster))
            .arg("--initial-cluster-state=new")
            // Short raft timings: a 1-second lease really lasts about a second.
            .arg("--heartbeat-interval=50")
            .arg("--election-timeout=500")
            .arg("--logger=zap")
            .arg("--log-level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cannot share the etcd log file"))
            .stderr(log)
            .spawn();
        match child {
            Ok(child) => self.child = Some(child),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "`etcd` is not on PATH; the etcd tests need it. Install it with \
                 `sudo apt-get install etcd-server` (Debian/Ubuntu) or put an etcd 3.4+ binary on PATH"
            ),
            Err(e) => panic!("cannot start etcd: {e}"),
        }
    }

    /// Waits until the node answers its health check; the reason and its log if not.
    fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Err(format!("exited with {status} during start\n{}", self.log()));
            }
            if self.is_healthy() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "not healthy within {START_TIMEOUT:?}\n{}",
            self.log()
        ))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for TestEtcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port that was free a moment ago (the OS picks it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot find a free loopback port")
}

/// Runs `future` to its end on a runtime of its own, in a thread of its own: the test kit's
/// calls are synchronous, and are also made from inside a test's runtime, which cannot block
/// on a second one in its own thread.
fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("cannot start a runtime to ask etcd")
                    .block_on(future)
            })
            .join()
            .expect("asking etcd panicked")
    })
}
