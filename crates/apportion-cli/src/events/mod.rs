//! `apportion events`: follows the cluster and prints one line per change of placement, as
//! it happens, so an operator can see where items went and when (`status` only shows where
//! they are now). What changed is the library's [`apportion::report::changes`]; this
//! command follows the cluster and words each change.

use std::future::Future;
use std::io::Write;

use apportion::cluster::ClusterView;
use apportion::core::settings::ClusterSettings;
use apportion::report::{changes, Change};
use apportion_core::keys::Prefix;
use apportion_core::values::JsonDecoder;
use apportion_store::{Revision, Store};
use clap::Args;
use serde_json::{json, Value};

use crate::admin::settings::{shown, until_text};
use crate::connect::Target;
use crate::error::{CliError, Result};
use crate::output::plural;
use crate::output::FormatArgs;

/// Flags of `apportion events`.
#[derive(Args, Debug)]
pub struct EventsArgs {
    #[command(flatten)]
    target: Target,
    /// `-o json` prints one JSON object per line (`time`, `revision`, `kind` and the
    /// change's fields) instead of text.
    #[command(flatten)]
    format: FormatArgs,
}

impl EventsArgs {
    /// Runs the command against etcd, writing to stdout until Ctrl-C.
    pub async fn run(self) -> Result<()> {
        let store = self.target.connect().await?;
        let mut out = std::io::stdout().lock();
        follow(
            store,
            &self.target.prefix,
            self.format.json(),
            &mut out,
            crate::interrupted(),
        )
        .await
    }
}

/// Follows the cluster under `prefix` and writes the changes between each state the view
/// reports and the one before, until `stop` resolves. The state found at the start is the
/// baseline and prints nothing: the command tells what happens from now on.
pub async fn follow<S: Store>(
    store: S,
    prefix: &Prefix,
    json: bool,
    out: &mut impl Write,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let view = ClusterView::start(store, prefix.as_str(), JsonDecoder).await?;
    let mut states = view.subscribe();
    let mut last = states.current();
    tokio::pin!(stop);
    loop {
        let next = tokio::select! {
            () = &mut stop => return Ok(()),
            changed = states.changed() => changed.ok_or_else(|| {
                CliError::failed("the live view of etcd stopped unexpectedly")
            })?,
        };
        let time = crate::clock::now();
        for change in changes(&last.state, &next.state) {
            if json {
                writeln!(out, "{}", to_json(&change, &time, next.revision))?;
            } else {
                writeln!(out, "{time}  {}", to_text(&change))?;
            }
        }
        out.flush()?;
        last = next;
    }
}

/// `slot N`, marked `(primary)` for slot 0, so a text line says which copy serves.
fn slot_text(slot: apportion_core::keys::Slot) -> String {
    if slot.is_primary() {
        "slot 0 (primary)".to_owned()
    } else {
        format!("slot {}", slot.0)
    }
}

/// The settings in one line: the floor, the throttle and the freeze.
fn settings_text(settings: &ClusterSettings) -> String {
    let throttle = settings
        .max_moves_in_flight
        .map_or("none".to_owned(), |n| n.to_string());
    let freeze = match &settings.freeze {
        Some(f) => format!(
            "frozen until {} by {}: {}",
            until_text(f.until_unix_secs),
            f.by,
            f.reason
        ),
        None => "not frozen".to_owned(),
    };
    format!(
        "min_ready {}, max_moves_in_flight {throttle}, {freeze}",
        settings.min_ready
    )
}

/// The change as a person reads it: a verb padded to one width, then what it applies to.
fn to_text(change: &Change) -> String {
    let (verb, what) = match change {
        Change::SettingsChanged { settings } => ("config", settings_text(settings)),
        Change::ItemCreated { item, replication } => {
            ("created", format!("{item}  replication {replication}"))
        }
        Change::ItemRemoved { item } => ("deleted", format!("{item}")),
        Change::ReplicationChanged { item, from, to } => {
            ("resized", format!("{item}  replication {from} -> {to}"))
        }
        Change::MemberJoined { member } => ("joined", format!("{member}")),
        Change::MemberLeft { member } => ("left", format!("{member}")),
        Change::MemberExiting { member } => ("exiting", format!("{member}")),
        Change::MemberRestarting { member } => ("restart", format!("{member}")),
        Change::AwayRecorded {
            member,
            reason,
            items,
            until_unix_secs,
        } => (
            "away",
            format!(
                "{member}  {reason}, {} wait until {}",
                plural(*items, "item"),
                until_text(*until_unix_secs)
            ),
        ),
        Change::AwayEnded { member } => ("back", format!("{member}  away record ended")),
        Change::Added { copy } => (
            "added",
            format!("{}  on {} {}", copy.item, copy.member, slot_text(copy.slot)),
        ),
        Change::Removed { copy } => (
            "removed",
            format!("{}  on {} {}", copy.item, copy.member, slot_text(copy.slot)),
        ),
        Change::Moved { copy, from } => (
            if copy.slot.is_primary() {
                "primary"
            } else {
                "moved"
            },
            format!(
                "{}  on {} slot {} -> {}",
                copy.item,
                copy.member,
                from.0,
                slot_text(copy.slot)
            ),
        ),
        Change::Ready { copy, ready } => (
            if *ready { "ready" } else { "unready" },
            format!("{}  on {} {}", copy.item, copy.member, slot_text(copy.slot)),
        ),
        Change::ReleaseRequested { copy } => (
            "release",
            format!("{}  on {} {}", copy.item, copy.member, slot_text(copy.slot)),
        ),
    };
    format!("{verb:<7} {what}")
}

