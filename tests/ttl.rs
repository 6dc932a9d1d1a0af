//! RabbitMQ's TTL extensions: per-queue message TTL (`x-message-ttl`),
//! per-message TTL (the `expiration` property), TTL 0 and queue expiry
//! (`x-expires`).
mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::{
    options::*,
    types::{AMQPValue, FieldTable},
    BasicProperties,
};

fn expiring(ms: &str) -> BasicProperties {
    BasicProperties::default().with_expiration(ms.into())
}

/// The queue timer task end to end: the clock is moved directly (not
/// through `Broker::advance`, which runs due deadlines itself), so only the
/// server's timer task, woken by the manual clock, can expire the message.
/// The real clock's timer path is exercised by the interop and differential
/// suites' TTL scenarios against the release binary.
#[tokio::test]
async fn queue_message_ttl_expires_messages_through_the_timer_task() {
    let b = broker_on_manual_clock().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("ttl-queue");
    declare_args(&ch, &q, &[("x-message-ttl", AMQPValue::LongInt(100))]).await;
    publish_confirmed(&ch, "", &q, b"short-lived").await;
    assert_eq!(message_count(&ch, &q).await, 1);
    match b.server() {
        Some(s) => {
            s.broker().clock().advance(std::time::Duration::from_millis(100));
        }
        None => let_pass(&b, 100).await,
    }
    eventually("the message expired", || {
        let ch = ch.clone();
        let q = q.clone();
        async move { message_count(&ch, &q).await == 0 }
    })
    .await;
    assert_eq!(get_body(&ch, &q).await, None);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn queue_message_ttl_accepts_any_integer_type() {
    let b = broker_on_manual_clock().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    for v in [AMQPValue::ShortShortInt(50), AMQPValue::ShortInt(50), AMQPValue::LongLongInt(50)] {
        let q = unique("ttl-int-type");
        declare_args(&ch, &q, &[("x-message-ttl", v)]).await;
        publish_confirmed(&ch, "", &q, b"x").await;
        if on_manual_clock(&b) {
            let_pass(&b, 49).await;
            assert_eq!(message_count(&ch, &q).await, 1, "not yet");
        }
        let_pass(&b, 50).await;
        assert_eq!(message_count(&ch, &q).await, 0, "the message expired");
        cleanup_queue(&b, &q).await;
    }
}

#[tokio::test]
async fn messages_are_delivered_before_their_ttl() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("ttl-deliver");
    declare_args(&ch, &q, &[("x-message-ttl", AMQPValue::LongInt(60_000))]).await;
    publish_confirmed(&ch, "", &q, b"alive").await;
    assert_eq!(get_body(&ch, &q).await.as_deref(), Some(&b"alive"[..]));
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn per_message_expiration_expires_only_that_message() {
    let b = broker_on_manual_clock().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("ttl-per-message");
    declare_queue(&ch, &q).await;
    publish_confirmed_props(&ch, "", &q, b"short", expiring("100")).await;
    publish_confirmed(&ch, "", &q, b"forever").await;
    let_pass(&b, 100).await;
    assert_eq!(message_count(&ch, &q).await, 1, "the expiring message is gone");
    assert_eq!(drain(&ch, &q).await, ["forever"]);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn per_message_expiration_is_kept_on_delivery() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("ttl-prop-kept");
    declare_queue(&ch, &q).await;
    publish_confirmed_props(&ch, "", &q, b"x", expiring("60000")).await;
    let m = within(ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })).await.unwrap().unwrap();
    assert_eq!(m.delivery.properties.expiration().as_ref().map(|s| s.as_str()), Some("60000"));
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn lower_of_queue_and_message_ttl_applies() {
    let b = broker_on_manual_clock().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    // message TTL lower than the queue's
    let q1 = unique("ttl-lower-msg");
    declare_args(&ch, &q1, &[("x-message-ttl", AMQPValue::LongInt(60_000))]).await;
    publish_confirmed_props(&ch, "", &q1, b"x", expiring("50")).await;
    // queue TTL lower than the message's
    let q2 = unique("ttl-lower-queue");
    declare_args(&ch, &q2, &[("x-message-ttl", AMQPValue::LongInt(50))]).await;
    publish_confirmed_props(&ch, "", &q2, b"y", expiring("60000")).await;
    let_pass(&b, 50).await;
    for q in [&q1, &q2] {
        assert_eq!(message_count(&ch, q).await, 0, "the message expired");
    }
    cleanup_queue(&b, &q1).await;
    cleanup_queue(&b, &q2).await;
}

