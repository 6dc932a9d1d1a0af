//! Dead-lettering (`x-dead-letter-exchange`, `x-dead-letter-routing-key`) on
//! reject, nack, expiry and overflow, with RabbitMQ's `x-death` and
//! `x-first-death-*` headers and its cycle detection.
mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use lapin::{
    message::Delivery,
    options::*,
    types::{AMQPValue, FieldArray, FieldTable},
    BasicProperties, Channel, ExchangeKind,
};

/// A fanout DLX with one bound queue; returns (exchange, queue).
async fn dlx_with_queue(ch: &Channel, tag: &str) -> (String, String) {
    let x = unique(&format!("{tag}-dlx"));
    let q = unique(&format!("{tag}-dlq"));
    within(ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    declare_queue(ch, &q).await;
    within(ch.queue_bind(
        q.as_str().into(),
        x.as_str().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    (x, q)
}

/// basic.get (no-ack) polling until a message arrives.
async fn get_eventually(ch: &Channel, q: &str) -> Delivery {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(m) = within(ch.basic_get(q.into(), BasicGetOptions { no_ack: true })).await.expect("basic_get") {
            return m.delivery;
        }
        assert!(tokio::time::Instant::now() < deadline, "no message arrived in {q}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// basic.get (no-ack) of a message that must be there now.
async fn get_now(ch: &Channel, q: &str) -> Delivery {
    within(ch.basic_get(q.into(), BasicGetOptions { no_ack: true }))
        .await
        .expect("basic_get")
        .unwrap_or_else(|| panic!("no message in {q}"))
        .delivery
}

/// Get one message with manual ack.
async fn get_unacked(ch: &Channel, q: &str) -> Delivery {
    within(ch.basic_get(q.into(), BasicGetOptions { no_ack: false }))
        .await
        .expect("basic_get")
        .expect("a message")
        .delivery
}

fn headers(d: &Delivery) -> &FieldTable {
    d.properties.headers().as_ref().expect("the message has headers")
}

fn header<'a>(d: &'a Delivery, k: &str) -> Option<&'a AMQPValue> {
    d.properties.headers().as_ref().and_then(|h| h.inner().get(k))
}

fn string(v: &AMQPValue) -> String {
    match v {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        other => panic!("expected a string, got {other:?}"),
    }
}

fn int(v: &AMQPValue) -> i64 {
    match v {
        AMQPValue::ShortShortInt(n) => *n as i64,
        AMQPValue::ShortShortUInt(n) => *n as i64,
        AMQPValue::ShortInt(n) => *n as i64,
        AMQPValue::ShortUInt(n) => *n as i64,
        AMQPValue::LongInt(n) => *n as i64,
        AMQPValue::LongUInt(n) => *n as i64,
        AMQPValue::LongLongInt(n) => *n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

fn x_death(d: &Delivery) -> Vec<FieldTable> {
    match header(d, "x-death") {
        Some(AMQPValue::FieldArray(a)) => a
            .as_slice()
            .iter()
            .map(|v| match v {
                AMQPValue::FieldTable(t) => t.clone(),
                other => panic!("x-death entry is not a table: {other:?}"),
            })
            .collect(),
        other => panic!("expected an x-death array, got {other:?}"),
    }
}

fn field<'a>(t: &'a FieldTable, k: &str) -> &'a AMQPValue {
    t.inner().get(k).unwrap_or_else(|| panic!("x-death entry has no {k}: {t:?}"))
}

/// (queue, reason, count) of each x-death entry, newest first.
fn deaths(d: &Delivery) -> Vec<(String, String, i64)> {
    x_death(d).iter().map(|t| (string(field(t, "queue")), string(field(t, "reason")), int(field(t, "count")))).collect()
}

fn routing_keys(t: &FieldTable) -> Vec<String> {
    match field(t, "routing-keys") {
        AMQPValue::FieldArray(a) => a.as_slice().iter().map(string).collect(),
        other => panic!("routing-keys is not an array: {other:?}"),
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn rejected_message_is_dead_lettered_with_x_death() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let (dlx, dlq) = dlx_with_queue(&ch, "dl-reject").await;
    let q = unique("dl-reject-src");
    declare_args(&ch, &q, &[("x-dead-letter-exchange", ls(&dlx))]).await;
    let before = now_secs();
    publish_confirmed(&ch, "", &q, b"bad").await;
    let m = get_unacked(&ch, &q).await;
    within(ch.basic_reject(m.delivery_tag, BasicRejectOptions { requeue: false })).await.unwrap();

    let d = get_eventually(&ch, &dlq).await;
    let after = now_secs();
    assert_eq!(d.data, b"bad");
    assert_eq!(d.exchange.as_str(), dlx, "delivered from the DLX");
    assert_eq!(d.routing_key.as_str(), q, "the original routing key is kept");
    let xd = x_death(&d);
    assert_eq!(xd.len(), 1);
    let e = &xd[0];
    // RabbitMQ's exact field types
    assert_eq!(field(e, "count"), &AMQPValue::LongLongInt(1));
    assert_eq!(field(e, "reason"), &ls("rejected"));
    assert_eq!(field(e, "queue"), &ls(&q));
    assert_eq!(field(e, "exchange"), &ls(""));
    assert_eq!(field(e, "routing-keys"), &AMQPValue::FieldArray(FieldArray::from(vec![ls(&q)])));
    match field(e, "time") {
        AMQPValue::Timestamp(t) => assert!((before..=after).contains(t), "time {t} not in {before}..={after}"),
        other => panic!("time is not a timestamp: {other:?}"),
    }
    assert!(!e.contains_key("original-expiration"));
    assert_eq!(header(&d, "x-first-death-reason"), Some(&ls("rejected")));
    assert_eq!(header(&d, "x-first-death-queue"), Some(&ls(&q)));
    assert_eq!(header(&d, "x-first-death-exchange"), Some(&ls("")));
    // nothing left behind
    assert_eq!(message_count(&ch, &q).await, 0);
    cleanup_queue(&b, &q).await;
    cleanup_queue(&b, &dlq).await;
    cleanup_exchange(&b, &dlx).await;
}

#[tokio::test]
async fn nacked_message_is_dead_lettered_as_rejected() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let (dlx, dlq) = dlx_with_queue(&ch, "dl-nack").await;
    let q = unique("dl-nack-src");
    declare_args(&ch, &q, &[("x-dead-letter-exchange", ls(&dlx))]).await;
    for i in 0..3 {
        publish_confirmed(&ch, "", &q, format!("n{i}").as_bytes()).await;
    }
    let mut last = 0;
    for _ in 0..3 {
        last = get_unacked(&ch, &q).await.delivery_tag;
    }
    within(ch.basic_nack(last, BasicNackOptions { multiple: true, requeue: false })).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        let d = get_eventually(&ch, &dlq).await;
        assert_eq!(deaths(&d), [(q.clone(), "rejected".to_string(), 1)]);
        got.push(String::from_utf8(d.data).unwrap());
    }
    got.sort();
    assert_eq!(got, ["n0", "n1", "n2"]);
    cleanup_queue(&b, &q).await;
    cleanup_queue(&b, &dlq).await;
    cleanup_exchange(&b, &dlx).await;
}

#[tokio::test]
async fn reject_with_requeue_does_not_dead_letter() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let (dlx, dlq) = dlx_with_queue(&ch, "dl-requeue").await;
    let q = unique("dl-requeue-src");
    declare_args(&ch, &q, &[("x-dead-letter-exchange", ls(&dlx))]).await;
    publish_confirmed(&ch, "", &q, b"again").await;
    let m = get_unacked(&ch, &q).await;
    within(ch.basic_reject(m.delivery_tag, BasicRejectOptions { requeue: true })).await.unwrap();
    let again = get_eventually(&ch, &q).await;
    assert!(again.redelivered);
    assert_eq!(again.data, b"again");
    assert_eq!(header(&again, "x-death"), None);
    assert_eq!(message_count(&ch, &dlq).await, 0);
    cleanup_queue(&b, &q).await;
    cleanup_queue(&b, &dlq).await;
    cleanup_exchange(&b, &dlx).await;
}

#[tokio::test]
async fn dead_letter_routing_key_replaces_the_routing_key() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let dlq = unique("dl-rk-target");
    declare_queue(&ch, &dlq).await;
    let q = unique("dl-rk-src");
    // the default exchange as DLX, routed by x-dead-letter-routing-key
    declare_args(&ch, &q, &[("x-dead-letter-exchange", ls("")), ("x-dead-letter-routing-key", ls(&dlq))]).await;
    publish_confirmed(&ch, "", &q, b"moved").await;
    let m = get_unacked(&ch, &q).await;
    within(ch.basic_nack(m.delivery_tag, BasicNackOptions { multiple: false, requeue: false })).await.unwrap();
    let d = get_eventually(&ch, &dlq).await;
    assert_eq!(d.data, b"moved");
    assert_eq!(d.exchange.as_str(), "");
    assert_eq!(d.routing_key.as_str(), dlq);
    let xd = x_death(&d);
    assert_eq!(routing_keys(&xd[0]), [q.as_str()], "x-death keeps the original routing key");
    assert_eq!(string(field(&xd[0], "exchange")), "");
    cleanup_queue(&b, &q).await;
    cleanup_queue(&b, &dlq).await;
}

