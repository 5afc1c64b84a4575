//! `apportion member`: one member of a real cluster on etcd, run from the shell.
//!
//! It announces itself, prints what it is told (text or JSON lines), and serves its items:
//! without `--exec` it only marks each assignment ready (useful to watch the allocation, or
//! as a stand-in for a service); with `--exec` it runs the command once per item (see
//! [`exec`]) and marks the assignment ready when the process is. SIGTERM or SIGINT drains
//! it: its items move to other members first, then it leaves and exits 0. Items nobody
//! else can take do not move, so the drain gives up after `--drain-timeout`: the member
//! leaves anyway, dropping them, and exits 1. A second signal leaves at once. With
//! `--on-sigterm restart` the signal prepares a restart instead: the member hands its
//! primaries and exclusive items over, then leaves with an away record, and its replicas
//! wait up to `--restart-grace` for it to start again under the same id (see
//! `apportion::core::away`). A member
//! started before etcd waits for it (`--wait-for-etcd`); a signal meanwhile, or during
//! the start, stops the member as soon as the start is over (it then leaves at once), and
//! a member that cannot start leaves nothing behind. A member whose lease was lost joins
//! again under a new one (`--no-rejoin` exits 1).

mod exec;
mod marks;
mod output;
mod prometheus;
mod serve;
mod signals;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use apportion::core::keys::{allowed_in_id, MemberId, Prefix};
use apportion::core::values::JsonDecoder;
use apportion::{Member, MemberConfig};

use crate::connect::{reach, Patience, Security};
use crate::duration::Span;
use crate::output::FormatArgs;
use exec::{ExecSpec, OnRoleChange, RoleDir, RoleSignal};
use output::{Line, Printer};
use serve::{Ending, Serving};
use serve::{OnSignal, Stop};
use signals::Signals;

