//! Message TTL, per-message expiration and x-expires on a manual clock:
//! the per-queue deadlines fire exactly when due, and only for due queues.

use std::sync::Arc;
use std::time::Duration;

use amq_protocol::protocol::basic::{gen_properties, AMQPProperties};
use amq_protocol::types::{AMQPValue, FieldTable};
use bytes::Bytes;

use super::Vhost;
use crate::broker::consumer::{Consumer, NewConsumer, Outbox};
use crate::broker::queue::DeadLetters;
use crate::clock::Clock;
use crate::ids::{ChannelId, ConnectionId};
use crate::message::Message;
use crate::store::definitions::VhostDef;

fn vhost() -> (Vhost, Clock) {
    let clock = Clock::manual();
    (Vhost::with_def(VhostDef::named("/"), None, clock.clone(), Arc::default()), clock)
}

fn declare(v: &Vhost, name: &str, args: &[(&str, AMQPValue)]) {
    let mut t = FieldTable::default();
    for (k, a) in args {
        t.insert((*k).into(), a.clone());
    }
    super::tests_support::declare_q_with(v, name, &t);
}

fn put(v: &Vhost, q: &str, body: &'static str, expiration: Option<&str>) {
    let mut p = AMQPProperties::default();
    if let Some(e) = expiration {
        p = p.with_expiration(e.into());
    }
    let props = Bytes::from(cookie_factory::gen_simple(gen_properties(&p), Vec::new()).unwrap());
    let m =
        Message::new(Bytes::new(), Bytes::copy_from_slice(q.as_bytes()), props, Bytes::from_static(body.as_bytes()));
    let q = v.queue(q).unwrap();
    let mut dead = DeadLetters::default();
    q.enqueue(Arc::new(m), None, &mut dead);
    if !dead.is_empty() {
        v.dead_letter(&q, dead);
    }
}

fn advance(v: &Vhost, clock: &Clock, ms: u64) {
    clock.advance(Duration::from_millis(ms));
    v.run_due(clock.millis());
}

fn count(v: &Vhost, q: &str) -> u32 {
    v.queue(q).unwrap().message_count()
}

fn consumer(q: &Arc<crate::broker::queue::Queue>, outbox: Arc<Outbox>) -> Consumer {
    Consumer::new(NewConsumer {
        tag: "c".into(),
        channel: ChannelId(1),
        connection_id: ConnectionId(1),
        queue: Arc::clone(q),
        no_ack: true,
        exclusive: false,
        priority: 0,
        prefetch: 0,
        arguments: Default::default(),
        channel_limit: Default::default(),
        outbox,
    })
}

fn long(n: i32) -> AMQPValue {
    AMQPValue::LongInt(n)
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

#[test]
fn queue_ttl_expires_at_the_deadline_and_dead_letters_with_the_clocks_time() {
    let (v, clock) = vhost();
    declare(&v, "dlq", &[]);
    declare(
        &v,
        "q",
        &[
            ("x-message-ttl", long(100)),
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text("dlq")),
        ],
    );
    put(&v, "q", "a", None);
    advance(&v, &clock, 50);
    put(&v, "q", "b", None);
    advance(&v, &clock, 49);
    assert_eq!(count(&v, "q"), 2, "nothing is due before 100 ms");
    advance(&v, &clock, 1);
    assert_eq!((count(&v, "q"), count(&v, "dlq")), (1, 1), "the first expired at 100 ms");
    advance(&v, &clock, 50);
    assert_eq!((count(&v, "q"), count(&v, "dlq")), (0, 2));
    let dead = v.queue("dlq").unwrap().get(&mut DeadLetters::default()).unwrap().0.message;
    let props = dead.decode_properties().unwrap();
    let deaths = props.headers().as_ref().unwrap().inner().get("x-death").cloned();
    let Some(AMQPValue::FieldArray(deaths)) = deaths else { panic!("no x-death") };
    let Some(AMQPValue::FieldTable(first)) = deaths.as_slice().first() else { panic!("empty x-death") };
    // The manual clock's wall time, in seconds.
    let expected = (clock.unix_millis() - 50) / 1000;
    assert_eq!(first.inner().get("time"), Some(&AMQPValue::Timestamp(expected)));
    assert_eq!(first.inner().get("reason"), Some(&text("expired")));
}

