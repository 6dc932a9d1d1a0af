//! Consumer extensions: consumer priorities (`x-priority`), single active
//! consumer (`x-single-active-consumer`) and the server-sent basic.cancel
//! when a consumed queue is deleted (consumer cancel notification).
mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::{
    options::*,
    types::{AMQPValue, FieldTable},
    Channel, Connection, Consumer,
};

async fn consume(ch: &Channel, q: &str, tag: &str, no_ack: bool, args: FieldTable) -> Consumer {
    within(ch.basic_consume(q.into(), tag.into(), BasicConsumeOptions { no_ack, ..Default::default() }, args))
        .await
        .expect("basic_consume")
}

async fn channel(c: &Connection) -> Channel {
    within(c.create_channel()).await.expect("create_channel")
}

fn body(d: &lapin::message::Delivery) -> String {
    String::from_utf8(d.data.clone()).unwrap()
}

#[tokio::test]
async fn higher_priority_consumer_gets_all_messages() {
    let b = broker().await;
    let c = connect(&b).await;
    let pch = confirm_channel(&c).await;
    let q = unique("cprio");
    declare_queue(&pch, &q).await;
    let (lo_ch, hi_ch) = (channel(&c).await, channel(&c).await);
    let mut lo = consume(&lo_ch, &q, "lo", true, table(&[("x-priority", AMQPValue::LongInt(1))])).await;
    let mut hi = consume(&hi_ch, &q, "hi", true, table(&[("x-priority", AMQPValue::LongInt(10))])).await;
    for i in 0..6 {
        publish_confirmed(&pch, "", &q, format!("m{i}").as_bytes()).await;
    }
    for i in 0..6 {
        assert_eq!(body(&next_delivery(&mut hi).await), format!("m{i}"));
    }
    assert_no_delivery(&mut lo, 200).await;
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn negative_priority_is_below_the_default() {
    let b = broker().await;
    let c = connect(&b).await;
    let pch = confirm_channel(&c).await;
    let q = unique("cprio-neg");
    declare_queue(&pch, &q).await;
    let (neg_ch, def_ch) = (channel(&c).await, channel(&c).await);
    let mut neg = consume(&neg_ch, &q, "neg", true, table(&[("x-priority", AMQPValue::LongInt(-5))])).await;
    let mut def = consume(&def_ch, &q, "def", true, FieldTable::default()).await;
    for i in 0..3 {
        publish_confirmed(&pch, "", &q, format!("m{i}").as_bytes()).await;
    }
    for i in 0..3 {
        assert_eq!(body(&next_delivery(&mut def).await), format!("m{i}"));
    }
    assert_no_delivery(&mut neg, 200).await;
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn blocked_high_priority_consumer_lets_lower_ones_get_messages() {
    let b = broker().await;
    let c = connect(&b).await;
    let pch = confirm_channel(&c).await;
    let q = unique("cprio-blocked");
    declare_queue(&pch, &q).await;
    let (lo_ch, hi_ch) = (channel(&c).await, channel(&c).await);
    within(hi_ch.basic_qos(1, BasicQosOptions::default())).await.unwrap();
    let mut lo = consume(&lo_ch, &q, "lo", true, table(&[("x-priority", AMQPValue::LongInt(1))])).await;
    let mut hi = consume(&hi_ch, &q, "hi", false, table(&[("x-priority", AMQPValue::LongInt(10))])).await;
    for i in 0..3 {
        publish_confirmed(&pch, "", &q, format!("m{i}").as_bytes()).await;
    }
    let first = next_delivery(&mut hi).await;
    assert_eq!(body(&first), "m0");
    assert_eq!(body(&next_delivery(&mut lo).await), "m1");
    assert_eq!(body(&next_delivery(&mut lo).await), "m2");
    assert_no_delivery(&mut hi, 100).await;
    // once it has capacity again, the high-priority consumer is preferred
    within(hi_ch.basic_ack(first.delivery_tag, BasicAckOptions::default())).await.unwrap();
    // the ack and the next publish travel on different channels: a
    // synchronous round trip on the acking channel orders them
    message_count(&hi_ch, &q).await;
    publish_confirmed(&pch, "", &q, b"m3").await;
    assert_eq!(body(&next_delivery(&mut hi).await), "m3");
    assert_no_delivery(&mut lo, 100).await;
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn equal_priority_consumers_share_round_robin() {
    let b = broker().await;
    let c = connect(&b).await;
    let pch = confirm_channel(&c).await;
    let q = unique("cprio-rr");
    declare_queue(&pch, &q).await;
    let (ch1, ch2) = (channel(&c).await, channel(&c).await);
    let prio = || table(&[("x-priority", AMQPValue::LongInt(5))]);
    let mut c1 = consume(&ch1, &q, "c1", true, prio()).await;
    let mut c2 = consume(&ch2, &q, "c2", true, prio()).await;
    for i in 0..4 {
        publish_confirmed(&pch, "", &q, format!("m{i}").as_bytes()).await;
    }
    let a: Vec<String> = vec![body(&next_delivery(&mut c1).await), body(&next_delivery(&mut c1).await)];
    let z: Vec<String> = vec![body(&next_delivery(&mut c2).await), body(&next_delivery(&mut c2).await)];
    assert_eq!(a, ["m0", "m2"]);
    assert_eq!(z, ["m1", "m3"]);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn invalid_consumer_priority_type_is_rejected() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let q = unique("cprio-bad");
    declare_queue(&ch, &q).await;
    let r = within(ch.basic_consume(
        q.as_str().into(),
        "".into(),
        BasicConsumeOptions::default(),
        table(&[("x-priority", AMQPValue::LongString("high".into()))]),
    ))
    .await;
    assert_amqp_error(
        r,
        406,
        &format!("PRECONDITION_FAILED - invalid arg 'x-priority' for queue '{q}' in vhost '/': \"expected integer, got longstr\""),
    );
    cleanup_queue(&b, &q).await;
}

async fn sac_queue(ch: &Channel, tag: &str) -> String {
    let q = unique(tag);
    within(ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions::default(),
        table(&[("x-single-active-consumer", AMQPValue::Boolean(true))]),
    ))
    .await
    .expect("queue_declare");
    q
}

#[tokio::test]
async fn single_active_consumer_gets_everything() {
    let b = broker().await;
    let c = connect(&b).await;
    let pch = confirm_channel(&c).await;
    let q = sac_queue(&pch, "sac").await;
    let (ch1, ch2) = (channel(&c).await, channel(&c).await);
    let mut first = consume(&ch1, &q, "first", true, FieldTable::default()).await;
    let mut second = consume(&ch2, &q, "second", true, FieldTable::default()).await;
    for i in 0..5 {
        publish_confirmed(&pch, "", &q, format!("m{i}").as_bytes()).await;
    }
    for i in 0..5 {
        assert_eq!(body(&next_delivery(&mut first).await), format!("m{i}"));
    }
    assert_no_delivery(&mut second, 200).await;
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn single_active_consumer_fails_over_on_cancel() {
    let b = broker().await;
    let c = connect(&b).await;
    let pch = confirm_channel(&c).await;
    let q = sac_queue(&pch, "sac-cancel").await;
    let (ch1, ch2) = (channel(&c).await, channel(&c).await);
    let mut first = consume(&ch1, &q, "first", true, FieldTable::default()).await;
    let mut second = consume(&ch2, &q, "second", true, FieldTable::default()).await;
    publish_confirmed(&pch, "", &q, b"before").await;
    assert_eq!(body(&next_delivery(&mut first).await), "before");
    within(ch1.basic_cancel("first".into(), BasicCancelOptions::default())).await.unwrap();
    publish_confirmed(&pch, "", &q, b"after").await;
    assert_eq!(body(&next_delivery(&mut second).await), "after");
    assert!(within(first.next()).await.is_none(), "the cancelled consumer's stream ends");
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn single_active_consumer_fails_over_on_channel_close_and_requeues() {
    let b = broker().await;
    let c = connect(&b).await;
    let pch = confirm_channel(&c).await;
    let q = sac_queue(&pch, "sac-close").await;
    let (ch1, ch2) = (channel(&c).await, channel(&c).await);
    let mut first = consume(&ch1, &q, "first", false, FieldTable::default()).await;
    let mut second = consume(&ch2, &q, "second", false, FieldTable::default()).await;
    publish_confirmed(&pch, "", &q, b"unacked").await;
    assert_eq!(body(&next_delivery(&mut first).await), "unacked");
    assert_no_delivery(&mut second, 100).await;
    within(ch1.close(200, "bye".into())).await.unwrap();
    let d = next_delivery(&mut second).await;
    assert_eq!(body(&d), "unacked");
    assert!(d.redelivered);
    within(ch2.basic_ack(d.delivery_tag, BasicAckOptions::default())).await.unwrap();
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn single_active_consumer_false_is_a_normal_queue() {
    let b = broker().await;
    let c = connect(&b).await;
    let pch = confirm_channel(&c).await;
    let q = unique("sac-false");
    within(pch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions::default(),
        table(&[("x-single-active-consumer", AMQPValue::Boolean(false))]),
    ))
    .await
    .unwrap();
    let (ch1, ch2) = (channel(&c).await, channel(&c).await);
    let mut c1 = consume(&ch1, &q, "c1", true, FieldTable::default()).await;
    let mut c2 = consume(&ch2, &q, "c2", true, FieldTable::default()).await;
    publish_confirmed(&pch, "", &q, b"m0").await;
    publish_confirmed(&pch, "", &q, b"m1").await;
    assert_eq!(body(&next_delivery(&mut c1).await), "m0");
    assert_eq!(body(&next_delivery(&mut c2).await), "m1");
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn deleting_the_queue_cancels_its_consumers() {
    let b = broker().await;
    let c = connect(&b).await;
    let ch = channel(&c).await;
    let q = unique("cancel-notify");
    declare_queue(&ch, &q).await;
    let mut consumer = consume(&ch, &q, "doomed", true, FieldTable::default()).await;
    let other = connect(&b).await;
    let och = channel(&other).await;
    within(och.queue_delete(q.as_str().into(), QueueDeleteOptions::default())).await.unwrap();
    // lapin ends the consumer's stream when the broker sends basic.cancel
    assert!(within(consumer.next()).await.is_none(), "the consumer was cancelled by the broker");
    // the channel stays open
    assert!(ch.status().connected());
    let q2 = declare_queue(&ch, "").await;
    publish(&ch, "", q2.name().as_str(), b"still-alive").await;
    let mut c2 = consume(&ch, q2.name().as_str(), "next", true, FieldTable::default()).await;
    assert_eq!(next_delivery(&mut c2).await.data, b"still-alive");
}

#[tokio::test]
async fn deleting_the_queue_cancels_consumers_on_every_channel() {
    let b = broker().await;
    let c = connect(&b).await;
    let q = unique("cancel-notify-many");
    let (ch1, ch2) = (channel(&c).await, channel(&c).await);
    declare_queue(&ch1, &q).await;
    let mut a = consume(&ch1, &q, "a", true, FieldTable::default()).await;
    let mut z = consume(&ch2, &q, "z", false, FieldTable::default()).await;
    let ch3 = channel(&c).await;
    within(ch3.queue_delete(q.as_str().into(), QueueDeleteOptions::default())).await.unwrap();
    assert!(within(a.next()).await.is_none());
    assert!(within(z.next()).await.is_none());
    assert!(ch1.status().connected() && ch2.status().connected());
}

/// Raw connection as guest whose client properties announce (or not)
/// the consumer_cancel_notify capability; returns it with channel 1 consuming
/// `q` as "raw-tag".
async fn raw_consumer(b: &TestBroker, q: &str, cancel_notify: bool) -> common::raw::RawConn {
    use amq_protocol::frame::AMQPFrame;
    use amq_protocol::protocol::{basic, connection, AMQPClass};
    use common::raw::*;
    let mut raw = RawConn::connect(b.addr()).await;
    raw.start().await;
    let mut caps = FieldTable::default();
    caps.insert("consumer_cancel_notify".into(), AMQPValue::Boolean(cancel_notify));
    let mut props = FieldTable::default();
    props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    raw.send_method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: props,
            mechanism: "PLAIN".into(),
            response: "\0guest\0guest".into(),
            locale: "en_US".into(),
        })),
    )
    .await;
    let tune = match raw.recv_frame().await {
        AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Tune(t))) => t,
        f => panic!("expected connection.tune, got {f:?}"),
    };
    raw.tune_ok(tune.channel_max, tune.frame_max, 0).await;
    raw.open("/").await;
    raw.open_channel(1).await;
    raw.send_method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
            queue: q.into(),
            consumer_tag: "raw-tag".into(),
            no_local: false,
            no_ack: true,
            exclusive: false,
            nowait: false,
            arguments: FieldTable::default(),
        })),
    )
    .await;
    match raw.recv_non_heartbeat().await {
        AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(ok))) => {
            assert_eq!(ok.consumer_tag.as_str(), "raw-tag")
        }
        f => panic!("expected consume-ok, got {f:?}"),
    }
    raw
}

