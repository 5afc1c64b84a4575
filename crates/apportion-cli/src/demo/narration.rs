//! What the demo says as each phase begins: a heading and a sentence about what is about to
//! happen, worded from the [`Phase`] the story describes.

use std::time::Duration;

use apportion_sim::story::{Phase, RestartMode};

/// The phase's heading (without its number) and what happens in it.
pub fn narrate(phase: &Phase, lease_ttl: Duration) -> (String, String) {
    match phase {
        Phase::InitialAllocation {
            members,
            zones,
            item_limit,
            items,
            exclusive,
            replication,
        } => (
            "Initial allocation".into(),
            format!(
                "{members} members in {zones} zones join (item limit {item_limit} each); \
                 {items} items arrive: {exclusive} exclusive (one owner at a time), the \
                 others with {replication} replicas."
            ),
        ),
        Phase::MemberCrash {
            member,
            leader,
            load,
        } => (
            "A member crashes".into(),
            format!(
                "{member} ({}holding {load} items) stops without a word. Its lease ends \
                 after {} s; then the others take over what it held.",
                if *leader { "the leader, " } else { "" },
                lease_ttl.as_secs()
            ),
        ),
        Phase::ZoneDown { zone, members } => (
            format!("{zone} goes down"),
            format!(
                "The rest of {zone} ({}) loses power. Every item keeps its replicas in \
                 the zones left.",
                list(members)
            ),
        ),
        Phase::ZoneBack { zone, members } => (
            format!("{zone} comes back"),
            format!(
                "Its members ({}) start again, and replicas spread over every zone again.",
                list(members)
            ),
        ),
        Phase::RollingRestart {
            mode: RestartMode::Drain,
        } => (
            "Rolling restart, draining".into(),
            "Every member in turn drains (its items move away first), leaves and starts \
             again; the next one goes once the cluster has settled."
                .into(),
        ),
        Phase::RollingRestart {
            mode: RestartMode::Restart { grace },
        } => (
            "Rolling restart, in place".into(),
            format!(
                "Every member in turn restarts in place (as SIGTERM does to `apportion \
                 member --on-sigterm restart`): it hands its primaries and exclusive items \
                 over and leaves, and its replicas wait for it, one short, for up to {} s; \
                 started again, it gets them back. The next one goes once the cluster has \
                 settled.",
                grace.as_secs()
            ),
        ),
        Phase::GracefulDrain { member } => (
            "A member drains".into(),
            format!(
                "{member} is told to leave (as SIGTERM does to `apportion member`): its \
                 items move to the others before it goes."
            ),
        ),
        Phase::MembersJoin { members } => {
            let s = if members.len() == 1 { "s" } else { "" };
            (
                "Members join".into(),
                format!("{} join{s} and take{s} their share.", list(members)),
            )
        }
    }
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
