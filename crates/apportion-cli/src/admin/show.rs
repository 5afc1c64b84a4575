//! `apportion items show ID`: one item described for an operator, in the manner of
//! `kubectl describe`: its value, its copies with their members, zones, status and the time
//! left on each member's lease, and why it is short of copies or not ready if it is.
//!
//! The reasons are derived from the same state the leader plans from ([`shortfall`]), so
//! they say what the allocator is waiting for, not a guess from the counts alone.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;

use apportion::cluster::ClusterView;
use apportion_core::keys::{ItemId, Prefix};
use apportion_core::state::JsonState;
use apportion_core::values::{ItemValue, JsonDecoder};
use apportion_store::{LeaseId, Store};
use clap::Args;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::admin::parse_item;
use crate::connect::Target;
use crate::error::{CliError, Result};
use crate::output::{write_json, Align, FormatArgs, Table};
use crate::summary::{copy_rows, lease_times, yes_no, CopyRow, LeaseInfo};

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
    pub copies: Vec<ShownCopy>,
    /// Why it is short of copies or has copies not ready; empty when it is complete.
    pub reasons: Vec<String>,
}

/// One copy with the lease of the member holding it: a copy whose member stopped renewing
/// goes when the lease runs out, so the time left says how long it may still be counted.
#[derive(Debug, Serialize)]
pub struct ShownCopy {
    /// The slot, member, zone and status.
    #[serde(flatten)]
    pub copy: CopyRow,
    /// The member's lease and the time left on it.
    #[serde(flatten)]
    pub lease: LeaseInfo,
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
    let leases: BTreeMap<String, Option<LeaseId>> = state
        .item_assignment_range(index)
        .filter_map(|a| state.assignment_member(a))
        .map(|m| {
            let member = &state.members()[m];
            (member.key.to_string(), member.meta.lease)
        })
        .collect();
    let times = lease_times(store, leases.values().flatten().copied()).await?;
    let copies = copy_rows(state, index)
        .into_iter()
        .map(|copy| {
            let lease = leases.get(&copy.member).copied().flatten();
            ShownCopy {
                copy,
                lease: LeaseInfo::new(lease, &times),
            }
        })
        .collect();
    let item = &state.items()[index];
    let description = Description {
        id: id.to_string(),
        key,
        revision: view.revision,
        replication: item.value.replication,
        exclusive: item.value.exclusive,
        extra: item.value.extra.clone(),
        wanted: item.value.copies_wanted(),
        copies,
        reasons: shortfall(state, index)
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
                    shown.lease.ttl_text(),
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

/// `n` copies, in words: "1 copy", "2 copies" ([`plural`](crate::output::plural) only adds an `s`).
fn copies(n: usize) -> String {
    if n == 1 {
        "1 copy".to_owned()
    } else {
        format!("{n} copies")
    }
}

/// One reason an item has fewer copies than it wants, or copies not ready yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shortfall {
    /// No member is registered: nothing can hold a copy.
    NoMembers,
    /// Every member is exiting or has an item limit of 0.
    NoCapacity,
    /// Fewer members could take a copy than copies are missing.
    NoRoom {
        /// Members not exiting, with a positive limit, below it, not holding the item.
        with_room: usize,
        /// Copies wanted but not held.
        missing: usize,
    },
    /// Fewer zones can take copies than copies are wanted, so they cannot all be spread
    /// over different zones (the solver gives up spread before it gives up a copy).
    FewZones {
        /// Zones with a member that can take copies.
        zones: usize,
        /// Copies wanted.
        wanted: usize,
    },
    /// An exclusive item's owner was asked to let go; the next owner is assigned once it
    /// has (or its lease has expired).
    Releasing {
        /// The members releasing it.
        owners: Vec<String>,
    },
    /// An exclusive item still has an assignment on a member no longer registered; the
    /// next owner is assigned once it goes with that member's lease.
    LeftBehind {
        /// The members no longer registered.
        members: Vec<String>,
    },
    /// Copies not ready yet: the leader waits for them before it moves a primary or drops
    /// an old copy.
    NotReady {
        /// How many.
        count: usize,
    },
    /// Nothing in the state keeps copies from being placed: the leader has not placed
    /// them yet.
    Pending,
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shortfall::NoMembers => f.write_str("no member is registered under the prefix"),
            Shortfall::NoCapacity => {
                f.write_str("every member is exiting or has item limit 0: none can take a copy")
            }
            Shortfall::NoRoom { with_room, missing } => write!(
                f,
                "{} missing but {} can take one (not exiting, below its item limit, \
                 not already holding the item)",
                copies(*missing),
                match with_room {
                    0 => "no member".to_owned(),
                    1 => "only 1 member".to_owned(),
                    n => format!("only {n} members"),
                }
            ),
            Shortfall::FewZones { zones, wanted } => write!(
                f,
                "{} can take copies, for {wanted} wanted: they cannot all be in \
                 different zones",
                match zones {
                    1 => "only 1 zone".to_owned(),
                    n => format!("only {n} zones"),
                }
            ),
            Shortfall::Releasing { owners } => write!(
                f,
                "exclusive: waiting for {} to release it; the next owner is assigned once \
                 it has let go or its lease has expired",
                owners.join(", ")
            ),
            Shortfall::LeftBehind { members } => write!(
                f,
                "exclusive: an assignment on {} (no longer registered) must go with its \
                 lease before the next owner is assigned",
                members.join(", ")
            ),
            Shortfall::NotReady { count } => write!(
                f,
                "{} not ready yet: waiting for consistency (the leader moves a primary or \
                 drops an old copy only once the new one is ready)",
                copies(*count)
            ),
            Shortfall::Pending => f.write_str(
                "members have room: the leader has not placed the missing copies yet \
                 (is a member running? see `apportion status`)",
            ),
        }
    }
}

