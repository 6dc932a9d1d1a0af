//! The wire front end: frames ⇄ methods, the connection and channel state
//! machines, authentication, flow control and write batching.
//!
//! Only `driver` does I/O: it runs a `Connection` over a socket, in an
//! async task.
//! Everything else is sans-IO and reads time from the broker's clock, so
//! `harness` drives the same `Connection` with byte literals and a manual
//! clock, for tests and fuzzing.
//!
//! - `frame`, `codec`: cutting frames out of a buffer; decoding methods,
//!   encoding the hot frames by hand.
//! - `connection`: `Connection`, its `Phase`, the timers, frame routing.
//! - `handshake`, `auth`: the protocol header, start/tune/open; SASL
//!   PLAIN and AMQPLAIN.
//! - `channel`, `content`: per-channel state and modes; content assembly.
//! - `methods/`: the method handlers, one file per class (channel,
//!   exchange, queue, basic, tx, confirm).
//! - `publish`: the publish rules (routing, user_id, CC/BCC, direct
//!   reply-to, mandatory returns), on their way to `broker/`.
//! - `deliveries`: the end of a batch: held replies, confirms, deliveries.
//! - `errors`: `AmqpError` into channel.close / connection.close, frame
//!   and decode errors as RabbitMQ words them.

mod auth;
mod channel;
pub(crate) mod codec;
pub(crate) mod connection;
mod content;
mod deliveries;
pub(crate) mod driver;
mod errors;
pub(crate) mod frame;
mod handshake;
pub mod harness;
mod methods;
mod publish;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod timer_tests;
mod token;

pub use connection::{Connection, ConnectionParams, Event};

/// Runs `data` through the frame splitter and the decoders a peer's bytes
/// reach (methods, content headers, properties), and through the raw
/// field-table walker and edits (`crate::wire`), as the fuzz target and the
/// randomized test do. Returns how many frames were split. Never panics:
/// a panic here is a bug, including the invariants it asserts (a rewrite
/// without edits gives back the same bytes, an edit keeps a table well
/// formed, a walk within a limit reports a depth within it).
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
                        fuzz_properties(&h.properties);
                    }
                }
                _ => {}
            }
        }
    }
    // Method payloads, property lists and tables without framing reach
    // their decoders more directly.
    let payload = bytes::Bytes::copy_from_slice(data);
    let _ = codec::decode_method(&payload);
    fuzz_properties(&payload);
    fuzz_table(data);
    frames
}

