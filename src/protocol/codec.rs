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
use crate::wire::table::{self, TableError, MAX_DECODE_DEPTH};

pub(crate) use crate::wire::frame::CLASS_BASIC;
use crate::wire::frame::{
    METHOD_BASIC_ACK, METHOD_BASIC_DELIVER, METHOD_BASIC_GET_OK, METHOD_BASIC_NACK, METHOD_BASIC_PUBLISH,
    METHOD_BASIC_QOS, METHOD_BASIC_REJECT, METHOD_BASIC_RETURN,
};

/// A decoded method frame. The hot methods keep their fields as slices of the
/// frame payload; the rest are amq-protocol's structs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Method {
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
    /// connection.start-ok, decoded here so that client-properties stay raw
    /// bytes: amq-protocol's table parser recurses, and this frame arrives
    /// before authentication. RabbitMQ accepts properties nested as deep as
    /// 4096 octets allow; the handshake reads the capabilities one level at
    /// a time and never decodes the rest.
    StartOk(StartOk),
    Other(AMQPClass),
}

/// The fields of connection.start-ok, as wire bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StartOk {
    /// The client-properties table, length prefix included; well formed
    /// (checked at any depth, iteratively).
    pub client_properties: Bytes,
    pub mechanism: Bytes,
    pub response: Bytes,
    pub locale: Bytes,
}

/// Why a method frame could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// A class/method pair this protocol version does not define: RabbitMQ
    /// answers 540 NOT_IMPLEMENTED... for known-but-unsupported methods and
    /// closes with 503 COMMAND_INVALID for unknown ones.
    #[error("unknown method {class_id}/{method_id}")]
    UnknownMethod { class_id: u16, method_id: u16 },
    /// Truncated or malformed arguments: 502 SYNTAX_ERROR.
    #[error("malformed arguments for method {class_id}/{method_id}")]
    Malformed { class_id: u16, method_id: u16 },
    /// Well-formed arguments whose field table nests deeper than
    /// [`MAX_DECODE_DEPTH`], which we will not decode. `key` is the
    /// top-level entry that holds the deep value (lossy UTF-8).
    #[error(
        "field table argument '{key}' of method {class_id}/{method_id} nested deeper than {MAX_DECODE_DEPTH} levels"
    )]
    TooDeep { class_id: u16, method_id: u16, key: String },
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
    fn long_str(&mut self) -> Option<Bytes> {
        let len = self.u32()? as usize;
        let end = self.pos.checked_add(len).filter(|&e| e <= self.payload.len())?;
        let s = self.payload.slice(self.pos..end);
        self.pos = end;
        Some(s)
    }
    /// A field table, length prefix included, checked at any depth.
    fn table(&mut self) -> Option<Bytes> {
        let walk = table::walk_table(self.payload.get(self.pos..)?, usize::MAX).ok()?;
        let t = self.payload.slice(self.pos..self.pos + walk.len);
        self.pos += walk.len;
        Some(t)
    }
    fn done(&self) -> bool {
        self.pos == self.payload.len()
    }
}

/// Decodes one method frame payload.
pub(crate) fn decode_method(payload: &Bytes) -> Result<Method, DecodeError> {
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
    if (class_id, method_id) == (10, 11) {
        let start_ok = (|| {
            let client_properties = r.table()?;
            let mechanism = r.short_str()?;
            let response = r.long_str()?;
            let locale = r.short_str()?;
            Some(StartOk { client_properties, mechanism, response, locale })
        })();
        return match start_ok {
            Some(ok) if r.done() => Ok(Method::StartOk(ok)),
            _ => Err(malformed),
        };
    }
    if !is_known_method(class_id, method_id) {
        return Err(DecodeError::UnknownMethod { class_id, method_id });
    }
    check_table_depth(class_id, method_id, &payload[4..])?;
    match amq_protocol::protocol::parse_class(&payload[..]) {
        Ok(([], class)) => Ok(Method::Other(class)),
        _ => Err(malformed),
    }
}

/// A method argument's wire type, as far as finding its field tables needs.
#[derive(Clone, Copy)]
enum Field {
    Octet,
    Short,
    /// One octet of packed bits.
    Bits,
    ShortStr,
    LongStr,
    Table,
}

