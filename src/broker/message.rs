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
}

impl Message {
    pub fn new(exchange: Bytes, routing_key: Bytes, properties: Bytes, body: Bytes) -> Self {
        let persistent = delivery_mode(&properties) == Some(2);
        Message { exchange, routing_key, properties, body, persistent }
    }

    /// Decodes the properties, for the features that need one (headers
    /// routing, TTL, priority, dead-lettering). `None` when the publisher
    /// sent bytes that do not parse.
    pub fn decode_properties(&self) -> Option<AMQPProperties> {
        parse_properties(&self.properties[..]).ok().map(|(_, p)| p)
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
