//! Connection handshake, negotiation, authentication and close.
mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::{options::*, types::FieldTable, Connection, ConnectionProperties, ExchangeKind};

#[tokio::test]
async fn handshake_with_lapin_negotiates_server_limits() {
    let b = broker().await;
    let c = connect(&b).await;
    assert!(c.status().connected());
    let cfg = c.configuration();
    assert_eq!(cfg.channel_max(), 2047);
    assert_eq!(cfg.frame_max(), 131072);
    assert_eq!(cfg.heartbeat(), 60);
    within(c.close(200, "OK".into())).await.unwrap();
    assert!(!c.status().connected());
}

#[tokio::test]
async fn client_can_lower_tune_values() {
    let b = broker().await;
    let uri = format!("{}?heartbeat=5&frame_max=8192&channel_max=16", b.uri());
    let c = within(Connection::connect(&uri, ConnectionProperties::default())).await.unwrap();
    let cfg = c.configuration();
    assert_eq!(cfg.heartbeat(), 5);
    assert_eq!(cfg.frame_max(), 8192);
    assert_eq!(cfg.channel_max(), 16);
    // and the connection works with the smaller frame size
    let ch = within(c.create_channel()).await.unwrap();
    let q = declare_queue(&ch, "").await;
    let body = vec![7u8; 50_000];
    publish(&ch, "", q.name().as_str(), &body).await;
    let got = within(ch.basic_get(q.name().clone(), BasicGetOptions { no_ack: true })).await.unwrap().unwrap();
    assert_eq!(got.delivery.data, body);
    within(c.close(200, "OK".into())).await.unwrap();
}

#[tokio::test]
async fn amqprs_sees_server_properties() {
    use amqprs::connection::{Connection as AConn, OpenConnectionArguments};
    let b = broker().await;
    let args = OpenConnectionArguments::new(&b.addr().ip().to_string(), b.addr().port(), "guest", "guest");
    let c = within(AConn::open(&args)).await.expect("amqprs connect");
    let props = c.server_properties();
    // RabbitMQ 3.10.8 says product "RabbitMQ", version "3.10.8"; Warren may
    // name itself, but both must be present.
    assert!(!props.product().is_empty(), "server_properties.product missing");
    assert!(!props.version().is_empty(), "server_properties.version missing");
    let caps = props.capabilities();
    assert!(caps.publisher_confirms());
    assert!(caps.consumer_cancel_notify());
    assert!(caps.exchange_exchange_bindings());
    assert!(caps.basic_nack());
    assert!(caps.per_consumer_qos());
    assert!(caps.authentication_failure_close());
    assert!(caps.connection_blocked());
    assert!(caps.consumer_priorities());
    assert!(caps.direct_reply_to());
    assert_eq!(c.channel_max(), 2047);
    assert_eq!(c.frame_max(), 131072);
    within(c.close()).await.unwrap();
}

#[tokio::test]
async fn bad_password_is_access_refused() {
    let b = broker().await;
    let r = within(Connection::connect(&b.uri_with("guest", "wrong", "/"), ConnectionProperties::default())).await;
    assert_amqp_error(
        r.map(|_| ()),
        403,
        "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.",
    );
}

#[tokio::test]
async fn unknown_user_is_access_refused() {
    let b = broker().await;
    let r = within(Connection::connect(&b.uri_with("nobody", "guest", "/"), ConnectionProperties::default())).await;
    assert_amqp_error(
        r.map(|_| ()),
        403,
        "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.",
    );
}

#[tokio::test]
async fn unknown_vhost_is_not_allowed() {
    let b = broker().await;
    let r = within(Connection::connect(&b.uri_with("guest", "guest", "nope"), ConnectionProperties::default())).await;
    assert_amqp_error(r.map(|_| ()), 530, "NOT_ALLOWED - vhost nope not found");
}

#[tokio::test]
async fn client_close_then_operations_fail() {
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    within(c.close(200, "bye".into())).await.unwrap();
    assert!(within(c.create_channel()).await.is_err());
    assert!(within(ch.queue_declare("".into(), QueueDeclareOptions::default(), FieldTable::default())).await.is_err());
}

#[tokio::test]
async fn server_closes_connection_on_hard_error() {
    // An unknown exchange type is a connection-level error (503 COMMAND_INVALID).
    let b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let x = unique("badtype");
    let r = within(ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Custom("no-such-type".into()),
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 503, "COMMAND_INVALID - unknown exchange type 'no-such-type'");
    eventually("connection closed after hard error", || {
        let s = c.status().clone();
        async move { !s.connected() }
    })
    .await;
    assert!(within(c.create_channel()).await.is_err());
}

#[tokio::test]
async fn connection_close_error_seen_by_other_channels() {
    let b = broker().await;
    let c = connect(&b).await;
    let ch1 = within(c.create_channel()).await.unwrap();
    let ch2 = within(c.create_channel()).await.unwrap();
    let q = declare_queue(&ch2, "").await;
    let mut consumer =
        within(ch2.basic_consume(q.name().clone(), "".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    let r = within(ch1.exchange_declare(
        unique("badtype2").as_str().into(),
        ExchangeKind::Custom("bogus".into()),
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    ))
    .await;
    assert_amqp_error(r, 503, "COMMAND_INVALID - unknown exchange type 'bogus'");
    // the consumer on the other channel ends (error or end of stream)
    match within(consumer.next()).await {
        None | Some(Err(_)) => {}
        Some(Ok(d)) => panic!("unexpected delivery {d:?}"),
    }
}

#[tokio::test]
async fn many_connections_in_parallel() {
    let b = broker().await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let uri = b.uri();
        tasks.push(tokio::spawn(async move {
            let c = within(Connection::connect(&uri, ConnectionProperties::default())).await.unwrap();
            let ch = within(c.create_channel()).await.unwrap();
            let q = declare_queue(&ch, "").await;
            publish(&ch, "", q.name().as_str(), b"hi").await;
            assert_eq!(get_body(&ch, q.name().as_str()).await.as_deref(), Some(&b"hi"[..]));
            within(c.close(200, "OK".into())).await.unwrap();
        }));
    }
    for t in tasks {
        within(t).await.unwrap();
    }
}

/// Warren only: an in-process shutdown closes client connections with
/// 320 CONNECTION_FORCED, as `rabbitmqctl stop` does.
#[tokio::test]
async fn warren_shutdown_forces_connections_closed() {
    if external() {
        return;
    }
    let mut b = broker().await;
    let (c, ch) = connect_channel(&b).await;
    let q = declare_queue(&ch, "").await;
    let mut consumer =
        within(ch.basic_consume(q.name().clone(), "".into(), BasicConsumeOptions::default(), FieldTable::default()))
            .await
            .unwrap();
    let server = b.take_server().unwrap();
    within(server.shutdown()).await;
    match within(consumer.next()).await {
        None | Some(Err(_)) => {}
        Some(Ok(d)) => panic!("unexpected delivery {d:?}"),
    }
    eventually("connection closed after shutdown", || {
        let s = c.status().clone();
        async move { !s.connected() }
    })
    .await;
    // the port no longer accepts AMQP connections
    let r = tokio::time::timeout(WAIT, Connection::connect(&b.uri(), ConnectionProperties::default())).await;
    assert!(!matches!(r, Ok(Ok(_))), "connected after shutdown");
}

/// Warren only: dropping the Server stops it.
#[tokio::test]
async fn warren_drop_stops_server() {
    if external() {
        return;
    }
    let mut b = broker().await;
    let addr = b.addr();
    drop(b.take_server());
    let mut ok = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ok, "server still accepting on {addr} after drop");
}
