//! A revision-by-revision mirror of the store, for the invariants that must hold at every
//! revision, not only when a step ends:
//!
//! - no item has two assignments on one member;
//! - an exclusive item never has two assignments;
//! - no write of the allocator takes away an item's last consistent (ready) replica while
//!   the item wants replicas (a lease expiry may; that is what replication is for);
//! - a member whose key goes serves nothing any more (checked against the record).
//!
//! It follows its own watch over a connection that is never cut, and decodes values as the
//! runtime does, keeping a key's last good value when a bad one is written over it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use apportion::core::keys::{ItemId, Key, MemberId, Prefix, Slot};
use apportion::core::state::{decode_entry, Decoded};
use apportion::core::values::{JsonDecoder, JsonItem, JsonStatus};
use apportion::store::{Event, EventKind, KeyRange, MemoryStore, Store, WatchBatch};
use tokio::task::JoinHandle;

use crate::plan::is_exclusive;
use crate::record::{Record, SharedRecord};
use crate::store::Journal;

/// The decoded keys under the prefix.
#[derive(Default)]
struct Mirror {
    items: BTreeMap<ItemId, JsonItem>,
    members: BTreeSet<MemberId>,
    /// By item, then by (member, slot).
    assignments: BTreeMap<ItemId, BTreeMap<(MemberId, Slot), JsonStatus>>,
}

impl Mirror {
    /// The item's assignments: (member, slot) and status.
    fn copies(&self, item: &ItemId) -> impl Iterator<Item = (&(MemberId, Slot), &JsonStatus)> {
        self.assignments.get(item).into_iter().flatten()
    }

    /// How many of the item's assignments are ready, counting only live members' (an
    /// assignment whose member has gone serves nothing).
    fn ready(&self, item: &ItemId) -> usize {
        self.copies(item)
            .filter(|((member, _), s)| s.ready && self.members.contains(member))
            .count()
    }

    /// The item's copies as `member/slot` with `+` for ready, `-` for not, `?` for a
    /// member that has gone, for messages.
    fn describe(&self, item: &ItemId) -> String {
        let copies: Vec<String> = self
            .copies(item)
            .map(|((member, slot), status)| {
                let mark = match (self.members.contains(member), status.ready) {
                    (false, _) => '?',
                    (true, true) => '+',
                    (true, false) => '-',
                };
                format!("{member}/{}{mark}", slot.0)
            })
            .collect();
        copies.join(" ")
    }

    /// Applies one event, keeping a key's last good value when the new one is bad.
    fn apply(&mut self, prefix: &Prefix, event: &Event) {
        let kv = &event.kv;
        match (
            event.kind,
            decode_entry(prefix, &JsonDecoder, &kv.key, &kv.value),
        ) {
            (EventKind::Put, Ok(Decoded::Item(id, value))) => {
                self.items.insert(id, value);
            }
            (EventKind::Put, Ok(Decoded::Member(id, _))) => {
                self.members.insert(id);
            }
            (EventKind::Put, Ok(Decoded::Assignment(key, value))) => {
                self.assignments
                    .entry(key.item)
                    .or_default()
                    .insert((key.member, key.slot), value);
            }
            // The settings and away records hold moves back; they place nothing the
            // mirror judges.
            (EventKind::Put, Ok(Decoded::Settings(_) | Decoded::Away(..)) | Err(_)) => {}
            (EventKind::Delete, _) => match prefix.classify(&kv.key) {
                Ok(Key::Item(id)) => {
                    self.items.remove(&id);
                }
                Ok(Key::Member(id)) => {
                    self.members.remove(&id);
                }
                Ok(Key::Assignment(key)) => {
                    if let Some(copies) = self.assignments.get_mut(&key.item) {
                        copies.remove(&(key.member, key.slot));
                    }
                }
                Ok(Key::Settings | Key::Away(_)) | Err(_) => {}
            },
        }
    }
}

/// Starts following the store from its current revision; violations go to `record`.
pub async fn start(
    store: &MemoryStore,
    journal: Arc<Journal>,
    record: SharedRecord,
) -> JoinHandle<()> {
    let prefix = Prefix::new(crate::plan::PREFIX).expect("the simulation's prefix is valid");
    let mut watch = store
        .watch(KeyRange::prefix(prefix.root_dir()), 0)
        .await
        .expect("the mirror's connection is never cut");
    tokio::spawn(async move {
        let mut mirror = Mirror::default();
        while let Some(Ok(batch)) = watch.next().await {
            apply(&mut mirror, &prefix, &batch, &journal, &record);
        }
    })
}

/// Applies one revision and checks the invariants on it.
fn apply(
    mirror: &mut Mirror,
    prefix: &Prefix,
    batch: &WatchBatch,
    journal: &Journal,
    record: &SharedRecord,
) {
    let mut touched = BTreeSet::new();
    let mut gone = Vec::new();
    for event in &batch.events {
        match prefix.classify(&event.kv.key) {
            Ok(Key::Item(id)) => {
                touched.insert(id);
            }
            Ok(Key::Assignment(key)) => {
                touched.insert(key.item);
            }
            Ok(Key::Member(id)) if event.kind == EventKind::Delete => gone.push(id),
            _ => {}
        }
    }
    let before: BTreeMap<&ItemId, (usize, String)> = touched
        .iter()
        .map(|item| (item, (mirror.ready(item), mirror.describe(item))))
        .collect();
    for event in &batch.events {
        mirror.apply(prefix, event);
    }
    let mut record = Record::lock(record);
    for member in gone {
        record.member_gone(member.as_str());
    }
    let revision = batch.revision;
    let by_allocator = journal.by_allocator(revision);
    for item in &touched {
        let mut holders = BTreeSet::new();
        let mut copies = 0;
        for ((member, _), _) in mirror.copies(item) {
            copies += 1;
            if !holders.insert(member) {
                let detail = format!("revision {revision}: {item} twice on {member}");
                record.violate("two replicas on one member", detail);
            }
        }
        if is_exclusive(item.as_str()) && copies > 1 {
            let detail = format!("revision {revision}: exclusive {item} has {copies} assignments");
            record.violate("exclusive item assigned twice", detail);
        }
        let wants = mirror.items.get(item).is_some_and(|v| v.replication > 0);
        let (ready_before, copies_before) = &before[item];
        if by_allocator && wants && *ready_before > 0 && mirror.ready(item) == 0 {
            let detail = format!(
                "revision {revision}: the allocator left {item} without a ready replica \
                 (before: {copies_before}; after: {})",
                mirror.describe(item)
            );
            record.violate("last consistent replica dropped", detail);
        }
    }
}
