//! A spinner on stderr while a phase settles, so a person watching knows the demo is
//! working and how long it has waited. Only when stderr is a terminal: in a pipe or a log
//! file it would be noise. The line is erased when the guard is dropped, so the tables on
//! stdout read cleanly.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
const TICK: Duration = Duration::from_millis(100);

/// The running spinner; dropping it stops and erases it.
pub struct Progress {
    running: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl Progress {
    /// Starts spinning with `label`, when stderr is a terminal.
    pub fn start(label: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { running: None };
        }
        let stopped = Arc::new(AtomicBool::new(false));
        let label = label.to_string();
        let flag = stopped.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            for frame in FRAMES.iter().cycle() {
                {
                    // Checked under the stderr lock, so no frame lands after the erase.
                    let mut err = std::io::stderr().lock();
                    if flag.load(Ordering::SeqCst) {
                        return;
                    }
                    let secs = started.elapsed().as_secs_f64();
                    let _ = write!(err, "\r   {frame} {label} {secs:.1} s\x1b[K");
                    let _ = err.flush();
                }
                tokio::time::sleep(TICK).await;
            }
        });
        Progress {
            running: Some((stopped, task)),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some((stopped, task)) = self.running.take() {
            let mut err = std::io::stderr().lock();
            stopped.store(true, Ordering::SeqCst);
            task.abort();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}
