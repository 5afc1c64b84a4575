//! What a process has used, from Linux's `/proc`: its peak resident memory and its CPU
//! time. The benchmarks report them for themselves, and the converge benchmark for each
//! member process when its members are processes, so both read them the same way. A process's files vanish once it
//! has been reaped: read them while it is alive. Where there is no `/proc` (or the process
//! is gone) the figures are 0.

/// The process to read the figures of.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pid {
    /// This process.
    This,
    /// Another process, by id (a child, still alive).
    Of(u32),
}

impl Pid {
    /// Reads one of the process's `/proc` files; empty when it cannot be read.
    fn read(self, file: &str) -> String {
        let path = match self {
            Pid::This => format!("/proc/self/{file}"),
            Pid::Of(pid) => format!("/proc/{pid}/{file}"),
        };
        std::fs::read_to_string(path).unwrap_or_default()
    }
}

/// The process's peak resident set size (`VmHWM`) in MiB.
pub(crate) fn peak_rss_mb(pid: Pid) -> f64 {
    pid.read("status")
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU seconds (user and system, every thread) the process has used so far.
pub(crate) fn cpu_secs(pid: Pid) -> f64 {
    let stat = pid.read("stat");
    // The command name (field 2) is in parentheses and may hold spaces: count the fields
    // after its closing one, where field 3 (the state) comes first; utime and stime are
    // fields 14 and 15, in clock ticks.
    let Some((_, fields)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let ticks: f64 = fields
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<f64>().ok())
        .sum();
    // SAFETY: sysconf only reads a system constant.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if per_sec <= 0 {
        return 0.0;
    }
    ticks / per_sec as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_used_memory_and_the_figures_of_a_gone_one_are_zero() {
        assert!(peak_rss_mb(Pid::This) > 0.0);
        assert!(cpu_secs(Pid::This) >= 0.0);
        assert_eq!(peak_rss_mb(Pid::Of(u32::MAX)), 0.0);
        assert_eq!(cpu_secs(Pid::Of(u32::MAX)), 0.0);
    }

    #[test]
    fn cpu_time_grows_with_busy_work() {
        let before = cpu_secs(Pid::This);
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while cpu_secs(Pid::This) < before + 0.05 && started.elapsed().as_secs() < 10 {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
        assert!(cpu_secs(Pid::This) >= before + 0.05, "{x}");
    }
}
