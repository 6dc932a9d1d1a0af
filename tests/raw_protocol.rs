//! Protocol-level behaviour checked with hand-made frames over a raw socket.
mod common;

use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{basic, channel, connection, queue, AMQPClass};
use amq_protocol::types::FieldTable;
use common::raw::*;
use common::*;

#[tokio::test]
async fn wrong_protocol_header_gets_supported_header_and_close() {
    let b = broker().await;
    for bad in [&b"AMQP\x00\x00\x08\x00"[..], b"AMQP\x00\x00\x0a\x00", b"AMQP\x00\x01\x00\x00", b"HTTP/1.1"] {
        let mut c = RawConn::connect(b.addr()).await;
        c.send_bytes(bad).await;
        let (bytes, eof) = c.read_until_eof(WAIT).await;
        assert_eq!(bytes, PROTOCOL_HEADER, "reply to header {bad:?}");
        assert!(eof, "socket must be closed after a bad protocol header {bad:?}");
    }
}

#[tokio::test]
async fn connection_start_advertises_server_properties() {
    let b = broker().await;
    let mut c = RawConn::connect(b.addr()).await;
    let start = c.start().await;
    assert_eq!((start.version_major, start.version_minor), (0, 9));
    let mechs = String::from_utf8_lossy(start.mechanisms.as_bytes()).to_string();
    let mechs: Vec<&str> = mechs.split(' ').collect();
    assert!(mechs.contains(&"PLAIN"), "mechanisms {mechs:?}");
    assert!(mechs.contains(&"AMQPLAIN"), "mechanisms {mechs:?}");
    assert_eq!(String::from_utf8_lossy(start.locales.as_bytes()), "en_US");
    let props = start.server_properties.inner();
    for key in ["product", "version", "platform", "copyright", "information", "capabilities", "cluster_name"] {
        assert!(props.contains_key(key), "server_properties lacks {key}: {props:?}");
    }
    let caps = match props.get("capabilities").unwrap() {
        amq_protocol::types::AMQPValue::FieldTable(t) => t.inner().clone(),
        v => panic!("capabilities is not a table: {v:?}"),
    };
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "consumer_priorities",
        "authentication_failure_close",
        "per_consumer_qos",
        "direct_reply_to",
    ] {
        assert_eq!(
            caps.get(cap),
            Some(&amq_protocol::types::AMQPValue::Boolean(true)),
            "capability {cap} must be true: {caps:?}"
        );
    }
}

#[tokio::test]
async fn tune_advertises_limits() {
    let b = broker().await;
    let mut c = RawConn::connect(b.addr()).await;
    c.start().await;
    let tune = c.start_ok("guest", "guest").await;
    assert_eq!(tune.channel_max, 2047);
    assert_eq!(tune.frame_max, 131072);
    assert_eq!(tune.heartbeat, 60);
}

#[tokio::test]
async fn frame_larger_than_frame_max_is_a_frame_error() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 4096).await;
    c.open_channel(1).await;
    c.send_publish(1, "", "nowhere").await;
    c.send_bytes(&RawConn::header_frame(1, 10000)).await;
    c.send_bytes(&raw_frame(FRAME_BODY, 1, &vec![b'x'; 10000])).await;
    let close = c.expect_connection_close().await;
    println!("{close:?}");
    assert_eq!(close.reply_code, 501);
    // frame_max 4096 leaves 4088 octets of payload per frame
    assert_eq!(close.reply_text, "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,10000,4088}");
    assert_eq!((close.class_id, close.method_id), (0, 0));
    c.expect_eof(WAIT).await;
}

/// The heartbeat tests run the real driver over a real socket, on a manual
/// clock: its connection timers wake when the test moves time, so they take
/// no seconds and cannot be late on a loaded machine. Against an external
/// broker (`WARREN_TEST_URI`), whose time cannot be moved, they wait.
fn manual_clock(b: &TestBroker) -> Option<warren::clock::Clock> {
    b.server().map(|s| s.broker().clock().clone()).filter(|c| c.is_manual())
}

async fn elapse(clock: &Option<warren::clock::Clock>, ms: u64) {
    match clock {
        Some(c) => {
            c.advance(Duration::from_millis(ms));
        }
        None => tokio::time::sleep(Duration::from_millis(ms)).await,
    }
}

