//! `apportion members list`: the registered members with their load.

use std::io::Write;

use apportion::cluster::ClusterView;
use apportion::report;
use apportion_core::keys::Prefix;
use apportion_core::values::JsonDecoder;
use apportion_store::Store;
use clap::{Args, Subcommand};

use crate::admin::warn_if_empty;
use crate::connect::Target;
use crate::error::Result;
use crate::output::{write_rows, FormatArgs};
use crate::summary;

/// The `members` subcommands.
#[derive(Subcommand, Debug)]
pub enum MembersCommand {
    /// List the members: zone, limit, exiting flag, load, fair share, primaries, lease and
    /// the time left on it.
    List(ListArgs),
}

/// Flags of `apportion members list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    target: Target,
    /// `-o json` prints a JSON array instead of a table.
    #[command(flatten)]
    format: FormatArgs,
}

impl MembersCommand {
    /// Runs the subcommand against etcd, writing to stdout.
    pub async fn run(self) -> Result<()> {
        let MembersCommand::List(args) = self;
        let store = args.target.connect().await?;
        list(
            &store,
            &args.target.prefix,
            args.format.json(),
            &mut std::io::stdout().lock(),
        )
        .await
    }
}

/// Lists every member as a table, or as a JSON array of member rows. A prefix with nothing
/// under it is also said on stderr, as it is most likely mistyped.
pub async fn list<S: Store>(
    store: &S,
    prefix: &Prefix,
    json: bool,
    out: &mut impl Write,
) -> Result<()> {
    let view = ClusterView::read(store, prefix.as_str(), JsonDecoder).await?;
    let times = report::lease_times(store, report::member_leases(&view.state)).await?;
    let rows = report::member_rows(&view.state, &times);
    let none = format!("no members under {prefix}");
    write_rows(out, json, &rows, none, summary::member_table)?;
    warn_if_empty(&view, prefix);
    Ok(())
}
