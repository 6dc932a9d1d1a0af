//! The load tool's hot-path codec: a pre-encoded publish template, the
//! basic.ack encoder, and a borrowing frame parser for deliveries and
//! confirms.
//!
//! No I/O and no allocation per message. Everything in a publish except the
//! 8-byte timestamp is the same for every message of a run, so the three
//! frames (basic.publish, content header, body) are encoded once into a
//! template and each message is one `extend_from_slice` plus one 8-byte
//! overwrite. Control methods go through amq-protocol in `conn`.
//!
//! The parser borrows frames out of the read buffer instead of using
//! `protocol::frame::split_frame`, which hands out a refcounted `Bytes` per
//! frame: three atomic round trips per message that this tool does not need.

pub(crate) use crate::wire::frame::{
    CLASS_BASIC, CLASS_CHANNEL, CLASS_CONNECTION, FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD,
    METHOD_BASIC_ACK, METHOD_BASIC_CANCEL, METHOD_BASIC_DELIVER, METHOD_BASIC_NACK, METHOD_BASIC_PUBLISH,
    METHOD_BASIC_RETURN, METHOD_CLOSE, METHOD_CONNECTION_BLOCKED, METHOD_CONNECTION_CLOSE, METHOD_CONNECTION_UNBLOCKED,
};
use crate::wire::frame::{FRAME_HEADER_SIZE, FRAME_OVERHEAD};
use crate::wire::properties::{Property, FLAG_HEADERS};

/// Property flag for delivery-mode (AMQP 0-9-1 §4.2.6.1: bit 12 of the
/// basic class's property flags).
const FLAG_DELIVERY_MODE: u16 = Property::DeliveryMode.flag();

/// Bytes we need in the body to carry the send timestamp.
pub(crate) const TIMESTAMP_LEN: usize = 8;

#[inline]
fn begin_frame(buf: &mut Vec<u8>, kind: u8, channel: u16) -> usize {
    buf.push(kind);
    buf.extend_from_slice(&channel.to_be_bytes());
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    at
}

#[inline]
fn end_frame(buf: &mut Vec<u8>, size_at: usize) {
    let size = (buf.len() - size_at - 4) as u32;
    buf[size_at..size_at + 4].copy_from_slice(&size.to_be_bytes());
    buf.push(FRAME_END);
}

fn put_short_str(buf: &mut Vec<u8>, s: &[u8]) {
    // Callers validate names up front (see `PerfArgs::validate`).
    debug_assert!(s.len() <= 255);
    let s = &s[..s.len().min(255)];
    buf.push(s.len() as u8);
    buf.extend_from_slice(s);
}

/// Appends a basic.publish method frame (mandatory and immediate off).
pub(crate) fn put_publish(buf: &mut Vec<u8>, channel: u16, exchange: &[u8], routing_key: &[u8]) {
    let at = begin_frame(buf, FRAME_METHOD, channel);
    buf.extend_from_slice(&CLASS_BASIC.to_be_bytes());
    buf.extend_from_slice(&METHOD_BASIC_PUBLISH.to_be_bytes());
    buf.extend_from_slice(&0u16.to_be_bytes()); // ticket
    put_short_str(buf, exchange);
    put_short_str(buf, routing_key);
    buf.push(0);
    end_frame(buf, at);
}

/// Appends a basic content header with delivery-mode and, if `headers` is
/// not 0, a headers table of that many entries `hNNN: "value-NNNN"`.
pub(crate) fn put_content_header(buf: &mut Vec<u8>, channel: u16, body_size: u64, delivery_mode: u8, headers: usize) {
    let at = begin_frame(buf, FRAME_HEADER, channel);
    buf.extend_from_slice(&CLASS_BASIC.to_be_bytes());
    buf.extend_from_slice(&0u16.to_be_bytes()); // weight
    buf.extend_from_slice(&body_size.to_be_bytes());
    let flags = FLAG_DELIVERY_MODE | if headers > 0 { FLAG_HEADERS } else { 0 };
    buf.extend_from_slice(&flags.to_be_bytes());
    if headers > 0 {
        let table_at = buf.len();
        buf.extend_from_slice(&[0; 4]);
        for i in 0..headers {
            put_short_str(buf, format!("h{i:03}").as_bytes());
            let value = format!("value-{i:04}");
            buf.push(b'S');
            buf.extend_from_slice(&(value.len() as u32).to_be_bytes());
            buf.extend_from_slice(value.as_bytes());
        }
        let len = (buf.len() - table_at - 4) as u32;
        buf[table_at..table_at + 4].copy_from_slice(&len.to_be_bytes());
    }
    buf.push(delivery_mode);
    end_frame(buf, at);
}