#[tokio::test]
async fn server_sends_heartbeats_at_negotiated_interval() {
    let b = broker_on_manual_clock().await;
    let clock = manual_clock(&b);
    let (mut c, _, _) = RawConn::handshake(b.addr(), 1, 0).await;
    // Nothing before half an interval of our silence...
    elapse(&clock, 400).await;
    assert!(c.recv_timeout(Duration::from_millis(100)).await.is_err(), "heartbeat before half the interval");
    for beat in 1..=2 {
        // keep ourselves alive too
        c.send(&AMQPFrame::Heartbeat).await;
        elapse(&clock, 600).await;
        match c.recv_timeout(WAIT).await {
            Ok(Read::Frame(AMQPFrame::Heartbeat)) => {}
            other => {
                panic!("heartbeat {beat}: expected a heartbeat after 0.5 s of silence (heartbeat=1), got {other:?}")
            }
        }
    }
}

#[tokio::test]
async fn silent_peer_is_disconnected() {
    let b = broker_on_manual_clock().await;
    let clock = manual_clock(&b);
    let (mut c, _, _) = RawConn::handshake(b.addr(), 1, 0).await;
    // Never send anything: the broker must drop us after ~2 missed intervals.
    let mut silent_ms = 0;
    let eof = loop {
        elapse(&clock, 250).await;
        silent_ms += 250;
        let (_, eof) = c.read_until_eof(Duration::from_millis(50)).await;
        if eof || silent_ms >= 6000 {
            break eof;
        }
    };
    assert!(eof, "silent client not disconnected within 6 s of broker time");
    assert!((2000..=3000).contains(&silent_ms), "disconnected after {silent_ms} ms of silence, not ~2 intervals");
}

#[tokio::test]
async fn client_heartbeats_keep_connection_alive() {
    let b = broker_on_manual_clock().await;
    let clock = manual_clock(&b);
    let (mut c, _, _) = RawConn::handshake(b.addr(), 1, 0).await;
    for _ in 0..14 {
        // Sent every quarter interval: the broker may see it before or after
        // the clock moves, and either way it is far from two intervals.
        c.send(&AMQPFrame::Heartbeat).await;
        elapse(&clock, 250).await;
        match c.recv_timeout(Duration::from_millis(20)).await {
            Ok(Read::Frame(AMQPFrame::Heartbeat)) | Err(()) => {}
            Ok(other) => panic!("unexpected {other:?}"),
        }
    }
    // 3.5 s of broker time later, still usable.
    c.open_channel(1).await;
}

#[tokio::test]
async fn method_on_unopened_channel_is_channel_error() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.send_method(
        5,
        AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
            queue: "x".into(),
            passive: false,
            durable: false,
            exclusive: false,
            auto_delete: false,
            nowait: false,
            arguments: FieldTable::default(),
        })),
    )
    .await;
    let close = c.expect_connection_close().await;
    println!("{close:?}");
    assert_eq!(close.reply_code, 504);
    assert_eq!(close.reply_text, "CHANNEL_ERROR - expected 'channel.open'");
    c.expect_eof(WAIT).await;
}

#[tokio::test]
async fn channel_open_twice_is_channel_error() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    c.send_method(1, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))).await;
    let close = c.expect_connection_close().await;
    println!("{close:?}");
    assert_eq!(close.reply_code, 504);
    assert_eq!(close.reply_text, "CHANNEL_ERROR - second 'channel.open' seen");
    c.expect_eof(WAIT).await;
}

#[tokio::test]
async fn content_header_without_publish_is_unexpected_frame() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    c.send_bytes(&RawConn::header_frame(1, 3)).await;
    let close = c.expect_connection_close().await;
    println!("{close:?}");
    assert_eq!(close.reply_code, 505);
    assert_eq!(close.reply_text, "UNEXPECTED_FRAME - expected method frame, got non method frame instead");
    c.expect_eof(WAIT).await;
}

#[tokio::test]
async fn body_without_publish_is_unexpected_frame() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    c.send_bytes(&raw_frame(FRAME_BODY, 1, b"abc")).await;
    let close = c.expect_connection_close().await;
    println!("{close:?}");
    assert_eq!(close.reply_code, 505);
    assert_eq!(close.reply_text, "UNEXPECTED_FRAME - expected method frame, got non method frame instead");
    c.expect_eof(WAIT).await;
}

#[tokio::test]
async fn method_instead_of_content_header_is_unexpected_frame() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    c.send_publish(1, "", "nowhere").await;
    c.send_publish(1, "", "nowhere").await;
    let close = c.expect_connection_close().await;
    println!("{close:?}");
    assert_eq!(close.reply_code, 505);
    assert_eq!(
        close.reply_text,
        "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead"
    );
    c.expect_eof(WAIT).await;
}

