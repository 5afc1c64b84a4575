//! `apportion drain ZONE#SUFFIX`: asks a member to hand its copies over before it stops.
//!
//! Draining sets `exiting` in the member's value. The write keeps the key under the member's
//! lease (a put without it would detach the key and make it outlive the member) and is
//! guarded by the key's mod revision, so it cannot undo the member's own concurrent update;
//! the leader then stops counting the member's capacity and moves its copies away.

use std::io::Write;

use apportion_core::keys::{MemberId, Prefix};
use apportion_core::values::{Decoder, JsonDecoder};
use apportion_store::Store;
use clap::Args;

use crate::admin::{parse_member, update, NewValue};
use crate::connect::Target;
use crate::error::{CliError, Result};
use crate::view::{self, View};

/// Flags of `apportion drain`.
#[derive(Args, Debug)]
pub struct DrainArgs {
    #[command(flatten)]
    target: Target,
    /// The member to drain, as `ZONE#SUFFIX`.
    #[arg(value_name = "ZONE#SUFFIX", value_parser = parse_member)]
    member: MemberId,
    /// Wait until the member holds no assignment.
    #[arg(long)]
    wait: bool,
}

impl DrainArgs {
    /// Runs the command against etcd, writing to stdout.
    pub async fn run(self) -> Result<()> {
        let store = self.target.connect().await?;
        let prefix = &self.target.prefix;
        let mut out = std::io::stdout().lock();
        drain(&store, prefix, &self.member, &mut out).await?;
        if self.wait {
            wait_until_empty(store, prefix, &self.member, &mut out).await?;
        }
        Ok(())
    }
}

/// Marks the member exiting; fails if it is not registered or its value does not decode.
/// A member already exiting is left as it is.
pub async fn drain<S: Store>(
    store: &S,
    prefix: &Prefix,
    member: &MemberId,
    out: &mut impl Write,
) -> Result<()> {
    let key = prefix.member_key(member);
    let already = update(store, &key, |current| {
        let kv = current.ok_or_else(|| {
            CliError::failed(format!(
                "member `{member}` is not registered under {prefix} (no key `{key}`)"
            ))
        })?;
        let mut value = JsonDecoder.decode_member(&kv.value).map_err(|e| {
            CliError::failed(format!(
                "member `{member}` has a value that does not decode: {e}"
            ))
        })?;
        if value.exiting {
            return Ok((None, true));
        }
        value.exiting = true;
        let value = JsonDecoder
            .encode_member(&value)
            .map_err(CliError::failed)?;
        let lease = (kv.lease != 0).then_some(kv.lease);
        Ok((Some(NewValue { value, lease }), false))
    })
    .await?;
    if already {
        writeln!(out, "member {member} is already exiting")?;
    } else {
        writeln!(
            out,
            "member {member} marked exiting; the leader moves its copies away"
        )?;
    }
    Ok(())
}

/// Follows the deployment until the member holds no assignment (counting those of deleted
/// items too, which the leader has yet to remove), reporting each new count.
pub async fn wait_until_empty<S: Store>(
    store: S,
    prefix: &Prefix,
    member: &MemberId,
    out: &mut impl Write,
) -> Result<()> {
    let space = view::follow(store, prefix).await?;
    let mut changes = space.subscribe();
    let mut reported = None;
    loop {
        changes.borrow_and_update();
        let view = View::of_keyspace(&space)?;
        let state = &view.state;
        let held = state
            .assignments()
            .iter()
            .chain(state.dangling())
            .filter(|assignment| assignment.key.member == *member)
            .count();
        if held == 0 {
            writeln!(out, "member {member} holds no assignment")?;
            return Ok(());
        }
        if reported != Some(held) {
            writeln!(out, "member {member} holds {held} assignments; waiting")?;
            out.flush()?;
            reported = Some(held);
        }
        changes
            .changed()
            .await
            .map_err(|_| CliError::failed("the live view of etcd stopped unexpectedly"))?;
    }
}
