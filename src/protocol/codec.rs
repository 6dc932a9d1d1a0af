//! Method decoding and frame encoding.
//!
//! The hybrid codec of DESIGN.md: the frames on the per-message path
//! (basic.publish/ack/nack/reject/qos in; basic.deliver/get-ok/return, confirm
//! acks, content header and body out) are decoded and encoded here by hand
//! with no allocation; every other method goes through amq-protocol. No I/O.

use amq_protocol::frame::{gen_frame, AMQPFrame};
use amq_protocol::protocol::AMQPClass;
use bytes::{BufMut, Bytes, BytesMut};

use super::frame::{FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_METHOD, FRAME_OVERHEAD};

pub const CLASS_BASIC: u16 = 60;
const METHOD_BASIC_QOS: u16 = 10;
const METHOD_BASIC_PUBLISH: u16 = 40;
const METHOD_BASIC_RETURN: u16 = 50;
const METHOD_BASIC_DELIVER: u16 = 60;
const METHOD_BASIC_GET_OK: u16 = 71;
const METHOD_BASIC_ACK: u16 = 80;
const METHOD_BASIC_REJECT: u16 = 90;
const METHOD_BASIC_NACK: u16 = 120;

/// A decoded method frame. The hot methods keep their fields as slices of the
/// frame payload; the rest are amq-protocol's structs.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    Publish {
        exchange: Bytes,
        routing_key: Bytes,
        mandatory: bool,
        immediate: bool,
    },
    Ack {
        delivery_tag: u64,
        multiple: bool,
    },
    Nack {
        delivery_tag: u64,
        multiple: bool,
        requeue: bool,
    },
    Reject {
        delivery_tag: u64,
        requeue: bool,
    },
    /// Decoded here because amq-protocol drops `prefetch_size`, which RabbitMQ
    /// refuses when non-zero.
    Qos {
        prefetch_size: u32,
        prefetch_count: u16,
        global: bool,
    },
    Other(AMQPClass),
}

/// Why a method frame could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// A class/method pair this protocol version does not define: RabbitMQ
    /// answers 540 NOT_IMPLEMENTED... for known-but-unsupported methods and
    /// closes with 503 COMMAND_INVALID for unknown ones.
    #[error("unknown method {class_id}/{method_id}")]
    UnknownMethod { class_id: u16, method_id: u16 },
    /// Truncated or malformed arguments: 502 SYNTAX_ERROR.
    #[error("malformed arguments for method {class_id}/{method_id}")]
    Malformed { class_id: u16, method_id: u16 },
}

/// A cursor over a method payload that never panics on short input.
struct Reader<'a> {
    payload: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let v = *self.payload.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.payload.get(self.pos..self.pos + 2)?;
        self.pos += 2;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        let b = self.payload.get(self.pos..self.pos + 4)?;
        self.pos += 4;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        let b = self.payload.get(self.pos..self.pos + 8)?;
        self.pos += 8;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_be_bytes(a))
    }
    fn short_str(&mut self) -> Option<Bytes> {
        let len = self.u8()? as usize;
        if self.pos + len > self.payload.len() {
            return None;
        }
        let s = self.payload.slice(self.pos..self.pos + len);
        self.pos += len;
        Some(s)
    }
    fn done(&self) -> bool {
        self.pos == self.payload.len()
    }
}

