//! The key layout in the store: a validated [`Prefix`], typed ids, and the encoding and
//! parsing of the three kinds of keys.
//!
//! Under a prefix `P` the store holds:
//!
//! - `P/items/ID`: one key per item (shard) to place.
//! - `P/members/ZONE#SUFFIX`: one key per live member, under the member's lease.
//! - `P/assign/ITEM#ZONE#SUFFIX#SLOT`: one key per placed copy, under the member's lease.
//!
//! `#` separates the parts because it is the lowest visible ASCII character that shells
//! leave alone, and ids may not contain any character at or below it. A part therefore
//! always sorts before any longer part it is a prefix of, so the byte order of keys is the
//! order of the tuple (item, zone, suffix, slot). Slots are written as exactly
//! [`SLOT_DIGITS`] zero-padded decimal digits so that their byte order is their numeric
//! order; the parser accepts exactly that form and nothing else, so every key has one
//! spelling.

use std::fmt;
use std::sync::Arc;

/// The character that separates the parts of member and assignment keys.
pub const SEPARATOR: char = '#';

/// The longest id part (item id, zone, suffix, prefix segment) in bytes: room for any
/// host or pod name, while keeping keys (which etcd, the watch stream and every member
/// hold, an assignment key three ids at once) and the lines that print them short.
pub const MAX_PART_BYTES: usize = 256;

/// How many decimal digits a slot takes in an assignment key: enough for every `u16`, so
/// encoding never fails, and fixed so that byte order equals numeric order.
pub const SLOT_DIGITS: usize = 5;

const ITEMS_DIR: &str = "items";
const MEMBERS_DIR: &str = "members";
const ASSIGN_DIR: &str = "assign";
/// The one key of the cluster settings, `P/settings`.
const SETTINGS_KEY: &str = "settings";
/// The directory of away records (`crate::away`), one per member that left to come back.
const AWAY_DIR: &str = "away";

/// The part of a key (or of a prefix) that an error is about, so that messages can say
/// which component a user has to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// One `/`-separated segment of the prefix.
    PrefixSegment,
    /// The item id, in an item key or the first part of an assignment key.
    Item,
    /// The member's failure zone.
    Zone,
    /// The member's suffix, which tells members of one zone apart.
    Suffix,
    /// The slot number of an assignment.
    Slot,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::PrefixSegment => "prefix segment",
            Part::Item => "item id",
            Part::Zone => "zone",
            Part::Suffix => "suffix",
            Part::Slot => "slot",
        })
    }
}

/// Why a key, a prefix or an id was rejected. Every variant names the text it is about,
/// and where a single character is to blame, the character and its byte position in that
/// text, so that an operator can fix the offending entry without guessing. The text is
/// shown escaped (`a\nb`), so that every message is one line, however odd the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The prefix does not start with `/`.
    #[error("prefix `{}` must start with '/'", Escaped(.prefix))]
    PrefixNotAbsolute {
        /// The rejected prefix.
        prefix: String,
    },
    /// The prefix ends with `/` (this includes the root `/` itself).
    #[error("prefix `{}` must not end with '/'", Escaped(.prefix))]
    PrefixTrailingSlash {
        /// The rejected prefix.
        prefix: String,
    },
    /// A part is `.` or `..`: a prefix with one is ambiguous as a path, and an id that
    /// reads as a path step is a trap wherever ids become file or URL paths (a service
    /// run with `--exec` that keeps its data under `$APPORTION_ITEM`).
    #[error("key `{}`: {part} `{dots}` at byte {position} is not allowed (it reads as a path step)", Escaped(.key))]
    DotPart {
        /// The text being parsed.
        key: String,
        /// Which part it is.
        part: Part,
        /// The part, `.` or `..`.
        dots: String,
        /// Byte position of the part in the text.
        position: usize,
    },
    /// A part is longer than [`MAX_PART_BYTES`].
    #[error("key `{}`: {part} at byte {position} is {length} bytes long; the most is {MAX_PART_BYTES}", Escaped(.key))]
    TooLong {
        /// The text being parsed.
        key: String,
        /// Which part is too long.
        part: Part,
        /// Its length in bytes.
        length: usize,
        /// Byte position where the part starts.
        position: usize,
    },
    /// A part is empty, such as `a##b` or a prefix with `//`.
    #[error("key `{}`: empty {part} at byte {position}", Escaped(.key))]
    EmptyPart {
        /// The text being parsed.
        key: String,
        /// Which part is empty.
        part: Part,
        /// Byte position where the part should start.
        position: usize,
    },
    /// A part contains `/`, `#` or another character at or below `#` (space, `"`, `!`,
    /// control characters), or a control character above it (DEL, C1 controls).
    #[error("key `{}`: {part} has forbidden character {character:?} at byte {position}", Escaped(.key))]
    ForbiddenCharacter {
        /// The text being parsed.
        key: String,
        /// Which part holds the character.
        part: Part,
        /// The offending character.
        character: char,
        /// Byte position of the character in the text.
        position: usize,
    },
    /// A member or assignment key has the wrong number of `#`-separated parts.
    #[error("key `{}`: expected {expected} '#'-separated parts, found {found}", Escaped(.key))]
    PartCount {
        /// The text being parsed.
        key: String,
        /// How many parts this kind of key has.
        expected: usize,
        /// How many parts were found.
        found: usize,
    },
    /// The slot is not exactly [`SLOT_DIGITS`] decimal digits, or is above `u16::MAX`.
    #[error("key `{}`: slot `{}` is not {SLOT_DIGITS} decimal digits from 00000 to 65535", Escaped(.key), Escaped(.slot))]
    BadSlot {
        /// The text being parsed.
        key: String,
        /// The slot text as found.
        slot: String,
    },
    /// The key is not valid UTF-8; ids are text.
    #[error("key `{}` is not valid UTF-8 at byte {position}", Escaped(.key))]
    NotUtf8 {
        /// The key with invalid bytes replaced by U+FFFD.
        key: String,
        /// Byte position of the first invalid byte.
        position: usize,
    },
    /// The key does not start with `PREFIX/`.
    #[error("key `{}` is not under prefix `{prefix}/`", Escaped(.key))]
    OutsidePrefix {
        /// The key.
        key: String,
        /// The prefix it was checked against.
        prefix: String,
    },
    /// The key is under the prefix but not in `items/`, `members/` or `assign/`.
    #[error("key `{}` is under the prefix but not in items/, members/ or assign/", Escaped(.key))]
    UnknownKind {
        /// The key.
        key: String,
    },
}