#[tokio::test]
async fn method_of_unknown_class() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    c.send_bytes(&raw_method(1, 999, 10, &[])).await;
    // RabbitMQ 3.x sends no connection.close here: it just drops the socket.
    let (bytes, eof) = c.read_until_eof(WAIT).await;
    assert!(eof, "socket not closed");
    assert_eq!(bytes, Vec::<u8>::new(), "RabbitMQ closes without sending anything");
}

#[tokio::test]
async fn unknown_method_of_known_class() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    c.send_bytes(&raw_method(1, 50, 99, &[])).await;
    // RabbitMQ 3.x sends no connection.close here: it just drops the socket.
    let (bytes, eof) = c.read_until_eof(WAIT).await;
    assert!(eof, "socket not closed");
    assert_eq!(bytes, Vec::<u8>::new(), "RabbitMQ closes without sending anything");
}

#[tokio::test]
async fn heartbeat_on_nonzero_channel() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    c.send_bytes(&raw_frame(FRAME_HEARTBEAT, 1, &[])).await;
    let close = c.expect_connection_close().await;
    println!("{close:?}");
    assert_eq!(close.reply_code, 505);
    assert_eq!(close.reply_text, "UNEXPECTED_FRAME - type 8, all octets = <<>>");
    c.expect_eof(WAIT).await;
}

#[tokio::test]
async fn unknown_frame_type() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.send_bytes(&raw_frame(7, 0, b"zz")).await;
    let close = c.expect_connection_close().await;
    println!("{close:?}");
    assert_eq!(close.reply_code, 501);
    assert_eq!(close.reply_text, "FRAME_ERROR - type 7, all octets = <<\"zz\">>: unknown_frame");
    c.expect_eof(WAIT).await;
}

#[tokio::test]
async fn bad_frame_end_octet() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    let mut f = raw_method(1, 20, 10, &[0]);
    *f.last_mut().unwrap() = 0x00;
    c.send_bytes(&f).await;
    let close = c.expect_connection_close().await;
    println!("{close:?}");
    assert_eq!(close.reply_code, 501);
    assert_eq!(close.reply_text, "FRAME_ERROR - type 1, all octets = <<0,20,0,10,0>>: {invalid_frame_end_marker,0}");
    c.expect_eof(WAIT).await;
}

#[tokio::test]
async fn channel_count_limited_by_negotiated_channel_max() {
    let b = broker().await;
    let mut c = RawConn::connect(b.addr()).await;
    c.start().await;
    let _ = c.start_ok("guest", "guest").await;
    c.tune_ok(3, 131072, 0).await;
    c.open("/").await;
    c.open_channel(1).await;
    c.open_channel(2).await;
    // RabbitMQ 3.x limits the NUMBER of open channels, not the channel id:
    // an id above channel_max (even above the server's 2047) is accepted.
    c.open_channel(3000).await;
    c.send_method(4, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))).await;
    let close = c.expect_connection_close().await;
    println!("{close:?}");
    assert_eq!(close.reply_code, 530);
    assert_eq!(
        close.reply_text,
        "NOT_ALLOWED - number of channels opened (3) has reached the negotiated channel_max (3)"
    );
    assert_eq!((close.class_id, close.method_id), (0, 0));
    c.expect_eof(WAIT).await;
}

#[tokio::test]
async fn publish_split_across_many_small_body_frames() {
    let b = broker().await;
    let q = unique("raw-split");
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 4096).await;
    c.open_channel(1).await;
    c.send_method(
        1,
        AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
            queue: q.as_str().into(),
            passive: false,
            durable: false,
            exclusive: true,
            auto_delete: false,
            nowait: false,
            arguments: FieldTable::default(),
        })),
    )
    .await;
    match c.recv_non_heartbeat().await {
        AMQPFrame::Method(1, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok))) => {
            assert_eq!(ok.queue.as_str(), q)
        }
        f => panic!("{f:?}"),
    }
    let body: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    c.send_publish(1, "", &q).await;
    c.send_bytes(&RawConn::header_frame(1, body.len() as u64)).await;
    for chunk in body.chunks(1000) {
        c.send_bytes(&raw_frame(FRAME_BODY, 1, chunk)).await;
    }
    c.send_method(1, AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get { queue: q.as_str().into(), no_ack: true })))
        .await;
    match c.recv_non_heartbeat().await {
        AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::GetOk(ok))) => {
            assert_eq!(ok.message_count, 0)
        }
        f => panic!("{f:?}"),
    }
    let size = match c.recv_non_heartbeat().await {
        AMQPFrame::Header(1, h) => h.body_size as usize,
        f => panic!("{f:?}"),
    };
    assert_eq!(size, body.len());
    let mut got = Vec::new();
    while got.len() < size {
        match c.recv_non_heartbeat().await {
            AMQPFrame::Body(1, d) => {
                assert!(d.len() <= 4096 - 8, "body frame exceeds negotiated frame_max");
                got.extend_from_slice(&d)
            }
            f => panic!("{f:?}"),
        }
    }
    assert_eq!(got, body);
    // orderly close
    c.send_method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
            reply_code: 200,
            reply_text: "bye".into(),
            class_id: 0,
            method_id: 0,
        })),
    )
    .await;
    match c.recv_non_heartbeat().await {
        AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))) => {}
        f => panic!("{f:?}"),
    }
}

