//! A revision-by-revision mirror of the store, for the invariants that must hold at every
//! revision, not only when a step ends:
//!
//! - no item has two assignments on one member;
//! - an exclusive item never has two assignments;
//! - no write of the allocator takes away an item's last consistent (ready) replica while
//!   the item wants replicas (a lease expiry may; that is what replication is for);
//! - a member whose key goes serves nothing any more (checked against the record);
//! - no planned step (a write of the allocator, a member leaving to restart) takes an item
//!   that had at least `min(min_ready, replication)` ready replicas below that (a lease
//!   expiry may, and so may the allocator when its solve could not place every replica:
//!   the planner keeps as many ready copies as the solver places, no more);
//! - while a freeze is in force, the allocator changes no item but to repair one (below
//!   `min_ready`, or without a primary) or to remove the copies of a deleted one;
//! - while a throttle is set and no item needs repair, the allocator's additions never
//!   leave more than `max_moves_in_flight` copies not ready, unless they are all there is
//!   loading (one item's plan larger than the limit goes alone).
//!
//! The last two judge a write by the settings its leader planned it from: a write planned
//! before the settings changed is held to the old ones, and one planned from a view where
//! an item needed repair may repair it though the item has recovered since. The journal
//! says which view each write of the allocator was planned from.
//!
//! It follows its own watch over a connection that is never cut, and decodes values as the
//! runtime does, keeping a key's last good value when a bad one is written over it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use apportion::core::away::AwayReason;
use apportion::core::keys::{ItemId, Key, MemberId, Prefix, Slot};
use apportion::core::settings::ClusterSettings;
use apportion::core::state::{decode_entry, Decoded};
use apportion::core::values::{JsonDecoder, JsonItem, JsonStatus};
use apportion::store::{Event, EventKind, KeyRange, MemoryStore, Revision, Store, WatchBatch};
use tokio::task::JoinHandle;

use crate::checks::Finding;
use crate::plan::{is_exclusive, SimClock};
use crate::record::{Record, SharedRecord};
use crate::store::Journal;

/// The decoded keys under the prefix.
#[derive(Default)]
struct Mirror {
    items: BTreeMap<ItemId, JsonItem>,
    members: BTreeSet<MemberId>,
    /// Members whose key holds a value that does not decode now: a view started since
    /// never read them, and a leader with such a view sees their copies as nobody's.
    garbled: BTreeSet<MemberId>,
    /// By item, then by (member, slot).
    assignments: BTreeMap<ItemId, BTreeMap<(MemberId, Slot), JsonStatus>>,
    /// The cluster settings, and the revision they were written at.
    settings: (ClusterSettings, Revision),
    /// Why each member with an away record is away.
    away: BTreeMap<MemberId, AwayReason>,
    /// Per item, the last revision at which it needed repair (see [`Mirror::needs_repair`]).
    repair_at: BTreeMap<ItemId, Revision>,
    /// The last revision at which any item needed repair.
    any_repair_at: Revision,
    /// The last revision applied.
    last_revision: Revision,
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

    /// The fewest ready replicas a planned step may leave the item with:
    /// `min(min_ready, replication)`, as the leader reckons it.
    fn floor(&self, item: &ItemId) -> usize {
        let replication = self.items.get(item).map_or(0, |v| u32::from(v.replication));
        self.settings.0.min_ready.min(replication) as usize
    }

    /// Whether the leader repairs the item whatever the settings hold back: it exists and
    /// has fewer ready replicas than its floor, or copies but none as the primary. Copies
    /// of garbled members do not count: a leader whose view never read the member's value
    /// sees them as nobody's, and repairs the item.
    fn needs_repair(&self, item: &ItemId) -> bool {
        if !self.items.contains_key(item) {
            return false;
        }
        let readable =
            |member: &MemberId| self.members.contains(member) && !self.garbled.contains(member);
        let mut live = self
            .copies(item)
            .filter(|((member, _), _)| readable(member))
            .peekable();
        let headless = live.peek().is_some() && !live.any(|((_, slot), _)| slot.0 == 0);
        let ready = self
            .copies(item)
            .filter(|((member, _), s)| s.ready && readable(member))
            .count();
        headless || ready < self.floor(item)
    }

