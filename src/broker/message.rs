//! A published message as the core keeps it: one allocation shared (by `Arc`)
//! by every queue it reaches, properties kept as the raw bytes the publisher
//! sent so deliveries copy them back without re-encoding.

use amq_protocol::protocol::basic::{parse_properties, AMQPProperties};
use bytes::Bytes;

#[derive(Debug)]
pub struct Message {
    /// Exchange name as published (a short string, kept as wire bytes).
    pub exchange: Bytes,
    pub routing_key: Bytes,
    /// The content header's property flags and list, untouched.
    pub properties: Bytes,
    pub body: Bytes,
    /// delivery_mode 2: written to the log of every durable queue it reaches.
    pub persistent: bool,
    /// The priority property, for priority queues.
    pub priority: u8,
    /// The per-message TTL (the `expiration` property), in milliseconds.
    pub expiration: Option<u64>,
}

impl Message {
    pub fn new(exchange: Bytes, routing_key: Bytes, properties: Bytes, body: Bytes) -> Self {
        let scan = PropertyScan::new(&properties);
        Self::scanned(exchange, routing_key, properties, body, &scan)
    }

    /// As `new`, with the scan of `properties` the publish path already made.
    pub fn scanned(exchange: Bytes, routing_key: Bytes, properties: Bytes, body: Bytes, scan: &PropertyScan) -> Self {
        let expiration = scan
            .expiration
            .clone()
            .and_then(|r| properties.get(r))
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| super::args::parse_expiration(s).ok());
        Message {
            exchange,
            routing_key,
            persistent: scan.delivery_mode == Some(2),
            priority: scan.priority.unwrap_or(0),
            expiration,
            properties,
            body,
        }
    }

    /// Decodes the properties, for the features that need one (headers
    /// routing, TTL, priority, dead-lettering). `None` when the publisher
    /// sent bytes that do not parse.
    pub fn decode_properties(&self) -> Option<AMQPProperties> {
        parse_properties(&self.properties[..]).ok().map(|(_, p)| p)
    }
}

/// Encodes properties to the raw bytes a content header carries, for the
/// few features that rewrite them (BCC, direct reply-to, dead lettering,
/// quorum delivery counts). Encoding into a growable Vec cannot run out of
/// room, so `None` would be a generator bug.
pub fn encode_properties(p: &AMQPProperties) -> Option<Bytes> {
    cookie_factory::gen_simple(amq_protocol::protocol::basic::gen_properties(p), Vec::new()).ok().map(Bytes::from)
}

/// Where the properties a publish needs sit in the raw property bytes,
/// found by skipping over the others: no allocation, no full decode.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PropertyScan {
    pub flags: u16,
    pub delivery_mode: Option<u8>,
    pub priority: Option<u8>,
    pub reply_to: Option<std::ops::Range<usize>>,
    pub expiration: Option<std::ops::Range<usize>>,
}

pub const FLAG_HEADERS: u16 = 1 << 13;
pub const FLAG_REPLY_TO: u16 = 1 << 9;
pub const FLAG_EXPIRATION: u16 = 1 << 8;
pub const FLAG_USER_ID: u16 = 1 << 4;

impl PropertyScan {
    /// Scans as far as `expiration`; malformed bytes end the scan early
    /// (a later full decode reports them, if a feature needs one).
    pub fn new(props: &[u8]) -> Self {
        let mut out = PropertyScan::default();
        let (Some(&a), Some(&b)) = (props.first(), props.get(1)) else { return out };
        out.flags = u16::from_be_bytes([a, b]);
        let flags = out.flags;
        let mut at = 2usize;
        let short = |at: &mut usize| -> Option<std::ops::Range<usize>> {
            let n = *props.get(*at)? as usize;
            let r = *at + 1..*at + 1 + n;
            if r.end > props.len() {
                return None;
            }
            *at = r.end;
            Some(r)
        };
        for bit in (8..=15u16).rev() {
            if flags & (1 << bit) == 0 {
                continue;
            }
            let ok = match bit {
                15 | 14 | 10 => short(&mut at).is_some(),
                13 => match props.get(at..at + 4) {
                    Some(l) => {
                        at += 4 + u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
                        at <= props.len()
                    }
                    None => false,
                },
                12 => {
                    props.get(at).map(|v| out.delivery_mode = Some(*v)).is_some() && {
                        at += 1;
                        true
                    }
                }
                11 => {
                    props.get(at).map(|v| out.priority = Some(*v)).is_some() && {
                        at += 1;
                        true
                    }
                }
                9 => short(&mut at).map(|r| out.reply_to = Some(r)).is_some(),
                8 => short(&mut at).map(|r| out.expiration = Some(r)).is_some(),
                _ => true,
            };
            if !ok {
                break;
            }
        }
        out
    }
}

/// Reads delivery-mode straight from raw property bytes, skipping only the
/// three properties before it: every publish needs this, so no full decode.
pub fn delivery_mode(props: &[u8]) -> Option<u8> {
    let flags = u16::from_be_bytes([*props.first()?, *props.get(1)?]);
    if flags & (1 << 12) == 0 {
        return None;
    }
    let mut at = 2usize;
    for bit in [15u16, 14] {
        if flags & (1 << bit) != 0 {
            at += 1 + *props.get(at)? as usize;
        }
    }
    if flags & (1 << 13) != 0 {
        let len = props.get(at..at + 4)?;
        at += 4 + u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    }
    props.get(at).copied()
}

/// A message's place in one queue.
#[derive(Clone, Debug)]
pub struct QueuedMessage {
    /// Position in the queue, increasing; requeued messages go back to it.
    pub seq: u64,
    pub message: std::sync::Arc<Message>,
    pub redelivered: bool,
    /// Written to the queue's log: its ack must be logged too.
    pub persisted: bool,
    /// When it expires (`clock::now_ms` scale), from the queue's or the
    /// message's TTL, whichever is shorter.
    pub expires_at: Option<u64>,
    /// Times it went back to the queue after a delivery (quorum queues
    /// report it as `x-delivery-count`).
    pub delivery_count: u32,
}

/// A monotonic millisecond clock shared by TTLs and queue expiry.
pub mod clock {
    use std::sync::OnceLock;
    use std::time::Instant;

    static START: OnceLock<Instant> = OnceLock::new();

    pub fn now_ms() -> u64 {
        START.get_or_init(Instant::now).elapsed().as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::protocol::basic::gen_properties;
    use amq_protocol::types::FieldTable;

    fn raw(p: &AMQPProperties) -> Vec<u8> {
        cookie_factory::gen_simple(gen_properties(p), Vec::new()).unwrap()
    }

    #[test]
    fn fast_delivery_mode_agrees_with_a_full_decode() {
        let mut headers = FieldTable::default();
        headers.insert("k".into(), amq_protocol::types::AMQPValue::LongString("v".into()));
        let cases = [
            AMQPProperties::default(),
            AMQPProperties::default().with_delivery_mode(2),
            AMQPProperties::default().with_delivery_mode(1).with_content_type("text/plain".into()),
            AMQPProperties::default()
                .with_content_type("a".into())
                .with_content_encoding("gzip".into())
                .with_headers(headers)
                .with_delivery_mode(2)
                .with_priority(3),
        ];
        for p in cases {
            assert_eq!(delivery_mode(&raw(&p)), *p.delivery_mode(), "{p:?}");
        }
        assert_eq!(delivery_mode(&[0x10]), None);
        assert_eq!(delivery_mode(&[0x30, 0, 0, 0, 0, 9]), None);
    }
}
