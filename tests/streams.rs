//! Stream queues (`x-queue-type=stream`) over AMQP 0-9-1, against the
//! behaviour of RabbitMQ 3.10.8 recorded in docs/STREAMS-reference.md:
//! declare rules and texts, publishing with confirms, consuming from an
//! offset with credit, the operations a stream refuses, restarts.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Consumer};

const PF: &str = "PRECONDITION_FAILED -";

fn stream_args(extra: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = table(extra);
    t.insert("x-queue-type".into(), ls("stream"));
    t
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions { durable: true, ..Default::default() }
}

async fn declare_stream_with(
    ch: &Channel,
    name: &str,
    opts: QueueDeclareOptions,
    extra: &[(&str, AMQPValue)],
) -> lapin::Result<lapin::Queue> {
    within(ch.queue_declare(name.into(), opts, stream_args(extra))).await
}

async fn declare_stream(ch: &Channel, name: &str) -> lapin::Queue {
    declare_stream_with(ch, name, durable(), &[]).await.expect("declare stream")
}

/// Declares on a fresh channel of `b` and returns the outcome.
async fn try_declare(
    b: &TestBroker,
    name: &str,
    opts: QueueDeclareOptions,
    extra: &[(&str, AMQPValue)],
) -> lapin::Result<lapin::Queue> {
    let (_c, ch) = connect_channel(b).await;
    declare_stream_with(&ch, name, opts, extra).await
}

/// basic.qos(prefetch) then basic.consume with `x-stream-offset` = `offset`.
async fn consume_from(ch: &Channel, q: &str, prefetch: u16, offset: Option<AMQPValue>) -> Consumer {
    within(ch.basic_qos(prefetch, BasicQosOptions::default())).await.unwrap();
    let mut args = FieldTable::default();
    if let Some(o) = offset {
        args.insert("x-stream-offset".into(), o);
    }
    within(ch.basic_consume(q.into(), "".into(), BasicConsumeOptions::default(), args)).await.expect("consume")
}

fn offset_of(d: &lapin::message::Delivery) -> i64 {
    let headers = d.properties.headers().as_ref().expect("headers");
    match headers.inner().get("x-stream-offset") {
        Some(AMQPValue::LongLongInt(n)) => *n,
        other => panic!("x-stream-offset must be an AMQP long long, got {other:?}"),
    }
}

/// The next `n` deliveries as (body, offset), each acked.
async fn read(consumer: &mut Consumer, n: usize) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let d = next_delivery(consumer).await;
        assert!(!d.redelivered);
        out.push((String::from_utf8(d.data.clone()).unwrap(), offset_of(&d)));
        within(d.ack(BasicAckOptions::default())).await.unwrap();
    }
    out
}

fn expected(range: std::ops::Range<i64>) -> Vec<(String, i64)> {
    range.map(|i| (format!("m{i}"), i)).collect()
}

/// A stream holding m0..m{n-1}, published with confirms.
async fn filled(b: &TestBroker, n: usize) -> String {
    let q = unique("stream");
    let (_c, ch) = connect_confirm_channel(b).await;
    declare_stream(&ch, &q).await;
    for i in 0..n {
        publish_confirmed(&ch, "", &q, format!("m{i}").as_bytes()).await;
    }
    q
}

#[tokio::test]
async fn a_durable_stream_is_declared_redeclared_and_passively_declared_with_rabbitmqs_counts() {
    let b = broker().await;
    let q = filled(&b, 3).await;
    let (_c, ch) = connect_channel(&b).await;
    let again = declare_stream(&ch, &q).await;
    assert_eq!((again.message_count(), again.consumer_count()), (0, 0), "a stream's declare-ok says 0 messages");
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let p = within(ch.queue_declare(q.as_str().into(), passive, FieldTable::default())).await.unwrap();
    assert_eq!(p.message_count(), 0);
    let r = within(ch.queue_declare(q.as_str().into(), durable(), FieldTable::default())).await;
    assert_amqp_error(
        r,
        406,
        &format!("{PF} inequivalent arg 'x-queue-type' for queue '{q}' in vhost '/': received none but current is the value 'stream' of type 'longstr'"),
    );
    let (_c, ch) = connect_channel(&b).await;
    let cq = unique("classic");
    within(ch.queue_declare(cq.as_str().into(), durable(), FieldTable::default())).await.unwrap();
    assert_amqp_error(
        declare_stream_with(&ch, &cq, durable(), &[]).await,
        406,
        &format!("{PF} inequivalent arg 'x-queue-type' for queue '{cq}' in vhost '/': received the value 'stream' of type 'longstr' but current is none"),
    );
}

