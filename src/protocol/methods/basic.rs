//! The basic class: publish (content follows, see `content.rs`),
//! ack/nack/reject, qos, consume, cancel, get and recover; and settling
//! deliveries, which a transaction defers until commit.

use std::sync::Arc;

use super::queue_name;
use crate::broker::args::consumer_priority;
use crate::broker::consumer::{Consumer, NewConsumer};
use crate::broker::queue::{DeadLetters, Queue, Unsettled};
use crate::broker::vhost::generated_name;
use crate::broker::{AmqpError, AmqpResult, ReplyTarget, REPLY_TO};
use crate::ids::{ChannelId, DeliveryTag};
use crate::protocol::channel::{Channel, ChannelMode, Settle, TxOp, Unacked};
use crate::protocol::codec;
use crate::protocol::connection::Session;
use crate::protocol::content::{Content, PublishMethod};
use crate::protocol::deliveries::delivery_properties;
use crate::protocol::errors::short;
use amq_protocol::protocol::{basic, AMQPClass};

impl Session {
    /// The content (header, then body frames) follows on this channel.
    pub(super) fn basic_publish(&mut self, ch: &mut Channel, publish: PublishMethod) {
        self.is_publisher = true;
        ch.content = Content::Header(publish);
    }

    pub(super) fn basic_ack(&mut self, ch: &mut Channel, delivery_tag: u64, multiple: bool) -> AmqpResult<()> {
        self.settle(ch, DeliveryTag(delivery_tag), multiple, Settle::Ack)
    }

    pub(super) fn basic_nack(
        &mut self,
        ch: &mut Channel,
        delivery_tag: u64,
        multiple: bool,
        requeue: bool,
    ) -> AmqpResult<()> {
        let how = if requeue { Settle::Requeue } else { Settle::Discard };
        self.settle(ch, DeliveryTag(delivery_tag), multiple, how)
    }

    pub(super) fn basic_reject(&mut self, ch: &mut Channel, delivery_tag: u64, requeue: bool) -> AmqpResult<()> {
        let how = if requeue { Settle::Requeue } else { Settle::Discard };
        self.settle(ch, DeliveryTag(delivery_tag), false, how)
    }

    pub(super) fn basic_qos(
        &mut self,
        ch: &mut Channel,
        prefetch_size: u32,
        prefetch_count: u16,
        global: bool,
    ) -> AmqpResult<()> {
        if prefetch_size != 0 {
            return Err(AmqpError::not_implemented(format!("prefetch_size!=0 ({prefetch_size})")));
        }
        if global {
            ch.limit.limit.store(prefetch_count as u32, std::sync::atomic::Ordering::Release);
            // A larger window may let every queue of this channel deliver more.
            for c in ch.consumers.values() {
                let q = Arc::clone(&c.queue);
                self.mark_kick(&q);
            }
        } else {
            ch.consumer_prefetch = prefetch_count as u32;
        }
        self.send(ch.id.get(), AMQPClass::Basic(basic::AMQPMethod::QosOk(basic::QosOk {})));
        Ok(())
    }

