//! Key layout: prefix validation, encoding, classification, every error message, and
//! (with proptest) round-trips and the byte order of encoded keys.

use apportion_core::keys::{
    AssignmentKey, ItemId, Key, KeyError, MemberId, Part, Prefix, Slot, MAX_PART_BYTES,
};
use proptest::prelude::*;

fn prefix() -> Prefix {
    Prefix::new("/svc").expect("valid prefix")
}

fn prefix_error(path: &str) -> String {
    Prefix::new(path).expect_err(path).to_string()
}

fn classify_error(key: &[u8]) -> String {
    prefix().classify(key).expect_err("invalid key").to_string()
}

#[test]
fn valid_prefixes_are_kept_verbatim() {
    for path in ["/svc", "/a/b-c/d_e", "/x.y/..z/%$"] {
        assert_eq!(Prefix::new(path).expect(path).as_str(), path);
    }
}

#[test]
fn prefix_errors_say_what_is_wrong() {
    assert_eq!(prefix_error(""), "prefix `` must start with '/'");
    assert_eq!(prefix_error("svc"), "prefix `svc` must start with '/'");
    assert_eq!(prefix_error("/"), "prefix `/` must not end with '/'");
    assert_eq!(
        prefix_error("/svc/"),
        "prefix `/svc/` must not end with '/'"
    );
    assert_eq!(
        prefix_error("/a//b"),
        "key `/a//b`: empty prefix segment at byte 3"
    );
    assert_eq!(
        prefix_error("/a/./b"),
        "key `/a/./b`: prefix segment `.` at byte 3 is not allowed (it reads as a path step)"
    );
    assert_eq!(
        prefix_error("/.."),
        "key `/..`: prefix segment `..` at byte 1 is not allowed (it reads as a path step)"
    );
    assert_eq!(
        prefix_error("/my svc"),
        "key `/my svc`: prefix segment has forbidden character ' ' at byte 3"
    );
    assert_eq!(
        prefix_error("/a/b#c"),
        "key `/a/b#c`: prefix segment has forbidden character '#' at byte 4"
    );
}

#[test]
fn directories_end_with_a_slash() {
    let p = prefix();
    assert_eq!(p.root_dir(), "/svc/");
    assert_eq!(p.items_dir(), "/svc/items/");
    assert_eq!(p.members_dir(), "/svc/members/");
    assert_eq!(p.assignments_dir(), "/svc/assign/");
}

#[test]
fn keys_encode_and_classify() {
    let p = prefix();
    let item = ItemId::new("orders-7").unwrap();
    let member = MemberId::new("eu-1a", "host-3").unwrap();
    let assignment = AssignmentKey {
        item: item.clone(),
        member: member.clone(),
        slot: Slot(2),
    };
    assert_eq!(p.item_key(&item), "/svc/items/orders-7");
    assert_eq!(p.member_key(&member), "/svc/members/eu-1a#host-3");
    assert_eq!(
        p.assignment_key(&assignment),
        "/svc/assign/orders-7#eu-1a#host-3#00002"
    );
    assert_eq!(p.classify(b"/svc/items/orders-7").unwrap(), Key::Item(item));
    assert_eq!(
        p.classify(b"/svc/members/eu-1a#host-3").unwrap(),
        Key::Member(member.clone())
    );
    assert_eq!(member.zone(), "eu-1a");
    assert_eq!(member.suffix(), "host-3");
    assert_eq!(
        p.classify(b"/svc/assign/orders-7#eu-1a#host-3#00002")
            .unwrap(),
        Key::Assignment(assignment)
    );
    assert_eq!(p.settings_key(), "/svc/settings");
    assert_eq!(p.classify(b"/svc/settings").unwrap(), Key::Settings);
    assert!(p.classify(b"/svc/settings/x").is_err());
}

#[test]
fn slots_use_five_digits_and_slot_zero_is_primary() {
    assert_eq!(Slot(0).to_string(), "00000");
    assert_eq!(Slot(u16::MAX).to_string(), "65535");
    assert!(Slot::PRIMARY.is_primary());
    assert!(!Slot(1).is_primary());
    assert_eq!(
        AssignmentKey::parse("i#z#s#65535").unwrap().slot,
        Slot(65535)
    );
}

