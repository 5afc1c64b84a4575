//! The values stored under item, member and assignment keys.
//!
//! Applications bring their own value types (their items may carry a database URL, their
//! members an address) through a [`Decoder`]; the allocator only reads what the traits
//! below expose. [`JsonDecoder`] is the default: small JSON objects that keep any fields
//! they do not know, so an application can add its own next to the ones apportion reads.

use serde_json::{Map, Value};

/// The most replicas an item may ask for. A value asking for more is taken for a mistake
/// (a typo, a garbled write), not a wish to load the item on every member there is: it is
/// rejected like any value that does not decode (skipped, logged and counted), whatever
/// the decoder.
pub const MAX_REPLICATION: u16 = 255;

/// What the allocator reads from an item's value.
pub trait ItemValue {
    /// How many copies of the item to place: slot 0 is the primary, the others are
    /// replicas, and 0 means the item is not placed at all (parked).
    fn replication(&self) -> u16;

    /// Whether at most one member may serve the item at any instant (a single writer, a
    /// leader-elected resource). Such an item has one owner at most, whatever its
    /// replication, and moves break-before-make: the owner is asked to release it and the
    /// next owner is assigned only once the old one has let go or its lease has expired.
    fn is_exclusive(&self) -> bool;

    /// The fewest ready copies this item may be left with by a planned action (a freeze, a
    /// throttle, a member away), if the item sets its own; `None` follows the cluster's
    /// `min_ready` ([`ClusterSettings::min_ready_of`](crate::settings::ClusterSettings::min_ready_of)).
    /// An item whose service cannot run short sets it to its replication.
    fn min_ready(&self) -> Option<u32> {
        None
    }

    /// How many copies the allocator places: the replication, but at most 1 for an
    /// exclusive item (one owner at a time). The solver and the tools that explain a
    /// shortfall must agree on it, so it is said once, here.
    fn copies_wanted(&self) -> u16 {
        if self.is_exclusive() {
            self.replication().min(1)
        } else {
            self.replication()
        }
    }
}

/// What the allocator reads from a member's value.
pub trait MemberValue {
    /// How many copies this member may hold; 0 makes it a member that takes no work
    /// (it can still lead).
    fn item_limit(&self) -> u32;

    /// Whether the member is draining before shutdown: it keeps its copies until they are
    /// moved, but gets no new ones and its capacity no longer counts.
    fn is_exiting(&self) -> bool;

    /// Changes the limit; a member lowers it to shed load, or raises it to take more.
    fn set_item_limit(&mut self, item_limit: u32);

    /// Marks the member draining (or not); a member sets it on shutdown.
    fn set_exiting(&mut self, exiting: bool);

    /// Whether the member has stepped down from leading: a leader whose solves keep
    /// failing (too slow, or a defect) marks itself so that the next-oldest member leads.
    /// It still serves; it leads again only if every member has stepped down.
    fn is_yielding(&self) -> bool;

    /// Marks the member stepped down from leading (or not).
    fn set_yielding(&mut self, yielding: bool);

    /// Whether the member is leaving to come back (a restart, see [`away`](crate::away)):
    /// it hands its primaries and exclusive items to others and takes nothing new, but
    /// its replicas stay where they are, and are not placed elsewhere while it is away.
    fn is_restarting(&self) -> bool;

    /// Marks the member leaving to come back (or not); a member sets it before a restart.
    fn set_restarting(&mut self, restarting: bool);
}

/// What the allocator reads from an assignment's value: the status the member writes, and
/// the leader's request that the member let go of an exclusive item.
pub trait AssignmentValue {
    /// Whether the member has loaded the item and can serve it; the default consistency
    /// check waits for this before it moves a primary or drops an old copy.
    fn is_ready(&self) -> bool;

    /// Whether the leader has asked the member to release this (exclusive) item: the member
    /// stops serving it, then deletes the assignment to acknowledge.
    fn is_releasing(&self) -> bool;

    /// Marks the value as a release request; the leader writes the result back.
    fn request_release(&mut self);

    /// Marks the member's copy ready (it serves the item) or not; what a member writes
    /// once it has loaded the item, or when it can no longer serve it.
    fn set_ready(&mut self, ready: bool);
}

