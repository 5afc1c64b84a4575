//! The `apportion` command-line tool.
//!
//! `demo` tells the library's story on a simulated cluster in this process; `member` runs
//! one member of a real cluster on etcd. The admin commands (`items`, `members`, `drain`,
//! `status`, `events`) talk to the deployment's etcd through the `Store` trait; `plan` and
//! `bench` run the solver offline (and `bench converge` the whole runtime), the benchmarks
//! through their engines in `apportion_bench`. Every failure
//! ends in one line on stderr and a non-zero exit code: 2 for a wrong command line or
//! input, 1 for a command that could not be carried out (or, for `demo`, a broken
//! invariant).

mod admin;
mod bench;
mod clock;
mod connect;
mod converge;
mod demo;
mod duration;
mod error;
mod events;
mod member_cmd;
mod output;
mod plan;
mod soak;
mod status;
mod summary;
mod tied;

#[cfg(test)]
#[path = "../tests/support/cluster.rs"]
mod cluster;

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, Subcommand};

use admin::drain::{DrainArgs, UndrainArgs};
use admin::items::ItemsCommand;
use admin::members::MembersCommand;
use admin::settings::{ConfigCommand, FreezeArgs, UnfreezeArgs};
use error::{CliError, Result};
use status::StatusArgs;

/// Assigns items to the members of a service, coordinated through etcd.
#[derive(Parser)]
#[command(name = "apportion", version, arg_required_else_help = true)]
struct Cli {
    // The chosen subcommand (a doc comment here would become clap help text).
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
enum Command {
    /// Create, change, remove and list the items to place.
    #[command(subcommand)]
    Items(ItemsCommand),
    /// List the registered members.
    #[command(subcommand)]
    Members(MembersCommand),
    /// Mark a member exiting, so the leader moves its copies away.
    Drain(DrainArgs),
    /// Clear a member's exiting mark, so it takes copies again.
    Undrain(UndrainArgs),
    /// Show or change the cluster settings (min_ready, max_moves_in_flight).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Hold back every move for a while (maintenance): only items below min_ready ready
    /// copies are repaired. It ends by itself.
    Freeze(FreezeArgs),
    /// End a freeze now.
    Unfreeze(UnfreezeArgs),
    /// Show the allocation: leader, zones, members, items needing attention.
    Status(StatusArgs),
    /// Follow the cluster and print each change of placement as it happens: copies added,
    /// removed, moved or turning ready, members and items coming and going.
    Events(events::EventsArgs),
    /// Solve a problem given as JSON offline and print the plan as JSON.
    Plan(plan::PlanArgs),
    /// Run a benchmark.
    Bench(bench::BenchArgs),
    /// Run a simulated cluster in this process and watch it allocate, lose members and a
    /// zone, restart, drain and grow, checking the invariants after every phase.
    Demo(demo::DemoArgs),
    /// Join a cluster on etcd as a member: print its events, optionally run a command for
    /// every item it holds; SIGTERM or SIGINT drains it.
    Member(member_cmd::MemberArgs),
    /// Print a shell completion script: `source <(apportion completion bash)`, or save it
    /// where the shell loads completions from.
    Completion {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// Runs the chosen command; `demo` and `member` decide their own exit code.
    async fn run(self) -> ExitCode {
        let result = match self {
            Command::Demo(args) => return demo::run(args).await,
            Command::Member(args) => return member_cmd::run(args).await,
            Command::Items(command) => command.run().await,
            Command::Members(command) => command.run().await,
            Command::Drain(args) => args.run().await,
            Command::Undrain(args) => args.run().await,
            Command::Config(command) => command.run().await,
            Command::Freeze(args) => args.run().await,
            Command::Unfreeze(args) => args.run().await,
            Command::Status(args) => args.run().await,
            Command::Events(args) => args.run().await,
            Command::Plan(args) => plan::run(&args).map_err(CliError::Input),
            Command::Bench(args) => bench::run(&args).await,
            Command::Completion { shell } => completion(shell),
        };
        report(result)
    }
}

/// Writes the completion script for `shell` to stdout, generated from the same command
/// definition the parser uses, so it lists every subcommand and flag there is.
fn completion(shell: clap_complete::Shell) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "apportion", &mut script);
    std::io::Write::write_all(&mut std::io::stdout().lock(), &script)?;
    Ok(())
}

/// Turns a command's outcome into its exit code, printing the error line if any.
fn report(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) | Err(CliError::OutputClosed) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::try_parse().unwrap_or_else(|e| exit_on_parse_error(e));
    if !matches!(cli.command, Command::Member(_)) {
        end_quietly_when_output_closes();
    }
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(cli.command.run()),
        Err(e) => report(Err(CliError::failed(format!(
            "cannot start the async runtime: {e}"
        )))),
    }
}

/// Resolves on Ctrl-C (SIGINT): how the commands that follow the cluster (`status --watch`,
/// `events`) learn to stop and exit 0. Without a handler Ctrl-C would end the process
/// anyway, so a failure to install one needs no report: either way the command ends.
pub(crate) async fn interrupted() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Makes a closed stdout end the command at once and quietly, as it does `cat` or `ls`
/// (`apportion plan --schema | head -1`), instead of a panic on the next print: Rust
/// ignores SIGPIPE by default. Not for `member`, which prints through its own printer,
/// keeps serving when its log reader goes away, and must never die without draining.
fn end_quietly_when_output_closes() {
    // SAFETY: signal(2) with SIG_DFL installs no handler; it runs before any thread that
    // could race it starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Reports a command line clap refused. A bad value (an id, a number, a URL) is one line
/// naming the argument, the value (escaped, so a newline in it cannot cut the line) and
/// the reason; other mistakes keep clap's usage hint. Help and version requests print and
/// exit 0.
fn exit_on_parse_error(e: clap::Error) -> ! {
    match e.kind() {
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            eprintln!("{}", bad_value_line(&e));
            std::process::exit(2);
        }
        _ => e.exit(),
    }
}

/// The one line for a refused value: `error: invalid value 'VALUE' for 'ARG': REASON`, from
/// the error's parts; clap's own rendering if it lacks them.
fn bad_value_line(e: &clap::Error) -> String {
    let text = |kind| match e.get(kind) {
        Some(ContextValue::String(text)) => Some(text.as_str()),
        _ => None,
    };
    let (Some(arg), Some(value)) = (
        text(ContextKind::InvalidArg),
        text(ContextKind::InvalidValue),
    ) else {
        let rendered = e.render().to_string();
        return rendered
            .lines()
            .next()
            .unwrap_or("error: invalid value")
            .to_owned();
    };
    let reason = match (std::error::Error::source(e), e.get(ContextKind::ValidValue)) {
        (Some(source), _) => format!(": {source}"),
        (None, Some(ContextValue::Strings(valid))) => {
            format!(" (possible values: {})", valid.join(", "))
        }
        _ => String::new(),
    };
    let value = value.escape_debug();
    format!("error: invalid value '{value}' for '{arg}'{reason}")
}