#[test]
fn per_message_expiration_happens_at_the_head_only() {
    let (v, clock) = vhost();
    declare(&v, "q", &[]);
    put(&v, "q", "long", Some("60000"));
    put(&v, "q", "short", Some("50"));
    advance(&v, &clock, 300);
    assert_eq!(count(&v, "q"), 2, "the expired message is behind a live one");
    // Once the head is gone, the one behind it is past its time.
    let head = v.queue("q").unwrap().get(&mut DeadLetters::default()).unwrap().0;
    assert_eq!(&head.message.body[..], b"long");
    advance(&v, &clock, 0);
    assert_eq!(count(&v, "q"), 0, "uncovered and past due: expired by the next run");
}

#[test]
fn the_lower_of_queue_and_message_ttl_applies() {
    let (v, clock) = vhost();
    declare(&v, "q1", &[("x-message-ttl", long(60_000))]);
    declare(&v, "q2", &[("x-message-ttl", long(50))]);
    put(&v, "q1", "x", Some("50"));
    put(&v, "q2", "y", Some("60000"));
    advance(&v, &clock, 49);
    assert_eq!((count(&v, "q1"), count(&v, "q2")), (1, 1));
    advance(&v, &clock, 1);
    assert_eq!((count(&v, "q1"), count(&v, "q2")), (0, 0));
}

#[test]
fn an_unused_queue_expires_and_use_postpones_it() {
    let (v, clock) = vhost();
    declare(&v, "q", &[("x-expires", long(200))]);
    advance(&v, &clock, 150);
    // A redeclare is a use: the 200 ms start again.
    declare(&v, "q", &[("x-expires", long(200))]);
    advance(&v, &clock, 150);
    assert!(v.queue("q").is_ok(), "used 150 ms ago");
    advance(&v, &clock, 50);
    assert!(v.queue("q").is_err(), "unused for 200 ms");
}

#[test]
fn a_queue_with_a_consumer_does_not_expire_until_it_is_cancelled() {
    let (v, clock) = vhost();
    declare(&v, "q", &[("x-expires", long(200))]);
    let q = v.queue("q").unwrap();
    let outbox = Arc::new(Outbox::default());
    let c = consumer(&q, outbox);
    q.add_consumer(Arc::new(c)).unwrap();
    advance(&v, &clock, 1000);
    assert!(v.queue("q").is_ok(), "a queue with a consumer is in use");
    q.remove_consumer(ConnectionId(1), ChannelId(1), "c");
    advance(&v, &clock, 199);
    assert!(v.queue("q").is_ok());
    advance(&v, &clock, 1);
    assert!(v.queue("q").is_err());
}

#[test]
fn a_message_left_behind_an_expired_one_reaches_a_waiting_consumer() {
    let (v, clock) = vhost();
    declare(&v, "q", &[]);
    put(&v, "q", "soon", Some("10"));
    put(&v, "q", "later", None);
    let q = v.queue("q").unwrap();
    let outbox = Arc::new(Outbox::default());
    advance(&v, &clock, 20);
    // The consumer arrives after "soon" expired but before a run: dispatch
    // finds the expired head and leaves it to the deadline.
    clock.advance(Duration::from_millis(5));
    let c = consumer(&q, Arc::clone(&outbox));
    q.add_consumer(Arc::new(c)).unwrap();
    v.run_due(clock.millis());
    let mut items = Vec::new();
    outbox.drain_into(&mut items);
    assert_eq!(items.len(), 1);
    assert_eq!(count(&v, "q"), 0);
}

#[test]
fn queues_without_deadlines_are_never_in_the_heap() {
    let (v, clock) = vhost();
    for i in 0..100 {
        declare(&v, &format!("plain-{i}"), &[]);
        put(&v, &format!("plain-{i}"), "x", None);
    }
    assert_eq!(v.next_deadline(), None);
    declare(&v, "ttl", &[("x-message-ttl", long(1000))]);
    for _ in 0..100 {
        put(&v, "ttl", "x", None);
    }
    // One entry for the head, not one per message.
    assert_eq!(v.timers.len(), 1);
    assert_eq!(v.next_deadline(), Some(clock.millis() + 1000));
    advance(&v, &clock, 1000);
    assert_eq!(count(&v, "ttl"), 0);
    assert!(v.timers.is_empty());
}