/// The command line of `apportion member`.
#[derive(clap::Args, Debug)]
pub struct MemberArgs {
    /// etcd endpoint URL; repeat the flag or separate URLs with commas for several.
    #[arg(
        long = "etcd",
        value_name = "URL",
        env = "APPORTION_ETCD",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379"
    )]
    etcd: Vec<String>,
    #[command(flatten)]
    security: Security,
    /// The key prefix the cluster lives under.
    #[arg(long, env = "APPORTION_PREFIX", default_value = "/apportion")]
    prefix: String,
    /// The failure zone this member runs in (a rack, an availability zone). A value that
    /// starts with '-' is given as --zone=-VALUE.
    #[arg(long)]
    zone: String,
    /// What tells this member apart within its zone: with the zone, the member's identity
    /// [default: the host name, so a member restarted on its host is the same member].
    /// Give each member its own when several run on one host in one zone. A value that
    /// starts with '-' is given as --suffix=-VALUE.
    #[arg(long)]
    suffix: Option<String>,
    /// The most items this member may hold.
    #[arg(long, default_value_t = 100)]
    item_limit: u32,
    /// The lease's time to live in seconds: how long a silent member keeps its items. Keep
    /// it at 5 s or more with etcd's default election timeout (1 s): below that, one etcd
    /// leader election can fence every member (a warning says so at start).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i64).range(1..=3600))]
    lease_ttl: i64,
    /// Exit (code 1) when the lease is lost, instead of joining again under a new lease.
    #[arg(long)]
    no_rejoin: bool,
    /// `-o json` prints one JSON object per line instead of text.
    #[command(flatten)]
    format: FormatArgs,
    /// Run this shell command once per held item; it finds the item in $APPORTION_ITEM,
    /// its slot in $APPORTION_SLOT, 1 in $APPORTION_PRIMARY if it is the primary, and the
    /// member in $APPORTION_MEMBER, all as they were when it started; the live role is in
    /// the file $APPORTION_ROLE_FILE (`primary 0` or `replica SLOT`). If the member is
    /// killed, the process `sh` runs gets SIGTERM: let the command `exec` the service.
    #[arg(long, value_name = "CMD")]
    exec: Option<String>,
    /// Mark an item ready only when its process prints this line on stdout (instead of
    /// after --ready-after).
    #[arg(long, value_name = "TEXT", requires = "exec")]
    ready_line: Option<String>,
    /// Without --ready-line, mark an item ready once its process has stayed up this many
    /// seconds (0: as soon as it has started), so that a process that dies at once is not
    /// reported ready.
    #[arg(long, value_name = "SECS", default_value_t = 2, requires = "exec")]
    ready_after: u64,
    /// The signal sent to the process `sh` runs when its item's role changes, after the
    /// role file was rewritten (SIGHUP, SIGUSR1, ...; `none`: send nothing). A process that
    /// does not handle it dies of it and is restarted at once with the new environment.
    #[arg(long, value_name = "SIG", default_value = "SIGHUP", requires = "exec")]
    primary_signal: RoleSignal,
    /// Restart the process (SIGTERM, then a new start with the new environment) when its
    /// item's role changes, instead of signalling it: an outage of the item while it starts.
    #[arg(long, requires = "exec", conflicts_with = "primary_signal")]
    restart_on_role_change: bool,
    /// Give an item up (mark it not ready and release it, so that the leader moves it) when
    /// its process would be restarted more than this many times within --restart-window.
    #[arg(long, value_name = "N", default_value_t = 5, requires = "exec")]
    max_restarts: u32,
    /// The window, in seconds, that --max-restarts counts restarts in.
    #[arg(long, value_name = "SECS", default_value_t = 60, requires = "exec")]
    restart_window: u64,
    /// Seconds a process may take to exit after SIGTERM before it is killed.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    grace: u64,
    /// How long to wait for etcd at start (30s, 5m, or seconds; 0: one attempt), retrying
    /// with back-off: a member started with its host, before etcd, comes up with etcd.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    wait_for_etcd: Span,
    /// How long a drain (on SIGTERM or SIGINT) may take (30s, 5m, or seconds). Items move
    /// only if another member can take them; after this the member leaves anyway, drops
    /// the items it still holds and exits 1.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    drain_timeout: Span,
    /// What SIGTERM (and SIGINT) does: `drain` moves every item away and leaves for good;
    /// `restart` hands primaries and exclusive items over, keeps the replicas where they
    /// are and leaves to come back: a member started again under the same zone and suffix
    /// within --restart-grace gets them back, with no data moved. The hand-over is bounded
    /// by --drain-timeout.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = OnSignal::Drain)]
    on_sigterm: OnSignal,
    /// With --on-sigterm restart: how long the replicas wait for the member to start
    /// again (30s, 5m, or seconds) before they are placed on other members.
    #[arg(long, value_name = "DURATION", default_value = "2m")]
    restart_grace: Span,
    /// Serve Prometheus metrics at http://HOST:PORT/metrics.
    #[arg(long, value_name = "HOST:PORT")]
    metrics_addr: Option<SocketAddr>,
}

