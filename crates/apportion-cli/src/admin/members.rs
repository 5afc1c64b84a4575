//! `apportion members list`: the registered members with their load.

use std::io::Write;

use apportion_core::keys::Prefix;
use apportion_store::Store;
use clap::{Args, Subcommand};

use crate::connect::Target;
use crate::error::Result;
use crate::output::write_json;
use crate::summary;
use crate::view::View;

/// The `members` subcommands.
#[derive(Subcommand, Debug)]
pub enum MembersCommand {
    /// List the members: zone, limit, exiting flag, load, fair share, primaries, lease.
    List(ListArgs),
}

/// Flags of `apportion members list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    target: Target,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

impl MembersCommand {
    /// Runs the subcommand against etcd, writing to stdout.
    pub async fn run(self) -> Result<()> {
        let MembersCommand::List(args) = self;
        let store = args.target.connect().await?;
        list(
            &store,
            &args.target.prefix,
            args.json,
            &mut std::io::stdout().lock(),
        )
        .await
    }
}

/// Lists every member as a table, or as a JSON array of member rows.
pub async fn list<S: Store>(
    store: &S,
    prefix: &Prefix,
    json: bool,
    out: &mut impl Write,
) -> Result<()> {
    let view = View::read(store, prefix).await?;
    let rows = summary::member_rows(&view.state);
    if json {
        write_json(out, &rows)
    } else if rows.is_empty() {
        writeln!(out, "no members under {prefix}")?;
        Ok(())
    } else {
        summary::member_table(&rows).write(out)
    }
}