/// Why item `index` of `state` has fewer copies than it wants (copies being released do
/// not count), or copies not ready; empty when it has them all, all ready.
pub fn shortfall(state: &JsonState, index: usize) -> Vec<Shortfall> {
    let item = &state.items()[index];
    let wanted = usize::from(item.value.copies_wanted());
    let range = state.item_assignment_range(index);
    let copies = &state.assignments()[range.clone()];
    let mut reasons = Vec::new();
    let serving = copies.iter().filter(|c| !c.value.releasing).count();
    if serving < wanted {
        let owners: Vec<String> = copies
            .iter()
            .filter(|c| c.value.releasing)
            .map(|c| c.key.member.to_string())
            .collect();
        if !owners.is_empty() {
            reasons.push(Shortfall::Releasing { owners });
        }
        let left: Vec<String> = state
            .dangling()
            .iter()
            .filter(|a| item.value.exclusive && a.key.item == item.key)
            .map(|a| a.key.member.to_string())
            .collect();
        if !left.is_empty() {
            reasons.push(Shortfall::LeftBehind { members: left });
        }
        let holders: Vec<usize> = range.filter_map(|a| state.assignment_member(a)).collect();
        if state.members().is_empty() {
            reasons.push(Shortfall::NoMembers);
        } else if state.zones().is_empty() {
            reasons.push(Shortfall::NoCapacity);
        } else {
            let with_room = (0..state.members().len())
                .filter(|&m| {
                    let member = &state.members()[m].value;
                    !member.exiting
                        && state.member_assignment_count(m) < member.item_limit
                        && !holders.contains(&m)
                })
                .count();
            let missing = wanted - serving;
            if with_room < missing {
                reasons.push(Shortfall::NoRoom { with_room, missing });
            }
            let zones = state.zones().len();
            if zones < wanted {
                reasons.push(Shortfall::FewZones { zones, wanted });
            }
        }
        if reasons.is_empty() {
            reasons.push(Shortfall::Pending);
        }
    }
    let not_ready = copies
        .iter()
        .filter(|c| !c.value.ready && !c.value.releasing)
        .count();
    if not_ready > 0 {
        reasons.push(Shortfall::NotReady { count: not_ready });
    }
    reasons
}

#[cfg(test)]
mod tests {
    use apportion_core::state::{decode_entry, Meta, Snapshot, State};

    use super::*;

    /// A state from `(key, value)` pairs under `/t`, created in the order given.
    fn state(keys: &[(&str, &str)]) -> JsonState {
        let prefix = Prefix::new("/t").unwrap();
        let mut snapshot = Snapshot::default();
        for (n, (key, value)) in keys.iter().enumerate() {
            let key = format!("/t/{key}");
            let decoded = decode_entry(&prefix, &JsonDecoder, key.as_bytes(), value.as_bytes());
            let meta = Meta {
                create_revision: n as i64 + 1,
                ..Meta::default()
            };
            snapshot.push(decoded.unwrap(), meta);
        }
        State::build(snapshot, None).unwrap()
    }