/// The wire view: the broker sends basic.cancel with the consumer's tag to
/// a client that announced consumer_cancel_notify.
#[tokio::test]
async fn raw_basic_cancel_is_sent_on_queue_delete() {
    use amq_protocol::frame::AMQPFrame;
    use amq_protocol::protocol::{basic, AMQPClass};
    let b = broker().await;
    let q = unique("cancel-raw");
    let (_c, ch) = connect_channel(&b).await;
    declare_queue(&ch, &q).await;
    let mut raw = raw_consumer(&b, &q, true).await;
    within(ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default())).await.unwrap();
    match raw.recv_non_heartbeat().await {
        AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Cancel(c))) => {
            assert_eq!(c.consumer_tag.as_str(), "raw-tag");
        }
        f => panic!("expected basic.cancel, got {f:?}"),
    }
}

/// Without the capability the consumer silently disappears.
#[tokio::test]
async fn raw_no_basic_cancel_without_the_capability() {
    use amq_protocol::frame::AMQPFrame;
    use amq_protocol::protocol::{channel, AMQPClass};
    use common::raw::Read;
    let b = broker().await;
    let q = unique("cancel-raw-nocap");
    let (_c, ch) = connect_channel(&b).await;
    declare_queue(&ch, &q).await;
    let mut raw = raw_consumer(&b, &q, false).await;
    within(ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default())).await.unwrap();
    if let Ok(Read::Frame(f)) = raw.recv_timeout(std::time::Duration::from_millis(300)).await {
        panic!("expected nothing, got {f:?}");
    }
    // the channel is still open: channel.close gets its close-ok
    raw.send_method(
        1,
        AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
            reply_code: 200,
            reply_text: "bye".into(),
            class_id: 0,
            method_id: 0,
        })),
    )
    .await;
    match raw.recv_non_heartbeat().await {
        AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))) => {}
        f => panic!("expected channel.close-ok, got {f:?}"),
    }
}
