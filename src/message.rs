//! A published message as the core keeps it: one allocation shared (by `Arc`)
//! by every queue it reaches, properties kept as the raw bytes the publisher
//! sent so deliveries copy them back without re-encoding.
//!
//! A leaf shared by `broker/` (queues, routing, dead lettering) and `store/`
//! (queue logs, page files): it imports only `wire/`, `ids`, `clock` and
//! external crates, never `broker/`, `protocol/` or `store/`.

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
            .and_then(|s| parse_expiration(s).ok());
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
    /// When it expires (`Clock::millis` scale), from the queue's or the
    /// message's TTL, whichever is shorter.
    pub expires_at: Option<u64>,
    /// Times it went back to the queue after a delivery (quorum queues
    /// report it as `x-delivery-count`).
    pub delivery_count: u32,
}

/// RabbitMQ's largest TTL: 2^32 - 1 ms (its timer limit).
pub const MAX_TTL: u64 = 4_294_967_295;

/// Why an `expiration` property is not a TTL. Displayed as RabbitMQ words
/// it, after "invalid expiration 'VALUE': ".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpirationError {
    NoInteger,
    /// Bytes after the digits (`"1.5"` leaves `".5"`).
    Leftover(String),
    Negative(i128),
    TooLarge(i128),
}

impl std::fmt::Display for ExpirationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpirationError::NoInteger => f.write_str("no_integer"),
            ExpirationError::Leftover(rest) => write!(f, "{{leftover_string,\"{rest}\"}}"),
            ExpirationError::Negative(n) => write!(f, "{{value_negative,{n}}}"),
            ExpirationError::TooLarge(n) => write!(f, "{{value_too_large,{n}}}"),
        }
    }
}

/// The `expiration` property as RabbitMQ reads it: a decimal integer of
/// milliseconds (Erlang's `string:to_integer`: an optional sign, digits,
/// nothing after), from 0 to [`MAX_TTL`].
pub fn parse_expiration(s: &str) -> Result<u64, ExpirationError> {
    let digits_end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    let (number, rest) = s.split_at(digits_end);
    let n: i128 = number.parse().map_err(|_| ExpirationError::NoInteger)?;
    if !rest.is_empty() {
        return Err(ExpirationError::Leftover(rest.to_owned()));
    }
    if n < 0 {
        return Err(ExpirationError::Negative(n));
    }
    if n > MAX_TTL as i128 {
        return Err(ExpirationError::TooLarge(n));
    }
    Ok(n as u64)
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
    fn expiration_is_a_bounded_decimal_integer() {
        assert_eq!(parse_expiration("1500"), Ok(1500));
        assert_eq!(parse_expiration("+7"), Ok(7));
        assert_eq!(parse_expiration("4294967295"), Ok(MAX_TTL));
        assert_eq!(parse_expiration(""), Err(ExpirationError::NoInteger));
        assert_eq!(parse_expiration("abc"), Err(ExpirationError::NoInteger));
        assert_eq!(parse_expiration("1.5"), Err(ExpirationError::Leftover(".5".into())));
        assert_eq!(parse_expiration("-1"), Err(ExpirationError::Negative(-1)));
        assert_eq!(parse_expiration("4294967296"), Err(ExpirationError::TooLarge(4294967296)));
        assert_eq!(ExpirationError::Leftover(".5".into()).to_string(), "{leftover_string,\".5\"}");
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
