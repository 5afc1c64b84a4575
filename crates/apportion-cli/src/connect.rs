//! Where the commands find the cluster: the `--etcd` and `--prefix` flags, and a
//! connection that is known to work before a command starts.
//!
//! The etcd client connects lazily, so an unreachable etcd would otherwise only show up as
//! a hang in the command's first request. Connecting here sends one small read, retried
//! with a short backoff, and gives up with one line that names the endpoints and says what
//! happened. How long it keeps trying is the caller's choice ([`Patience`]): an admin
//! command gives a restarting etcd a few seconds, quietly; a member started by a
//! supervisor before etcd (a host booting) waits much longer and says what it waits for.
//! A refused password or certificate is not retried: it is said at once.
//!
//! The TLS and authentication flags ([`Security`]) are shared by every command that talks
//! to etcd. The password is never a flag (it would show in `ps` and shell history): it comes
//! from a file or from `$APPORTION_ETCD_PASSWORD`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use apportion_core::keys::Prefix;
use apportion_store::{
    Backoff, ClientCert, EtcdOptions, EtcdStore, KeyRange, Store, StoreError, Tls,
};
use clap::Args;

use crate::duration::Span;
use crate::error::{CliError, Result};

/// How long an admin command retries the first request before it gives up: long enough
/// for an etcd that is restarting, short enough that a wrong address fails while someone
/// waits.
const RETRY_FOR: Duration = Duration::from_secs(3);
/// How long one attempt may take; a healthy etcd answers in milliseconds.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// The pause after the first failed attempt, doubled after each further one up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(800);

/// The flags every admin command takes to find the cluster.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// etcd endpoint URL; repeat the flag or separate URLs with commas for several.
    #[arg(
        long = "etcd",
        value_name = "URL",
        env = "APPORTION_ETCD",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379",
        value_parser = parse_endpoint
    )]
    pub endpoints: Vec<String>,

    /// The deployment's key prefix in etcd (a clean absolute path).
    #[arg(
        long,
        env = "APPORTION_PREFIX",
        default_value = "/apportion",
        value_parser = parse_prefix
    )]
    pub prefix: Prefix,

    #[command(flatten)]
    pub security: Security,
}

/// The environment variable holding the password of `--user`, when no `--password-file`
/// is given.
const PASSWORD_ENV: &str = "APPORTION_ETCD_PASSWORD";

/// The flags for an etcd with TLS and/or authentication, shared by every command that
/// talks to etcd.
#[derive(Args, Debug, Clone, Default)]
pub struct Security {
    /// CA certificate (PEM) that signed etcd's server certificate; required with https://
    /// endpoints.
    #[arg(long, value_name = "FILE", env = "APPORTION_ETCD_CACERT")]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM), for an etcd that requires one (--client-cert-auth).
    #[arg(
        long,
        value_name = "FILE",
        env = "APPORTION_ETCD_CERT",
        requires = "key",
        requires = "cacert"
    )]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long,
        value_name = "FILE",
        env = "APPORTION_ETCD_KEY",
        requires = "cert"
    )]
    pub key: Option<PathBuf>,
    /// etcd user to authenticate as; the password comes from --password-file or
    /// $APPORTION_ETCD_PASSWORD.
    #[arg(long, value_name = "NAME", env = "APPORTION_ETCD_USER")]
    pub user: Option<String>,
    /// File holding the password of --user (one line).
    #[arg(
        long,
        value_name = "FILE",
        env = "APPORTION_ETCD_PASSWORD_FILE",
        requires = "user"
    )]
    pub password_file: Option<PathBuf>,
}

impl Security {
    /// The store's options for `endpoints`, with the files read; the message (a bad
    /// argument: exit 2) names the file or flag at fault. Checked here, before any
    /// attempt, so a mistake is one line at once rather than a failure after retries.
    pub fn options(&self, endpoints: &[String]) -> std::result::Result<EtcdOptions, String> {
        let https = endpoints.iter().find(|e| e.starts_with("https://"));
        let http = endpoints.iter().find(|e| e.starts_with("http://"));
        let tls = match (&self.cacert, https, http) {
            (None, Some(url), _) => {
                return Err(format!(
                    "{url} uses TLS: give the CA certificate that signed etcd's certificate                      with --cacert FILE"
                ))
            }
            (Some(_), _, Some(url)) => {
                return Err(format!(
                    "--cacert is for https:// endpoints, but {url} is http://"
                ))
            }
            (None, None, _) => None,
            (Some(ca), _, None) => Some(Tls {
                ca_pem: read(ca, "--cacert")?,
                client: match (&self.cert, &self.key) {
                    (Some(cert), Some(key)) => Some(ClientCert {
                        cert_pem: read(cert, "--cert")?,
                        key_pem: read(key, "--key")?,
                    }),
                    _ => None,
                },
            }),
        };
        let user = match &self.user {
            None => None,
            Some(name) => Some((name.clone(), self.password()?)),
        };
        Ok(EtcdOptions { tls, user })
    }

