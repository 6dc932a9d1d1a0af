//! A classic queue: ready messages in order, its consumers, and dispatch.
//!
//! All state sits behind one short mutex per queue (never held across an
//! await). Dispatch runs in whichever task made progress possible — the
//! publisher that enqueued, the connection that acked or drained its outbox —
//! as a plain function call: no task hop per message.

use std::collections::VecDeque;
use std::sync::Arc;

use amq_protocol::types::FieldTable;
use parking_lot::Mutex;

use super::consumer::{Consumer, OutboxItem};
use super::error::{AmqpError, AmqpResult};
use super::message::{Message, QueuedMessage};
use crate::store::QueueLog;

#[derive(Debug)]
pub struct Queue {
    pub name: String,
    pub vhost: String,
    pub durable: bool,
    pub auto_delete: bool,
    /// The connection that declared an exclusive queue; only it may use it.
    pub exclusive_owner: Option<u64>,
    pub arguments: FieldTable,
    /// The log of a durable queue when the broker has a data directory.
    log: Option<Arc<QueueLog>>,
    state: Mutex<QueueState>,
}

#[derive(Debug, Default)]
struct QueueState {
    ready: VecDeque<QueuedMessage>,
    consumers: Vec<Arc<Consumer>>,
    /// Round-robin position among consumers.
    next_consumer: usize,
    next_seq: u64,
    deleted: bool,
}

/// What `remove_consumer` found.
pub struct ConsumerRemoved {
    pub consumer: Arc<Consumer>,
    /// An auto-delete queue just lost its last consumer: the caller deletes it.
    pub now_unused_auto_delete: bool,
}

impl Queue {
    pub fn new(
        name: String,
        vhost: String,
        durable: bool,
        auto_delete: bool,
        exclusive_owner: Option<u64>,
        arguments: FieldTable,
        log: Option<Arc<QueueLog>>,
    ) -> Self {
        Queue {
            name,
            vhost,
            durable,
            auto_delete,
            exclusive_owner,
            arguments,
            log,
            state: Mutex::new(QueueState::default()),
        }
    }

    /// Loads messages read back from the log at start, in queue order.
    pub fn restore(&self, messages: impl IntoIterator<Item = QueuedMessage>) {
        let mut st = self.state.lock();
        for m in messages {
            st.next_seq = st.next_seq.max(m.seq + 1);
            st.ready.push_back(m);
        }
    }

    /// Records that a persisted message left the queue for good.
    pub fn log_ack(&self, m: &QueuedMessage) {
        if let (true, Some(log)) = (m.persisted, &self.log) {
            log.append_ack(m.seq);
        }
    }

    /// Records that a persisted message reached a client, so a restart
    /// redelivers it with redelivered=true.
    pub fn log_delivered(&self, m: &QueuedMessage) {
        if let (true, false, Some(log)) = (m.persisted, m.redelivered, &self.log) {
            log.append_delivered(m.seq);
        }
    }

    /// 405 unless `connection_id` may use this queue.
    pub fn check_exclusive(&self, connection_id: u64) -> AmqpResult<()> {
        match self.exclusive_owner {
            Some(owner) if owner != connection_id => Err(AmqpError::resource_locked(format!(
                "cannot obtain exclusive access to locked queue '{}' in vhost '{}'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.",
                self.name, self.vhost
            ))),
            _ => Ok(()),
        }
    }

