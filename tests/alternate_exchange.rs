//! Alternate exchanges (the `alternate-exchange` exchange argument).
mod common;

use common::*;
use lapin::{
    options::*,
    types::{AMQPValue, FieldTable},
    BasicProperties, Channel, ExchangeKind,
};

async fn exchange(ch: &Channel, name: &str, kind: ExchangeKind, ae: Option<&str>) {
    let mut args = FieldTable::default();
    if let Some(ae) = ae {
        args.insert("alternate-exchange".into(), AMQPValue::LongString(ae.into()));
    }
    within(ch.exchange_declare(name.into(), kind, ExchangeDeclareOptions::default(), args))
        .await
        .expect("exchange_declare");
}

async fn bound_queue(ch: &Channel, x: &str, key: &str) -> String {
    let q = declare_queue(ch, "").await.name().to_string();
    within(ch.queue_bind(q.as_str().into(), x.into(), key.into(), QueueBindOptions::default(), FieldTable::default()))
        .await
        .expect("queue_bind");
    q
}

/// Publish (optionally mandatory) on a confirm channel; returns the
/// basic.return reply code if the message came back.
async fn publish_returned(ch: &Channel, x: &str, key: &str, body: &[u8], mandatory: bool) -> Option<u16> {
    let conf = within(ch.basic_publish(
        x.into(),
        key.into(),
        BasicPublishOptions { mandatory, ..Default::default() },
        body,
        BasicProperties::default(),
    ))
    .await
    .expect("basic_publish");
    let c = within(conf).await.expect("confirm");
    assert!(c.is_ack());
    c.take_message().map(|m| m.reply_code)
}

#[tokio::test]
async fn unroutable_messages_go_to_the_alternate_exchange() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let (x, ae) = (unique("ae-main"), unique("ae-alt"));
    exchange(&ch, &ae, ExchangeKind::Fanout, None).await;
    exchange(&ch, &x, ExchangeKind::Direct, Some(&ae)).await;
    let routed = bound_queue(&ch, &x, "known").await;
    let caught = bound_queue(&ch, &ae, "").await;
    assert_eq!(publish_returned(&ch, &x, "known", b"direct", false).await, None);
    assert_eq!(publish_returned(&ch, &x, "unknown", b"alt", false).await, None);
    assert_eq!(drain(&ch, &routed).await, ["direct"]);
    let m = within(ch.basic_get(caught.as_str().into(), BasicGetOptions { no_ack: true })).await.unwrap().unwrap();
    assert_eq!(m.delivery.data, b"alt");
    // delivered with the original exchange and routing key
    assert_eq!(m.delivery.exchange.as_str(), x);
    assert_eq!(m.delivery.routing_key.as_str(), "unknown");
    assert_eq!(message_count(&ch, &caught).await, 0);
    cleanup_exchange(&b, &x).await;
    cleanup_exchange(&b, &ae).await;
}

#[tokio::test]
async fn mandatory_message_routed_by_the_alternate_is_not_returned() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let (x, ae) = (unique("ae-mand"), unique("ae-mand-alt"));
    exchange(&ch, &ae, ExchangeKind::Fanout, None).await;
    exchange(&ch, &x, ExchangeKind::Topic, Some(&ae)).await;
    let caught = bound_queue(&ch, &ae, "").await;
    assert_eq!(publish_returned(&ch, &x, "no.match", b"m", true).await, None);
    assert_eq!(drain(&ch, &caught).await, ["m"]);
    cleanup_exchange(&b, &x).await;
    cleanup_exchange(&b, &ae).await;
}

#[tokio::test]
async fn alternate_routes_by_the_original_routing_key() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let (x, ae) = (unique("ae-key"), unique("ae-key-alt"));
    exchange(&ch, &ae, ExchangeKind::Direct, None).await;
    exchange(&ch, &x, ExchangeKind::Direct, Some(&ae)).await;
    let caught = bound_queue(&ch, &ae, "k1").await;
    assert_eq!(publish_returned(&ch, &x, "k1", b"one", true).await, None);
    // the alternate cannot route k2 either: returned
    assert_eq!(publish_returned(&ch, &x, "k2", b"two", true).await, Some(312));
    assert_eq!(drain(&ch, &caught).await, ["one"]);
    cleanup_exchange(&b, &x).await;
    cleanup_exchange(&b, &ae).await;
}

