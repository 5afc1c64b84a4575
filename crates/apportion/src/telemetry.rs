//! What the runtime's metrics mean, for an exporter to show next to them (Prometheus's
//! `# HELP` lines): a metric without its meaning sends the operator to the source.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

/// Registers a description of every metric the runtime records with the installed
/// recorder. Call it once the recorder is installed; metrics recorded before or after
/// are described alike.
pub fn describe_metrics() {
    describe_gauge!(
        "apportion_leader",
        "1 while this member leads (plans the allocation), else 0"
    );
    describe_counter!(
        "apportion_leader_step_downs_total",
        "Times this member stopped leading"
    );
    describe_counter!(
        "apportion_rounds_total",
        "Allocation rounds this member ran as leader"
    );
    describe_gauge!(
        "apportion_idle_round_revision",
        "Store revision of this member's latest round as leader if it found nothing to do, \
         -1 if it had work: the leader is at rest when this equals the store's revision"
    );
    describe_histogram!(
        "apportion_solve_seconds",
        Unit::Seconds,
        "Time the leader's solver took per round"
    );
    describe_gauge!(
        "apportion_unfilled_slots",
        "Copies the last plan could not place on any member"
    );
    describe_gauge!(
        "apportion_held_items",
        "Items the leader leaves a replica short while a member is away (restarting, or lost \
         under a refill delay)"
    );
    describe_counter!(
        "apportion_solve_failures_total",
        "Rounds whose solve failed"
    );
    describe_counter!(
        "apportion_changes_total",
        "Changes the leader wrote, by kind (add, remove, reslot, release)"
    );
    describe_counter!(
        "apportion_txns_total",
        "etcd transactions the leader sent to apply its plans"
    );
    describe_counter!(
        "apportion_failed_txns_total",
        "Of those, transactions etcd refused (a compare failed: the cluster changed meanwhile)"
    );
    describe_counter!(
        "apportion_fencing_events_total",
        "Times this member fenced itself (lease renewals unacknowledged) or unfenced, by event"
    );
}
