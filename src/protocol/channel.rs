//! Channel state: its lifecycle (`ChannelState`), its mode (`ChannelMode`:
//! plain, confirm or tx), content assembly (`content::Content`), deliveries
//! awaiting acks, consumers and prefetch.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::content::Content;
use crate::broker::consumer::{ChannelLimit, Consumer};
use crate::broker::queue::Queue;
use crate::broker::registry::{publish_u32, ChannelRegistration, CHANNEL_CLOSING, CHANNEL_CONFIRM, CHANNEL_TX};
use crate::broker::FastMap;
use crate::ids::{ChannelId, DeliveryTag, PublishSeq};
use crate::message::{Message, QueuedMessage};
use crate::store::{Outcome, TicketRange};

/// A delivery the client has not yet acknowledged.
pub(crate) struct Unacked {
    pub tag: DeliveryTag,
    pub queue: Arc<Queue>,
    /// `None` for basic.get deliveries, which no consumer credit covers.
    pub consumer: Option<Arc<Consumer>>,
    pub message: QueuedMessage,
}

pub(crate) use crate::broker::queue::Settle;

/// Work a transaction defers until tx.commit.
pub(crate) enum TxOp {
    Publish { message: Arc<Message>, mandatory: bool, extra_keys: Vec<String> },
    Settle { delivery_tag: DeliveryTag, multiple: bool, how: Settle },
}

/// Where a channel is in its life (spec 4.2.4; RabbitMQ's reader does the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChannelState {
    Open,
    /// We sent channel.close and wait for close-ok; other frames are dropped.
    Closing,
    /// The client closed it and we answered close-ok: remove it now.
    Closed,
}

/// Publisher confirms and transactions exclude each other (RabbitMQ refuses
/// the switch either way), so a channel is in one mode at a time.
pub(crate) enum ChannelMode {
    Plain,
    Confirm(Confirms),
    /// The work deferred until tx.commit.
    Tx(Vec<TxOp>),
}

/// A channel in confirm mode: what has been published and what confirmed.
#[derive(Default)]
pub(crate) struct Confirms {
    /// Sequence number of the last publish.
    pub published: PublishSeq,
    /// Highest publish confirmed so far on the wire.
    pub confirmed: PublishSeq,
    /// Publishes whose confirm waits (for the store, or behind one that
    /// does), in order: (publish seq, store tickets, nack).
    pub waiting: VecDeque<(PublishSeq, TicketRange, bool)>,
}

impl Confirms {
    /// Records a publish; `tickets` are the store writes it waits for
    /// (empty if none).
    pub(super) fn track(&mut self, tickets: TicketRange, nack: bool) {
        self.published = PublishSeq(self.published.get() + 1);
        if !tickets.is_empty() || nack || !self.waiting.is_empty() {
            self.waiting.push_back((self.published, tickets, nack));
        }
    }

    /// The confirms that may go out now, as runs: `(last seq, nack)`. An ack
    /// covers everything since the previous confirm (multiple); a nack
    /// covers its own publish. `outcome` says what became of store writes:
    /// a publish whose write failed is nacked, never acked.
    pub(super) fn confirmable(&mut self, outcome: impl Fn(TicketRange) -> Outcome) -> Vec<(PublishSeq, bool)> {
        // Publishes not in the wait list precede its first entry and are
        // confirmable. Runs may repeat what was confirmed already: the
        // caller skips those.
        let mut out = Vec::new();
        let waiting_from = loop {
            match self.waiting.front().copied() {
                Some((seq, tickets, refused)) => {
                    let nack = match outcome(tickets) {
                        Outcome::Pending => break seq.get(),
                        Outcome::Durable => refused,
                        Outcome::Failed => true,
                    };
                    self.waiting.pop_front();
                    if nack {
                        out.push((PublishSeq(seq.get() - 1), false));
                        out.push((seq, true));
                    }
                }
                None => break self.published.get() + 1,
            }
        };
        out.push((PublishSeq(waiting_from - 1), false));
        out
    }
}

