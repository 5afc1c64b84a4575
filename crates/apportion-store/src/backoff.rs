//! `Backoff`: the one exponential back-off of apportion, for every loop that tries again
//! after a failure (a store call, a watch re-opened, a connection, a rejoin, a restarted
//! process).
//!
//! Each caller keeps its own first and longest delays, as its constants: what suits a watch
//! re-opened on loopback does not suit a crashing process. What they share is the rule: the
//! delay doubles after each wait up to the longest, and starts over from the first once the
//! caller saw things go well again.

use std::time::Duration;

/// Delays that double from a first one up to a longest one, and start over on
/// [`reset`](Self::reset). Not jittered: the loops that use it retry one server or process
/// each, so there is no herd of clients to spread out.
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Delays from `first` on, doubling up to `max`.
    pub const fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The delay to wait now; the next call gives twice as long, at most the longest.
    /// For a caller that shows the delay, or waits for it beside something else.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (delay * 2).min(self.max);
        delay
    }

    /// Sleeps for [`next_delay`](Self::next_delay) (on tokio's clock, so paused time in
    /// tests and simulations moves it on at once).
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }

    /// Starts over from the first delay: what failed works again, so a later failure is a
    /// new one rather than the next of a series.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn delays_double_up_to_the_longest_and_start_over_on_reset() {
        let mut backoff = Backoff::new(50 * MS, 300 * MS);
        let delays: Vec<_> = (0..5).map(|_| backoff.next_delay()).collect();
        assert_eq!(delays, [50 * MS, 100 * MS, 200 * MS, 300 * MS, 300 * MS]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), 50 * MS);
        assert_eq!(backoff.next_delay(), 100 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_sleeps_for_the_next_delay() {
        let mut backoff = Backoff::new(50 * MS, 300 * MS);
        let start = tokio::time::Instant::now();
        backoff.wait().await;
        backoff.wait().await;
        assert_eq!(start.elapsed(), 150 * MS);
    }
}
