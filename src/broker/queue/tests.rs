use super::*;
use crate::broker::consumer::{ChannelLimit, NewConsumer, Outbox};
use bytes::Bytes;

fn plain(exclusive_owner: Option<ConnectionId>) -> NewQueue {
    NewQueue {
        name: "q".into(),
        vhost: "/".into(),
        durable: false,
        auto_delete: false,
        exclusive_owner,
        arguments: FieldTable::default(),
        log: None,
        clock: Clock::real(),
    }
}

fn msg(body: &'static [u8]) -> Arc<Message> {
    Arc::new(Message::new(
        Bytes::new(),
        Bytes::from_static(b"q"),
        Bytes::from_static(&[0, 0]),
        Bytes::from_static(body),
    ))
}

fn consumer(q: &Arc<Queue>, tag: &str, prefetch: u32, outbox: &Arc<Outbox>) -> Arc<Consumer> {
    Arc::new(Consumer::new(NewConsumer {
        tag: tag.into(),
        channel: ChannelId(1),
        connection_id: ConnectionId(1),
        queue: Arc::clone(q),
        no_ack: false,
        exclusive: false,
        priority: 0,
        prefetch,
        arguments: FieldTable::default(),
        channel_limit: Arc::new(ChannelLimit::default()),
        outbox: Arc::clone(outbox),
    }))
}

fn bodies(outbox: &Outbox) -> Vec<(String, &'static str)> {
    let mut items = Vec::new();
    outbox.drain_into(&mut items);
    items
        .into_iter()
        .filter_map(|i| match i {
            OutboxItem::Deliver { consumer, message } => {
                let b: &'static str = std::str::from_utf8(message.message.body.as_ref()).unwrap().to_string().leak();
                Some((consumer.tag.clone(), b))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn round_robin_with_prefetch_and_requeue_order() {
    let q = Arc::new(Queue::new(plain(None)));
    let outbox = Arc::new(Outbox::default());
    let a = consumer(&q, "a", 1, &outbox);
    let b = consumer(&q, "b", 1, &outbox);
    q.add_consumer(Arc::clone(&a)).unwrap();
    q.add_consumer(Arc::clone(&b)).unwrap();
    for body in [&b"1"[..], b"2", b"3"] {
        q.enqueue(msg(body), None, &mut DeadLetters::default());
    }
    assert_eq!(bodies(&outbox), vec![("a".into(), "1"), ("b".into(), "2")]);
    assert_eq!(q.message_count(), 1);
    // a settles, so it may take "3"
    a.written();
    a.settled();
    q.dispatch();
    assert_eq!(bodies(&outbox), vec![("a".into(), "3")]);
    // requeue puts messages back in original order ahead of newer ones
    q.remove_consumer(ConnectionId(1), ChannelId(1), "a");
    q.remove_consumer(ConnectionId(1), ChannelId(1), "b");
    q.enqueue(msg(b"4"), None, &mut DeadLetters::default());
    q.requeue([
        QueuedMessage {
            seq: 2,
            message: msg(b"3"),
            redelivered: true,
            persisted: false,
            expires_at: None,
            delivery_count: 0,
        },
        QueuedMessage {
            seq: 0,
            message: msg(b"1"),
            redelivered: true,
            persisted: false,
            expires_at: None,
            delivery_count: 0,
        },
    ]);
    let order: Vec<u64> = std::iter::from_fn(|| q.get(&mut DeadLetters::default()).map(|(m, _)| m.seq)).collect();
    assert_eq!(order, vec![0, 2, 3]);
}

#[test]
fn consumer_details_and_delivery_counters() {
    let q = Arc::new(Queue::new(plain(None)));
    let outbox = Arc::new(Outbox::default());
    let a = consumer(&q, "a", 5, &outbox);
    q.add_consumer(Arc::clone(&a)).unwrap();
    let d = q.consumer_details();
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].consumer_tag.as_str(), d[0].ack_required, d[0].prefetch_count, d[0].active), ("a", true, 5, true));
    assert_eq!((d[0].connection_id, d[0].channel, d[0].exclusive), (ConnectionId(1), ChannelId(1), false));
    q.enqueue(msg(b"xy"), None, &mut DeadLetters::default());
    let mut items = Vec::new();
    outbox.drain_into(&mut items);
    let Some(OutboxItem::Deliver { message, .. }) = items.pop() else { panic!("no delivery") };
    // The connection counts what it wrote.
    q.on_delivered(false, &message);
    let s = q.stats();
    assert_eq!((s.publish, s.deliver, s.deliver_no_ack, q.unacked_count()), (1, 1, 0, 1));
    assert_eq!((s.message_bytes_unacknowledged, s.message_bytes_ready), (2, 0));
    q.on_settled(&message, true);
    assert_eq!((q.unacked_count(), q.stats().ack), (0, 1));
    q.remove_consumer(ConnectionId(1), ChannelId(1), "a");
    assert!(q.consumer_details().is_empty());
}

#[test]
fn exclusive_consumer_and_owner() {
    let q = Arc::new(Queue::new(plain(Some(ConnectionId(7)))));
    assert!(q.check_exclusive(ConnectionId(7)).is_ok());
    assert_eq!(q.check_exclusive(ConnectionId(8)).unwrap_err().code as u16, 405);
    let outbox = Arc::new(Outbox::default());
    let new = |tag: &str, exclusive: bool| NewConsumer {
        tag: tag.into(),
        channel: ChannelId(1),
        connection_id: ConnectionId(7),
        queue: Arc::clone(&q),
        no_ack: true,
        exclusive,
        priority: 0,
        prefetch: 0,
        arguments: Default::default(),
        channel_limit: Default::default(),
        outbox: Arc::clone(&outbox),
    };
    q.add_consumer(Arc::new(Consumer::new(new("x", true)))).unwrap();
    let c = Consumer::new(new("y", false));
    let err = q.add_consumer(Arc::new(c)).unwrap_err();
    assert_eq!(err.text, "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use");
}