/// The arguments of the methods that carry a field table (AMQP 0-9-1 and
/// RabbitMQ's extensions define no others).
fn table_layout(class_id: u16, method_id: u16) -> Option<&'static [Field]> {
    use Field::*;
    Some(match (class_id, method_id) {
        // connection.start: version-major, version-minor, server-properties, mechanisms, locales
        (10, 10) => &[Octet, Octet, Table, LongStr, LongStr],
        // connection.start-ok (decoded by hand, listed for completeness)
        (10, 11) => &[Table, ShortStr, LongStr, ShortStr],
        // exchange.declare: ticket, exchange, type, bits, arguments
        (40, 10) => &[Short, ShortStr, ShortStr, Bits, Table],
        // exchange.bind / unbind: ticket, destination, source, routing-key, no-wait, arguments
        (40, 30) | (40, 40) => &[Short, ShortStr, ShortStr, ShortStr, Bits, Table],
        // queue.declare: ticket, queue, bits, arguments
        (50, 10) => &[Short, ShortStr, Bits, Table],
        // queue.bind: ticket, queue, exchange, routing-key, no-wait, arguments
        (50, 20) => &[Short, ShortStr, ShortStr, ShortStr, Bits, Table],
        // queue.unbind: ticket, queue, exchange, routing-key, arguments
        (50, 50) => &[Short, ShortStr, ShortStr, ShortStr, Table],
        // basic.consume: ticket, queue, consumer-tag, bits, arguments
        (60, 20) => &[Short, ShortStr, ShortStr, Bits, Table],
        _ => return None,
    })
}

/// Checks, before amq-protocol's recursive parser sees them, that the
/// method's field tables are well formed and nest at most
/// [`MAX_DECODE_DEPTH`] levels. A table our walker refuses is never handed
/// on: amq-protocol takes tags RabbitMQ does not (`U`), and whatever follows
/// one could nest without bound. Truncated arguments are left for the
/// parser to report.
fn check_table_depth(class_id: u16, method_id: u16, args: &[u8]) -> Result<(), DecodeError> {
    let Some(layout) = table_layout(class_id, method_id) else { return Ok(()) };
    let malformed = DecodeError::Malformed { class_id, method_id };
    let mut at = 0usize;
    for field in layout {
        let rest = args.get(at..).unwrap_or_default();
        at += match field {
            Field::Octet | Field::Bits => 1,
            Field::Short => 2,
            Field::ShortStr => 1 + *rest.first().unwrap_or(&0) as usize,
            Field::LongStr => match rest.get(..4) {
                Some(l) => 4 + u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize,
                None => return Ok(()),
            },
            Field::Table => match table::walk_table(rest, MAX_DECODE_DEPTH) {
                Ok(w) => w.len,
                Err(TableError::TooDeep { at: deep }) => {
                    let key = deep_key(rest, deep);
                    return Err(DecodeError::TooDeep { class_id, method_id, key });
                }
                Err(TableError::Incomplete) => return Ok(()),
                Err(TableError::Malformed { .. }) => return Err(malformed),
            },
        };
        if at > args.len() {
            return Ok(());
        }
    }
    Ok(())
}

