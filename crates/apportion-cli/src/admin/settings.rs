//! `apportion config get|set`, `apportion freeze`, `apportion unfreeze`: the cluster
//! settings at `P/settings` (see `apportion::core::settings`), edited through the library's
//! guarded [`Admin::update_settings`].
//!
//! A freeze is given as a duration, never as an end the operator computes: it always ends
//! by itself, so a maintenance window a failed script left on cannot stop the allocator
//! for good.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apportion::admin::{Admin, AdminError};
use apportion_core::keys::Prefix;
use apportion_core::settings::{ClusterSettings, Freeze, SettingsError};
use apportion_store::Store;
use clap::{Args, Subcommand};

use crate::clock::rfc3339;
use crate::connect::Target;
use crate::duration::Span;
use crate::error::{CliError, Result};

/// The `config` subcommands.
#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the cluster settings as JSON (the defaults when none are stored).
    Get {
        #[command(flatten)]
        target: Target,
    },
    /// Replace the cluster settings with the defaults (no freeze, no throttle, min_ready
    /// 1), whatever is stored: the way out of a value that does not decode.
    Reset {
        #[command(flatten)]
        target: Target,
    },
    /// Change cluster settings: `min_ready=2`, `max_moves_in_flight=10` (or `none`),
    /// `refill_delay=5m` (or `none`: how long a lost member's replicas wait for it).
    Set {
        #[command(flatten)]
        target: Target,
        /// The settings to change, as NAME=VALUE.
        #[arg(value_name = "NAME=VALUE", required = true, value_parser = parse_assignment)]
        changes: Vec<(Setting, Option<u64>)>,
    },
}

/// A setting `config set` can change; the freeze has its own commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// `min_ready`.
    MinReady,
    /// `max_moves_in_flight`.
    MaxMovesInFlight,
    /// `refill_delay` (stored as `refill_delay_secs`).
    RefillDelay,
}

/// Parses `NAME=VALUE`; the error names what is wrong.
fn parse_assignment(text: &str) -> std::result::Result<(Setting, Option<u64>), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))?;
    let setting = match name {
        "min_ready" => Setting::MinReady,
        "max_moves_in_flight" => Setting::MaxMovesInFlight,
        "refill_delay" => Setting::RefillDelay,
        _ => {
            return Err(format!(
                "unknown setting {name:?} (min_ready, max_moves_in_flight, refill_delay; the \
                 freeze is set by `apportion freeze`)"
            ))
        }
    };
    let number = match (setting, value) {
        (Setting::MaxMovesInFlight | Setting::RefillDelay, "none") => None,
        (Setting::RefillDelay, _) => {
            let span: Span = value.parse().map_err(|e| format!("{name}: {e}"))?;
            Some(span.0.as_secs_f64().ceil() as u64)
        }
        _ => Some(
            value
                .parse::<u32>()
                .map_err(|_| format!("{name}: {value:?} is not a whole number of at least 0"))?
                .into(),
        ),
    };
    if setting == Setting::MinReady && number.is_none() {
        return Err("min_ready: a number is required".into());
    }
    Ok((setting, number))
}

impl ConfigCommand {
    /// Runs the subcommand against etcd, writing to stdout.
    pub async fn run(self) -> Result<()> {
        let mut out = std::io::stdout().lock();
        match self {
            ConfigCommand::Get { target } => {
                let store = target.connect().await?;
                get(&store, &target.prefix, &mut out).await
            }
            ConfigCommand::Reset { target } => {
                let store = target.connect().await?;
                admin(&store, &target.prefix).reset_settings().await?;
                writeln!(out, "{}", shown(&ClusterSettings::default()))?;
                Ok(())
            }
            ConfigCommand::Set { target, changes } => {
                let store = target.connect().await?;
                set(&store, &target.prefix, &changes, &mut out).await
            }
        }
    }
}

/// Prints the settings as one JSON object, with `freeze.until` also in RFC 3339 for people.
pub async fn get<S: Store>(store: &S, prefix: &Prefix, out: &mut impl Write) -> Result<()> {
    let settings = admin(store, prefix).settings().await.map_err(refused)?;
    writeln!(out, "{}", shown(&settings))?;
    Ok(())
}

/// Applies the changes in one guarded edit and prints the result.
pub async fn set<S: Store>(
    store: &S,
    prefix: &Prefix,
    changes: &[(Setting, Option<u64>)],
    out: &mut impl Write,
) -> Result<()> {
    let edit = admin(store, prefix)
        .update_settings(|settings| {
            for (setting, value) in changes {
                match setting {
                    // Parsed from a u32 (see `parse_assignment`).
                    Setting::MinReady => settings.min_ready = value.unwrap_or(1) as u32,
                    Setting::MaxMovesInFlight => {
                        settings.max_moves_in_flight = value.map(|v| v as u32)
                    }
                    Setting::RefillDelay => settings.refill_delay_secs = *value,
                }
            }
        })
        .await
        .map_err(refused)?;
    writeln!(out, "{}", shown(&edit.after))?;
    Ok(())
}

/// Flags of `apportion freeze`.
#[derive(Args, Debug)]
pub struct FreezeArgs {
    #[command(flatten)]
    target: Target,
    /// How long the freeze lasts (30s, 20m, 2h); it ends by itself then.
    #[arg(long = "for", value_name = "DURATION")]
    duration: Span,
    /// Why, for whoever finds the cluster frozen (`apportion status` shows it).
    #[arg(long)]
    reason: String,
}