#[tokio::test]
async fn declare_properties_a_stream_refuses_get_rabbitmqs_texts() {
    let b = broker().await;
    let cases = [
        (QueueDeclareOptions::default(), "non-durable"),
        (QueueDeclareOptions { durable: true, exclusive: true, ..Default::default() }, "exclusive-owner"),
        (QueueDeclareOptions { durable: true, auto_delete: true, ..Default::default() }, "auto-delete"),
    ];
    for (opts, prop) in cases {
        let q = unique("stream-prop");
        assert_amqp_error(
            try_declare(&b, &q, opts, &[]).await,
            406,
            &format!("{PF} invalid property '{prop}' for queue '{q}' in vhost '/'"),
        );
    }
    assert_amqp_error(
        try_declare(&b, "", durable(), &[]).await,
        406,
        &format!("{PF} Cannot declare a server-named queue for type rabbit_stream_queue"),
    );
}

#[tokio::test]
async fn arguments_of_other_queue_types_are_refused_and_stream_arguments_validated() {
    let b = broker().await;
    for (key, value) in [
        ("x-max-priority", AMQPValue::LongInt(10)),
        ("x-message-ttl", AMQPValue::LongInt(1000)),
        ("x-max-length", AMQPValue::LongInt(10)),
        ("x-overflow", ls("reject-publish")),
        ("x-dead-letter-exchange", ls("dlx")),
        ("x-single-active-consumer", AMQPValue::Boolean(true)),
        ("x-expires", AMQPValue::LongInt(100000)),
    ] {
        let q = unique("stream-arg");
        assert_amqp_error(
            try_declare(&b, &q, durable(), &[(key, value)]).await,
            406,
            &format!("{PF} invalid arg '{key}' for queue '{q}' in vhost '/' of queue type rabbit_stream_queue"),
        );
    }
    for (key, value, why) in [
        ("x-max-age", ls("10x"), "invalid_max_age"),
        ("x-max-age", ls("0s"), "invalid_max_age"),
        ("x-max-age", ls("1d"), "invalid_max_age"),
        ("x-max-age", ls("1H"), "invalid_max_age"),
        ("x-max-age", ls("10"), "invalid_max_age"),
        ("x-max-age", ls("abc"), "invalid_max_age"),
        ("x-max-age", ls(""), "invalid_max_age"),
        ("x-max-age", AMQPValue::LongInt(10), "{unacceptable_type,signedint}"),
        ("x-max-length-bytes", ls("1000"), "\"expected integer, got longstr\""),
        ("x-max-length-bytes", AMQPValue::LongInt(-1), "{value_negative,-1}"),
        ("x-initial-cluster-size", AMQPValue::LongInt(0), "{value_zero,0}"),
        ("x-stream-max-segment-size-bytes", ls("1000"), "\"expected integer, got longstr\""),
        ("x-queue-leader-locator", ls("bogus"), "invalid_queue_locator_arg"),
    ] {
        let q = unique("stream-arg");
        assert_amqp_error(
            try_declare(&b, &q, durable(), &[(key, value)]).await,
            406,
            &format!("{PF} invalid arg '{key}' for queue '{q}' in vhost '/': {why}"),
        );
    }
    let q = unique("stream-arg");
    assert_amqp_error(
        try_declare(&b, &q, durable(), &[("x-stream-max-segment-size-bytes", AMQPValue::LongLongInt(5_000_000_000))])
            .await,
        406,
        &format!("{PF} Exceeded max value for x-stream-max-segment-size-bytes"),
    );
    for (key, value) in [
        ("x-max-length-bytes", AMQPValue::LongInt(1_000_000)),
        ("x-max-length-bytes", AMQPValue::LongInt(0)),
        ("x-max-age", ls("7D")),
        ("x-max-age", ls("12h")),
        ("x-max-age", ls("30m")),
        ("x-max-age", ls("10s")),
        ("x-max-age", ls("1Y")),
        ("x-max-age", ls("2M")),
        ("x-stream-max-segment-size-bytes", AMQPValue::LongInt(1000)),
        ("x-initial-cluster-size", AMQPValue::LongInt(3)),
        ("x-queue-leader-locator", ls("client-local")),
        ("x-bogus-arg", ls("x")),
    ] {
        let q = unique("stream-arg");
        try_declare(&b, &q, durable(), &[(key, value.clone())])
            .await
            .unwrap_or_else(|e| panic!("{key}={value:?}: {e}"));
    }
}