/// Drives the connection state machine — handshake, channels, every method
/// a client can send, deliveries, closes, timers — with `data`, as the
/// `connection` fuzz target and its stand-in test do. The first byte picks
/// whether a valid handshake and `channel.open` come first (so most inputs
/// start deep in the state machine) and how the rest is cut into reads;
/// the last byte of each read, how far the manual clock moves after it.
/// Never panics, and everything the broker writes is well framed.
pub fn fuzz_connection(data: &[u8]) {
    use std::sync::OnceLock;
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
    let mut h = harness::Harness::manual();
    let (mode, data) = data.split_first().unwrap_or((&0, &[]));
    if mode & 1 == 0 {
        h.feed(preamble);
    }
    // At most 256 reads, so a large input cut into single bytes does not
    // spend the fuzzer's time on one input.
    let chunk = (1 + (*mode as usize >> 1) * 5).max(data.len() / 256);
    let mut out = h.take_output();
    for part in data.chunks(chunk) {
        h.feed(part);
        // Time passes between reads: the last byte of each read says how
        // much (0 to 4 s), so heartbeats, the handshake deadline and the
        // close deadlines fire too. `advance` panics on a deadline that
        // handling does not move (a spinning connection).
        let pause = part.last().map_or(0, |b| u64::from(*b) * 16);
        h.advance(std::time::Duration::from_millis(pause));
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

/// What a publish does with its property list, and what a delivery or a
/// dead-lettering does with a stored one.
fn fuzz_properties(props: &bytes::Bytes) {
    use crate::message::Message;
    use crate::wire::properties::{self, Property, PropertyScan};
    use crate::wire::table::{self, Edit};
    use bytes::Bytes;

    let scan = PropertyScan::new(props);
    let message = Message::new(Bytes::from_static(b"x"), Bytes::from_static(b"k"), props.clone(), Bytes::new());
    let _ = message.decode_properties();
    if scan.check(props).is_err() {
        assert_eq!(scan.malformed, properties::rewrite(props, &scan, &[]).is_none());
        return;
    }
    assert_eq!(properties::rewrite(props, &scan, &[]).as_deref(), Some(&props[..]), "a rewrite without edits");
    let reply = properties::short_string(b"amq.rabbitmq.reply-to.fuzz").unwrap_or_default();
    let mut count = Vec::new();
    table::put_long(&mut count, 7);
    for (edits, others) in [
        (&[Edit::Remove(b"BCC")][..], &[][..]),
        (&[Edit::Set(b"x-delivery-count", &count[..])][..], &[(Property::ReplyTo, Some(&reply[..]))][..]),
        (&[Edit::Remove(b"CC"), Edit::Set(b"x-death", b"V")][..], &[(Property::Expiration, None)][..]),
    ] {
        let edited = properties::edit_headers(props, &scan, edits, others).expect("a well-formed list edits");
        let again = PropertyScan::new(&edited);
        assert!(again.check(&edited).is_ok(), "an edit keeps the list well formed");
        for (p, v) in others {
            assert_eq!(again.range(*p).is_some(), v.is_some());
        }
    }
    if let Some(headers) = scan.headers(props) {
        // CC/BCC and headers-exchange reads.
        for name in [&b"CC"[..], b"BCC", b"x-death"] {
            if let Some(e) = table::find(headers, name) {
                if let Some(items) = table::array_value(e.tag, e.value) {
                    for item in table::items(items) {
                        let item = item.expect("a checked table iterates");
                        let _ = table::long_string(item.tag, item.value);
                    }
                }
            }
        }
        let h = crate::broker::headers::Headers::new(headers);
        let mut args = amq_protocol::types::FieldTable::default();
        args.insert("x-match".into(), amq_protocol::types::AMQPValue::LongString("any".into()));
        for e in table::entries(headers).take(4) {
            let e = e.expect("a checked table iterates");
            if let (Ok(key), Ok(v)) = (std::str::from_utf8(e.key), table::decode_value(e.tag, e.value)) {
                args.insert(key.into(), v);
            }
        }
        let _ = crate::broker::headers::headers_match(&args, Some(&h));
    }
    for reason in [crate::broker::queue::DeathReason::Rejected, crate::broker::queue::DeathReason::Expired] {
        let (dead, _, _) = crate::broker::deadletter::dead_letter_message(&message, "q", reason, "dlx", Some("rk"));
        assert!(PropertyScan::new(&dead.properties).check(&dead.properties).is_ok(), "a dead-lettered copy scans");
    }
}

/// The walker, iteration, edits and the bounded decoder on `data` as a table.
fn fuzz_table(data: &[u8]) {
    use crate::wire::table::{self, Edit, TableError, MAX_DECODE_DEPTH};

    let any = table::walk_table(data, usize::MAX);
    match table::walk_table(data, MAX_DECODE_DEPTH) {
        Ok(w) => {
            assert!(w.depth <= MAX_DECODE_DEPTH);
            assert_eq!(any, Ok(w));
        }
        // The bounded walk stops at the first container too deep; the
        // unbounded one goes on, and may still find the table malformed.
        Err(TableError::TooDeep { .. }) => assert!(match any {
            Ok(w) => w.depth > MAX_DECODE_DEPTH,
            Err(e) => matches!(e, TableError::Malformed { .. }),
        }),
        Err(e) => assert_eq!(any, Err(e)),
    }
    let _ = table::decode_table(data);
    if let (Ok(w), Ok(body)) = (any, table::table_body(data)) {
        assert_eq!(body.len() + 4, w.len);
        let mut out = Vec::new();
        table::write_edited(body, &[], &mut out).expect("a valid table iterates");
        assert_eq!(out, data[..w.len], "an edit without edits");
        out.clear();
        table::write_edited(body, &[Edit::Remove(b"BCC"), Edit::Set(b"n", b"V")], &mut out).expect("edits");
        assert!(table::walk_table(&out, usize::MAX).is_ok_and(|e| e.depth <= w.depth), "an edit keeps it valid");
    }
    for start in [0usize, 1] {
        if let Some(&tag) = data.get(start) {
            let _ = table::walk_value(tag, &data[start + 1..], MAX_DECODE_DEPTH);
            let _ = table::decode_value(tag, &data[start + 1..]);
        }
    }
}
