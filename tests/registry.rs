//! Warren only: the broker-side information the management API reads —
//! the connection and channel registry, forced closes, per-queue unacked
//! counts, consumer details and message counters — checked with real
//! clients (lapin, and raw sockets for the abrupt cases).
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::raw::RawConn;
use common::*;
use lapin::{options::*, types::FieldTable, Connection, ConnectionProperties};
use warren::broker::{Broker, ConnectionInfo, ConnectionState};

fn broker_of(b: &TestBroker) -> Arc<Broker> {
    Arc::clone(b.server().expect("an in-process Warren").broker())
}

async fn connect_named(b: &TestBroker, name: &str) -> Connection {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    within(Connection::connect(&b.uri(), props)).await.expect("connect")
}

fn named<'a>(conns: &'a [ConnectionInfo], name: &str) -> &'a ConnectionInfo {
    conns.iter().find(|c| c.user_provided_name.as_deref() == Some(name)).expect("listed by its connection_name")
}

async fn registry_empty(broker: &Broker) {
    eventually("the registry is empty", || {
        let empty = broker.connection_count() == 0 && broker.channel_count() == 0 && broker.connections().is_empty();
        async move { empty }
    })
    .await;
}

#[tokio::test]
async fn connections_and_channels_are_listed_until_they_close() {
    if external() {
        return;
    }
    let b = broker().await;
    let broker = broker_of(&b);
    let c1 = connect_named(&b, "one").await;
    let c2 = connect_named(&b, "two").await;
    let a = within(c1.create_channel()).await.unwrap();
    let _a2 = within(c1.create_channel()).await.unwrap();
    let confirm = confirm_channel(&c2).await;
    within(a.basic_qos(7, BasicQosOptions::default())).await.unwrap();
    let q = unique("reg");
    declare_queue(&a, &q).await;
    publish_confirmed(&confirm, "", &q, b"hello").await;
    let _consumer = within(a.basic_consume(
        q.as_str().into(),
        "ctag".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    // Channels publish their numbers at the end of each batch.
    eventually("the delivery is unacked, on the queue and on the channel", || {
        let n = broker.vhost("/").unwrap().queue(&q).unwrap().unacked_count();
        let on_channel = broker.channels().iter().any(|c| c.messages_unacknowledged == 1 && c.consumer_count == 1);
        async move { n == 1 && on_channel }
    })
    .await;

    let conns = broker.connections();
    assert_eq!(conns.len(), 2);
    assert_eq!(broker.connection_count(), 2);
    let one = named(&conns, "one");
    assert_eq!(one.name, format!("{} -> {}", one.peer, b.addr()));
    assert_eq!((one.local, one.user.as_str(), one.vhost.as_str()), (b.addr(), "guest", "/"));
    assert_eq!((one.state, one.state.as_str()), (ConnectionState::Running, "running"));
    assert_eq!((one.channels, one.auth_mechanism.as_str()), (2, "PLAIN"));
    assert!(one.frame_max >= 4096 && one.channel_max > 0);
    assert!(one.client_properties.inner().contains_key("product"), "{:?}", one.client_properties);
    assert!(one.recv_oct > 0 && one.send_oct > 0 && one.recv_cnt > 0 && one.send_cnt > 0);
    let now = broker.clock().unix_millis();
    assert!(one.connected_at <= now && now - one.connected_at < 60_000);
    let two = named(&conns, "two");
    assert_eq!(two.channels, 1);
    assert!(one.id != two.id);

    let chans = broker.channels();
    assert_eq!((chans.len(), broker.channel_count()), (3, 3));
    let of_one: Vec<_> = chans.iter().filter(|c| c.connection == one.id).collect();
    assert_eq!(of_one.len(), 2);
    let consuming = of_one.iter().find(|c| c.consumer_count == 1).expect("the consuming channel");
    assert_eq!((consuming.prefetch_count, consuming.messages_unacknowledged), (7, 1));
    assert_eq!((consuming.confirm, consuming.transactional, consuming.state), (false, false, "running"));
    assert_eq!(consuming.connection_name, one.name);
    assert_eq!((consuming.user.as_str(), consuming.vhost.as_str()), ("guest", "/"));
    let confirming = chans.iter().find(|c| c.connection == two.id).unwrap();
    assert!(confirming.confirm);
    assert_eq!(confirming.messages_unconfirmed, 0);

    let stats = broker.global_stats();
    assert!(stats.connections_opened >= 2 && stats.channels_opened >= 3);

    within(c1.close(200, "bye".into())).await.unwrap();
    eventually("one connection left", || {
        let n = broker.connections().len();
        async move { n == 1 }
    })
    .await;
    assert_eq!(broker.channel_count(), 1);
    within(c2.close(200, "bye".into())).await.unwrap();
    registry_empty(&broker).await;
}

#[tokio::test]
async fn unacked_counts_and_message_stats_follow_deliveries_and_acks() {
    if external() {
        return;
    }
    let b = broker().await;
    let broker = broker_of(&b);
    let (c, ch) = connect_confirm_channel(&b).await;
    let q = unique("unacked");
    declare_queue(&ch, &q).await;
    for i in 0..3 {
        publish_confirmed(&ch, "", &q, format!("m{i}").as_bytes()).await;
    }
    let queue = broker.vhost("/").unwrap().queue(&q).unwrap();
    let mut consumer = within(ch.basic_consume(
        q.as_str().into(),
        "manual".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    ))
    .await
    .unwrap();
    let mut deliveries = Vec::new();
    for _ in 0..3 {
        deliveries.push(next_delivery(&mut consumer).await);
    }
    eventually("three unacked", || {
        let n = queue.unacked_count();
        async move { n == 3 }
    })
    .await;
    let details = queue.consumer_details();
    assert_eq!(details.len(), 1);
    assert_eq!((details[0].consumer_tag.as_str(), details[0].ack_required, details[0].active), ("manual", true, true));
    let s = queue.stats();
    assert_eq!((s.publish, s.deliver, s.deliver_no_ack, s.messages_unacknowledged), (3, 3, 0, 3));
    assert_eq!((s.message_bytes_unacknowledged, s.message_bytes_ready), (6, 0));

    within(deliveries[0].acker.ack(BasicAckOptions::default())).await.unwrap();
    within(deliveries[1].acker.nack(BasicNackOptions { requeue: true, ..Default::default() })).await.unwrap();
    // The requeued one comes back, redelivered.
    let again = next_delivery(&mut consumer).await;
    assert!(again.redelivered);
    within(again.acker.ack(BasicAckOptions::default())).await.unwrap();
    within(deliveries[2].acker.ack(BasicAckOptions::default())).await.unwrap();
    eventually("nothing unacked", || {
        let n = queue.unacked_count();
        async move { n == 0 }
    })
    .await;
    let s = queue.stats();
    assert_eq!((s.deliver, s.ack, s.redeliver, s.message_bytes), (4, 3, 1, 0));
    let x = broker.vhost("/").unwrap().exchange("").unwrap().stats();
    assert!(x.publish_in >= 3 && x.publish_out >= 3);
    // Counts reach the totals at the end of each batch.
    eventually("global totals", || {
        let g = broker.global_stats();
        async move {
            g.messages_received >= 3
                && g.messages_routed >= 3
                && g.messages_confirmed >= 3
                && g.messages_delivered >= 4
                && g.messages_acknowledged >= 3
        }
    })
    .await;
    // basic.get with and without ack.
    within(ch.basic_cancel("manual".into(), BasicCancelOptions::default())).await.unwrap();
    publish_confirmed(&ch, "", &q, b"g").await;
    publish_confirmed(&ch, "", &q, b"h").await;
    let got = within(ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })).await.unwrap();
    assert!(got.is_some());
    let got = within(ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })).await.unwrap().unwrap();
    assert_eq!(queue.unacked_count(), 1);
    within(got.delivery.acker.ack(BasicAckOptions::default())).await.unwrap();
    eventually("get acked", || {
        let n = queue.unacked_count();
        async move { n == 0 }
    })
    .await;
    let s = queue.stats();
    assert_eq!((s.get, s.get_no_ack, s.publish), (1, 1, 5));
    within(c.close(200, "bye".into())).await.unwrap();
    registry_empty(&broker).await;
}

