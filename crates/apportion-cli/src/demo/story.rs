//! The story, phase by phase: each prints a heading saying what happens, acts on the
//! cluster, waits for it to settle (a spinner meanwhile), then prints the table and the
//! invariants' verdict. A broken invariant is reported and the story goes on; only a
//! failure to act (the store gone, a cluster that never settles) ends it early.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apportion::store::Store;

use super::check::check;
use super::cluster::Cluster;
use super::error::DemoError;
use super::ledger::{self, Ledger};
use super::plan::{Cast, Plan};
use super::progress::Progress;
use super::report::PhaseReport;

/// The longest a cluster may take to settle after one action.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

/// How the story went.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Phases told.
    pub phases: u32,
    /// Phases after which an invariant did not hold.
    pub broken: u32,
}

/// The story being told; see the module documentation.
pub struct Story<S: Store> {
    cluster: Cluster<S>,
    plan: Plan,
    ledger: Arc<Mutex<Ledger>>,
    ttl: i64,
    outcome: Outcome,
}

/// A phase under way: when it started, and its spinner.
struct Started {
    at: Instant,
    _progress: Progress,
}

impl<S: Store> Story<S> {
    /// Tells the whole story on `store` under `prefix`, with leases of `ttl` seconds, then
    /// removes everything it wrote.
    pub async fn tell(store: S, prefix: &str, ttl: i64, plan: Plan) -> Result<Outcome, DemoError> {
        let ledger = Arc::new(Mutex::new(Ledger::new(plan.exclusive())));
        let cluster = Cluster::start(store, prefix, ttl, ledger.clone()).await?;
        let mut story = Story {
            cluster,
            plan,
            ledger,
            ttl,
            outcome: Outcome {
                phases: 0,
                broken: 0,
            },
        };
        let told = story.phases().await;
        let cleaned = story.cluster.shut_down().await;
        told?;
        cleaned?;
        Ok(story.outcome)
    }

    async fn phases(&mut self) -> Result<(), DemoError> {
        self.initial_allocation().await?;
        self.member_crash().await?;
        self.zone_down().await?;
        self.zone_back().await?;
        self.rolling_restart().await?;
        self.graceful_drain().await?;
        self.members_join().await
    }

    async fn initial_allocation(&mut self) -> Result<(), DemoError> {
        let plan = &self.plan;
        let exclusive = plan.items.iter().filter(|i| i.exclusive).count();
        let zones = zones_of(&plan.members);
        let started = self.begin(
            "Initial allocation",
            format!(
                "{} members in {} zones join (item limit {} each); {} items arrive: {} \
                 exclusive (one owner at a time), the others with {} replicas.",
                plan.members.len(),
                zones.len(),
                plan.item_limit,
                plan.items.len(),
                exclusive,
                super::plan::REPLICATION
            ),
        );
        for cast in self.plan.members.clone() {
            self.cluster.join(&cast, self.plan.item_limit).await?;
        }
        self.cluster.put_items(&self.plan.items).await?;
        self.end(started).await
    }

    async fn member_crash(&mut self) -> Result<(), DemoError> {
        let name = self.plan.crashed.name();
        let role = if self.cluster.leader().as_deref() == Some(name.as_str()) {
            "the leader, "
        } else {
            ""
        };
        let load = self.cluster.load(&name);
        let started = self.begin(
            "A member crashes",
            format!(
                "{name} ({role}holding {load} items) stops without a word. Its lease ends \
                 after {} s; then the others take over what it held.",
                self.ttl
            ),
        );
        self.cluster.crash(&name);
        self.cluster.wait_gone(&[name], self.lease_limit()).await?;
        self.end(started).await
    }

    async fn zone_down(&mut self) -> Result<(), DemoError> {
        let zone = self.plan.incident_zone.clone();
        let rest: Vec<String> = self
            .cluster
            .running()
            .into_iter()
            .filter(|n| n.starts_with(&format!("{zone}#")))
            .collect();
        let started = self.begin(
            &format!("{zone} goes down"),
            format!(
                "The rest of {zone} ({}) loses power. Every item keeps its replicas in \
                 the zones left.",
                list(&rest)
            ),
        );
        for name in &rest {
            self.cluster.crash(name);
        }
        self.cluster.wait_gone(&rest, self.lease_limit()).await?;
        self.end(started).await
    }

