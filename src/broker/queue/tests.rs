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

fn persistent_msg(body: &'static [u8]) -> Arc<Message> {
    // Property flags with only delivery-mode set (bit 12), then mode 2.
    Arc::new(Message::new(
        Bytes::new(),
        Bytes::from_static(b"q"),
        Bytes::from_static(&[0x10, 0x00, 2]),
        Bytes::from_static(body),
    ))
}

#[test]
fn a_simulated_restart_keeps_persistent_messages_in_order_across_the_paged_tail() {
    let dir = std::env::temp_dir().join(format!("warren-drop-transient-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A budget of one message: the rest are paged to disk.
    let q = Arc::new(Queue::new(plain(None)).with_paging(dir.clone(), 1));
    let mut dead = DeadLetters::default();
    for (i, body) in [&b"p1"[..], b"t1", b"p2", b"t2", b"p3"].into_iter().enumerate() {
        let m = if i % 2 == 0 { persistent_msg(body.to_vec().leak()) } else { msg(body.to_vec().leak()) };
        assert!(matches!(q.enqueue(m, None, &mut dead), Enqueued::Accepted(_)));
    }
    assert_eq!(q.message_count(), 5);
    assert_eq!(q.drop_transient(), 2);
    assert_eq!(q.message_count(), 3);
    let mut got = Vec::new();
    while let Some((m, _)) = q.get(&mut dead) {
        got.push(String::from_utf8(m.message.body.to_vec()).unwrap());
    }
    assert_eq!(got, ["p1", "p2", "p3"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_paused_queue_holds_deliveries_and_refuses_the_publishes_it_was_told_to() {
    let q = Arc::new(Queue::new(plain(None)));
    let outbox = Arc::new(Outbox::default());
    q.add_consumer(consumer(&q, "c", 10, &outbox)).unwrap();
    let mut dead = DeadLetters::default();
    q.set_paused(true);
    q.refuse_next_publishes(1);
    assert_eq!(q.enqueue(msg(b"refused"), None, &mut dead), Enqueued::Rejected);
    assert!(matches!(q.enqueue(msg(b"held"), None, &mut dead), Enqueued::Accepted(_)));
    assert!(bodies(&outbox).is_empty(), "nothing is delivered while paused");
    q.set_paused(false);
    assert_eq!(bodies(&outbox), [("c".to_owned(), "held")]);
}
