//! basic.* : publish, consume, get, ack/nack/reject, qos, recover, cancel.
mod common;

use std::time::Duration;

use common::*;
use futures_lite::StreamExt;
use lapin::{
    options::*,
    types::{AMQPValue, FieldTable},
    BasicProperties,
};

fn body(d: &lapin::message::Delivery) -> String {
    String::from_utf8(d.data.clone()).unwrap()
}

#[tokio::test]
async fn large_body_split_over_frames_arrives_intact() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    // 131072 frame_max -> several body frames each way
    let big: Vec<u8> = (0..700_000u32).map(|i| (i.wrapping_mul(31) % 256) as u8).collect();
    publish(&ch, "", q.name().as_str(), &big).await;
    publish(&ch, "", q.name().as_str(), b"").await; // empty body: no body frame at all
    let mut consumer = within(ch.basic_consume(
        q.name().clone(),
        "".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let d = next_delivery(&mut consumer).await;
    assert_eq!(d.data.len(), big.len());
    assert!(d.data == big, "large body corrupted");
    let d = next_delivery(&mut consumer).await;
    assert!(d.data.is_empty());
}

#[tokio::test]
async fn properties_round_trip() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    let mut headers = FieldTable::default();
    headers.insert("s".into(), AMQPValue::LongString("v".into()));
    headers.insert("i".into(), AMQPValue::LongInt(-5));
    headers.insert("b".into(), AMQPValue::Boolean(true));
    let props = BasicProperties::default()
        .with_content_type("text/plain".into())
        .with_content_encoding("utf-8".into())
        .with_headers(headers.clone())
        .with_delivery_mode(2)
        .with_priority(3)
        .with_correlation_id("corr".into())
        .with_reply_to("reply".into())
        .with_expiration("60000".into())
        .with_message_id("mid".into())
        .with_timestamp(1_700_000_000)
        .with_type("kind".into())
        .with_user_id("guest".into())
        .with_app_id("app".into());
    publish_props(&ch, "", q.name().as_str(), b"p", props.clone()).await;
    let m = within(ch.basic_get(q.name().clone(), BasicGetOptions { no_ack: true })).await.unwrap().unwrap();
    assert_eq!(m.delivery.properties, props);
    assert_eq!(m.delivery.exchange.as_str(), "");
    assert_eq!(m.delivery.routing_key.as_str(), q.name().as_str());
    assert!(!m.delivery.redelivered);
}

#[tokio::test]
async fn user_id_must_match_authenticated_user() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let mut ev = events(&_c);
    let q = declare_queue(&ch, "").await;
    publish_props(&ch, "", q.name().as_str(), b"x", BasicProperties::default().with_user_id("bob".into())).await;
    let r = next_error(&mut ev).await;
    assert_amqp_error(r, 406, "PRECONDITION_FAILED - user_id property set to 'bob' but authenticated user was 'guest'");
}

