//! `apportion items put | rm | list | show`: editing and inspecting the items to place.
//!
//! The writes are the library's [`Admin`] edits: compare-and-swap on the key's mod
//! revision, so an edit never overwrites a change made by someone else between the read and
//! the write; it re-reads and tries again.

use std::io::Write;

use apportion::admin::{Admin, AdminError};
use apportion::cluster::ClusterView;
use apportion::report;
use apportion_core::keys::{ItemId, Prefix};
use apportion_core::values::JsonDecoder;
use apportion_store::Store;
use clap::Subcommand;

use crate::admin::show::ShowArgs;
use crate::admin::{parse_item, warn_if_empty};
use crate::connect::Target;
use crate::error::{CliError, Result};
use crate::output::{write_rows, FormatArgs};
use crate::summary;

/// The `items` subcommands.
#[derive(Subcommand, Debug)]
pub enum ItemsCommand {
    /// Create an item or change its replication (other fields of its value, exclusivity
    /// included, are kept unless named).
    Put {
        #[command(flatten)]
        target: Target,
        /// The item id (no '/', no characters at or below '#', not '.' or '..', at most 256
        /// bytes); one starting with '-' goes after `--`: `put --replication 1 -- -x`.
        #[arg(value_parser = parse_item)]
        id: ItemId,
        /// How many copies to place (0 parks the item; at most 255).
        #[arg(long, value_name = "N", value_parser = parse_replication)]
        replication: u16,
        /// At most one member serves the item at a time; it is handed over
        /// break-before-make. Its replication is then 0 or 1.
        #[arg(long, conflicts_with = "no_exclusive")]
        exclusive: bool,
        /// Make an exclusive item an ordinary one (that may have several replicas).
        #[arg(long)]
        no_exclusive: bool,
    },
    /// Delete an item; its copies are then removed by the leader.
    Rm {
        #[command(flatten)]
        target: Target,
        /// The item id; one starting with '-' goes after `--`: `rm -- -x`.
        #[arg(value_parser = parse_item)]
        id: ItemId,
    },
    /// List the items with their placed and consistent copies, and the item keys the
    /// cluster ignores (a value that does not decode) with the reason.
    List {
        #[command(flatten)]
        target: Target,
        /// `-o json` prints a JSON array; `-o wide` adds the members holding each item,
        /// in slot order, the primary marked `*`.
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Describe one item: its value, its copies with their members and leases, and why it
    /// is short of copies or not ready if it is.
    Show(ShowArgs),
}

/// Accepts the replications the members accept, so that an item they would skip as a bad
/// value is refused here, where someone reads the error.
fn parse_replication(text: &str) -> std::result::Result<u16, String> {
    let max = apportion_core::values::MAX_REPLICATION;
    match text.parse::<u16>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!("`{text}` is not a replication from 0 to {max}")),
    }
}

impl ItemsCommand {
    /// Runs the subcommand against etcd, writing to stdout.
    pub async fn run(self) -> Result<()> {
        let mut out = std::io::stdout().lock();
        match self {
            ItemsCommand::Put {
                target,
                id,
                replication,
                exclusive,
                no_exclusive,
            } => {
                let exclusive = match (exclusive, no_exclusive) {
                    (true, _) => Some(true),
                    (_, true) => Some(false),
                    _ => None,
                };
                let store = target.connect().await?;
                put(
                    &store,
                    &target.prefix,
                    &id,
                    replication,
                    exclusive,
                    &mut out,
                )
                .await
            }
            ItemsCommand::Rm { target, id } => {
                let store = target.connect().await?;
                remove(&store, &target.prefix, &id, &mut out).await
            }
            ItemsCommand::List { target, format } => {
                let store = target.connect().await?;
                list(
                    &store,
                    &target.prefix,
                    format.json(),
                    format.wide(),
                    &mut out,
                )
                .await
            }
            ItemsCommand::Show(args) => args.run(&mut out).await,
        }
    }
}

/// Creates the item or updates its replication, and its exclusive flag when `exclusive`
/// names it, keeping every other field of an existing value. An exclusive item has one
/// owner at a time, so a replication above 1 for one is refused. An existing value that
/// does not decode is left alone: the command fails and says how to replace it.
pub async fn put<S: Store>(
    store: &S,
    prefix: &Prefix,
    id: &ItemId,
    replication: u16,
    exclusive: Option<bool>,
    out: &mut impl Write,
) -> Result<()> {
    if exclusive == Some(true) && replication > 1 {
        return Err(CliError::Input(format!(
            "an exclusive item has one owner at a time: --replication {replication} cannot go \
             with --exclusive (use 0 or 1)"
        )));
    }
    let admin = Admin::new(store.clone(), prefix.clone());
    let edit = admin
        .put_item(id, replication, exclusive)
        .await
        .map_err(|e| match e {
            AdminError::Undecodable { source, .. } => CliError::failed(format!(
                "item `{id}` has a value that does not decode ({source}); \
                 replace it with `apportion items rm {id}` then `items put`"
            )),
            AdminError::ExclusiveReplication { .. } => CliError::Input(format!(
                "item `{id}` is exclusive (one owner at a time), so its replication is 0 or 1; \
                 add --no-exclusive to make it an ordinary item with {replication} replicas"
            )),
            e => e.into(),
        })?;
    let now_exclusive = edit.after.exclusive;
    match edit.before {
        None if now_exclusive => writeln!(
            out,
            "created item {id} (replication {replication}, exclusive)"
        )?,
        None => writeln!(out, "created item {id} (replication {replication})")?,
        Some(before) => {
            let flag = match (before.exclusive, now_exclusive) {
                (false, true) => ", now exclusive",
                (true, false) => ", no longer exclusive",
                _ => "",
            };
            let old = before.replication;
            writeln!(
                out,
                "updated item {id} (replication {old} -> {replication}{flag})"
            )?
        }
    }
    Ok(())
}

