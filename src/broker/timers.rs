//! Per-queue deadlines: when a queue's head message expires (x-message-ttl,
//! per-message expiration) or when it has been unused for its x-expires.
//!
//! Each vhost keeps a min-heap of (deadline, queue). A queue registers a
//! deadline (under its own lock; this lock is innermost, like the outbox's)
//! only when it is earlier than the one it already has in the heap, so a
//! steady stream of messages costs no heap traffic. Entries can go stale (the
//! head was consumed, the queue was used again): firing one only makes that
//! queue look at itself and register its next deadline. So a tick touches
//! only the queues that are due, and the timer task sleeps until the
//! earliest deadline of all, woken early when an earlier one appears.
//!
//! Deadlines are on the broker clock's `millis()` scale.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::queue::Queue;

struct Entry {
    at: u64,
    queue: Weak<Queue>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

/// One vhost's queue deadlines.
pub struct Timers {
    heap: Mutex<BinaryHeap<Reverse<Entry>>>,
    /// Shared by every vhost of a broker: wakes the timer task when a
    /// deadline earlier than all others is registered.
    wake: Arc<Notify>,
}

impl Timers {
    pub fn new(wake: Arc<Notify>) -> Self {
        Timers { heap: Mutex::new(BinaryHeap::new()), wake }
    }

    /// Asks for `queue` to be looked at once the clock reaches `at`.
    pub fn schedule(&self, at: u64, queue: Weak<Queue>) {
        let earliest = {
            let mut heap = self.heap.lock();
            let earliest = heap.peek().is_none_or(|Reverse(e)| at < e.at);
            heap.push(Reverse(Entry { at, queue }));
            earliest
        };
        if earliest {
            self.wake.notify_one();
        }
    }

    /// The earliest deadline registered.
    pub fn next(&self) -> Option<u64> {
        self.heap.lock().peek().map(|Reverse(e)| e.at)
    }

    /// Takes one entry due at `now`: its deadline and queue.
    pub fn pop_due(&self, now: u64) -> Option<(u64, Weak<Queue>)> {
        let mut heap = self.heap.lock();
        if heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
            heap.pop().map(|Reverse(e)| (e.at, e.queue))
        } else {
            None
        }
    }

    pub fn len(&self) -> usize {
        self.heap.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for Timers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timers").field("entries", &self.len()).field("next", &self.next()).finish()
    }
}
