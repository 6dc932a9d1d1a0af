//! The one clock everything time-based reads: message TTLs and per-message
//! expiration, x-expires, queue deadlines, heartbeats, the handshake and
//! close deadlines, and the wall time stamped into x-death.
//!
//! Production uses the process clock. Tests (and, later, users through the
//! virtual clock) use a manual clock that moves only when told to, so a
//! heartbeat or TTL test never sleeps. A `Clock` is cheap to clone and to
//! read: the real one is a plain `Instant::now()`, the manual one an atomic
//! load; there is no virtual call on the hot path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<Manual>>,
}

#[derive(Debug)]
struct Manual {
    start: Instant,
    start_unix_ms: u64,
    /// Nanoseconds advanced since `start`.
    elapsed_ns: AtomicU64,
    /// Woken on every `advance`: tasks that sleep towards a deadline on this
    /// clock (connection timers, queue deadlines) look at it again.
    advanced: tokio::sync::Notify,
}

/// The origin of the millisecond scale (`Clock::millis`) of the real clock.
fn process_start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

impl Clock {
    /// The process clock.
    pub fn real() -> Clock {
        process_start();
        Clock { manual: None }
    }

    /// A clock that stands still until `advance` moves it. It starts at the
    /// real time of its creation, so wall-clock values stay plausible.
    pub fn manual() -> Clock {
        let start_unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        Clock {
            manual: Some(Arc::new(Manual {
                start: Instant::now(),
                start_unix_ms,
                elapsed_ns: AtomicU64::new(0),
                advanced: Default::default(),
            })),
        }
    }

    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// Moves a manual clock forward. A real clock cannot be moved: this
    /// returns false and changes nothing.
    pub fn advance(&self, by: Duration) -> bool {
        match &self.manual {
            Some(m) => {
                m.elapsed_ns.fetch_add(by.as_nanos().min(u64::MAX as u128) as u64, Ordering::AcqRel);
                m.advanced.notify_waiters();
                true
            }
            None => false,
        }
    }

    /// Waits until the clock reads `at` or later. On the real clock that is
    /// a timer; a manual clock is looked at after each `advance`, so a task
    /// asleep on it wakes exactly when a test moves time past its deadline.
    pub async fn sleep_until(&self, at: Instant) {
        match &self.manual {
            None => tokio::time::sleep_until(at.into()).await,
            Some(m) => loop {
                let advanced = m.advanced.notified();
                tokio::pin!(advanced);
                // Registered before the check, so an advance in between is seen.
                advanced.as_mut().enable();
                if self.now() >= at {
                    return;
                }
                advanced.await;
            },
        }
    }

    /// Waits until the clock reads something other than `seen` (a value of
    /// [`Clock::millis`]); never, on the real clock, whose moves nobody
    /// needs to hear about.
    pub async fn moved_from(&self, seen: u64) {
        match &self.manual {
            None => std::future::pending().await,
            Some(m) => loop {
                let advanced = m.advanced.notified();
                tokio::pin!(advanced);
                advanced.as_mut().enable();
                if self.millis() != seen {
                    return;
                }
                advanced.await;
            },
        }
    }

    /// Monotonic now.
    #[inline]
    pub fn now(&self) -> Instant {
        match &self.manual {
            None => Instant::now(),
            Some(m) => m.start + Duration::from_nanos(m.elapsed_ns.load(Ordering::Acquire)),
        }
    }

    /// Monotonic milliseconds since an origin fixed per clock: the scale of
    /// TTL deadlines and queue idle times.
    #[inline]
    pub fn millis(&self) -> u64 {
        match &self.manual {
            None => process_start().elapsed().as_millis() as u64,
            Some(m) => m.elapsed_ns.load(Ordering::Acquire) / 1_000_000,
        }
    }

    /// Wall-clock milliseconds since the Unix epoch (timestamps a client
    /// can see, such as x-death's `time`).
    pub fn unix_millis(&self) -> u64 {
        match &self.manual {
            None => SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
            Some(m) => m.start_unix_ms + m.elapsed_ns.load(Ordering::Acquire) / 1_000_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sleep_on_a_manual_clock_ends_when_time_is_moved_past_it() {
        let c = Clock::manual();
        let at = c.now() + Duration::from_secs(30);
        let sleeper = tokio::spawn({
            let c = c.clone();
            async move { c.sleep_until(at).await }
        });
        tokio::task::yield_now().await;
        c.advance(Duration::from_secs(29));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "woke before its deadline");
        c.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(1), sleeper).await.expect("woke at its deadline").unwrap();
    }

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_all_scales_agree() {
        let c = Clock::manual();
        let (t0, m0, u0) = (c.now(), c.millis(), c.unix_millis());
        assert_eq!((c.now(), c.millis(), c.unix_millis()), (t0, m0, u0));
        assert!(c.advance(Duration::from_millis(1500)));
        assert_eq!(c.now() - t0, Duration::from_millis(1500));
        assert_eq!(c.millis() - m0, 1500);
        assert_eq!(c.unix_millis() - u0, 1500);
        // Clones share the same time.
        let d = c.clone();
        c.advance(Duration::from_secs(1));
        assert_eq!(d.millis() - m0, 2500);
    }

    #[test]
    fn the_real_clock_cannot_be_moved() {
        let c = Clock::real();
        let before = c.now();
        assert!(!c.advance(Duration::from_secs(3600)));
        assert!(c.now() - before < Duration::from_secs(60));
    }
}
