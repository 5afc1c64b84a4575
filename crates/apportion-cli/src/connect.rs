//! Where the commands find the cluster: the `--etcd` and `--prefix` flags, and a
//! connection that is known to work before a command starts.
//!
//! The etcd client connects lazily, so an unreachable etcd would otherwise only show up as
//! a hang in the command's first request. Connecting here sends one small read, retried
//! with a short backoff, and gives up with one line that names the endpoints and says what
//! happened. How long it keeps trying is the caller's choice ([`Patience`]): an admin
//! command gives a restarting etcd a few seconds, quietly; a member started by a
//! supervisor before etcd (a host booting) waits much longer and says what it waits for.

use std::time::{Duration, Instant};

use apportion_core::keys::Prefix;
use apportion_store::{EtcdStore, KeyRange, Store};
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
    pub async fn connect(&self) -> Result<EtcdStore> {
        reach(&self.endpoints, Patience::Brief)
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
pub async fn reach(
    endpoints: &[String],
    patience: Patience,
) -> std::result::Result<EtcdStore, String> {
    let (retry_for, announced) = match patience {
        Patience::Brief => (RETRY_FOR, false),
        Patience::Announced(wait) => (wait, true),
    };
    let started = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt(endpoints)).await {
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
            Ok(Err(e)) => e,
            Err(_) => format!("no answer within {ATTEMPT_TIMEOUT:?}"),
        };
        let waited = started.elapsed();
        if waited + backoff > retry_for {
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
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One attempt: connect, then read one key to prove the server answers.
async fn attempt(endpoints: &[String]) -> std::result::Result<EtcdStore, String> {
    let store = EtcdStore::connect(endpoints)
        .await
        .map_err(|e| e.to_string())?;
    store
        .range(KeyRange::key("/"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(store)
}