/// Appends the body as as many body frames as `frame_max` requires.
pub(crate) fn put_body(buf: &mut Vec<u8>, channel: u16, body: &[u8], frame_max: u32) {
    let chunk = (frame_max as usize).saturating_sub(FRAME_OVERHEAD).max(1);
    for part in body.chunks(chunk) {
        buf.push(FRAME_BODY);
        buf.extend_from_slice(&channel.to_be_bytes());
        buf.extend_from_slice(&(part.len() as u32).to_be_bytes());
        buf.extend_from_slice(part);
        buf.push(FRAME_END);
    }
}

/// Appends a basic.ack from a consumer.
#[inline]
pub(crate) fn put_ack(buf: &mut Vec<u8>, channel: u16, delivery_tag: u64, multiple: bool) {
    buf.extend_from_slice(&[FRAME_METHOD]);
    buf.extend_from_slice(&channel.to_be_bytes());
    buf.extend_from_slice(&13u32.to_be_bytes());
    buf.extend_from_slice(&CLASS_BASIC.to_be_bytes());
    buf.extend_from_slice(&METHOD_BASIC_ACK.to_be_bytes());
    buf.extend_from_slice(&delivery_tag.to_be_bytes());
    buf.push(multiple as u8);
    buf.push(FRAME_END);
}

/// One message's three (or more) frames, encoded once per producer.
#[derive(Debug, Clone)]
pub(crate) struct PublishTemplate {
    bytes: Vec<u8>,
    /// Where the body's first 8 bytes sit, if the body has room for them.
    timestamp_at: Option<usize>,
}

impl PublishTemplate {
    pub(crate) fn new(
        channel: u16,
        exchange: &str,
        routing_key: &str,
        size: usize,
        persistent: bool,
        headers: usize,
        frame_max: u32,
    ) -> Self {
        let mut bytes = Vec::with_capacity(size + 128 + 20 * headers);
        put_publish(&mut bytes, channel, exchange.as_bytes(), routing_key.as_bytes());
        put_content_header(&mut bytes, channel, size as u64, if persistent { 2 } else { 1 }, headers);
        let body_at = bytes.len() + FRAME_HEADER_SIZE;
        put_body(&mut bytes, channel, &vec![0u8; size], frame_max);
        let first_body_frame = (frame_max as usize).saturating_sub(FRAME_OVERHEAD);
        let timestamp_at = (size >= TIMESTAMP_LEN && first_body_frame >= TIMESTAMP_LEN).then_some(body_at);
        PublishTemplate { bytes, timestamp_at }
    }

    /// Encoded size of one message.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Appends `count` messages stamped with `timestamp_ns`.
    #[inline]
    pub(crate) fn append(&self, buf: &mut Vec<u8>, count: usize, timestamp_ns: u64) {
        buf.reserve(self.bytes.len() * count);
        let stamp = timestamp_ns.to_le_bytes();
        for _ in 0..count {
            let start = buf.len();
            buf.extend_from_slice(&self.bytes);
            if let Some(at) = self.timestamp_at {
                buf[start + at..start + at + TIMESTAMP_LEN].copy_from_slice(&stamp);
            }
        }
    }
}

/// A frame borrowed from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawFrame<'a> {
    pub kind: u8,
    pub channel: u16,
    pub payload: &'a [u8],
}

