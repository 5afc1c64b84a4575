//! `apportion drain ZONE#SUFFIX`: asks a member to hand its copies over before it stops.
//!
//! Draining sets `exiting` in the member's value, through the library's
//! [`Admin::drain`]: the write keeps the key under the member's lease and is guarded by the
//! key's mod revision, so it cannot undo the member's own concurrent update; the leader then
//! stops counting the member's capacity and moves its copies away.

use std::io::Write;

use apportion::admin::{Admin, AdminError};
use apportion::cluster::ClusterView;
use apportion_core::keys::{MemberId, Prefix};
use apportion_core::values::JsonDecoder;
use apportion_store::Store;
use clap::Args;

use crate::admin::parse_member;
use crate::connect::Target;
use crate::error::{CliError, Result};
use crate::output::plural;

/// Flags of `apportion drain`.
#[derive(Args, Debug)]
pub struct DrainArgs {
    #[command(flatten)]
    target: Target,
    /// The member to drain, as `ZONE#SUFFIX`; one starting with '-' goes after `--`:
    /// `drain -- -zone#host`.
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

/// Flags of `apportion undrain`.
#[derive(Args, Debug)]
pub struct UndrainArgs {
    #[command(flatten)]
    target: Target,
    /// The member to take back, as `ZONE#SUFFIX`.
    #[arg(value_name = "ZONE#SUFFIX", value_parser = parse_member)]
    member: MemberId,
}

impl UndrainArgs {
    /// Runs the command against etcd, writing to stdout.
    pub async fn run(self) -> Result<()> {
        let store = self.target.connect().await?;
        let admin = Admin::new(store, self.target.prefix.clone());
        let member = &self.member;
        let edit = admin
            .undrain(member)
            .await
            .map_err(|e| member_error(e, member, &self.target.prefix))?;
        let line = if edit.changed() {
            format!("member {member} takes copies again")
        } else {
            format!("member {member} is not exiting")
        };
        writeln!(std::io::stdout().lock(), "{line}")?;
        Ok(())
    }
}

/// The words for an edit of `member` that failed.
fn member_error(e: AdminError, member: &MemberId, prefix: &Prefix) -> CliError {
    match e {
        AdminError::MemberMissing { key, .. } => CliError::failed(format!(
            "member `{member}` is not registered under {prefix} (no key `{key}`)"
        )),
        AdminError::Undecodable { source, .. } => CliError::failed(format!(
            "member `{member}` has a value that does not decode: {source}"
        )),
        e => e.into(),
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
    let admin = Admin::new(store.clone(), prefix.clone());
    let edit = admin
        .drain(member)
        .await
        .map_err(|e| member_error(e, member, prefix))?;
    let already = !edit.changed();
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
    let view = ClusterView::start(store, prefix.as_str(), JsonDecoder).await?;
    let mut changes = view.subscribe();
    let mut reported = None;
    loop {
        let observed = changes.current();
        let state = &observed.state;
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
            let count = plural(held, "assignment");
            writeln!(out, "member {member} holds {count}; waiting")?;
            out.flush()?;
            reported = Some(held);
        }
        changes
            .changed()
            .await
            .ok_or_else(|| CliError::failed("the live view of etcd stopped unexpectedly"))?;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use apportion_store::{KeyRange, KeyValue, MemoryStore};

    use super::*;
    use crate::cluster;

    fn prefix() -> Prefix {
        Prefix::new(cluster::PREFIX).unwrap()
    }

    fn member(text: &str) -> MemberId {
        MemberId::parse(text).unwrap()
    }

    async fn member_key(store: &MemoryStore, text: &str) -> KeyValue {
        let key = prefix().member_key(&member(text));
        store.range(KeyRange::key(key)).await.unwrap().kvs.remove(0)
    }

    #[tokio::test]
    async fn drain_marks_the_member_exiting_under_its_own_lease_and_keeps_its_fields() {
        let store = MemoryStore::new();
        let leases = cluster::write(&store).await;
        let mut out = Vec::new();
        drain(&store, &prefix(), &member("us#h1"), &mut out)
            .await
            .unwrap();
        let kv = member_key(&store, "us#h1").await;
        assert_eq!(kv.lease, Some(leases["us#h1"]));
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&kv.value).unwrap(),
            serde_json::json!({"item_limit": 8, "exiting": true, "addr": "10.0.0.3"})
        );

        // Draining again writes nothing.
        drain(&store, &prefix(), &member("us#h1"), &mut out)
            .await
            .unwrap();
        assert_eq!(
            member_key(&store, "us#h1").await.mod_revision,
            kv.mod_revision
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "member us#h1 marked exiting; the leader moves its copies away\n\
             member us#h1 is already exiting\n"
        );
    }

    #[tokio::test]
    async fn drain_refuses_a_member_that_is_absent_or_does_not_decode() {
        let store = MemoryStore::new();
        cluster::write(&store).await;
        let error = drain(&store, &prefix(), &member("eu#nope"), &mut Vec::new())
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "member `eu#nope` is not registered under /apportion (no key `/apportion/members/eu#nope`)"
        );
        let error = drain(&store, &prefix(), &member("eu#bad"), &mut Vec::new())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("member `eu#bad` has a value that does not decode"),
            "{error}"
        );
        assert_eq!(member_key(&store, "eu#bad").await.value, b"not json");
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_ends_when_the_member_holds_no_assignment() {
        let store = MemoryStore::new();
        cluster::write(&store).await;
        let writer = store.clone();
        let leader = async move {
            // eu#h1 holds orders (primary) and an assignment of the deleted item `gone`.
            for item in ["orders", "gone"] {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let key = format!("{}/assign/{item}#eu#h1#00000", cluster::PREFIX);
                writer.delete(KeyRange::key(key)).await.unwrap();
            }
        };
        let (prefix, member) = (prefix(), member("eu#h1"));
        let mut out = Vec::new();
        let (waited, ()) =
            tokio::join!(wait_until_empty(store, &prefix, &member, &mut out), leader);
        waited.unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "member eu#h1 holds 2 assignments; waiting\n\
             member eu#h1 holds 1 assignment; waiting\n\
             member eu#h1 holds no assignment\n"
        );
    }
}
