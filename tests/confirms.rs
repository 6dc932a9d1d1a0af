//! Publisher confirms.
mod common;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{basic, confirm, AMQPClass};
use common::raw::*;
use common::*;
use lapin::{options::*, types::FieldTable, BasicProperties};

#[tokio::test]
async fn every_publish_is_acked_in_order() {
    let b = broker().await;
    let c = connect(&b).await;
    let ch = confirm_channel(&c).await;
    let q = declare_queue(&ch, "").await;
    let mut confirms = Vec::new();
    for i in 0..50 {
        confirms.push(
            within(ch.basic_publish(
                "".into(),
                q.name().clone(),
                BasicPublishOptions::default(),
                format!("{i}").as_bytes(),
                BasicProperties::default(),
            ))
            .await
            .unwrap(),
        );
    }
    for conf in confirms {
        assert!(within(conf).await.unwrap().is_ack());
    }
    assert!(within(ch.wait_for_confirms()).await.unwrap().is_empty());
    assert_eq!(message_count(&ch, q.name().as_str()).await, 50);
}

#[tokio::test]
async fn confirm_select_is_idempotent() {
    let b = broker().await;
    let c = connect(&b).await;
    let ch = confirm_channel(&c).await;
    within(ch.confirm_select(ConfirmSelectOptions::default())).await.unwrap();
    publish_confirmed(&ch, "amq.direct", "nowhere", b"x").await;
}

#[tokio::test]
async fn unroutable_publishes_are_acked() {
    let b = broker().await;
    let c = connect(&b).await;
    let ch = confirm_channel(&c).await;
    publish_confirmed(&ch, "amq.direct", &unique("nobody-home"), b"x").await;
}

#[tokio::test]
async fn mandatory_unroutable_gets_return_with_its_ack() {
    let b = broker().await;
    let c = connect(&b).await;
    let ch = confirm_channel(&c).await;
    let key = unique("nobody");
    let conf = within(ch.basic_publish(
        "amq.direct".into(),
        key.as_str().into(),
        BasicPublishOptions { mandatory: true, ..Default::default() },
        b"ret",
        BasicProperties::default(),
    ))
    .await
    .unwrap();
    let conf = within(conf).await.unwrap();
    assert!(conf.is_ack());
    let ret = conf.take_message().expect("the return comes with the ack");
    assert_eq!((ret.reply_code, ret.reply_text.as_str()), (312, "NO_ROUTE"));
    assert_eq!(ret.delivery.routing_key.as_str(), key);
    assert_eq!(ret.delivery.data, b"ret");
}

/// The exact wire order: basic.return + content, then basic.ack.
#[tokio::test]
async fn raw_return_precedes_ack() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    c.send_method(1, AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select { nowait: false }))).await;
    match c.recv_non_heartbeat().await {
        AMQPFrame::Method(1, AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(_))) => {}
        f => panic!("expected confirm.select-ok, got {f:?}"),
    }
    let key = unique("raw-nobody");
    for (i, mandatory) in [(1u64, true), (2, false), (3, true)] {
        c.send_method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: "amq.direct".into(),
                routing_key: key.as_str().into(),
                mandatory,
                immediate: false,
            })),
        )
        .await;
        c.send_bytes(&RawConn::header_frame(1, 1)).await;
        c.send_bytes(&raw_frame(FRAME_BODY, 1, &[b'0' + i as u8])).await;
    }
    // Expect: return(1) header body, ack covering 1, ack covering 2, return(3) header body, ack 3.
    // RabbitMQ may coalesce acks with multiple=true, so track the highest acked tag.
    let mut acked = 0u64;
    let mut returned = Vec::new();
    while acked < 3 {
        match c.recv_non_heartbeat().await {
            AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Return(r))) => {
                assert_eq!(r.reply_code, 312);
                assert_eq!(r.reply_text.as_str(), "NO_ROUTE");
                assert_eq!(r.exchange.as_str(), "amq.direct");
                assert_eq!(r.routing_key.as_str(), key);
                let h = match c.recv_non_heartbeat().await {
                    AMQPFrame::Header(1, h) => h,
                    f => panic!("expected content header after basic.return, got {f:?}"),
                };
                assert_eq!(h.body_size, 1);
                let body = match c.recv_non_heartbeat().await {
                    AMQPFrame::Body(1, d) => d,
                    f => panic!("expected body after header, got {f:?}"),
                };
                let n = u64::from(body[0] - b'0');
                assert!(n > acked, "basic.return for message {n} arrived after its ack");
                returned.push(n);
            }
            AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Ack(a))) => {
                assert!(a.delivery_tag > acked, "acks must increase");
                if !a.multiple {
                    assert_eq!(a.delivery_tag, acked + 1, "single ack skipped a tag");
                }
                for t in acked + 1..=a.delivery_tag {
                    if t == 1 || t == 3 {
                        assert!(returned.contains(&t), "ack for {t} before its basic.return");
                    }
                }
                acked = a.delivery_tag;
            }
            f => panic!("unexpected frame {f:?}"),
        }
    }
    assert_eq!(returned, [1, 3]);
}

#[tokio::test]
async fn raw_confirm_select_nowait_and_ack_tags() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    c.send_method(1, AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select { nowait: true }))).await;
    for _ in 0..3 {
        c.send_publish(1, "amq.fanout", "").await;
        c.send_bytes(&RawConn::header_frame(1, 0)).await;
    }
    let mut acked = 0;
    while acked < 3 {
        match c.recv_non_heartbeat().await {
            AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Ack(a))) => {
                assert!(a.delivery_tag > acked && a.delivery_tag <= 3, "{a:?}");
                acked = a.delivery_tag;
            }
            f => panic!("unexpected frame (nowait: no select-ok) {f:?}"),
        }
    }
}

#[tokio::test]
async fn publish_to_missing_exchange_in_confirm_mode_closes_channel() {
    let b = broker().await;
    let c = connect(&b).await;
    let mut ev = events(&c);
    let ch = confirm_channel(&c).await;
    let x = unique("x-confirm-missing");
    let _conf = within(ch.basic_publish(
        x.as_str().into(),
        "k".into(),
        BasicPublishOptions::default(),
        b"x",
        BasicProperties::default(),
    ))
    .await
    .unwrap();
    let r = next_error(&mut ev).await;
    assert_amqp_error(r, 404, &format!("NOT_FOUND - no exchange '{x}' in vhost '/'"));
    assert!(c.status().connected());
}

#[tokio::test]
async fn confirms_with_consumer_on_same_queue() {
    let b = broker().await;
    let c = connect(&b).await;
    let ch = confirm_channel(&c).await;
    let q = declare_queue(&ch, "").await;
    let cch = within(c.create_channel()).await.unwrap();
    let mut consumer = within(cch.basic_consume(
        q.name().clone(),
        "".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    for i in 0..10 {
        publish_confirmed(&ch, "", q.name().as_str(), format!("{i}").as_bytes()).await;
    }
    for i in 0..10 {
        assert_eq!(next_delivery(&mut consumer).await.data, format!("{i}").into_bytes());
    }
}
