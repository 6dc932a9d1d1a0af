//! Message counters, RabbitMQ's `message_stats`: totals since start that
//! the management API samples to show rates. Cheap by construction: a
//! connection counts its own publishes, deliveries, acks and confirms in
//! plain integers ([`MessageCounts`]) and adds them to its vhost's and the
//! broker's atomics once per batch; a queue's and an exchange's counters
//! are relaxed atomics (or fields under a lock already held). No lock and
//! no allocation per message.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts one connection gathered during a batch, flushed by `add_to`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageCounts {
    pub received: u64,
    pub routed: u64,
    pub unroutable_dropped: u64,
    pub unroutable_returned: u64,
    pub confirmed: u64,
    pub delivered: u64,
    pub acknowledged: u64,
}

impl MessageCounts {
    pub fn is_zero(&self) -> bool {
        *self == MessageCounts::default()
    }
}

/// Broker-wide or per-vhost totals, as atomics.
#[derive(Debug, Default)]
pub struct MessageStats {
    received: AtomicU64,
    routed: AtomicU64,
    unroutable_dropped: AtomicU64,
    unroutable_returned: AtomicU64,
    confirmed: AtomicU64,
    delivered: AtomicU64,
    acknowledged: AtomicU64,
}

impl MessageStats {
    /// Adds a batch's counts (only the non-zero ones are written).
    pub fn add(&self, c: &MessageCounts) {
        let add = |a: &AtomicU64, v: u64| {
            if v != 0 {
                a.fetch_add(v, Ordering::Relaxed);
            }
        };
        add(&self.received, c.received);
        add(&self.routed, c.routed);
        add(&self.unroutable_dropped, c.unroutable_dropped);
        add(&self.unroutable_returned, c.unroutable_returned);
        add(&self.confirmed, c.confirmed);
        add(&self.delivered, c.delivered);
        add(&self.acknowledged, c.acknowledged);
    }

    pub fn snapshot(&self) -> MessageCounts {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MessageCounts {
            received: l(&self.received),
            routed: l(&self.routed),
            unroutable_dropped: l(&self.unroutable_dropped),
            unroutable_returned: l(&self.unroutable_returned),
            confirmed: l(&self.confirmed),
            delivered: l(&self.delivered),
            acknowledged: l(&self.acknowledged),
        }
    }
}

/// `Broker::global_stats`: message totals and connection/channel churn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalStats {
    /// Publishes received (RabbitMQ's `publish`).
    pub messages_received: u64,
    /// Publishes routed to at least one queue (or a direct reply-to consumer).
    pub messages_routed: u64,
    /// Unroutable, not mandatory: dropped (RabbitMQ's `drop_unroutable`).
    pub messages_unroutable_dropped: u64,
    /// Unroutable and mandatory: returned (RabbitMQ's `return_unroutable`).
    pub messages_unroutable_returned: u64,
    /// Publisher confirms sent (acks, not nacks).
    pub messages_confirmed: u64,
    /// Deliveries to consumers plus basic.get-oks, with or without ack.
    pub messages_delivered: u64,
    /// Deliveries acknowledged by clients.
    pub messages_acknowledged: u64,
    pub connections_opened: u64,
    pub connections_closed: u64,
    pub channels_opened: u64,
    pub channels_closed: u64,
}

impl GlobalStats {
    pub(crate) fn from_counts(c: MessageCounts, churn: super::registry::ChurnStats) -> Self {
        GlobalStats {
            messages_received: c.received,
            messages_routed: c.routed,
            messages_unroutable_dropped: c.unroutable_dropped,
            messages_unroutable_returned: c.unroutable_returned,
            messages_confirmed: c.confirmed,
            messages_delivered: c.delivered,
            messages_acknowledged: c.acknowledged,
            connections_opened: churn.connections_opened,
            connections_closed: churn.connections_closed,
            channels_opened: churn.channels_opened,
            channels_closed: churn.channels_closed,
        }
    }
}

/// `Queue::stats`: RabbitMQ's per-queue `message_stats` and byte totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages enqueued (publishes and dead-lettered arrivals).
    pub publish: u64,
    /// Deliveries to consumers that ack.
    pub deliver: u64,
    pub deliver_no_ack: u64,
    /// basic.get-oks with and without ack.
    pub get: u64,
    pub get_no_ack: u64,
    pub ack: u64,
    /// Deliveries (and get-oks) of messages marked redelivered.
    pub redeliver: u64,
    /// Ready plus unacknowledged body bytes (RabbitMQ's `message_bytes`).
    pub message_bytes: u64,
    pub message_bytes_ready: u64,
    pub message_bytes_unacknowledged: u64,
    pub messages_ready: u64,
    pub messages_unacknowledged: u32,
}

/// What a queue's consumers side counts: written by the connections that
/// deliver and settle (on their own threads), so kept off the cache line
/// of the queue lock, which publishers take.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct DeliveryCounters {
    pub(crate) deliver: AtomicU64,
    pub(crate) deliver_no_ack: AtomicU64,
    pub(crate) get: AtomicU64,
    pub(crate) get_no_ack: AtomicU64,
    pub(crate) ack: AtomicU64,
    pub(crate) redeliver: AtomicU64,
    /// Delivered with manual ack and not settled yet.
    pub(crate) unacked: std::sync::atomic::AtomicU32,
    pub(crate) unacked_bytes: AtomicU64,
}

/// Deliveries one connection wrote from one queue in a batch, added to the
/// queue's counters at once (`Queue::add_delivered`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    /// With manual ack: these are unacknowledged now.
    pub deliver: u64,
    pub deliver_no_ack: u64,
    pub redeliver: u64,
    /// Body bytes of the manual-ack ones.
    pub unacked_bytes: u64,
}

impl Delivered {
    #[inline]
    pub fn count(&mut self, no_ack: bool, m: &crate::message::QueuedMessage) {
        if no_ack {
            self.deliver_no_ack += 1;
        } else {
            self.deliver += 1;
            self.unacked_bytes += m.message.body.len() as u64;
        }
        self.redeliver += m.redelivered as u64;
    }
}

/// Settled deliveries of one queue, added at once (`Queue::add_settled`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settled {
    pub count: u32,
    pub bytes: u64,
    pub acked: u64,
}

impl Settled {
    #[inline]
    pub fn add(&mut self, bytes: u64, acked: bool) {
        self.count += 1;
        self.bytes += bytes;
        self.acked += acked as u64;
    }
}

/// `Exchange::stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExchangeStats {
    /// Publishes to this exchange.
    pub publish_in: u64,
    /// Publishes that it routed to at least one queue.
    pub publish_out: u64,
}
