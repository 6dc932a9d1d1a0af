//! The end of a batch: replies held for the disk (`Hold`, and `Undo` when
//! the disk refuses), publisher confirms, credit returned to queues, and
//! deliveries moved from the outbox into the write buffer.

use std::sync::Arc;

use amq_protocol::protocol::{basic, AMQPClass};
use amq_protocol::types::FieldTable;
use bytes::{Bytes, BytesMut};

use super::channel::{ChannelMode, ChannelState, Unacked};
use super::codec;
use super::connection::{Channels, Next, Session, READ_STOP, WRITE_BUFFER_CAP};
use super::errors::short;
use crate::broker::consumer::OutboxItem;
use crate::broker::exchange::Destination;
use crate::broker::queue::Queue;
use crate::broker::stats::Delivered;
use crate::broker::{AmqpError, ReplyCode};
use crate::ids::ChannelId;
use crate::message::QueuedMessage;
use crate::store::{Outcome, TicketRange};
use crate::wire::properties::{self, PropertyScan};
use crate::wire::table::{self, Edit};

/// A reply that must not reach the client before the writes behind it are
/// on disk: a declare-ok after the definition is durable, a commit-ok after
/// the transaction's persistent messages are.
pub(super) struct Hold {
    /// Output before this offset may go out; from it on is the held reply.
    pub from: usize,
    pub tickets: TicketRange,
    pub channel: ChannelId,
    pub class_id: u16,
    pub method_id: u16,
    pub undo: Undo,
}

/// Taking back a change whose record could not be written, so that memory
/// does not hold what a restart would lose. Deletions cannot be taken back;
/// the store rewrites its snapshot with them once it can write again.
#[derive(Default)]
pub(super) enum Undo {
    #[default]
    Nothing,
    Exchange(String),
    Queue(Arc<Queue>),
    Binding {
        source: String,
        destination: Destination,
        routing_key: String,
        arguments: FieldTable,
    },
    /// Persistent messages of a commit are in their queues already; the
    /// client learns the commit failed.
    Commit,
}

impl Session {
    /// Runs after each wake-up: releases (or takes back) a held reply,
    /// confirms this batch's publishes, returns credit to queues and moves
    /// deliveries from the outbox into the write buffer.
    pub(super) fn end_of_batch(&mut self, rbuf: &mut BytesMut, channels: &mut Channels) -> Next {
        // Frames left unprocessed while the write buffer was full.
        if !rbuf.is_empty() && self.hold.is_none() && self.wbuf.len() < READ_STOP {
            if let Next::Drop = self.process_frames(rbuf, channels) {
                return Next::Drop;
            }
        }
        while let Some(h) = &self.hold {
            let outcome = self.broker.ticket_store().map_or(Outcome::Durable, |st| {
                let outcome = st.progress().outcome(h.tickets);
                if outcome != Outcome::Pending {
                    return outcome;
                }
                // Woken (through the outbox) when the writer resolves more;
                // asked again after registering, so no wake-up is lost.
                st.wake_when_resolved(std::task::Waker::from(Arc::clone(&self.outbox)));
                st.progress().outcome(h.tickets)
            });
            match outcome {
                // Nothing else goes out meanwhile: it would land behind the
                // held reply, which may yet be taken back.
                Outcome::Pending => return Next::Continue,
                Outcome::Durable => self.hold = None,
                Outcome::Failed => {
                    if let Some(h) = self.hold.take() {
                        self.wbuf.truncate(h.from);
                        self.take_back(h);
                    }
                }
            }
            // Frames that arrived behind the held reply.
            if let Next::Drop = self.process_frames(rbuf, channels) {
                return Next::Drop;
            }
        }
        self.write_confirms(channels);
        if !self.state_open() {
            return Next::Continue;
        }
        for q in std::mem::take(&mut self.kick) {
            q.dispatch();
        }
        self.write_deliveries(channels);
        Next::Continue
    }

