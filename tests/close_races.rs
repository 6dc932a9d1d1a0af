//! Closing races that real client libraries hit (found by running their own
//! test suites): both sides closing a channel at once, and a client that
//! keeps writing right after its connection.close. Each runs against a real
//! RabbitMQ too (WARREN_TEST_URI), where it passes the same way.

use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{channel, connection, queue, AMQPClass};
use amq_protocol::types::FieldTable;

mod common;
use common::raw::*;
use common::{broker, unique};

fn channel_close(ch: u16) -> Vec<u8> {
    encode(&AMQPFrame::Method(
        ch,
        AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
            reply_code: 200,
            reply_text: "bye".into(),
            class_id: 0,
            method_id: 0,
        })),
    ))
}

fn publish_frames(ch: u16, exchange: &str) -> Vec<u8> {
    let mut out = encode(&AMQPFrame::Method(
        ch,
        AMQPClass::Basic(amq_protocol::protocol::basic::AMQPMethod::Publish(amq_protocol::protocol::basic::Publish {
            exchange: exchange.into(),
            routing_key: "k".into(),
            mandatory: false,
            immediate: false,
        })),
    ));
    out.extend(RawConn::header_frame(ch, 2));
    out.extend(raw_frame(FRAME_BODY, ch, b"hi"));
    out
}

/// The client publishes to a missing exchange and, in the same write, closes
/// the channel itself. Both sides send channel.close; each answers the
/// other's with close-ok. The connection must carry on: RabbitMQ keeps the
/// channel "closing" until the close-ok for its own close arrives.
#[tokio::test]
async fn both_sides_closing_a_channel_at_once_keeps_the_connection() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    let mut burst = publish_frames(1, &unique("no-such-exchange"));
    burst.extend(channel_close(1));
    c.send_bytes(&burst).await;
    // We see the broker's close (404) and its close-ok for ours, in either
    // order; we answer its close only once both are in, as amqplib does.
    let (mut got_close, mut got_close_ok) = (None, false);
    while got_close.is_none() || !got_close_ok {
        match c.recv_non_heartbeat().await {
            AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::Close(cl))) => {
                got_close = Some((cl.reply_code, cl.reply_text.to_string()))
            }
            AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))) => got_close_ok = true,
            f => panic!("unexpected frame {f:?}"),
        }
    }
    let (code, text) = got_close.unwrap();
    assert_eq!(code, 404, "{text}");
    c.send_method(1, AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {}))).await;
    // Another channel works; so does the same number again.
    for ch in [2, 1] {
        c.open_channel(ch).await;
        let q = unique("after-the-race");
        c.send_method(
            ch,
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
            AMQPFrame::Method(n, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok))) if n == ch => {
                assert_eq!(ok.queue.as_str(), q)
            }
            f => panic!("expected queue.declare-ok on channel {ch}, got {f:?}"),
        }
    }
}

/// The client sends connection.close and more frames in the same burst, and
/// keeps writing for a while after close-ok. The broker answers close-ok
/// and keeps reading (and dropping) what arrives, so those writes do not
/// fail; it closes once the client does (or after a bound).
#[tokio::test]
async fn writes_after_connection_close_do_not_fail() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
    let mut burst = encode(&AMQPFrame::Method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
            reply_code: 200,
            reply_text: "bye".into(),
            class_id: 0,
            method_id: 0,
        })),
    ));
    burst.extend(publish_frames(1, ""));
    burst.extend(channel_close(1));
    c.send_bytes(&burst).await;
    match c.recv_non_heartbeat().await {
        AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))) => {}
        f => panic!("expected connection.close-ok, got {f:?}"),
    }
    // A client that has not yet noticed keeps writing: 300 ms of heartbeats.
    let until = tokio::time::Instant::now() + Duration::from_millis(300);
    while tokio::time::Instant::now() < until {
        c.try_send_bytes(&[8u8, 0, 0, 0, 0, 0, 0, 0xCE].repeat(512))
            .await
            .expect("a write shortly after close-ok failed: the broker dropped the socket under the client");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nothing more arrives; the broker lets us close first, or closes
    // within its bound.
    let (bytes, _eof) = c.read_until_eof(Duration::from_millis(200)).await;
    assert!(bytes.is_empty(), "frames after close-ok: {bytes:?}");
}