    /// Appends a message and hands out what consumers can take. A persistent
    /// message in a durable queue is first handed to the log: the returned
    /// ticket tells when it is on disk (`Store::synced`), and `waker` is woken
    /// then. A message for a queue deleted meanwhile is dropped, as RabbitMQ
    /// drops messages routed to a queue being deleted.
    pub fn enqueue(&self, message: Arc<Message>, waker: Option<&Arc<super::consumer::Outbox>>) -> Option<u64> {
        let mut st = self.state.lock();
        if st.deleted {
            return None;
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        // Logged under the queue lock so the record is queued for the writer
        // before any consumer can ack it: the ack record always follows.
        let ticket = match (&self.log, message.persistent) {
            (Some(log), true) => Some(log.append_message(seq, &message, waker.cloned())),
            _ => None,
        };
        st.ready.push_back(QueuedMessage { seq, message, redelivered: false, persisted: ticket.is_some() });
        Self::dispatch_locked(&mut st);
        ticket
    }

    /// Puts messages back at their original positions, marked redelivered
    /// when they had reached a client.
    pub fn requeue(&self, messages: impl IntoIterator<Item = QueuedMessage>) {
        let mut st = self.state.lock();
        if st.deleted {
            return;
        }
        for m in messages {
            let at = st.ready.partition_point(|r| r.seq < m.seq);
            st.ready.insert(at, m);
        }
        Self::dispatch_locked(&mut st);
    }

    /// Hands ready messages to consumers with credit, round-robin.
    pub fn dispatch(&self) {
        let mut st = self.state.lock();
        Self::dispatch_locked(&mut st);
    }

    fn dispatch_locked(st: &mut QueueState) {
        let n = st.consumers.len();
        if n == 0 {
            return;
        }
        while !st.ready.is_empty() {
            let start = st.next_consumer % n;
            let Some(idx) = (0..n).map(|i| (start + i) % n).find(|&i| st.consumers[i].try_take()) else {
                return;
            };
            st.next_consumer = idx + 1;
            let Some(message) = st.ready.pop_front() else { return };
            let consumer = Arc::clone(&st.consumers[idx]);
            let outbox = Arc::clone(&consumer.outbox);
            outbox.push(OutboxItem::Deliver { consumer, message });
        }
    }

    /// basic.get: the head message and how many remain after it.
    pub fn get(&self) -> Option<(QueuedMessage, u32)> {
        let mut st = self.state.lock();
        let m = st.ready.pop_front()?;
        Some((m, st.ready.len() as u32))
    }

    pub fn add_consumer(&self, consumer: Arc<Consumer>) -> AmqpResult<()> {
        let mut st = self.state.lock();
        if st.deleted {
            return Err(AmqpError::not_found(format!("no queue '{}' in vhost '{}'", self.name, self.vhost)));
        }
        if st.consumers.iter().any(|c| c.exclusive) || (consumer.exclusive && !st.consumers.is_empty()) {
            return Err(AmqpError::access_refused(format!(
                "queue '{}' in vhost '{}' in exclusive use",
                self.name, self.vhost
            )));
        }
        st.consumers.push(consumer);
        Self::dispatch_locked(&mut st);
        Ok(())
    }

    pub fn remove_consumer(&self, connection_id: u64, channel: u16, tag: &str) -> Option<ConsumerRemoved> {
        let mut st = self.state.lock();
        let idx = st
            .consumers
            .iter()
            .position(|c| c.connection_id == connection_id && c.channel == channel && c.tag == tag)?;
        let consumer = st.consumers.remove(idx);
        consumer.deactivate();
        Some(ConsumerRemoved {
            consumer,
            now_unused_auto_delete: self.auto_delete && st.consumers.is_empty() && !st.deleted,
        })
    }

    pub fn message_count(&self) -> u32 {
        self.state.lock().ready.len() as u32
    }

    pub fn consumer_count(&self) -> u32 {
        self.state.lock().consumers.len() as u32
    }

    /// Removes every ready message (not the unacknowledged ones, as RabbitMQ).
    pub fn purge(&self) -> u32 {
        let mut st = self.state.lock();
        let n = st.ready.len() as u32;
        for m in st.ready.drain(..) {
            self.log_ack(&m);
        }
        n
    }

    /// Marks the queue deleted and returns its ready count and the consumers
    /// that must be told (basic.cancel).
    pub fn mark_deleted(&self) -> (u32, Vec<Arc<Consumer>>) {
        let mut st = self.state.lock();
        st.deleted = true;
        let n = st.ready.len() as u32;
        st.ready.clear();
        if let Some(log) = &self.log {
            log.delete();
        }
        let consumers = std::mem::take(&mut st.consumers);
        for c in &consumers {
            c.deactivate();
        }
        (n, consumers)
    }

    pub fn is_deleted(&self) -> bool {
        self.state.lock().deleted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::consumer::{ChannelLimit, Outbox};
    use bytes::Bytes;

    fn msg(body: &'static [u8]) -> Arc<Message> {
        Arc::new(Message::new(
            Bytes::new(),
            Bytes::from_static(b"q"),
            Bytes::from_static(&[0, 0]),
            Bytes::from_static(body),
        ))
    }

    fn consumer(q: &Arc<Queue>, tag: &str, prefetch: u32, outbox: &Arc<Outbox>) -> Arc<Consumer> {
        Arc::new(Consumer::new(
            tag.into(),
            1,
            1,
            Arc::clone(q),
            false,
            false,
            prefetch,
            Arc::new(ChannelLimit::default()),
            Arc::clone(outbox),
        ))
    }

    fn bodies(outbox: &Outbox) -> Vec<(String, &'static str)> {
        let mut items = Vec::new();
        outbox.drain_into(&mut items);
        items
            .into_iter()
            .filter_map(|i| match i {
                OutboxItem::Deliver { consumer, message } => {
                    let b: &'static str =
                        std::str::from_utf8(message.message.body.as_ref()).unwrap().to_string().leak();
                    Some((consumer.tag.clone(), b))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn round_robin_with_prefetch_and_requeue_order() {
        let q = Arc::new(Queue::new("q".into(), "/".into(), false, false, None, FieldTable::default(), None));
        let outbox = Arc::new(Outbox::default());
        let a = consumer(&q, "a", 1, &outbox);
        let b = consumer(&q, "b", 1, &outbox);
        q.add_consumer(Arc::clone(&a)).unwrap();
        q.add_consumer(Arc::clone(&b)).unwrap();
        for body in [&b"1"[..], b"2", b"3"] {
            q.enqueue(msg(body), None);
        }
        assert_eq!(bodies(&outbox), vec![("a".into(), "1"), ("b".into(), "2")]);
        assert_eq!(q.message_count(), 1);
        // a settles, so it may take "3"
        a.written();
        a.settled();
        q.dispatch();
        assert_eq!(bodies(&outbox), vec![("a".into(), "3")]);
        // requeue puts messages back in original order ahead of newer ones
        q.remove_consumer(1, 1, "a");
        q.remove_consumer(1, 1, "b");
        q.enqueue(msg(b"4"), None);
        q.requeue([
            QueuedMessage { seq: 2, message: msg(b"3"), redelivered: true, persisted: false },
            QueuedMessage { seq: 0, message: msg(b"1"), redelivered: true, persisted: false },
        ]);
        let order: Vec<u64> = std::iter::from_fn(|| q.get().map(|(m, _)| m.seq)).collect();
        assert_eq!(order, vec![0, 2, 3]);
    }

    #[test]
    fn exclusive_consumer_and_owner() {
        let q = Arc::new(Queue::new("q".into(), "/".into(), false, false, Some(7), FieldTable::default(), None));
        assert!(q.check_exclusive(7).is_ok());
        assert_eq!(q.check_exclusive(8).unwrap_err().code as u16, 405);
        let outbox = Arc::new(Outbox::default());
        let mut c =
            Consumer::new("x".into(), 1, 7, Arc::clone(&q), true, true, 0, Default::default(), Arc::clone(&outbox));
        q.add_consumer(Arc::new(c)).unwrap();
        c = Consumer::new("y".into(), 1, 7, Arc::clone(&q), true, false, 0, Default::default(), outbox);
        let err = q.add_consumer(Arc::new(c)).unwrap_err();
        assert_eq!(err.text, "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use");
    }
}