#[tokio::test]
async fn truncated_method_arguments_are_a_frame_error() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    c.send_bytes(&raw_method(1, 50, 10, &[0, 0])).await;
    let close = c.expect_connection_close().await;
    assert_eq!(close.reply_code, 501);
    assert_eq!(close.reply_text, "FRAME_ERROR - cannot decode <<0,0>>");
    assert_eq!((close.class_id, close.method_id), (50, 10));
    c.expect_eof(WAIT).await;
}

#[tokio::test]
async fn non_connection_method_on_channel_zero() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    // queue.declare(ticket=0, queue="q", flags=0, arguments={})
    c.send_bytes(&raw_method(0, 50, 10, &[0, 0, 1, b'q', 0, 0, 0, 0, 0])).await;
    let close = c.expect_connection_close().await;
    assert_eq!(close.reply_code, 504);
    assert_eq!(close.reply_text, "CHANNEL_ERROR - unexpected method in connection state running");
    assert_eq!((close.class_id, close.method_id), (50, 10));
    c.expect_eof(WAIT).await;
}

#[tokio::test]
async fn content_header_on_channel_zero() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.send_bytes(&raw_frame(FRAME_HEADER, 0, &[0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])).await;
    let close = c.expect_connection_close().await;
    assert_eq!(close.reply_code, 505);
    assert_eq!(close.reply_text, "UNEXPECTED_FRAME - type 2, all octets = <<0,60,0,0,0,0,0,0,0,0,0,0,0,0>>");
    assert_eq!((close.class_id, close.method_id), (0, 0));
    c.expect_eof(WAIT).await;
}

/// Errors during the handshake (before connection.open-ok) are "silent":
/// RabbitMQ sends no connection.close and drops the socket (after a delay of
/// up to ~3 s). Checked concurrently so the test stays short.
#[tokio::test]
async fn handshake_errors_close_the_socket_silently() {
    let b = broker().await;
    let addr = b.addr();
    async fn bad_tune(addr: std::net::SocketAddr, channel_max: u16, frame_max: u32) -> (Vec<u8>, bool) {
        let mut c = RawConn::connect(addr).await;
        c.start().await;
        let _ = c.start_ok("guest", "guest").await;
        c.tune_ok(channel_max, frame_max, 0).await;
        c.send_method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open { virtual_host: "/".into() })),
        )
        .await;
        c.read_until_eof(Duration::from_secs(8)).await
    }
    async fn bad_start_ok(addr: std::net::SocketAddr, mechanism: &str, response: &str) -> (Vec<u8>, bool) {
        let mut c = RawConn::connect(addr).await;
        c.start().await;
        c.send_method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: FieldTable::default(),
                mechanism: mechanism.into(),
                response: response.into(),
                locale: "en_US".into(),
            })),
        )
        .await;
        c.read_until_eof(Duration::from_secs(8)).await
    }
    let (a, bb, cc, d, e, f, g) = tokio::join!(
        bad_tune(addr, 2047, 1000),   // frame_max below the 4096 minimum
        bad_tune(addr, 2047, 200000), // frame_max above the server's
        bad_tune(addr, 2047, 0),      // 0 = unlimited, above the server's
        bad_tune(addr, 0, 131072),    // 0 = unlimited channels, above the server's
        bad_tune(addr, 2048, 131072), // more channels than connection.tune offered
        bad_start_ok(addr, "FOO", "x"),
        // wrong password, client without the authentication_failure_close capability
        bad_start_ok(addr, "PLAIN", "\0guest\0wrong"),
    );
    for (i, (bytes, eof)) in [a, bb, cc, d, e, f, g].into_iter().enumerate() {
        assert!(eof, "case {i}: socket not closed");
        assert_eq!(bytes, Vec::<u8>::new(), "case {i}: RabbitMQ sends nothing before closing");
    }
}