/// The change as a program reads it: `time`, `revision` (the etcd revision of the state the
/// change was seen in), `kind` and the change's fields.
fn to_json(change: &Change, time: &str, revision: Revision) -> Value {
    let copy = |kind: &str, copy: &apportion_core::keys::AssignmentKey| {
        json!({"kind": kind, "item": copy.item.as_str(), "member": copy.member.as_str(),
               "slot": copy.slot.0})
    };
    let mut value = match change {
        Change::SettingsChanged { settings } => {
            json!({"kind": "settings_changed", "settings": shown(settings)})
        }
        Change::ItemCreated { item, replication } => {
            json!({"kind": "item_created", "item": item.as_str(), "replication": replication})
        }
        Change::ItemRemoved { item } => json!({"kind": "item_removed", "item": item.as_str()}),
        Change::ReplicationChanged { item, from, to } => json!({
            "kind": "replication_changed", "item": item.as_str(), "from": from, "to": to
        }),
        Change::MemberJoined { member } => {
            json!({"kind": "member_joined", "member": member.as_str()})
        }
        Change::MemberLeft { member } => json!({"kind": "member_left", "member": member.as_str()}),
        Change::MemberExiting { member } => {
            json!({"kind": "member_exiting", "member": member.as_str()})
        }
        Change::MemberRestarting { member } => {
            json!({"kind": "member_restarting", "member": member.as_str()})
        }
        Change::AwayRecorded {
            member,
            reason,
            items,
            until_unix_secs,
        } => json!({
            "kind": "away", "member": member.as_str(), "reason": reason.to_string(),
            "items": items, "until": until_text(*until_unix_secs)
        }),
        Change::AwayEnded { member } => json!({"kind": "away_ended", "member": member.as_str()}),
        Change::Added { copy: key } => copy("added", key),
        Change::Removed { copy: key } => copy("removed", key),
        Change::Moved { copy: key, from } => {
            let kind = if key.slot.is_primary() {
                "promoted"
            } else {
                "moved"
            };
            let mut value = copy(kind, key);
            value["from_slot"] = json!(from.0);
            value
        }
        Change::Ready { copy: key, ready } => copy(if *ready { "ready" } else { "not_ready" }, key),
        Change::ReleaseRequested { copy: key } => copy("release_requested", key),
    };
    value["time"] = json!(time);
    value["revision"] = json!(revision);
    value
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use apportion_store::MemoryStore;

    use super::*;
    use crate::cluster;

    #[test]
    fn a_copy_reads_the_same_in_both_forms() {
        let copy = apportion_core::keys::AssignmentKey::parse("orders#eu#h1#00001").unwrap();
        let change = Change::Added { copy };
        assert_eq!(to_text(&change), "added   orders  on eu#h1 slot 1");
        assert_eq!(
            to_json(&change, "2026-12-01T06:20:01Z", 7).to_string(),
            r#"{"item":"orders","kind":"added","member":"eu#h1","revision":7,"slot":1,"time":"2026-12-01T06:20:01Z"}"#
        );
    }

    #[test]
    fn a_settings_change_reads_as_the_whole_settings() {
        let settings = ClusterSettings {
            min_ready: 2,
            freeze: Some(apportion::core::settings::Freeze {
                until_unix_secs: 100,
                reason: "kernel update".into(),
                by: "ops@h".into(),
            }),
            ..ClusterSettings::default()
        };
        let change = Change::SettingsChanged { settings };
        assert_eq!(
            to_text(&change),
            "config  min_ready 2, max_moves_in_flight none, frozen until \
             1970-01-01T00:01:40Z by ops@h: kernel update"
        );
        let json = to_json(&change, "2026-12-01T06:20:01Z", 7);
        assert_eq!(json["kind"], "settings_changed");
        assert_eq!(json["settings"]["freeze"]["reason"], "kernel update");
        assert_eq!(json["settings"]["min_ready"], 2);
    }

    #[tokio::test]
    async fn the_existing_cluster_prints_nothing_and_changes_print_a_line_each() {
        let store = MemoryStore::new();
        cluster::write(&store).await;
        let prefix = Prefix::new(cluster::PREFIX).unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let admin = apportion::admin::Admin::new(store.clone(), prefix.clone());
        let driver = async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let new = apportion_core::keys::ItemId::new("new").unwrap();
            admin.put_item(&new, 1, None).await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            stop_tx.send(()).unwrap();
        };
        let stop = async {
            let _ = stop_rx.await;
        };
        let mut out = Vec::new();
        let (followed, ()) = tokio::join!(follow(store, &prefix, true, &mut out, stop), driver);
        followed.unwrap();
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["kind"], "item_created");
        assert_eq!(lines[0]["item"], "new");
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    }
}
