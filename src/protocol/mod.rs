//! The wire front end: frames ⇄ methods, the connection and channel state
//! machines, authentication, flow control and write batching.
//!
//! `frame` and `codec` do no I/O and hold no broker state; `connection` is
//! the only place that touches a socket; `harness` drives the same state
//! machine without one, for tests and fuzzing.

mod channel;
pub mod codec;
pub mod connection;
pub mod frame;
pub mod harness;

/// Runs `data` through the frame splitter and the decoders a peer's bytes
/// reach (methods, content headers, properties), as the fuzz target and the
/// randomized test do. Returns how many frames were split. Never panics.
pub fn fuzz_input(data: &[u8]) -> usize {
    let mut buf = bytes::BytesMut::from(data);
    let mut frames = 0;
    // A small frame_max makes the size check reachable with short inputs.
    for frame_max in [4096u32, 131072] {
        buf.clear();
        buf.extend_from_slice(data);
        while let Ok(Some(f)) = frame::split_frame(&mut buf, frame_max) {
            frames += 1;
            match f.kind {
                frame::FrameKind::Method => {
                    let _ = codec::decode_method(&f.payload);
                }
                frame::FrameKind::Header => {
                    if let Some(h) = codec::decode_content_header(&f.payload) {
                        let _ = amq_protocol::protocol::basic::parse_properties(&h.properties[..]);
                        // The no-decode scan every publish runs, and what a
                        // Message derives from it (delivery mode, priority,
                        // expiration).
                        let _ = crate::broker::message::PropertyScan::new(&h.properties);
                        let _ = crate::broker::message::Message::new(
                            bytes::Bytes::new(),
                            bytes::Bytes::new(),
                            h.properties.clone(),
                            bytes::Bytes::new(),
                        );
                    }
                }
                _ => {}
            }
        }
    }
    // Method payloads without framing reach the decoder more directly.
    let payload = bytes::Bytes::copy_from_slice(data);
    let _ = codec::decode_method(&payload);
    frames
}

/// Drives the connection state machine — handshake, channels, every method
/// a client can send, deliveries, closes — with `data`, as the `connection`
/// fuzz target and its stand-in test do. The first byte picks whether a
/// valid handshake and `channel.open` come first (so most inputs start deep
/// in the state machine) and how the rest is cut into reads. Never panics,
/// and everything the broker writes is well framed.
pub fn fuzz_connection(data: &[u8]) {
    use std::sync::{Arc, OnceLock};
    static PREAMBLE: OnceLock<Vec<u8>> = OnceLock::new();
    let preamble = PREAMBLE.get_or_init(|| {
        use amq_protocol::protocol::{channel, connection, AMQPClass};
        use amq_protocol::types::{FieldTable, LongString};
        let mut out = bytes::BytesMut::from(&b"AMQP\x00\x00\x09\x01"[..]);
        let m = |out: &mut bytes::BytesMut, ch: u16, c: AMQPClass| codec::write_method(out, ch, c);
        m(
            &mut out,
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: FieldTable::default(),
                mechanism: "PLAIN".into(),
                response: LongString::from("\0guest\0guest"),
                locale: "en_US".into(),
            })),
        );
        m(
            &mut out,
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: 2047,
                frame_max: 131072,
                heartbeat: 0,
            })),
        );
        let open = connection::Open { virtual_host: "/".into() };
        m(&mut out, 0, AMQPClass::Connection(connection::AMQPMethod::Open(open)));
        m(&mut out, 1, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})));
        out.to_vec()
    });
    let broker = Arc::new(crate::broker::Broker::in_memory("guest", "guest", "/"));
    let mut h = harness::Harness::new(broker, Arc::new(crate::Config::ephemeral()));
    let (mode, data) = data.split_first().unwrap_or((&0, &[]));
    if mode & 1 == 0 {
        h.feed(preamble);
    }
    let chunk = 1 + (*mode as usize >> 1) * 5;
    let mut out = h.take_output();
    for part in data.chunks(chunk) {
        h.feed(part);
        out.extend_from_slice(&h.take_output());
        if h.ended() {
            break;
        }
    }
    drop(h);
    // Our output must parse as frames (unless it is the protocol header we
    // answer an unknown one with).
    if out.starts_with(b"AMQP") {
        return;
    }
    loop {
        match frame::split_frame(&mut out, u32::MAX) {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => panic!("the broker wrote a malformed frame: {e}"),
        }
    }
    assert!(out.is_empty(), "the broker's output ends in a partial frame");
}
