//! The signals that stop `apportion member`: SIGTERM (what supervisors send) and SIGINT
//! (Ctrl-C). Installed before anything else, so that a signal that comes while the member
//! is still starting is a clean stop, not death by the signal.

use tokio::signal::unix::{signal, Signal, SignalKind};

/// The stop signals, as a stream.
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Takes over SIGTERM and SIGINT from the default action (dying).
    pub fn install() -> std::io::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The name of the next stop signal to arrive.
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
