//! The default JSON values: decoding, defaults, unknown fields kept through re-encoding,
//! and error messages that name the field.

use apportion_core::values::{
    AssignmentValue, Decoder, ItemValue, JsonDecoder, JsonItem, JsonMember, JsonStatus, MemberValue,
};
use serde_json::json;

fn item_error(text: &str) -> String {
    JsonDecoder
        .decode_item(text.as_bytes())
        .unwrap_err()
        .to_string()
}

fn member_error(text: &str) -> String {
    JsonDecoder
        .decode_member(text.as_bytes())
        .unwrap_err()
        .to_string()
}

fn status_error(text: &str) -> String {
    JsonDecoder
        .decode_assignment(text.as_bytes())
        .unwrap_err()
        .to_string()
}

#[test]
fn item_values_decode_with_exclusive_defaulting_to_false() {
    let item = JsonDecoder
        .decode_item(br#"{"replication": 3, "exclusive": true}"#)
        .unwrap();
    assert_eq!((item.replication(), item.is_exclusive()), (3, true));
    let item = JsonDecoder.decode_item(br#"{"replication": 0}"#).unwrap();
    assert_eq!((item.replication(), item.is_exclusive()), (0, false));
}

#[test]
fn member_values_decode_with_exiting_defaulting_to_false() {
    let member = JsonDecoder
        .decode_member(br#"{"item_limit": 100, "exiting": true}"#)
        .unwrap();
    assert_eq!((member.item_limit(), member.is_exiting()), (100, true));
    let member = JsonDecoder
        .decode_member(br#"{"item_limit": 4294967295}"#)
        .unwrap();
    assert_eq!(
        (member.item_limit(), member.is_exiting()),
        (u32::MAX, false)
    );
}

#[test]
fn an_empty_or_bare_status_is_not_ready() {
    assert!(!JsonDecoder.decode_assignment(b"").unwrap().is_ready());
    assert!(!JsonDecoder.decode_assignment(b"{}").unwrap().is_ready());
    assert!(!JsonDecoder
        .decode_assignment(br#"{"ready": false}"#)
        .unwrap()
        .is_ready());
    assert!(JsonDecoder
        .decode_assignment(br#"{"ready": true}"#)
        .unwrap()
        .is_ready());
}

#[test]
fn unknown_fields_are_kept_through_encoding() {
    let text = br#"{"replication": 2, "database": "orders", "weights": [1, 2]}"#;
    let item = JsonDecoder.decode_item(text).unwrap();
    assert_eq!(item.extra.get("database"), Some(&json!("orders")));
    assert!(!item.extra.contains_key("replication"));
    let encoded = JsonDecoder.encode_item(&item).unwrap();
    let reparsed: serde_json::Value = serde_json::from_slice(&encoded).unwrap();
    assert_eq!(
        reparsed,
        json!({"replication": 2, "exclusive": false, "database": "orders", "weights": [1, 2]})
    );
    assert_eq!(JsonDecoder.decode_item(&encoded).unwrap(), item);
}

#[test]
fn every_value_round_trips_and_known_fields_win_over_extra_ones() {
    let mut member = JsonMember {
        item_limit: 7,
        exiting: true,
        ..JsonMember::default()
    };
    member.extra.insert("address".into(), json!("10.0.0.1:80"));
    let encoded = JsonDecoder.encode_member(&member).unwrap();
    assert_eq!(JsonDecoder.decode_member(&encoded).unwrap(), member);

    let mut status = JsonStatus {
        ready: true,
        ..JsonStatus::default()
    };
    status.extra.insert("ready".into(), json!(false));
    let encoded = JsonDecoder.encode_assignment(&status).unwrap();
    assert!(JsonDecoder.decode_assignment(&encoded).unwrap().is_ready());

    let item = JsonItem {
        replication: 65535,
        exclusive: true,
        ..JsonItem::default()
    };
    let encoded = JsonDecoder.encode_item(&item).unwrap();
    assert_eq!(JsonDecoder.decode_item(&encoded).unwrap(), item);
}

#[test]
fn missing_required_fields_are_named() {
    assert_eq!(
        item_error(r#"{"exclusive": true}"#),
        "item value is missing field `replication`"
    );
    assert_eq!(
        member_error(r#"{"exiting": false}"#),
        "member value is missing field `item_limit`"
    );
}

#[test]
fn wrong_types_and_ranges_name_the_field_and_what_was_found() {
    assert_eq!(
        item_error(r#"{"replication": "3"}"#),
        r#"item value field `replication` must be an integer from 0 to 65535, found "3""#
    );
    assert_eq!(
        item_error(r#"{"replication": 65536}"#),
        "item value field `replication` must be an integer from 0 to 65535, found 65536"
    );
    assert_eq!(
        item_error(r#"{"replication": -1}"#),
        "item value field `replication` must be an integer from 0 to 65535, found -1"
    );
    assert_eq!(
        item_error(r#"{"replication": 1.5}"#),
        "item value field `replication` must be an integer from 0 to 65535, found 1.5"
    );
    assert_eq!(
        item_error(r#"{"replication": 1, "exclusive": "no"}"#),
        r#"item value field `exclusive` must be true or false, found "no""#
    );
    assert_eq!(
        member_error(r#"{"item_limit": 4294967296}"#),
        "member value field `item_limit` must be an integer from 0 to 4294967295, found 4294967296"
    );
    assert_eq!(
        member_error(r#"{"item_limit": 1, "exiting": null}"#),
        "member value field `exiting` must be true or false, found null"
    );
    assert_eq!(
        status_error(r#"{"ready": 1}"#),
        "assignment value field `ready` must be true or false, found 1"
    );
}

#[test]
fn values_that_are_not_json_objects_are_rejected() {
    assert_eq!(
        item_error("[1]"),
        "item value must be a JSON object, found an array"
    );
    assert_eq!(
        member_error("100"),
        "member value must be a JSON object, found a number"
    );
    assert_eq!(
        status_error("true"),
        "assignment value must be a JSON object, found a boolean"
    );
    assert_eq!(
        item_error(r#"{"replication": 3"#),
        "item value is not valid JSON: EOF while parsing an object at line 1 column 17"
    );
    assert!(member_error("").starts_with("member value is not valid JSON: EOF"));
}

#[test]
fn a_release_request_survives_a_round_trip_and_keeps_the_status() {
    let decoder = JsonDecoder;
    let mut status = decoder
        .decode_assignment(br#"{"ready": true, "lag": 3}"#)
        .unwrap();
    assert!(!status.is_releasing());
    status.request_release();
    let bytes = decoder.encode_assignment(&status).unwrap();
    let back = decoder.decode_assignment(&bytes).unwrap();
    assert!(back.is_releasing() && back.is_ready());
    assert_eq!(back.extra["lag"], 3);
    assert!(!decoder.decode_assignment(b"").unwrap().is_releasing());
}

#[test]
fn an_items_own_min_ready_and_a_restarting_member_round_trip() {
    let item = JsonDecoder
        .decode_item(br#"{"replication": 3, "min_ready": 2}"#)
        .unwrap();
    assert_eq!(item.min_ready(), Some(2));
    let again = JsonDecoder
        .decode_item(&JsonDecoder.encode_item(&item).unwrap())
        .unwrap();
    assert_eq!(again, item);
    let plain = JsonDecoder.decode_item(br#"{"replication": 3}"#).unwrap();
    assert_eq!(plain.min_ready(), None);
    assert!(!String::from_utf8(JsonDecoder.encode_item(&plain).unwrap())
        .unwrap()
        .contains("min_ready"));
    assert!(item_error(r#"{"replication": 3, "min_ready": -1}"#).contains("min_ready"));
    let mut member = JsonDecoder.decode_member(br#"{"item_limit": 5}"#).unwrap();
    assert!(!member.is_restarting());
    member.set_restarting(true);
    let again = JsonDecoder
        .decode_member(&JsonDecoder.encode_member(&member).unwrap())
        .unwrap();
    assert!(again.is_restarting());
}