/// Text shown in a message: control characters and `\` escaped as in Rust source
/// (`\n`, `\u{7f}`, `\\`), everything else as it is. A newline in an id then cannot
/// cut a message short or forge a second line, and the escape cannot be mistaken for an
/// id that spells it out.
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() || c == '\\' {
                write!(f, "{}", c.escape_debug())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// Whether an id (item id, zone, suffix) may hold `c`: not `/`, nothing at or below `#`
/// (the separator, space, quotes, control characters), no other control character. Those
/// would make a key ambiguous or unreadable; code that makes up an id (a default suffix
/// from the host name) replaces what this refuses, so the rule is stated once.
pub fn allowed_in_id(c: char) -> bool {
    !(c <= SEPARATOR || c == '/' || c.is_control())
}

/// Checks one id-like part: non-empty, not `.` or `..`, at most [`MAX_PART_BYTES`] long,
/// no character at or below `#`, no `/`, and no other control character (DEL, C1
/// controls), which would make keys unreadable. `offset` is where the part starts in
/// `key`, so that positions refer to the whole text. Every id and every key read from the
/// store goes through here, so what an admin command refuses to write, a member refuses
/// to read, and the other way round.
fn check_part(key: &str, part: Part, text: &str, offset: usize) -> Result<(), KeyError> {
    if text.is_empty() {
        return Err(KeyError::EmptyPart {
            key: key.to_owned(),
            part,
            position: offset,
        });
    }
    if text == "." || text == ".." {
        return Err(KeyError::DotPart {
            key: key.to_owned(),
            part,
            dots: text.to_owned(),
            position: offset,
        });
    }
    if text.len() > MAX_PART_BYTES {
        return Err(KeyError::TooLong {
            key: key.to_owned(),
            part,
            length: text.len(),
            position: offset,
        });
    }
    match text.char_indices().find(|&(_, c)| !allowed_in_id(c)) {
        Some((at, character)) => Err(KeyError::ForbiddenCharacter {
            key: key.to_owned(),
            part,
            character,
            position: offset + at,
        }),
        None => Ok(()),
    }
}

/// The root of one apportion deployment in the store: a clean absolute path such as
/// `/my-service`. Validated once so that every key built from it is well formed and no
/// two spellings name the same place.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Prefix {
    path: Box<str>,
}

impl Prefix {
    /// Validates `path`: it starts with `/`, does not end with `/`, and every segment is
    /// a valid id part (non-empty, not `.` or `..`, at most [`MAX_PART_BYTES`], free of
    /// characters at or below `#` and of control characters).
    pub fn new(path: &str) -> Result<Self, KeyError> {
        let Some(rest) = path.strip_prefix('/') else {
            return Err(KeyError::PrefixNotAbsolute {
                prefix: path.to_owned(),
            });
        };
        if rest.is_empty() || rest.ends_with('/') {
            return Err(KeyError::PrefixTrailingSlash {
                prefix: path.to_owned(),
            });
        }
        let mut offset = 1;
        for segment in rest.split('/') {
            check_part(path, Part::PrefixSegment, segment, offset)?;
            offset += segment.len() + 1;
        }
        Ok(Self { path: path.into() })
    }