    fn reasons(keys: &[(&str, &str)], item: &str) -> Vec<Shortfall> {
        let state = state(keys);
        let index = state.item_index(&ItemId::new(item).unwrap()).unwrap();
        shortfall(&state, index)
    }

    const READY: &str = r#"{"ready": true}"#;

    #[test]
    fn a_complete_item_has_no_reason() {
        let keys = [
            ("members/a#1", r#"{"item_limit": 2}"#),
            ("members/b#1", r#"{"item_limit": 2}"#),
            ("items/x", r#"{"replication": 2}"#),
            ("assign/x#a#1#00000", READY),
            ("assign/x#b#1#00001", READY),
        ];
        assert_eq!(reasons(&keys, "x"), []);
    }

    #[test]
    fn two_members_in_one_zone_cannot_hold_three_copies() {
        let keys = [
            ("members/a#1", r#"{"item_limit": 5}"#),
            ("members/a#2", r#"{"item_limit": 5}"#),
            ("items/x", r#"{"replication": 3}"#),
            ("assign/x#a#1#00000", READY),
            ("assign/x#a#2#00001", ""),
        ];
        assert_eq!(
            reasons(&keys, "x"),
            [
                Shortfall::NoRoom {
                    with_room: 0,
                    missing: 1
                },
                Shortfall::FewZones {
                    zones: 1,
                    wanted: 3
                },
                Shortfall::NotReady { count: 1 },
            ]
        );
        assert_eq!(
            Shortfall::NoRoom {
                with_room: 0,
                missing: 1
            }
            .to_string(),
            "1 copy missing but no member can take one (not exiting, below its item limit, \
             not already holding the item)"
        );
    }

    #[test]
    fn full_members_leave_no_room() {
        let keys = [
            ("members/a#1", r#"{"item_limit": 1}"#),
            ("members/b#1", r#"{"item_limit": 1}"#),
            ("items/x", r#"{"replication": 1}"#),
            ("items/y", r#"{"replication": 2}"#),
            ("assign/x#a#1#00000", READY),
            ("assign/y#b#1#00000", READY),
        ];
        assert_eq!(
            reasons(&keys, "y"),
            [Shortfall::NoRoom {
                with_room: 0,
                missing: 1
            }]
        );
    }

    #[test]
    fn no_members_or_none_that_can_take_copies() {
        let keys = [("items/x", r#"{"replication": 1}"#)];
        assert_eq!(reasons(&keys, "x"), [Shortfall::NoMembers]);
        let keys = [
            ("members/a#1", r#"{"item_limit": 0}"#),
            ("members/b#1", r#"{"item_limit": 4, "exiting": true}"#),
            ("items/x", r#"{"replication": 1}"#),
        ];
        assert_eq!(reasons(&keys, "x"), [Shortfall::NoCapacity]);
    }

    #[test]
    fn an_exclusive_item_waits_for_its_owner_to_release_it() {
        let keys = [
            ("members/a#1", r#"{"item_limit": 2, "exiting": true}"#),
            ("members/b#1", r#"{"item_limit": 2}"#),
            ("items/x", r#"{"replication": 1, "exclusive": true}"#),
            (
                "assign/x#a#1#00000",
                r#"{"ready": true, "releasing": true}"#,
            ),
        ];
        assert_eq!(
            reasons(&keys, "x"),
            [Shortfall::Releasing {
                owners: vec!["a#1".to_owned()]
            }]
        );
        // The owner's member is gone from the view but its assignment is still there.
        let keys = [
            ("members/b#1", r#"{"item_limit": 2}"#),
            ("items/x", r#"{"replication": 1, "exclusive": true}"#),
            ("assign/x#a#1#00000", READY),
        ];
        assert_eq!(
            reasons(&keys, "x"),
            [Shortfall::LeftBehind {
                members: vec!["a#1".to_owned()]
            }]
        );
    }

    #[test]
    fn with_room_everywhere_the_leader_has_yet_to_place_copies() {
        let keys = [
            ("members/a#1", r#"{"item_limit": 2}"#),
            ("members/b#1", r#"{"item_limit": 2}"#),
            // An exclusive item wants one copy, whatever its replication says.
            ("items/x", r#"{"replication": 3, "exclusive": true}"#),
        ];
        assert_eq!(reasons(&keys, "x"), [Shortfall::Pending]);
    }
}