#[tokio::test]
async fn mandatory_unroutable_is_returned_no_route() {
    let b = broker().await;
    let (c, _) = connect_channel(&b).await;
    let ch = confirm_channel(&c).await;
    let x = unique("x-mandatory");
    within(ch.exchange_declare(
        x.as_str().into(),
        lapin::ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let confirm = within(ch.basic_publish(
        x.as_str().into(),
        "nobody".into(),
        BasicPublishOptions { mandatory: true, ..Default::default() },
        b"bounce",
        BasicProperties::default().with_message_id("m1".into()),
    ))
    .await
    .unwrap();
    let confirm = within(confirm).await.unwrap();
    assert!(confirm.is_ack(), "unroutable messages are still acked");
    let ret = confirm.take_message().expect("basic.return");
    assert_eq!(ret.reply_code, 312);
    assert_eq!(ret.reply_text.as_str(), "NO_ROUTE");
    assert_eq!(ret.delivery.exchange.as_str(), x);
    assert_eq!(ret.delivery.routing_key.as_str(), "nobody");
    assert_eq!(ret.delivery.data, b"bounce");
    assert_eq!(ret.delivery.properties.message_id().as_ref().map(|s| s.as_str()), Some("m1"));
    // non-mandatory unroutable: silently dropped, no return
    let confirm = within(ch.basic_publish(
        x.as_str().into(),
        "nobody".into(),
        BasicPublishOptions::default(),
        b"drop",
        BasicProperties::default(),
    ))
    .await
    .unwrap();
    let confirm = within(confirm).await.unwrap();
    assert!(confirm.is_ack());
    assert!(confirm.take_message().is_none());
    cleanup_exchange(&b, &x).await;
}

#[tokio::test]
async fn immediate_flag_is_not_implemented() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let mut ev = events(&c);
    let q = declare_queue(&ch, "").await;
    let _ = within(ch.basic_publish(
        "".into(),
        q.name().clone(),
        BasicPublishOptions { immediate: true, ..Default::default() },
        b"x",
        BasicProperties::default(),
    ))
    .await;
    let r = next_error(&mut ev).await;
    assert_amqp_error(r, 540, "NOT_IMPLEMENTED - immediate=true");
    eventually("connection closed (540 is a hard error)", || {
        let s = c.status().clone();
        async move { !s.connected() }
    })
    .await;
}

#[tokio::test]
async fn consume_with_server_generated_tag() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    let mut consumer =
        within(ch.basic_consume(q.name().clone(), "".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    let tag = consumer.tag().to_string();
    assert!(tag.starts_with("amq.ctag-"), "tag {tag}");
    assert_eq!(tag.len(), "amq.ctag-".len() + 22, "tag {tag}");
    publish(&ch, "", q.name().as_str(), b"hello").await;
    let d = next_delivery(&mut consumer).await;
    assert_eq!(body(&d), "hello");
    assert_eq!(d.delivery_tag, 1);
    assert!(!d.redelivered);
    within(d.acker.ack(BasicAckOptions::default())).await.unwrap();
}

#[tokio::test]
async fn duplicate_consumer_tag_is_not_allowed() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    let _c1 =
        within(ch.basic_consume(q.name().clone(), "dup".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    let r =
        within(ch.basic_consume(q.name().clone(), "dup".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await;
    assert_amqp_error(r, 530, "NOT_ALLOWED - attempt to reuse consumer tag 'dup'");
    let _ = c;
}

#[tokio::test]
async fn consume_from_missing_queue_is_not_found() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let name = unique("q-consume-missing");
    let r = within(ch.basic_consume(
        name.as_str().into(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 404, &format!("NOT_FOUND - no queue '{name}' in vhost '/'"));
}

#[tokio::test]
async fn no_ack_consumer_empties_queue() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    for i in 0..5 {
        publish(&ch, "", q.name().as_str(), format!("{i}").as_bytes()).await;
    }
    let mut consumer = within(ch.basic_consume(
        q.name().clone(),
        "".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    for i in 0..5 {
        let d = next_delivery(&mut consumer).await;
        assert_eq!(body(&d), format!("{i}"));
    }
    within(ch.basic_cancel(consumer.tag(), BasicCancelOptions::default())).await.unwrap();
    assert_eq!(get_body(&ch, q.name().as_str()).await, None);
}

#[tokio::test]
async fn exclusive_consumer_blocks_others() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let q = declare_queue(&ch, &unique("q-exclcons")).await;
    let name = q.name().to_string();
    let _c1 = within(ch.basic_consume(
        name.as_str().into(),
        "".into(),
        BasicConsumeOptions { exclusive: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let ch2 = within(c.create_channel()).await.unwrap();
    let r = within(ch2.basic_consume(
        name.as_str().into(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 403, &format!("ACCESS_REFUSED - queue '{name}' in vhost '/' in exclusive use"));
    // and an exclusive consume on a queue that already has consumers
    let q2 = declare_queue(&ch, &unique("q-exclcons2")).await;
    let _c2 =
        within(ch.basic_consume(q2.name().clone(), "".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    let ch3 = within(c.create_channel()).await.unwrap();
    let r = within(ch3.basic_consume(
        q2.name().clone(),
        "".into(),
        BasicConsumeOptions { exclusive: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 403, &format!("ACCESS_REFUSED - queue '{}' in vhost '/' in exclusive use", q2.name()));
    cleanup_queue(&b, &name).await;
    cleanup_queue(&b, q2.name().as_str()).await;
}

#[tokio::test]
async fn cancel_stops_deliveries_and_keeps_messages() {
    let b = broker().await;
    let (_c, ch) = connect_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    let mut consumer = within(ch.basic_consume(
        q.name().clone(),
        "my-tag".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    assert_eq!(consumer.tag().as_str(), "my-tag");
    publish(&ch, "", q.name().as_str(), b"1").await;
    let d = next_delivery(&mut consumer).await;
    within(d.acker.ack(BasicAckOptions::default())).await.unwrap();
    within(ch.basic_cancel("my-tag".into(), BasicCancelOptions::default())).await.unwrap();
    // stream ends after cancel
    assert!(within(consumer.next()).await.is_none());
    publish(&ch, "", q.name().as_str(), b"2").await;
    assert_eq!(get_body(&ch, q.name().as_str()).await.as_deref(), Some(&b"2"[..]));
    // cancelling an unknown tag is not an error
    within(ch.basic_cancel("no-such-tag".into(), BasicCancelOptions::default())).await.unwrap();
}

#[tokio::test]
async fn get_and_get_empty_with_message_count() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    assert!(within(ch.basic_get(q.name().clone(), BasicGetOptions::default())).await.unwrap().is_none());
    for i in 0..3 {
        publish_confirmed(&ch, "", q.name().as_str(), format!("{i}").as_bytes()).await;
    }
    for i in 0..3u32 {
        let m = within(ch.basic_get(q.name().clone(), BasicGetOptions { no_ack: false })).await.unwrap().unwrap();
        assert_eq!(body(&m.delivery), format!("{i}"));
        assert_eq!(m.message_count, 2 - i);
        assert_eq!(m.delivery.delivery_tag, u64::from(i) + 1);
        within(m.delivery.acker.ack(BasicAckOptions::default())).await.unwrap();
    }
    assert!(within(ch.basic_get(q.name().clone(), BasicGetOptions::default())).await.unwrap().is_none());
    let name = unique("q-get-missing");
    let r = within(ch.basic_get(name.as_str().into(), BasicGetOptions::default())).await;
    assert_amqp_error(r, 404, &format!("NOT_FOUND - no queue '{name}' in vhost '/'"));
}

#[tokio::test]
async fn ack_multiple() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    for i in 0..5 {
        publish_confirmed(&ch, "", q.name().as_str(), format!("{i}").as_bytes()).await;
    }
    let mut consumer =
        within(ch.basic_consume(q.name().clone(), "".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    let mut last = None;
    for _ in 0..5 {
        last = Some(next_delivery(&mut consumer).await);
    }
    let last = last.unwrap();
    // ack tags 1..=3 at once
    within(ch.basic_ack(3, BasicAckOptions { multiple: true })).await.unwrap();
    within(ch.basic_cancel(consumer.tag(), BasicCancelOptions::default())).await.unwrap();
    let _ = last;
    // close the channel: 4 and 5 go back
    within(ch.close(200, "OK".into())).await.unwrap();
    let ch2 = within(_c.create_channel()).await.unwrap();
    let mut got = Vec::new();
    while let Some(m) = within(ch2.basic_get(q.name().clone(), BasicGetOptions { no_ack: true })).await.unwrap() {
        assert!(m.delivery.redelivered);
        got.push(body(&m.delivery));
    }
    assert_eq!(got, ["3", "4"]);
}

#[tokio::test]
async fn reject_and_nack_requeue_set_redelivered() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    for i in 0..4 {
        publish_confirmed(&ch, "", q.name().as_str(), format!("{i}").as_bytes()).await;
    }
    let mut consumer =
        within(ch.basic_consume(q.name().clone(), "".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    let d0 = next_delivery(&mut consumer).await;
    let _d1 = next_delivery(&mut consumer).await;
    let d2 = next_delivery(&mut consumer).await;
    let d3 = next_delivery(&mut consumer).await;
    assert!(!d0.redelivered);
    // reject 0 with requeue: goes back to the head of the queue and is redelivered
    within(d0.acker.reject(BasicRejectOptions { requeue: true })).await.unwrap();
    let r0 = next_delivery(&mut consumer).await;
    assert_eq!(body(&r0), "0");
    assert!(r0.redelivered);
    assert_eq!(r0.delivery_tag, 5);
    // nack multiple up to tag 3 with requeue: 1 and 2 come back, in order
    within(d2.acker.nack(BasicNackOptions { multiple: true, requeue: true })).await.unwrap();
    let a = next_delivery(&mut consumer).await;
    let bb = next_delivery(&mut consumer).await;
    assert_eq!((body(&a), body(&bb)), ("1".to_string(), "2".to_string()));
    assert!(a.redelivered && bb.redelivered);
    // nack without requeue drops
    within(d3.acker.nack(BasicNackOptions { multiple: false, requeue: false })).await.unwrap();
    within(r0.acker.ack(BasicAckOptions::default())).await.unwrap();
    within(a.acker.ack(BasicAckOptions::default())).await.unwrap();
    within(bb.acker.ack(BasicAckOptions::default())).await.unwrap();
    assert_no_delivery(&mut consumer, 200).await;
    within(ch.basic_cancel(consumer.tag(), BasicCancelOptions::default())).await.unwrap();
    assert_eq!(get_body(&ch, q.name().as_str()).await, None);
}

#[tokio::test]
async fn reject_without_requeue_drops() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    publish_confirmed(&ch, "", q.name().as_str(), b"x").await;
    let m = within(ch.basic_get(q.name().clone(), BasicGetOptions::default())).await.unwrap().unwrap();
    within(m.delivery.acker.reject(BasicRejectOptions { requeue: false })).await.unwrap();
    assert_eq!(get_body(&ch, q.name().as_str()).await, None);
}

#[tokio::test]
async fn unknown_delivery_tag_is_precondition_failed() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let mut ev = events(&c);
    within(ch.basic_ack(42, BasicAckOptions::default())).await.unwrap();
    let r = next_error(&mut ev).await;
    assert_amqp_error(r, 406, "PRECONDITION_FAILED - unknown delivery tag 42");
    // double ack
    let ch = within(c.create_channel()).await.unwrap();
    let q = declare_queue(&ch, "").await;
    publish(&ch, "", q.name().as_str(), b"x").await;
    let m = within(ch.basic_get(q.name().clone(), BasicGetOptions::default())).await.unwrap().unwrap();
    let tag = m.delivery.delivery_tag;
    within(ch.basic_ack(tag, BasicAckOptions::default())).await.unwrap();
    within(ch.basic_ack(tag, BasicAckOptions::default())).await.unwrap();
    let r = next_error(&mut ev).await;
    assert_amqp_error(r, 406, &format!("PRECONDITION_FAILED - unknown delivery tag {tag}"));
    // nack / reject of unknown tags
    for op in ["nack", "reject"] {
        let ch = within(c.create_channel()).await.unwrap();
        if op == "nack" {
            within(ch.basic_nack(7, BasicNackOptions::default())).await.unwrap();
        } else {
            within(ch.basic_reject(7, BasicRejectOptions::default())).await.unwrap();
        }
        let r = next_error(&mut ev).await;
        assert_amqp_error(r, 406, "PRECONDITION_FAILED - unknown delivery tag 7");
    }
}

#[tokio::test]
async fn qos_prefetch_count_per_consumer() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    for i in 0..6 {
        publish_confirmed(&ch, "", q.name().as_str(), format!("{i}").as_bytes()).await;
    }
    within(ch.basic_qos(2, BasicQosOptions { global: false })).await.unwrap();
    let mut c1 =
        within(ch.basic_consume(q.name().clone(), "".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    let d0 = next_delivery(&mut c1).await;
    let d1 = next_delivery(&mut c1).await;
    assert_no_delivery(&mut c1, 300).await;
    // a second consumer on the same channel gets its own 2
    let mut c2 =
        within(ch.basic_consume(q.name().clone(), "".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    let e0 = next_delivery(&mut c2).await;
    let _e1 = next_delivery(&mut c2).await;
    assert_no_delivery(&mut c2, 300).await;
    assert_eq!((body(&d0), body(&d1), body(&e0)), ("0".into(), "1".into(), "2".into()));
    within(d0.acker.ack(BasicAckOptions::default())).await.unwrap();
    let d2 = next_delivery(&mut c1).await;
    assert_eq!(body(&d2), "4");
    assert_no_delivery(&mut c1, 200).await;
    let _ = d1;
}

#[tokio::test]
async fn qos_global_limits_the_channel() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q1 = declare_queue(&ch, "").await;
    let q2 = declare_queue(&ch, "").await;
    for i in 0..5 {
        publish_confirmed(&ch, "", q1.name().as_str(), format!("a{i}").as_bytes()).await;
        publish_confirmed(&ch, "", q2.name().as_str(), format!("b{i}").as_bytes()).await;
    }
    within(ch.basic_qos(3, BasicQosOptions { global: true })).await.unwrap();
    let mut c1 =
        within(ch.basic_consume(q1.name().clone(), "".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    let mut c2 =
        within(ch.basic_consume(q2.name().clone(), "".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    // collect for a moment: at most 3 unacked deliveries in total on the channel
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(600);
    loop {
        tokio::select! {
            Some(Ok(d)) = c1.next() => got.push(d),
            Some(Ok(d)) = c2.next() => got.push(d),
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    assert_eq!(got.len(), 3, "global prefetch 3, got {:?}", got.iter().map(body).collect::<Vec<_>>());
    // acking one frees exactly one slot
    within(got[0].acker.ack(BasicAckOptions::default())).await.unwrap();
    let mut more = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(600);
    loop {
        tokio::select! {
            Some(Ok(_)) = c1.next() => more += 1,
            Some(Ok(_)) = c2.next() => more += 1,
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    assert_eq!(more, 1);
}

#[tokio::test]
async fn qos_prefetch_zero_is_unlimited() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    for i in 0..20 {
        publish_confirmed(&ch, "", q.name().as_str(), format!("{i}").as_bytes()).await;
    }
    within(ch.basic_qos(0, BasicQosOptions::default())).await.unwrap();
    let mut c =
        within(ch.basic_consume(q.name().clone(), "".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    for i in 0..20 {
        assert_eq!(body(&next_delivery(&mut c).await), format!("{i}"));
    }
}

#[tokio::test]
async fn recover_requeue_redelivers_unacked() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    for i in 0..3 {
        publish_confirmed(&ch, "", q.name().as_str(), format!("{i}").as_bytes()).await;
    }
    let mut c =
        within(ch.basic_consume(q.name().clone(), "".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    for i in 0..3 {
        let d = next_delivery(&mut c).await;
        assert_eq!(body(&d), format!("{i}"));
        assert!(!d.redelivered);
    }
    within(ch.basic_recover(BasicRecoverOptions { requeue: true })).await.unwrap();
    for i in 0..3 {
        let d = next_delivery(&mut c).await;
        assert_eq!(body(&d), format!("{i}"));
        assert!(d.redelivered);
        within(d.acker.ack(BasicAckOptions::default())).await.unwrap();
    }
    assert_no_delivery(&mut c, 200).await;
}

#[tokio::test]
async fn unacked_messages_return_in_order_when_channel_closes() {
    let b = broker().await;
    let (c, ch) = connect_confirm_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    for i in 0..5 {
        publish_confirmed(&ch, "", q.name().as_str(), format!("{i}").as_bytes()).await;
    }
    let cch = within(c.create_channel()).await.unwrap();
    let mut consumer =
        within(cch.basic_consume(q.name().clone(), "".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    let mut ds = Vec::new();
    for _ in 0..5 {
        ds.push(next_delivery(&mut consumer).await);
    }
    // ack the middle one, leave the others unacked
    within(ds[2].acker.ack(BasicAckOptions::default())).await.unwrap();
    within(cch.close(200, "OK".into())).await.unwrap();
    let mut got = Vec::new();
    while let Some(m) = within(ch.basic_get(q.name().clone(), BasicGetOptions { no_ack: true })).await.unwrap() {
        assert!(m.delivery.redelivered);
        got.push(body(&m.delivery));
    }
    assert_eq!(got, ["0", "1", "3", "4"]);
}

#[tokio::test]
async fn unacked_messages_return_in_order_when_connection_closes() {
    let b = broker().await;
    let (_c, ch) = connect_confirm_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    for i in 0..4 {
        publish_confirmed(&ch, "", q.name().as_str(), format!("{i}").as_bytes()).await;
    }
    // keep one ready message behind the unacked ones
    let (c2, ch2) = connect_channel(&b).await;
    within(ch2.basic_qos(3, BasicQosOptions::default())).await.unwrap();
    let mut consumer =
        within(ch2.basic_consume(q.name().clone(), "".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    for i in 0..3 {
        assert_eq!(body(&next_delivery(&mut consumer).await), format!("{i}"));
    }
    within(c2.close(200, "OK".into())).await.unwrap();
    let mut got = Vec::new();
    let mut redelivered = Vec::new();
    eventually("all 4 messages back in the queue", || {
        let ch = ch.clone();
        let q = q.name().to_string();
        async move { message_count(&ch, &q).await == 4 }
    })
    .await;
    while let Some(m) = within(ch.basic_get(q.name().clone(), BasicGetOptions { no_ack: true })).await.unwrap() {
        redelivered.push(m.delivery.redelivered);
        got.push(body(&m.delivery));
    }
    assert_eq!(got, ["0", "1", "2", "3"]);
    assert_eq!(redelivered, [true, true, true, false]);
}

#[tokio::test]
async fn round_robin_between_consumers() {
    let b = broker().await;
    let (c, ch) = connect_confirm_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    let ch1 = within(c.create_channel()).await.unwrap();
    let ch2 = within(c.create_channel()).await.unwrap();
    let mut c1 = within(ch1.basic_consume(
        q.name().clone(),
        "".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let mut c2 = within(ch2.basic_consume(
        q.name().clone(),
        "".into(),
        BasicConsumeOptions { no_ack: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .unwrap();
    for i in 0..4 {
        publish_confirmed(&ch, "", q.name().as_str(), format!("{i}").as_bytes()).await;
    }
    let a: Vec<String> = vec![body(&next_delivery(&mut c1).await), body(&next_delivery(&mut c1).await)];
    let bb: Vec<String> = vec![body(&next_delivery(&mut c2).await), body(&next_delivery(&mut c2).await)];
    assert_eq!(a, ["0", "2"]);
    assert_eq!(bb, ["1", "3"]);
}

#[tokio::test]
async fn delivery_tags_are_per_channel_and_ack_on_wrong_channel_fails() {
    let b = broker().await;
    let (c, ch) = connect_confirm_channel(&b).await;
    let mut ev = events(&c);
    let q = declare_queue(&ch, "").await;
    publish_confirmed(&ch, "", q.name().as_str(), b"x").await;
    publish_confirmed(&ch, "", q.name().as_str(), b"y").await;
    let ch1 = within(c.create_channel()).await.unwrap();
    let ch2 = within(c.create_channel()).await.unwrap();
    let m1 = within(ch1.basic_get(q.name().clone(), BasicGetOptions::default())).await.unwrap().unwrap();
    let m2 = within(ch2.basic_get(q.name().clone(), BasicGetOptions::default())).await.unwrap().unwrap();
    assert_eq!((m1.delivery.delivery_tag, m2.delivery.delivery_tag), (1, 1));
    within(ch1.basic_ack(1, BasicAckOptions::default())).await.unwrap();
    let ch3 = within(c.create_channel()).await.unwrap();
    within(ch3.basic_ack(1, BasicAckOptions::default())).await.unwrap();
    let r = next_error(&mut ev).await;
    assert_amqp_error(r, 406, "PRECONDITION_FAILED - unknown delivery tag 1");
    within(ch2.basic_ack(1, BasicAckOptions::default())).await.unwrap();
}

#[tokio::test]
async fn amqprs_publish_consume_smoke() {
    use amqprs::{
        channel::{BasicConsumeArguments, BasicPublishArguments, QueueDeclareArguments},
        connection::{Connection as AConn, OpenConnectionArguments},
        BasicProperties as ABasicProperties,
    };
    let b = broker().await;
    let args = OpenConnectionArguments::new(&b.addr().ip().to_string(), b.addr().port(), "guest", "guest");
    let conn = within(AConn::open(&args)).await.unwrap();
    let ch = within(conn.open_channel(None)).await.unwrap();
    let name = unique("q-amqprs");
    let (qname, _, _) =
        within(ch.queue_declare(QueueDeclareArguments::transient_autodelete(&name))).await.unwrap().unwrap();
    assert_eq!(qname, name);
    let (_tag, mut rx) =
        within(ch.basic_consume_rx(BasicConsumeArguments::new(&name, "").manual_ack(false).finish())).await.unwrap();
    for i in 0..3 {
        within(ch.basic_publish(
            ABasicProperties::default(),
            format!("m{i}").into_bytes(),
            BasicPublishArguments::new("", &name),
        ))
        .await
        .unwrap();
    }
    for i in 0..3 {
        let msg = within(rx.recv()).await.expect("amqprs delivery");
        assert_eq!(msg.content.unwrap(), format!("m{i}").into_bytes());
    }
    within(ch.close()).await.unwrap();
    within(conn.close()).await.unwrap();
}