/// Runs the member until it has drained (exit 0), or cannot go on or had to drop items
/// (exit 1).
pub async fn run(args: MemberArgs) -> ExitCode {
    let mut signals = match Signals::install() {
        Ok(signals) => signals,
        Err(e) => return fail(1, &format!("cannot handle signals: {e}")),
    };
    if args.on_sigterm == OnSignal::Restart && args.restart_grace.0 < Duration::from_secs(1) {
        return fail(
            2,
            "--restart-grace must be at least 1s: the replicas wait that long for the member",
        );
    }
    let suffix = args.suffix.clone().unwrap_or_else(default_suffix);
    let id = match MemberId::new(&args.zone, &suffix) {
        Ok(id) => id,
        Err(e) => return fail(2, &format!("invalid member id: {e}")),
    };
    if let Err(e) = Prefix::new(&args.prefix) {
        return fail(2, &format!("invalid --prefix: {e}"));
    }
    let options = match args.security.options(&args.etcd) {
        Ok(options) => options,
        Err(e) => return fail(2, &e),
    };
    // Before joining: a member that cannot set up its processes' role files must not join.
    let exec = match args.exec {
        Some(command) => match RoleDir::create(id.as_str()) {
            Ok(role_dir) => Some(ExecSpec {
                command,
                ready_line: args.ready_line,
                grace: Duration::from_secs(args.grace),
                member: id.to_string(),
                on_role_change: if args.restart_on_role_change {
                    OnRoleChange::Restart
                } else {
                    OnRoleChange::Signal(args.primary_signal)
                },
                ready_after: Duration::from_secs(args.ready_after),
                max_restarts: args.max_restarts,
                restart_window: Duration::from_secs(args.restart_window),
                role_dir,
            }),
            Err(e) => return fail(1, &format!("cannot create the role file directory: {e}")),
        },
        None => None,
    };
    init_logging();
    if let Some(addr) = args.metrics_addr {
        if let Err(e) = prometheus::serve(addr, &id) {
            return fail(1, &e);
        }
    }
    let store = tokio::select! {
        store = reach(&args.etcd, &options, Patience::Announced(args.wait_for_etcd.0)) => match store {
            Ok(store) => store,
            Err(e) => return fail(1, &e),
        },
        name = signals.next() => {
            eprintln!("apportion member: {name} before joining; nothing to leave");
            return ExitCode::SUCCESS;
        }
    };
    let mut config = MemberConfig::json(&args.prefix, &args.zone, &suffix, args.item_limit);
    config.lease_ttl = Duration::from_secs(u64::try_from(args.lease_ttl).unwrap_or(0));
    let start = Member::start(store, JsonDecoder, config);
    tokio::pin!(start);
    let mut stopping = None;
    let started = loop {
        tokio::select! {
            started = &mut start => break started,
            name = signals.next() => {
                if stopping.is_some() {
                    return fail(1, &format!("{name} again: stopped while starting"));
                }
                eprintln!("apportion member: {name} while starting: leaving as soon as the start is over (send it again to stop at once)");
                stopping = Some(name);
            }
        }
    };
    let member = match started {
        Ok(member) => member,
        Err(e) => return fail(1, &e.to_string()),
    };
    let printer = Printer {
        json: args.format.json(),
    };
    printer.print(&Line::Joined {
        member: id.as_str(),
        prefix: &args.prefix,
        lease: member.lease().id,
        ttl: args.lease_ttl,
    });
    if stopping.is_some() {
        return match member.leave().await {
            Ok(()) => {
                printer.print(&Line::Left);
                ExitCode::SUCCESS
            }
            Err(e) => fail(1, &format!("cannot leave: {e}")),
        };
    }
    let serving = Serving::new(member, exec, printer, signals, !args.no_rejoin);
    let stop = Stop {
        on_signal: args.on_sigterm,
        timeout: args.drain_timeout,
        grace: args.restart_grace,
    };
    match serving.run(stop).await {
        Ending::Drained | Ending::LeftToRestart => ExitCode::SUCCESS,
        Ending::Gone => {
            eprintln!(
                "apportion member: the lease ended while stopping; nothing held, nothing to leave"
            );
            ExitCode::SUCCESS
        }
        Ending::Abandoned if stop.on_signal == OnSignal::Restart => fail(
            1,
            "left to restart before the hand-over finished (second signal)",
        ),
        Ending::Abandoned => fail(1, "left before draining finished (second signal)"),
        Ending::TimedOut { held } if stop.on_signal == OnSignal::Restart => fail(
            1,
            &format!(
                "the hand-over before the restart did not finish within {}: left holding {held} item{}; items short of min_ready are refilled at once",
                args.drain_timeout,
                if held == 1 { "" } else { "s" }
            ),
        ),
        Ending::TimedOut { held } => fail(
            1,
            &format!(
                "the drain did not finish within {}: left holding {held} item{}, dropped without another copy ready",
                args.drain_timeout,
                if held == 1 { "" } else { "s" }
            ),
        ),
        Ending::Failed(reason) => fail(1, &reason),
    }
}

/// Prints `error: MESSAGE` on stderr, the one error style of every command, and returns
/// the exit code.
fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}

/// Library warnings (fencing, retries) on stderr; `RUST_LOG` chooses more. Colours only
/// on a terminal and without `$NO_COLOR`: escape codes would garble a log file or journal.
fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let colours = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colours)
        .try_init();
}

/// The host name, with every character an id may not hold replaced by `-`: stable across
/// restarts, so a member that comes back on its host is the member that left (a random
/// part would make every restart a new member, whose items all move). Two members on one
/// host in one zone need `--suffix`: the second is refused with a message saying so.
fn default_suffix() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let host = if host.is_empty() { "member" } else { &host };
    host.chars()
        .map(|c| if allowed_in_id(c) { c } else { '-' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_suffix_is_a_valid_id_part() {
        let suffix = default_suffix();
        assert!(MemberId::new("zone", &suffix).is_ok(), "{suffix}");
    }

    #[test]
    fn the_default_suffix_survives_a_restart() {
        assert_eq!(default_suffix(), default_suffix());
    }
}