/// Expired messages are only discarded when they reach the head of the
/// queue: a short-lived message behind a long-lived one is still counted,
/// but never delivered.
#[tokio::test]
async fn per_message_expiry_happens_at_the_head() {
    let b = broker_on_manual_clock().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("ttl-head");
    declare_queue(&ch, &q).await;
    publish_confirmed_props(&ch, "", &q, b"long", expiring("60000")).await;
    publish_confirmed_props(&ch, "", &q, b"short", expiring("50")).await;
    let_pass(&b, 300).await;
    assert_eq!(message_count(&ch, &q).await, 2, "the expired message is behind a live one");
    assert_eq!(drain(&ch, &q).await, ["long"]);
    assert_eq!(message_count(&ch, &q).await, 0);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn expired_messages_are_not_delivered_to_a_later_consumer() {
    let b = broker_on_manual_clock().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("ttl-later-consumer");
    declare_args(&ch, &q, &[("x-message-ttl", AMQPValue::LongInt(100))]).await;
    publish_confirmed(&ch, "", &q, b"old").await;
    let_pass(&b, 100).await;
    assert_eq!(message_count(&ch, &q).await, 0, "the message expired");
    publish_confirmed(&ch, "", &q, b"new").await;
    let mut consumer = within(ch.basic_consume(
        q.as_str().into(),
        "".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    assert_eq!(next_delivery(&mut consumer).await.data, b"new");
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn ttl_zero_drops_messages_without_a_consumer() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("ttl-zero");
    declare_args(&ch, &q, &[("x-message-ttl", AMQPValue::LongInt(0))]).await;
    publish_confirmed(&ch, "", &q, b"gone").await;
    assert_eq!(get_body(&ch, &q).await, None);
    assert_eq!(message_count(&ch, &q).await, 0);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn ttl_zero_delivers_to_a_waiting_consumer() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("ttl-zero-consumer");
    declare_args(&ch, &q, &[("x-message-ttl", AMQPValue::LongInt(0))]).await;
    let mut consumer = within(ch.basic_consume(
        q.as_str().into(),
        "".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    publish_confirmed(&ch, "", &q, b"now-or-never").await;
    assert_eq!(next_delivery(&mut consumer).await.data, b"now-or-never");
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn per_message_expiration_zero_behaves_like_ttl_zero() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("ttl-exp-zero");
    declare_queue(&ch, &q).await;
    publish_confirmed_props(&ch, "", &q, b"gone", expiring("0")).await;
    assert_eq!(get_body(&ch, &q).await, None);
    let mut consumer = within(ch.basic_consume(
        q.as_str().into(),
        "".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    publish_confirmed_props(&ch, "", &q, b"caught", expiring("0")).await;
    assert_eq!(next_delivery(&mut consumer).await.data, b"caught");
    cleanup_queue(&b, &q).await;
}

async fn expect_invalid_expiration(expiration: &str, text: &str) {
    let b = broker().await;
    let c = connect(&b).await;
    let mut ev = events(&c);
    let ch = within(c.create_channel()).await.unwrap();
    let q = declare_queue(&ch, "").await;
    publish_props(&ch, "", q.name().as_str(), b"x", expiring(expiration)).await;
    assert_amqp_error(next_error(&mut ev).await, 406, text);
    // only the channel is closed
    let ch2 = within(c.create_channel()).await.expect("connection still usable");
    declare_queue(&ch2, "").await;
}

#[tokio::test]
async fn invalid_expiration_not_an_integer() {
    expect_invalid_expiration("abc", "PRECONDITION_FAILED - invalid expiration 'abc': no_integer").await;
}

#[tokio::test]
async fn invalid_expiration_negative() {
    expect_invalid_expiration("-1", "PRECONDITION_FAILED - invalid expiration '-1': {value_negative,-1}").await;
}

#[tokio::test]
async fn invalid_expiration_trailing_garbage() {
    expect_invalid_expiration("10s", "PRECONDITION_FAILED - invalid expiration '10s': {leftover_string,\"s\"}").await;
}

#[tokio::test]
async fn queue_expires_when_unused() {
    let b = broker_on_manual_clock().await;
    let c = connect(&b).await;
    let ch = within(c.create_channel()).await.unwrap();
    let q = unique("expires");
    declare_args(&ch, &q, &[("x-expires", AMQPValue::LongInt(200))]).await;
    if on_manual_clock(&b) {
        let_pass(&b, 199).await;
        // A passive declare is a use too: it restarts the 200 ms.
        assert!(queue_exists(&c, &q).await, "not yet");
    }
    let_pass(&b, 200).await;
    assert!(!queue_exists(&c, &q).await, "unused for 200 ms: deleted");
}

#[tokio::test]
async fn queue_with_a_consumer_does_not_expire() {
    let b = broker_on_manual_clock().await;
    let c = connect(&b).await;
    let ch = within(c.create_channel()).await.unwrap();
    let q = unique("expires-consumer");
    declare_args(&ch, &q, &[("x-expires", AMQPValue::LongInt(200))]).await;
    let consumer = within(ch.basic_consume(
        q.as_str().into(),
        "ctag".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let_pass(&b, 600).await;
    assert!(queue_exists(&c, &q).await, "a queue with a consumer is in use");
    within(ch.basic_cancel("ctag".into(), BasicCancelOptions::default())).await.unwrap();
    drop(consumer);
    let_pass(&b, 200).await;
    assert!(!queue_exists(&c, &q).await, "unused for 200 ms since the cancel: deleted");
}

#[tokio::test]
async fn redeclare_resets_the_expiry_timer() {
    let b = broker_on_manual_clock().await;
    let c = connect(&b).await;
    let ch = within(c.create_channel()).await.unwrap();
    let q = unique("expires-redeclare");
    let args = [("x-expires", AMQPValue::LongInt(400))];
    declare_args(&ch, &q, &args).await;
    for _ in 0..4 {
        let_pass(&b, if on_manual_clock(&b) { 399 } else { 100 }).await;
        declare_args(&ch, &q, &args).await;
    }
    // Long after the first declare, it is still there.
    assert!(queue_exists(&c, &q).await);
    let_pass(&b, 400).await;
    assert!(!queue_exists(&c, &q).await, "unused for 400 ms: deleted");
}

#[tokio::test]
async fn consumer_sees_messages_within_ttl_in_order() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("ttl-order");
    declare_args(&ch, &q, &[("x-message-ttl", AMQPValue::LongInt(60_000))]).await;
    for i in 0..5 {
        publish_confirmed(&ch, "", &q, format!("m{i}").as_bytes()).await;
    }
    let mut consumer = within(ch.basic_consume(
        q.as_str().into(),
        "".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    for i in 0..5 {
        let d = within(consumer.next()).await.unwrap().unwrap();
        assert_eq!(d.data, format!("m{i}").as_bytes());
    }
    cleanup_queue(&b, &q).await;
}