#[tokio::test]
async fn redeclaring_a_stream_compares_its_retention_arguments() {
    let b = broker().await;
    let q = unique("stream-eq");
    try_declare(&b, &q, durable(), &[("x-max-age", ls("7D"))]).await.unwrap();
    try_declare(&b, &q, durable(), &[("x-max-age", ls("7D"))]).await.unwrap();
    assert_amqp_error(
        try_declare(&b, &q, durable(), &[("x-max-age", ls("1D"))]).await,
        406,
        &format!("{PF} inequivalent arg 'x-max-age' for queue '{q}' in vhost '/': received '1D' but current is '7D'"),
    );
    assert_amqp_error(
        try_declare(&b, &q, durable(), &[]).await,
        406,
        &format!(
            "{PF} inequivalent arg 'x-max-age' for queue '{q}' in vhost '/': received none but current is the value '7D' of type 'longstr'"
        ),
    );
}

#[tokio::test]
async fn confirmed_publishes_are_read_from_first_with_their_offsets_replacing_a_publishers_header() {
    let b = broker().await;
    let q = filled(&b, 5).await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let mut headers = FieldTable::default();
    headers.insert("x-stream-offset".into(), ls("fake"));
    headers.insert("a".into(), AMQPValue::LongInt(1));
    publish_confirmed_props(&ch, "", &q, b"m5", BasicProperties::default().with_headers(headers)).await;
    let mut consumer = consume_from(&ch, &q, 10, Some(ls("first"))).await;
    let d = read(&mut consumer, 6).await;
    assert_eq!(d, expected(0..6));
    // The publisher's other headers pass through.
    let mut again = consume_from(&ch, &q, 10, Some(AMQPValue::LongInt(5))).await;
    let d = next_delivery(&mut again).await;
    let h = d.properties.headers().as_ref().unwrap();
    assert_eq!(h.inner().get("a"), Some(&AMQPValue::LongInt(1)));
    assert_eq!(offset_of(&d), 5);
}

