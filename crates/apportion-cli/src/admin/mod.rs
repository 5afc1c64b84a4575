//! The commands that edit or list the deployment: `items`, `members`, `drain`.
//!
//! Each command is a function generic over [`Store`](apportion_store::Store), so it runs the
//! same on etcd (from the command line) and on the embedded `MemoryStore` (in the unit
//! tests). The edits themselves are the library's [`apportion::admin::Admin`]; the commands
//! add the flags and the words. This module holds what they share: argument parsers and the
//! empty-prefix warning.

pub mod drain;
pub mod items;
pub mod members;
pub mod settings;
pub mod show;

use apportion::cluster::Observed;
use apportion_core::keys::{ItemId, MemberId, Prefix};
use apportion_core::values::JsonDecoder;

use crate::error::Result;

/// Parses an item id on the command line; the error names the bad character.
pub fn parse_item(text: &str) -> Result<ItemId, String> {
    ItemId::new(text).map_err(|e| e.to_string())
}

/// Parses a member id (`ZONE#SUFFIX`) on the command line; the error names the bad part.
pub fn parse_member(text: &str) -> Result<MemberId, String> {
    MemberId::parse(text).map_err(|e| e.to_string())
}

/// Says on stderr that nothing is under `prefix`, after a listing printed its empty table:
/// the listing itself succeeded, but a mistyped `--prefix` would otherwise look like an
/// empty cluster.
pub fn warn_if_empty(view: &Observed<JsonDecoder>, prefix: &Prefix) {
    if let Some(line) = crate::summary::nothing_under(view, prefix) {
        eprintln!("warning: {line}");
    }
}
