//! What `apportion member` prints on stdout: one line per thing that happened, readable by
//! a person, or (`--json`) one JSON object per line for a program. Both forms carry the
//! same facts; the `event` field of a JSON line names the kind.

use std::time::Duration;

use apportion::core::keys::{ItemId, Slot};
use apportion::Event;
use apportion_store::LeaseId;

use crate::duration::Span;
use serde_json::{json, Value};

/// Something worth a line.
#[derive(Debug)]
pub enum Line<'a> {
    /// The member announced itself.
    Joined {
        /// The member id.
        member: &'a str,
        /// The cluster's prefix.
        prefix: &'a str,
        /// The lease its key lives under.
        lease: LeaseId,
        /// The lease's TTL in seconds.
        ttl: i64,
    },
    /// An event from the library.
    Event(&'a Event),
    /// The item's process started.
    Started {
        /// The item.
        item: &'a ItemId,
        /// Its process id.
        pid: u32,
    },
    /// The assignment was marked ready.
    Ready {
        /// The item.
        item: &'a ItemId,
    },
    /// The item's process ended by itself (it is restarted after `restart_in`).
    Exited {
        /// The item.
        item: &'a ItemId,
        /// How it ended, as the system tells it.
        status: &'a str,
        /// The back-off before the next start.
        restart_in: Duration,
    },
    /// The item's process died too often; the member gives the item up (releases it).
    GaveUp {
        /// The item.
        item: &'a ItemId,
        /// How it ended the last time.
        status: &'a str,
        /// How often it ended within the window.
        crashes: usize,
        /// The restart window.
        window: Duration,
    },
    /// The item's process was stopped on purpose.
    Stopped {
        /// The item.
        item: &'a ItemId,
    },
    /// The exclusive item was handed back to the leader.
    Released {
        /// The item.
        item: &'a ItemId,
    },
    /// A signal started the drain.
    Draining {
        /// The signal's name.
        signal: &'a str,
        /// How long the drain may take before the member leaves anyway.
        timeout: Span,
    },
    /// A signal started the hand-over before a restart.
    Restarting {
        /// The signal's name.
        signal: &'a str,
        /// How long the hand-over may take before the member leaves anyway.
        timeout: Span,
        /// How long its replicas wait for it.
        grace: Span,
    },
    /// The member left the cluster.
    Left,
    /// The member left to come back; its replicas wait for it up to the grace.
    LeftToRestart {
        /// How long they wait.
        grace: Span,
    },
    /// The lease was lost (the member had fenced itself already); it joined again under a
    /// new lease.
    Rejoined {
        /// Why the old session ended.
        reason: &'a str,
        /// The new lease.
        lease: LeaseId,
    },
}

/// Prints lines in the chosen form.
#[derive(Clone, Copy, Debug)]
pub struct Printer {
    /// One JSON object per line instead of text.
    pub json: bool,
}

impl Printer {
    /// Prints one line on stdout. A JSON line gets a `time` field (RFC 3339, UTC) here, for
    /// every kind at once, so a program collecting the lines can order them against other
    /// logs without stamping them itself.
    pub fn print(&self, line: &Line<'_>) {
        if self.json {
            let mut value = to_json(line);
            value["time"] = Value::String(crate::clock::now());
            print_line(&value);
        } else {
            print_line(&to_text(line));
        }
    }
}

