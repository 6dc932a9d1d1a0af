//! Shared counters, the run's clock, and CPU readings from /proc.
//!
//! Workers bump the counters once per batch (one read or one refill), never
//! per message, so the atomics stay off the per-message cost.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

static T0: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds on a process-wide monotonic clock. Producers stamp bodies
/// with it and consumers in the same process subtract: latency needs no
/// clock sync because both ends live here.
#[inline]
pub(super) fn now_ns() -> u64 {
    T0.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Converts a future `Instant` to the `now_ns` clock.
pub(super) fn instant_ns(at: Instant) -> u64 {
    let t0 = *T0.get_or_init(Instant::now);
    at.saturating_duration_since(t0).as_nanos() as u64
}

/// Counters every producer and consumer task adds to.
#[derive(Default)]
pub(super) struct Counters {
    pub sent: AtomicU64,
    /// Messages published per target queue index, to know how many
    /// deliveries to wait for when draining.
    pub sent_to: Vec<AtomicU64>,
    pub received: AtomicU64,
    pub confirmed: AtomicU64,
    pub nacked: AtomicU64,
    pub errors: AtomicU64,
    /// The first few error messages, for the summary.
    pub messages: Mutex<Vec<String>>,
}

impl Counters {
    pub(super) fn new(queues: usize) -> Counters {
        Counters { sent_to: (0..queues).map(|_| AtomicU64::new(0)).collect(), ..Counters::default() }
    }

    /// Records a failure; only the first five are kept as text.
    pub(super) fn error(&self, what: &str, e: impl std::fmt::Display) {
        self.errors.fetch_add(1, Relaxed);
        if let Ok(mut m) = self.messages.lock() {
            if m.len() < 5 {
                m.push(format!("{what}: {e}"));
            }
        }
    }
}

/// Linux reports /proc times in USER_HZ, which is 100 on every architecture
/// the kernel supports for the /proc ABI.
const USER_HZ: f64 = 100.0;

/// User + system CPU seconds of a process (all its threads, live and
/// exited), from /proc/<pid>/stat. `pid` may be "self". 10 ms resolution.
pub(super) fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name (which may hold spaces):
    // state is field 3, utime 14 and stime 15, so 11 and 12 here.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// Busy CPU seconds of the whole machine (all cores; everything but idle
/// and iowait), from /proc/stat: shows how much else was running.
pub(super) fn machine_busy_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    if v.len() < 8 {
        return None;
    }
    Some((v[..8].iter().sum::<u64>() - v[3] - v[4]) as f64 / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_and_machine_time() {
        assert!(cpu_secs("self").is_some());
        assert!(machine_busy_secs().is_some());
        assert!(cpu_secs("0").is_none());
    }
}
