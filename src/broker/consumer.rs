//! Consumers and the outbox that carries deliveries to a connection.
//!
//! A queue hands a message to a consumer by pushing it into the consumer's
//! connection outbox; the connection task writes it to its socket. Credit
//! decides whether a consumer may take another message: the prefetch limits
//! (per consumer and per channel) count unacknowledged deliveries, and
//! `pending` counts deliveries sitting in the outbox not yet written, so a
//! consumer whose socket is slow stops receiving (back-pressure) instead of
//! the outbox growing without bound.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use amq_protocol::types::FieldTable;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::queue::Queue;
use crate::ids::{ChannelId, ConnectionId};
use crate::message::QueuedMessage;

/// Deliveries a consumer may have in its outbox before the queue stops giving
/// it more. Large enough to keep a fast socket busy between wake-ups.
pub const PENDING_CAP: u32 = 512;

/// The channel-wide prefetch (basic.qos global=true), shared by every
/// consumer of the channel.
#[derive(Debug, Default)]
pub struct ChannelLimit {
    pub limit: AtomicU32,
    pub unacked: AtomicU32,
}

impl ChannelLimit {
    fn try_acquire(&self) -> bool {
        let limit = self.limit.load(Ordering::Acquire);
        self.unacked
            .fetch_update(
                Ordering::AcqRel,
                Ordering::Acquire,
                |n| if limit == 0 || n < limit { Some(n + 1) } else { None },
            )
            .is_ok()
    }

    pub fn release(&self) {
        let _ = self.unacked.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

#[derive(Debug)]
pub struct Consumer {
    pub tag: String,
    pub channel: ChannelId,
    pub connection_id: ConnectionId,
    pub queue: Arc<Queue>,
    pub no_ack: bool,
    pub exclusive: bool,
    /// `x-priority`: higher-priority consumers are served first.
    pub priority: i32,
    /// Per-consumer prefetch (basic.qos global=false at consume time); 0 = none.
    pub prefetch: u32,
    /// basic.consume's arguments, as given (for the management API).
    pub arguments: FieldTable,
    unacked: AtomicU32,
    pending: AtomicU32,
    pub channel_limit: Arc<ChannelLimit>,
    pub outbox: Arc<Outbox>,
    /// Cleared on cancel so deliveries already in the outbox are requeued.
    active: AtomicBool,
    /// It reads a stream: its credit is its own prefetch alone (RabbitMQ
    /// ignores a global basic.qos for it). Read once, off the queue.
    stream: bool,
}

/// What a consumer is made of (`Consumer::new`): basic.consume's fields and
/// where its deliveries go.
pub struct NewConsumer {
    pub tag: String,
    pub channel: ChannelId,
    pub connection_id: ConnectionId,
    pub queue: Arc<Queue>,
    pub no_ack: bool,
    pub exclusive: bool,
    /// `x-priority` (0 without it).
    pub priority: i32,
    /// The channel's basic.qos global=false prefetch at consume time; 0 = none.
    pub prefetch: u32,
    /// basic.consume's arguments.
    pub arguments: FieldTable,
    pub channel_limit: Arc<ChannelLimit>,
    pub outbox: Arc<Outbox>,
}

impl Consumer {
    pub fn new(c: NewConsumer) -> Self {
        let NewConsumer {
            tag,
            channel,
            connection_id,
            queue,
            no_ack,
            exclusive,
            priority,
            prefetch,
            arguments,
            channel_limit,
            outbox,
        } = c;
        let stream = queue.is_stream();
        Consumer {
            stream,
            tag,
            channel,
            connection_id,
            queue,
            no_ack,
            exclusive,
            priority,
            prefetch,
            arguments,
            unacked: AtomicU32::new(0),
            pending: AtomicU32::new(0),
            channel_limit,
            outbox,
            active: AtomicBool::new(true),
        }
    }

    /// Takes credit for one delivery, or says the consumer is full. Called by
    /// the queue under its lock, so per-consumer counters see one writer.
    pub(crate) fn try_take(&self) -> bool {
        if self.pending.load(Ordering::Acquire) >= PENDING_CAP {
            return false;
        }
        if !self.no_ack {
            if self.prefetch != 0 && self.unacked.load(Ordering::Acquire) >= self.prefetch {
                return false;
            }
            // A stream consumer's credit is its own prefetch: RabbitMQ
            // ignores a global basic.qos for it.
            if !self.stream && !self.channel_limit.try_acquire() {
                return false;
            }
            self.unacked.fetch_add(1, Ordering::AcqRel);
        }
        self.pending.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// The connection wrote (or dropped) one delivery from its outbox.
    pub fn written(&self) {
        let _ = self.pending.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// An unacknowledged delivery was acked, rejected or requeued.
    pub fn settled(&self) {
        if !self.no_ack {
            let _ = self.unacked.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
            if !self.stream {
                self.channel_limit.release();
            }
        }
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    pub fn deactivate(&self) {
        self.active.store(false, Ordering::Release);
    }
}

pub enum OutboxItem {
    Deliver {
        consumer: Arc<Consumer>,
        message: QueuedMessage,
    },
    /// The broker cancelled a consumer (its queue was deleted).
    Cancel {
        channel: ChannelId,
        consumer_tag: String,
    },
    /// A reply sent to this connection's direct reply-to consumer
    /// (`amq.rabbitmq.reply-to`): no queue, no ack.
    DirectReply {
        channel: ChannelId,
        consumer_tag: String,
        message: Arc<crate::message::Message>,
    },
}

/// A connection's inbox of deliveries. Queues push (under their own lock;
/// this lock is always the innermost), the connection task drains.
#[derive(Default)]
pub struct Outbox {
    items: Mutex<Vec<OutboxItem>>,
    notify: Notify,
}

impl Outbox {
    pub fn push(&self, item: OutboxItem) {
        let was_empty = {
            let mut items = self.items.lock();
            let was_empty = items.is_empty();
            items.push(item);
            was_empty
        };
        // Only the first item of a batch wakes the connection; Notify keeps a
        // permit if the task is not waiting yet, so no wake-up is lost.
        if was_empty {
            self.notify.notify_one();
        }
    }

    /// Moves everything queued so far into `into`.
    pub fn drain_into(&self, into: &mut Vec<OutboxItem>) {
        let mut items = self.items.lock();
        if into.is_empty() {
            std::mem::swap(&mut *items, into);
        } else {
            into.append(&mut items);
        }
    }

    /// Wakes the connection without a delivery (e.g. its publishes became
    /// durable and confirms can go out).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    pub async fn notified(&self) {
        self.notify.notified().await
    }
}

/// How the store wakes a connection whose confirms or held reply wait for
/// the disk: `Waker::from(Arc::clone(&outbox))`, one reference count, no
/// allocation. The store only sees a `std::task::Waker`.
impl std::task::Wake for Outbox {
    fn wake(self: Arc<Self>) {
        self.notify.notify_one();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.notify.notify_one();
    }
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("queued", &self.items.lock().len()).finish()
    }
}
