//! The operator's model of a cluster (`apportion::report`), on states built from hand-written
//! keys: what changed between two states, why an item is short of copies, the members' fair
//! shares and the zones' limits, and where an item's copies are with their holders' leases.

use apportion::cluster::{ClusterView, Observed};
use apportion::core::keys::{AssignmentKey, ItemId, MemberId, Prefix, Slot};
use apportion::core::state::{decode_entry, JsonState, Meta, Snapshot, State};
use apportion::report::{
    changes, item_copies, item_leases, lease_times, listed_items, member_rows, shortfall, Change,
    LeaseTimes, ListedItem, Overview, Shortfall,
};
use apportion::{JsonDecoder, MemoryStore, Store};

/// A state from `(key under /t, JSON value)` pairs, created in the order given (the first
/// member leads).
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

// What changed between two states.

fn copy(text: &str) -> AssignmentKey {
    AssignmentKey::parse(text).unwrap()
}

const BASE: &[(&str, &str)] = &[
    ("members/eu#h1", r#"{"item_limit": 4}"#),
    ("members/eu#h2", r#"{"item_limit": 4}"#),
    ("items/orders", r#"{"replication": 2}"#),
    ("assign/orders#eu#h1#00000", r#"{"ready": true}"#),
    ("assign/orders#eu#h2#00001", r#"{"ready": false}"#),
];

fn with(extra: &[(&'static str, &'static str)], without: &[&str]) -> JsonState {
    let mut keys: Vec<(&str, &str)> = BASE
        .iter()
        .copied()
        .filter(|(k, _)| !without.contains(k))
        .collect();
    keys.extend_from_slice(extra);
    state(&keys)
}

#[test]
fn equal_states_have_no_changes() {
    assert_eq!(changes(&with(&[], &[]), &with(&[], &[])), []);
}

#[test]
fn copies_added_and_removed() {
    let old = with(&[], &[]);
    let new = with(
        &[("assign/orders#eu#h2#00002", "")],
        &["assign/orders#eu#h1#00000"],
    );
    // eu#h2 gains slot 2 besides its slot 1: an added copy, not a move.
    assert_eq!(
        changes(&old, &new),
        [
            Change::Removed {
                copy: copy("orders#eu#h1#00000")
            },
            Change::Added {
                copy: copy("orders#eu#h2#00002")
            },
        ]
    );
}

#[test]
fn a_copy_changing_slot_is_a_move_and_to_slot_0_a_promotion() {
    let old = with(&[], &[]);
    let new = with(
        &[("assign/orders#eu#h2#00000", "")],
        &["assign/orders#eu#h1#00000", "assign/orders#eu#h2#00001"],
    );
    assert_eq!(
        changes(&old, &new),
        [
            Change::Removed {
                copy: copy("orders#eu#h1#00000")
            },
            Change::Moved {
                copy: copy("orders#eu#h2#00000"),
                from: Slot(1)
            },
        ]
    );
}

#[test]
fn ready_flips_and_release_requests() {
    let old = with(&[], &[]);
    let new = with(
        &[
            (
                "assign/orders#eu#h1#00000",
                r#"{"ready": false, "releasing": true}"#,
            ),
            ("assign/orders#eu#h2#00001", r#"{"ready": true}"#),
        ],
        &["assign/orders#eu#h1#00000", "assign/orders#eu#h2#00001"],
    );
    assert_eq!(
        changes(&old, &new),
        [
            Change::Ready {
                copy: copy("orders#eu#h1#00000"),
                ready: false
            },
            Change::ReleaseRequested {
                copy: copy("orders#eu#h1#00000")
            },
            Change::Ready {
                copy: copy("orders#eu#h2#00001"),
                ready: true
            },
        ]
    );
}

#[test]
fn members_joining_leaving_and_exiting_and_items_coming_and_going() {
    let old = with(&[("items/gone", r#"{"replication": 1}"#)], &[]);
    let new = with(
        &[
            ("members/us#h1", r#"{"item_limit": 8}"#),
            ("members/eu#h2", r#"{"item_limit": 4, "exiting": true}"#),
            ("items/orders", r#"{"replication": 3}"#),
            ("items/new", r#"{"replication": 1}"#),
        ],
        &["members/eu#h1", "members/eu#h2", "items/orders"],
    );
    let member = |id| MemberId::parse(id).unwrap();
    let item = |id| ItemId::new(id).unwrap();
    // eu#h1's copy goes with it: dangling assignments are not compared.
    assert_eq!(
        changes(&old, &new),
        [
            Change::MemberLeft {
                member: member("eu#h1")
            },
            Change::MemberExiting {
                member: member("eu#h2")
            },
            Change::MemberJoined {
                member: member("us#h1")
            },
            Change::ItemRemoved { item: item("gone") },
            Change::ItemCreated {
                item: item("new"),
                replication: 1
            },
            Change::ReplicationChanged {
                item: item("orders"),
                from: 2,
                to: 3
            },
            Change::Removed {
                copy: copy("orders#eu#h1#00000")
            },
        ]
    );
}

// Why an item is short of copies or not ready.

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

// Fair shares and zone limits.

/// An exiting member keeps its copies but takes no new ones: it has no fair share, and its
/// limit counts neither in the capacity nor in its zone's limit.
#[test]
fn an_exiting_member_has_no_fair_share_and_its_limit_no_longer_counts() {
    let keys = [
        ("members/eu#h1", r#"{"item_limit": 4}"#),
        ("members/eu#h2", r#"{"item_limit": 4, "exiting": true}"#),
        ("members/us#h1", r#"{"item_limit": 8}"#),
        ("items/orders", r#"{"replication": 2}"#),
        ("items/payments", r#"{"replication": 3, "exclusive": true}"#),
        ("assign/orders#eu#h1#00000", READY),
        ("assign/orders#us#h1#00001", ""),
        ("assign/payments#us#h1#00000", READY),
        ("assign/payments#eu#h2#00001", READY),
    ];
    let observed = Observed::<JsonDecoder> {
        revision: 9,
        state: state(&keys),
        rejected: Vec::new(),
    };
    let overview = Overview::new(&Prefix::new("/t").unwrap(), &observed, &LeaseTimes::new());
    assert_eq!(overview.leader.as_deref(), Some("eu#h1"));
    assert_eq!(overview.totals.capacity, 12);
    assert_eq!(overview.zones[0].limit, 4);
    assert_eq!(overview.zones[0].load, 2);
    let shares: Vec<f64> = overview.members.iter().map(|m| m.fair_share).collect();
    // 4 placed copies over a capacity of 12: eu#h1 (limit 4) should hold 4/3, us#h1 8/3.
    assert_eq!(shares[1], 0.0);
    assert!((shares[0] - 4.0 / 3.0).abs() < 1e-9, "{shares:?}");
    assert!((shares[2] - 8.0 / 3.0).abs() < 1e-9, "{shares:?}");
    assert_eq!(
        overview.members,
        member_rows(&observed.state, &LeaseTimes::new())
    );
    let attention: Vec<&str> = overview.attention.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(attention, ["orders", "payments"]);
}

// Where an item's copies are, and how long their holders' leases have left.

/// The copies come primary first, each with its holder's lease and the time left on it; a
/// key without a lease has neither. The listing keeps an item key that does not decode, in
/// id order, with the reason.
#[tokio::test]
async fn copies_come_primary_first_with_their_holders_leases() {
    let store = MemoryStore::new();
    let lease = store.grant(60).await.unwrap().id;
    for (key, value, lease) in [
        ("members/a#1", r#"{"item_limit": 2}"#, Some(lease)),
        ("members/b#1", r#"{"item_limit": 2}"#, None),
        ("items/x", r#"{"replication": 2}"#, None),
        ("items/garbled", "not json", None),
        ("assign/x#a#1#00001", "", Some(lease)),
        ("assign/x#b#1#00000", READY, None),
    ] {
        store.put(format!("/t/{key}"), value, lease).await.unwrap();
    }
    let view = ClusterView::read(&store, "/t", JsonDecoder).await.unwrap();
    let state = &view.state;
    let index = state.item_index(&ItemId::new("x").unwrap()).unwrap();
    let times = lease_times(&store, item_leases(state, index))
        .await
        .unwrap();
    let copies = item_copies(state, index, &times);
    let rows: Vec<_> = copies
        .iter()
        .map(|c| (c.copy.slot, c.copy.member.as_str(), c.copy.ready))
        .collect();
    assert_eq!(rows, [(0, "b#1", true), (1, "a#1", false)]);
    assert_eq!(
        (&copies[0].lease.lease, copies[0].lease.lease_ttl_secs),
        (&None, None)
    );
    assert_eq!(copies[1].lease.lease, Some(lease.to_string()));
    assert!(matches!(copies[1].lease.lease_ttl_secs, Some(1..=60)));

    let listed = listed_items(&view, &Prefix::new("/t").unwrap());
    assert!(matches!(&listed[0], ListedItem::Ignored { id, .. } if id == "garbled"));
    assert!(matches!(&listed[1], ListedItem::Item(row) if row.id == "x" && row.consistent == 1));
}

/// An exclusive item has one owner at a time, whatever replication its value asks for
/// (written raw: `Admin::put_item` refuses it): with its one copy ready it needs nothing.
#[test]
fn an_exclusive_item_with_its_one_copy_ready_needs_no_attention() {
    let state = state(&[
        ("members/eu#h1", r#"{"item_limit": 4}"#),
        ("members/us#h1", r#"{"item_limit": 4}"#),
        ("items/ledger", r#"{"replication": 3, "exclusive": true}"#),
        ("assign/ledger#eu#h1#00000", r#"{"ready": true}"#),
    ]);
    let rows = apportion::report::item_rows(&state);
    assert!(!rows[0].needs_attention(), "{rows:?}");
    assert_eq!(state.item_slots(), 1);
}

#[test]
fn a_settings_change_comes_first() {
    let old = state(&[("items/orders", r#"{"replication": 1}"#)]);
    let new = state(&[
        ("settings", r#"{"min_ready": 2}"#),
        ("items/orders", r#"{"replication": 2}"#),
    ]);
    let seen = changes(&old, &new);
    assert!(
        matches!(&seen[0], Change::SettingsChanged { settings } if settings.min_ready == 2),
        "{seen:?}"
    );
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(changes(&new, &new).is_empty());
}

#[test]
fn a_member_restarting_going_away_and_coming_back() {
    let member = |id| MemberId::parse(id).unwrap();
    let old = with(&[], &[]);
    let restarting = with(
        &[("members/eu#h2", r#"{"item_limit": 4, "restarting": true}"#)],
        &["members/eu#h2"],
    );
    assert_eq!(
        changes(&old, &restarting),
        [Change::MemberRestarting {
            member: member("eu#h2")
        }]
    );
    let away = with(
        &[(
            "away/eu#h2",
            r#"{"reason": "restart", "until_unix_secs": 100, "items": ["orders"]}"#,
        )],
        &["members/eu#h2", "assign/orders#eu#h2#00001"],
    );
    let recorded = changes(&restarting, &away);
    assert!(
        recorded.contains(&Change::AwayRecorded {
            member: member("eu#h2"),
            reason: apportion::core::away::AwayReason::Restart,
            items: 1,
            until_unix_secs: 100,
        }),
        "{recorded:?}"
    );
    let back = changes(&away, &old);
    assert!(
        back.contains(&Change::AwayEnded {
            member: member("eu#h2")
        }),
        "{back:?}"
    );
}
