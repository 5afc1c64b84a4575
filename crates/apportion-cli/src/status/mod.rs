//! `apportion status`: the allocation as tables (or one JSON document), once or live.

mod report;

use std::future::Future;
use std::io::Write;
use std::time::{Duration, SystemTime};

use apportion::cluster::{ClusterView, Observed};
use apportion::report::{lease_times, member_leases, LeaseTimes, Overview};
use apportion_core::keys::Prefix;
use apportion_core::values::JsonDecoder;
use apportion_store::{KeyRange, RangeOptions, Store};
use clap::Args;
use tokio::time::Instant;

use crate::connect::Target;
use crate::error::{CliError, Result};
use crate::output::{write_json, write_json_line, FormatArgs};
use crate::summary;
use report::{Report, Stale};

/// The shortest time between two redraws of the live view, so a burst of changes does not
/// make the terminal flicker or the process spin.
const MIN_REDRAW: Duration = Duration::from_millis(200);

/// How often the live view asks etcd for the time left on the members' leases, and so
/// redraws: often enough for a dead member's lease to be seen counting down. The same
/// request tells whether etcd still answers: the watch behind the view reports nothing
/// while etcd is unreachable, so it cannot.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// How long the live view waits for etcd's answer before it marks the report stale.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Clears the terminal and moves the cursor home (ANSI), before each redraw.
const CLEAR_SCREEN: &str = "\x1b[2J\x1b[H";

/// Flags of `apportion status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    target: Target,
    /// `-o json` prints one JSON document instead of tables (with --watch: one document
    /// per line).
    #[command(flatten)]
    format: FormatArgs,
    /// Keep running and redraw as the allocation changes and every second (leases count
    /// down); a banner says when etcd stops answering. Ctrl-C quits.
    #[arg(long)]
    watch: bool,
}

impl StatusArgs {
    /// Runs the command against etcd, writing to stdout.
    pub async fn run(self) -> Result<()> {
        let store = self.target.connect().await?;
        let mut out = std::io::stdout().lock();
        if self.watch {
            watch(
                store,
                &self.target.prefix,
                self.format.json(),
                &mut out,
                crate::interrupted(),
            )
            .await
        } else {
            once(&store, &self.target.prefix, self.format.json(), &mut out).await
        }
    }
}

/// Reads the deployment once and writes its report. A prefix with nothing under it fails
/// instead: it is most likely mistyped, and an empty report would pass for an idle cluster.
/// (The live view keeps watching such a prefix: a deployment may be about to start there.)
pub async fn once<S: Store>(
    store: &S,
    prefix: &Prefix,
    json: bool,
    out: &mut impl Write,
) -> Result<()> {
    let view = ClusterView::read(store, prefix.as_str(), JsonDecoder).await?;
    if let Some(line) = summary::nothing_under(&view, prefix) {
        return Err(CliError::failed(line));
    }
    let times = lease_times(store, member_leases(&view.state)).await?;
    let report = Report {
        overview: Overview::new(prefix, &view, &times),
        stale: None,
    };
    if json {
        write_json(out, &report)
    } else {
        report.write_text(out)
    }
}

/// Follows the deployment and writes a fresh report after each change (at most every
/// [`MIN_REDRAW`]) and every [`PROBE_EVERY`], until `stop` resolves. Before each report it
/// asks etcd for the time left on the members' leases; when etcd does not answer within
/// [`PROBE_TIMEOUT`] the report keeps the last answers and says since when it is stale.
/// Text reports clear the screen first; JSON reports are written one per line, for a
/// script to read as a stream.
pub async fn watch<S: Store>(
    store: S,
    prefix: &Prefix,
    json: bool,
    out: &mut impl Write,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let view = ClusterView::start(store.clone(), prefix.as_str(), JsonDecoder).await?;
    let mut changes = view.subscribe();
    let mut times = LeaseTimes::new();
    let mut answered = (SystemTime::now(), Instant::now());
    tokio::pin!(stop);
    loop {
        let observed = changes.current();
        let probe = tokio::time::timeout(PROBE_TIMEOUT, probe(&store, prefix, &observed));
        let stale = tokio::select! {
            () = &mut stop => return Ok(()),
            probed = probe => match probed {
                Ok(Ok(answer)) => {
                    times = answer;
                    answered = (SystemTime::now(), Instant::now());
                    None
                }
                Ok(Err(_)) | Err(_) => Some(Stale {
                    since: clock(answered.0),
                    secs: answered.1.elapsed().as_secs(),
                }),
            },
        };
        let drawn_at = Instant::now();
        let report = Report {
            overview: Overview::new(prefix, &observed, &times),
            stale,
        };
        if json {
            write_json_line(out, &report)?;
        } else {
            let mut frame = CLEAR_SCREEN.as_bytes().to_vec();
            report.write_text(&mut frame)?;
            writeln!(frame, "\nwatching for changes; Ctrl-C quits")?;
            out.write_all(&frame)?;
        }
        out.flush()?;
        tokio::select! {
            () = &mut stop => return Ok(()),
            () = tokio::time::sleep_until(drawn_at + PROBE_EVERY) => {}
            changed = changes.changed() => {
                changed.ok_or_else(|| {
                    CliError::failed("the live view of etcd stopped unexpectedly")
                })?;
            }
        }
        tokio::select! {
            () = &mut stop => return Ok(()),
            () = tokio::time::sleep_until(drawn_at + MIN_REDRAW) => {}
        }
    }
}

