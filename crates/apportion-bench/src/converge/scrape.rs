//! Reading a member process's Prometheus metrics (`apportion member --metrics-addr`): the
//! leader's rounds, transactions and changes are counted there, as the in-process shape
//! counts them with its round hook. One HTTP/1.0 GET on a plain TCP connection is all it
//! takes, so no HTTP client is needed.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Totals;

/// How long one scrape may take: the member answers from memory, on loopback.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// One scrape of a member's metrics page.
pub(super) struct Metrics(String);

impl Metrics {
    /// Fetches `http://ADDR/metrics`.
    pub async fn fetch(addr: SocketAddr) -> Result<Metrics, String> {
        let failed = |e: &dyn std::fmt::Display| format!("cannot read the metrics at {addr}: {e}");
        let exchange = async {
            let mut stream = TcpStream::connect(addr).await?;
            let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
            stream.write_all(request.as_bytes()).await?;
            let mut response = String::new();
            stream.read_to_string(&mut response).await?;
            Ok::<_, std::io::Error>(response)
        };
        let response = tokio::time::timeout(SCRAPE_TIMEOUT, exchange)
            .await
            .map_err(|e| failed(&e))?
            .map_err(|e| failed(&e))?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or_else(|| failed(&"the answer is not HTTP"))?;
        let status = head.lines().next().unwrap_or_default();
        if status.split_whitespace().nth(1) != Some("200") {
            return Err(failed(&status));
        }
        Ok(Metrics(body.to_string()))
    }

    /// The sum of every series of the metric `name` (all label sets); 0 when it has none
    /// (a counter appears once first incremented: a member that never led has none).
    pub fn sum(&self, name: &str) -> f64 {
        self.samples()
            .filter(|(series, _)| series.split('{').next() == Some(name))
            .map(|(_, value)| value)
            .sum()
    }

    /// What the leader did, as far as this member led: the same figures the in-process
    /// shape takes from its round hook.
    pub fn totals(&self) -> Totals {
        let count = |name| self.sum(name) as usize;
        Totals {
            rounds: count("apportion_rounds_total"),
            txns: count("apportion_txns_total"),
            failed_txns: count("apportion_failed_txns_total"),
            changes: count("apportion_changes_total"),
        }
    }

    /// Every sample line as (series, value); comments and unreadable lines are skipped.
    fn samples(&self) -> impl Iterator<Item = (&str, f64)> {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                Some((series.trim(), value.parse().ok()?))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"# TYPE apportion_changes_total counter
apportion_changes_total{kind="add"} 20
apportion_changes_total{kind="remove"} 3

# TYPE apportion_rounds_total counter
apportion_rounds_total 4

# TYPE apportion_solve_seconds summary
apportion_solve_seconds{member="z#m",zone="z",quantile="1"} 0.25
apportion_solve_seconds_sum 0.5
"#;

    #[test]
    fn a_page_sums_over_labels() {
        let metrics = Metrics(PAGE.to_string());
        assert_eq!(metrics.sum("apportion_changes_total"), 23.0);
        assert_eq!(metrics.sum("apportion_solve_seconds"), 0.25);
        let totals = metrics.totals();
        assert_eq!((totals.rounds, totals.txns, totals.changes), (4, 0, 23));
    }
}