/// Decodes one method frame payload.
pub fn decode_method(payload: &Bytes) -> Result<Method, DecodeError> {
    let mut r = Reader { payload, pos: 0 };
    let (class_id, method_id) = match (r.u16(), r.u16()) {
        (Some(c), Some(m)) => (c, m),
        _ => return Err(DecodeError::Malformed { class_id: 0, method_id: 0 }),
    };
    let malformed = DecodeError::Malformed { class_id, method_id };
    if class_id == CLASS_BASIC {
        let hot = match method_id {
            METHOD_BASIC_PUBLISH => (|| {
                let _ticket = r.u16()?;
                let exchange = r.short_str()?;
                let routing_key = r.short_str()?;
                let bits = r.u8()?;
                Some(Method::Publish { exchange, routing_key, mandatory: bits & 1 != 0, immediate: bits & 2 != 0 })
            })(),
            METHOD_BASIC_ACK => (|| {
                let delivery_tag = r.u64()?;
                let bits = r.u8()?;
                Some(Method::Ack { delivery_tag, multiple: bits & 1 != 0 })
            })(),
            METHOD_BASIC_NACK => (|| {
                let delivery_tag = r.u64()?;
                let bits = r.u8()?;
                Some(Method::Nack { delivery_tag, multiple: bits & 1 != 0, requeue: bits & 2 != 0 })
            })(),
            METHOD_BASIC_REJECT => (|| {
                let delivery_tag = r.u64()?;
                let bits = r.u8()?;
                Some(Method::Reject { delivery_tag, requeue: bits & 1 != 0 })
            })(),
            METHOD_BASIC_QOS => (|| {
                let prefetch_size = r.u32()?;
                let prefetch_count = r.u16()?;
                let bits = r.u8()?;
                Some(Method::Qos { prefetch_size, prefetch_count, global: bits & 1 != 0 })
            })(),
            _ => None,
        };
        if let Some(m) = hot {
            return if r.done() { Ok(m) } else { Err(malformed) };
        }
        if matches!(
            method_id,
            METHOD_BASIC_PUBLISH | METHOD_BASIC_ACK | METHOD_BASIC_NACK | METHOD_BASIC_REJECT | METHOD_BASIC_QOS
        ) {
            return Err(malformed);
        }
    }
    if !is_known_method(class_id, method_id) {
        return Err(DecodeError::UnknownMethod { class_id, method_id });
    }
    match amq_protocol::protocol::parse_class(&payload[..]) {
        Ok(([], class)) => Ok(Method::Other(class)),
        _ => Err(malformed),
    }
}

/// Whether AMQP 0-9-1 (with RabbitMQ's extensions) defines this method.
fn is_known_method(class_id: u16, method_id: u16) -> bool {
    match class_id {
        10 => matches!(method_id, 10 | 11 | 20 | 21 | 30 | 31 | 40 | 41 | 50 | 51 | 60 | 61 | 70 | 71),
        20 => matches!(method_id, 10 | 11 | 20 | 21 | 40 | 41),
        30 => matches!(method_id, 10 | 11),
        40 => matches!(method_id, 10 | 11 | 20 | 21 | 30 | 31 | 40 | 51),
        50 => matches!(method_id, 10 | 11 | 20 | 21 | 30 | 31 | 40 | 41 | 50 | 51),
        60 => matches!(
            method_id,
            10 | 11 | 20 | 21 | 30 | 31 | 40 | 50 | 60 | 70 | 71 | 72 | 80 | 90 | 100 | 110 | 111 | 120
        ),
        85 => matches!(method_id, 10 | 11),
        90 => matches!(method_id, 10 | 11 | 20 | 21 | 30 | 31),
        _ => false,
    }
}

/// A content header as received: the body size plus the raw property bytes
/// (flags and list), kept untouched so deliveries copy them back verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentHeader {
    pub class_id: u16,
    pub body_size: u64,
    pub properties: Bytes,
}

/// Decodes a content header frame payload without parsing the properties.
pub fn decode_content_header(payload: &Bytes) -> Option<ContentHeader> {
    if payload.len() < 14 {
        return None;
    }
    let class_id = u16::from_be_bytes([payload[0], payload[1]]);
    let mut size = [0u8; 8];
    size.copy_from_slice(&payload[4..12]);
    Some(ContentHeader { class_id, body_size: u64::from_be_bytes(size), properties: payload.slice(12..) })
}

// ---------------------------------------------------------------- encoding

/// Starts a frame; returns the offset of its size field for `end_frame`.
#[inline]
fn begin_frame(buf: &mut BytesMut, kind: u8, channel: u16) -> usize {
    buf.put_u8(kind);
    buf.put_u16(channel);
    let at = buf.len();
    buf.put_u32(0);
    at
}

#[inline]
fn end_frame(buf: &mut BytesMut, size_at: usize) {
    let size = (buf.len() - size_at - 4) as u32;
    buf[size_at..size_at + 4].copy_from_slice(&size.to_be_bytes());
    buf.put_u8(FRAME_END);
}

/// Writes a short string. Callers pass names that arrived as short strings or
/// that we validated, so the cap is an invariant; truncating keeps a bug from
/// producing a corrupt frame.
#[inline]
fn put_short_str(buf: &mut BytesMut, s: &[u8]) {
    debug_assert!(s.len() <= 255, "short string over 255 bytes");
    let s = &s[..s.len().min(255)];
    buf.put_u8(s.len() as u8);
    buf.put_slice(s);
}

