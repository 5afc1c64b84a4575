//! `--metrics-addr`: the library's metrics (rounds, solve time, unfilled slots, leader,
//! fencing) and the member's own (items held, processes running, process exits) served
//! for Prometheus to scrape.

use std::net::SocketAddr;

use metrics_exporter_prometheus::PrometheusBuilder;

/// Items this member holds.
pub const ITEMS: &str = "apportion_member_items";
/// Processes running for `--exec`.
pub const PROCESSES: &str = "apportion_member_processes";
/// Processes that ended by themselves (and were restarted).
pub const PROCESS_EXITS: &str = "apportion_member_process_exits_total";

/// Starts serving metrics at `addr` (needs the async runtime).
pub fn serve(addr: SocketAddr) -> Result<(), String> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))
}
