//! Direct reply-to: RPC replies through the `amq.rabbitmq.reply-to`
//! pseudo-queue, and its 406 errors.
mod common;

use common::*;
use lapin::{options::*, types::FieldTable, BasicProperties, Channel, Consumer};

const REPLY_TO: &str = "amq.rabbitmq.reply-to";

async fn reply_consumer(ch: &Channel) -> Consumer {
    within(ch.basic_consume(
        REPLY_TO.into(),
        "".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .expect("consume amq.rabbitmq.reply-to")
}

#[tokio::test]
async fn rpc_round_trip() {
    let b = broker().await;
    let (_sc, server) = connect_channel(&b).await;
    let rpc_q = unique("rpc");
    declare_queue(&server, &rpc_q).await;
    let mut requests = within(server.basic_consume(
        rpc_q.as_str().into(),
        "server".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();

    let (_cc, client) = connect_channel(&b).await;
    let mut replies = reply_consumer(&client).await;
    let props = BasicProperties::default().with_reply_to(REPLY_TO.into()).with_correlation_id("c-1".into());
    publish_props(&client, "", &rpc_q, b"ping", props).await;

    let req = next_delivery(&mut requests).await;
    assert_eq!(req.data, b"ping");
    let reply_to = req.properties.reply_to().clone().expect("reply_to").to_string();
    assert!(reply_to.starts_with("amq.rabbitmq.reply-to."), "rewritten reply_to: {reply_to}");
    assert!(reply_to.len() > REPLY_TO.len() + 1);
    assert_eq!(req.properties.correlation_id().as_ref().map(|s| s.as_str()), Some("c-1"));

    let props = BasicProperties::default().with_correlation_id("c-1".into());
    publish_props(&server, "", &reply_to, b"pong", props).await;
    let rep = next_delivery(&mut replies).await;
    assert_eq!(rep.data, b"pong");
    assert_eq!(rep.exchange.as_str(), "");
    assert_eq!(rep.routing_key.as_str(), reply_to);
    assert!(!rep.redelivered);
    assert_eq!(rep.properties.correlation_id().as_ref().map(|s| s.as_str()), Some("c-1"));
    cleanup_queue(&b, &rpc_q).await;
}

#[tokio::test]
async fn several_requests_share_one_reply_address() {
    let b = broker().await;
    let (_sc, server) = connect_confirm_channel(&b).await;
    let rpc_q = unique("rpc-many");
    declare_queue(&server, &rpc_q).await;
    let (_cc, client) = connect_channel(&b).await;
    let mut replies = reply_consumer(&client).await;
    for i in 0..3 {
        let props = BasicProperties::default().with_reply_to(REPLY_TO.into());
        publish_props(&client, "", &rpc_q, format!("req{i}").as_bytes(), props).await;
    }
    let mut addresses = Vec::new();
    for i in 0..3 {
        let deadline = tokio::time::Instant::now() + WAIT;
        let req = loop {
            if let Some(m) =
                within(server.basic_get(rpc_q.as_str().into(), BasicGetOptions { no_ack: true })).await.unwrap()
            {
                break m.delivery;
            }
            assert!(tokio::time::Instant::now() < deadline, "request {i} never arrived");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        let addr = req.properties.reply_to().clone().unwrap().to_string();
        publish_confirmed(&server, "", &addr, format!("rep{i}").as_bytes()).await;
        addresses.push(addr);
    }
    assert!(addresses.windows(2).all(|w| w[0] == w[1]), "one address per channel: {addresses:?}");
    for i in 0..3 {
        assert_eq!(next_delivery(&mut replies).await.data, format!("rep{i}").as_bytes());
    }
    cleanup_queue(&b, &rpc_q).await;
}

#[tokio::test]
async fn publish_with_reply_to_but_no_reply_consumer() {
    let b = broker().await;
    let c = connect(&b).await;
    let mut ev = events(&c);
    let ch = within(c.create_channel()).await.unwrap();
    let q = declare_queue(&ch, "").await;
    publish_props(&ch, "", q.name().as_str(), b"x", BasicProperties::default().with_reply_to(REPLY_TO.into())).await;
    assert_amqp_error(next_error(&mut ev).await, 406, "PRECONDITION_FAILED - fast reply consumer does not exist");
}

#[tokio::test]
async fn reply_consumer_must_be_on_the_publishing_channel() {
    let b = broker().await;
    let c = connect(&b).await;
    let mut ev = events(&c);
    let consuming = within(c.create_channel()).await.unwrap();
    let _replies = reply_consumer(&consuming).await;
    let publishing = within(c.create_channel()).await.unwrap();
    let q = declare_queue(&publishing, "").await;
    publish_props(&publishing, "", q.name().as_str(), b"x", BasicProperties::default().with_reply_to(REPLY_TO.into()))
        .await;
    assert_amqp_error(next_error(&mut ev).await, 406, "PRECONDITION_FAILED - fast reply consumer does not exist");
    assert!(consuming.status().connected(), "only the publishing channel is closed");
}

#[tokio::test]
async fn reply_consumer_cannot_acknowledge() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let r = within(ch.basic_consume(REPLY_TO.into(), "".into(), BasicConsumeOptions::default(), FieldTable::default()))
        .await;
    assert_amqp_error(r, 406, "PRECONDITION_FAILED - reply consumer cannot acknowledge");
}

#[tokio::test]
async fn only_one_reply_consumer_per_channel() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let _first = reply_consumer(&ch).await;
    let r = within(ch.basic_consume(
        REPLY_TO.into(),
        "".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 406, "PRECONDITION_FAILED - reply consumer already set");
}

#[tokio::test]
async fn cancelled_reply_consumer_no_longer_counts() {
    let b = broker().await;
    let c = connect(&b).await;
    let mut ev = events(&c);
    let ch = within(c.create_channel()).await.unwrap();
    within(ch.basic_consume(
        REPLY_TO.into(),
        "replies".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    within(ch.basic_cancel("replies".into(), BasicCancelOptions::default())).await.unwrap();
    let q = declare_queue(&ch, "").await;
    publish_props(&ch, "", q.name().as_str(), b"x", BasicProperties::default().with_reply_to(REPLY_TO.into())).await;
    assert_amqp_error(next_error(&mut ev).await, 406, "PRECONDITION_FAILED - fast reply consumer does not exist");
}

#[tokio::test]
async fn reply_consumer_keeps_its_tag() {
    let b = broker().await;
    let (_sc, server) = connect_channel(&b).await;
    let rpc_q = unique("rpc-tag");
    declare_queue(&server, &rpc_q).await;
    let (_cc, client) = connect_channel(&b).await;
    let mut replies = within(client.basic_consume(
        REPLY_TO.into(),
        "my-replies".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    assert_eq!(replies.tag().as_str(), "my-replies");
    publish_props(&client, "", &rpc_q, b"q", BasicProperties::default().with_reply_to(REPLY_TO.into())).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let req = loop {
        if let Some(m) =
            within(server.basic_get(rpc_q.as_str().into(), BasicGetOptions { no_ack: true })).await.unwrap()
        {
            break m.delivery;
        }
        assert!(tokio::time::Instant::now() < deadline, "request never arrived");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    publish(&server, "", req.properties.reply_to().as_ref().unwrap().as_str(), b"a").await;
    assert_eq!(next_delivery(&mut replies).await.data, b"a");
    cleanup_queue(&b, &rpc_q).await;
}

#[tokio::test]
async fn reply_to_a_closed_channel_is_dropped() {
    let b = broker().await;
    let (_sc, server) = connect_confirm_channel(&b).await;
    let rpc_q = unique("rpc-gone");
    declare_queue(&server, &rpc_q).await;
    let (cc, client) = connect_channel(&b).await;
    let _replies = reply_consumer(&client).await;
    publish_props(&client, "", &rpc_q, b"q", BasicProperties::default().with_reply_to(REPLY_TO.into())).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let req = loop {
        if let Some(m) =
            within(server.basic_get(rpc_q.as_str().into(), BasicGetOptions { no_ack: true })).await.unwrap()
        {
            break m.delivery;
        }
        assert!(tokio::time::Instant::now() < deadline, "request never arrived");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    within(cc.close(200, "bye".into())).await.unwrap();
    // the reply goes nowhere, and the server's channel is fine
    publish_confirmed(&server, "", req.properties.reply_to().as_ref().unwrap().as_str(), b"late").await;
    publish_confirmed(&server, "", &rpc_q, b"next").await;
    assert_eq!(drain(&server, &rpc_q).await, ["next"]);
    cleanup_queue(&b, &rpc_q).await;
}