#[tokio::test]
async fn streams_take_messages_through_bound_exchanges() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("stream-x");
    declare_stream(&ch, &q).await;
    let fanout = unique("stream-fanout");
    within(ch.exchange_declare(
        fanout.as_str().into(),
        lapin::ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    within(ch.queue_bind(
        q.as_str().into(),
        fanout.as_str().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    within(ch.queue_bind(
        q.as_str().into(),
        "amq.direct".into(),
        "k".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    publish_confirmed(&ch, &fanout, "any", b"m0").await;
    publish_confirmed(&ch, "amq.direct", "k", b"m1").await;
    let mut consumer = consume_from(&ch, &q, 10, Some(ls("first"))).await;
    let d = next_delivery(&mut consumer).await;
    assert_eq!((d.exchange.as_str(), d.routing_key.as_str()), (fanout.as_str(), "any"), "the publish's own");
    assert_eq!(offset_of(&d), 0);
    let d = next_delivery(&mut consumer).await;
    assert_eq!((&d.data[..], offset_of(&d)), (&b"m1"[..], 1));
}

#[tokio::test]
async fn a_stream_consumer_needs_a_prefetch() {
    let b = broker().await;
    let q = filled(&b, 1).await;
    for qos in [None, Some((0, false)), Some((10, true))] {
        let (_c, ch) = connect_channel(&b).await;
        if let Some((n, global)) = qos {
            within(ch.basic_qos(n, BasicQosOptions { global })).await.unwrap();
        }
        let r = within(ch.basic_consume(
            q.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ))
        .await;
        assert_amqp_error(r, 406, &format!("{PF} consumer prefetch count is not set for 'queue '{q}' in vhost '/''"));
    }
}

#[tokio::test]
async fn offsets_first_last_next_numeric_timestamp_and_interval() {
    let b = broker().await;
    let q = filled(&b, 6).await;
    let (c, ch) = connect_channel(&b).await;
    // Every confirmed publish was its own chunk: `last` is m5.
    let mut last = consume_from(&ch, &q, 10, Some(ls("last"))).await;
    assert_eq!(read(&mut last, 1).await, expected(5..6));
    let mut numeric = consume_from(&ch, &q, 10, Some(AMQPValue::ShortShortInt(3))).await;
    assert_eq!(read(&mut numeric, 3).await, expected(3..6));
    let mut big = consume_from(&ch, &q, 10, Some(AMQPValue::LongLongInt(4))).await;
    assert_eq!(read(&mut big, 2).await, expected(4..6));
    let mut negative = consume_from(&ch, &q, 10, Some(AMQPValue::LongInt(-5))).await;
    assert_eq!(read(&mut negative, 6).await, expected(0..6));
    let mut epoch = consume_from(&ch, &q, 10, Some(AMQPValue::Timestamp(0))).await;
    assert_eq!(read(&mut epoch, 6).await, expected(0..6));
    let mut hour = consume_from(&ch, &q, 10, Some(ls("1h"))).await;
    assert_eq!(read(&mut hour, 6).await, expected(0..6));
    let mut future = consume_from(&ch, &q, 10, Some(AMQPValue::Timestamp(4_102_444_800))).await;
    let mut next = consume_from(&ch, &q, 10, Some(ls("next"))).await;
    let mut default = consume_from(&ch, &q, 10, None).await;
    let mut past_end = consume_from(&ch, &q, 10, Some(AMQPValue::LongInt(7))).await;
    assert_no_delivery(&mut next, 200).await;
    assert_no_delivery(&mut default, 50).await;
    let (_pc, pch) = connect_confirm_channel(&b).await;
    publish_confirmed(&pch, "", &q, b"m6").await;
    publish_confirmed(&pch, "", &q, b"m7").await;
    assert_eq!(read(&mut next, 2).await, expected(6..8), "new messages wake the consumer");
    assert_eq!(read(&mut default, 2).await, expected(6..8));
    assert_eq!(read(&mut future, 2).await, expected(6..8));
    assert_eq!(read(&mut past_end, 1).await, expected(7..8), "a numeric offset past the end waits for it");
    drop(c);
    let (_c, ch) = connect_channel(&b).await;
    within(ch.basic_qos(10, BasicQosOptions::default())).await.unwrap();
    let r = within(ch.basic_consume(
        q.as_str().into(),
        "".into(),
        BasicConsumeOptions::default(),
        table(&[("x-stream-offset", ls("5"))]),
    ))
    .await;
    assert_amqp_error(
        r,
        406,
        &format!("{PF} invalid arg 'x-stream-offset' for queue '{q}' in vhost '/': {{invalid_stream_offset_arg,{{longstr,<<\"5\">>}}}}"),
    );
}

#[tokio::test]
async fn acks_only_return_credit_and_every_consumer_reads_everything() {
    let b = broker().await;
    let q = filled(&b, 10).await;
    let (_c, ch) = connect_channel(&b).await;
    let mut c1 = consume_from(&ch, &q, 2, Some(ls("first"))).await;
    let d1 = next_delivery(&mut c1).await;
    let d2 = next_delivery(&mut c1).await;
    assert_eq!((offset_of(&d1), offset_of(&d2)), (0, 1));
    assert_no_delivery(&mut c1, 200).await;
    within(d1.ack(BasicAckOptions::default())).await.unwrap();
    let d3 = next_delivery(&mut c1).await;
    assert_eq!(offset_of(&d3), 2);
    assert_no_delivery(&mut c1, 100).await;
    within(d3.ack(BasicAckOptions { multiple: true })).await.unwrap();
    let got: Vec<i64> = vec![offset_of(&next_delivery(&mut c1).await), offset_of(&next_delivery(&mut c1).await)];
    assert_eq!(got, vec![3, 4]);
    // Acks removed nothing: others read it all, each on its own.
    let (_c2, ch2) = connect_channel(&b).await;
    let mut a = consume_from(&ch2, &q, 20, Some(ls("first"))).await;
    let mut z = consume_from(&ch2, &q, 20, Some(AMQPValue::LongInt(7))).await;
    assert_eq!(read(&mut a, 10).await, expected(0..10));
    assert_eq!(read(&mut z, 3).await, expected(7..10));
}

#[tokio::test]
async fn a_global_prefetch_does_not_limit_a_stream_consumer() {
    let b = broker().await;
    let q = filled(&b, 5).await;
    let (_c, ch) = connect_channel(&b).await;
    within(ch.basic_qos(2, BasicQosOptions { global: true })).await.unwrap();
    let mut consumer = consume_from(&ch, &q, 10, Some(ls("first"))).await;
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(offset_of(&next_delivery(&mut consumer).await));
    }
    assert_eq!(got, vec![0, 1, 2, 3, 4], "never acked, all delivered");
}

#[tokio::test]
async fn mandatory_publishes_transactions_and_acks_after_cancel_work_as_for_queues() {
    let b = broker().await;
    let q = unique("stream-tx");
    let (_c, ch) = connect_confirm_channel(&b).await;
    declare_stream(&ch, &q).await;
    let confirm = within(ch.basic_publish(
        "".into(),
        q.as_str().into(),
        BasicPublishOptions { mandatory: true, ..Default::default() },
        b"m0",
        BasicProperties::default(),
    ))
    .await
    .unwrap();
    let confirmation = within(confirm).await.unwrap();
    assert!(confirmation.is_ack() && confirmation.take_message().is_none(), "routed: no basic.return");
    let (_tc, tch) = connect_channel(&b).await;
    within(tch.tx_select()).await.unwrap();
    publish(&tch, "", &q, b"m1").await;
    within(tch.tx_commit()).await.unwrap();
    publish(&tch, "", &q, b"rolled back").await;
    within(tch.tx_rollback()).await.unwrap();
    publish(&tch, "", &q, b"m2").await;
    within(tch.tx_commit()).await.unwrap();
    let (_rc, rch) = connect_channel(&b).await;
    let mut consumer = consume_from(&rch, &q, 10, Some(ls("first"))).await;
    let got: Vec<lapin::message::Delivery> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(next_delivery(&mut consumer).await);
        }
        v
    };
    let bodies: Vec<&[u8]> = got.iter().map(|d| &d.data[..]).collect();
    assert_eq!(bodies, vec![&b"m0"[..], b"m1", b"m2"]);
    within(rch.basic_cancel(consumer.tag(), BasicCancelOptions::default())).await.unwrap();
    // Acking a cancelled consumer's deliveries is fine.
    within(got[2].ack(BasicAckOptions { multiple: true })).await.unwrap();
    assert!(rch.status().connected(), "the channel stays open");
    let q2 = within(rch.queue_declare(q.as_str().into(), durable(), stream_args(&[]))).await.unwrap();
    assert_eq!(q2.message_count(), 0);
}

#[tokio::test]
async fn retention_by_size_from_the_argument_or_a_policy_drops_whole_old_segments() {
    if external() {
        return;
    }
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let by_arg = unique("stream-ret-arg");
    let by_policy = unique("stream-ret-pol");
    let segment = ("x-stream-max-segment-size-bytes", AMQPValue::LongInt(4000));
    declare_stream_with(&ch, &by_arg, durable(), &[segment.clone(), ("x-max-length-bytes", AMQPValue::LongInt(8000))])
        .await
        .unwrap();
    declare_stream_with(&ch, &by_policy, durable(), &[segment]).await.unwrap();
    let definition = serde_json::json!({"max-length-bytes": 8000});
    let api = b.server().unwrap().broker();
    api.set_policy(warren::store::definitions::PolicyDef {
        vhost: "/".into(),
        name: "stream-retention".into(),
        pattern: format!("^{by_policy}$"),
        apply_to: "streams".into(),
        definition: definition.as_object().unwrap().clone(),
        priority: 0,
    })
    .unwrap();
    let body = vec![b'x'; 1000];
    for _ in 0..40 {
        publish_confirmed(&ch, "", &by_arg, &body).await;
        publish_confirmed(&ch, "", &by_policy, &body).await;
    }
    for q in [&by_arg, &by_policy] {
        let mut consumer = consume_from(&ch, q, 100, Some(ls("first"))).await;
        let first = offset_of(&next_delivery(&mut consumer).await);
        assert!(first > 20, "{q}: old segments went, reading starts at {first}");
    }
}

/// Runs `op` on a fresh connection and returns the connection-level error.
async fn connection_error(b: &TestBroker, q: &str, op: &str) -> (u16, String) {
    let (c, ch) = connect_channel(b).await;
    let mut ev = events(&c);
    let r: lapin::Result<()> = match op {
        "get" => within(ch.basic_get(q.into(), BasicGetOptions::default())).await.map(|_| ()),
        "purge" => within(ch.queue_purge(q.into(), QueuePurgeOptions::default())).await.map(|_| ()),
        "no-ack" => {
            within(ch.basic_qos(10, BasicQosOptions::default())).await.unwrap();
            within(ch.basic_consume(
                q.into(),
                "".into(),
                BasicConsumeOptions { no_ack: true, ..Default::default() },
                table(&[("x-stream-offset", ls("first"))]),
            ))
            .await
            .map(|_| ())
        }
        "nack" | "reject" => {
            let mut consumer = consume_from(&ch, q, 10, Some(ls("first"))).await;
            let d = next_delivery(&mut consumer).await;
            if op == "nack" {
                let _ = d.nack(BasicNackOptions { requeue: true, ..Default::default() }).await;
            } else {
                let _ = d.reject(BasicRejectOptions { requeue: false }).await;
            }
            next_error(&mut ev).await
        }
        _ => unreachable!(),
    };
    let e = r.expect_err("the broker must refuse this");
    let (code, text) = amqp_error(&e);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!c.status().connected(), "{op}: the whole connection is closed");
    (code, text)
}

#[tokio::test]
async fn operations_a_stream_does_not_have_close_the_connection_with_540() {
    let b = broker().await;
    let q = filled(&b, 2).await;
    let text = |what: &str| format!("NOT_IMPLEMENTED - {what} not supported by stream queues queue '{q}' in vhost '/'");
    assert_eq!(connection_error(&b, &q, "get").await, (540, text("basic.get")));
    assert_eq!(connection_error(&b, &q, "purge").await, (540, text("queue.purge")));
    assert_eq!(connection_error(&b, &q, "no-ack").await, (540, text("automatic acknowledgement")));
    assert_eq!(connection_error(&b, &q, "nack").await, (540, text("basic.nack and basic.reject")));
    assert_eq!(connection_error(&b, &q, "reject").await, (540, text("basic.nack and basic.reject")));
    // Nothing was removed.
    let (_c, ch) = connect_channel(&b).await;
    let mut consumer = consume_from(&ch, &q, 10, Some(ls("first"))).await;
    assert_eq!(read(&mut consumer, 2).await, expected(0..2));
}

#[tokio::test]
async fn x_stream_offset_on_a_classic_queue_is_refused() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let q = unique("classic");
    declare_queue(&ch, &q).await;
    let r = within(ch.basic_consume(
        q.as_str().into(),
        "".into(),
        BasicConsumeOptions::default(),
        table(&[("x-stream-offset", ls("first"))]),
    ))
    .await;
    assert_amqp_error(
        r,
        406,
        &format!("{PF} invalid arg 'x-stream-offset' for queue '{q}' in vhost '/' of queue type rabbit_classic_queue"),
    );
}

