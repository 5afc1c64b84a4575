//! `apportion items show ID`: one item described for an operator, in the manner of
//! `kubectl describe`: its value, its copies with their members, zones, status and the time
//! left on each member's lease, and why it is short of copies or not ready if it is.
//!
//! The copies and the reasons are the library's ([`apportion::report::item_copies`],
//! [`apportion::report::shortfall`]): the reasons are derived from the same state the leader
//! plans from, so they say what the allocator is waiting for, not a guess from the counts
//! alone.

use std::io::Write;

use apportion::cluster::ClusterView;
use apportion::report::{self, HeldCopy};
use apportion_core::keys::{ItemId, Prefix};
use apportion_core::values::{ItemValue, JsonDecoder};
use apportion_store::Store;
use clap::Args;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::admin::parse_item;
use crate::connect::Target;
use crate::error::{CliError, Result};
use crate::output::{write_json, Align, FormatArgs, Table};
use crate::summary::{ttl_text, yes_no};

/// Flags of `apportion items show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    target: Target,
    /// The item id.
    #[arg(value_parser = parse_item)]
    id: ItemId,
    /// `-o json` prints one JSON document instead of text.
    #[command(flatten)]
    format: FormatArgs,
}

impl ShowArgs {
    /// Runs the command against etcd, writing to `out`.
    pub async fn run(self, out: &mut impl Write) -> Result<()> {
        let store = self.target.connect().await?;
        show(
            &store,
            &self.target.prefix,
            &self.id,
            self.format.json(),
            out,
        )
        .await
    }
}

/// Everything `items show` says about one item; the JSON form is this, serialized.
#[derive(Debug, Serialize)]
pub struct Description {
    /// The item id.
    pub id: String,
    /// Its key in etcd.
    pub key: String,
    /// The store revision the description reflects.
    pub revision: i64,
    /// How many copies it asks for.
    pub replication: u16,
    /// Whether it has one owner at a time.
    pub exclusive: bool,
    /// The fields of its value apportion does not read (the application's own).
    pub extra: Map<String, Value>,
    /// How many copies the allocator places: the replication, at most 1 if exclusive.
    pub wanted: u16,
    /// Its assigned copies in slot order, with their members' leases.
    pub copies: Vec<HeldCopy>,
    /// Why it is short of copies or has copies not ready; empty when it is complete.
    pub reasons: Vec<String>,
}

/// Reads the deployment once and describes item `id`. An item that does not exist fails
/// (exit 1), as does one whose key holds a value the cluster ignores: the error names the
/// key and the reason, which is what there is to fix.
pub async fn show<S: Store>(
    store: &S,
    prefix: &Prefix,
    id: &ItemId,
    json: bool,
    out: &mut impl Write,
) -> Result<()> {
    let view = ClusterView::read(store, prefix.as_str(), JsonDecoder).await?;
    let state = &view.state;
    let key = prefix.item_key(id);
    let Some(index) = state.item_index(id) else {
        return Err(match view.rejected.iter().find(|r| r.key == key) {
            Some(rejected) => CliError::failed(format!(
                "item key {key} is ignored by the cluster: {}; replace it with \
                 `apportion items rm {id}` then `items put`",
                rejected.reason
            )),
            None => CliError::failed(format!("no item {id} under {prefix}")),
        });
    };
    let times = report::lease_times(store, report::item_leases(state, index)).await?;
    let item = &state.items()[index];
    let description = Description {
        id: id.to_string(),
        key,
        revision: view.revision,
        replication: item.value.replication,
        exclusive: item.value.exclusive,
        extra: item.value.extra.clone(),
        wanted: item.value.copies_wanted(),
        copies: report::item_copies(state, index, &times),
        reasons: report::shortfall(state, index)
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    if json {
        write_json(out, &description)
    } else {
        description.write_text(out)
    }
}

impl Description {
    /// Writes the description as text: one `field  value` line each, the copies as a
    /// table, then the reasons as a list.
    pub fn write_text(&self, out: &mut impl Write) -> Result<()> {
        let ready = self.copies.iter().filter(|c| c.copy.ready).count();
        let exclusive = if self.exclusive {
            "yes (one owner at a time)"
        } else {
            "no"
        };
        let mut fields = vec![
            ("item", self.id.clone()),
            ("key", self.key.clone()),
            ("revision", self.revision.to_string()),
            ("replication", self.replication.to_string()),
            ("exclusive", exclusive.to_owned()),
        ];
        if !self.extra.is_empty() {
            fields.push(("extra", Value::Object(self.extra.clone()).to_string()));
        }
        fields.push((
            "copies",
            format!(
                "{} of {} placed, {ready} ready",
                self.copies.len(),
                self.wanted
            ),
        ));
        for (name, value) in fields {
            writeln!(out, "{name:<13}{value}")?;
        }
        writeln!(out)?;
        if self.copies.is_empty() {
            writeln!(out, "no copies placed")?;
        } else {
            let mut table = Table::new(&[
                ("SLOT", Align::Right),
                ("MEMBER", Align::Left),
                ("ZONE", Align::Left),
                ("READY", Align::Left),
                ("RELEASING", Align::Left),
                ("LEASE", Align::Left),
            ]);
            for shown in &self.copies {
                let copy = &shown.copy;
                table.row(vec![
                    copy.slot.to_string(),
                    copy.member.clone(),
                    copy.zone.clone(),
                    yes_no(copy.ready),
                    yes_no(copy.releasing),
                    ttl_text(&shown.lease),
                ]);
            }
            table.write(out)?;
        }
        writeln!(out)?;
        if self.reasons.is_empty() {
            writeln!(out, "all copies placed and ready")?;
        } else {
            writeln!(out, "why it is short of copies or not ready:")?;
            for reason in &self.reasons {
                writeln!(out, "  - {reason}")?;
            }
        }
        Ok(())
    }
}
