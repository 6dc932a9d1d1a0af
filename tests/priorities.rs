//! Priority queues (`x-max-priority`) and the message `priority` property.
mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::{
    options::*,
    types::{AMQPValue, FieldTable},
    BasicProperties, Channel,
};

async fn priority_queue(ch: &Channel, tag: &str, max: AMQPValue) -> String {
    let q = unique(tag);
    within(ch.queue_declare(q.as_str().into(), QueueDeclareOptions::default(), table(&[("x-max-priority", max)])))
        .await
        .expect("queue_declare");
    q
}

/// Publish with an optional priority on a confirm channel.
async fn publish_prio(ch: &Channel, q: &str, body: &str, priority: Option<u8>) {
    let props = match priority {
        Some(p) => BasicProperties::default().with_priority(p),
        None => BasicProperties::default(),
    };
    let conf = within(ch.basic_publish("".into(), q.into(), BasicPublishOptions::default(), body.as_bytes(), props))
        .await
        .expect("basic_publish");
    assert!(within(conf).await.expect("confirm").is_ack());
}

#[tokio::test]
async fn higher_priority_messages_are_delivered_first() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = priority_queue(&ch, "prio-order", AMQPValue::LongInt(10)).await;
    for (body, p) in [("p1", 1), ("p5", 5), ("p10", 10), ("p0", 0), ("p7", 7)] {
        publish_prio(&ch, &q, body, Some(p)).await;
    }
    assert_eq!(message_count(&ch, &q).await, 5);
    assert_eq!(drain(&ch, &q).await, ["p10", "p7", "p5", "p1", "p0"]);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn same_priority_is_fifo() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = priority_queue(&ch, "prio-fifo", AMQPValue::ShortShortUInt(5)).await;
    for (body, p) in [("a1", 2), ("b1", 4), ("a2", 2), ("b2", 4), ("a3", 2)] {
        publish_prio(&ch, &q, body, Some(p)).await;
    }
    assert_eq!(drain(&ch, &q).await, ["b1", "b2", "a1", "a2", "a3"]);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn missing_priority_counts_as_zero() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = priority_queue(&ch, "prio-none", AMQPValue::LongInt(3)).await;
    publish_prio(&ch, &q, "none1", None).await;
    publish_prio(&ch, &q, "one", Some(1)).await;
    publish_prio(&ch, &q, "zero", Some(0)).await;
    publish_prio(&ch, &q, "none2", None).await;
    assert_eq!(drain(&ch, &q).await, ["one", "none1", "zero", "none2"]);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn priorities_above_the_maximum_count_as_the_maximum() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = priority_queue(&ch, "prio-cap", AMQPValue::LongInt(5)).await;
    publish_prio(&ch, &q, "five", Some(5)).await;
    publish_prio(&ch, &q, "nine", Some(9)).await;
    publish_prio(&ch, &q, "255", Some(255)).await;
    publish_prio(&ch, &q, "three", Some(3)).await;
    assert_eq!(drain(&ch, &q).await, ["five", "nine", "255", "three"]);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn priority_property_is_delivered_unchanged() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = priority_queue(&ch, "prio-prop", AMQPValue::LongInt(2)).await;
    publish_prio(&ch, &q, "x", Some(9)).await;
    let m = within(ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })).await.unwrap().unwrap();
    assert_eq!(m.delivery.properties.priority(), &Some(9));
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn without_max_priority_the_queue_is_fifo() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("prio-plain");
    declare_queue(&ch, &q).await;
    for (body, p) in [("low", 1), ("high", 9), ("mid", 5)] {
        publish_prio(&ch, &q, body, Some(p)).await;
    }
    assert_eq!(drain(&ch, &q).await, ["low", "high", "mid"]);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn consumer_gets_backlog_in_priority_order() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = priority_queue(&ch, "prio-consumer", AMQPValue::LongInt(10)).await;
    for (body, p) in [("l1", 1), ("h1", 8), ("l2", 1), ("h2", 8), ("m", 4)] {
        publish_prio(&ch, &q, body, Some(p)).await;
    }
    let mut consumer = within(ch.basic_consume(
        q.as_str().into(),
        "".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let mut got = Vec::new();
    for _ in 0..5 {
        let d = within(consumer.next()).await.unwrap().unwrap();
        got.push(String::from_utf8(d.data).unwrap());
    }
    assert_eq!(got, ["h1", "h2", "m", "l1", "l2"]);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn requeued_message_keeps_its_priority() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = priority_queue(&ch, "prio-requeue", AMQPValue::LongInt(10)).await;
    publish_prio(&ch, &q, "high", Some(9)).await;
    publish_prio(&ch, &q, "low", Some(1)).await;
    let m = within(ch.basic_get(q.as_str().into(), BasicGetOptions::default())).await.unwrap().unwrap();
    assert_eq!(m.delivery.data, b"high");
    publish_prio(&ch, &q, "mid", Some(5)).await;
    within(ch.basic_reject(m.delivery.delivery_tag, BasicRejectOptions { requeue: true })).await.unwrap();
    // the requeue is processed before the next get on the same channel
    assert_eq!(drain(&ch, &q).await, ["high", "mid", "low"]);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn max_priority_zero_and_255_are_accepted() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q0 = priority_queue(&ch, "prio-zero", AMQPValue::LongInt(0)).await;
    publish_prio(&ch, &q0, "a", Some(5)).await;
    publish_prio(&ch, &q0, "b", Some(9)).await;
    assert_eq!(drain(&ch, &q0).await, ["a", "b"]);
    let q255 = priority_queue(&ch, "prio-255", AMQPValue::LongInt(255)).await;
    publish_prio(&ch, &q255, "a", Some(200)).await;
    publish_prio(&ch, &q255, "b", Some(255)).await;
    assert_eq!(drain(&ch, &q255).await, ["b", "a"]);
    cleanup_queue(&b, &q0).await;
    cleanup_queue(&b, &q255).await;
}

#[tokio::test]
async fn invalid_max_priority_is_rejected() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let q = unique("prio-bad");
    let r = within(ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions::default(),
        table(&[("x-max-priority", AMQPValue::LongInt(256))]),
    ))
    .await;
    assert_amqp_error(
        r,
        406,
        &format!("PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue '{q}' in vhost '/': {{max_value_exceeded,256}}"),
    );
    let (_c, ch) = connect_channel(&b).await;
    let r = within(ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions::default(),
        table(&[("x-max-priority", AMQPValue::LongInt(-1))]),
    ))
    .await;
    assert_amqp_error(
        r,
        406,
        &format!(
            "PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue '{q}' in vhost '/': {{value_negative,-1}}"
        ),
    );
}
