//! Queue declaration, binding, purge, deletion, exclusivity and auto-delete.
mod common;

use common::*;
use lapin::{options::*, types::FieldTable, ExchangeKind};

#[tokio::test]
async fn declare_returns_name_and_counts() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let name = unique("q-counts");
    let q = declare_queue(&ch, &name).await;
    assert_eq!(q.name().as_str(), name);
    assert_eq!((q.message_count(), q.consumer_count()), (0, 0));
    for i in 0..3 {
        publish(&ch, "", &name, format!("m{i}").as_bytes()).await;
    }
    let _consumer = within(ch.basic_consume(
        name.as_str().into(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    // a second channel (qos 0, unacked messages are not counted as ready)
    let ch2 = within(_c.create_channel()).await.unwrap();
    let q2 = declare_queue(&ch2, &name).await;
    assert_eq!(q2.consumer_count(), 1);
    // all 3 were delivered to the consumer (unacked), so none are ready
    assert_eq!(q2.message_count(), 0);
    cleanup_queue(&b, &name).await;
}

#[tokio::test]
async fn declare_ok_counts_ready_messages() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let name = unique("q-ready");
    declare_queue(&ch, &name).await;
    for _ in 0..5 {
        publish_confirmed(&ch, "", &name, b"x").await;
    }
    let q = declare_queue(&ch, &name).await;
    assert_eq!((q.message_count(), q.consumer_count()), (5, 0));
    let q = within(ch.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions { passive: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    assert_eq!((q.message_count(), q.consumer_count()), (5, 0));
    cleanup_queue(&b, &name).await;
}

#[tokio::test]
async fn server_named_queue() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let q1 = declare_queue(&ch, "").await;
    let q2 = declare_queue(&ch, "").await;
    for q in [&q1, &q2] {
        let n = q.name().as_str();
        assert!(n.starts_with("amq.gen-"), "server-generated name {n}");
        assert_eq!(n.len(), "amq.gen-".len() + 22, "amq.gen- followed by 22 chars: {n}");
    }
    assert_ne!(q1.name(), q2.name());
    publish(&ch, "", q1.name().as_str(), b"x").await;
    assert_eq!(get_body(&ch, q1.name().as_str()).await.as_deref(), Some(&b"x"[..]));
}

/// A non-passive redeclare of an existing server-named queue is refused
/// (the reserved-prefix check runs before the existence check); a passive one
/// works.
#[tokio::test]
async fn redeclare_of_server_named_queue_is_access_refused() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    let name = q.name().to_string();
    within(ch.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions { passive: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .expect("passive declare of amq.gen-* works");
    let ch2 = within(c.create_channel()).await.unwrap();
    let r =
        within(ch2.queue_declare(name.as_str().into(), QueueDeclareOptions::default(), FieldTable::default())).await;
    assert_amqp_error(r, 403, &format!("ACCESS_REFUSED - queue name '{name}' contains reserved prefix 'amq.*'"));
}

#[tokio::test]
async fn passive_declare_of_missing_queue_is_not_found() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let name = unique("q-missing");
    let r = within(ch.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions { passive: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 404, &format!("NOT_FOUND - no queue '{name}' in vhost '/'"));
    assert!(c.status().connected());
}

#[tokio::test]
async fn redeclare_with_different_flags_is_precondition_failed() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let name = unique("q-clash");
    declare_queue(&ch, &name).await;
    let r = within(ch.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions { durable: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(
        r,
        406,
        &format!("PRECONDITION_FAILED - inequivalent arg 'durable' for queue '{name}' in vhost '/': received 'true' but current is 'false'"),
    );
    let ch = within(c.create_channel()).await.unwrap();
    let r = within(ch.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions { auto_delete: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(
        r,
        406,
        &format!("PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue '{name}' in vhost '/': received 'true' but current is 'false'"),
    );
    let ch = within(c.create_channel()).await.unwrap();
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), lapin::types::AMQPValue::LongInt(10));
    let r = within(ch.queue_declare(name.as_str().into(), QueueDeclareOptions::default(), args)).await;
    assert_amqp_error(
        r,
        406,
        &format!("PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '{name}' in vhost '/': received the value '10' of type 'signedint' but current is none"),
    );
    cleanup_queue(&b, &name).await;
}

#[tokio::test]
async fn declare_amq_prefixed_queue_is_access_refused() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let r = within(ch.queue_declare("amq.myqueue".into(), QueueDeclareOptions::default(), FieldTable::default())).await;
    assert_amqp_error(r, 403, "ACCESS_REFUSED - queue name 'amq.myqueue' contains reserved prefix 'amq.*'");
}

#[tokio::test]
async fn durable_queue_declares() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let name = unique("q-durable");
    let q = within(ch.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions { durable: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    assert_eq!(q.name().as_str(), name);
    within(ch.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions { durable: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    cleanup_queue(&b, &name).await;
}

#[tokio::test]
async fn bind_unbind_and_unbind_missing_binding() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let x = unique("x-qbind");
    within(ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let q = declare_queue(&ch, "").await;
    within(ch.queue_bind(
        q.name().clone(),
        x.as_str().into(),
        "k".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    publish(&ch, &x, "k", b"1").await;
    within(ch.queue_unbind(q.name().clone(), x.as_str().into(), "k".into(), FieldTable::default())).await.unwrap();
    publish(&ch, &x, "k", b"2").await;
    assert_eq!(drain(&ch, q.name().as_str()).await, ["1"]);
    // unbinding a binding that does not exist is fine
    within(ch.queue_unbind(q.name().clone(), x.as_str().into(), "nope".into(), FieldTable::default()))
        .await
        .expect("unbind of a missing binding succeeds");
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
/// RabbitMQ 3.x: unbind is idempotent, even when the queue or exchange does
/// not exist (no 404).
async fn unbind_of_missing_queue_or_exchange_succeeds() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    let x = unique("x-unbind-missing");
    let r = within(ch.queue_unbind(q.name().clone(), x.as_str().into(), "k".into(), FieldTable::default())).await;
    r.expect("unbind from a missing exchange succeeds");
    let ch = within(c.create_channel()).await.unwrap();
    let qn = unique("q-unbind-missing");
    let r = within(ch.queue_unbind(qn.as_str().into(), "amq.direct".into(), "k".into(), FieldTable::default())).await;
    r.expect("unbind of a missing queue succeeds");
    let r = within(ch.exchange_unbind(
        qn.as_str().into(),
        "amq.direct".into(),
        "k".into(),
        ExchangeUnbindOptions::default(),
        FieldTable::default(),
    ))
    .await;
    r.expect("exchange.unbind of a missing destination succeeds");
}

#[tokio::test]
async fn purge_returns_count() {
    let b = broker().await;
    let (c, ch) = connect_confirm_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    for _ in 0..7 {
        publish_confirmed(&ch, "", q.name().as_str(), b"x").await;
    }
    // one message is delivered but unacked: purge only removes ready ones
    let got = within(ch.basic_get(q.name().clone(), BasicGetOptions { no_ack: false })).await.unwrap().unwrap();
    let n = within(ch.queue_purge(q.name().clone(), QueuePurgeOptions::default())).await.unwrap();
    assert_eq!(n, 6);
    let n = within(ch.queue_purge(q.name().clone(), QueuePurgeOptions::default())).await.unwrap();
    assert_eq!(n, 0);
    within(got.delivery.acker.reject(BasicRejectOptions { requeue: true })).await.unwrap();
    // the reject is asynchronous: wait for the requeue to be visible
    eventually("requeued message counted", || {
        let ch = ch.clone();
        let q = q.name().to_string();
        async move { message_count(&ch, &q).await == 1 }
    })
    .await;
    let ch2 = within(c.create_channel()).await.unwrap();
    let missing = unique("q-purge-missing");
    let r = within(ch2.queue_purge(missing.as_str().into(), QueuePurgeOptions::default())).await;
    assert_amqp_error(r, 404, &format!("NOT_FOUND - no queue '{missing}' in vhost '/'"));
}

#[tokio::test]
async fn delete_returns_count_and_missing_is_ok() {
    let b = broker().await;
    let (c, ch) = connect_confirm_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    for _ in 0..4 {
        publish_confirmed(&ch, "", q.name().as_str(), b"x").await;
    }
    let n = within(ch.queue_delete(q.name().clone(), QueueDeleteOptions::default())).await.unwrap();
    assert_eq!(n, 4);
    assert!(!queue_exists(&c, q.name().as_str()).await);
    let n = within(ch.queue_delete(unique("q-never").as_str().into(), QueueDeleteOptions::default()))
        .await
        .expect("deleting a missing queue succeeds");
    assert_eq!(n, 0);
}

#[tokio::test]
async fn delete_if_unused_and_if_empty() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let name = unique("q-ifs");
    declare_queue(&ch, &name).await;
    let cons_ch = within(c.create_channel()).await.unwrap();
    let consumer = within(cons_ch.basic_consume(
        name.as_str().into(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let r = within(ch.queue_delete(name.as_str().into(), QueueDeleteOptions { if_unused: true, ..Default::default() }))
        .await;
    assert_amqp_error(r, 406, &format!("PRECONDITION_FAILED - queue '{name}' in vhost '/' in use"));
    within(cons_ch.basic_cancel(consumer.tag(), BasicCancelOptions::default())).await.unwrap();

    let ch = within(c.create_channel()).await.unwrap();
    publish(&ch, "", &name, b"x").await;
    let r = within(ch.queue_delete(name.as_str().into(), QueueDeleteOptions { if_empty: true, ..Default::default() }))
        .await;
    assert_amqp_error(r, 406, &format!("PRECONDITION_FAILED - queue '{name}' in vhost '/' not empty"));

    let ch = within(c.create_channel()).await.unwrap();
    within(ch.queue_purge(name.as_str().into(), QueuePurgeOptions::default())).await.unwrap();
    let n = within(ch.queue_delete(
        name.as_str().into(),
        QueueDeleteOptions { if_unused: true, if_empty: true, ..Default::default() },
    ))
    .await
    .unwrap();
    assert_eq!(n, 0);
    assert!(!queue_exists(&c, &name).await);
}

#[tokio::test]
async fn exclusive_queue_is_locked_to_its_connection() {
    let b = broker().await;
    let (c1, ch1) = connect_channel(&b).await;
    let name = unique("q-excl");
    within(ch1.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions { exclusive: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    // same connection, other channel: fine
    let ch1b = within(c1.create_channel()).await.unwrap();
    publish(&ch1b, "", &name, b"x").await;
    assert_eq!(get_body(&ch1b, &name).await.as_deref(), Some(&b"x"[..]));

    let locked = format!(
        "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{name}' in vhost '/'. \
         It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."
    );
    let (c2, ch2) = connect_channel(&b).await;
    let r =
        within(ch2.queue_declare(name.as_str().into(), QueueDeclareOptions::default(), FieldTable::default())).await;
    assert_amqp_error(r, 405, &locked);
    let ch2 = within(c2.create_channel()).await.unwrap();
    let r = within(ch2.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions { passive: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 405, &locked);
    let ch2 = within(c2.create_channel()).await.unwrap();
    let r = within(ch2.basic_consume(
        name.as_str().into(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 405, &locked);
    let ch2 = within(c2.create_channel()).await.unwrap();
    let r = within(ch2.basic_get(name.as_str().into(), BasicGetOptions::default())).await;
    assert_amqp_error(r, 405, &locked);
    let ch2 = within(c2.create_channel()).await.unwrap();
    let r = within(ch2.queue_purge(name.as_str().into(), QueuePurgeOptions::default())).await;
    assert_amqp_error(r, 405, &locked);
    let ch2 = within(c2.create_channel()).await.unwrap();
    let r = within(ch2.queue_delete(name.as_str().into(), QueueDeleteOptions::default())).await;
    assert_amqp_error(r, 405, &locked);
    let ch2 = within(c2.create_channel()).await.unwrap();
    let r = within(ch2.queue_bind(
        name.as_str().into(),
        "amq.fanout".into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 405, &locked);
    // publishing from another connection is allowed
    let ch2 = confirm_channel(&c2).await;
    publish_confirmed(&ch2, "", &name, b"from c2").await;
    assert_eq!(get_body(&ch1b, &name).await.as_deref(), Some(&b"from c2"[..]));
}

#[tokio::test]
async fn exclusive_flag_mismatch_on_same_connection() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let name = unique("q-notexcl");
    declare_queue(&ch, &name).await;
    let r = within(ch.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions { exclusive: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(
        r,
        405,
        &format!(
            "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{name}' in vhost '/'. \
             It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."
        ),
    );
    assert!(c.status().connected());
    cleanup_queue(&b, &name).await;
}

#[tokio::test]
async fn exclusive_queue_removed_when_connection_closes() {
    let b = broker().await;
    let (c1, ch1) = connect_channel(&b).await;
    let name = unique("q-excl-gone");
    within(ch1.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions { exclusive: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let (c2, _ch2) = connect_channel(&b).await;
    within(c1.close(200, "OK".into())).await.unwrap();
    eventually("exclusive queue deleted", || {
        let c2 = &c2;
        let name = name.clone();
        async move { !queue_exists(c2, &name).await }
    })
    .await;
    // and the name is free for another connection
    let ch = within(c2.create_channel()).await.unwrap();
    within(ch.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions { exclusive: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn auto_delete_queue_removed_when_last_consumer_cancels() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let name = unique("q-autodel");
    within(ch.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions { auto_delete: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    // never consumed from: stays
    assert!(queue_exists(&c, &name).await);
    let c1 = within(ch.basic_consume(
        name.as_str().into(),
        "c1".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let c2 = within(ch.basic_consume(
        name.as_str().into(),
        "c2".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    within(ch.basic_cancel(c1.tag(), BasicCancelOptions::default())).await.unwrap();
    assert!(queue_exists(&c, &name).await, "deleted while a consumer remains");
    within(ch.basic_cancel(c2.tag(), BasicCancelOptions::default())).await.unwrap();
    eventually("auto-delete queue deleted", || {
        let c = &c;
        let name = name.clone();
        async move { !queue_exists(c, &name).await }
    })
    .await;
}

#[tokio::test]
async fn auto_delete_queue_removed_when_consumer_channel_closes() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let name = unique("q-autodel-ch");
    within(ch.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions { auto_delete: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let cch = within(c.create_channel()).await.unwrap();
    let _cons = within(cch.basic_consume(
        name.as_str().into(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    within(cch.close(200, "OK".into())).await.unwrap();
    eventually("auto-delete queue deleted", || {
        let c = &c;
        let name = name.clone();
        async move { !queue_exists(c, &name).await }
    })
    .await;
}

#[tokio::test]
async fn deleting_queue_cancels_its_consumers() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    let mut consumer =
        within(ch.basic_consume(q.name().clone(), "".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    let ch2 = within(c.create_channel()).await.unwrap();
    within(ch2.queue_delete(q.name().clone(), QueueDeleteOptions::default())).await.unwrap();
    // consumer_cancel_notify: the stream ends
    use futures_lite::StreamExt;
    match within(consumer.next()).await {
        None => {}
        other => panic!("expected the consumer stream to end, got {other:?}"),
    }
    // the channel is still usable
    declare_queue(&ch, "").await;
}

#[tokio::test]
async fn message_count_in_declare_ok_excludes_unacked() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    for _ in 0..3 {
        publish_confirmed(&ch, "", q.name().as_str(), b"x").await;
    }
    let m = within(ch.basic_get(q.name().clone(), BasicGetOptions { no_ack: false })).await.unwrap().unwrap();
    assert_eq!(m.message_count, 2);
    assert_eq!(message_count(&ch, q.name().as_str()).await, 2);
    within(m.delivery.acker.nack(BasicNackOptions { requeue: true, multiple: false })).await.unwrap();
    eventually("requeued message counted", || {
        let ch = ch.clone();
        let q = q.name().to_string();
        async move { message_count(&ch, &q).await == 3 }
    })
    .await;
}