/// Turns stored bytes into the application's value types and back. Members encode their
/// own value and their assignments' status, the leader encodes new assignments, and every
/// process decodes what it watches.
///
/// A member's tasks share the decoder and its values, and copy the values into each new
/// picture of the cluster, hence the `Clone + Send + Sync` bounds.
pub trait Decoder: Send + Sync + 'static {
    /// The value under `P/items/ID`.
    type Item: ItemValue + Clone + Send + Sync;
    /// The value under `P/members/ZONE#SUFFIX`.
    type Member: MemberValue + Clone + Send + Sync;
    /// The value under `P/assign/...`; the leader creates it, the member updates it.
    type Assignment: AssignmentValue + Clone + Send + Sync;
    /// Says what is wrong with a value, so the runtime can log the key and the reason.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Decodes an item value. An error is not fatal: the key is skipped and reported (a
    /// view keeps the last good value it read, if any), and never deleted, so a decoder
    /// should refuse what it cannot read rather than guess.
    fn decode_item(&self, bytes: &[u8]) -> Result<Self::Item, Self::Error>;
    /// Decodes a member value. An error is handled as for items; the member itself writes
    /// its own value back when it sees it garbled.
    fn decode_member(&self, bytes: &[u8]) -> Result<Self::Member, Self::Error>;
    /// Decodes an assignment value. The leader creates assignments with an empty value, so
    /// an empty value must decode to a status that is not ready.
    fn decode_assignment(&self, bytes: &[u8]) -> Result<Self::Assignment, Self::Error>;

    /// Encodes an item value, for tools that write items. What it writes must decode to
    /// the same value, since every process reads it back.
    fn encode_item(&self, value: &Self::Item) -> Result<Vec<u8>, Self::Error>;
    /// Encodes a member value: the member writes it when it announces itself and whenever
    /// its limit, drain or step-down changes, so it must round-trip, and should keep
    /// whatever the application stored beside the fields apportion reads.
    fn encode_member(&self, value: &Self::Member) -> Result<Vec<u8>, Self::Error>;
    /// Encodes an assignment value: the member writes its status with it, and the leader
    /// copies a status when it moves a copy to another slot or asks for a release, so it
    /// must round-trip (a copy that lost its ready mark in a move would look new).
    fn encode_assignment(&self, value: &Self::Assignment) -> Result<Vec<u8>, Self::Error>;
}

/// Which kind of value a [`JsonError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// An item value.
    Item,
    /// A member value.
    Member,
    /// An assignment status.
    Assignment,
}

impl std::fmt::Display for ValueKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ValueKind::Item => "item",
            ValueKind::Member => "member",
            ValueKind::Assignment => "assignment",
        })
    }
}

/// Why [`JsonDecoder`] rejected a value: which kind of value, and which field.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The bytes are not JSON at all.
    #[error("{kind} value is not valid JSON: {source}")]
    Syntax {
        /// The kind of value.
        kind: ValueKind,
        /// The parser's message, with line and column.
        source: serde_json::Error,
    },
    /// The JSON is not an object.
    #[error("{kind} value must be a JSON object, found {found}")]
    NotObject {
        /// The kind of value.
        kind: ValueKind,
        /// The JSON type found instead.
        found: &'static str,
    },
    /// A required field is absent.
    #[error("{kind} value is missing field `{field}`")]
    Missing {
        /// The kind of value.
        kind: ValueKind,
        /// The missing field.
        field: &'static str,
    },
    /// A field holds the wrong type or is out of range.
    #[error("{kind} value field `{field}` must be {expected}, found {found}")]
    Invalid {
        /// The kind of value.
        kind: ValueKind,
        /// The offending field.
        field: &'static str,
        /// What the field must hold.
        expected: &'static str,
        /// The value found, as JSON.
        found: String,
    },
    /// Encoding failed (only possible if extra fields cannot be written).
    #[error("{kind} value could not be encoded: {source}")]
    Encode {
        /// The kind of value.
        kind: ValueKind,
        /// The serializer's message.
        source: serde_json::Error,
    },
}