    /// basic.ack / basic.nack for the publishes of confirm-mode channels
    /// that may be confirmed now.
    fn write_confirms(&mut self, channels: &mut Channels) {
        let store = self.broker.ticket_store().cloned();
        let outcome = |t: TicketRange| store.as_ref().map_or(Outcome::Durable, |st| st.progress().outcome(t));
        for ch in channels.values_mut() {
            let ChannelMode::Confirm(c) = &mut ch.mode else { continue };
            if ch.state == ChannelState::Closing || c.published == c.confirmed {
                continue;
            }
            for (upto, nack) in c.confirmable(outcome) {
                if upto <= c.confirmed {
                    continue;
                }
                let multiple = !nack && upto.get() - c.confirmed.get() > 1;
                if !nack {
                    self.counts.confirmed += upto.get() - c.confirmed.get();
                }
                codec::write_confirm(&mut self.wbuf, ch.id.get(), upto.get(), multiple, nack);
                c.confirmed = upto;
                self.stats_dirty = true;
            }
        }
    }

    /// A held reply's change could not be made durable: take it back where
    /// possible and close the connection with RabbitMQ's 541 (a hard error:
    /// the client must not go on as if the change had happened).
    fn take_back(&mut self, h: Hold) {
        let what = match &h.undo {
            Undo::Nothing => "the change could not be written to disk",
            Undo::Commit => "the transaction's persistent messages could not be written to disk",
            _ => "the declaration could not be written to disk and was undone",
        };
        if let Some(v) = self.vhost.clone() {
            match h.undo {
                Undo::Nothing | Undo::Commit => {}
                Undo::Exchange(name) => v.remove_exchange(&name),
                Undo::Queue(q) => {
                    v.remove_queue(&q);
                    self.exclusive_queues.retain(|e| !Arc::ptr_eq(e, &q));
                }
                Undo::Binding { source, destination, routing_key, arguments } => {
                    let _ = match destination {
                        Destination::Queue(q) => v.queue_unbind(&q.name, &source, &routing_key, &arguments, self.id),
                        Destination::Exchange(d) => v.exchange_unbind(&d, &source, &routing_key, &arguments),
                    };
                }
            }
        }
        tracing::warn!(peer = %self.peer, channel = %h.channel, "{what}; closing the connection with 541");
        self.begin_close(
            AmqpError::new(ReplyCode::InternalError, format!("{what}; check the data directory's free space"))
                .during(h.class_id, h.method_id),
        );
    }

