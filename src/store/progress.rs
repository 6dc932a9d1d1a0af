//! How far the writer got, and what failed on the way.
//!
//! Every request to the writer gets a ticket from one counter, in the order
//! the writer receives them. After each batch the writer first records the
//! tickets whose write or fsync failed, then raises `resolved` to the batch's
//! last ticket: every ticket at or below `resolved` has an outcome, durable
//! or failed. Readers load `resolved` (acquire) before asking about failures,
//! so a failure is always visible to whoever sees its ticket resolved.
//!
//! Failures are rare and come in episodes (a full disk), so they are kept as
//! merged ranges, at most [`MAX_RANGES`] of them. When older ranges have to
//! be forgotten, every ticket below the forgotten mark counts as failed:
//! answering "failed" for a write that in fact succeeded costs a client a
//! retry (a nack, a 541); answering "durable" for one that failed would be a
//! lie. No I/O here.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Failure ranges kept before the oldest are forgotten.
const MAX_RANGES: usize = 1024;

/// The tickets one operation waits for: everything it sent to the writer
/// lies in `lo..=hi` (other connections' tickets may lie in between).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TicketRange {
    pub lo: u64,
    pub hi: u64,
}

impl TicketRange {
    pub fn is_empty(&self) -> bool {
        self.hi == 0
    }

    pub fn add(&mut self, ticket: u64) {
        if ticket == 0 {
            return;
        }
        if self.is_empty() {
            *self = TicketRange { lo: ticket, hi: ticket };
        } else {
            self.lo = self.lo.min(ticket);
            self.hi = self.hi.max(ticket);
        }
    }

    pub fn merge(&mut self, other: TicketRange) {
        if !other.is_empty() {
            self.add(other.lo);
            self.add(other.hi);
        }
    }
}

/// What became of the writes behind a range of tickets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The writer has not finished them yet.
    Pending,
    /// Written and fsynced.
    Durable,
    /// At least one of them could not be written or synced (or we can no
    /// longer tell; see the module comment).
    Failed,
}

#[derive(Debug, Default)]
struct FailLog {
    /// Disjoint, ascending, inclusive.
    ranges: VecDeque<(u64, u64)>,
    /// Tickets below this may have failed; their records were dropped.
    forgotten_below: u64,
}

#[derive(Debug, Default)]
pub struct Progress {
    resolved: AtomicU64,
    /// The highest ticket that ever failed (0: none): lets the common case
    /// answer without taking the lock.
    highest_failed: AtomicU64,
    failures: Mutex<FailLog>,
}

impl Progress {
    /// Every ticket up to this one has an outcome.
    pub fn resolved(&self) -> u64 {
        self.resolved.load(Ordering::Acquire)
    }

    pub fn outcome(&self, range: TicketRange) -> Outcome {
        if range.is_empty() {
            return Outcome::Durable;
        }
        if range.hi > self.resolved() {
            return Outcome::Pending;
        }
        if range.lo > self.highest_failed.load(Ordering::Acquire) {
            return Outcome::Durable;
        }
        let log = self.failures.lock();
        if range.lo < log.forgotten_below {
            return Outcome::Failed;
        }
        let hit = log.ranges.iter().any(|&(a, b)| a <= range.hi && range.lo <= b);
        if hit {
            Outcome::Failed
        } else {
            Outcome::Durable
        }
    }

    /// Writer side: these tickets failed. Call before [`Progress::resolve`].
    pub fn fail(&self, lo: u64, hi: u64) {
        if hi == 0 || lo > hi {
            return;
        }
        let mut log = self.failures.lock();
        match log.ranges.back_mut() {
            // Tickets fail in increasing batches, so merging with the last
            // range keeps an episode in one entry.
            Some(last) if lo <= last.1.saturating_add(1) && hi >= last.0 => {
                last.0 = last.0.min(lo);
                last.1 = last.1.max(hi);
            }
            _ => log.ranges.push_back((lo, hi)),
        }
        while log.ranges.len() > MAX_RANGES {
            if let Some((_, b)) = log.ranges.pop_front() {
                log.forgotten_below = log.forgotten_below.max(b + 1);
            }
        }
        self.highest_failed.fetch_max(hi, Ordering::AcqRel);
    }

    /// Writer side: every ticket up to `ticket` has its outcome recorded.
    pub fn resolve(&self, ticket: u64) {
        self.resolved.fetch_max(ticket, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(lo: u64, hi: u64) -> TicketRange {
        TicketRange { lo, hi }
    }

    #[test]
    fn pending_until_resolved_then_durable_or_failed() {
        let p = Progress::default();
        assert_eq!(p.outcome(r(1, 3)), Outcome::Pending);
        assert_eq!(p.outcome(TicketRange::default()), Outcome::Durable);
        p.fail(2, 2);
        p.resolve(5);
        assert_eq!(p.outcome(r(1, 1)), Outcome::Durable);
        assert_eq!(p.outcome(r(1, 3)), Outcome::Failed);
        assert_eq!(p.outcome(r(3, 5)), Outcome::Durable);
        assert_eq!(p.outcome(r(4, 6)), Outcome::Pending);
    }

    #[test]
    fn adjacent_failures_merge_and_forgotten_ones_count_as_failed() {
        let p = Progress::default();
        p.fail(1, 2);
        p.fail(3, 4);
        assert_eq!(p.failures.lock().ranges.len(), 1);
        for i in 0..(MAX_RANGES as u64 + 10) {
            p.fail(10 + i * 2, 10 + i * 2);
        }
        p.resolve(u64::MAX / 2);
        assert_eq!(p.failures.lock().ranges.len(), MAX_RANGES);
        // Ticket 5 never failed, but its neighbours' records are gone: the
        // safe answer is "failed".
        assert_eq!(p.outcome(r(5, 5)), Outcome::Failed);
        // Above every failure, the lock-free answer.
        assert_eq!(p.outcome(r(1 << 40, 1 << 40)), Outcome::Durable);
    }

    #[test]
    fn ranges_grow_to_cover_every_ticket_added() {
        let mut t = TicketRange::default();
        assert!(t.is_empty());
        t.add(0);
        assert!(t.is_empty());
        t.add(7);
        t.add(3);
        t.merge(r(9, 12));
        assert_eq!(t, r(3, 12));
    }
}
