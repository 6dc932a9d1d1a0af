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
}

impl Message {
    /// Decodes the properties, for the features that need one (headers
    /// routing, later TTL, priority, dead-lettering). `None` when the
    /// publisher sent bytes that do not parse.
    pub fn decode_properties(&self) -> Option<AMQPProperties> {
        parse_properties(&self.properties[..]).ok().map(|(_, p)| p)
    }

    pub fn is_persistent(&self) -> bool {
        // delivery-mode is the 4th property (flag bit 12); walk only as far as needed.
        self.decode_properties().and_then(|p| p.delivery_mode().as_ref().copied()) == Some(2)
    }
}

/// A message's place in one queue.
#[derive(Clone, Debug)]
pub struct QueuedMessage {
    /// Position in the queue, increasing; requeued messages go back to it.
    pub seq: u64,
    pub message: std::sync::Arc<Message>,
    pub redelivered: bool,
}
