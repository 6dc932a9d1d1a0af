//! Assorted methods with RabbitMQ-specific behaviour: basic.qos with
//! prefetch_size, basic.recover(-async), channel.flow and
//! connection.update-secret.
mod common;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{basic, AMQPClass};
use common::raw::*;
use common::*;
use lapin::{options::*, types::FieldTable};

#[tokio::test]
async fn qos_prefetch_size_is_not_implemented() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    // basic.qos: prefetch-size (long) = 1, prefetch-count (short) = 0, global = false
    let mut args = Vec::new();
    args.extend_from_slice(&1u32.to_be_bytes());
    args.extend_from_slice(&0u16.to_be_bytes());
    args.push(0);
    c.send_bytes(&raw_method(1, 60, 10, &args)).await;
    let close = c.expect_connection_close().await;
    assert_eq!(
        (close.reply_code, close.reply_text.as_str(), close.class_id, close.method_id),
        (540, "NOT_IMPLEMENTED - prefetch_size!=0 (1)", 60, 10)
    );
}

#[tokio::test]
async fn qos_prefetch_size_zero_is_accepted() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    let mut args = Vec::new();
    args.extend_from_slice(&0u32.to_be_bytes());
    args.extend_from_slice(&10u16.to_be_bytes());
    args.push(0);
    c.send_bytes(&raw_method(1, 60, 10, &args)).await;
    match c.recv_non_heartbeat().await {
        AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::QosOk(_))) => {}
        f => panic!("expected basic.qos-ok, got {f:?}"),
    }
}

#[tokio::test]
async fn recover_async_requeues_and_redelivers() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("recover-async");
    declare_queue(&ch, &q).await;
    for m in ["r1", "r2"] {
        publish_confirmed(&ch, "", &q, m.as_bytes()).await;
    }
    let mut consumer =
        within(ch.basic_consume(q.as_str().into(), "rc".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    for m in ["r1", "r2"] {
        let d = next_delivery(&mut consumer).await;
        assert_eq!(d.data, m.as_bytes());
        assert!(!d.redelivered);
    }
    within(ch.basic_recover_async(BasicRecoverAsyncOptions { requeue: true })).await.unwrap();
    for m in ["r1", "r2"] {
        let d = next_delivery(&mut consumer).await;
        assert_eq!(d.data, m.as_bytes());
        assert!(d.redelivered, "redelivered after recover");
        within(ch.basic_ack(d.delivery_tag, BasicAckOptions::default())).await.unwrap();
    }
    assert_no_delivery(&mut consumer, 100).await;
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn recover_async_without_requeue_is_not_implemented() {
    let b = broker().await;
    let c = connect(&b).await;
    let mut ev = events(&c);
    let ch = within(c.create_channel()).await.unwrap();
    within(ch.basic_recover_async(BasicRecoverAsyncOptions { requeue: false })).await.unwrap();
    assert_amqp_error(next_error(&mut ev).await, 540, "NOT_IMPLEMENTED - requeue=false");
}

#[tokio::test]
async fn recover_requeues_get_messages() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = unique("recover-sync");
    declare_queue(&ch, &q).await;
    publish_confirmed(&ch, "", &q, b"g").await;
    let m = within(ch.basic_get(q.as_str().into(), BasicGetOptions::default())).await.unwrap().unwrap();
    assert!(!m.delivery.redelivered);
    within(ch.basic_recover(BasicRecoverOptions { requeue: true })).await.unwrap();
    let m = within(ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })).await.unwrap().unwrap();
    assert_eq!(m.delivery.data, b"g");
    assert!(m.delivery.redelivered);
    cleanup_queue(&b, &q).await;
}

#[tokio::test]
async fn recover_with_nothing_unacked_is_fine() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    within(ch.basic_recover_async(BasicRecoverAsyncOptions { requeue: true })).await.unwrap();
    within(ch.basic_recover(BasicRecoverOptions { requeue: true })).await.unwrap();
    declare_queue(&ch, "").await;
}

#[tokio::test]
async fn channel_flow_active_is_acknowledged() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    assert!(within(ch.channel_flow(ChannelFlowOptions { active: true })).await.unwrap());
    // the channel keeps working
    let q = declare_queue(&ch, "").await;
    publish(&ch, "", q.name().as_str(), b"f").await;
    let mut consumer = within(ch.basic_consume(
        q.name().clone(),
        "".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    assert_eq!(next_delivery(&mut consumer).await.data, b"f");
}

#[tokio::test]
async fn channel_flow_inactive_closes_the_connection() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    // channel.flow (20, 20), active = false
    c.send_bytes(&raw_method(1, 20, 20, &[0])).await;
    let close = c.expect_connection_close().await;
    assert_eq!(
        (close.reply_code, close.reply_text.as_str(), close.class_id, close.method_id),
        (540, "NOT_IMPLEMENTED - active=false", 20, 20)
    );
}

#[tokio::test]
async fn update_secret_is_accepted() {
    let b = broker().await;
    let c = connect(&b).await;
    let ch = within(c.create_channel()).await.unwrap();
    within(c.update_secret("guest".into(), "rotation".into())).await.expect("update-secret-ok");
    // the connection and its channels keep working
    let q = declare_queue(&ch, "").await;
    publish(&ch, "", q.name().as_str(), b"after").await;
    let ch2 = within(c.create_channel()).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(b) = get_body(&ch2, q.name().as_str()).await {
            assert_eq!(b, b"after");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "message never arrived");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn raw_update_secret_gets_update_secret_ok() {
    use amq_protocol::protocol::connection;
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.send_method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::UpdateSecret(connection::UpdateSecret {
            new_secret: "guest".into(),
            reason: "test".into(),
        })),
    )
    .await;
    match c.recv_non_heartbeat().await {
        AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::UpdateSecretOk(_))) => {}
        f => panic!("expected connection.update-secret-ok, got {f:?}"),
    }
    c.open_channel(1).await;
}