#[tokio::test]
async fn close_connection_sends_320_connection_forced_with_the_reason() {
    if external() {
        return;
    }
    let b = broker().await;
    let broker = broker_of(&b);
    let c = connect_named(&b, "victim").await;
    let keep = connect_named(&b, "bystander").await;
    let ch = within(c.create_channel()).await.unwrap();
    let q = unique("forced");
    declare_queue(&ch, &q).await;
    let _consumer =
        within(ch.basic_consume(q.as_str().into(), "c".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    let mut ev = events(&c);
    let id = named(&broker.connections(), "victim").id;
    assert!(broker.close_connection(id, "bye now"));
    let err = next_error(&mut ev).await.unwrap_err();
    assert_eq!(amqp_error(&err), (320, "CONNECTION_FORCED - bye now".to_string()));
    eventually("the closed connection is gone", || {
        let conns = broker.connections();
        async move { conns.len() == 1 && conns[0].user_provided_name.as_deref() == Some("bystander") }
    })
    .await;
    assert!(!broker.close_connection(id, "again"), "no such connection any more");
    assert_eq!(broker.vhost("/").unwrap().queue(&q).unwrap().consumer_count(), 0);
    // By vhost and by user.
    assert_eq!(broker.close_connections_of_vhost("/other", "gone"), 0);
    let mut ev = events(&keep);
    assert_eq!(broker.close_connections_of_user("guest", "user deleted"), 1);
    let err = next_error(&mut ev).await.unwrap_err();
    assert_eq!(amqp_error(&err), (320, "CONNECTION_FORCED - user deleted".to_string()));
    registry_empty(&broker).await;
}

#[tokio::test]
async fn abrupt_disconnects_and_handshakes_leave_nothing_behind() {
    if external() {
        return;
    }
    let b = broker().await;
    let broker = broker_of(&b);
    // Mid-handshake: listed as starting, then tuning.
    let mut raw = RawConn::connect(b.addr()).await;
    raw.start().await;
    eventually("listed while starting", || {
        let c = broker.connections();
        async move { c.len() == 1 && c[0].state == ConnectionState::Starting }
    })
    .await;
    raw.start_ok("guest", "guest").await;
    eventually("tuning", || {
        let c = broker.connections();
        async move { c.len() == 1 && c[0].state == ConnectionState::Tuning && c[0].user == "guest" }
    })
    .await;
    drop(raw);
    registry_empty(&broker).await;
    // Open, with channels and an unacked delivery, then the socket vanishes.
    let (mut raw, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    raw.open_channel(1).await;
    raw.open_channel(2).await;
    eventually("two channels", || {
        let n = broker.channel_count();
        async move { n == 2 }
    })
    .await;
    // A forced close during the handshake just ends the connection.
    let mut half = RawConn::connect(b.addr()).await;
    half.start().await;
    let id = broker.connections().iter().find(|c| c.state == ConnectionState::Starting).unwrap().id;
    assert!(broker.close_connection(id, "no"));
    half.expect_eof(Duration::from_secs(5)).await;
    drop(raw);
    registry_empty(&broker).await;
    let g = broker.global_stats();
    assert_eq!((g.connections_opened, g.connections_closed), (3, 3));
    assert_eq!((g.channels_opened, g.channels_closed), (2, 2));
}