    /// The password of `--user`: the first line of `--password-file`, else
    /// `$APPORTION_ETCD_PASSWORD`.
    fn password(&self) -> std::result::Result<String, String> {
        if let Some(file) = &self.password_file {
            let bytes = read(file, "--password-file")?;
            let text = String::from_utf8(bytes)
                .map_err(|_| format!("--password-file {}: not UTF-8 text", file.display()))?;
            return Ok(text.lines().next().unwrap_or_default().to_owned());
        }
        std::env::var(PASSWORD_ENV).map_err(|_| {
            format!("--user needs a password: give --password-file FILE or set ${PASSWORD_ENV}")
        })
    }

    /// These flags as arguments again, for a child `apportion member` (the password's
    /// variable is inherited with the environment).
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let mut flag = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                args.push(format!("--{name}={value}"));
            }
        };
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        flag("cacert", path(&self.cacert));
        flag("cert", path(&self.cert));
        flag("key", path(&self.key));
        flag("user", self.user.clone());
        flag("password-file", path(&self.password_file));
        args
    }
}

/// The contents of the file given with `flag`; the message names both and the reason.
fn read(path: &Path, flag: &str) -> std::result::Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {flag} {}: {e}", path.display()))
}

/// Accepts `http://` and `https://` URLs, so a typo fails at once with exit 2 instead of
/// as an unreachable etcd after the retries.
fn parse_endpoint(text: &str) -> Result<String, String> {
    let text = text.trim();
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
        .ok_or_else(|| format!("`{text}` must start with http:// or https://"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("`{text}` has no host"));
    }
    Ok(text.to_owned())
}

/// Validates the prefix with the same rules the members use, so both agree on the keys.
fn parse_prefix(text: &str) -> Result<Prefix, String> {
    Prefix::new(text).map_err(|e| e.to_string())
}

impl Target {
    /// Connects to etcd and checks that it answers (see [`reach`]).
    /// A bad TLS or user flag is an input error (exit 2).
    pub async fn connect(&self) -> Result<EtcdStore> {
        let options = self
            .security
            .options(&self.endpoints)
            .map_err(CliError::Input)?;
        reach(&self.endpoints, &options, Patience::Brief)
            .await
            .map_err(CliError::failed)
    }
}

/// How long [`reach`] keeps trying, and whether it tells anyone.
#[derive(Debug, Clone, Copy)]
pub enum Patience {
    /// A few seconds ([`RETRY_FOR`]), quietly: someone is waiting for the command, and a
    /// wrong address must fail while they do.
    Brief,
    /// Up to this long (zero: one attempt), printing on stderr once what it waits for and
    /// once when etcd answers: a service started before etcd (at boot, by a supervisor)
    /// should come up with it, and its log should say why it has not yet.
    Announced(Duration),
}

/// Connects to etcd at `endpoints` and proves the connection with one read, retrying with
/// backoff for as long as `patience` allows, so that an unreachable or mistyped endpoint
/// is one clear line (naming the endpoints and the attempts), not a command that hangs.
/// A refusal of the credentials or options is not retried: it would only be refused
/// again.
pub async fn reach(
    endpoints: &[String],
    options: &EtcdOptions,
    patience: Patience,
) -> std::result::Result<EtcdStore, String> {
    let (retry_for, announced) = match patience {
        Patience::Brief => (RETRY_FOR, false),
        Patience::Announced(wait) => (wait, true),
    };
    let started = Instant::now();
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt(endpoints, options)).await {
            Ok(Ok(store)) => {
                if announced && attempts > 1 {
                    eprintln!(
                        "reached etcd at {} after {:.1}s",
                        endpoints.join(","),
                        started.elapsed().as_secs_f64()
                    );
                }
                return Ok(store);
            }
            Ok(Err(e @ (StoreError::Auth(_) | StoreError::InvalidArgument(_)))) => {
                return Err(format!("etcd at {}: {e}", endpoints.join(",")))
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {ATTEMPT_TIMEOUT:?}"),
        };
        let waited = started.elapsed();
        let pause = backoff.next_delay();
        if waited + pause > retry_for {
            return Err(format!(
                "cannot reach etcd at {} (tried {attempts} times over {:.1}s): {error}",
                endpoints.join(","),
                waited.as_secs_f64()
            ));
        }
        if announced && attempts == 1 {
            eprintln!(
                "waiting for etcd at {} ({error}); giving up in {}",
                endpoints.join(","),
                Span(retry_for)
            );
        }
        tokio::time::sleep(pause).await;
    }
}

/// One attempt: connect, then read one key to prove the server answers.
async fn attempt(
    endpoints: &[String],
    options: &EtcdOptions,
) -> std::result::Result<EtcdStore, StoreError> {
    let store = EtcdStore::connect_with(endpoints, options.clone()).await?;
    store.range(KeyRange::key("/")).await?;
    Ok(store)
}