#[tokio::test]
async fn x_death_records_the_original_exchange_and_cc_keys() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let (dlx, dlq) = dlx_with_queue(&ch, "dl-cc").await;
    let x = unique("dl-cc-src-x");
    within(ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let q = unique("dl-cc-src");
    declare_args(&ch, &q, &[("x-dead-letter-exchange", ls(&dlx))]).await;
    within(ch.queue_bind(
        q.as_str().into(),
        x.as_str().into(),
        "cc-key".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let props = BasicProperties::default()
        .with_headers(table(&[("CC", AMQPValue::FieldArray(FieldArray::from(vec![ls("cc-key")])))]));
    publish_confirmed_props(&ch, &x, "main-key", b"cc", props).await;
    let m = get_unacked(&ch, &q).await;
    within(ch.basic_reject(m.delivery_tag, BasicRejectOptions { requeue: false })).await.unwrap();
    let d = get_eventually(&ch, &dlq).await;
    let xd = x_death(&d);
    assert_eq!(string(field(&xd[0], "exchange")), x);
    assert_eq!(routing_keys(&xd[0]), ["main-key", "cc-key"]);
    assert_eq!(header(&d, "x-first-death-exchange"), Some(&ls(&x)));
    assert_eq!(d.routing_key.as_str(), "main-key");
    cleanup_queue(&b, &q).await;
    cleanup_queue(&b, &dlq).await;
    cleanup_exchange(&b, &dlx).await;
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn expired_message_is_dead_lettered_as_expired() {
    let b = broker_on_manual_clock().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let (dlx, dlq) = dlx_with_queue(&ch, "dl-expired").await;
    let q = unique("dl-expired-src");
    declare_args(&ch, &q, &[("x-dead-letter-exchange", ls(&dlx)), ("x-message-ttl", AMQPValue::LongInt(100))]).await;
    publish_confirmed(&ch, "", &q, b"stale").await;
    let_pass(&b, 100).await;
    let d = get_now(&ch, &dlq).await;
    assert_eq!(d.data, b"stale");
    assert_eq!(deaths(&d), [(q.clone(), "expired".to_string(), 1)]);
    assert!(!x_death(&d)[0].contains_key("original-expiration"));
    assert_eq!(header(&d, "x-first-death-reason"), Some(&ls("expired")));
    assert_eq!(header(&d, "x-first-death-queue"), Some(&ls(&q)));
    cleanup_queue(&b, &q).await;
    cleanup_queue(&b, &dlq).await;
    cleanup_exchange(&b, &dlx).await;
}

#[tokio::test]
async fn per_message_expiration_moves_to_original_expiration() {
    let b = broker_on_manual_clock().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let (dlx, dlq) = dlx_with_queue(&ch, "dl-orig-exp").await;
    let q = unique("dl-orig-exp-src");
    declare_args(&ch, &q, &[("x-dead-letter-exchange", ls(&dlx))]).await;
    publish_confirmed_props(&ch, "", &q, b"x", BasicProperties::default().with_expiration("100".into())).await;
    let_pass(&b, 100).await;
    let d = get_now(&ch, &dlq).await;
    assert_eq!(d.properties.expiration(), &None, "the expiration property is removed");
    let xd = x_death(&d);
    assert_eq!(field(&xd[0], "original-expiration"), &ls("100"));
    assert_eq!(string(field(&xd[0], "reason")), "expired");
    cleanup_queue(&b, &q).await;
    cleanup_queue(&b, &dlq).await;
    cleanup_exchange(&b, &dlx).await;
}

#[tokio::test]
async fn max_length_drop_head_dead_letters_as_maxlen() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let (dlx, dlq) = dlx_with_queue(&ch, "dl-maxlen").await;
    let q = unique("dl-maxlen-src");
    declare_args(&ch, &q, &[("x-dead-letter-exchange", ls(&dlx)), ("x-max-length", AMQPValue::LongInt(1))]).await;
    publish_confirmed(&ch, "", &q, b"first").await;
    publish_confirmed(&ch, "", &q, b"second").await;
    let d = get_eventually(&ch, &dlq).await;
    assert_eq!(d.data, b"first");
    assert_eq!(deaths(&d), [(q.clone(), "maxlen".to_string(), 1)]);
    assert_eq!(header(&d, "x-first-death-reason"), Some(&ls("maxlen")));
    assert_eq!(drain(&ch, &q).await, ["second"]);
    cleanup_queue(&b, &q).await;
    cleanup_queue(&b, &dlq).await;
    cleanup_exchange(&b, &dlx).await;
}

#[tokio::test]
async fn existing_headers_are_kept() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let (dlx, dlq) = dlx_with_queue(&ch, "dl-headers").await;
    let q = unique("dl-headers-src");
    declare_args(&ch, &q, &[("x-dead-letter-exchange", ls(&dlx))]).await;
    let props = BasicProperties::default()
        .with_headers(table(&[("app", ls("v"))]))
        .with_correlation_id("corr".into())
        .with_delivery_mode(2);
    publish_confirmed_props(&ch, "", &q, b"h", props).await;
    let m = get_unacked(&ch, &q).await;
    within(ch.basic_reject(m.delivery_tag, BasicRejectOptions { requeue: false })).await.unwrap();
    let d = get_eventually(&ch, &dlq).await;
    assert_eq!(headers(&d).inner().get("app"), Some(&ls("v")));
    assert_eq!(d.properties.correlation_id().as_ref().map(|s| s.as_str()), Some("corr"));
    assert_eq!(d.properties.delivery_mode(), &Some(2));
    cleanup_queue(&b, &q).await;
    cleanup_queue(&b, &dlq).await;
    cleanup_exchange(&b, &dlx).await;
}

/// A message that goes round twice: the {queue, reason} entry is counted up
/// and moved to the front; the x-first-death-* headers stay.
#[tokio::test]
async fn x_death_count_increments_per_queue_and_reason() {
    let b = broker_on_manual_clock().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let a = unique("dl-count-a");
    let parking = unique("dl-count-b");
    // a: rejected messages go to `parking`; parking: expired messages go back to a
    declare_args(&ch, &a, &[("x-dead-letter-exchange", ls("")), ("x-dead-letter-routing-key", ls(&parking))]).await;
    declare_args(
        &ch,
        &parking,
        &[
            ("x-dead-letter-exchange", ls("")),
            ("x-dead-letter-routing-key", ls(&a)),
            ("x-message-ttl", AMQPValue::LongInt(50)),
        ],
    )
    .await;
    publish_confirmed(&ch, "", &a, b"loop").await;
    let m = get_unacked(&ch, &a).await;
    within(ch.basic_reject(m.delivery_tag, BasicRejectOptions { requeue: false })).await.unwrap();
    // basic.reject has no reply: a round trip on the channel makes sure it
    // is done before the clock moves.
    assert_eq!(message_count(&ch, &parking).await, 1);

    // back in a after expiring in parking
    let_pass(&b, 50).await;
    let m = get_unacked(&ch, &a).await;
    assert_eq!(deaths(&m), [(parking.clone(), "expired".into(), 1), (a.clone(), "rejected".into(), 1)]);
    within(ch.basic_reject(m.delivery_tag, BasicRejectOptions { requeue: false })).await.unwrap();
    assert_eq!(message_count(&ch, &parking).await, 1);
    let_pass(&b, 50).await;
    let m = get_now(&ch, &a).await;
    assert_eq!(deaths(&m), [(parking.clone(), "expired".into(), 2), (a.clone(), "rejected".into(), 2)]);
    assert_eq!(header(&m, "x-first-death-reason"), Some(&ls("rejected")));
    assert_eq!(header(&m, "x-first-death-queue"), Some(&ls(&a)));
    cleanup_queue(&b, &a).await;
    cleanup_queue(&b, &parking).await;
}

/// A fully automatic cycle (expiry only) is detected: the message is dropped
/// when it would be dead-lettered to a queue it already died in.
#[tokio::test]
async fn automatic_dead_letter_cycle_is_dropped() {
    let b = broker_on_manual_clock().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let a = unique("dl-cycle-a");
    let z = unique("dl-cycle-b");
    let ttl = ("x-message-ttl", AMQPValue::LongInt(50));
    declare_args(&ch, &a, &[("x-dead-letter-exchange", ls("")), ("x-dead-letter-routing-key", ls(&z)), ttl.clone()])
        .await;
    declare_args(&ch, &z, &[("x-dead-letter-exchange", ls("")), ("x-dead-letter-routing-key", ls(&a)), ttl]).await;
    publish_confirmed(&ch, "", &a, b"round").await;
    // a -> z -> a -> dropped; afterwards both queues stay empty
    let_pass(&b, 50).await;
    if on_manual_clock(&b) {
        assert_eq!((message_count(&ch, &a).await, message_count(&ch, &z).await), (0, 1), "expired from a into z");
    }
    let_pass(&b, 50).await;
    assert_eq!((message_count(&ch, &a).await, message_count(&ch, &z).await), (0, 0), "dropped, not back in a");
    let_pass(&b, 500).await;
    assert_eq!((message_count(&ch, &a).await, message_count(&ch, &z).await), (0, 0), "and it stays gone");
    cleanup_queue(&b, &a).await;
    cleanup_queue(&b, &z).await;
}

/// Dead-lettering a queue to itself on expiry: one round trip, then dropped.
#[tokio::test]
async fn expiry_to_itself_is_dropped_after_one_round() {
    let b = broker_on_manual_clock().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let a = unique("dl-self");
    let watch = unique("dl-self-watch");
    declare_queue(&ch, &watch).await;
    let x = unique("dl-self-x");
    within(ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    declare_args(&ch, &a, &[("x-dead-letter-exchange", ls(&x)), ("x-message-ttl", AMQPValue::LongInt(50))]).await;
    for q in [&a, &watch] {
        within(ch.queue_bind(
            q.as_str().into(),
            x.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ))
        .await
        .unwrap();
    }
    publish_confirmed(&ch, "", &a, b"self").await;
    // the watcher sees the first dead-lettering only: the second would
    // dead-letter to `a` again, a cycle, and the message is dropped entirely
    let_pass(&b, 50).await;
    let d = get_now(&ch, &watch).await;
    assert_eq!(deaths(&d), [(a.clone(), "expired".into(), 1)]);
    for _ in 0..3 {
        let_pass(&b, 50).await;
        let n = message_count(&ch, &a).await + message_count(&ch, &watch).await;
        assert_eq!(n, 0, "the message keeps cycling");
    }
    cleanup_queue(&b, &a).await;
    cleanup_queue(&b, &watch).await;
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn cycle_with_a_rejection_is_not_dropped() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let a = unique("dl-rej-self");
    // rejected messages come straight back to the same queue
    declare_args(&ch, &a, &[("x-dead-letter-exchange", ls("")), ("x-dead-letter-routing-key", ls(&a))]).await;
    publish_confirmed(&ch, "", &a, b"again").await;
    for n in 1..=3 {
        let m = get_eventually_unacked(&ch, &a).await;
        if n > 1 {
            assert_eq!(deaths(&m), [(a.clone(), "rejected".into(), n - 1)]);
        }
        within(ch.basic_reject(m.delivery_tag, BasicRejectOptions { requeue: false })).await.unwrap();
    }
    let d = get_eventually(&ch, &a).await;
    assert_eq!(deaths(&d), [(a.clone(), "rejected".into(), 3)]);
    cleanup_queue(&b, &a).await;
}

async fn get_eventually_unacked(ch: &Channel, q: &str) -> Delivery {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(m) = within(ch.basic_get(q.into(), BasicGetOptions::default())).await.expect("basic_get") {
            return m.delivery;
        }
        assert!(tokio::time::Instant::now() < deadline, "no message arrived in {q}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn missing_dead_letter_exchange_drops_the_message() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("dl-missing-src");
    let missing = unique("dl-missing-x");
    declare_args(&ch, &q, &[("x-dead-letter-exchange", ls(&missing))]).await;
    publish_confirmed(&ch, "", &q, b"lost").await;
    let m = get_unacked(&ch, &q).await;
    within(ch.basic_reject(m.delivery_tag, BasicRejectOptions { requeue: false })).await.unwrap();
    assert_eq!(message_count(&ch, &q).await, 0);
    // the channel is still fine
    publish_confirmed(&ch, "", &q, b"next").await;
    assert_eq!(drain(&ch, &q).await, ["next"]);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn dead_lettered_message_gets_no_dead_letter_without_dlx() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("dl-none");
    declare_queue(&ch, &q).await;
    publish_confirmed(&ch, "", &q, b"x").await;
    let m = get_unacked(&ch, &q).await;
    within(ch.basic_reject(m.delivery_tag, BasicRejectOptions { requeue: false })).await.unwrap();
    assert_eq!(message_count(&ch, &q).await, 0);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn consumer_nack_dead_letters_to_consumer_of_dlq() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let (dlx, dlq) = dlx_with_queue(&ch, "dl-consume").await;
    let q = unique("dl-consume-src");
    declare_args(&ch, &q, &[("x-dead-letter-exchange", ls(&dlx))]).await;
    let mut src = within(ch.basic_consume(
        q.as_str().into(),
        "src".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let mut dead = within(ch.basic_consume(
        dlq.as_str().into(),
        "dead".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    publish_confirmed(&ch, "", &q, b"refused").await;
    let d = next_delivery(&mut src).await;
    within(ch.basic_nack(d.delivery_tag, BasicNackOptions { multiple: false, requeue: false })).await.unwrap();
    let d = next_delivery(&mut dead).await;
    assert_eq!(d.data, b"refused");
    assert!(!d.redelivered);
    assert_eq!(deaths(&d), [(q.clone(), "rejected".into(), 1)]);
    cleanup_queue(&b, &q).await;
    cleanup_queue(&b, &dlq).await;
    cleanup_exchange(&b, &dlx).await;
}
