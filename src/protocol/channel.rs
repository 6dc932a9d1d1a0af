//! Channel state: content assembly, deliveries awaiting acks, consumers,
//! prefetch, publisher confirms and transactions.

use std::collections::VecDeque;

use crate::broker::FastMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::broker::consumer::{ChannelLimit, Consumer};
use crate::broker::message::{Message, QueuedMessage};
use crate::broker::queue::Queue;
use crate::store::{Outcome, TicketRange};

/// A basic.publish whose content is still arriving.
pub(crate) struct PendingPublish {
    pub exchange: Bytes,
    pub routing_key: Bytes,
    pub mandatory: bool,
    pub immediate: bool,
    /// Set once the content header arrived.
    pub header: Option<(u64, Bytes)>,
    /// Body frames so far. A single-frame body stays a zero-copy slice.
    pub body: BodyParts,
}

pub(crate) enum BodyParts {
    Empty,
    One(Bytes),
    Many(BytesMut),
}

impl BodyParts {
    pub fn len(&self) -> usize {
        match self {
            BodyParts::Empty => 0,
            BodyParts::One(b) => b.len(),
            BodyParts::Many(b) => b.len(),
        }
    }

    pub fn push(&mut self, part: Bytes) {
        *self = match std::mem::replace(self, BodyParts::Empty) {
            BodyParts::Empty => BodyParts::One(part),
            BodyParts::One(first) => {
                let mut all = BytesMut::with_capacity(first.len() + part.len());
                all.extend_from_slice(&first);
                all.extend_from_slice(&part);
                BodyParts::Many(all)
            }
            BodyParts::Many(mut all) => {
                all.extend_from_slice(&part);
                BodyParts::Many(all)
            }
        }
    }

    pub fn into_bytes(self) -> Bytes {
        match self {
            BodyParts::Empty => Bytes::new(),
            BodyParts::One(b) => b,
            BodyParts::Many(b) => b.freeze(),
        }
    }
}

/// A delivery the client has not yet acknowledged.
pub(crate) struct Unacked {
    pub tag: u64,
    pub queue: Arc<Queue>,
    /// `None` for basic.get deliveries, which no consumer credit covers.
    pub consumer: Option<Arc<Consumer>>,
    pub message: QueuedMessage,
}

pub(crate) use crate::broker::queue::Settle;

/// Work a transaction defers until tx.commit.
pub(crate) enum TxOp {
    Publish { message: Arc<Message>, mandatory: bool, extra_keys: Vec<String> },
    Settle { delivery_tag: u64, multiple: bool, how: Settle },
}

pub(crate) struct Channel {
    pub id: u16,
    /// We sent channel.close and wait for close-ok; other frames are dropped.
    pub closing: bool,
    /// The client closed it and we answered close-ok: remove it now.
    pub closed: bool,
    pub publish: Option<PendingPublish>,
    pub next_delivery_tag: u64,
    /// Ordered by tag, so acks find entries by binary search.
    pub unacked: VecDeque<Unacked>,
    pub consumers: FastMap<String, Arc<Consumer>>,
    /// basic.qos global=false: the prefetch given to consumers created later.
    pub consumer_prefetch: u32,
    pub limit: Arc<ChannelLimit>,
    pub confirm: bool,
    /// Sequence number of the last publish in confirm mode.
    pub publish_seq: u64,
    /// Highest publish confirmed so far on the wire.
    pub confirmed_seq: u64,
    /// Publishes whose confirm waits (for the store, or behind one that
    /// does), in order: (publish seq, store tickets, nack).
    pub confirm_wait: VecDeque<(u64, TicketRange, bool)>,
    pub tx: Option<Vec<TxOp>>,
    /// The last queue declared, for RabbitMQ's empty-name shortcut.
    pub last_queue: Option<String>,
    /// A direct reply-to consumer: (consumer tag, reply key).
    pub reply_consumer: Option<(String, String)>,
}