/// Deletes the item; fails if it does not exist.
pub async fn remove<S: Store>(
    store: &S,
    prefix: &Prefix,
    id: &ItemId,
    out: &mut impl Write,
) -> Result<()> {
    let admin = Admin::new(store.clone(), prefix.clone());
    admin.remove_item(id).await.map_err(|e| match e {
        AdminError::ItemMissing { .. } => {
            CliError::failed(format!("item `{id}` does not exist under {prefix}"))
        }
        e => e.into(),
    })?;
    writeln!(out, "removed item {id}")?;
    Ok(())
}

/// Lists every item key as a table (with `wide`, the members holding each item), or as a
/// JSON array of item rows; keys the cluster ignores are rows with the reason. A prefix
/// with nothing under it is also said on stderr, as it is most likely mistyped.
pub async fn list<S: Store>(
    store: &S,
    prefix: &Prefix,
    json: bool,
    wide: bool,
    out: &mut impl Write,
) -> Result<()> {
    let view = ClusterView::read(store, prefix.as_str(), JsonDecoder).await?;
    let rows = report::listed_items(&view, prefix);
    let none = format!("no items under {prefix}");
    write_rows(out, json, &rows, none, |rows| {
        summary::listed_item_table(rows, wide)
    })?;
    warn_if_empty(&view, prefix);
    Ok(())
}

#[cfg(test)]
mod tests {
    use apportion_store::{KeyRange, MemoryStore};

    use super::*;

    fn prefix() -> Prefix {
        Prefix::new("/svc").unwrap()
    }

    fn id(text: &str) -> ItemId {
        ItemId::new(text).unwrap()
    }

    async fn value(store: &MemoryStore, key: &str) -> Option<serde_json::Value> {
        let read = store.range(KeyRange::key(key)).await.unwrap();
        read.kvs
            .first()
            .map(|kv| serde_json::from_slice(&kv.value).unwrap())
    }

    #[tokio::test]
    async fn put_creates_then_updates_keeping_fields_it_does_not_know() {
        let store = MemoryStore::new();
        let mut out = Vec::new();
        put(&store, &prefix(), &id("orders"), 1, Some(true), &mut out)
            .await
            .unwrap();
        assert_eq!(
            value(&store, "/svc/items/orders").await.unwrap(),
            serde_json::json!({"replication": 1, "exclusive": true})
        );
        store
            .put(
                "/svc/items/orders",
                r#"{"replication": 1, "exclusive": true, "owner": "team-a"}"#,
                None,
            )
            .await
            .unwrap();
        put(&store, &prefix(), &id("orders"), 0, None, &mut out)
            .await
            .unwrap();
        assert_eq!(
            value(&store, "/svc/items/orders").await.unwrap(),
            serde_json::json!({"replication": 0, "exclusive": true, "owner": "team-a"})
        );
        put(&store, &prefix(), &id("orders"), 3, Some(false), &mut out)
            .await
            .unwrap();
        assert_eq!(
            value(&store, "/svc/items/orders").await.unwrap(),
            serde_json::json!({"replication": 3, "exclusive": false, "owner": "team-a"})
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "created item orders (replication 1, exclusive)\n\
             updated item orders (replication 1 -> 0)\n\
             updated item orders (replication 0 -> 3, no longer exclusive)\n"
        );
    }

    #[tokio::test]
    async fn put_leaves_a_value_that_does_not_decode_alone() {
        let store = MemoryStore::new();
        store
            .put("/svc/items/orders", "{garbage", None)
            .await
            .unwrap();
        let error = put(&store, &prefix(), &id("orders"), 2, None, &mut Vec::new())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("item `orders` has a value that does not decode"),
            "{error}"
        );
        assert!(error.contains("apportion items rm orders"), "{error}");
        let read = store
            .range(KeyRange::key("/svc/items/orders"))
            .await
            .unwrap();
        assert_eq!(read.kvs[0].value, b"{garbage");
    }

    #[tokio::test]
    async fn rm_deletes_an_item_and_refuses_one_that_does_not_exist() {
        let store = MemoryStore::new();
        put(&store, &prefix(), &id("orders"), 2, None, &mut Vec::new())
            .await
            .unwrap();
        let mut out = Vec::new();
        remove(&store, &prefix(), &id("orders"), &mut out)
            .await
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "removed item orders\n");
        assert_eq!(value(&store, "/svc/items/orders").await, None);
        let error = remove(&store, &prefix(), &id("orders"), &mut Vec::new())
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "item `orders` does not exist under /svc");
    }

    #[tokio::test]
    async fn list_shows_assigned_and_consistent_copies() {
        let store = MemoryStore::new();
        crate::cluster::write(&store).await;
        let prefix = Prefix::new(crate::cluster::PREFIX).unwrap();
        let mut out = Vec::new();
        list(&store, &prefix, false, false, &mut out).await.unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ITEM      REPLICATION  EXCLUSIVE  ASSIGNED  CONSISTENT\n\
             orders              2  no                2           1\n\
             parked              0  no                0           0\n\
             payments            3  yes               2           2\n"
        );
        let mut out = Vec::new();
        list(
            &store,
            &Prefix::new("/empty").unwrap(),
            false,
            false,
            &mut out,
        )
        .await
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "no items under /empty\n");
    }
}
