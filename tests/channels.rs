//! Channels: many per connection, errors are channel-scoped, mode switches.
mod common;

use common::*;
use lapin::{options::*, types::FieldTable};

#[tokio::test]
async fn many_channels_on_one_connection() {
    let b = broker().await;
    let c = connect(&b).await;
    let mut chans = Vec::new();
    for _ in 0..100 {
        chans.push(within(c.create_channel()).await.unwrap());
    }
    let ids: std::collections::HashSet<u16> = chans.iter().map(|ch| ch.id()).collect();
    assert_eq!(ids.len(), 100);
    let q = declare_queue(&chans[0], "").await;
    for (i, ch) in chans.iter().enumerate() {
        publish(ch, "", q.name().as_str(), format!("{i}").as_bytes()).await;
    }
    eventually("100 messages queued", || {
        let ch = chans[1].clone();
        let q = q.name().to_string();
        async move { message_count(&ch, &q).await == 100 }
    })
    .await;
    for ch in &chans[50..] {
        within(ch.close(200, "OK".into())).await.unwrap();
    }
    // the rest still work
    for ch in &chans[..50] {
        declare_queue(ch, "").await;
    }
}

#[tokio::test]
async fn channel_error_closes_only_that_channel() {
    let b = broker().await;
    let c = connect(&b).await;
    let bad = within(c.create_channel()).await.unwrap();
    let good = within(c.create_channel()).await.unwrap();
    let q = declare_queue(&good, "").await;
    let missing = unique("q-chan-missing");
    let r = within(bad.queue_declare(
        missing.as_str().into(),
        QueueDeclareOptions { passive: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 404, &format!("NOT_FOUND - no queue '{missing}' in vhost '/'"));
    // the failed channel is unusable
    assert!(!bad.status().connected());
    assert!(within(bad.queue_declare("".into(), QueueDeclareOptions::default(), FieldTable::default())).await.is_err());
    // the other channel and the connection carry on
    assert!(c.status().connected());
    publish(&good, "", q.name().as_str(), b"still here").await;
    assert_eq!(get_body(&good, q.name().as_str()).await.as_deref(), Some(&b"still here"[..]));
    let fresh = within(c.create_channel()).await.unwrap();
    declare_queue(&fresh, "").await;
}

#[tokio::test]
async fn consumer_on_other_channel_survives_channel_error() {
    let b = broker().await;
    let c = connect(&b).await;
    let cons_ch = within(c.create_channel()).await.unwrap();
    let bad = within(c.create_channel()).await.unwrap();
    let q = declare_queue(&cons_ch, "").await;
    let mut consumer = within(cons_ch.basic_consume(
        q.name().clone(),
        "".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let r = within(bad.exchange_declare(
        "amq.forbidden".into(),
        lapin::ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 403, "ACCESS_REFUSED - exchange name 'amq.forbidden' contains reserved prefix 'amq.*'");
    publish(&cons_ch, "", q.name().as_str(), b"after").await;
    let d = next_delivery(&mut consumer).await;
    assert_eq!(d.data, b"after");
}

#[tokio::test]
async fn closing_a_channel_cancels_its_consumers() {
    let b = broker().await;
    let c = connect(&b).await;
    let ch = within(c.create_channel()).await.unwrap();
    let q = declare_queue(&ch, "").await;
    let ch2 = within(c.create_channel()).await.unwrap();
    let _cons =
        within(ch2.basic_consume(q.name().clone(), "".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    let q2 = within(ch.queue_declare(
        q.name().clone(),
        QueueDeclareOptions { passive: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    assert_eq!(q2.consumer_count(), 1);
    within(ch2.close(200, "OK".into())).await.unwrap();
    eventually("consumer gone", || {
        let ch = ch.clone();
        let q = q.name().to_string();
        async move {
            within(ch.queue_declare(
                q.as_str().into(),
                QueueDeclareOptions { passive: true, ..Default::default() },
                FieldTable::default(),
            ))
            .await
            .unwrap()
            .consumer_count()
                == 0
        }
    })
    .await;
}

#[tokio::test]
async fn channel_flow_inactive_is_not_implemented() {
    let b = broker().await;
    let c = connect(&b).await;
    let ch = within(c.create_channel()).await.unwrap();
    // flow active=true is accepted
    assert!(within(ch.channel_flow(ChannelFlowOptions { active: true })).await.unwrap());
    let r = within(ch.channel_flow(ChannelFlowOptions { active: false })).await;
    assert_amqp_error(r, 540, "NOT_IMPLEMENTED - active=false");
    eventually("connection closed (540 is a hard error)", || {
        let s = c.status().clone();
        async move { !s.connected() }
    })
    .await;
}

#[tokio::test]
async fn tx_commit_without_select_is_precondition_failed() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let r = within(ch.tx_commit()).await;
    assert_amqp_error(r, 406, "PRECONDITION_FAILED - channel is not transactional");
    let (_c, ch) = connect_channel(&b).await;
    let r = within(ch.tx_rollback()).await;
    assert_amqp_error(r, 406, "PRECONDITION_FAILED - channel is not transactional");
}

#[tokio::test]
async fn confirm_and_tx_modes_are_exclusive() {
    let b = broker().await;
    let c = connect(&b).await;
    let ch = confirm_channel(&c).await;
    let r = within(ch.tx_select()).await;
    assert_amqp_error(r, 406, "PRECONDITION_FAILED - cannot switch from confirm to tx mode");
    let ch = within(c.create_channel()).await.unwrap();
    within(ch.tx_select()).await.unwrap();
    let r = within(ch.confirm_select(ConfirmSelectOptions::default())).await;
    assert_amqp_error(r, 406, "PRECONDITION_FAILED - cannot switch from tx to confirm mode");
}

#[tokio::test]
async fn tx_commit_and_rollback() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    within(ch.tx_select()).await.unwrap();
    publish(&ch, "", q.name().as_str(), b"rolled back").await;
    within(ch.tx_rollback()).await.unwrap();
    publish(&ch, "", q.name().as_str(), b"committed").await;
    let other = within(c.create_channel()).await.unwrap();
    assert_eq!(get_body(&other, q.name().as_str()).await, None, "uncommitted publish visible");
    within(ch.tx_commit()).await.unwrap();
    assert_eq!(drain(&other, q.name().as_str()).await, ["committed"]);
}