#[test]
fn keys_outside_the_three_kinds_are_rejected_with_a_reason() {
    assert_eq!(
        classify_error(b"/other/items/x"),
        "key `/other/items/x` is not under prefix `/svc/`"
    );
    assert_eq!(
        classify_error(b"/svcx/items/x"),
        "key `/svcx/items/x` is not under prefix `/svc/`"
    );
    assert_eq!(
        classify_error(b"/svc"),
        "key `/svc` is not under prefix `/svc/`"
    );
    assert_eq!(
        classify_error(b"/svc/leader/x"),
        "key `/svc/leader/x` is under the prefix but not in items/, members/ or assign/"
    );
    assert_eq!(
        classify_error(b"/svc/items"),
        "key `/svc/items` is under the prefix but not in items/, members/ or assign/"
    );
    assert_eq!(
        classify_error(b"/svc/items/a\xffb"),
        "key `/svc/items/a\u{fffd}b` is not valid UTF-8 at byte 12"
    );
}

#[test]
fn bad_parts_are_named_with_character_and_position() {
    assert_eq!(
        classify_error(b"/svc/items/"),
        "key `/svc/items/`: empty item id at byte 11"
    );
    assert_eq!(
        classify_error(b"/svc/items/a b"),
        "key `/svc/items/a b`: item id has forbidden character ' ' at byte 12"
    );
    assert_eq!(
        classify_error(b"/svc/items/a/b"),
        "key `/svc/items/a/b`: item id has forbidden character '/' at byte 12"
    );
    assert_eq!(
        classify_error(b"/svc/items/a#b"),
        "key `/svc/items/a#b`: item id has forbidden character '#' at byte 12"
    );
    assert_eq!(
        classify_error(b"/svc/items/ab\x7f"),
        "key `/svc/items/ab\\u{7f}`: item id has forbidden character '\\u{7f}' at byte 13"
    );
    assert_eq!(
        classify_error(b"/svc/members/#h"),
        "key `/svc/members/#h`: empty zone at byte 13"
    );
    assert_eq!(
        classify_error(b"/svc/members/z#"),
        "key `/svc/members/z#`: empty suffix at byte 15"
    );
    assert_eq!(
        classify_error(b"/svc/members/z#h!"),
        "key `/svc/members/z#h!`: suffix has forbidden character '!' at byte 16"
    );
    assert_eq!(
        classify_error(b"/svc/members/zh"),
        "key `/svc/members/zh`: expected 2 '#'-separated parts, found 1"
    );
    assert_eq!(
        classify_error(b"/svc/members/z#h#x"),
        "key `/svc/members/z#h#x`: expected 2 '#'-separated parts, found 3"
    );
    assert_eq!(
        classify_error(b"/svc/assign/i#z#h"),
        "key `/svc/assign/i#z#h`: expected 4 '#'-separated parts, found 3"
    );
    assert_eq!(
        classify_error(b"/svc/assign/i#z\"#h#00000"),
        "key `/svc/assign/i#z\"#h#00000`: zone has forbidden character '\"' at byte 15"
    );
}

#[test]
fn only_the_encoded_slot_spelling_is_accepted() {
    for slot in [
        "0", "0002", "000002", "0000a", "+0001", " 0001", "65536", "99999", "",
    ] {
        let key = format!("/svc/assign/i#z#h#{slot}");
        assert_eq!(
            classify_error(key.as_bytes()),
            format!("key `{key}`: slot `{slot}` is not 5 decimal digits from 00000 to 65535")
        );
    }
}

#[test]
fn ids_are_validated_on_their_own() {
    assert_eq!(ItemId::new("a-1").unwrap().as_str(), "a-1");
    assert_eq!(
        ItemId::new("").unwrap_err(),
        KeyError::EmptyPart {
            key: String::new(),
            part: Part::Item,
            position: 0
        }
    );
    assert_eq!(
        MemberId::new("eu#1", "h").unwrap_err().to_string(),
        "key `eu#1#h`: zone has forbidden character '#' at byte 2"
    );
    assert_eq!(
        MemberId::new("eu", "").unwrap_err().to_string(),
        "key `eu#`: empty suffix at byte 3"
    );
    assert_eq!(
        MemberId::parse("eu#h").unwrap(),
        MemberId::new("eu", "h").unwrap()
    );
    assert_eq!(
        MemberId::parse("eu").unwrap_err().to_string(),
        "key `eu`: expected 2 '#'-separated parts, found 1"
    );
}

#[test]
fn dot_ids_are_refused_wherever_they_appear() {
    assert_eq!(
        ItemId::new("..").unwrap_err().to_string(),
        "key `..`: item id `..` at byte 0 is not allowed (it reads as a path step)"
    );
    assert_eq!(
        MemberId::new("eu", ".").unwrap_err().to_string(),
        "key `eu#.`: suffix `.` at byte 3 is not allowed (it reads as a path step)"
    );
    // Read from the store, the same rule: a key written by hand is reported, not used.
    assert_eq!(
        classify_error(b"/svc/assign/..#eu#h#00000"),
        "key `/svc/assign/..#eu#h#00000`: item id `..` at byte 12 is not allowed (it reads as a path step)"
    );
    for fine in ["...", ".a", "a.", "a..b"] {
        assert!(ItemId::new(fine).is_ok(), "{fine}");
    }
}

