//! The converge engine as a library runs it: on the embedded store, with no command line,
//! its figures come back as data and agree with each other.

use std::time::Duration;

use apportion_bench::converge::{run, ConvergeOptions, Deployment};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_run_returns_its_figures() {
    let options = ConvergeOptions {
        members: 4,
        items: 60,
        replication: 2,
        zones: 3,
        lease_ttl: Duration::from_secs(1),
        prefix: "/apportion-bench-test".into(),
        idle: Duration::ZERO,
    };
    let line = run(&options, Deployment::Memory).await.unwrap();
    assert_eq!((line.store, line.shape), ("memory", "in-process"));
    assert!(line.processes.is_none());
    assert_eq!(line.floor_keys, line.changes + 120, "{line:?}");
    assert!(
        line.refill_changes > 0,
        "the victim's copies moved: {line:?}"
    );
    assert_eq!(line.lease_losses, 0, "{line:?}");
    assert_eq!(line.idle_secs, 0);
}