impl Channel {
    pub fn new(id: u16) -> Self {
        Channel {
            id,
            closing: false,
            closed: false,
            publish: None,
            next_delivery_tag: 1,
            unacked: VecDeque::new(),
            consumers: FastMap::default(),
            consumer_prefetch: 0,
            limit: Arc::new(ChannelLimit::default()),
            confirm: false,
            publish_seq: 0,
            confirmed_seq: 0,
            confirm_wait: VecDeque::new(),
            tx: None,
            last_queue: None,
            reply_consumer: None,
        }
    }

    /// Records a publish in confirm mode; `tickets` are the store writes it
    /// waits for (empty if none).
    pub fn track_confirm(&mut self, tickets: TicketRange, nack: bool) {
        self.publish_seq += 1;
        if !tickets.is_empty() || nack || !self.confirm_wait.is_empty() {
            self.confirm_wait.push_back((self.publish_seq, tickets, nack));
        }
    }

    /// The confirms that may go out now, as runs: `(last seq, nack)`. An ack
    /// covers everything since the previous confirm (multiple); a nack
    /// covers its own publish. `outcome` says what became of store writes:
    /// a publish whose write failed is nacked, never acked.
    pub fn confirmable(&mut self, outcome: impl Fn(TicketRange) -> Outcome) -> Vec<(u64, bool)> {
        // Publishes not in the wait list precede its first entry and are
        // confirmable. Runs may repeat what was confirmed already: the
        // caller skips those.
        let mut out = Vec::new();
        let waiting_from = loop {
            match self.confirm_wait.front().copied() {
                Some((seq, tickets, refused)) => {
                    let nack = match outcome(tickets) {
                        Outcome::Pending => break seq,
                        Outcome::Durable => refused,
                        Outcome::Failed => true,
                    };
                    self.confirm_wait.pop_front();
                    if nack {
                        out.push((seq - 1, false));
                        out.push((seq, true));
                    }
                }
                None => break self.publish_seq + 1,
            }
        };
        out.push((waiting_from - 1, false));
        out
    }

    pub fn take_delivery_tag(&mut self) -> u64 {
        let t = self.next_delivery_tag;
        self.next_delivery_tag += 1;
        t
    }

    /// Removes the deliveries an ack/nack/reject names, or `None` when the
    /// tag is unknown (RabbitMQ: 406 "unknown delivery tag N").
    pub fn take_unacked(&mut self, delivery_tag: u64, multiple: bool) -> Option<Vec<Unacked>> {
        if multiple && delivery_tag == 0 {
            return Some(self.unacked.drain(..).collect());
        }
        let idx = self.unacked.binary_search_by_key(&delivery_tag, |u| u.tag).ok()?;
        if multiple {
            Some(self.unacked.drain(..=idx).collect())
        } else {
            self.unacked.remove(idx).map(|u| vec![u])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_parts_join_without_copying_a_single_frame() {
        let mut b = BodyParts::Empty;
        let part = Bytes::from_static(b"abc");
        b.push(part.clone());
        assert!(matches!(&b, BodyParts::One(x) if x.as_ptr() == part.as_ptr()));
        b.push(Bytes::from_static(b"def"));
        assert_eq!(b.len(), 6);
        assert_eq!(&b.into_bytes()[..], b"abcdef");
    }

    #[test]
    fn confirms_wait_for_the_store_and_failed_writes_are_nacked() {
        let mut ch = Channel::new(1);
        let t = |n| TicketRange { lo: n, hi: n };
        ch.track_confirm(TicketRange::default(), false); // 1: nothing to wait for
        ch.track_confirm(t(10), false); // 2: written
        ch.track_confirm(t(11), false); // 3: its write failed
        ch.track_confirm(t(12), false); // 4: still pending
        ch.track_confirm(TicketRange::default(), false); // 5: behind a pending one
        let outcome = |r: TicketRange| match r.hi {
            10 => Outcome::Durable,
            11 => Outcome::Failed,
            _ => Outcome::Pending,
        };
        assert_eq!(ch.confirmable(outcome), vec![(2, false), (3, true), (3, false)]);
        assert_eq!(ch.confirmable(|_| Outcome::Durable), vec![(5, false)]);
    }
}
