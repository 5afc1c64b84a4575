//! From raw key-values to a snapshot: each kind decodes with the JSON decoder, and bad keys
//! and bad values are rejected with messages that name the key.

use apportion_core::keys::{ItemId, MemberId, Prefix};
use apportion_core::lease::LeaseId;
use apportion_core::state::{
    decode_entry, Decoded, DecodedBy, EntryError, JsonState, Meta, Snapshot,
};
use apportion_core::values::{JsonDecoder, JsonError, MAX_REPLICATION};

fn decode(key: &str, value: &str) -> Result<DecodedBy<JsonDecoder>, EntryError<JsonError>> {
    let prefix = Prefix::new("/svc").unwrap();
    decode_entry(&prefix, &JsonDecoder, key.as_bytes(), value.as_bytes())
}

#[test]
fn each_kind_is_decoded_and_filed_into_a_snapshot() {
    let mut snapshot = Snapshot::default();
    let raw = [
        ("/svc/items/orders", r#"{"replication": 2}"#),
        ("/svc/members/eu#h1", r#"{"item_limit": 5}"#),
        ("/svc/assign/orders#eu#h1#00000", ""),
        ("/svc/assign/orders#eu#h1#00001", r#"{"ready": true}"#),
    ];
    for (revision, (key, value)) in (1..).zip(raw) {
        let meta = Meta {
            create_revision: revision,
            mod_revision: revision,
            version: 1,
            lease: LeaseId::new(7),
        };
        snapshot.push(decode(key, value).unwrap(), meta);
    }
    assert_eq!(snapshot.items.len(), 1);
    assert_eq!(snapshot.members.len(), 1);
    assert_eq!(snapshot.assignments.len(), 2);
    assert_eq!(snapshot.items[0].key, ItemId::new("orders").unwrap());
    assert_eq!(snapshot.members[0].meta.create_revision, 2);
    assert!(!snapshot.assignments[0].value.ready);
    assert!(snapshot.assignments[1].value.ready);

    let local = MemberId::new("eu", "h1").unwrap();
    let state = JsonState::build(snapshot, Some(&local)).unwrap();
    assert_eq!(state.local_assignments().len(), 2);
    assert_eq!(state.member_primary_count(0), 1);
}

#[test]
fn decoded_values_carry_their_typed_key() {
    match decode(
        "/svc/members/eu#h1",
        r#"{"item_limit": 5, "exiting": true}"#,
    )
    .unwrap()
    {
        Decoded::Member(id, value) => {
            assert_eq!((id.zone(), id.suffix()), ("eu", "h1"));
            assert_eq!((value.item_limit, value.exiting), (5, true));
        }
        other => panic!("expected a member, got {other:?}"),
    }
}

#[test]
fn bad_keys_and_bad_values_name_the_key() {
    assert_eq!(
        decode("/svc/items/a b", r#"{"replication": 1}"#)
            .unwrap_err()
            .to_string(),
        "key `/svc/items/a b`: item id has forbidden character ' ' at byte 12"
    );
    assert_eq!(
        decode("/svc/items/a", r#"{"replica": 1}"#)
            .unwrap_err()
            .to_string(),
        "key `/svc/items/a`: item value is missing field `replication`"
    );
    assert_eq!(
        decode("/svc/members/eu#h", "[]").unwrap_err().to_string(),
        "key `/svc/members/eu#h`: member value must be a JSON object, found an array"
    );
    assert_eq!(
        decode("/svc/assign/a#eu#h#00000", r#"{"ready": "yes"}"#)
            .unwrap_err()
            .to_string(),
        r#"key `/svc/assign/a#eu#h#00000`: assignment value field `ready` must be true or false, found "yes""#
    );
    assert!(matches!(
        decode("/elsewhere/x", "").unwrap_err(),
        EntryError::Key(_)
    ));
}

/// Lists of rejected keys show the key next to the reason, so the reason of a bad value
/// leaves the key out; the key parser's reason names the key, having nothing else to say.
#[test]
fn the_reason_alone_leaves_out_the_key_of_a_bad_value() {
    let reason = |key, value| decode(key, value).unwrap_err().reason();
    assert_eq!(
        reason("/svc/items/a", r#"{"replica": 1}"#),
        "item value is missing field `replication`"
    );
    assert_eq!(
        reason("/svc/items/a b", r#"{"replication": 1}"#),
        "key `/svc/items/a b`: item id has forbidden character ' ' at byte 12"
    );
}

/// Issue 7: an item asking for 65535 replicas is a mistake to skip, not a reason to load it
/// on every member; the limit itself is fine.
#[test]
fn absurd_replication_is_refused() {
    let err = decode("/svc/items/orders", r#"{"replication": 65535}"#).unwrap_err();
    assert!(matches!(
        err,
        EntryError::Replication {
            replication: 65535,
            ..
        }
    ));
    assert!(err.to_string().contains("/svc/items/orders"), "{err}");
    assert_eq!(
        err.reason(),
        "replication 65535 is above the maximum of 255"
    );
    let limit = format!(r#"{{"replication": {MAX_REPLICATION}}}"#);
    assert!(decode("/svc/items/orders", &limit).is_ok());
}

#[test]
fn the_settings_are_decoded_into_the_state_and_a_bad_value_names_its_key() {
    let mut snapshot = Snapshot::default();
    let settings = decode("/svc/settings", r#"{"min_ready": 2}"#).unwrap();
    snapshot.push(settings, Meta::default());
    let state = JsonState::build(snapshot, None).unwrap();
    assert_eq!(state.settings().min_ready, 2);
    // Without the key, the defaults: nothing held back.
    let empty = JsonState::build(Snapshot::default(), None).unwrap();
    assert_eq!(empty.settings(), &Default::default());
    let bad = decode("/svc/settings", r#"{"max_moves_in_flight": 0}"#).unwrap_err();
    let message = bad.to_string();
    assert!(
        message.contains("/svc/settings") && message.contains("max_moves_in_flight"),
        "{message}"
    );
}