pub fn write_deliver(
    buf: &mut BytesMut,
    channel: u16,
    consumer_tag: &[u8],
    delivery_tag: u64,
    redelivered: bool,
    exchange: &[u8],
    routing_key: &[u8],
) {
    let at = begin_frame(buf, FRAME_METHOD, channel);
    buf.put_u16(CLASS_BASIC);
    buf.put_u16(METHOD_BASIC_DELIVER);
    put_short_str(buf, consumer_tag);
    buf.put_u64(delivery_tag);
    buf.put_u8(redelivered as u8);
    put_short_str(buf, exchange);
    put_short_str(buf, routing_key);
    end_frame(buf, at);
}

#[allow(clippy::too_many_arguments)]
pub fn write_get_ok(
    buf: &mut BytesMut,
    channel: u16,
    delivery_tag: u64,
    redelivered: bool,
    exchange: &[u8],
    routing_key: &[u8],
    message_count: u32,
) {
    let at = begin_frame(buf, FRAME_METHOD, channel);
    buf.put_u16(CLASS_BASIC);
    buf.put_u16(METHOD_BASIC_GET_OK);
    buf.put_u64(delivery_tag);
    buf.put_u8(redelivered as u8);
    put_short_str(buf, exchange);
    put_short_str(buf, routing_key);
    buf.put_u32(message_count);
    end_frame(buf, at);
}

pub fn write_return(
    buf: &mut BytesMut,
    channel: u16,
    reply_code: u16,
    reply_text: &str,
    exchange: &[u8],
    routing_key: &[u8],
) {
    let at = begin_frame(buf, FRAME_METHOD, channel);
    buf.put_u16(CLASS_BASIC);
    buf.put_u16(METHOD_BASIC_RETURN);
    buf.put_u16(reply_code);
    put_short_str(buf, reply_text.as_bytes());
    put_short_str(buf, exchange);
    put_short_str(buf, routing_key);
    end_frame(buf, at);
}

/// A publisher-confirm basic.ack (or basic.nack when `nack`).
pub fn write_confirm(buf: &mut BytesMut, channel: u16, delivery_tag: u64, multiple: bool, nack: bool) {
    let at = begin_frame(buf, FRAME_METHOD, channel);
    buf.put_u16(CLASS_BASIC);
    buf.put_u16(if nack { METHOD_BASIC_NACK } else { METHOD_BASIC_ACK });
    buf.put_u64(delivery_tag);
    buf.put_u8(multiple as u8);
    end_frame(buf, at);
}

/// Writes the content header and as many body frames as `frame_max` requires.
pub fn write_content(buf: &mut BytesMut, channel: u16, properties: &[u8], body: &[u8], frame_max: u32) {
    let at = begin_frame(buf, FRAME_HEADER, channel);
    buf.put_u16(CLASS_BASIC);
    buf.put_u16(0);
    buf.put_u64(body.len() as u64);
    buf.put_slice(properties);
    end_frame(buf, at);
    let chunk = (frame_max as usize).saturating_sub(FRAME_OVERHEAD).max(1);
    for part in body.chunks(chunk) {
        buf.reserve(part.len() + FRAME_OVERHEAD);
        buf.put_u8(FRAME_BODY);
        buf.put_u16(channel);
        buf.put_u32(part.len() as u32);
        buf.put_slice(part);
        buf.put_u8(FRAME_END);
    }
}

pub fn write_heartbeat(buf: &mut BytesMut) {
    buf.put_slice(&[8, 0, 0, 0, 0, 0, 0, FRAME_END]);
}

