//! Exchange declaration, deletion, types, bindings and their errors.
mod common;

use common::*;
use lapin::{
    options::*,
    types::{AMQPValue, FieldTable},
    Channel, ExchangeKind,
};

async fn declare_x(ch: &Channel, name: &str, kind: ExchangeKind) {
    within(ch.exchange_declare(name.into(), kind, ExchangeDeclareOptions::default(), FieldTable::default()))
        .await
        .expect("exchange_declare");
}

async fn bind(ch: &Channel, q: &str, x: &str, key: &str, args: FieldTable) {
    within(ch.queue_bind(q.into(), x.into(), key.into(), QueueBindOptions::default(), args)).await.expect("queue_bind");
}

fn s(v: &str) -> AMQPValue {
    AMQPValue::LongString(v.into())
}

#[tokio::test]
async fn declare_each_type_and_redeclare_is_idempotent() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    for kind in [ExchangeKind::Direct, ExchangeKind::Fanout, ExchangeKind::Topic, ExchangeKind::Headers] {
        let x = unique("x-type");
        declare_x(&ch, &x, kind.clone()).await;
        declare_x(&ch, &x, kind.clone()).await;
        assert!(exchange_exists(&c, &x).await);
        within(ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())).await.unwrap();
        assert!(!exchange_exists(&c, &x).await);
    }
}