    /// Copies of existing items on live members that are not ready: the moves in flight.
    fn unready(&self) -> usize {
        self.items
            .keys()
            .flat_map(|item| self.copies(item))
            .filter(|((member, _), s)| !s.ready && self.members.contains(member))
            .count()
    }

    /// Notes, after `revision`, which items need repair.
    fn note_repairs(&mut self, revision: Revision) {
        let needing: Vec<ItemId> = self
            .items
            .keys()
            .filter(|item| self.needs_repair(item))
            .cloned()
            .collect();
        if !needing.is_empty() {
            self.any_repair_at = revision;
        }
        for item in needing {
            self.repair_at.insert(item, revision);
        }
    }

    /// Whether the item needed repair in the view of `revision` or since.
    fn needed_repair_since(&self, item: &ItemId, revision: Revision) -> bool {
        self.repair_at.get(item).is_some_and(|&at| at >= revision)
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

    /// Applies one event of `revision`, keeping a key's last good value when the new one is
    /// bad.
    fn apply(&mut self, prefix: &Prefix, event: &Event, revision: Revision) {
        let kv = &event.kv;
        match (
            event.kind,
            decode_entry(prefix, &JsonDecoder, &kv.key, &kv.value),
        ) {
            (EventKind::Put, Ok(Decoded::Item(id, value))) => {
                self.items.insert(id, value);
            }
            (EventKind::Put, Ok(Decoded::Member(id, _))) => {
                self.garbled.remove(&id);
                self.members.insert(id);
            }
            (EventKind::Put, Ok(Decoded::Assignment(key, value))) => {
                self.assignments
                    .entry(key.item)
                    .or_default()
                    .insert((key.member, key.slot), value);
            }
            (EventKind::Put, Ok(Decoded::Settings(settings))) => {
                self.settings = (settings, revision);
            }
            (EventKind::Put, Ok(Decoded::Away(id, record))) => {
                self.away.insert(id, record.reason);
            }
            (EventKind::Put, Err(_)) => {
                if let Ok(Key::Member(id)) = prefix.classify(&kv.key) {
                    self.garbled.insert(id);
                }
            }
            (EventKind::Delete, _) => match prefix.classify(&kv.key) {
                Ok(Key::Item(id)) => {
                    self.items.remove(&id);
                }
                Ok(Key::Member(id)) => {
                    self.garbled.remove(&id);
                    self.members.remove(&id);
                }
                Ok(Key::Assignment(key)) => {
                    if let Some(copies) = self.assignments.get_mut(&key.item) {
                        copies.remove(&(key.member, key.slot));
                    }
                }
                Ok(Key::Settings) => {
                    self.settings = (ClusterSettings::default(), revision);
                }
                Ok(Key::Away(id)) => {
                    self.away.remove(&id);
                }
                Err(_) => {}
            },
        }
    }
}

/// Starts following the store from its current revision; violations go to `record`.
/// `clock` says whether a freeze is in force.
pub async fn start(
    store: &MemoryStore,
    journal: Arc<Journal>,
    record: SharedRecord,
    clock: SimClock,
) -> JoinHandle<()> {
    let prefix = Prefix::new(crate::plan::PREFIX).expect("the simulation's prefix is valid");
    let mut watch = store
        .watch(KeyRange::prefix(prefix.root_dir()), 0)
        .await
        .expect("the mirror's connection is never cut");
    tokio::spawn(async move {
        let mut mirror = Mirror::default();
        while let Some(Ok(batch)) = watch.next().await {
            apply(&mut mirror, &prefix, &batch, &journal, &record, clock);
        }
    })
}

/// What one revision changed, as the rules about planned steps need it.
struct Step {
    revision: Revision,
    /// The view the allocator planned it from, if the allocator wrote it.
    planned_from: Option<Revision>,
    /// Whether a member left to restart in it (its key went while it had a restart record).
    restart_leave: bool,
    /// Copies it added (new keys of members that held no copy of the item).
    adds: usize,
    /// Whether some item needed repair just before it.
    repair_needed: bool,
}

/// An item just before a revision: ready replicas, floor, whether it needed repair and
/// existed, and its copies for messages.
struct Before {
    ready: usize,
    floor: usize,
    needs_repair: bool,
    existed: bool,
    copies: String,
}

/// Applies one revision and checks the invariants on it.
fn apply(
    mirror: &mut Mirror,
    prefix: &Prefix,
    batch: &WatchBatch,
    journal: &Journal,
    record: &SharedRecord,
    clock: SimClock,
) {
    let revision = batch.revision;
    let mut touched = BTreeSet::new();
    let mut gone = Vec::new();
    let mut adds = 0;
    for event in &batch.events {
        match prefix.classify(&event.kv.key) {
            Ok(Key::Item(id)) => {
                touched.insert(id);
            }
            Ok(Key::Assignment(key)) => {
                // A new key for a member that held no copy of the item: a copy added (a
                // new key of a member that did is the copy moved to another slot).
                let created = event.kind == EventKind::Put && event.kv.create_revision == revision;
                let held = mirror
                    .copies(&key.item)
                    .any(|((member, _), _)| *member == key.member);
                adds += usize::from(created && !held);
                touched.insert(key.item);
            }
            Ok(Key::Member(id)) if event.kind == EventKind::Delete => gone.push(id),
            _ => {}
        }
    }
    let step = Step {
        revision,
        planned_from: journal.planned_from(revision),
        restart_leave: gone
            .iter()
            .any(|m| mirror.away.get(m) == Some(&AwayReason::Restart)),
        adds,
        repair_needed: mirror.any_repair_at == mirror.last_revision,
    };
    let before: BTreeMap<&ItemId, Before> = touched
        .iter()
        .map(|item| {
            let before = Before {
                ready: mirror.ready(item),
                floor: mirror.floor(item),
                needs_repair: mirror.needs_repair(item),
                existed: mirror.items.contains_key(item),
                copies: mirror.describe(item),
            };
            (item, before)
        })
        .collect();
    for event in &batch.events {
        mirror.apply(prefix, event, revision);
    }
    let mut record = Record::lock(record);
    for member in gone {
        record.member_gone(member.as_str());
    }
    let by_allocator = step.planned_from.is_some();
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
        let before = &before[item];
        if by_allocator && wants && before.ready > 0 && mirror.ready(item) == 0 {
            let detail = format!(
                "revision {revision}: the allocator left {item} without a ready replica \
                 (before: {}; after: {})",
                before.copies,
                mirror.describe(item)
            );
            record.violate("last consistent replica dropped", detail);
        }
        match below_floor(mirror, &step, item, before) {
            Some(((rule, detail), Some(view))) => record.suspect(view, rule, detail),
            Some(((rule, detail), None)) => record.violate(rule, detail),
            None => {}
        }
        if let Some((rule, detail)) = frozen_move(mirror, &step, item, before, clock) {
            record.violate(rule, detail);
        }
    }
    if let Some((rule, detail)) = over_throttle(mirror, &step, clock) {
        record.violate(rule, detail);
    }
    mirror.note_repairs(revision);
    mirror.last_revision = revision;
}