    pub(super) fn handle_basic(&mut self, ch: &mut Channel, m: basic::AMQPMethod) -> AmqpResult<()> {
        let vhost = self.vhost()?;
        let id = ch.id.get();
        match m {
            basic::AMQPMethod::Consume(c) => {
                let tag = if c.consumer_tag.as_str().is_empty() {
                    generated_name("amq.ctag")
                } else {
                    c.consumer_tag.as_str().to_owned()
                };
                if ch.consumers.contains_key(&tag) || ch.reply_consumer.as_ref().is_some_and(|r| r.0 == tag) {
                    return Err(AmqpError::not_allowed(format!("attempt to reuse consumer tag '{tag}'")));
                }
                if c.queue.as_str() == REPLY_TO {
                    if !c.no_ack {
                        return Err(AmqpError::precondition_failed("reply consumer cannot acknowledge"));
                    }
                    if ch.reply_consumer.is_some() {
                        return Err(AmqpError::precondition_failed("reply consumer already set"));
                    }
                    let key = self.broker.register_reply_target(ReplyTarget {
                        outbox: Arc::clone(&self.outbox),
                        channel: ChannelId(id),
                        consumer_tag: tag.clone(),
                    });
                    if let Some((_, old)) = ch.reply_consumer.replace((tag.clone(), key)) {
                        self.broker.unregister_reply_target(&old);
                    }
                    if !c.nowait {
                        let ok = basic::ConsumeOk { consumer_tag: short(tag) };
                        self.send(id, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(ok)));
                    }
                    return Ok(());
                }
                let name = queue_name(ch, &c.queue)?;
                self.access.queue_read(&name)?;
                let q = vhost.queue(&name)?;
                q.check_exclusive(self.id)?;
                let consumer = Arc::new(Consumer::new(NewConsumer {
                    tag: tag.clone(),
                    channel: ChannelId(id),
                    connection_id: self.id,
                    queue: Arc::clone(&q),
                    no_ack: c.no_ack,
                    exclusive: c.exclusive,
                    priority: consumer_priority(&c.arguments, &name, &vhost.name)?,
                    prefetch: ch.consumer_prefetch,
                    arguments: c.arguments.clone(),
                    channel_limit: Arc::clone(&ch.limit),
                    outbox: Arc::clone(&self.outbox),
                }));
                // consume-ok must precede the first delivery: it goes into the
                // write buffer now, deliveries only when the outbox drains.
                let mark = self.wbuf.len();
                if !c.nowait {
                    self.send(
                        id,
                        AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(basic::ConsumeOk {
                            consumer_tag: short(tag.clone()),
                        })),
                    );
                }
                if let Err(e) = q.add_consumer(Arc::clone(&consumer)) {
                    self.wbuf.truncate(mark);
                    return Err(e);
                }
                ch.consumers.insert(tag, consumer);
            }
            basic::AMQPMethod::Cancel(c) => {
                let tag = c.consumer_tag.as_str();
                if let Some(consumer) = ch.consumers.remove(tag) {
                    let q = Arc::clone(&consumer.queue);
                    self.remove_consumer(&q, ch.id, tag);
                }
                if ch.reply_consumer.as_ref().is_some_and(|r| r.0 == tag) {
                    if let Some((_, key)) = ch.reply_consumer.take() {
                        self.broker.unregister_reply_target(&key);
                    }
                }
                if !c.nowait {
                    self.send(
                        id,
                        AMQPClass::Basic(basic::AMQPMethod::CancelOk(basic::CancelOk { consumer_tag: c.consumer_tag })),
                    );
                }
            }
            basic::AMQPMethod::Get(g) => {
                let name = queue_name(ch, &g.queue)?;
                self.access.queue_read(&name)?;
                let q = vhost.queue(&name)?;
                q.check_exclusive(self.id)?;
                if q.is_stream() {
                    return Err(q.stream_not_implemented("basic.get"));
                }
                let mut dead = DeadLetters::default();
                let got = q.get(&mut dead);
                if !dead.is_empty() {
                    vhost.dead_letter(&q, dead);
                }
                match got {
                    Some((m, remaining)) => {
                        let tag = ch.take_delivery_tag();
                        codec::write_get_ok(
                            &mut self.wbuf,
                            id,
                            tag.get(),
                            m.redelivered,
                            &m.message.exchange,
                            &m.message.routing_key,
                            remaining,
                        );
                        let props = delivery_properties(&q, &m);
                        codec::write_content(&mut self.wbuf, id, &props, &m.message.body, self.frame_max);
                        self.counts.delivered += 1;
                        q.on_got(g.no_ack, &m);
                        if g.no_ack {
                            q.log_ack(&m);
                        } else {
                            q.log_delivered(&m);
                            ch.unacked.push_back(Unacked { tag, queue: q, consumer: None, message: m });
                        }
                    }
                    None => self.send(id, AMQPClass::Basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {}))),
                }
            }
            basic::AMQPMethod::Recover(r) => {
                self.recover(ch, r.requeue)?;
                self.send(id, AMQPClass::Basic(basic::AMQPMethod::RecoverOk(basic::RecoverOk {})));
            }
            basic::AMQPMethod::RecoverAsync(r) => self.recover(ch, r.requeue)?,
            _ => return Err(AmqpError::command_invalid("method not valid from a client")),
        }
        Ok(())
    }

    fn recover(&mut self, ch: &mut Channel, requeue: bool) -> AmqpResult<()> {
        if !requeue {
            return Err(AmqpError::not_implemented("requeue=false"));
        }
        let unacked: Vec<Unacked> = ch.unacked.drain(..).collect();
        self.settle_all(unacked, Settle::Requeue);
        Ok(())
    }

    fn settle(&mut self, ch: &mut Channel, delivery_tag: DeliveryTag, multiple: bool, how: Settle) -> AmqpResult<()> {
        if let ChannelMode::Tx(ops) = &mut ch.mode {
            // RabbitMQ validates the tag at commit time, not now.
            ops.push(TxOp::Settle { delivery_tag, multiple, how });
            return Ok(());
        }
        self.settle_now(ch, delivery_tag, multiple, how)
    }

    pub(in crate::protocol) fn settle_now(
        &mut self,
        ch: &mut Channel,
        delivery_tag: DeliveryTag,
        multiple: bool,
        how: Settle,
    ) -> AmqpResult<()> {
        let entries = ch
            .take_unacked(delivery_tag, multiple)
            .ok_or_else(|| AmqpError::precondition_failed(format!("unknown delivery tag {delivery_tag}")))?;
        if how != Settle::Ack {
            // RabbitMQ closes the connection (540); the taken deliveries go
            // with it.
            if let Some(u) = entries.iter().find(|u| u.queue.is_stream()) {
                return Err(u.queue.stream_not_implemented("basic.nack and basic.reject"));
            }
        }
        self.settle_all(entries, how);
        if ch.limit.limit.load(std::sync::atomic::Ordering::Acquire) != 0 {
            for c in ch.consumers.values() {
                let q = Arc::clone(&c.queue);
                self.mark_kick(&q);
            }
        }
        Ok(())
    }

    pub(in crate::protocol) fn remove_consumer(&mut self, queue: &Arc<Queue>, channel: ChannelId, tag: &str) {
        if let Some(removed) = queue.remove_consumer(self.id, channel, tag) {
            if removed.now_unused_auto_delete {
                if let Some(v) = &self.vhost {
                    v.remove_queue(queue);
                }
            }
        }
    }

    /// Settles deliveries through `Vhost::settle` (credit back, each queue
    /// settles its own); the queues are kicked at the end of the batch.
    pub(in crate::protocol) fn settle_all(&mut self, entries: Vec<Unacked>, how: Settle) {
        let Some(v) = self.vhost.clone() else { return };
        if how == Settle::Ack {
            self.counts.acknowledged += entries.len() as u64;
        }
        let kick = &mut self.kick;
        v.settle(
            entries.into_iter().map(|u| {
                if !kick.iter().any(|k| Arc::ptr_eq(k, &u.queue)) {
                    kick.push(Arc::clone(&u.queue));
                }
                Unsettled { queue: u.queue, consumer: u.consumer, message: u.message }
            }),
            how,
        );
    }

    pub(in crate::protocol) fn mark_kick(&mut self, q: &Arc<Queue>) {
        if !self.kick.iter().any(|k| Arc::ptr_eq(k, q)) {
            self.kick.push(Arc::clone(q));
        }
    }
}