pub(crate) struct Channel {
    pub id: ChannelId,
    pub state: ChannelState,
    pub mode: ChannelMode,
    pub content: Content,
    pub next_delivery_tag: DeliveryTag,
    /// Ordered by tag, so acks find entries by binary search.
    pub unacked: VecDeque<Unacked>,
    pub consumers: FastMap<String, Arc<Consumer>>,
    /// basic.qos global=false: the prefetch given to consumers created later.
    pub consumer_prefetch: u32,
    pub limit: Arc<ChannelLimit>,
    /// The last queue declared, for RabbitMQ's empty-name shortcut.
    pub last_queue: Option<String>,
    /// A direct reply-to consumer: (consumer tag, reply key).
    pub reply_consumer: Option<(String, String)>,
    /// Lists the channel in its connection's registry entry until dropped;
    /// `publish_stats` keeps what it shows current.
    pub registration: ChannelRegistration,
}

impl Channel {
    pub(super) fn new(id: ChannelId, registration: ChannelRegistration) -> Self {
        Channel {
            id,
            state: ChannelState::Open,
            mode: ChannelMode::Plain,
            content: Content::Idle,
            next_delivery_tag: DeliveryTag(1),
            unacked: VecDeque::new(),
            consumers: FastMap::default(),
            consumer_prefetch: 0,
            limit: Arc::new(ChannelLimit::default()),
            last_queue: None,
            reply_consumer: None,
            registration,
        }
    }

    /// Stores what the registry shows of this channel (once per batch; a
    /// value that did not change is not written).
    pub(super) fn publish_stats(&self) {
        let e = self.registration.entry();
        publish_u32(&e.consumer_count, self.consumers.len() as u32 + self.reply_consumer.is_some() as u32);
        publish_u32(&e.unacked, self.unacked.len() as u32);
        publish_u32(&e.prefetch_count, self.consumer_prefetch);
        publish_u32(&e.global_prefetch_count, self.limit.limit.load(Ordering::Relaxed));
        let (mode, unconfirmed) = match &self.mode {
            ChannelMode::Plain => (0, 0),
            ChannelMode::Confirm(c) => (CHANNEL_CONFIRM, (c.published.get() - c.confirmed.get()) as u32),
            ChannelMode::Tx(_) => (CHANNEL_TX, 0),
        };
        publish_u32(&e.unconfirmed, unconfirmed);
        let mode = mode | if self.state == ChannelState::Closing { CHANNEL_CLOSING } else { 0 };
        if e.mode.load(Ordering::Relaxed) != mode {
            e.mode.store(mode, Ordering::Relaxed);
        }
    }

    pub(super) fn is_closing(&self) -> bool {
        self.state == ChannelState::Closing
    }

    pub(super) fn take_delivery_tag(&mut self) -> DeliveryTag {
        let t = self.next_delivery_tag;
        self.next_delivery_tag = DeliveryTag(t.get() + 1);
        t
    }

    /// Removes the deliveries an ack/nack/reject names, or `None` when the
    /// tag is unknown (RabbitMQ: 406 "unknown delivery tag N").
    pub(super) fn take_unacked(&mut self, delivery_tag: DeliveryTag, multiple: bool) -> Option<Vec<Unacked>> {
        if multiple && delivery_tag.get() == 0 {
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
    fn confirms_wait_for_the_store_and_failed_writes_are_nacked() {
        let mut c = Confirms::default();
        let t = |n| TicketRange { lo: n, hi: n };
        c.track(TicketRange::default(), false); // 1: nothing to wait for
        c.track(t(10), false); // 2: written
        c.track(t(11), false); // 3: its write failed
        c.track(t(12), false); // 4: still pending
        c.track(TicketRange::default(), false); // 5: behind a pending one
        let outcome = |r: TicketRange| match r.hi {
            10 => Outcome::Durable,
            11 => Outcome::Failed,
            _ => Outcome::Pending,
        };
        let seqs = |v: Vec<(PublishSeq, bool)>| v.into_iter().map(|(s, n)| (s.get(), n)).collect::<Vec<_>>();
        assert_eq!(seqs(c.confirmable(outcome)), vec![(2, false), (3, true), (3, false)]);
        assert_eq!(seqs(c.confirmable(|_| Outcome::Durable)), vec![(5, false)]);
    }
}
