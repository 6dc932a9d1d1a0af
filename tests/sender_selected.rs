//! Sender-selected distribution: the `CC` and `BCC` message headers add
//! routing keys; `BCC` is removed from the delivered message.
mod common;

use common::*;
use lapin::{
    message::Delivery,
    options::*,
    types::{AMQPValue, FieldArray, FieldTable},
    BasicProperties, Channel, ExchangeKind,
};

fn keys(ks: &[&str]) -> AMQPValue {
    AMQPValue::FieldArray(FieldArray::from(ks.iter().map(|k| AMQPValue::LongString((*k).into())).collect::<Vec<_>>()))
}

fn headers(pairs: &[(&str, AMQPValue)]) -> BasicProperties {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    BasicProperties::default().with_headers(t)
}

async fn direct_exchange(ch: &Channel, tag: &str) -> String {
    let x = unique(tag);
    within(ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    x
}

async fn bound_queue(ch: &Channel, x: &str, key: &str) -> String {
    let q = declare_queue(ch, "").await.name().to_string();
    within(ch.queue_bind(q.as_str().into(), x.into(), key.into(), QueueBindOptions::default(), FieldTable::default()))
        .await
        .expect("queue_bind");
    q
}

async fn publish_confirmed_props(ch: &Channel, x: &str, key: &str, body: &[u8], props: BasicProperties) -> bool {
    let conf = within(ch.basic_publish(
        x.into(),
        key.into(),
        BasicPublishOptions { mandatory: true, ..Default::default() },
        body,
        props,
    ))
    .await
    .expect("basic_publish");
    let c = within(conf).await.expect("confirm");
    assert!(c.is_ack());
    c.take_message().is_none()
}

async fn get(ch: &Channel, q: &str) -> Option<Delivery> {
    within(ch.basic_get(q.into(), BasicGetOptions { no_ack: true })).await.unwrap().map(|m| m.delivery)
}

fn header<'a>(d: &'a Delivery, k: &str) -> Option<&'a AMQPValue> {
    d.properties.headers().as_ref().and_then(|h| h.inner().get(k))
}

#[tokio::test]
async fn cc_adds_routing_keys_and_is_kept() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let x = direct_exchange(&ch, "cc").await;
    let (qa, qb, qc) =
        (bound_queue(&ch, &x, "a").await, bound_queue(&ch, &x, "b").await, bound_queue(&ch, &x, "c").await);
    assert!(publish_confirmed_props(&ch, &x, "a", b"m", headers(&[("CC", keys(&["b"]))])).await);
    let da = get(&ch, &qa).await.expect("routed by the routing key");
    let db = get(&ch, &qb).await.expect("routed by CC");
    assert!(get(&ch, &qc).await.is_none());
    for d in [&da, &db] {
        assert_eq!(d.routing_key.as_str(), "a", "the routing key is the published one");
        assert_eq!(header(d, "CC"), Some(&keys(&["b"])), "CC stays on the message");
    }
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn bcc_adds_routing_keys_and_is_stripped() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let x = direct_exchange(&ch, "bcc").await;
    let (qa, qb) = (bound_queue(&ch, &x, "a").await, bound_queue(&ch, &x, "b").await);
    let props = headers(&[("BCC", keys(&["b"])), ("other", AMQPValue::LongString("kept".into()))]);
    assert!(publish_confirmed_props(&ch, &x, "a", b"m", props).await);
    for q in [&qa, &qb] {
        let d = get(&ch, q).await.expect("a copy");
        assert_eq!(header(&d, "BCC"), None, "BCC is removed");
        assert_eq!(header(&d, "other"), Some(&AMQPValue::LongString("kept".into())));
    }
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn cc_and_bcc_together() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let x = direct_exchange(&ch, "cc-bcc").await;
    let qs = [
        bound_queue(&ch, &x, "to").await,
        bound_queue(&ch, &x, "cc1").await,
        bound_queue(&ch, &x, "cc2").await,
        bound_queue(&ch, &x, "bcc").await,
    ];
    let props = headers(&[("CC", keys(&["cc1", "cc2"])), ("BCC", keys(&["bcc"]))]);
    assert!(publish_confirmed_props(&ch, &x, "to", b"all", props).await);
    for q in &qs {
        let d = get(&ch, q).await.expect("a copy");
        assert_eq!(d.data, b"all");
        assert_eq!(header(&d, "CC"), Some(&keys(&["cc1", "cc2"])));
        assert_eq!(header(&d, "BCC"), None);
    }
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn cc_on_the_default_exchange_names_queues() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q1 = declare_queue(&ch, "").await.name().to_string();
    let q2 = declare_queue(&ch, "").await.name().to_string();
    let q3 = declare_queue(&ch, "").await.name().to_string();
    let props = headers(&[("CC", keys(&[&q2])), ("BCC", keys(&[&q3]))]);
    assert!(publish_confirmed_props(&ch, "", &q1, b"x", props).await);
    for q in [&q1, &q2, &q3] {
        assert_eq!(get(&ch, q).await.expect("a copy").data, b"x");
    }
}

#[tokio::test]
async fn one_copy_per_queue_even_if_keys_repeat() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let x = direct_exchange(&ch, "cc-dup").await;
    let q = bound_queue(&ch, &x, "a").await;
    within(ch.queue_bind(
        q.as_str().into(),
        x.as_str().into(),
        "b".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let props = headers(&[("CC", keys(&["a", "b"])), ("BCC", keys(&["a"]))]);
    assert!(publish_confirmed_props(&ch, &x, "a", b"once", props).await);
    assert_eq!(drain(&ch, &q).await, ["once"]);
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn mandatory_message_routed_only_by_cc_is_not_returned() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let x = direct_exchange(&ch, "cc-mandatory").await;
    let q = bound_queue(&ch, &x, "cc-only").await;
    assert!(publish_confirmed_props(&ch, &x, "unbound", b"m", headers(&[("CC", keys(&["cc-only"]))])).await);
    assert!(publish_confirmed_props(&ch, &x, "unbound", b"b", headers(&[("BCC", keys(&["cc-only"]))])).await);
    assert!(!publish_confirmed_props(&ch, &x, "unbound", b"r", headers(&[("CC", keys(&["nope"]))])).await);
    assert_eq!(drain(&ch, &q).await, ["m", "b"]);
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn cc_works_with_topic_exchanges() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let x = unique("cc-topic");
    within(ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let q = bound_queue(&ch, &x, "logs.*").await;
    assert!(publish_confirmed_props(&ch, &x, "other", b"t", headers(&[("CC", keys(&["logs.error"]))])).await);
    assert_eq!(drain(&ch, &q).await, ["t"]);
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn cc_that_is_not_an_array_is_an_error() {
    let b = broker().await;
    let c = connect(&b).await;
    let mut ev = events(&c);
    let ch = within(c.create_channel()).await.unwrap();
    let q = declare_queue(&ch, "").await;
    publish_props(&ch, "", q.name().as_str(), b"x", headers(&[("CC", AMQPValue::LongString("b".into()))])).await;
    assert_amqp_error(
        next_error(&mut ev).await,
        406,
        "PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,\"CC\",longstr}",
    );
}