/// The min_ready rule: a planned step took `item` from at least its floor of ready
/// replicas to below it. A member leaving to restart breaks it outright. A write of the
/// allocator is only suspect (the view it was planned from comes with it): it is excused
/// if that round's solve left replica slots unfilled, since the planner then lets the
/// copies beyond what the solver places go once those are ready (a drain or a lowered limit
/// with too little room left), and the mirror cannot tell which items the solver shorted.
fn below_floor(
    mirror: &Mirror,
    step: &Step,
    item: &ItemId,
    before: &Before,
) -> Option<(Finding, Option<Revision>)> {
    let after = mirror.ready(item);
    let planned = step.planned_from.is_some() || step.restart_leave;
    if !planned || !before.existed || before.ready < before.floor || after >= before.floor {
        return None;
    }
    let (by, suspect) = if step.restart_leave {
        ("a member leaving to restart", None)
    } else {
        ("the allocator", step.planned_from)
    };
    let detail = format!(
        "revision {}: {by} left {item} with {after} ready replicas, floor {} (before: {}; \
         after: {})",
        step.revision,
        before.floor,
        before.copies,
        mirror.describe(item)
    );
    Some((("below min_ready by a planned step", detail), suspect))
}

/// The freeze rule: the allocator changed `item` while a freeze it had seen was in force,
/// though the item existed and needed no repair in the view it planned from or since.
fn frozen_move(
    mirror: &Mirror,
    step: &Step,
    item: &ItemId,
    before: &Before,
    clock: SimClock,
) -> Option<Finding> {
    let view = binding_view(mirror, step)?;
    let freeze = mirror.settings.0.frozen_at(clock.unix_now())?;
    if !before.existed || before.needs_repair || mirror.needed_repair_since(item, view) {
        return None;
    }
    Some((
        "moved while frozen",
        format!(
            "revision {} (planned from {view}, frozen until {}): the allocator changed {item} \
             (before: {}; after: {})",
            step.revision,
            freeze.until_unix_secs,
            before.copies,
            mirror.describe(item)
        ),
    ))
}

