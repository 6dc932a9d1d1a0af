//! Field tables and arrays nested far deeper than any client sends: they must
//! never crash the broker (amq-protocol's parser recurses; a table about
//! 1,400 levels deep used to overflow a tokio worker's stack and abort the
//! process), before login or after. Raw sockets, so the bytes are exactly
//! what a hostile client would send. Each test also checks that the broker
//! still takes new connections afterwards.
mod common;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{connection, queue, AMQPClass};
use common::raw::*;
use common::*;

/// A table `{"a": {"a": ... {}}}` of `depth` tables, length prefix included.
/// Written outside in (each level's length is known), so linear time.
fn nested_tables(depth: usize) -> Vec<u8> {
    let mut t = Vec::with_capacity(7 * depth);
    for level in 0..depth {
        t.extend_from_slice(&((7 * (depth - 1 - level)) as u32).to_be_bytes());
        if level + 1 < depth {
            t.extend_from_slice(b"\x01aF");
        }
    }
    t
}

/// A value `[[[...]]]` of `depth` nested arrays, tag included.
fn nested_arrays(depth: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 * depth);
    for level in 0..depth {
        v.push(b'A');
        v.extend_from_slice(&((5 * (depth - 1 - level)) as u32).to_be_bytes());
    }
    v
}

/// A table of raw `(key, tagged value)` entries, length prefix included.
fn table(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in entries {
        body.push(k.len() as u8);
        body.extend_from_slice(k.as_bytes());
        body.extend_from_slice(v);
    }
    let mut t = (body.len() as u32).to_be_bytes().to_vec();
    t.extend(body);
    t
}

fn tagged(tag: u8, table: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(table);
    v
}

/// connection.start-ok with raw client properties and PLAIN credentials.
fn start_ok(client_properties: &[u8], user: &str, pass: &str) -> Vec<u8> {
    let mut args = client_properties.to_vec();
    args.extend_from_slice(b"\x05PLAIN");
    let response = format!("\0{user}\0{pass}");
    args.extend_from_slice(&(response.len() as u32).to_be_bytes());
    args.extend_from_slice(response.as_bytes());
    args.extend_from_slice(b"\x05en_US");
    raw_method(0, 10, 11, &args)
}

/// The broker still does a full handshake and opens a channel.
async fn still_serves(b: &TestBroker) {
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    c.open_channel(1).await;
}

#[tokio::test]
async fn deep_client_properties_with_wrong_credentials_are_refused_not_fatal() {
    let b = broker().await;
    // 500 tables deep (3.5 KB, within the 4096-octet pre-tune limit) next
    // to the capabilities a client advertises: RabbitMQ reads both.
    let caps = table(&[("authentication_failure_close", b"t\x01")]);
    let deep = tagged(b'F', &nested_tables(500));
    let props = table(&[("capabilities", &tagged(b'F', &caps)), ("deep", &deep)]);
    let mut c = RawConn::connect(b.addr()).await;
    c.start().await;
    c.send_bytes(&start_ok(&props, "guest", "wrong")).await;
    let close = c.expect_connection_close().await;
    assert_eq!(
        (close.reply_code, close.reply_text.as_str(), close.class_id, close.method_id),
        (
            403,
            "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.",
            0,
            0
        )
    );
    c.expect_eof(WAIT).await;
    still_serves(&b).await;
}

#[tokio::test]
async fn deep_client_properties_with_good_credentials_log_in() {
    let b = broker().await;
    // 800 arrays deep, 4 KB: the deepest a pre-tune frame can carry.
    let props = table(&[("deep", &nested_arrays(800))]);
    let mut c = RawConn::connect(b.addr()).await;
    c.start().await;
    c.send_bytes(&start_ok(&props, "guest", "guest")).await;
    match c.recv_non_heartbeat().await {
        AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Tune(_))) => {}
        f => panic!("expected connection.tune, got {f:?}"),
    }
    still_serves(&b).await;
}

/// queue.declare on channel 1 with raw arguments.
fn queue_declare(name: &str, arguments: &[u8]) -> Vec<u8> {
    let mut args = vec![0, 0, name.len() as u8];
    args.extend_from_slice(name.as_bytes());
    args.push(0);
    args.extend_from_slice(arguments);
    raw_method(1, 50, 10, &args)
}

/// RabbitMQ decodes arguments of any depth (an Erlang process grows its
/// heap) and declares the queue. Warren decodes method arguments into
/// amq-protocol's types, whose parser and destructor recurse, so it refuses
/// tables nested past 64 levels with a channel error (406, the code
/// RabbitMQ gives arguments it will not take), and the connection carries
/// on. Against RabbitMQ the test checks RabbitMQ's answer instead.
#[tokio::test]
async fn method_arguments_nested_too_deep_are_a_channel_error() {
    let b = broker().await;
    let (mut c, _, _) = RawConn::handshake(b.addr(), 0, 0).await;
    for (depth, ok_on_warren) in [(63, true), (64, false), (10_000, false)] {
        let name = unique("deep-args");
        c.open_channel(1).await;
        // The arguments table is level 1, so `depth` tables in a value make depth + 1.
        let args = table(&[("x-ok", b"t\x01"), ("x-deep", &tagged(b'F', &nested_tables(depth)))]);
        c.send_bytes(&queue_declare(&name, &args)).await;
        if b.is_warren() && !ok_on_warren {
            let close = c.expect_channel_close().await;
            assert_eq!(
                (close.reply_code, close.reply_text.as_str(), close.class_id, close.method_id),
                (406, "PRECONDITION_FAILED - field table argument 'x-deep' nested deeper than 64 levels", 50, 10),
                "depth {depth}"
            );
        } else {
            match c.recv_non_heartbeat().await {
                AMQPFrame::Method(1, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok))) => {
                    assert_eq!(ok.queue.as_str(), name)
                }
                f => panic!("depth {depth}: expected queue.declare-ok, got {f:?}"),
            }
            cleanup_queue(&b, &name).await;
            c.send_method(
                1,
                AMQPClass::Channel(amq_protocol::protocol::channel::AMQPMethod::Close(
                    amq_protocol::protocol::channel::Close {
                        reply_code: 200,
                        reply_text: "".into(),
                        class_id: 0,
                        method_id: 0,
                    },
                )),
            )
            .await;
            match c.recv_non_heartbeat().await {
                AMQPFrame::Method(1, AMQPClass::Channel(amq_protocol::protocol::channel::AMQPMethod::CloseOk(_))) => {}
                f => panic!("expected channel.close-ok, got {f:?}"),
            }
        }
    }
    still_serves(&b).await;
}
