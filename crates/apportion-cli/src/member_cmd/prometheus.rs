//! `--metrics-addr`: the library's metrics (rounds, solve time, unfilled slots, leader,
//! fencing) and the member's own (items held, processes running, process exits) served
//! for Prometheus to scrape at `/metrics`, each with its `# HELP` line and labelled with
//! the member and its zone, so series from many members can be told apart without
//! relabelling. Any other path is a 404, so a mistyped scrape path is noticed.

use std::net::SocketAddr;
use std::time::Duration;

use apportion::core::keys::MemberId;
use metrics::{describe_counter, describe_gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Items this member holds.
pub const ITEMS: &str = "apportion_member_items";
/// Processes running for `--exec`.
pub const PROCESSES: &str = "apportion_member_processes";
/// Processes that ended by themselves (and were restarted, or their item given up).
pub const PROCESS_EXITS: &str = "apportion_member_process_exits_total";

/// The path metrics are served at, as Prometheus scrapes by default.
const METRICS_PATH: &str = "/metrics";

/// The most a request head may take (the request line and headers); a scrape's is far
/// smaller, so a longer one is not a scrape.
const MAX_REQUEST: usize = 8 * 1024;

/// How long a client may take to send its request, so a stalled one does not hold a task.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts serving metrics at `addr` for member `member` (needs the async runtime): installs
/// the recorder with the member and zone labels, describes every metric and answers
/// scrapes in the background. Fails if the address cannot be bound.
pub fn serve(addr: SocketAddr, member: &MemberId) -> Result<(), String> {
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|listener| {
            listener.set_nonblocking(true)?;
            TcpListener::from_std(listener)
        })
        .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
    let recorder = PrometheusBuilder::new()
        .add_global_label("member", member.as_str())
        .add_global_label("zone", member.zone())
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
    apportion::describe_metrics();
    describe_member_metrics();
    tokio::spawn(accept(listener, handle));
    Ok(())
}

/// Describes the metrics this command records itself.
fn describe_member_metrics() {
    describe_gauge!(ITEMS, "Items this member holds");
    describe_gauge!(PROCESSES, "Processes running for --exec, one per held item");
    describe_counter!(
        PROCESS_EXITS,
        "Processes for --exec that ended by themselves (and were restarted, or their item given up)"
    );
}

/// Answers each connection on its own task, until the process ends.
async fn accept(listener: TcpListener, handle: PrometheusHandle) {
    loop {
        // A failed accept (out of file descriptors) is retried: metrics are not worth
        // stopping the member for.
        if let Ok((stream, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, &handle)).await;
            });
        }
    }
}

/// Reads one HTTP request and answers it: the metrics for `GET /metrics`, 404 for any
/// other path, 405 for another method; then closes the connection.
async fn answer(mut stream: TcpStream, handle: &PrometheusHandle) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.lines().next().unwrap_or("").split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET", METRICS_PATH) => {
            handle.run_upkeep();
            ("200 OK", "text/plain; version=0.0.4", handle.render())
        }
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            format!("not found: metrics are at {METRICS_PATH}\n"),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET is served\n".to_owned(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