/// The throttle rule: an allocator write that added copies, planned while no item needed
/// repair (repairs may exceed the throttle), left more copies loading than it allows.
fn over_throttle(mirror: &Mirror, step: &Step, clock: SimClock) -> Option<Finding> {
    let view = binding_view(mirror, step)?;
    let settings = &mirror.settings.0;
    let limit = settings.max_moves_in_flight? as usize;
    let repaired = step.repair_needed || mirror.any_repair_at >= view;
    if step.adds == 0 || repaired || settings.frozen_at(clock.unix_now()).is_some() {
        return None;
    }
    let unready = mirror.unready();
    (unready > limit && unready > step.adds).then(|| {
        (
            "throttle exceeded",
            format!(
                "revision {} (planned from {view}): {} copies added, {unready} not ready, \
                 max_moves_in_flight {limit}",
                step.revision, step.adds
            ),
        )
    })
}

/// The view an allocator write was planned from, when it already showed the settings in
/// force now (a write planned from an older view obeyed the settings of then).
fn binding_view(mirror: &Mirror, step: &Step) -> Option<Revision> {
    step.planned_from.filter(|&view| view >= mirror.settings.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use apportion::store::{KeyValue, TxnResult};

    use crate::plan::EPOCH;

    /// Feeds a mirror one revision at a time, as its watch would, and collects the rules
    /// it finds broken.
    struct Feed {
        mirror: Mirror,
        prefix: Prefix,
        journal: Journal,
        record: SharedRecord,
        clock: SimClock,
        revision: Revision,
        created: BTreeMap<String, Revision>,
    }

    impl Feed {
        /// Members `a#1`, `b#1` and `c#1`, items with their replication, and `settings`
        /// (JSON), each written in a revision of its own.
        fn new(items: &[(&str, u16)], settings: &str) -> Feed {
            let mut feed = Feed {
                mirror: Mirror::default(),
                prefix: Prefix::new("/t").unwrap(),
                journal: Journal::default(),
                record: Record::shared(),
                clock: SimClock::start(),
                revision: 0,
                created: BTreeMap::new(),
            };
            for member in ["a#1", "b#1", "c#1"] {
                feed.put(&format!("members/{member}"), r#"{"item_limit": 9}"#, None);
            }
            for (id, replication) in items {
                let value = format!(r#"{{"replication": {replication}}}"#);
                feed.put(&format!("items/{id}"), &value, None);
            }
            feed.put("settings", settings, None);
            feed
        }

        /// One revision writing `puts` and deleting `deletes` (keys below the prefix);
        /// `planned_from`: the allocator wrote it, from the view of that revision.
        fn step(&mut self, puts: &[(&str, &str)], deletes: &[&str], planned: Option<Revision>) {
            self.revision += 1;
            let revision = self.revision;
            let mut events = Vec::new();
            for (key, value) in puts {
                let create_revision = *self.created.entry(key.to_string()).or_insert(revision);
                events.push(Event {
                    kind: EventKind::Put,
                    kv: KeyValue {
                        key: format!("/t/{key}").into_bytes(),
                        value: value.as_bytes().to_vec(),
                        create_revision,
                        mod_revision: revision,
                        ..KeyValue::default()
                    },
                });
            }
            for key in deletes {
                self.created.remove(*key);
                events.push(Event {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        key: format!("/t/{key}").into_bytes(),
                        mod_revision: revision,
                        ..KeyValue::default()
                    },
                });
            }
            if let Some(view) = planned {
                let written = TxnResult {
                    succeeded: true,
                    revision,
                    results: Vec::new(),
                };
                self.journal.record(view, &written);
            }
            let batch = WatchBatch { events, revision };
            apply(
                &mut self.mirror,
                &self.prefix,
                &batch,
                &self.journal,
                &self.record,
                self.clock,
            );
        }

        fn put(&mut self, key: &str, value: &str, planned: Option<Revision>) {
            self.step(&[(key, value)], &[], planned);
        }

        /// The allocator writes `puts`, planned from the latest view.
        fn allocate(&mut self, puts: &[(&str, &str)]) {
            self.step(puts, &[], Some(self.revision));
        }

        fn rules(&self) -> Vec<&'static str> {
            let record = Record::lock(&self.record);
            record.violations().iter().map(|v| v.rule).collect()
        }
    }

    const READY: &str = r#"{"ready": true}"#;
    const LOADING: &str = r#"{"ready": false}"#;

    fn frozen() -> String {
        let until = EPOCH.as_secs() + 1000;
        format!(r#"{{"freeze": {{"until_unix_secs": {until}}}}}"#)
    }

    #[test]
    fn a_move_while_frozen_is_caught_and_a_repair_is_not() {
        let mut feed = Feed::new(&[("r", 2), ("s", 2)], &frozen());
        feed.allocate(&[("assign/r#a#1#00000", READY), ("assign/r#b#1#00001", READY)]);
        feed.allocate(&[("assign/s#a#1#00000", LOADING)]);
        // s has no ready replica: adding to it is a repair.
        feed.allocate(&[("assign/s#b#1#00001", LOADING)]);
        assert_eq!(feed.rules(), Vec::<&str>::new());
        // r has its two: moving it is not.
        feed.allocate(&[("assign/r#c#1#00002", LOADING)]);
        assert_eq!(feed.rules(), ["moved while frozen"]);
    }

    #[test]
    fn a_write_planned_before_the_freeze_is_not_held_to_it() {
        let mut feed = Feed::new(&[("r", 2)], "{}");
        feed.allocate(&[("assign/r#a#1#00000", READY), ("assign/r#b#1#00001", READY)]);
        let view = feed.revision;
        feed.put("settings", &frozen(), None);
        feed.step(&[("assign/r#c#1#00002", LOADING)], &[], Some(view));
        assert_eq!(feed.rules(), Vec::<&str>::new());
    }

    #[test]
    fn more_moves_than_the_throttle_are_caught_unless_a_repair_was_due() {
        let mut feed = Feed::new(&[("r", 2), ("s", 2)], r#"{"max_moves_in_flight": 1}"#);
        feed.allocate(&[("assign/r#a#1#00000", READY), ("assign/s#a#1#00000", READY)]);
        // A copy moved to another slot is not a move in flight.
        feed.step(
            &[("assign/r#a#1#00001", READY)],
            &["assign/r#a#1#00000"],
            Some(feed.revision),
        );
        feed.allocate(&[("assign/r#b#1#00000", LOADING)]);
        assert_eq!(feed.rules(), Vec::<&str>::new());
        feed.allocate(&[("assign/s#b#1#00001", LOADING)]);
        assert_eq!(feed.rules(), ["throttle exceeded"]);
    }

    #[test]
    fn a_restart_below_min_ready_is_caught_and_a_crash_is_not() {
        let away = r#"{"reason": "restart", "until_unix_secs": 0, "items": ["r"]}"#;
        for (restart, expected) in [
            (false, vec![]),
            (true, vec!["below min_ready by a planned step"]),
        ] {
            let mut feed = Feed::new(&[("r", 2)], r#"{"min_ready": 2}"#);
            feed.allocate(&[("assign/r#a#1#00000", READY), ("assign/r#b#1#00001", READY)]);
            if restart {
                feed.put("away/a#1", away, None);
            }
            feed.step(&[], &["members/a#1", "assign/r#a#1#00000"], None);
            assert_eq!(feed.rules(), expected, "restart {restart}");
        }
    }

    #[test]
    fn an_allocator_removal_below_min_ready_stands_unless_its_round_excuses_it() {
        for excused in [true, false] {
            let mut feed = Feed::new(&[("r", 2)], r#"{"min_ready": 2}"#);
            feed.allocate(&[("assign/r#a#1#00000", READY), ("assign/r#b#1#00001", READY)]);
            feed.step(&[], &["assign/r#b#1#00001"], Some(feed.revision));
            assert_eq!(feed.rules(), Vec::<&str>::new(), "only suspect at first");
            Record::lock(&feed.record).judge_suspects(|_| excused);
            let expected = if excused {
                vec![]
            } else {
                vec!["below min_ready by a planned step"]
            };
            assert_eq!(feed.rules(), expected, "excused {excused}");
        }
    }
}