/// The default item value: `{"replication": 3, "exclusive": false}`, plus `"min_ready": N`
/// when the item sets its own. `replication` is required (a typo must not silently park an
/// item); `exclusive` defaults to false. Other fields are kept in `extra` and written back
/// on encode.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JsonItem {
    /// See [`ItemValue::replication`].
    pub replication: u16,
    /// See [`ItemValue::is_exclusive`].
    pub exclusive: bool,
    /// See [`ItemValue::min_ready`].
    pub min_ready: Option<u32>,
    /// Fields apportion does not read, kept so re-encoding does not lose them.
    pub extra: Map<String, Value>,
}

impl ItemValue for JsonItem {
    fn replication(&self) -> u16 {
        self.replication
    }
    fn is_exclusive(&self) -> bool {
        self.exclusive
    }
    fn min_ready(&self) -> Option<u32> {
        self.min_ready
    }
}

/// The default member value: `{"item_limit": 100, "exiting": false}`, plus
/// `"yielding": true` once the member stepped down from leading and `"restarting": true`
/// while it prepares a restart. `item_limit` is required; the flags default to false.
/// Other fields are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JsonMember {
    /// See [`MemberValue::item_limit`].
    pub item_limit: u32,
    /// See [`MemberValue::is_exiting`].
    pub exiting: bool,
    /// See [`MemberValue::is_yielding`].
    pub yielding: bool,
    /// See [`MemberValue::is_restarting`].
    pub restarting: bool,
    /// Fields apportion does not read, kept so re-encoding does not lose them.
    pub extra: Map<String, Value>,
}

impl MemberValue for JsonMember {
    fn item_limit(&self) -> u32 {
        self.item_limit
    }
    fn is_exiting(&self) -> bool {
        self.exiting
    }

    fn set_item_limit(&mut self, item_limit: u32) {
        self.item_limit = item_limit;
    }

    fn set_exiting(&mut self, exiting: bool) {
        self.exiting = exiting;
    }

    fn is_yielding(&self) -> bool {
        self.yielding
    }

    fn set_yielding(&mut self, yielding: bool) {
        self.yielding = yielding;
    }

    fn is_restarting(&self) -> bool {
        self.restarting
    }

    fn set_restarting(&mut self, restarting: bool) {
        self.restarting = restarting;
    }
}

/// The default assignment status: `{"ready": true}`, plus `"releasing": true` once the
/// leader asks for an exclusive item back. An empty value (what the leader writes) and
/// missing fields mean not ready and not releasing. Other fields are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JsonStatus {
    /// See [`AssignmentValue::is_ready`].
    pub ready: bool,
    /// See [`AssignmentValue::is_releasing`].
    pub releasing: bool,
    /// Fields apportion does not read, kept so re-encoding does not lose them.
    pub extra: Map<String, Value>,
}

impl AssignmentValue for JsonStatus {
    fn is_ready(&self) -> bool {
        self.ready
    }

    fn is_releasing(&self) -> bool {
        self.releasing
    }

    fn request_release(&mut self) {
        self.releasing = true;
    }

    fn set_ready(&mut self, ready: bool) {
        self.ready = ready;
    }
}

/// The default [`Decoder`], for [`JsonItem`], [`JsonMember`] and [`JsonStatus`].
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonDecoder;

impl Decoder for JsonDecoder {
    type Item = JsonItem;
    type Member = JsonMember;
    type Assignment = JsonStatus;
    type Error = JsonError;

    fn decode_item(&self, bytes: &[u8]) -> Result<JsonItem, JsonError> {
        let mut fields = Fields::parse(ValueKind::Item, bytes)?;
        Ok(JsonItem {
            replication: fields.take_u16("replication")?,
            exclusive: fields.take_bool("exclusive")?,
            min_ready: fields.take_optional_u32("min_ready")?,
            extra: fields.rest,
        })
    }

    fn decode_member(&self, bytes: &[u8]) -> Result<JsonMember, JsonError> {
        let mut fields = Fields::parse(ValueKind::Member, bytes)?;
        Ok(JsonMember {
            item_limit: fields.take_u32("item_limit")?,
            exiting: fields.take_bool("exiting")?,
            yielding: fields.take_bool("yielding")?,
            restarting: fields.take_bool("restarting")?,
            extra: fields.rest,
        })
    }

    fn decode_assignment(&self, bytes: &[u8]) -> Result<JsonStatus, JsonError> {
        if bytes.is_empty() {
            return Ok(JsonStatus::default());
        }
        let mut fields = Fields::parse(ValueKind::Assignment, bytes)?;
        Ok(JsonStatus {
            ready: fields.take_bool("ready")?,
            releasing: fields.take_bool("releasing")?,
            extra: fields.rest,
        })
    }