    /// The prefix as given, without a trailing `/`.
    pub fn as_str(&self) -> &str {
        &self.path
    }

    /// The directory holding item keys, `P/items/`, for range reads and watches.
    pub fn items_dir(&self) -> String {
        self.dir(ITEMS_DIR)
    }

    /// The directory holding member keys, `P/members/`, for range reads and watches.
    pub fn members_dir(&self) -> String {
        self.dir(MEMBERS_DIR)
    }

    /// The directory holding assignment keys, `P/assign/`, for range reads and watches.
    pub fn assignments_dir(&self) -> String {
        self.dir(ASSIGN_DIR)
    }

    /// Everything under the prefix, `P/`, for a single watch over all three kinds.
    pub fn root_dir(&self) -> String {
        format!("{}/", self.path)
    }

    fn dir(&self, kind: &str) -> String {
        format!("{}/{kind}/", self.path)
    }

    /// The key of the cluster settings: `P/settings` (see `settings`).
    pub fn settings_key(&self) -> String {
        format!("{}/{SETTINGS_KEY}", self.path)
    }

    /// The key of a member's away record: `P/away/ZONE#SUFFIX` (see `away`).
    pub fn away_key(&self, member: &MemberId) -> String {
        format!("{}/{AWAY_DIR}/{member}", self.path)
    }

    /// The directory holding away records, `P/away/`.
    pub fn away_dir(&self) -> String {
        self.dir(AWAY_DIR)
    }

    /// The key of an item: `P/items/ID`.
    pub fn item_key(&self, item: &ItemId) -> String {
        format!("{}/{ITEMS_DIR}/{item}", self.path)
    }

    /// The key of a member: `P/members/ZONE#SUFFIX`.
    pub fn member_key(&self, member: &MemberId) -> String {
        format!("{}/{MEMBERS_DIR}/{member}", self.path)
    }

    /// The key of an assignment: `P/assign/ITEM#ZONE#SUFFIX#SLOT`.
    pub fn assignment_key(&self, assignment: &AssignmentKey) -> String {
        format!("{}/{ASSIGN_DIR}/{assignment}", self.path)
    }

    /// Tells which kind of key `key` is and parses it. The store's watcher sees raw bytes,
    /// so this accepts bytes; the error says why a key is not one of the three kinds.
    pub fn classify(&self, key: &[u8]) -> Result<Key, KeyError> {
        let text = std::str::from_utf8(key).map_err(|e| KeyError::NotUtf8 {
            key: String::from_utf8_lossy(key).into_owned(),
            position: e.valid_up_to(),
        })?;
        let rest = text
            .strip_prefix(&*self.path)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| KeyError::OutsidePrefix {
                key: text.to_owned(),
                prefix: self.path.to_string(),
            })?;
        if rest == SETTINGS_KEY {
            return Ok(Key::Settings);
        }
        let (kind, id) = rest.split_once('/').ok_or_else(|| KeyError::UnknownKind {
            key: text.to_owned(),
        })?;
        let offset = text.len() - id.len();
        match kind {
            ITEMS_DIR => ItemId::parse_in(text, id, offset).map(Key::Item),
            MEMBERS_DIR => MemberId::parse_in(text, id, offset).map(Key::Member),
            ASSIGN_DIR => AssignmentKey::parse_in(text, id, offset).map(Key::Assignment),
            AWAY_DIR => MemberId::parse_in(text, id, offset).map(Key::Away),
            _ => Err(KeyError::UnknownKind {
                key: text.to_owned(),
            }),
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)
    }
}

/// A key under the prefix, parsed into its typed id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// `P/items/ID`.
    Item(ItemId),
    /// `P/members/ZONE#SUFFIX`.
    Member(MemberId),
    /// `P/assign/ITEM#ZONE#SUFFIX#SLOT`.
    Assignment(AssignmentKey),
    /// `P/settings`.
    Settings,
    /// `P/away/ZONE#SUFFIX`: the record of a member that is away for a while.
    Away(MemberId),
}

/// The id of an item (shard). Validated text, stored once and shared: a copy (every
/// state build copies every id it keeps) is a reference count, not an allocation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemId(Arc<str>);

impl ItemId {
    /// Validates an item id: non-empty, not `.` or `..`, at most [`MAX_PART_BYTES`], no
    /// `/`, no character at or below `#`, no control character.
    pub fn new(id: &str) -> Result<Self, KeyError> {
        Self::parse_in(id, id, 0)
    }

