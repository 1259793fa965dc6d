//! CPU time and resident memory of a process, from `/proc` (Linux).

use std::time::Instant;

/// Clock ticks per second of `/proc/PID/stat` times: `USER_HZ`, fixed at 100 by the Linux ABI.
const USER_HZ: f64 = 100.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When it was taken.
    pub at: Instant,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident set size, KiB.
    pub rss_kib: u64,
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`; `None` once the process is gone.
pub fn sample(pid: u32) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Sample {
        at: Instant::now(),
        cpu_ticks: cpu_ticks(&stat)?,
        rss_kib: rss_kib(&status)?,
    })
}

/// Open file descriptors of a process (entries of `/proc/PID/fd`); `None` if unreadable.
pub fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Open file descriptors summed over `pids`; `None` if none could be read.
pub fn open_fds_sum(pids: &[u32]) -> Option<u64> {
    let v: Vec<u64> = pids.iter().filter_map(|&p| open_fds(p)).collect();
    (!v.is_empty()).then(|| v.iter().sum())
}

/// Busy and total clock ticks of the whole machine (all cores), from `/proc/stat`.
#[derive(Debug, Clone, Copy)]
pub struct MachineSample {
    /// When it was taken.
    pub at: Instant,
    /// Ticks spent neither idle nor waiting for I/O.
    pub busy_ticks: u64,
}

/// Reads the machine-wide CPU line of `/proc/stat`, to tell how much CPU processes other than the watched ones took.
pub fn sample_machine() -> Option<MachineSample> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    Some(MachineSample {
        at: Instant::now(),
        busy_ticks: machine_busy(stat.lines().next()?)?,
    })
}

/// user + nice + system + irq + softirq + steal from the aggregate `cpu` line.
fn machine_busy(line: &str) -> Option<u64> {
    let mut f = line.split_whitespace();
    if f.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = f.map(|x| x.parse().ok()).collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is already in user.
    Some(
        v.get(..8)?
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 3 && *i != 4)
            .map(|(_, x)| x)
            .sum(),
    )
}

/// Machine CPU use between two samples, in percent of one core.
pub fn machine_percent(from: &MachineSample, to: &MachineSample) -> f64 {
    let secs = to.at.duration_since(from.at).as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    to.busy_ticks.saturating_sub(from.busy_ticks) as f64 / USER_HZ / secs * 100.0
}

/// utime + stime from a `stat` line; the command name may contain spaces, so fields count from the last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ... utime(14) stime(15) → indexes 11 and 12 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` in KiB from a `status` file.
fn rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU use between two samples, in percent of one core (200 % = both cores of a 2-core machine).
pub fn cpu_percent(from: &Sample, to: &Sample) -> f64 {
    let secs = to.at.duration_since(from.at).as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    to.cpu_ticks.saturating_sub(from.cpu_ticks) as f64 / USER_HZ / secs * 100.0
}

/// Samples of several processes watched as one (`--watch server=PID1,PID2`, e.g. gateway replicas), taken together.
pub fn sample_all(pids: &[u32]) -> Vec<Option<Sample>> {
    pids.iter().map(|pid| sample(*pid)).collect()
}

/// RSS summed over the processes that were alive, KiB; `None` when none was.
pub fn rss_sum_kib(samples: &[Option<Sample>]) -> Option<u64> {
    samples
        .iter()
        .flatten()
        .map(|s| s.rss_kib)
        .reduce(|a, b| a + b)
}

/// CPU of each process between its two samples, summed, in percent of one core (0 for one missing either).
pub fn cpu_percent_sum(from: &[Option<Sample>], to: &[Option<Sample>]) -> f64 {
    from.iter()
        .zip(to)
        .map(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => cpu_percent(a, b),
            _ => 0.0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parens() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 1000 200";
        assert_eq!(cpu_ticks(stat), Some(300));
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    4321 kB\nThreads: 1\n";
        assert_eq!(rss_kib(status), Some(4321));
    }

    #[test]
    fn machine_busy_skips_idle_and_iowait() {
        let line = "cpu  100 10 50 9000 40 5 5 0 0 0";
        assert_eq!(machine_busy(line), Some(170));
        assert_eq!(machine_busy("cpu0 1 2 3 4 5 6 7 8"), None);
        assert!(sample_machine().is_some());
    }

    #[test]
    fn groups_sum_rss_and_cpu_of_live_processes() {
        let at = Instant::now();
        let later = at + std::time::Duration::from_secs(2);
        let s = |at, cpu_ticks, rss_kib| {
            Some(Sample {
                at,
                cpu_ticks,
                rss_kib,
            })
        };
        let from = [s(at, 100, 1000), s(at, 50, 3000), None];
        let to = [s(later, 200, 1500), s(later, 150, 2000), s(later, 10, 7)];
        assert_eq!(rss_sum_kib(&from), Some(4000));
        assert_eq!(rss_sum_kib(&to), Some(3507));
        assert_eq!(rss_sum_kib(&[None, None]), None);
        // 100 ticks in 2 s = 50 % each; the third has no start sample and counts 0.
        assert!((cpu_percent_sum(&from, &to) - 100.0).abs() < 1e-9);
        assert_eq!(sample_all(&[std::process::id(), u32::MAX]).len(), 2);
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_kib > 0);
        assert!(sample(u32::MAX).is_none());
    }
}