    async fn zone_back(&mut self) -> Result<(), DemoError> {
        let zone = self.plan.incident_zone.clone();
        let back: Vec<Cast> = self
            .plan
            .members
            .iter()
            .filter(|c| c.zone == zone)
            .cloned()
            .collect();
        let started = self.begin(
            &format!("{zone} comes back"),
            format!(
                "Its members ({}) start again, and replicas spread over every zone again.",
                list(&back.iter().map(Cast::name).collect::<Vec<_>>())
            ),
        );
        for cast in &back {
            self.cluster.join(cast, self.plan.item_limit).await?;
        }
        self.end(started).await
    }

    async fn rolling_restart(&mut self) -> Result<(), DemoError> {
        let order: Vec<Cast> = self.plan.members.clone();
        let started = self.begin(
            "Rolling restart",
            "Every member in turn drains (its items move away first), leaves and starts \
             again; the next one goes once the cluster has settled."
                .to_string(),
        );
        for cast in &order {
            self.cluster.drain(&cast.name(), SETTLE_LIMIT).await?;
            self.cluster.join(cast, self.plan.item_limit).await?;
            self.cluster.settle(SETTLE_LIMIT).await?;
        }
        self.end(started).await
    }

    async fn graceful_drain(&mut self) -> Result<(), DemoError> {
        let name = self.plan.drained.name();
        let started = self.begin(
            "A member drains",
            format!(
                "{name} is told to leave (as SIGTERM does to `apportion member`): its items \
                 move to the others before it goes."
            ),
        );
        self.cluster.drain(&name, SETTLE_LIMIT).await?;
        self.end(started).await
    }

    async fn members_join(&mut self) -> Result<(), DemoError> {
        let joiners = self.plan.joiners.clone();
        let started = self.begin(
            "Members join",
            format!(
                "{} join{} and take{} their share.",
                list(&joiners.iter().map(Cast::name).collect::<Vec<_>>()),
                if joiners.len() == 1 { "s" } else { "" },
                if joiners.len() == 1 { "s" } else { "" },
            ),
        );
        for cast in &joiners {
            self.cluster.join(cast, self.plan.item_limit).await?;
        }
        self.end(started).await
    }

    /// Prints the phase's heading and starts its clock and spinner.
    fn begin(&mut self, title: &str, detail: String) -> Started {
        self.outcome.phases += 1;
        println!("\n{}. {title}", self.outcome.phases);
        println!("   {detail}");
        Started {
            at: Instant::now(),
            _progress: Progress::start("settling"),
        }
    }

    /// Waits for the cluster to settle, then prints the phase's report.
    async fn end(&mut self, started: Started) -> Result<(), DemoError> {
        let settled = self.cluster.settle(SETTLE_LIMIT).await?;
        let took = started.at.elapsed();
        drop(started);
        let mut record = ledger::lock(&self.ledger).take();
        let verdict = check(&settled.state, std::mem::take(&mut record.problems));
        if !verdict.held() {
            self.outcome.broken += 1;
        }
        let report = PhaseReport {
            state: &settled.state,
            record: &record,
            took,
            verdict: &verdict,
        };
        print!("{report}");
        Ok(())
    }

    /// How long a crashed member's lease may take to end.
    fn lease_limit(&self) -> Duration {
        Duration::from_secs(3 * self.ttl as u64 + 10)
    }
}

/// The distinct zones of `members`, in order of appearance.
fn zones_of(members: &[Cast]) -> Vec<&str> {
    let mut zones: Vec<&str> = Vec::new();
    for m in members {
        if !zones.contains(&m.zone.as_str()) {
            zones.push(&m.zone);
        }
    }
    zones
}

/// `a`, `a and b`, `a, b and c`; `nobody` when empty.
fn list(names: &[String]) -> String {
    match names {
        [] => "nobody".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_as_english() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(list(&names(&[])), "nobody");
        assert_eq!(list(&names(&["a"])), "a");
        assert_eq!(list(&names(&["a", "b", "c"])), "a, b and c");
    }
}