    fn encode_item(&self, value: &JsonItem) -> Result<Vec<u8>, JsonError> {
        // Written only when set: most items follow the cluster's min_ready.
        let mut extra = value.extra.clone();
        if let Some(min_ready) = value.min_ready {
            extra.insert("min_ready".to_owned(), min_ready.into());
        }
        encode(
            ValueKind::Item,
            &extra,
            [
                ("replication", value.replication.into()),
                ("exclusive", value.exclusive.into()),
            ],
        )
    }

    fn encode_member(&self, value: &JsonMember) -> Result<Vec<u8>, JsonError> {
        // Written only when set: nearly every member never steps down or restarts.
        let mut extra = value.extra.clone();
        if value.yielding {
            extra.insert("yielding".to_owned(), true.into());
        }
        if value.restarting {
            extra.insert("restarting".to_owned(), true.into());
        }
        encode(
            ValueKind::Member,
            &extra,
            [
                ("item_limit", value.item_limit.into()),
                ("exiting", value.exiting.into()),
            ],
        )
    }

    fn encode_assignment(&self, value: &JsonStatus) -> Result<Vec<u8>, JsonError> {
        encode(
            ValueKind::Assignment,
            &value.extra,
            [
                ("ready", value.ready.into()),
                ("releasing", value.releasing.into()),
            ],
        )
    }
}

/// Writes the known fields over a copy of the extra ones, so known fields always win.
fn encode<const N: usize>(
    kind: ValueKind,
    extra: &Map<String, Value>,
    known: [(&str, Value); N],
) -> Result<Vec<u8>, JsonError> {
    let mut object = extra.clone();
    for (name, value) in known {
        object.insert(name.to_owned(), value);
    }
    serde_json::to_vec(&object).map_err(|source| JsonError::Encode { kind, source })
}

/// A decoded JSON object from which known fields are taken one by one; what remains is
/// kept as the value's extra fields.
struct Fields {
    kind: ValueKind,
    rest: Map<String, Value>,
}

impl Fields {
    fn parse(kind: ValueKind, bytes: &[u8]) -> Result<Self, JsonError> {
        match serde_json::from_slice(bytes) {
            Ok(Value::Object(rest)) => Ok(Self { kind, rest }),
            Ok(other) => Err(JsonError::NotObject {
                kind,
                found: json_type(&other),
            }),
            Err(source) => Err(JsonError::Syntax { kind, source }),
        }
    }

    /// Takes a required unsigned integer field that must fit in `T`.
    fn take_unsigned<T: TryFrom<u64>>(
        &mut self,
        field: &'static str,
        expected: &'static str,
    ) -> Result<T, JsonError> {
        let value = self.rest.remove(field).ok_or(JsonError::Missing {
            kind: self.kind,
            field,
        })?;
        value
            .as_u64()
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| self.invalid(field, expected, &value))
    }

    fn take_u16(&mut self, field: &'static str) -> Result<u16, JsonError> {
        self.take_unsigned(field, "an integer from 0 to 65535")
    }

    fn take_u32(&mut self, field: &'static str) -> Result<u32, JsonError> {
        self.take_unsigned(field, "an integer from 0 to 4294967295")
    }

    /// Takes an optional unsigned integer field; absent (or null) means `None`.
    fn take_optional_u32(&mut self, field: &'static str) -> Result<Option<u32>, JsonError> {
        match self.rest.get(field) {
            None | Some(Value::Null) => {
                self.rest.remove(field);
                Ok(None)
            }
            Some(_) => self.take_u32(field).map(Some),
        }
    }

    /// Takes an optional boolean field; absent means false.
    fn take_bool(&mut self, field: &'static str) -> Result<bool, JsonError> {
        match self.rest.remove(field) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(other) => Err(self.invalid(field, "true or false", &other)),
        }
    }

    fn invalid(&self, field: &'static str, expected: &'static str, found: &Value) -> JsonError {
        JsonError::Invalid {
            kind: self.kind,
            field,
            expected,
            found: found.to_string(),
        }
    }
}

/// The name of a JSON value's type, for error messages.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