/// The key of the top-level entry of `table` (length prefix included) that
/// contains offset `at`.
fn deep_key(table: &[u8], at: usize) -> String {
    let Ok(body) = table::table_body(table) else { return String::new() };
    let mut start = 4;
    for entry in table::entries(body).map_while(Result::ok) {
        if at < start + entry.raw.len() {
            return String::from_utf8_lossy(entry.key).into_owned();
        }
        start += entry.raw.len();
    }
    String::new()
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
pub(crate) struct ContentHeader {
    pub class_id: u16,
    pub body_size: u64,
    pub properties: Bytes,
}

/// Decodes a content header frame payload without parsing the properties.
pub(crate) fn decode_content_header(payload: &Bytes) -> Option<ContentHeader> {
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

pub(crate) fn write_deliver(
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
pub(crate) fn write_get_ok(
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

pub(crate) fn write_return(
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
pub(crate) fn write_confirm(buf: &mut BytesMut, channel: u16, delivery_tag: u64, multiple: bool, nack: bool) {
    let at = begin_frame(buf, FRAME_METHOD, channel);
    buf.put_u16(CLASS_BASIC);
    buf.put_u16(if nack { METHOD_BASIC_NACK } else { METHOD_BASIC_ACK });
    buf.put_u64(delivery_tag);
    buf.put_u8(multiple as u8);
    end_frame(buf, at);
}

/// Writes the content header and as many body frames as `frame_max` requires.
pub(crate) fn write_content(buf: &mut BytesMut, channel: u16, properties: &[u8], body: &[u8], frame_max: u32) {
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

pub(crate) fn write_heartbeat(buf: &mut BytesMut) {
    buf.put_slice(&[8, 0, 0, 0, 0, 0, 0, FRAME_END]);
}

/// Encodes a control method with amq-protocol. Encoding into a growable `Vec`
/// cannot run out of room, so the only failure left would be a bug in the
/// generator; it is logged and the frame dropped rather than panicking.
pub(crate) fn write_method(buf: &mut BytesMut, channel: u16, method: AMQPClass) {
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

    /// queue.declare of `q` with `arguments` (a raw table).
    fn queue_declare(arguments: &[u8]) -> Bytes {
        let mut p = vec![0, 50, 0, 10, 0, 0, 1, b'q', 0];
        p.extend_from_slice(arguments);
        Bytes::from(p)
    }

    /// A table `{key: {"a": {"a": ...}}}` whose value nests `depth` tables.
    fn deep_arguments(key: &[u8], depth: usize) -> Vec<u8> {
        let inner = crate::wire::table::tests_support::nested_tables(depth);
        let mut body = vec![3, b'x', b'-', b'a'];
        body.extend_from_slice(b"t\x01");
        body.push(key.len() as u8);
        body.extend_from_slice(key);
        body.push(b'F');
        body.extend(inner);
        let mut t = (body.len() as u32).to_be_bytes().to_vec();
        t.extend(body);
        t
    }

    #[test]
    fn method_tables_are_bounded_before_amq_protocol_sees_them() {
        // Arguments table (1) + the value's tables: at the limit it decodes.
        let ok = queue_declare(&deep_arguments(b"x-deep", table::MAX_DECODE_DEPTH - 1));
        assert!(matches!(decode_method(&ok), Ok(Method::Other(AMQPClass::Queue(_)))));
        let deep = queue_declare(&deep_arguments(b"x-deep", table::MAX_DECODE_DEPTH));
        assert_eq!(
            decode_method(&deep),
            Err(DecodeError::TooDeep { class_id: 50, method_id: 10, key: "x-deep".into() })
        );
        // 100,000 deep fails fast on a small stack: amq-protocol never runs.
        let huge = queue_declare(&deep_arguments(b"k", 100_000));
        let err = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || decode_method(&huge))
            .unwrap()
            .join()
            .unwrap();
        assert!(matches!(err, Err(DecodeError::TooDeep { key, .. }) if key == "k"));
        // A tag RabbitMQ does not know is malformed, even where amq-protocol would take it.
        let mut u = vec![0, 0, 0, 5, 1, b'k', b'U', 0, 1];
        u[3] = 5;
        assert_eq!(decode_method(&queue_declare(&u)), Err(DecodeError::Malformed { class_id: 50, method_id: 10 }));
        // basic.consume and exchange.bind find their table after the other fields.
        let mut consume = vec![0, 60, 0, 20, 0, 0, 1, b'q', 1, b't', 0];
        consume.extend(deep_arguments(b"x-c", 100));
        assert!(matches!(decode_method(&Bytes::from(consume)), Err(DecodeError::TooDeep { method_id: 20, .. })));
        let mut bind = vec![0, 40, 0, 30, 0, 0, 1, b'd', 1, b's', 0, 0];
        bind.extend(deep_arguments(b"x-b", 100));
        assert!(matches!(decode_method(&Bytes::from(bind)), Err(DecodeError::TooDeep { method_id: 30, .. })));
    }

    #[test]
    fn start_ok_keeps_client_properties_raw() {
        let props = deep_arguments(b"deep", 500);
        let mut p = vec![0, 10, 0, 11];
        p.extend_from_slice(&props);
        p.extend_from_slice(b"\x05PLAIN");
        p.extend_from_slice(&[0, 0, 0, 12]);
        p.extend_from_slice(b"\0guest\0guest");
        p.extend_from_slice(b"\x05en_US");
        let payload = Bytes::from(p);
        let run = {
            let payload = payload.clone();
            move || decode_method(&payload)
        };
        let got = std::thread::Builder::new().stack_size(64 * 1024).spawn(run).unwrap().join().unwrap();
        let Ok(Method::StartOk(ok)) = got else { panic!("{got:?}") };
        assert_eq!(&ok.client_properties[..], &props[..]);
        assert_eq!(
            (&ok.mechanism[..], &ok.response[..], &ok.locale[..]),
            (&b"PLAIN"[..], &b"\0guest\0guest"[..], &b"en_US"[..])
        );
        for cut in 4..payload.len() {
            assert!(
                matches!(
                    decode_method(&payload.slice(..cut)),
                    Err(DecodeError::Malformed { class_id: 10, method_id: 11 })
                ),
                "prefix {cut}"
            );
        }
        let mut trailing = payload.to_vec();
        trailing.push(0);
        assert!(decode_method(&Bytes::from(trailing)).is_err());
    }
}