impl FreezeArgs {
    /// Runs the command against etcd, writing to stdout.
    pub async fn run(self) -> Result<()> {
        let store = self.target.connect().await?;
        let until = SystemTime::now() + self.duration.0;
        freeze(&store, &self.target.prefix, until, &self.reason, &who())
            .await
            .and_then(|line| Ok(writeln!(std::io::stdout().lock(), "{line}")?))
    }
}

/// Flags of `apportion unfreeze`.
#[derive(Args, Debug)]
pub struct UnfreezeArgs {
    #[command(flatten)]
    target: Target,
}

impl UnfreezeArgs {
    /// Runs the command against etcd, writing to stdout.
    pub async fn run(self) -> Result<()> {
        let store = self.target.connect().await?;
        let line = unfreeze(&store, &self.target.prefix).await?;
        writeln!(std::io::stdout().lock(), "{line}")?;
        Ok(())
    }
}

/// Freezes the cluster until `until`; returns the line to print.
pub async fn freeze<S: Store>(
    store: &S,
    prefix: &Prefix,
    until: SystemTime,
    reason: &str,
    by: &str,
) -> Result<String> {
    let until_unix_secs = until
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        .ceil() as u64;
    let edit = admin(store, prefix)
        .update_settings(|settings| {
            settings.freeze = Some(Freeze {
                until_unix_secs,
                reason: reason.to_owned(),
                by: by.to_owned(),
            })
        })
        .await
        .map_err(refused)?;
    Ok(format!(
        "frozen until {} by {by}: {reason}; {}",
        until_text(until_unix_secs),
        repairs_only(edit.after.min_ready)
    ))
}

/// What a frozen cluster still does, as `freeze` and `status` say it.
pub fn repairs_only(min_ready: u32) -> String {
    let copies = match min_ready {
        1 => "1 copy".to_owned(),
        n => format!("{n} copies"),
    };
    format!("only items with fewer than {copies} ready (min_ready) are repaired")
}

/// Ends the freeze now; returns the line to print.
pub async fn unfreeze<S: Store>(store: &S, prefix: &Prefix) -> Result<String> {
    let edit = admin(store, prefix)
        .update_settings(|settings| settings.freeze = None)
        .await
        .map_err(refused)?;
    let was = edit.before.and_then(|s| s.freeze);
    Ok(match was {
        Some(_) => "unfrozen; the leader plans as usual".to_owned(),
        None => "not frozen".to_owned(),
    })
}

/// The words for a settings edit that failed: a stored value that does not decode says how
/// to get out of it.
fn refused(e: AdminError) -> CliError {
    match e {
        AdminError::Settings {
            source: SettingsError::Json(_),
            ..
        } => CliError::failed(format!(
            "{e}; replace it with the defaults with `apportion config reset`"
        )),
        e => CliError::failed(e.to_string()),
    }
}

fn admin<S: Store>(store: &S, prefix: &Prefix) -> Admin<S> {
    Admin::new(store.clone(), prefix.clone())
}

/// The settings as printed (`config`, `events --json`): their JSON, plus the freeze's end
/// in RFC 3339.
pub fn shown(settings: &ClusterSettings) -> serde_json::Value {
    let mut value = serde_json::to_value(settings).expect("settings serialize");
    if let Some(freeze) = &settings.freeze {
        value["freeze"]["until"] = until_text(freeze.until_unix_secs).into();
    }
    value
}

/// A freeze's end (stored as seconds since the epoch) as every command prints it: RFC 3339.
pub fn until_text(until_unix_secs: u64) -> String {
    rfc3339(UNIX_EPOCH + Duration::from_secs(until_unix_secs))
}

/// Who freezes: `$USER@host`, for the status line that says who froze the cluster.
fn who() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    format!("{user}@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use apportion::MemoryStore;

    fn prefix() -> Prefix {
        Prefix::new("/t").unwrap()
    }

    #[tokio::test]
    async fn set_then_get_round_trips_and_refuses_bad_values() {
        let store = MemoryStore::new();
        let mut out = Vec::new();
        let changes = [
            parse_assignment("min_ready=2").unwrap(),
            parse_assignment("max_moves_in_flight=5").unwrap(),
        ];
        set(&store, &prefix(), &changes, &mut out).await.unwrap();
        out.clear();
        get(&store, &prefix(), &mut out).await.unwrap();
        let shown: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(shown["min_ready"], 2);
        assert_eq!(shown["max_moves_in_flight"], 5);
        let zero = [parse_assignment("max_moves_in_flight=0").unwrap()];
        let refused = set(&store, &prefix(), &zero, &mut out).await.unwrap_err();
        assert!(
            refused.to_string().contains("max_moves_in_flight"),
            "{refused}"
        );
        assert!(parse_assignment("min_redy=2")
            .unwrap_err()
            .contains("min_redy"));
        assert!(parse_assignment("min_ready=-1")
            .unwrap_err()
            .contains("min_ready"));
    }

    #[tokio::test]
    async fn a_freeze_is_stored_with_its_end_and_cleared_by_unfreeze() {
        let store = MemoryStore::new();
        let until = UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let line = freeze(&store, &prefix(), until, "kernel update", "ops@h")
            .await
            .unwrap();
        assert!(line.contains("2033-05-18T03:33:20Z"), "{line}");
        let settings = admin(&store, &prefix()).settings().await.unwrap();
        assert_eq!(settings.freeze.unwrap().reason, "kernel update");
        assert_eq!(
            unfreeze(&store, &prefix()).await.unwrap(),
            "unfrozen; the leader plans as usual"
        );
        assert_eq!(unfreeze(&store, &prefix()).await.unwrap(), "not frozen");
    }
}