    fn parse_in(key: &str, id: &str, offset: usize) -> Result<Self, KeyError> {
        check_part(key, Part::Item, id, offset)?;
        Ok(Self(id.into()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ItemId {
    /// The id as text, so code can treat both id types alike when it only needs text
    /// (lookup tables, order).
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of a member: its failure zone and a suffix that tells members of one zone apart.
///
/// Stored as the single string `ZONE#SUFFIX` (one shared allocation, and exactly the key's
/// spelling). Because `#` sorts below every character a zone may contain, ordering these
/// strings orders members by (zone, suffix), which keeps the members of a zone contiguous.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(Arc<str>);

impl MemberId {
    /// Validates both parts and builds the id.
    pub fn new(zone: &str, suffix: &str) -> Result<Self, KeyError> {
        let joined = format!("{zone}{SEPARATOR}{suffix}");
        check_part(&joined, Part::Zone, zone, 0)?;
        check_part(&joined, Part::Suffix, suffix, zone.len() + 1)?;
        Ok(Self(joined.into()))
    }

    /// Parses the `ZONE#SUFFIX` spelling used in member keys.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        Self::parse_in(text, text, 0)
    }

    fn parse_in(key: &str, id: &str, offset: usize) -> Result<Self, KeyError> {
        let [zone, suffix] = split_parts(key, id)?;
        check_part(key, Part::Zone, zone, offset)?;
        check_part(key, Part::Suffix, suffix, offset + zone.len() + 1)?;
        Ok(Self(id.into()))
    }

    /// The failure zone: copies of one item are spread over zones.
    pub fn zone(&self) -> &str {
        self.split().0
    }

    /// The part that tells members of one zone apart (a host name, a pod name).
    pub fn suffix(&self) -> &str {
        self.split().1
    }

    fn split(&self) -> (&str, &str) {
        // Validated on construction: exactly one separator.
        self.0.split_once(SEPARATOR).unwrap_or((&self.0, ""))
    }

    /// The `ZONE#SUFFIX` spelling.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for MemberId {
    /// The id as text, so code can treat both id types alike when it only needs text
    /// (lookup tables, order).
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which copy of an item an assignment is: slot 0 is the primary, the others replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot(pub u16);

impl Slot {
    /// The primary copy's slot.
    pub const PRIMARY: Slot = Slot(0);

    /// Whether this is the primary copy, which applications usually route writes to.
    pub fn is_primary(self) -> bool {
        self == Self::PRIMARY
    }
}

impl fmt::Display for Slot {
    /// Writes the key form: exactly [`SLOT_DIGITS`] zero-padded digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:0width$}", self.0, width = SLOT_DIGITS)
    }
}

/// The id of one placed copy: which item, on which member, in which slot.
///
/// The derived order (item, member, slot) is the byte order of the encoded keys, so a
/// sorted list of assignments groups each item's copies together.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AssignmentKey {
    /// The item placed.
    pub item: ItemId,
    /// The member holding the copy.
    pub member: MemberId,
    /// Which copy this is.
    pub slot: Slot,
}

impl AssignmentKey {
    /// Parses the `ITEM#ZONE#SUFFIX#SLOT` spelling used in assignment keys.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        Self::parse_in(text, text, 0)
    }

    fn parse_in(key: &str, id: &str, offset: usize) -> Result<Self, KeyError> {
        let [item, zone, suffix, slot] = split_parts(key, id)?;
        let member_len = zone.len() + 1 + suffix.len();
        let item = ItemId::parse_in(key, item, offset)?;
        let member_at = item.0.len() + 1;
        let member = MemberId::parse_in(
            key,
            &id[member_at..member_at + member_len],
            offset + member_at,
        )?;
        let bad_slot = || KeyError::BadSlot {
            key: key.to_owned(),
            slot: slot.to_owned(),
        };
        if slot.len() != SLOT_DIGITS || !slot.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_slot());
        }
        let slot = slot.parse::<u16>().map(Slot).map_err(|_| bad_slot())?;
        Ok(Self { item, member, slot })
    }
}

impl fmt::Display for AssignmentKey {
    /// Writes the `ITEM#ZONE#SUFFIX#SLOT` spelling.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{SEPARATOR}{}{SEPARATOR}{}",
            self.item, self.member, self.slot
        )
    }
}

/// Splits `id` at `#` into exactly `N` parts, or says how many there were.
fn split_parts<'a, const N: usize>(key: &str, id: &'a str) -> Result<[&'a str; N], KeyError> {
    let mut parts = [""; N];
    let mut found = 0;
    for part in id.split(SEPARATOR) {
        if let Some(slot) = parts.get_mut(found) {
            *slot = part;
        }
        found += 1;
    }
    if found == N {
        Ok(parts)
    } else {
        Err(KeyError::PartCount {
            key: key.to_owned(),
            expected: N,
            found,
        })
    }
}
