//! Queue argument validation: invalid `x-` argument values are refused with
//! 406 and RabbitMQ's exact texts; `x-queue-type` classic and quorum rules.
mod common;

use common::*;
use lapin::{options::*, types::AMQPValue};

/// Declare `q` with these options and arguments on a fresh channel.
async fn declare(b: &TestBroker, q: &str, opts: QueueDeclareOptions, pairs: &[(&str, AMQPValue)]) -> lapin::Result<()> {
    let (_c, ch) = connect_channel(b).await;
    within(ch.queue_declare(q.into(), opts, table(pairs))).await.map(|_| ())
}

/// Declaring with this one argument fails with "invalid arg" and `why`.
async fn invalid_arg(key: &str, value: AMQPValue, why: &str) {
    let b = broker().await;
    let q = unique("qargs");
    let r = declare(&b, &q, QueueDeclareOptions::default(), &[(key, value)]).await;
    assert_amqp_error(
        r,
        406,
        &format!("PRECONDITION_FAILED - invalid arg '{key}' for queue '{q}' in vhost '/': {why}"),
    );
    let c = connect(&b).await;
    assert!(!queue_exists(&c, &q).await, "the queue was not created");
}

#[tokio::test]
async fn message_ttl_negative() {
    invalid_arg("x-message-ttl", AMQPValue::LongInt(-1), "{value_negative,-1}").await;
}

#[tokio::test]
async fn message_ttl_not_an_integer() {
    invalid_arg("x-message-ttl", ls("100"), "\"expected integer, got longstr\"").await;
}

#[tokio::test]
async fn message_ttl_too_large() {
    invalid_arg("x-message-ttl", AMQPValue::LongLongInt(1 << 40), "{value_too_large,1099511627776}").await;
}

#[tokio::test]
async fn expires_zero() {
    invalid_arg("x-expires", AMQPValue::LongInt(0), "{value_zero,0}").await;
}

#[tokio::test]
async fn expires_negative() {
    invalid_arg("x-expires", AMQPValue::LongInt(-5), "{value_negative,-5}").await;
}

#[tokio::test]
async fn max_length_negative() {
    invalid_arg("x-max-length", AMQPValue::LongInt(-1), "{value_negative,-1}").await;
}

#[tokio::test]
async fn max_length_bytes_negative() {
    invalid_arg("x-max-length-bytes", AMQPValue::LongInt(-2), "{value_negative,-2}").await;
}

#[tokio::test]
async fn max_length_not_an_integer() {
    invalid_arg("x-max-length", AMQPValue::Double(1.5), "\"expected integer, got double\"").await;
}

#[tokio::test]
async fn overflow_unknown_value() {
    invalid_arg("x-overflow", ls("drop-tail"), "invalid_overflow").await;
}

#[tokio::test]
async fn overflow_wrong_type() {
    invalid_arg("x-overflow", AMQPValue::LongInt(1), "{unacceptable_type,signedint}").await;
}

#[tokio::test]
async fn dead_letter_routing_key_without_exchange() {
    invalid_arg("x-dead-letter-routing-key", ls("rk"), "routing_key_but_no_dlx_defined").await;
}

#[tokio::test]
async fn max_priority_too_large() {
    invalid_arg("x-max-priority", AMQPValue::LongInt(300), "{max_value_exceeded,300}").await;
}

#[tokio::test]
async fn single_active_consumer_not_a_boolean() {
    invalid_arg("x-single-active-consumer", ls("true"), "{unacceptable_type,longstr}").await;
}

#[tokio::test]
async fn unsupported_queue_type() {
    invalid_arg("x-queue-type", ls("bogus"), "\"unsupported queue type 'bogus'\"").await;
}

#[tokio::test]
async fn queue_type_wrong_type() {
    invalid_arg("x-queue-type", AMQPValue::LongInt(1), "{unacceptable_type,signedint}").await;
}

