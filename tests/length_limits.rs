//! Queue length limits: `x-max-length`, `x-max-length-bytes` and the
//! `x-overflow` behaviours drop-head, reject-publish and reject-publish-dlx.
mod common;

use std::time::Duration;

use common::*;
use lapin::{
    message::Delivery,
    options::*,
    types::{AMQPValue, FieldTable},
    BasicProperties, Channel, ExchangeKind,
};

/// Publish on a confirm channel; true for ack, false for nack.
async fn publish_acked(ch: &Channel, key: &str, body: &[u8]) -> bool {
    let conf = within(ch.basic_publish(
        "".into(),
        key.into(),
        BasicPublishOptions::default(),
        body,
        BasicProperties::default(),
    ))
    .await
    .expect("basic_publish");
    let c = within(conf).await.expect("confirm");
    assert!(c.is_ack() || c.is_nack());
    c.is_ack()
}

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

fn first_death_reason(d: &Delivery) -> Option<String> {
    match d.properties.headers().as_ref()?.inner().get("x-first-death-reason")? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        other => panic!("unexpected x-first-death-reason {other:?}"),
    }
}

#[tokio::test]
async fn max_length_drops_from_the_head() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("maxlen");
    declare_args(&ch, &q, &[("x-max-length", AMQPValue::LongInt(2))]).await;
    for i in 1..=4 {
        assert!(publish_acked(&ch, &q, format!("m{i}").as_bytes()).await, "drop-head acks every publish");
    }
    assert_eq!(message_count(&ch, &q).await, 2);
    assert_eq!(drain(&ch, &q).await, ["m3", "m4"]);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn explicit_drop_head_is_the_default() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("maxlen-drop-head");
    declare_args(&ch, &q, &[("x-max-length", AMQPValue::LongInt(1)), ("x-overflow", ls("drop-head"))]).await;
    for i in 1..=3 {
        assert!(publish_acked(&ch, &q, format!("m{i}").as_bytes()).await);
    }
    assert_eq!(drain(&ch, &q).await, ["m3"]);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn max_length_bytes_counts_body_bytes() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("maxbytes");
    declare_args(&ch, &q, &[("x-max-length-bytes", AMQPValue::LongInt(10))]).await;
    for body in ["aaaaa", "bbbbb", "ccccc"] {
        assert!(publish_acked(&ch, &q, body.as_bytes()).await);
    }
    assert_eq!(drain(&ch, &q).await, ["bbbbb", "ccccc"]);
    // a single message larger than the limit does not stay either
    assert!(publish_acked(&ch, &q, b"0123456789ab").await);
    assert_eq!(message_count(&ch, &q).await, 0);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn max_length_and_bytes_both_apply() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("maxlen-and-bytes");
    declare_args(&ch, &q, &[("x-max-length", AMQPValue::LongInt(3)), ("x-max-length-bytes", AMQPValue::LongInt(4))])
        .await;
    for body in ["a", "b", "c", "d"] {
        assert!(publish_acked(&ch, &q, body.as_bytes()).await);
    }
    assert_eq!(drain(&ch, &q).await, ["b", "c", "d"]);
    for body in ["xx", "yy", "zz"] {
        assert!(publish_acked(&ch, &q, body.as_bytes()).await);
    }
    assert_eq!(drain(&ch, &q).await, ["yy", "zz"]);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn max_length_zero_keeps_nothing() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("maxlen-zero");
    declare_args(&ch, &q, &[("x-max-length", AMQPValue::LongInt(0))]).await;
    assert!(publish_acked(&ch, &q, b"x").await);
    assert_eq!(message_count(&ch, &q).await, 0);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn reject_publish_nacks_when_full() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("reject-publish");
    declare_args(&ch, &q, &[("x-max-length", AMQPValue::LongInt(2)), ("x-overflow", ls("reject-publish"))]).await;
    assert!(publish_acked(&ch, &q, b"m1").await);
    assert!(publish_acked(&ch, &q, b"m2").await);
    assert!(!publish_acked(&ch, &q, b"m3").await, "publish into a full reject-publish queue is nacked");
    assert_eq!(message_count(&ch, &q).await, 2);
    assert_eq!(drain(&ch, &q).await, ["m1", "m2"]);
    // room again
    assert!(publish_acked(&ch, &q, b"m4").await);
    assert_eq!(drain(&ch, &q).await, ["m4"]);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn reject_publish_by_bytes() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("reject-publish-bytes");
    declare_args(&ch, &q, &[("x-max-length-bytes", AMQPValue::LongInt(6)), ("x-overflow", ls("reject-publish"))]).await;
    assert!(publish_acked(&ch, &q, b"abc").await);
    assert!(publish_acked(&ch, &q, b"def").await);
    assert!(!publish_acked(&ch, &q, b"g").await);
    assert_eq!(drain(&ch, &q).await, ["abc", "def"]);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn reject_publish_without_confirms_drops_silently() {
    let b = broker().await;
    let c = connect(&b).await;
    let ch = within(c.create_channel()).await.unwrap();
    let cch = confirm_channel(&c).await;
    let q = unique("reject-publish-plain");
    declare_args(&ch, &q, &[("x-max-length", AMQPValue::LongInt(1)), ("x-overflow", ls("reject-publish"))]).await;
    publish(&ch, "", &q, b"kept").await;
    publish(&ch, "", &q, b"dropped").await;
    // a confirmed publish on another channel: by now both plain ones were handled
    assert!(!publish_acked(&cch, &q, b"also-dropped").await);
    assert_eq!(drain(&ch, &q).await, ["kept"]);
    // the plain channel is still open
    publish(&ch, "", &q, b"later").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let got = loop {
        if let Some(body) = get_body(&ch, &q).await {
            break body;
        }
        assert!(tokio::time::Instant::now() < deadline, "the later message never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(got, b"later");
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn reject_publish_counts_only_ready_messages() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("reject-publish-unacked");
    declare_args(&ch, &q, &[("x-max-length", AMQPValue::LongInt(1)), ("x-overflow", ls("reject-publish"))]).await;
    assert!(publish_acked(&ch, &q, b"m1").await);
    let m = within(ch.basic_get(q.as_str().into(), BasicGetOptions::default())).await.unwrap().unwrap();
    // m1 is unacked: the queue has no ready message, so m2 fits
    assert!(publish_acked(&ch, &q, b"m2").await);
    assert!(!publish_acked(&ch, &q, b"m3").await);
    within(ch.basic_ack(m.delivery.delivery_tag, BasicAckOptions::default())).await.unwrap();
    assert_eq!(drain(&ch, &q).await, ["m2"]);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn reject_publish_with_fanout_nacks_if_any_queue_rejects() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let x = unique("reject-fanout-x");
    within(ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let full = unique("reject-fanout-full");
    let open = unique("reject-fanout-open");
    declare_args(&ch, &full, &[("x-max-length", AMQPValue::LongInt(0)), ("x-overflow", ls("reject-publish"))]).await;
    declare_queue(&ch, &open).await;
    for q in [&full, &open] {
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
    let conf = within(ch.basic_publish(
        x.as_str().into(),
        "".into(),
        BasicPublishOptions::default(),
        b"fan",
        BasicProperties::default(),
    ))
    .await
    .unwrap();
    assert!(within(conf).await.unwrap().is_nack());
    // the other queue still got its copy
    assert_eq!(drain(&ch, &open).await, ["fan"]);
    assert_eq!(message_count(&ch, &full).await, 0);
    cleanup_queue(&b, &full).await;
    cleanup_queue(&b, &open).await;
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn reject_publish_dlx_nacks_and_dead_letters() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let dlq = unique("reject-dlx-target");
    declare_queue(&ch, &dlq).await;
    let q = unique("reject-dlx");
    declare_args(
        &ch,
        &q,
        &[
            ("x-max-length", AMQPValue::LongInt(1)),
            ("x-overflow", ls("reject-publish-dlx")),
            ("x-dead-letter-exchange", ls("")),
            ("x-dead-letter-routing-key", ls(&dlq)),
        ],
    )
    .await;
    assert!(publish_acked(&ch, &q, b"m1").await);
    assert!(!publish_acked(&ch, &q, b"m2").await);
    let d = get_eventually(&ch, &dlq).await;
    assert_eq!(d.data, b"m2", "the rejected publish is dead-lettered, not the head");
    assert_eq!(first_death_reason(&d).as_deref(), Some("maxlen"));
    assert_eq!(drain(&ch, &q).await, ["m1"]);
    cleanup_queue(&b, &q).await;
    cleanup_queue(&b, &dlq).await;
}

#[tokio::test]
async fn reject_publish_does_not_dead_letter() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let dlq = unique("reject-nodlx-target");
    declare_queue(&ch, &dlq).await;
    let q = unique("reject-nodlx");
    declare_args(
        &ch,
        &q,
        &[
            ("x-max-length", AMQPValue::LongInt(1)),
            ("x-overflow", ls("reject-publish")),
            ("x-dead-letter-exchange", ls("")),
            ("x-dead-letter-routing-key", ls(&dlq)),
        ],
    )
    .await;
    assert!(publish_acked(&ch, &q, b"m1").await);
    assert!(!publish_acked(&ch, &q, b"m2").await);
    // confirm a message routed to the DLQ directly: anything dead-lettered before would be ahead of it
    assert!(publish_acked(&ch, &dlq, b"marker").await);
    assert_eq!(drain(&ch, &dlq).await, ["marker"]);
    cleanup_queue(&b, &q).await;
    cleanup_queue(&b, &dlq).await;
}

#[tokio::test]
async fn drop_head_dead_letters_the_dropped_messages() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let dlq = unique("drophead-dlx-target");
    declare_queue(&ch, &dlq).await;
    let q = unique("drophead-dlx");
    declare_args(
        &ch,
        &q,
        &[
            ("x-max-length", AMQPValue::LongInt(2)),
            ("x-dead-letter-exchange", ls("")),
            ("x-dead-letter-routing-key", ls(&dlq)),
        ],
    )
    .await;
    for i in 1..=5 {
        assert!(publish_acked(&ch, &q, format!("m{i}").as_bytes()).await);
    }
    let mut dead = Vec::new();
    for _ in 0..3 {
        let d = get_eventually(&ch, &dlq).await;
        assert_eq!(first_death_reason(&d).as_deref(), Some("maxlen"));
        dead.push(String::from_utf8(d.data).unwrap());
    }
    assert_eq!(dead, ["m1", "m2", "m3"]);
    assert_eq!(drain(&ch, &q).await, ["m4", "m5"]);
    cleanup_queue(&b, &q).await;
    cleanup_queue(&b, &dlq).await;
}

#[tokio::test]
async fn consumer_sees_the_newest_messages_after_drop_head() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("maxlen-consumer");
    declare_args(&ch, &q, &[("x-max-length", AMQPValue::LongInt(3))]).await;
    for i in 0..10 {
        assert!(publish_acked(&ch, &q, format!("m{i}").as_bytes()).await);
    }
    let mut consumer = within(ch.basic_consume(
        q.as_str().into(),
        "".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    for i in 7..10 {
        assert_eq!(next_delivery(&mut consumer).await.data, format!("m{i}").as_bytes());
    }
    assert_no_delivery(&mut consumer, 200).await;
    cleanup_queue(&b, &q).await;
}
