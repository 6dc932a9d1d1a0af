//! The wire side of a publish: hand the accepted message to
//! `broker::Vhost::enqueue_accepted` (which holds the rules: routing, CC/BCC,
//! direct reply-to, alternate exchanges, overflow) and write what the
//! broker's answer needs on this connection, the mandatory basic.return.

use std::sync::Arc;

use super::codec;
use super::connection::Session;
use crate::broker::publish::{Accepted, Published, Sink};
use crate::broker::vhost::Vhost;
use crate::broker::{AmqpResult, ReplyCode};

impl Session {
    /// Routes an accepted publish and writes basic.return for a mandatory
    /// message that reached no queue.
    #[inline]
    pub(super) fn route_and_enqueue(
        &mut self,
        vhost: &Vhost,
        accepted: Accepted,
        channel: u16,
    ) -> AmqpResult<Published> {
        // The exchange's counters are added once per batch (or when the
        // exchange changes): no shared cache line written per message.
        if !self.exchange_counts.as_ref().is_some_and(|(x, _, _)| Arc::ptr_eq(x, &accepted.exchange)) {
            self.flush_exchange_counts();
            self.exchange_counts = Some((Arc::clone(&accepted.exchange), 0, 0));
        }
        let sink = Sink { replies: self.broker.reply_targets(), waker: Some(&self.outbox) };
        let out = vhost.enqueue_accepted(accepted, &sink)?;
        if let Some((_, publish_in, publish_out)) = self.exchange_counts.as_mut() {
            *publish_in += 1;
            *publish_out += !out.queues.is_empty() as u64;
        }
        self.counts.received += 1;
        if !out.is_unroutable() {
            self.counts.routed += 1;
        } else if out.returned.is_some() {
            self.counts.unroutable_returned += 1;
        } else {
            self.counts.unroutable_dropped += 1;
        }
        if let Some(message) = &out.returned {
            codec::write_return(
                &mut self.wbuf,
                channel,
                ReplyCode::NoRoute as u16,
                "NO_ROUTE",
                &message.exchange,
                &message.routing_key,
            );
            codec::write_content(&mut self.wbuf, channel, &message.properties, &message.body, self.frame_max);
        }
        Ok(out)
    }

    /// Adds the publishes counted for one exchange to its counters.
    pub(super) fn flush_exchange_counts(&mut self) {
        if let Some((x, publish_in, publish_out)) = self.exchange_counts.take() {
            x.add_publishes(publish_in, publish_out);
        }
    }
}