/// Prints one line on stdout, ignoring a stdout that is gone: a member whose log reader
/// died (a closed pipe) must keep serving its items, not panic or die of SIGPIPE.
pub fn print_line(line: &impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn role(slot: Slot) -> String {
    if slot.is_primary() {
        "as primary".to_string()
    } else {
        format!("as replica (slot {})", slot.0)
    }
}

/// The line for a person.
pub fn to_text(line: &Line<'_>) -> String {
    match line {
        Line::Joined {
            member,
            prefix,
            lease,
            ttl,
        } => format!("joined {prefix} as {member} (lease {lease}, TTL {ttl} s)"),
        Line::Event(event) => match event {
            Event::Assigned { item, slot } => format!("assigned {item} {}", role(*slot)),
            Event::PrimaryGained { item, .. } => format!("primary of {item} now"),
            Event::PrimaryLost { item, .. } => format!("no longer primary of {item}"),
            Event::ReleaseRequested { item } => format!("asked to release {item}"),
            Event::Revoked { item } => format!("revoked {item}"),
            Event::Fenced => "fenced: lease renewals unacknowledged, stopping everything".into(),
            Event::Unfenced => "unfenced: lease renewed, serving again".into(),
            Event::Drained => "drained: holds nothing any more".into(),
            Event::ReadyToRestart => {
                "ready to restart: holds only replicas that will wait for it".into()
            }
            // A kind of event added to the library since this command was written.
            event => format!("{event:?}"),
        },
        Line::Started { item, pid } => format!("started process for {item} (pid {pid})"),
        Line::Ready { item } => format!("ready: {item}"),
        Line::Exited {
            item,
            status,
            restart_in,
        } => format!(
            "process for {item} ended ({status}); restarting in {:.1} s",
            restart_in.as_secs_f64()
        ),
        Line::GaveUp {
            item,
            status,
            crashes,
            window,
        } => format!(
            "giving up {item}: crashed {crashes} times in {} s (last: {status}); releasing it",
            window.as_secs()
        ),
        Line::Stopped { item } => format!("stopped process for {item}"),
        Line::Released { item } => format!("released {item}"),
        Line::Draining { signal, timeout } => format!(
            "{signal}: draining, items move away first if another member can take them; \
             leaving anyway after {timeout} (send it again to leave at once)"
        ),
        Line::Restarting {
            signal,
            timeout,
            grace,
        } => format!(
            "{signal}: preparing to restart, primaries and exclusive items move to other \
             members; replicas stay and wait {grace} for this member to start again; \
             leaving anyway after {timeout} (send it again to leave at once)"
        ),
        Line::Left => "left the cluster".into(),
        Line::LeftToRestart { grace } => format!(
            "left to restart: start again with the same zone and suffix within {grace} to \
             get the replicas back"
        ),
        Line::Rejoined { reason, lease } => {
            format!("session lost ({reason}); joined again under lease {lease}")
        }
    }
}

/// The line for a program.
pub fn to_json(line: &Line<'_>) -> Value {
    match line {
        Line::Joined {
            member,
            prefix,
            lease,
            ttl,
        } => {
            json!({"event": "joined", "member": member, "prefix": prefix, "lease": lease.to_string(), "ttl": ttl})
        }
        Line::Event(event) => match event {
            Event::Assigned { item, slot } => json!({
                "event": "assigned", "item": item.as_str(), "slot": slot.0,
                "primary": slot.is_primary()
            }),
            Event::PrimaryGained { item, .. } => {
                json!({"event": "primary_gained", "item": item.as_str()})
            }
            Event::PrimaryLost { item, .. } => {
                json!({"event": "primary_lost", "item": item.as_str()})
            }
            Event::ReleaseRequested { item } => {
                json!({"event": "release_requested", "item": item.as_str()})
            }
            Event::Revoked { item } => json!({"event": "revoked", "item": item.as_str()}),
            Event::Fenced => json!({"event": "fenced"}),
            Event::Unfenced => json!({"event": "unfenced"}),
            Event::Drained => json!({"event": "drained"}),
            Event::ReadyToRestart => json!({"event": "ready_to_restart"}),
            event => json!({"event": "other", "detail": format!("{event:?}")}),
        },
        Line::Started { item, pid } => {
            json!({"event": "process_started", "item": item.as_str(), "pid": pid})
        }
        Line::Ready { item } => json!({"event": "ready", "item": item.as_str()}),
        Line::Exited {
            item,
            status,
            restart_in,
        } => json!({
            "event": "process_exited", "item": item.as_str(), "status": status,
            "restart_in_secs": restart_in.as_secs_f64()
        }),
        Line::GaveUp {
            item,
            status,
            crashes,
            window,
        } => json!({
            "event": "gave_up", "item": item.as_str(), "status": status,
            "crashes": crashes, "window_secs": window.as_secs_f64()
        }),
        Line::Stopped { item } => json!({"event": "process_stopped", "item": item.as_str()}),
        Line::Released { item } => json!({"event": "released", "item": item.as_str()}),
        Line::Draining { signal, timeout } => json!({
            "event": "draining", "signal": signal, "timeout_secs": timeout.0.as_secs_f64()
        }),
        Line::Restarting {
            signal,
            timeout,
            grace,
        } => json!({
            "event": "restarting", "signal": signal, "timeout_secs": timeout.0.as_secs_f64(),
            "grace_secs": grace.0.as_secs_f64()
        }),
        Line::Left => json!({"event": "left"}),
        Line::LeftToRestart { grace } => {
            json!({"event": "left_to_restart", "grace_secs": grace.0.as_secs_f64()})
        }
        Line::Rejoined { reason, lease } => {
            json!({"event": "rejoined", "reason": reason, "lease": lease.to_string()})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_assignment_reads_the_same_in_both_forms() {
        let item = ItemId::new("orders-7").unwrap();
        let event = Event::Assigned {
            item,
            slot: Slot(2),
        };
        assert_eq!(
            to_text(&Line::Event(&event)),
            "assigned orders-7 as replica (slot 2)"
        );
        assert_eq!(
            to_json(&Line::Event(&event)).to_string(),
            r#"{"event":"assigned","item":"orders-7","primary":false,"slot":2}"#
        );
    }

    #[test]
    fn a_dead_process_says_when_it_comes_back() {
        let item = ItemId::new("x").unwrap();
        let line = Line::Exited {
            item: &item,
            status: "exit status: 3",
            restart_in: Duration::from_millis(2500),
        };
        assert_eq!(
            to_text(&line),
            "process for x ended (exit status: 3); restarting in 2.5 s"
        );
    }
}