/// Asks etcd for the time left on the leases of `observed`'s members, after reading one
/// key: that read answers even with no member, so its failure alone tells that etcd is
/// unreachable.
async fn probe<S: Store>(
    store: &S,
    prefix: &Prefix,
    observed: &Observed<JsonDecoder>,
) -> Result<LeaseTimes> {
    let one = RangeOptions {
        limit: 1,
        ..RangeOptions::default()
    };
    store
        .range_with(KeyRange::prefix(prefix.root_dir()), one)
        .await?;
    Ok(lease_times(store, member_leases(&observed.state)).await?)
}

/// A wall-clock time of day as `HH:MM:SS` UTC, for the staleness banner: the time part of
/// the timestamp the other commands print.
fn clock(at: SystemTime) -> String {
    crate::clock::rfc3339(at)[11..19].to_owned()
}

#[cfg(test)]
mod tests {
    use apportion_store::MemoryStore;
    use serde_json::{json, Value};

    use super::*;
    use crate::cluster;

    fn prefix() -> Prefix {
        Prefix::new(cluster::PREFIX).unwrap()
    }

    async fn json_report(store: &MemoryStore) -> Value {
        let mut out = Vec::new();
        once(store, &prefix(), true, &mut out).await.unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[tokio::test]
    async fn the_report_shows_leader_loads_fair_shares_and_what_needs_attention() {
        let store = MemoryStore::new();
        cluster::write(&store).await;
        let report = json_report(&store).await;
        assert_eq!(report["leader"], "eu#h1");
        assert_eq!(
            report["totals"],
            json!({"items": 3, "members": 3, "slots_wanted": 3, "slots_filled": 4,
                   "capacity": 16, "dangling": 1})
        );
        assert_eq!(
            report["zones"],
            json!([
                {"zone": "eu", "members": 2, "limit": 8, "load": 2, "primaries": 1},
                {"zone": "us", "members": 1, "limit": 8, "load": 2, "primaries": 1},
            ])
        );
        let loads: Vec<_> = report["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["member"].clone(),
                    m["load"].clone(),
                    m["fair_share"].clone(),
                )
            })
            .collect();
        assert_eq!(
            loads,
            [
                (json!("eu#h1"), json!(1), json!(1.0)),
                (json!("eu#h2"), json!(1), json!(1.0)),
                (json!("us#h1"), json!(2), json!(2.0)),
            ]
        );
        let attention: Vec<_> = report["attention"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].clone())
            .collect();
        assert_eq!(attention, [json!("orders"), json!("payments")]);
        assert_eq!(report["rejected"]["count"], 1);
        assert_eq!(
            report["rejected"]["first"][0]["key"],
            "/apportion/members/eu#bad"
        );
        assert!(report["rejected"]["first"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"));
    }

    #[tokio::test]
    async fn the_text_report_has_a_summary_tables_and_the_undecodable_keys() {
        let store = MemoryStore::new();
        cluster::write(&store).await;
        let mut out = Vec::new();
        once(&store, &prefix(), false, &mut out).await.unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("prefix /apportion  revision "),
            "{text}"
        );
        assert!(lines[0].ends_with("leader eu#h1"), "{text}");
        assert_eq!(
            lines[1],
            // The exclusive `payments` wants one copy and has two owners: one too many.
            "3 items, 4 of 3 copies placed, capacity 16, 3 members"
        );
        assert!(
            lines.contains(&"us          1      8     2          1"),
            "{text}"
        );
        assert_eq!(
            lines[2],
            "1 assignment left by deleted items or members, for the leader to remove"
        );
        assert!(text.contains("\npayments            3  yes               2           2\n"));
        assert!(text.contains("1 key ignored (did not decode):\n  /apportion/members/eu#bad: "));
    }

    #[tokio::test(start_paused = true)]
    async fn the_live_view_redraws_after_changes_until_stopped() {
        let store = MemoryStore::new();
        cluster::write(&store).await;
        let mut out = Vec::new();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let writer = store.clone();
        let driver = async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            // A burst of changes is drawn once or twice, not once per change.
            let admin = apportion::admin::Admin::new(writer, prefix());
            for n in 0..10 {
                let new = apportion_core::keys::ItemId::new(&format!("new-{n}")).unwrap();
                admin.put_item(&new, 1, None).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            stop_tx.send(()).unwrap();
        };
        let stop = async {
            let _ = stop_rx.await;
        };
        let prefix = prefix();
        let (watched, ()) =
            tokio::join!(watch(store.clone(), &prefix, true, &mut out, stop), driver);
        watched.unwrap();
        let reports: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert!(
            (2..=3).contains(&reports.len()),
            "{} reports",
            reports.len()
        );
        assert_eq!(reports[0]["totals"]["items"], 3);
        assert_eq!(reports.last().unwrap()["totals"]["items"], 13);
    }
}
