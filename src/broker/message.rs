//! A published message as the core keeps it: one allocation shared (by `Arc`)
//! by every queue it reaches, properties kept as the raw bytes the publisher
//! sent so deliveries copy them back without re-encoding.

use amq_protocol::protocol::basic::{parse_properties, AMQPProperties};
use bytes::Bytes;

use crate::wire::properties::Property;
pub use crate::wire::properties::PropertyScan;
use crate::wire::table::{walk_table, MAX_DECODE_DEPTH};

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
            .get(&properties, Property::Expiration)
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

    /// Decodes the properties into amq-protocol's struct, for tests and
    /// diagnostics. `None` when they do not parse, or when the headers nest
    /// deeper than `MAX_DECODE_DEPTH` (amq-protocol's parser recurses). The
    /// publish, routing, dead-letter and delivery paths never decode: they
    /// read and edit the raw bytes (`crate::wire`).
    pub fn decode_properties(&self) -> Option<AMQPProperties> {
        // Only a list our scan reads exactly as amq-protocol will: it ignores
        // the continuation bit and trailing bytes, and a scan that stopped
        // early never saw the headers it would parse.
        let scan = PropertyScan::new(&self.properties);
        if scan.malformed {
            return None;
        }
        if let Some(headers) = scan.get(&self.properties, Property::Headers) {
            walk_table(headers, MAX_DECODE_DEPTH).ok()?;
        }
        parse_properties(&self.properties[..]).ok().map(|(_, p)| p)
    }
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

    fn raw(p: &AMQPProperties) -> Bytes {
        Bytes::from(cookie_factory::gen_simple(gen_properties(p), Vec::new()).unwrap())
    }

    #[test]
    fn a_message_reads_mode_priority_and_expiration_from_the_scan() {
        let p = AMQPProperties::default().with_delivery_mode(2).with_priority(4).with_expiration("1500".into());
        let m = Message::new(Bytes::new(), Bytes::new(), raw(&p), Bytes::new());
        assert!(m.persistent);
        assert_eq!((m.priority, m.expiration), (4, Some(1500)));
        let m = Message::new(Bytes::new(), Bytes::new(), raw(&AMQPProperties::default()), Bytes::new());
        assert!(!m.persistent);
        assert_eq!((m.priority, m.expiration), (0, None));
        assert_eq!(m.decode_properties(), Some(AMQPProperties::default()));
    }

    #[test]
    fn decode_properties_never_hands_deep_headers_to_amq_protocol() {
        // Found by the fuzzer: with the continuation bit set the scan gave
        // up before the headers, and amq-protocol (which ignores the bit)
        // recursed through all of them.
        let mut props = vec![0x20, 0x01];
        props.extend(crate::wire::table::tests_support::nested_tables(100_000));
        let mut trailing = vec![0x20, 0x00];
        trailing.extend(crate::wire::table::tests_support::nested_tables(100_000));
        trailing.push(0);
        let run = move || {
            for p in [props, trailing] {
                let m = Message::new(Bytes::new(), Bytes::new(), Bytes::from(p), Bytes::new());
                assert_eq!(m.decode_properties(), None);
            }
        };
        std::thread::Builder::new().stack_size(64 * 1024).spawn(run).unwrap().join().unwrap();
    }
}
