//! Settling deliveries (basic.ack / nack / reject, and the requeue of a
//! closing channel's unacknowledged messages): consumer credit comes back,
//! each queue settles its own messages, rejected ones are dead-lettered.

use std::sync::Arc;

use super::Vhost;
use crate::broker::queue::{DeadLetters, Queue, Settle, Unsettled};
use crate::broker::stats::Settled;
use crate::message::QueuedMessage;

impl Vhost {
    /// Settles deliveries in the order given. An ack needs no grouping; a
    /// requeue or discard is grouped per queue, so each queue is locked
    /// once and its messages keep their order.
    pub fn settle(&self, deliveries: impl IntoIterator<Item = Unsettled>, how: Settle) {
        let mut groups: Vec<(Arc<Queue>, Vec<QueuedMessage>)> = Vec::new();
        // The queues' unacked counts go down once per run of deliveries
        // from one queue, not once per delivery (a multiple ack settles
        // hundreds); the run owns the delivery's queue handle, so counting
        // costs no reference-count traffic.
        let mut run: Option<(Arc<Queue>, Settled)> = None;
        for d in deliveries {
            let Unsettled { queue, consumer, message } = d;
            if let Some(c) = &consumer {
                c.settled();
            }
            let bytes = message.message.body.len() as u64;
            if how == Settle::Ack {
                queue.log_ack(&message);
            } else {
                match groups.iter_mut().find(|(q, _)| Arc::ptr_eq(q, &queue)) {
                    Some((_, list)) => list.push(message),
                    None => groups.push((Arc::clone(&queue), vec![message])),
                }
            }
            match &mut run {
                Some((q, s)) if Arc::ptr_eq(q, &queue) => s.add(bytes, how == Settle::Ack),
                _ => {
                    let mut s = Settled::default();
                    s.add(bytes, how == Settle::Ack);
                    if let Some((q, done)) = run.replace((queue, s)) {
                        q.add_settled(&done);
                    }
                }
            }
        }
        if let Some((q, done)) = run {
            q.add_settled(&done);
        }
        for (q, messages) in groups {
            let mut dead = DeadLetters::default();
            q.settle(messages, how, &mut dead);
            if !dead.is_empty() {
                self.dead_letter(&q, dead);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{declare_q, declare_q_with};
    use super::*;

    use crate::message::Message;
    use amq_protocol::types::{AMQPValue, FieldTable};
    use bytes::Bytes;

    fn take(q: &Queue) -> Vec<QueuedMessage> {
        std::iter::from_fn(|| q.get(&mut DeadLetters::default()).map(|(m, _)| m)).collect()
    }

    fn unsettled(q: &Arc<Queue>, ms: Vec<QueuedMessage>) -> Vec<Unsettled> {
        ms.into_iter().map(|message| Unsettled { queue: Arc::clone(q), consumer: None, message }).collect()
    }

    #[test]
    fn unacked_count_and_counters_follow_gets_and_settles() {
        let v = Vhost::new("/", None);
        declare_q(&v, "q");
        let q = v.queue("q").unwrap();
        for body in ["1", "22", "333"] {
            let m = Message::new(Bytes::new(), Bytes::from_static(b"q"), Bytes::from_static(&[0, 0]), body.into());
            q.enqueue(Arc::new(m), None, &mut DeadLetters::default());
        }
        let mut got = take(&q);
        let no_ack = got.pop().unwrap();
        q.on_got(true, &no_ack);
        for m in &got {
            q.on_got(false, m);
        }
        assert_eq!(q.unacked_count(), 2);
        let s = q.stats();
        assert_eq!((s.get, s.get_no_ack, s.publish, s.messages_ready), (2, 1, 3, 0));
        assert_eq!((s.message_bytes_unacknowledged, s.message_bytes), (3, 3));
        let second = got.pop().unwrap();
        v.settle(unsettled(&q, vec![second]), Settle::Requeue);
        assert_eq!((q.unacked_count(), q.message_count()), (1, 1));
        v.settle(unsettled(&q, got), Settle::Ack);
        assert_eq!(q.unacked_count(), 0);
        // The requeued one comes back redelivered.
        let again = take(&q);
        q.on_got(false, &again[0]);
        v.settle(unsettled(&q, again), Settle::Ack);
        let s = q.stats();
        assert_eq!((s.ack, s.redeliver, s.get, s.messages_unacknowledged, s.message_bytes), (2, 1, 3, 0, 0));
    }

    #[test]
    fn requeue_restores_order_and_marks_redelivered_and_discard_dead_letters() {
        let v = Vhost::new("/", None);
        declare_q(&v, "dlq");
        let mut args = FieldTable::default();
        args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("".into()));
        args.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString("dlq".into()));
        declare_q_with(&v, "q", &args);
        let q = v.queue("q").unwrap();
        for body in ["1", "2", "3"] {
            let m = Message::new(Bytes::new(), Bytes::from_static(b"q"), Bytes::from_static(&[0, 0]), body.into());
            q.enqueue(Arc::new(m), None, &mut DeadLetters::default());
        }
        let mut got = take(&q);
        // Settled out of order, they go back in queue order.
        got.reverse();
        v.settle(unsettled(&q, got), Settle::Requeue);
        let again = take(&q);
        assert_eq!(again.iter().map(|m| &m.message.body[..]).collect::<Vec<_>>(), [b"1", b"2", b"3"]);
        assert!(again.iter().all(|m| m.redelivered && m.delivery_count == 1));
        v.settle(unsettled(&q, again), Settle::Discard);
        assert_eq!((q.message_count(), v.queue("dlq").unwrap().message_count()), (0, 3));
        let acked = take(&v.queue("dlq").unwrap());
        let dlq = v.queue("dlq").unwrap();
        v.settle(unsettled(&dlq, acked), Settle::Ack);
        assert_eq!(dlq.message_count(), 0);
    }
}