#[test]
fn ids_longer_than_the_limit_are_refused() {
    let longest = "x".repeat(MAX_PART_BYTES);
    assert!(ItemId::new(&longest).is_ok());
    assert!(MemberId::new(&longest, &longest).is_ok());
    let long = "é".repeat(MAX_PART_BYTES / 2 + 1);
    assert_eq!(
        ItemId::new(&long).unwrap_err(),
        KeyError::TooLong {
            key: long.clone(),
            part: Part::Item,
            length: MAX_PART_BYTES + 2,
            position: 0
        }
    );
    let key = format!("/svc/members/eu#{long}");
    assert!(classify_error(key.as_bytes()).ends_with(&format!(
        "suffix at byte 16 is {} bytes long; the most is {MAX_PART_BYTES}",
        MAX_PART_BYTES + 2
    )));
    assert!(Prefix::new(&format!("/{long}")).is_err());
}

#[test]
fn every_message_is_one_line_with_the_text_escaped() {
    assert_eq!(
        ItemId::new("nl\nx").unwrap_err().to_string(),
        "key `nl\\nx`: item id has forbidden character '\\n' at byte 2"
    );
    assert_eq!(prefix_error("svc\n"), "prefix `svc\\n` must start with '/'");
    assert_eq!(
        MemberId::new("a\tb", "h").unwrap_err().to_string(),
        "key `a\\tb#h`: zone has forbidden character '\\t' at byte 1"
    );
}

/// Ids from characters around the edges of what is allowed: just above `#`, both sides of
/// `/`, the top of ASCII, and multi-byte characters.
fn id() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop::sample::select(vec![
            '$', '%', '-', '.', '0', '9', 'A', 'a', 'z', '~', 'é', '日',
        ]),
        1..5,
    )
    .prop_map(|chars| chars.into_iter().collect())
    .prop_filter("`.` and `..` are not ids", |id: &String| {
        id != "." && id != ".."
    })
}

fn assignment() -> impl Strategy<Value = AssignmentKey> {
    (id(), id(), id(), 0..=u16::MAX).prop_map(|(item, zone, suffix, slot)| AssignmentKey {
        item: ItemId::new(&item).unwrap(),
        member: MemberId::new(&zone, &suffix).unwrap(),
        slot: Slot(slot),
    })
}

proptest! {
    #[test]
    fn every_key_round_trips(key in assignment()) {
        let p = prefix();
        let item = p.classify(p.item_key(&key.item).as_bytes()).unwrap();
        prop_assert_eq!(item, Key::Item(key.item.clone()));
        let member = p.classify(p.member_key(&key.member).as_bytes()).unwrap();
        prop_assert_eq!(member, Key::Member(key.member.clone()));
        let encoded = p.assignment_key(&key);
        prop_assert_eq!(p.classify(encoded.as_bytes()).unwrap(), Key::Assignment(key));
    }

    #[test]
    fn key_byte_order_is_item_zone_suffix_slot_order(a in assignment(), b in assignment()) {
        let p = prefix();
        let tuple = |k: &AssignmentKey| {
            (k.item.as_str().to_owned(), k.member.zone().to_owned(), k.member.suffix().to_owned(), k.slot.0)
        };
        let by_bytes = p.assignment_key(&a).into_bytes().cmp(&p.assignment_key(&b).into_bytes());
        prop_assert_eq!(by_bytes, tuple(&a).cmp(&tuple(&b)));
        prop_assert_eq!(a.cmp(&b), by_bytes);
        let members = p.member_key(&a.member).into_bytes().cmp(&p.member_key(&b.member).into_bytes());
        prop_assert_eq!(members, (a.member.zone(), a.member.suffix()).cmp(&(b.member.zone(), b.member.suffix())));
    }

    #[test]
    fn ids_with_a_forbidden_character_are_rejected(
        before in id(),
        bad in prop::sample::select(vec!['\0', '\n', ' ', '!', '"', '#', '/', '\u{7f}', '\u{85}']),
        after in id(),
    ) {
        let text = format!("{before}{bad}{after}");
        match ItemId::new(&text) {
            Err(KeyError::ForbiddenCharacter { character, position, .. }) => {
                prop_assert_eq!(character, bad);
                prop_assert_eq!(position, before.len());
            }
            other => prop_assert!(false, "expected a forbidden character, got {:?}", other),
        }
    }
}
