//! The virtual clock (`--clock manual`): an hour-long TTL, dead-lettering
//! with x-death's time, and x-expires, tested in milliseconds through each
//! way of moving time (POST /api/warren/clock, `warren ctl clock advance`,
//! `Server::advance` and `server.clock().advance`), while heartbeats and the
//! other socket timers stay on real time.

mod common;

use std::time::Duration;

use common::http::{blocking, management};
use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel};
use serde_json::{json, Value};

const HOUR_MS: u32 = 3_600_000;

async fn manual_broker() -> TestBroker {
    broker_with(|c| {
        c.clock = warren::clock::Clock::manual();
        c.management_port = Some(0);
    })
    .await
}

fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert(ShortString::from(*k), v.clone());
    }
    t
}

/// A queue whose messages live an hour and then go to `dead`, and an idle
/// queue that x-expires after an hour.
async fn hour_long_topology(ch: &Channel) {
    ch.exchange_declare("clock-dlx".into(), lapin::ExchangeKind::Fanout, Default::default(), FieldTable::default())
        .await
        .unwrap();
    ch.queue_declare("dead".into(), Default::default(), FieldTable::default()).await.unwrap();
    ch.queue_bind("dead".into(), "clock-dlx".into(), "".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    let hour = args(&[
        ("x-message-ttl", AMQPValue::LongUInt(HOUR_MS)),
        ("x-dead-letter-exchange", AMQPValue::LongString(LongString::from("clock-dlx"))),
    ]);
    ch.queue_declare("hour".into(), Default::default(), hour).await.unwrap();
    ch.queue_declare("idle".into(), Default::default(), args(&[("x-expires", AMQPValue::LongUInt(HOUR_MS))]))
        .await
        .unwrap();
}

async fn depth(ch: &Channel, queue: &str) -> Option<u32> {
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    ch.queue_declare(queue.into(), passive, FieldTable::default()).await.ok().map(|q| q.message_count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hour_of_ttl_dead_lettering_and_x_expires_passes_in_one_http_call() {
    if external() {
        return;
    }
    let b = manual_broker().await;
    let http = management(&b);
    let conn = connect(&b).await;
    let ch = conn.create_channel().await.unwrap();
    hour_long_topology(&ch).await;
    publish(&ch, "", "hour", b"an hour to live").await;
    // A round trip on the channel: the publish has arrived before time moves.
    assert_eq!(depth(&ch, "hour").await, Some(1));
    let before: Value = blocking({
        let h = management(&b);
        move || h.json("/api/warren/clock")
    })
    .await;
    assert_eq!(before["mode"], "manual");

    let r = blocking(move || http.post("/api/warren/clock", &json!({"advance_ms": HOUR_MS - 1}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(depth(&ch, "hour").await, Some(1), "a millisecond short of an hour, the message is still there");
    // Looked at over HTTP: a queue.declare, even passive, is a use that
    // restarts x-expires, as in RabbitMQ.
    let idle_status = |b: &TestBroker| {
        let h = management(b);
        blocking(move || h.get("/api/queues/%2F/idle").status)
    };
    assert_eq!(idle_status(&b).await, 200, "and the idle queue still exists");

    let http = management(&b);
    let after: Value = blocking(move || http.post("/api/warren/clock", &json!({"advance_ms": 1})).json()).await;
    assert_eq!(after["elapsed_ms"].as_u64().unwrap() - before["elapsed_ms"].as_u64().unwrap(), HOUR_MS as u64);
    // The POST answers after what became due has run.
    assert_eq!(depth(&ch, "hour").await, Some(0));
    let dead = ch.basic_get("dead".into(), BasicGetOptions { no_ack: true }).await.unwrap().expect("dead-lettered");
    assert_eq!(dead.data, b"an hour to live");
    let headers = dead.properties.headers().clone().expect("x-death");
    let Some(AMQPValue::FieldArray(deaths)) = headers.inner().get("x-death") else { panic!("no x-death: {headers:?}") };
    let AMQPValue::FieldTable(death) = &deaths.as_slice()[0] else { panic!("x-death entry: {deaths:?}") };
    assert_eq!(death.inner().get("reason"), Some(&AMQPValue::LongString(LongString::from("expired"))));
    let Some(AMQPValue::Timestamp(time)) = death.inner().get("time") else { panic!("x-death time: {death:?}") };
    assert_eq!(*time, after["now_ms"].as_u64().unwrap() / 1000, "x-death's time is virtual time");
    assert_eq!(idle_status(&b).await, 404, "x-expires deleted the idle queue");

    // An hour of broker time is no hour on the socket: the connection
    // (heartbeat 60 s) is alive and works.
    assert!(conn.status().connected());
    publish_confirmed(&confirm_channel(&conn).await, "", "dead", b"still here").await;
    assert_eq!(get_body(&ch, "dead").await.as_deref(), Some(&b"still here"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_message_expiration_follows_the_rust_api() {
    if external() {
        return;
    }
    let b = manual_broker().await;
    let server = b.server().unwrap();
    let (_conn, ch) = connect_channel(&b).await;
    declare_queue(&ch, "expiring").await;
    let props = BasicProperties::default().with_expiration(ShortString::from("90000"));
    publish_props(&ch, "", "expiring", b"90 s", props).await;
    assert_eq!(depth(&ch, "expiring").await, Some(1), "arrived before time moves");

    assert!(server.advance(Duration::from_secs(89)));
    assert_eq!(depth(&ch, "expiring").await, Some(1));
    // The clock alone: the server's timer task runs what is due right after.
    assert!(server.clock().advance(Duration::from_secs(1)));
    within(async {
        while depth(&ch, "expiring").await != Some(0) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warren_ctl_clock_advance_moves_broker_time() {
    if external() {
        return;
    }
    let b = manual_broker().await;
    let url = management(&b).base().to_owned();
    let (_conn, ch) = connect_channel(&b).await;
    hour_long_topology(&ch).await;
    publish(&ch, "", "hour", b"x").await;
    assert_eq!(depth(&ch, "hour").await, Some(1), "arrived before time moves");
    let ctl = move |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_warren"))
            .args(["ctl", "--url", &url])
            .args(args)
            .output()
            .expect("running warren ctl");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = blocking({
        let ctl = ctl.clone();
        move || ctl(&["clock", "advance", "1h"])
    })
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("Advancing the broker's clock by 1h") && out.contains("mode\tmanual"), "{out}");
    assert_eq!(depth(&ch, "hour").await, Some(0));
    assert_eq!(depth(&ch, "dead").await, Some(1));

    let (code, _, err) = blocking(move || ctl(&["clock", "advance", "soon"])).await;
    assert_eq!(code, Some(64), "a bad duration is a usage error");
    assert!(err.contains("'soon' is not a duration"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_clock_cannot_be_moved_and_only_administrators_move_a_virtual_one() {
    if external() {
        return;
    }
    let real = broker_with(|c| c.management_port = Some(0)).await;
    let http = management(&real);
    let r = blocking(move || http.post("/api/warren/clock", &json!({"advance_ms": 1000}))).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("--clock manual"), "the refusal says how to get a virtual clock: {}", r.text);
    let http = management(&real);
    assert_eq!(blocking(move || http.json("/api/warren/clock")).await["mode"], "real");

    let b = manual_broker().await;
    let http = management(&b);
    let r = blocking(move || {
        http.put("/api/users/watcher", &json!({"password": "w", "tags": "monitoring"}));
        http.put("/api/permissions/%2F/watcher", &json!({"configure": ".*", "write": ".*", "read": ".*"}));
        http.as_user("watcher", "w").post("/api/warren/clock", &json!({"advance_ms": 1000}))
    })
    .await;
    assert_eq!(r.status, 401, "{}", r.text);
    let http = management(&b);
    let r = blocking(move || http.post("/api/warren/clock", &json!({"advance_ms": "1h"}))).await;
    assert_eq!(r.status, 400, "{}", r.text);
}
