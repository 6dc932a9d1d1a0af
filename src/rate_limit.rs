//! The listener's connection-rate limit (`--connection-rate-limit`,
//! `warren.connection_rate_limit`): a token bucket the accept loop asks
//! before each `accept`. No I/O and no clock of its own: `now` comes in, so
//! it is tested without sleeping.
//!
//! Connections over the rate are not accepted yet rather than accepted and
//! closed. They wait in the kernel's listen backlog, costing the broker
//! nothing (no task, no buffers, no handshake timer), and the client sees a
//! slow connect instead of a refusal. Closing them at once would make a
//! reconnect storm worse: clients retry a refused connection immediately,
//! and each refusal still costs an accept, a task and a close. When the
//! backlog is full the kernel drops SYNs and clients back off on their own
//! (TCP's retransmission timer), which is the back-pressure we want.

use std::time::{Duration, Instant};

/// A token bucket: `rate` connections a second on average, bursts of up to
/// `rate` (one second's worth) after a quiet spell, so a client pool that
/// connects all at once at start-up is not slowed down.
#[derive(Debug)]
pub struct RateLimiter {
    /// Tokens added per second; also the bucket's capacity.
    rate: f64,
    tokens: f64,
    /// When `tokens` was last brought up to date.
    updated: Instant,
}

impl RateLimiter {
    /// `rate` connections a second; 0 is treated as 1 (a limit of 0 would
    /// stop the listener for good; "no limit" is `None` in the config).
    pub fn new(rate: u32, now: Instant) -> Self {
        let rate = f64::from(rate.max(1));
        RateLimiter { rate, tokens: rate, updated: now }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.updated = now;
    }

    /// How long to wait before the next connection may be accepted; zero
    /// when one may be accepted now. Takes nothing: call `take` once a
    /// connection was accepted (the accept may be cancelled in between).
    pub fn delay(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }

    /// Counts one accepted connection.
    pub fn take(&mut self, now: Instant) {
        self.refill(now);
        // May go below zero if a caller took without waiting: the debt is
        // paid back before the next accept.
        self.tokens -= 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_one_second_then_the_rate() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(10, t0);
        for _ in 0..10 {
            assert_eq!(r.delay(t0), Duration::ZERO);
            r.take(t0);
        }
        let wait = r.delay(t0);
        assert!(wait > Duration::from_millis(99) && wait <= Duration::from_millis(100), "{wait:?}");
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(r.delay(t1), Duration::ZERO, "one token back after 1/rate s");
        r.take(t1);
        assert!(r.delay(t1) > Duration::ZERO);
    }

    #[test]
    fn a_quiet_spell_fills_the_bucket_only_to_its_capacity() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(5, t0);
        let later = t0 + Duration::from_secs(3600);
        let mut admitted = 0;
        while r.delay(later).is_zero() {
            r.take(later);
            admitted += 1;
        }
        assert_eq!(admitted, 5);
    }

    #[test]
    fn over_a_long_run_the_rate_holds() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(100, t0);
        let mut now = t0;
        let mut admitted = 0u32;
        // Accept whenever allowed for 10 simulated seconds.
        while now < t0 + Duration::from_secs(10) {
            let d = r.delay(now);
            now += d;
            r.take(now);
            admitted += 1;
        }
        // 100 of burst + 100/s for 10 s, give or take the last one.
        assert!((1099..=1101).contains(&admitted), "{admitted}");
    }

    #[test]
    fn zero_is_one_a_second_not_a_stopped_listener() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(0, t0);
        r.take(t0);
        assert_eq!(r.delay(t0 + Duration::from_secs(1)), Duration::ZERO);
    }
}