    fn write_deliveries(&mut self, channels: &mut Channels) {
        loop {
            if self.wbuf.len() >= WRITE_BUFFER_CAP {
                return;
            }
            if self.backlog.is_empty() {
                self.outbox.drain_into(&mut self.scratch);
                if self.scratch.is_empty() {
                    break;
                }
                self.backlog.extend(self.scratch.drain(..));
            }
            // The queues delivered from, with what was delivered (added to
            // each queue's counters once, after the loop).
            let mut touched: Vec<(Arc<Queue>, Delivered)> = Vec::new();
            while self.wbuf.len() < WRITE_BUFFER_CAP {
                let Some(item) = self.backlog.pop_front() else { break };
                self.stats_dirty = true;
                match item {
                    OutboxItem::Deliver { consumer, message } => {
                        consumer.written();
                        let at = match touched.iter().position(|(q, _)| Arc::ptr_eq(q, &consumer.queue)) {
                            Some(at) => at,
                            None => {
                                touched.push((Arc::clone(&consumer.queue), Delivered::default()));
                                touched.len() - 1
                            }
                        };
                        // Cancel, channel close and queue deletion all
                        // deactivate the consumer, so one flag and one
                        // channel lookup tell whether it may still receive.
                        let ch = match channels.get_mut(&consumer.channel) {
                            Some(ch) if consumer.is_active() && !ch.is_closing() => {
                                debug_assert!(ch
                                    .consumers
                                    .get(&consumer.tag)
                                    .is_some_and(|c| Arc::ptr_eq(c, &consumer)));
                                ch
                            }
                            _ => {
                                // Cancelled or closed meanwhile: back it goes, never seen.
                                consumer.settled();
                                consumer.queue.requeue([message]);
                                continue;
                            }
                        };
                        let tag = ch.take_delivery_tag();
                        codec::write_deliver(
                            &mut self.wbuf,
                            ch.id.get(),
                            consumer.tag.as_bytes(),
                            tag.get(),
                            message.redelivered,
                            &message.message.exchange,
                            &message.message.routing_key,
                        );
                        let props = delivery_properties(&consumer.queue, &message);
                        codec::write_content(
                            &mut self.wbuf,
                            ch.id.get(),
                            &props,
                            &message.message.body,
                            self.frame_max,
                        );
                        self.counts.delivered += 1;
                        touched[at].1.count(consumer.no_ack, &message);
                        if consumer.no_ack {
                            consumer.queue.log_ack(&message);
                        } else {
                            consumer.queue.log_delivered(&message);
                            let queue = Arc::clone(&consumer.queue);
                            ch.unacked.push_back(Unacked { tag, queue, consumer: Some(consumer), message });
                        }
                    }
                    OutboxItem::DirectReply { channel: chid, consumer_tag, message } => {
                        let Some(ch) = channels.get_mut(&chid) else { continue };
                        if ch.is_closing() || ch.reply_consumer.as_ref().is_none_or(|r| r.0 != consumer_tag) {
                            continue;
                        }
                        self.counts.delivered += 1;
                        let tag = ch.take_delivery_tag();
                        codec::write_deliver(
                            &mut self.wbuf,
                            chid.get(),
                            consumer_tag.as_bytes(),
                            tag.get(),
                            false,
                            &message.exchange,
                            &message.routing_key,
                        );
                        codec::write_content(
                            &mut self.wbuf,
                            chid.get(),
                            &message.properties,
                            &message.body,
                            self.frame_max,
                        );
                    }
                    OutboxItem::Cancel { channel: chid, consumer_tag } => {
                        if let Some(ch) = channels.get_mut(&chid) {
                            if ch.consumers.remove(&consumer_tag).is_some()
                                && self.caps.consumer_cancel_notify
                                && !ch.is_closing()
                            {
                                self.send(
                                    chid.get(),
                                    AMQPClass::Basic(basic::AMQPMethod::Cancel(basic::Cancel {
                                        consumer_tag: short(consumer_tag),
                                        nowait: true,
                                    })),
                                );
                            }
                        }
                    }
                }
            }
            // Those consumers have room again.
            for (q, delivered) in touched {
                q.add_delivered(&delivered);
                q.dispatch();
            }
        }
    }

    /// Releases everything the connection holds: consumers, unacknowledged
    /// and undelivered messages (requeued), exclusive queues (deleted).
    pub(super) fn cleanup(&mut self, channels: &mut Channels) {
        let ids: Vec<ChannelId> = channels.keys().copied().collect();
        for id in ids {
            if let Some(mut ch) = channels.remove(&id) {
                self.release_channel(&mut ch);
            }
        }
        self.outbox.drain_into(&mut self.scratch);
        self.backlog.extend(self.scratch.drain(..));
        for item in self.backlog.drain(..) {
            if let OutboxItem::Deliver { consumer, message } = item {
                consumer.written();
                consumer.settled();
                consumer.queue.requeue([message]);
            }
        }
        if let Some(v) = self.vhost.clone() {
            for q in self.exclusive_queues.drain(..) {
                v.remove_queue(&q);
            }
        }
        self.kick.clear();
    }
}

/// The properties a delivery carries: the publisher's bytes, except that a
/// quorum queue sets `x-delivery-count` as RabbitMQ's do (in place if the
/// publisher sent one, else appended: `rabbit_basic:add_header`), and a
/// stream `x-stream-offset` (AMQP `l`) the same way. Every
/// other header keeps its bytes, at any depth.
pub(super) fn delivery_properties(q: &Queue, m: &QueuedMessage) -> Bytes {
    let props = &m.message.properties;
    let (key, value): (&[u8], i64) = if q.is_quorum() {
        (b"x-delivery-count", m.delivery_count as i64)
    } else if q.is_stream() {
        // A stream delivery's offset, replacing a publisher's header of that name.
        (b"x-stream-offset", m.seq as i64)
    } else {
        return props.clone();
    };
    let scan = PropertyScan::new(props);
    let mut count = Vec::with_capacity(9);
    table::put_long(&mut count, value);
    match properties::edit_headers(props, &scan, &[Edit::Set(key, &count)], &[]) {
        Some(edited) => Bytes::from(edited),
        None => props.clone(),
    }
}