#[tokio::test]
async fn deleting_a_stream_cancels_its_consumers() {
    let b = broker().await;
    let q = filled(&b, 1).await;
    let (_c, ch) = connect_channel(&b).await;
    let mut consumer = consume_from(&ch, &q, 10, Some(ls("first"))).await;
    assert_eq!(read(&mut consumer, 1).await, expected(0..1));
    let (_c2, ch2) = connect_channel(&b).await;
    let n = within(ch2.queue_delete(q.as_str().into(), QueueDeleteOptions { if_empty: true, ..Default::default() }))
        .await
        .unwrap();
    assert_eq!(n, 0, "RabbitMQ's delete-ok count for a stream");
    assert!(within(consumer.next()).await.is_none(), "basic.cancel ends the consumer");
    assert!(!queue_exists(&connect(&b).await, &q).await);
}

fn data_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("warren-streams-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn on_disk(dir: &Path) -> warren::Config {
    warren::Config { data_dir: Some(dir.to_owned()), ..warren::Config::ephemeral() }
}

#[tokio::test]
async fn a_stream_and_its_offsets_survive_a_restart() {
    if external() {
        return;
    }
    let dir = data_dir("restart");
    let q = "events";
    {
        let b = broker_with_config(on_disk(&dir)).await;
        let (_c, ch) = connect_confirm_channel(&b).await;
        declare_stream_with(&ch, q, durable(), &[("x-max-age", ls("7D"))]).await.unwrap();
        for i in 0..3 {
            publish_confirmed(&ch, "", q, format!("m{i}").as_bytes()).await;
        }
        let mut b = b;
        within(b.take_server().unwrap().shutdown()).await;
    }
    let b = broker_with_config(on_disk(&dir)).await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    // The definition came back, with its arguments.
    declare_stream_with(&ch, q, durable(), &[("x-max-age", ls("7D"))]).await.unwrap();
    let mut next = consume_from(&ch, q, 10, Some(ls("next"))).await;
    publish_confirmed(&ch, "", q, b"m3").await;
    assert_eq!(read(&mut next, 1).await, expected(3..4), "next resolves against the recovered log");
    let (_c2, ch2) = connect_channel(&b).await;
    let mut all = consume_from(&ch2, q, 10, Some(ls("first"))).await;
    assert_eq!(read(&mut all, 4).await, expected(0..4));
    let mut from = consume_from(&ch2, q, 10, Some(AMQPValue::LongInt(2))).await;
    assert_eq!(read(&mut from, 2).await, expected(2..4));
    let mut b = b;
    within(b.take_server().unwrap().shutdown()).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_log_of_a_stream_no_definition_names_is_removed_at_start() {
    if external() {
        return;
    }
    let dir = data_dir("orphan");
    {
        let mut b = broker_with_config(on_disk(&dir)).await;
        let (_c, ch) = connect_confirm_channel(&b).await;
        declare_stream(&ch, "kept").await;
        publish_confirmed(&ch, "", "kept", b"m0").await;
        drop(ch);
        drop(_c);
        within(b.take_server().unwrap().shutdown()).await;
    }
    let orphan = dir.join("streams").join("orphan");
    std::fs::create_dir_all(&orphan).unwrap();
    std::fs::write(orphan.join("meta.json"), r#"{"vhost": "/", "name": "gone", "type": "stream"}"#).unwrap();
    let mut b = broker_with_config(on_disk(&dir)).await;
    assert!(!orphan.exists(), "an undefined stream's log goes at start");
    let (_c, ch) = connect_channel(&b).await;
    let mut consumer = consume_from(&ch, "kept", 10, Some(ls("first"))).await;
    assert_eq!(read(&mut consumer, 1).await, expected(0..1), "a defined one stays");
    drop(consumer);
    drop(ch);
    drop(_c);
    within(b.take_server().unwrap().shutdown()).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_management_api_lists_a_stream_with_its_type_and_message_count() {
    if external() {
        return;
    }
    let b = broker_with(|c| c.management_port = Some(0)).await;
    let q = filled(&b, 3).await;
    let api = common::http::management(&b);
    let path = format!("/api/queues/%2F/{}", common::http::seg(&q));
    let v = common::http::blocking(move || api.json(&path)).await;
    assert_eq!(v["type"], "stream");
    assert_eq!(v["messages"], 3);
    assert_eq!(v["arguments"]["x-queue-type"], "stream");
}

fn temp_stream_dirs() -> Vec<PathBuf> {
    let prefix = format!("warren-streams-{}-", std::process::id());
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

#[tokio::test]
async fn in_memory_streams_live_in_a_temporary_directory_removed_at_shutdown() {
    if external() {
        return;
    }
    let before = temp_stream_dirs();
    let mut b = broker().await;
    assert_eq!(temp_stream_dirs(), before, "made only at the first stream declare");
    let q = filled(&b, 2).await;
    let made: Vec<PathBuf> = temp_stream_dirs().into_iter().filter(|d| !before.contains(d)).collect();
    assert_eq!(made.len(), 1, "{made:?}");
    let (_c, ch) = connect_channel(&b).await;
    let mut consumer = consume_from(&ch, &q, 10, Some(ls("first"))).await;
    assert_eq!(read(&mut consumer, 2).await, expected(0..2));
    drop(consumer);
    drop(ch);
    drop(_c);
    within(b.take_server().unwrap().shutdown()).await;
    assert!(!made[0].exists(), "removed at shutdown");
}