/// A connection.start-ok of exactly `size` payload octets (PLAIN guest/guest,
/// client properties padded with one long string).
fn start_ok_of_payload(size: usize) -> Vec<u8> {
    let pad = size - 45;
    let mut p = vec![0, 10, 0, 11];
    p.extend_from_slice(&(pad as u32 + 9).to_be_bytes());
    p.extend_from_slice(b"\x03padS");
    p.extend_from_slice(&(pad as u32).to_be_bytes());
    p.extend(std::iter::repeat_n(b'x', pad));
    p.extend_from_slice(b"\x05PLAIN\x00\x00\x00\x0c\x00guest\x00guest\x05en_US");
    assert_eq!(p.len(), size);
    raw_frame(FRAME_METHOD, 0, &p)
}

/// Before tune-ok nothing is negotiated: RabbitMQ takes frames of at most
/// frame-min-size (4096 octets of payload) and closes the socket without a
/// word (after ~3 s) for a larger one, such as a 10 KB start-ok. A client
/// cannot make the broker buffer or parse more before it has logged in.
#[tokio::test]
async fn frames_before_tune_ok_are_limited_to_frame_min_size() {
    let b = broker().await;
    let addr = b.addr();
    async fn send_start_ok(addr: std::net::SocketAddr, size: usize) -> (Vec<u8>, bool) {
        let mut c = RawConn::connect(addr).await;
        c.start().await;
        let _ = c.try_send_bytes(&start_ok_of_payload(size)).await;
        c.read_until_eof(Duration::from_secs(6)).await
    }
    let (at_limit, over, big) = tokio::join!(
        async {
            let mut c = RawConn::connect(addr).await;
            c.start().await;
            c.send_bytes(&start_ok_of_payload(4096)).await;
            c.recv_non_heartbeat().await
        },
        send_start_ok(addr, 4097),
        send_start_ok(addr, 10_000),
    );
    assert!(
        matches!(at_limit, AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Tune(_)))),
        "a 4096-octet start-ok is fine: {at_limit:?}"
    );
    for (name, (bytes, eof)) in [("4097", over), ("10 KB", big)] {
        assert!(eof, "{name}: socket not closed");
        assert_eq!(bytes, Vec::<u8>::new(), "{name}: RabbitMQ sends nothing before closing");
    }
    // The broker carries on.
    let (mut c, _, _) = RawConn::handshake(addr, 0, 0).await;
    c.open_channel(1).await;
}

#[tokio::test]
async fn auth_failure_with_capability_gets_access_refused() {
    let b = broker().await;
    let mut c = RawConn::connect(b.addr()).await;
    c.start().await;
    let mut caps = FieldTable::default();
    caps.insert("authentication_failure_close".into(), amq_protocol::types::AMQPValue::Boolean(true));
    let mut props = FieldTable::default();
    props.insert("capabilities".into(), amq_protocol::types::AMQPValue::FieldTable(caps));
    c.send_method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: props,
            mechanism: "PLAIN".into(),
            response: "\0guest\0wrong".into(),
            locale: "en_US".into(),
        })),
    )
    .await;
    let close = c.expect_connection_close().await;
    assert_eq!(close.reply_code, 403);
    assert_eq!(
        close.reply_text,
        "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile."
    );
    assert_eq!((close.class_id, close.method_id), (0, 0));
    c.expect_eof(WAIT).await;
}

#[tokio::test]
async fn unknown_vhost_is_not_allowed() {
    let b = broker().await;
    let mut c = RawConn::connect(b.addr()).await;
    c.start().await;
    let t = c.start_ok("guest", "guest").await;
    c.tune_ok(t.channel_max, t.frame_max, 0).await;
    c.send_method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open { virtual_host: "no-such-vhost".into() })),
    )
    .await;
    let close = c.expect_connection_close().await;
    assert_eq!(close.reply_code, 530);
    assert_eq!(close.reply_text, "NOT_ALLOWED - vhost no-such-vhost not found");
    assert_eq!((close.class_id, close.method_id), (10, 40));
    c.expect_eof(WAIT).await;
}