/// Encodes a control method with amq-protocol. Encoding into a growable `Vec`
/// cannot run out of room, so the only failure left would be a bug in the
/// generator; it is logged and the frame dropped rather than panicking.
pub fn write_method(buf: &mut BytesMut, channel: u16, method: AMQPClass) {
    let frame = AMQPFrame::Method(channel, method);
    match cookie_factory::gen_simple(gen_frame(&frame), Vec::with_capacity(64)) {
        Ok(bytes) => buf.put_slice(&bytes),
        Err(e) => tracing::error!(?e, "could not encode {:?}", frame),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::frame::AMQPContentHeader;
    use amq_protocol::protocol::basic;

    fn amq_bytes(frame: &AMQPFrame) -> Vec<u8> {
        cookie_factory::gen_simple(gen_frame(frame), Vec::new()).unwrap()
    }

    #[test]
    fn deliver_matches_amq_protocol() {
        let mut ours = BytesMut::new();
        write_deliver(&mut ours, 3, b"ctag", 42, true, b"ex", b"rk");
        let theirs = amq_bytes(&AMQPFrame::Method(
            3,
            AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
                consumer_tag: "ctag".into(),
                delivery_tag: 42,
                redelivered: true,
                exchange: "ex".into(),
                routing_key: "rk".into(),
            })),
        ));
        assert_eq!(&ours[..], &theirs[..]);
    }

    #[test]
    fn get_ok_return_and_confirms_match_amq_protocol() {
        let mut ours = BytesMut::new();
        write_get_ok(&mut ours, 1, 7, false, b"", b"q", 9);
        let theirs = amq_bytes(&AMQPFrame::Method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::GetOk(basic::GetOk {
                delivery_tag: 7,
                redelivered: false,
                exchange: "".into(),
                routing_key: "q".into(),
                message_count: 9,
            })),
        ));
        assert_eq!(&ours[..], &theirs[..]);

        let mut ours = BytesMut::new();
        write_return(&mut ours, 2, 312, "NO_ROUTE", b"x", b"k");
        let theirs = amq_bytes(&AMQPFrame::Method(
            2,
            AMQPClass::Basic(basic::AMQPMethod::Return(basic::Return {
                reply_code: 312,
                reply_text: "NO_ROUTE".into(),
                exchange: "x".into(),
                routing_key: "k".into(),
            })),
        ));
        assert_eq!(&ours[..], &theirs[..]);

        let mut ours = BytesMut::new();
        write_confirm(&mut ours, 1, 5, true, false);
        let theirs = amq_bytes(&AMQPFrame::Method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack { delivery_tag: 5, multiple: true })),
        ));
        assert_eq!(&ours[..], &theirs[..]);
        let mut ours = BytesMut::new();
        write_confirm(&mut ours, 1, 5, false, true);
        let theirs = amq_bytes(&AMQPFrame::Method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Nack(basic::Nack { delivery_tag: 5, multiple: false, requeue: false })),
        ));
        assert_eq!(&ours[..], &theirs[..]);
    }

    #[test]
    fn content_matches_amq_protocol_and_splits_by_frame_max() {
        let props = basic::AMQPProperties::default().with_content_type("text/plain".into()).with_delivery_mode(2);
        let raw_props = cookie_factory::gen_simple(basic::gen_properties(&props), Vec::new()).unwrap();
        let body = vec![7u8; 10_000];
        let mut ours = BytesMut::new();
        write_content(&mut ours, 1, &raw_props, &body, 4096);
        let mut theirs =
            amq_bytes(&AMQPFrame::Header(1, AMQPContentHeader { class_id: 60, body_size: 10_000, properties: props }));
        for part in body.chunks(4096 - 8) {
            theirs.extend(amq_bytes(&AMQPFrame::Body(1, part.to_vec())));
        }
        assert_eq!(&ours[..], &theirs[..]);
    }

    #[test]
    fn decodes_hot_methods_like_amq_protocol_encodes_them() {
        let publish = amq_bytes(&AMQPFrame::Method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: "amq.topic".into(),
                routing_key: "a.b".into(),
                mandatory: true,
                immediate: false,
            })),
        ));
        let payload = Bytes::copy_from_slice(&publish[7..publish.len() - 1]);
        assert_eq!(
            decode_method(&payload),
            Ok(Method::Publish {
                exchange: Bytes::from_static(b"amq.topic"),
                routing_key: Bytes::from_static(b"a.b"),
                mandatory: true,
                immediate: false
            })
        );
        let nack = amq_bytes(&AMQPFrame::Method(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Nack(basic::Nack { delivery_tag: 9, multiple: false, requeue: true })),
        ));
        let payload = Bytes::copy_from_slice(&nack[7..nack.len() - 1]);
        assert_eq!(decode_method(&payload), Ok(Method::Nack { delivery_tag: 9, multiple: false, requeue: true }));
    }

    #[test]
    fn malformed_and_unknown_methods_are_errors_not_panics() {
        // Every truncation of a publish is malformed, never a panic.
        let publish = [0u8, 60, 0, 40, 0, 0, 1, b'x', 1, b'k', 1];
        for cut in 0..publish.len() {
            let p = Bytes::copy_from_slice(&publish[..cut]);
            assert!(decode_method(&p).is_err(), "prefix {cut}");
        }
        let mut trailing = publish.to_vec();
        trailing.push(0);
        assert!(matches!(decode_method(&Bytes::from(trailing)), Err(DecodeError::Malformed { .. })));
        assert_eq!(
            decode_method(&Bytes::from_static(&[0, 99, 0, 1])),
            Err(DecodeError::UnknownMethod { class_id: 99, method_id: 1 })
        );
        // queue.declare cut short
        assert!(matches!(
            decode_method(&Bytes::from_static(&[0, 50, 0, 10, 0, 0, 5, b'a'])),
            Err(DecodeError::Malformed { .. })
        ));
    }
}
