//! Fault injection (`--allow-fault-injection`, `/api/warren/faults/...`,
//! `Server::faults()`), each fault as a lapin client sees it: a connection
//! closed with a chosen code or its socket dropped, a channel closed,
//! connection.blocked from a block or an alarm, slow writes, a paused
//! queue, nacked publishes, a cancelled consumer, a restart that loses
//! transient state and that a reconnect loop rides out. The neighbours do
//! not notice, and the endpoints are refused when the node does not allow
//! them.

mod common;

use std::time::{Duration, Instant};

use common::http::{blocking, management, seg, Reply};
use common::*;
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::{json, Value};

async fn broker(allow: bool) -> TestBroker {
    broker_with(|c| {
        c.management_port = Some(0);
        c.allow_fault_injection = allow;
    })
    .await
}

async fn named(b: &TestBroker, name: &str) -> Connection {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    within(Connection::connect(&b.uri(), props)).await.expect("connect")
}

/// POST /api/warren/faults/`path`.
async fn fault(b: &TestBroker, path: &str, body: Value) -> Reply {
    let http = management(b);
    let path = format!("/api/warren/faults/{path}");
    blocking(move || http.post(&path, &body)).await
}

#[track_caller]
fn ok(r: &Reply) {
    assert!(r.status == 204 || r.status == 200, "{} {}", r.status, r.text);
}

/// The next connection.blocked (`Some(reason)`) or connection.unblocked
/// (`None`) event.
async fn next_blocked(ev: &mut Events) -> Option<String> {
    loop {
        match within(ev.next()).await.expect("connection events ended") {
            lapin::Event::ConnectionBlocked(reason) => return Some(reason),
            lapin::Event::ConnectionUnblocked => return None,
            _ => continue,
        }
    }
}

async fn publish_confirm(
    ch: &lapin::Channel,
    queue: &str,
    body: &[u8],
    props: BasicProperties,
) -> lapin::PublisherConfirm {
    within(ch.basic_publish("".into(), queue.into(), BasicPublishOptions::default(), body, props))
        .await
        .expect("basic_publish")
}

fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closes_with_the_code_and_text_asked_for() {
    if external() {
        return;
    }
    let b = broker(true).await;
    let victim = named(&b, "victim").await;
    let neighbour = named(&b, "neighbour").await;
    let mut victim_events = events(&victim);

    // By the management API's name of the connection.
    let http = management(&b);
    let list = blocking(move || http.json("/api/connections")).await;
    let name = list.as_array().unwrap().iter().find(|c| c["user_provided_name"] == "victim").unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = fault(&b, &format!("connections/{}/close", seg(&name)), json!({"code": 541, "reason": "injected"})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let err = next_error(&mut victim_events).await.expect_err("the connection is closed");
    assert_eq!(amqp_error(&err), (541, "INTERNAL_ERROR - injected".to_owned()));

    // The neighbour works on.
    let ch = neighbour.create_channel().await.unwrap();
    let q = unique("after-fault");
    declare_queue(&ch, &q).await;
    publish_confirmed(&confirm_channel(&neighbour).await, "", &q, b"still here").await;
    assert_eq!(get_body(&ch, &q).await.as_deref(), Some(&b"still here"[..]));

    // By the client's connection_name, and without a code: 320, as a forced close.
    let second = named(&b, "second").await;
    let mut second_events = events(&second);
    ok(&fault(&b, "connections/second/close", json!({})).await);
    let err = next_error(&mut second_events).await.expect_err("closed");
    assert_eq!(amqp_error(&err), (320, "CONNECTION_FORCED - Closed via fault injection".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_socket_ends_without_a_close_frame() {
    if external() {
        return;
    }
    let b = broker(true).await;
    let addr = b.addr();
    let mut raw = raw::RawConn::handshake(addr, 0, 0).await.0;
    let client_name = {
        // The raw client has no connection_name: find it as the one
        // connection there is.
        let http = management(&b);
        blocking(move || {
            for _ in 0..200 {
                if let Some(c) = http.json("/api/connections").as_array().and_then(|a| a.first().cloned()) {
                    return c["name"].as_str().unwrap().to_owned();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("the raw connection is not listed");
        })
        .await
    };
    ok(&fault(&b, &format!("connections/{}/drop", seg(&client_name)), json!({})).await);
    let (frames, eof) = raw.read_until_eof(Duration::from_secs(5)).await;
    assert!(eof, "the socket closed");
    assert!(frames.is_empty(), "nothing was sent before the socket closed, not even connection.close: {frames:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_closes_with_the_code_asked_for_and_its_connection_stays() {
    if external() {
        return;
    }
    let b = broker(true).await;
    let c = named(&b, "chan").await;
    let mut ev = events(&c);
    let doomed = c.create_channel().await.unwrap();
    let other = c.create_channel().await.unwrap();
    let q = unique("chan");
    declare_queue(&other, &q).await;

    let path = format!("connections/chan/channels/{}/close", doomed.id());
    ok(&fault(&b, &path, json!({"code": 404, "reason": "injected channel error"})).await);
    let err = next_error(&mut ev).await.expect_err("the channel is closed");
    assert_eq!(amqp_error(&err), (404, "NOT_FOUND - injected channel error".to_owned()));
    eventually("the channel is closed", || async { !doomed.status().connected() }).await;

    // The connection and its other channel work on.
    publish(&other, "", &q, b"fine").await;
    assert_eq!(get_body(&other, &q).await.as_deref(), Some(&b"fine"[..]));
    assert!(c.status().connected());

    // A connection-level code is refused; an unknown channel is not found.
    assert_eq!(
        fault(&b, &format!("connections/chan/channels/{}/close", other.id()), json!({"code": 541})).await.status,
        400
    );
    assert_eq!(fault(&b, "connections/chan/channels/999/close", json!({})).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_publisher_is_told_and_not_read_until_unblocked() {
    if external() {
        return;
    }
    let b = broker(true).await;
    let c = named(&b, "pub").await;
    let mut ev = events(&c);
    let ch = confirm_channel(&c).await;
    let q = unique("blocked");
    declare_queue(&ch, &q).await;
    publish_confirmed(&ch, "", &q, b"before").await;

    ok(&fault(&b, "connections/pub/block", json!({"reason": "tests say so"})).await);
    assert_eq!(next_blocked(&mut ev).await.as_deref(), Some("tests say so"));
    // lapin holds a publish back while its connection is blocked.
    let (ch2, q2) = (ch.clone(), q.clone());
    let pending = tokio::spawn(async move {
        let props = BasicProperties::default();
        ch2.basic_publish("".into(), q2.as_str().into(), BasicPublishOptions::default(), b"while blocked", props)
            .await?
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pending.is_finished(), "a publish waits while the connection is blocked");
    let server = b.server().unwrap();
    assert_eq!(server.queue("/", &q).unwrap().message_count(), 1);
    let http = management(&b);
    let state = blocking(move || http.json("/api/connections")).await[0]["state"].clone();
    assert_eq!(state, "blocked");

    ok(&fault(&b, "connections/pub/unblock", json!({})).await);
    assert_eq!(next_blocked(&mut ev).await, None);
    assert!(within(pending).await.unwrap().unwrap().is_ack(), "sent and confirmed once unblocked");
    assert_eq!(server.queue("/", &q).unwrap().message_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_alarm_blocks_publishers_and_shows_as_rabbitmq_shows_one() {
    if external() {
        return;
    }
    let b = broker(true).await;
    let c = named(&b, "alarmed").await;
    let mut ev = events(&c);
    let ch = confirm_channel(&c).await;
    let q = unique("alarm");
    declare_queue(&ch, &q).await;
    publish_confirmed(&ch, "", &q, b"a publisher").await;

    ok(&fault(&b, "alarms/memory/raise", json!({})).await);
    assert_eq!(next_blocked(&mut ev).await.as_deref(), Some("low on memory"));
    let http = management(&b);
    let (health, node, status) = blocking(move || {
        (http.get("/api/health/checks/alarms"), http.json("/api/nodes"), http.json("/api/warren/faults"))
    })
    .await;
    assert_eq!(health.status, 503, "{}", health.text);
    assert_eq!(node[0]["mem_alarm"], true);
    assert_eq!(status["injected_alarms"], json!({"memory": true, "disk": false}));

    ok(&fault(&b, "alarms/disk/raise", json!({})).await);
    ok(&fault(&b, "alarms/memory/clear", json!({})).await);
    ok(&fault(&b, "alarms/disk/clear", json!({})).await);
    assert_eq!(next_blocked(&mut ev).await, None, "unblocked once both are cleared");
    publish_confirmed(&ch, "", &q, b"after").await;
    assert_eq!(fault(&b, "alarms/cpu/raise", json!({})).await.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_latency_holds_every_write_back() {
    if external() {
        return;
    }
    let b = broker(true).await;
    let c = named(&b, "slow").await;
    let ch = confirm_channel(&c).await;
    let q = unique("slow");
    declare_queue(&ch, &q).await;

    ok(&fault(&b, "connections/slow/latency", json!({"ms": 300})).await);
    let t = Instant::now();
    publish_confirmed(&ch, "", &q, b"slow").await;
    let slow = t.elapsed();
    assert!(slow >= Duration::from_millis(300), "the confirm came back after {slow:?}, before the 300 ms latency");

    ok(&fault(&b, "connections/slow/latency", json!({"ms": 0})).await);
    publish_confirmed(&ch, "", &q, b"fast").await;
    assert_eq!(fault(&b, "connections/slow/latency", json!({})).await.status, 400, "ms is required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_queue_delivers_nothing_until_resumed() {
    if external() {
        return;
    }
    let b = broker(true).await;
    let (c, ch) = connect_channel(&b).await;
    let q = unique("paused");
    declare_queue(&ch, &q).await;
    let mut consumer = ch
        .basic_consume(q.as_str().into(), "c".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();

    ok(&fault(&b, &format!("queues/%2F/{q}/pause"), json!({})).await);
    publish(&ch, "", &q, b"held").await;
    assert_no_delivery(&mut consumer, 300).await;
    let server = b.server().unwrap();
    assert_eq!(server.queue("/", &q).unwrap().message_count(), 1, "the message waits in the queue");

    // The Rust API does the same as the HTTP one.
    server.faults().resume_queue("/", &q).unwrap();
    assert_eq!(next_delivery(&mut consumer).await.data, b"held");
    assert_eq!(fault(&b, "queues/%2F/no-such-queue/pause", json!({})).await.status, 404);
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_publishes_are_nacked_as_asked() {
    if external() {
        return;
    }
    let b = broker(true).await;
    let c = connect(&b).await;
    let ch = confirm_channel(&c).await;
    let q = unique("nacked");
    declare_queue(&ch, &q).await;

    ok(&fault(&b, &format!("queues/%2F/{q}/nack-publishes"), json!({"count": 2})).await);
    let mut acks = Vec::new();
    for body in [&b"one"[..], b"two", b"three"] {
        let confirm = publish_confirm(&ch, &q, body, BasicProperties::default()).await;
        acks.push(within(confirm).await.unwrap().is_ack());
    }
    assert_eq!(acks, [false, false, true]);
    assert_eq!(drain(&ch, &q).await, ["three"], "the nacked publishes were not enqueued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_consumer_gets_basic_cancel() {
    if external() {
        return;
    }
    let b = broker(true).await;
    let (_c, ch) = connect_channel(&b).await;
    let q = unique("cancelled");
    declare_queue(&ch, &q).await;
    let mut kept = ch
        .basic_consume(q.as_str().into(), "kept".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let mut gone = ch
        .basic_consume(q.as_str().into(), "gone".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();

    let path = format!("queues/%2F/{q}/cancel-consumers");
    ok(&fault(&b, &path, json!({"consumer_tag": "gone"})).await);
    assert!(within(gone.next()).await.is_none(), "lapin ends a consumer the broker cancelled");
    assert_eq!(b.server().unwrap().queue("/", &q).unwrap().consumer_count(), 1);
    publish(&ch, "", &q, b"to the one left").await;
    assert_eq!(next_delivery(&mut kept).await.data, b"to the one left");
    assert_eq!(fault(&b, &path, json!({"consumer_tag": "gone"})).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_loses_transient_state_and_a_reconnect_loop_rides_it_out() {
    if external() {
        return;
    }
    let b = broker(true).await;
    let c = named(&b, "before").await;
    let mut ev = events(&c);
    let ch = confirm_channel(&c).await;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare("kept".into(), durable, FieldTable::default()).await.unwrap();
    ch.queue_declare("lost".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    let x_durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    ch.exchange_declare("x-kept".into(), lapin::ExchangeKind::Fanout, x_durable, FieldTable::default()).await.unwrap();
    ch.exchange_declare("x-lost".into(), lapin::ExchangeKind::Fanout, Default::default(), FieldTable::default())
        .await
        .unwrap();
    for (body, props) in [(&b"p1"[..], persistent()), (b"t1", BasicProperties::default()), (b"p2", persistent())] {
        assert!(within(publish_confirm(&ch, "kept", body, props).await).await.unwrap().is_ack());
    }
    // p1 is delivered and never acked: a restart gives it back.
    let got = within(ch.basic_get("kept".into(), BasicGetOptions { no_ack: false })).await.unwrap().unwrap();
    assert_eq!(got.delivery.data, b"p1");

    let started = Instant::now();
    let r = fault(&b, "restart", json!({"down_ms": 400})).await;
    ok(&r);
    assert_eq!(r.json(), json!({"connections": 1, "queues": 1, "exchanges": 1, "messages": 1}));
    let err = next_error(&mut ev).await.expect_err("the connection is gone");
    assert!(
        !matches!(err.kind(), lapin::ErrorKind::ProtocolError(_)),
        "a restart sends no close frame, so no AMQP error: {err:?}"
    );
    eventually("lapin sees the connection gone", || async { !c.status().connected() }).await;

    // What a client's reconnect loop does: retry until the node is back.
    let mut attempts = 0;
    let conn = loop {
        attempts += 1;
        match Connection::connect(&b.uri(), ConnectionProperties::default()).await {
            Ok(conn) => break conn,
            Err(_) if attempts < 100 => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("the node never came back: {e}"),
        }
    };
    assert!(started.elapsed() >= Duration::from_millis(400), "connections are refused while the node is down");
    assert!(attempts > 1, "the first attempts were refused");
    let ch = conn.create_channel().await.unwrap();
    assert_eq!(drain(&ch, "kept").await, ["p1", "p2"], "persistent messages survive, the unacked one back first");
    assert!(!queue_exists(&conn, "lost").await, "a transient queue does not survive a restart");
    assert!(exchange_exists(&conn, "x-kept").await);
    assert!(!exchange_exists(&conn, "x-lost").await, "a transient exchange does not survive a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_refused_unless_allowed_and_checked_when_they_are() {
    if external() {
        return;
    }
    let off = broker(false).await;
    let _c = named(&off, "c").await;
    let r = fault(&off, "connections/c/drop", json!({})).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("--allow-fault-injection"), "{}", r.text);
    // The Rust API of an embedded server needs no flag.
    off.server().unwrap().faults().drop_connection("c").unwrap();

    let on = broker(true).await;
    let _c = named(&on, "c").await;
    let r = fault(&on, "connections/c/close", json!({"code": 404})).await;
    assert_eq!(r.status, 400, "a channel-level code is not a connection close: {}", r.text);
    assert_eq!(fault(&on, "connections/no%20such%20connection/drop", json!({})).await.status, 404);
    let http = management(&on);
    let r = blocking(move || {
        http.put("/api/users/watcher", &json!({"password": "w", "tags": "monitoring"}));
        http.as_user("watcher", "w").post("/api/warren/faults/connections/c/drop", &json!({}))
    })
    .await;
    assert_eq!(r.status, 401, "administrators only: {}", r.text);
}