/// Why the broker's byte stream cannot be framed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds frame_max {max}")]
    TooLarge { size: u64, max: u32 },
    #[error("bad frame end marker 0x{0:02x}")]
    BadFrameEnd(u8),
    #[error("unknown frame type {0}")]
    UnknownType(u8),
}

/// Returns the first complete frame of `buf` and its total length, or
/// `Ok(None)` when more bytes are needed.
#[inline]
pub(crate) fn next_frame(buf: &[u8], frame_max: u32) -> Result<Option<(RawFrame<'_>, usize)>, FrameError> {
    if buf.len() < FRAME_HEADER_SIZE {
        return Ok(None);
    }
    let kind = buf[0];
    if !matches!(kind, FRAME_METHOD | FRAME_HEADER | FRAME_BODY | FRAME_HEARTBEAT) {
        return Err(FrameError::UnknownType(kind));
    }
    let channel = u16::from_be_bytes([buf[1], buf[2]]);
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as u64;
    let total = size + FRAME_OVERHEAD as u64;
    if total > frame_max as u64 {
        return Err(FrameError::TooLarge { size: total, max: frame_max });
    }
    let total = total as usize;
    if buf.len() < total {
        return Ok(None);
    }
    if buf[total - 1] != FRAME_END {
        return Err(FrameError::BadFrameEnd(buf[total - 1]));
    }
    let payload = &buf[FRAME_HEADER_SIZE..total - 1];
    Ok(Some((RawFrame { kind, channel, payload }, total)))
}

/// Class and method ids of a method frame payload.
#[inline]
pub(crate) fn method_id(payload: &[u8]) -> Option<(u16, u16)> {
    let b = payload.get(..4)?;
    Some((u16::from_be_bytes([b[0], b[1]]), u16::from_be_bytes([b[2], b[3]])))
}