#[tokio::test]
async fn default_and_amq_exchanges_exist() {
    let b = broker().await;
    let (c, _ch) = connect_channel(&b).await;
    for (name, kind) in [
        ("amq.direct", ExchangeKind::Direct),
        ("amq.fanout", ExchangeKind::Fanout),
        ("amq.topic", ExchangeKind::Topic),
        ("amq.headers", ExchangeKind::Headers),
        ("amq.match", ExchangeKind::Headers),
    ] {
        assert!(exchange_exists(&c, name).await, "{name}");
        // a non-passive redeclare with the same type and durable=true is allowed
        let ch = within(c.create_channel()).await.unwrap();
        within(ch.exchange_declare(
            name.into(),
            kind,
            ExchangeDeclareOptions { durable: true, ..Default::default() },
            FieldTable::default(),
        ))
        .await
        .unwrap_or_else(|e| panic!("redeclare {name}: {e:?}"));
    }
    assert!(exchange_exists(&c, "amq.rabbitmq.trace").await);
    // even a passive declare of the default exchange "" is refused
    let ch = within(c.create_channel()).await.unwrap();
    let r = within(ch.exchange_declare(
        "".into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions { passive: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 403, "ACCESS_REFUSED - operation not permitted on the default exchange");
}

#[tokio::test]
async fn passive_declare_of_missing_exchange_is_not_found() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let x = unique("x-missing");
    let r = within(ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions { passive: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 404, &format!("NOT_FOUND - no exchange '{x}' in vhost '/'"));
}

#[tokio::test]
async fn passive_declare_ignores_type_and_flags() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let x = unique("x-passive");
    declare_x(&ch, &x, ExchangeKind::Fanout).await;
    within(ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions { passive: true, durable: true, auto_delete: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .expect("passive declare with other type/flags succeeds");
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn redeclare_with_different_type_is_precondition_failed() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let x = unique("x-type-clash");
    declare_x(&ch, &x, ExchangeKind::Direct).await;
    let r = within(ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(
        r,
        406,
        &format!("PRECONDITION_FAILED - inequivalent arg 'type' for exchange '{x}' in vhost '/': received 'fanout' but current is 'direct'"),
    );
    // the channel is closed, the connection is not
    assert!(c.status().connected());
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn redeclare_with_different_durable_is_precondition_failed() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let x = unique("x-durable-clash");
    declare_x(&ch, &x, ExchangeKind::Direct).await;
    let r = within(ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions { durable: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(
        r,
        406,
        &format!("PRECONDITION_FAILED - inequivalent arg 'durable' for exchange '{x}' in vhost '/': received 'true' but current is 'false'"),
    );
    let ch2 = within(c.create_channel()).await.unwrap();
    let r = within(ch2.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions { auto_delete: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(
        r,
        406,
        &format!("PRECONDITION_FAILED - inequivalent arg 'auto_delete' for exchange '{x}' in vhost '/': received 'true' but current is 'false'"),
    );
    let ch3 = within(c.create_channel()).await.unwrap();
    let r = within(ch3.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions { internal: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(
        r,
        406,
        &format!("PRECONDITION_FAILED - inequivalent arg 'internal' for exchange '{x}' in vhost '/': received 'true' but current is 'false'"),
    );
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn declare_amq_prefixed_exchange_is_access_refused() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let r = within(ch.exchange_declare(
        "amq.foo".into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 403, "ACCESS_REFUSED - exchange name 'amq.foo' contains reserved prefix 'amq.*'");
}

#[tokio::test]
async fn passive_declare_of_missing_amq_exchange_is_not_found() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let r = within(ch.exchange_declare(
        "amq.nonexistent".into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions { passive: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 404, "NOT_FOUND - no exchange 'amq.nonexistent' in vhost '/'");
}

#[tokio::test]
async fn delete_missing_exchange_is_ok() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    within(ch.exchange_delete(unique("x-nothing").as_str().into(), ExchangeDeleteOptions::default()))
        .await
        .expect("deleting a missing exchange succeeds in RabbitMQ 3.x");
}

#[tokio::test]
async fn delete_default_exchange_is_access_refused() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let r = within(ch.exchange_delete("".into(), ExchangeDeleteOptions::default())).await;
    assert_amqp_error(r, 403, "ACCESS_REFUSED - operation not permitted on the default exchange");
}

#[tokio::test]
async fn delete_amq_exchange_is_access_refused() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let r = within(ch.exchange_delete("amq.direct".into(), ExchangeDeleteOptions::default())).await;
    assert_amqp_error(r, 403, "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed");
}

#[tokio::test]
async fn bind_to_default_exchange_is_access_refused() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    let r = within(ch.queue_bind(
        q.name().clone(),
        "".into(),
        "k".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 403, "ACCESS_REFUSED - operation not permitted on the default exchange");
}

#[tokio::test]
async fn delete_if_unused() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let x = unique("x-ifunused");
    declare_x(&ch, &x, ExchangeKind::Direct).await;
    let q = declare_queue(&ch, "").await;
    bind(&ch, q.name().as_str(), &x, "k", FieldTable::default()).await;
    let r =
        within(ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions { if_unused: true, ..Default::default() }))
            .await;
    assert_amqp_error(r, 406, &format!("PRECONDITION_FAILED - exchange '{x}' in vhost '/' in use"));
    let ch = within(c.create_channel()).await.unwrap();
    within(ch.queue_unbind(q.name().clone(), x.as_str().into(), "k".into(), FieldTable::default())).await.unwrap();
    within(ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions { if_unused: true, ..Default::default() }))
        .await
        .expect("unused exchange deleted");
    assert!(!exchange_exists(&c, &x).await);
}

#[tokio::test]
async fn deleting_exchange_removes_its_bindings() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let x = unique("x-delbind");
    declare_x(&ch, &x, ExchangeKind::Fanout).await;
    let q = declare_queue(&ch, "").await;
    bind(&ch, q.name().as_str(), &x, "", FieldTable::default()).await;
    within(ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())).await.unwrap();
    declare_x(&ch, &x, ExchangeKind::Fanout).await;
    publish(&ch, &x, "", b"after").await;
    assert_eq!(get_body(&ch, q.name().as_str()).await, None, "old binding survived exchange deletion");
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn direct_routing() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let x = unique("x-direct");
    declare_x(&ch, &x, ExchangeKind::Direct).await;
    let q1 = declare_queue(&ch, "").await;
    let q2 = declare_queue(&ch, "").await;
    bind(&ch, q1.name().as_str(), &x, "a", FieldTable::default()).await;
    bind(&ch, q2.name().as_str(), &x, "b", FieldTable::default()).await;
    bind(&ch, q2.name().as_str(), &x, "a", FieldTable::default()).await;
    // duplicate binding is a no-op
    bind(&ch, q2.name().as_str(), &x, "a", FieldTable::default()).await;
    publish(&ch, &x, "a", b"A").await;
    publish(&ch, &x, "b", b"B").await;
    publish(&ch, &x, "c", b"C").await;
    assert_eq!(drain(&ch, q1.name().as_str()).await, ["A"]);
    assert_eq!(drain(&ch, q2.name().as_str()).await, ["A", "B"]);
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn default_exchange_routes_by_queue_name() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let q = declare_queue(&ch, &unique("q-default")).await;
    publish(&ch, "", q.name().as_str(), b"hello").await;
    publish(&ch, "amq.direct", q.name().as_str(), b"not bound").await;
    assert_eq!(drain(&ch, q.name().as_str()).await, ["hello"]);
    cleanup_queue(&b, q.name().as_str()).await;
}

#[tokio::test]
async fn fanout_routing_ignores_key() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let x = unique("x-fanout");
    declare_x(&ch, &x, ExchangeKind::Fanout).await;
    let q1 = declare_queue(&ch, "").await;
    let q2 = declare_queue(&ch, "").await;
    bind(&ch, q1.name().as_str(), &x, "", FieldTable::default()).await;
    bind(&ch, q2.name().as_str(), &x, "whatever", FieldTable::default()).await;
    publish(&ch, &x, "some.key", b"1").await;
    publish(&ch, &x, "", b"2").await;
    assert_eq!(drain(&ch, q1.name().as_str()).await, ["1", "2"]);
    assert_eq!(drain(&ch, q2.name().as_str()).await, ["1", "2"]);
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn headers_routing_all_and_any() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let x = unique("x-headers");
    declare_x(&ch, &x, ExchangeKind::Headers).await;
    let q_all = declare_queue(&ch, "").await;
    let q_any = declare_queue(&ch, "").await;
    let q_default = declare_queue(&ch, "").await;
    let q_empty = declare_queue(&ch, "").await;
    bind(&ch, q_all.name().as_str(), &x, "ignored", table(&[("x-match", s("all")), ("a", s("1")), ("b", s("2"))]))
        .await;
    bind(&ch, q_any.name().as_str(), &x, "", table(&[("x-match", s("any")), ("a", s("1")), ("b", s("2"))])).await;
    // no x-match means all
    bind(&ch, q_default.name().as_str(), &x, "", table(&[("a", s("1")), ("b", s("2"))])).await;
    // no headers at all: matches everything
    bind(&ch, q_empty.name().as_str(), &x, "", FieldTable::default()).await;
    let pubh = |body: &'static str, h: FieldTable| {
        let ch = ch.clone();
        let x = x.clone();
        async move {
            publish_props(&ch, &x, "", body.as_bytes(), lapin::BasicProperties::default().with_headers(h)).await;
        }
    };
    pubh("both", table(&[("a", s("1")), ("b", s("2"))])).await;
    pubh("both+extra", table(&[("a", s("1")), ("b", s("2")), ("c", s("3"))])).await;
    pubh("a-only", table(&[("a", s("1"))])).await;
    pubh("a-wrong", table(&[("a", s("9")), ("b", s("2"))])).await;
    pubh("none", FieldTable::default()).await;
    publish(&ch, &x, "", b"no-headers-prop").await;
    assert_eq!(drain(&ch, q_all.name().as_str()).await, ["both", "both+extra"]);
    assert_eq!(drain(&ch, q_default.name().as_str()).await, ["both", "both+extra"]);
    assert_eq!(drain(&ch, q_any.name().as_str()).await, ["both", "both+extra", "a-only", "a-wrong"]);
    assert_eq!(
        drain(&ch, q_empty.name().as_str()).await,
        ["both", "both+extra", "a-only", "a-wrong", "none", "no-headers-prop"]
    );
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn headers_value_types_and_void_match() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let x = unique("x-headers-types");
    declare_x(&ch, &x, ExchangeKind::Headers).await;
    let q_int = declare_queue(&ch, "").await;
    let q_void = declare_queue(&ch, "").await;
    bind(&ch, q_int.name().as_str(), &x, "", table(&[("x-match", s("all")), ("n", AMQPValue::LongInt(5))])).await;
    // a void value in the binding matches on presence of the key only
    bind(&ch, q_void.name().as_str(), &x, "", table(&[("x-match", s("all")), ("k", AMQPValue::Void)])).await;
    let props = |t: FieldTable| lapin::BasicProperties::default().with_headers(t);
    publish_props(&ch, &x, "", b"int5", props(table(&[("n", AMQPValue::LongInt(5))]))).await;
    publish_props(&ch, &x, "", b"str5", props(table(&[("n", s("5"))]))).await;
    publish_props(&ch, &x, "", b"k-any", props(table(&[("k", s("whatever"))]))).await;
    assert_eq!(drain(&ch, q_int.name().as_str()).await, ["int5"]);
    assert_eq!(drain(&ch, q_void.name().as_str()).await, ["k-any"]);
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn headers_invalid_x_match_is_precondition_failed() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let x = unique("x-headers-bad");
    declare_x(&ch, &x, ExchangeKind::Headers).await;
    let q = declare_queue(&ch, "").await;
    let r = within(ch.queue_bind(
        q.name().clone(),
        x.as_str().into(),
        "".into(),
        QueueBindOptions::default(),
        table(&[("x-match", s("some"))]),
    ))
    .await;
    assert_amqp_error(
        r,
        406,
        "PRECONDITION_FAILED - Invalid x-match field value <<\"some\">>; expected all, any, all-with-x, or any-with-x",
    );
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn exchange_to_exchange_binding_routes_and_unbinds() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let src = unique("x-e2e-src");
    let dst = unique("x-e2e-dst");
    declare_x(&ch, &src, ExchangeKind::Topic).await;
    declare_x(&ch, &dst, ExchangeKind::Fanout).await;
    let q = declare_queue(&ch, "").await;
    bind(&ch, q.name().as_str(), &dst, "", FieldTable::default()).await;
    within(ch.exchange_bind(
        dst.as_str().into(),
        src.as_str().into(),
        "a.*".into(),
        ExchangeBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    publish(&ch, &src, "a.b", b"routed").await;
    publish(&ch, &src, "x.y", b"not routed").await;
    assert_eq!(drain(&ch, q.name().as_str()).await, ["routed"]);
    within(ch.exchange_unbind(
        dst.as_str().into(),
        src.as_str().into(),
        "a.*".into(),
        ExchangeUnbindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    publish(&ch, &src, "a.b", b"after unbind").await;
    assert_eq!(drain(&ch, q.name().as_str()).await, Vec::<String>::new());
    cleanup_exchange(&b, &src).await;
    cleanup_exchange(&b, &dst).await;
}

#[tokio::test]
async fn exchange_binding_cycles_deliver_once() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let x1 = unique("x-cycle1");
    let x2 = unique("x-cycle2");
    declare_x(&ch, &x1, ExchangeKind::Fanout).await;
    declare_x(&ch, &x2, ExchangeKind::Fanout).await;
    let q = declare_queue(&ch, "").await;
    for (d, s_) in [(&x2, &x1), (&x1, &x2)] {
        within(ch.exchange_bind(
            d.as_str().into(),
            s_.as_str().into(),
            "".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        ))
        .await
        .unwrap();
    }
    bind(&ch, q.name().as_str(), &x1, "", FieldTable::default()).await;
    bind(&ch, q.name().as_str(), &x2, "", FieldTable::default()).await;
    publish(&ch, &x1, "", b"once").await;
    assert_eq!(drain(&ch, q.name().as_str()).await, ["once"]);
    cleanup_exchange(&b, &x1).await;
    cleanup_exchange(&b, &x2).await;
}

#[tokio::test]
async fn exchange_bind_missing_source_or_destination_is_not_found() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let x = unique("x-e2e-exists");
    let missing = unique("x-e2e-missing");
    declare_x(&ch, &x, ExchangeKind::Direct).await;
    let r = within(ch.exchange_bind(
        x.as_str().into(),
        missing.as_str().into(),
        "".into(),
        ExchangeBindOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 404, &format!("NOT_FOUND - no exchange '{missing}' in vhost '/'"));
    let ch = within(c.create_channel()).await.unwrap();
    let r = within(ch.exchange_bind(
        missing.as_str().into(),
        x.as_str().into(),
        "".into(),
        ExchangeBindOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 404, &format!("NOT_FOUND - no exchange '{missing}' in vhost '/'"));
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn queue_bind_to_missing_exchange_or_queue_is_not_found() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let missing_x = unique("x-bind-missing");
    let q = declare_queue(&ch, "").await;
    let r = within(ch.queue_bind(
        q.name().clone(),
        missing_x.as_str().into(),
        "k".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 404, &format!("NOT_FOUND - no exchange '{missing_x}' in vhost '/'"));
    let ch = within(c.create_channel()).await.unwrap();
    let missing_q = unique("q-bind-missing");
    let r = within(ch.queue_bind(
        missing_q.as_str().into(),
        "amq.direct".into(),
        "k".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 404, &format!("NOT_FOUND - no queue '{missing_q}' in vhost '/'"));
}

#[tokio::test]
async fn internal_exchange_cannot_be_published_to_but_routes_from_e2e() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let mut ev = events(&c);
    let internal = unique("x-internal");
    let front = unique("x-front");
    within(ch.exchange_declare(
        internal.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions { internal: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    declare_x(&ch, &front, ExchangeKind::Fanout).await;
    let q = declare_queue(&ch, "").await;
    bind(&ch, q.name().as_str(), &internal, "", FieldTable::default()).await;
    within(ch.exchange_bind(
        internal.as_str().into(),
        front.as_str().into(),
        "".into(),
        ExchangeBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    publish(&ch, &front, "", b"via front").await;
    assert_eq!(drain(&ch, q.name().as_str()).await, ["via front"]);

    // direct publish to the internal exchange closes the channel
    let ch2 = within(c.create_channel()).await.unwrap();
    publish(&ch2, &internal, "", b"direct").await;
    let r = next_error(&mut ev).await;
    assert_amqp_error(
        r,
        403,
        &format!("ACCESS_REFUSED - cannot publish to internal exchange '{internal}' in vhost '/'"),
    );
    cleanup_exchange(&b, &internal).await;
    cleanup_exchange(&b, &front).await;
}

#[tokio::test]
async fn publish_to_missing_exchange_closes_channel_with_not_found() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let mut ev = events(&c);
    let x = unique("x-pub-missing");
    publish(&ch, &x, "k", b"lost").await;
    // the error arrives asynchronously; a following synchronous method sees it
    let r = next_error(&mut ev).await;
    assert_amqp_error(r, 404, &format!("NOT_FOUND - no exchange '{x}' in vhost '/'"));
    assert!(c.status().connected());
    let ch2 = within(c.create_channel()).await.unwrap();
    declare_queue(&ch2, "").await;
}

#[tokio::test]
async fn auto_delete_exchange_goes_when_last_binding_removed() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let x = unique("x-autodel");
    within(ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions { auto_delete: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    // not deleted while it never had bindings
    assert!(exchange_exists(&c, &x).await);
    let q = declare_queue(&ch, "").await;
    bind(&ch, q.name().as_str(), &x, "k1", FieldTable::default()).await;
    bind(&ch, q.name().as_str(), &x, "k2", FieldTable::default()).await;
    within(ch.queue_unbind(q.name().clone(), x.as_str().into(), "k1".into(), FieldTable::default())).await.unwrap();
    assert!(exchange_exists(&c, &x).await);
    within(ch.queue_unbind(q.name().clone(), x.as_str().into(), "k2".into(), FieldTable::default())).await.unwrap();
    assert!(!exchange_exists(&c, &x).await);
}