#[tokio::test]
async fn missing_alternate_exchange_drops_or_returns() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let x = unique("ae-missing");
    exchange(&ch, &x, ExchangeKind::Direct, Some(&unique("ae-does-not-exist"))).await;
    assert_eq!(publish_returned(&ch, &x, "k", b"gone", false).await, None);
    assert_eq!(publish_returned(&ch, &x, "k", b"back", true).await, Some(312));
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn alternate_exchanges_chain() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let (x, ae1, ae2) = (unique("ae-chain"), unique("ae-chain-1"), unique("ae-chain-2"));
    exchange(&ch, &ae2, ExchangeKind::Fanout, None).await;
    exchange(&ch, &ae1, ExchangeKind::Direct, Some(&ae2)).await;
    exchange(&ch, &x, ExchangeKind::Direct, Some(&ae1)).await;
    let caught = bound_queue(&ch, &ae2, "").await;
    assert_eq!(publish_returned(&ch, &x, "k", b"far", true).await, None);
    assert_eq!(drain(&ch, &caught).await, ["far"]);
    cleanup_exchange(&b, &x).await;
    cleanup_exchange(&b, &ae1).await;
    cleanup_exchange(&b, &ae2).await;
}

#[tokio::test]
async fn alternate_exchange_cycle_terminates() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let (x1, x2) = (unique("ae-cycle-1"), unique("ae-cycle-2"));
    exchange(&ch, &x1, ExchangeKind::Direct, Some(&x2)).await;
    exchange(&ch, &x2, ExchangeKind::Direct, Some(&x1)).await;
    assert_eq!(publish_returned(&ch, &x1, "nowhere", b"loop", true).await, Some(312));
    // a queue bound on the second exchange gets exactly one copy
    let q = bound_queue(&ch, &x2, "here").await;
    assert_eq!(publish_returned(&ch, &x1, "here", b"once", true).await, None);
    assert_eq!(drain(&ch, &q).await, ["once"]);
    cleanup_exchange(&b, &x1).await;
    cleanup_exchange(&b, &x2).await;
}

#[tokio::test]
async fn alternate_exchange_may_be_declared_later() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let (x, ae) = (unique("ae-later"), unique("ae-later-alt"));
    exchange(&ch, &x, ExchangeKind::Direct, Some(&ae)).await;
    assert_eq!(publish_returned(&ch, &x, "k", b"early", true).await, Some(312));
    exchange(&ch, &ae, ExchangeKind::Fanout, None).await;
    let caught = bound_queue(&ch, &ae, "").await;
    assert_eq!(publish_returned(&ch, &x, "k", b"late", true).await, None);
    assert_eq!(drain(&ch, &caught).await, ["late"]);
    cleanup_exchange(&b, &x).await;
    cleanup_exchange(&b, &ae).await;
}

#[tokio::test]
async fn fanout_with_alternate_uses_bindings_first() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let (x, ae) = (unique("ae-fanout"), unique("ae-fanout-alt"));
    exchange(&ch, &ae, ExchangeKind::Fanout, None).await;
    exchange(&ch, &x, ExchangeKind::Fanout, Some(&ae)).await;
    let caught = bound_queue(&ch, &ae, "").await;
    // no binding yet: alternate
    assert_eq!(publish_returned(&ch, &x, "", b"a", true).await, None);
    let direct = bound_queue(&ch, &x, "").await;
    assert_eq!(publish_returned(&ch, &x, "", b"b", true).await, None);
    assert_eq!(drain(&ch, &caught).await, ["a"]);
    assert_eq!(drain(&ch, &direct).await, ["b"]);
    cleanup_exchange(&b, &x).await;
    cleanup_exchange(&b, &ae).await;
}
