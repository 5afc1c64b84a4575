//! `apportion status`: the allocation as tables (or one JSON document), once or live.

mod report;

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use apportion_core::keys::Prefix;
use apportion_store::Store;
use clap::Args;
use tokio::time::Instant;

use crate::connect::Target;
use crate::error::{CliError, Result};
use crate::output::{write_json, write_json_line};
use crate::view::{self, View};
use report::Report;

/// The shortest time between two redraws of the live view, so a burst of changes does not
/// make the terminal flicker or the process spin.
const MIN_REDRAW: Duration = Duration::from_millis(200);

/// Clears the terminal and moves the cursor home (ANSI), before each redraw.
const CLEAR_SCREEN: &str = "\x1b[2J\x1b[H";

/// Flags of `apportion status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    target: Target,
    /// Print one JSON document instead of tables (with --watch: one document per line).
    #[arg(long)]
    json: bool,
    /// Keep running and redraw as the allocation changes; Ctrl-C quits.
    #[arg(long)]
    watch: bool,
}

impl StatusArgs {
    /// Runs the command against etcd, writing to stdout.
    pub async fn run(self) -> Result<()> {
        let store = self.target.connect().await?;
        let mut out = std::io::stdout().lock();
        if self.watch {
            let ctrl_c = async {
                // Without a signal handler the process would die on Ctrl-C anyway; either
                // way it ends, so a failure to install one needs no report.
                let _ = tokio::signal::ctrl_c().await;
            };
            watch(store, &self.target.prefix, self.json, &mut out, ctrl_c).await
        } else {
            once(&store, &self.target.prefix, self.json, &mut out).await
        }
    }
}

/// Reads the deployment once and writes its report.
pub async fn once<S: Store>(
    store: &S,
    prefix: &Prefix,
    json: bool,
    out: &mut impl Write,
) -> Result<()> {
    let view = View::read(store, prefix).await?;
    let report = Report::new(prefix.as_str(), &view);
    if json {
        write_json(out, &report)
    } else {
        report.write_text(out)
    }
}

/// Follows the deployment and writes a fresh report after each change (at most every
/// [`MIN_REDRAW`]) until `stop` resolves. Text reports clear the screen first; JSON
/// reports are written one per line, for a script to read as a stream.
pub async fn watch<S: Store>(
    store: S,
    prefix: &Prefix,
    json: bool,
    out: &mut impl Write,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let space = view::follow(store, prefix).await?;
    let mut changes = space.subscribe();
    tokio::pin!(stop);
    loop {
        changes.borrow_and_update();
        let drawn_at = Instant::now();
        let report = Report::new(prefix.as_str(), &View::of_keyspace(&space)?);
        if json {
            write_json_line(out, &report)?;
        } else {
            let mut frame = CLEAR_SCREEN.as_bytes().to_vec();
            report.write_text(&mut frame)?;
            writeln!(frame, "\nwatching for changes; Ctrl-C quits")?;
            out.write_all(&frame)?;
        }
        out.flush()?;
        tokio::select! {
            () = &mut stop => return Ok(()),
            changed = changes.changed() => changed.map_err(|_| {
                CliError::failed("the live view of etcd stopped unexpectedly")
            })?,
        }
        tokio::select! {
            () = &mut stop => return Ok(()),
            () = tokio::time::sleep_until(drawn_at + MIN_REDRAW) => {}
        }
    }
}