#[tokio::test]
async fn unknown_x_arguments_are_accepted() {
    let b = broker().await;
    let q = unique("qargs-unknown");
    declare(&b, &q, QueueDeclareOptions::default(), &[("x-something-else", ls("whatever")), ("plain", ls("v"))])
        .await
        .unwrap();
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn valid_arguments_are_accepted() {
    let b = broker().await;
    let q = unique("qargs-valid");
    declare(
        &b,
        &q,
        QueueDeclareOptions::default(),
        &[
            ("x-message-ttl", AMQPValue::LongInt(1000)),
            ("x-expires", AMQPValue::LongInt(60_000)),
            ("x-max-length", AMQPValue::LongInt(10)),
            ("x-max-length-bytes", AMQPValue::LongLongInt(1 << 20)),
            ("x-overflow", ls("reject-publish-dlx")),
            ("x-dead-letter-exchange", ls("")),
            ("x-dead-letter-routing-key", ls("elsewhere")),
            ("x-max-priority", AMQPValue::ShortShortUInt(10)),
            ("x-single-active-consumer", AMQPValue::Boolean(true)),
            ("x-queue-type", ls("classic")),
        ],
    )
    .await
    .unwrap();
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn redeclare_with_a_different_argument_is_inequivalent() {
    let b = broker().await;
    let q = unique("qargs-ineq");
    declare(&b, &q, QueueDeclareOptions::default(), &[("x-message-ttl", AMQPValue::LongInt(100))]).await.unwrap();
    // the same value, even with another integer type, is equivalent
    declare(&b, &q, QueueDeclareOptions::default(), &[("x-message-ttl", AMQPValue::LongLongInt(100))]).await.unwrap();
    let r = declare(&b, &q, QueueDeclareOptions::default(), &[("x-message-ttl", AMQPValue::LongInt(200))]).await;
    assert_amqp_error(
        r,
        406,
        &format!(
            "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '{q}' in vhost '/': \
             received '200' but current is '100'"
        ),
    );
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn passive_declare_ignores_arguments() {
    let b = broker().await;
    let q = unique("qargs-passive");
    declare(&b, &q, QueueDeclareOptions::default(), &[("x-max-length", AMQPValue::LongInt(5))]).await.unwrap();
    declare(
        &b,
        &q,
        QueueDeclareOptions { passive: true, ..Default::default() },
        &[("x-max-length", AMQPValue::LongInt(7))],
    )
    .await
    .unwrap();
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn classic_queue_type_is_accepted() {
    let b = broker().await;
    let q = unique("qtype-classic");
    declare(&b, &q, QueueDeclareOptions::default(), &[("x-queue-type", ls("classic"))]).await.unwrap();
    let (_c, ch) = connect_confirm_channel(&b).await;
    publish_confirmed(&ch, "", &q, b"c").await;
    assert_eq!(drain(&ch, &q).await, ["c"]);
    cleanup_queue(&b, &q).await;
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions { durable: true, ..Default::default() }
}

#[tokio::test]
async fn quorum_queue_durable_is_accepted() {
    let b = broker().await;
    let q = unique("qtype-quorum");
    declare(&b, &q, durable(), &[("x-queue-type", ls("quorum"))]).await.unwrap();
    let (_c, ch) = connect_confirm_channel(&b).await;
    publish_confirmed(&ch, "", &q, b"qq").await;
    // quorum queues count redeliveries in x-delivery-count
    let m = within(ch.basic_get(q.as_str().into(), BasicGetOptions::default())).await.unwrap().unwrap();
    assert_eq!(m.delivery.data, b"qq");
    within(ch.basic_reject(m.delivery.delivery_tag, BasicRejectOptions { requeue: true })).await.unwrap();
    let m = within(ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })).await.unwrap().unwrap();
    assert!(m.delivery.redelivered);
    let count = m.delivery.properties.headers().as_ref().and_then(|h| h.inner().get("x-delivery-count").cloned());
    assert_eq!(count, Some(AMQPValue::LongLongInt(1)));
    cleanup_queue(&b, &q).await;
}

async fn invalid_quorum(opts: QueueDeclareOptions, property: &str) {
    let b = broker().await;
    let q = unique("qtype-quorum-bad");
    let r = declare(&b, &q, opts, &[("x-queue-type", ls("quorum"))]).await;
    assert_amqp_error(
        r,
        406,
        &format!("PRECONDITION_FAILED - invalid property '{property}' for queue '{q}' in vhost '/'"),
    );
}

#[tokio::test]
async fn quorum_queue_must_be_durable() {
    invalid_quorum(QueueDeclareOptions::default(), "non-durable").await;
}

#[tokio::test]
async fn quorum_queue_cannot_be_auto_delete() {
    invalid_quorum(QueueDeclareOptions { durable: true, auto_delete: true, ..Default::default() }, "auto-delete").await;
}

#[tokio::test]
async fn quorum_queue_cannot_be_exclusive() {
    invalid_quorum(QueueDeclareOptions { durable: true, exclusive: true, ..Default::default() }, "exclusive-owner")
        .await;
}

#[tokio::test]
async fn queue_type_cannot_change_on_redeclare() {
    let b = broker().await;
    let q = unique("qtype-change");
    declare(&b, &q, durable(), &[("x-queue-type", ls("quorum"))]).await.unwrap();
    let r = declare(&b, &q, durable(), &[("x-queue-type", ls("classic"))]).await;
    assert_amqp_error(
        r,
        406,
        &format!(
            "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '{q}' in vhost '/': \
             received 'classic' but current is 'quorum'"
        ),
    );
    cleanup_queue(&b, &q).await;
}