/// The delivery tag of a basic.deliver payload (after the consumer tag).
#[inline]
pub(crate) fn deliver_tag(payload: &[u8]) -> Option<u64> {
    let tag_len = *payload.get(4)? as usize;
    let at = 5 + tag_len;
    let b = payload.get(at..at + 8)?;
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

/// Delivery tag and `multiple` of a basic.ack or basic.nack payload.
#[inline]
pub(crate) fn confirm_tag(payload: &[u8]) -> Option<(u64, bool)> {
    let b = payload.get(4..13)?;
    Some((u64::from_be_bytes(b[..8].try_into().ok()?), b[8] & 1 != 0))
}

/// Body size of a content header payload.
#[inline]
pub(crate) fn header_body_size(payload: &[u8]) -> Option<u64> {
    let b = payload.get(4..12)?;
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::frame::{gen_frame, AMQPContentHeader, AMQPFrame};
    use amq_protocol::protocol::{basic, AMQPClass};

    fn amq_bytes(frame: &AMQPFrame) -> Vec<u8> {
        cookie_factory::gen_simple(gen_frame(frame), Vec::new()).unwrap()
    }

    #[test]
    fn template_matches_amq_protocol() {
        for (size, frame_max, persistent, headers) in
            [(16, 131072, false, 0), (10_000, 4096, true, 0), (0, 4096, false, 0), (16, 131072, false, 12)]
        {
            let t = PublishTemplate::new(3, "ex", "rk", size, persistent, headers, frame_max);
            let mut ours = Vec::new();
            t.append(&mut ours, 1, 0);
            let mut theirs = amq_bytes(&AMQPFrame::Method(
                3,
                AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                    exchange: "ex".into(),
                    routing_key: "rk".into(),
                    mandatory: false,
                    immediate: false,
                })),
            ));
            let mut props = basic::AMQPProperties::default().with_delivery_mode(if persistent { 2 } else { 1 });
            if headers > 0 {
                let mut t = amq_protocol::types::FieldTable::default();
                for i in 0..headers {
                    let v = amq_protocol::types::AMQPValue::LongString(format!("value-{i:04}").into());
                    t.insert(format!("h{i:03}").into(), v);
                }
                props = props.with_headers(t);
            }
            theirs.extend(amq_bytes(&AMQPFrame::Header(
                3,
                AMQPContentHeader { class_id: 60, body_size: size as u64, properties: props },
            )));
            for part in vec![0u8; size].chunks(frame_max as usize - 8) {
                theirs.extend(amq_bytes(&AMQPFrame::Body(3, part.to_vec())));
            }
            assert_eq!(ours, theirs, "size {size}");
            assert_eq!(t.len(), theirs.len());
        }
    }

    #[test]
    fn template_stamps_each_message() {
        let t = PublishTemplate::new(1, "", "q", 16, false, 0, 131072);
        let mut buf = Vec::new();
        t.append(&mut buf, 2, 0x0102_0304_0506_0708);
        let mut rest = &buf[..];
        let mut stamps = 0;
        while let Some((f, n)) = next_frame(rest, 131072).unwrap() {
            if f.kind == FRAME_BODY {
                assert_eq!(u64::from_le_bytes(f.payload[..8].try_into().unwrap()), 0x0102_0304_0506_0708);
                stamps += 1;
            }
            rest = &rest[n..];
        }
        assert_eq!((stamps, rest.len()), (2, 0));
    }

    #[test]
    fn ack_matches_amq_protocol_and_parses_back() {
        let mut ours = Vec::new();
        put_ack(&mut ours, 1, 99, true);
        let theirs = amq_bytes(&AMQPFrame::Method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack { delivery_tag: 99, multiple: true })),
        ));
        assert_eq!(ours, theirs);
        let (f, n) = next_frame(&ours, 4096).unwrap().unwrap();
        assert_eq!((f.kind, f.channel, n), (FRAME_METHOD, 1, ours.len()));
        assert_eq!(method_id(f.payload), Some((CLASS_BASIC, METHOD_BASIC_ACK)));
        assert_eq!(confirm_tag(f.payload), Some((99, true)));
    }

    #[test]
    fn parses_deliver_and_header() {
        let deliver = amq_bytes(&AMQPFrame::Method(
            2,
            AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
                consumer_tag: "perf-c0".into(),
                delivery_tag: 123_456,
                redelivered: false,
                exchange: "x".into(),
                routing_key: "q0".into(),
            })),
        ));
        let (f, _) = next_frame(&deliver, 4096).unwrap().unwrap();
        assert_eq!(method_id(f.payload), Some((CLASS_BASIC, METHOD_BASIC_DELIVER)));
        assert_eq!(deliver_tag(f.payload), Some(123_456));
        let header = amq_bytes(&AMQPFrame::Header(
            2,
            AMQPContentHeader { class_id: 60, body_size: 777, properties: basic::AMQPProperties::default() },
        ));
        let (f, _) = next_frame(&header, 4096).unwrap().unwrap();
        assert_eq!((f.kind, header_body_size(f.payload)), (FRAME_HEADER, Some(777)));
    }

    #[test]
    fn every_prefix_needs_more_and_bad_input_is_an_error() {
        let mut stream = Vec::new();
        put_ack(&mut stream, 1, 5, false);
        for cut in 0..stream.len() {
            assert_eq!(next_frame(&stream[..cut], 4096), Ok(None), "prefix {cut}");
        }
        let mut bad = stream.clone();
        *bad.last_mut().unwrap() = 0;
        assert_eq!(next_frame(&bad, 4096), Err(FrameError::BadFrameEnd(0)));
        assert!(matches!(next_frame(&[3, 0, 1, 0xff, 0xff, 0xff, 0xff], 4096), Err(FrameError::TooLarge { .. })));
        assert_eq!(next_frame(&[9, 0, 0, 0, 0, 0, 0, 0xce], 4096), Err(FrameError::UnknownType(9)));
        // Truncated payloads are None, not panics.
        assert_eq!(deliver_tag(&[0, 60, 0, 60, 9]), None);
        assert_eq!(confirm_tag(&[0, 60, 0, 80, 0]), None);
        assert_eq!(header_body_size(&[0, 60]), None);
    }
}
