//! The publish rules that sit in the wire front end for now: routing
//! (with CC/BCC's extra keys), validated user_id, direct reply-to and
//! mandatory returns. Kept together, bodies as they were, because they move
//! into `broker::Vhost::publish` next.

use std::sync::Arc;

use bytes::Bytes;

use super::codec;
use super::connection::Session;
use super::errors::utf8;
use crate::broker::consumer::OutboxItem;
use crate::broker::message::Message;
use crate::broker::queue::{DeadLetters, Enqueued};
use crate::broker::vhost::{Routed, Vhost};
use crate::broker::{AmqpError, AmqpResult, ReplyCode, REPLY_TO};
use crate::store::TicketRange;
use crate::wire::properties::{self, Property, PropertyScan};
use crate::wire::table::{self, Edit};

impl Session {
    /// RabbitMQ's validated user_id: a publish may only claim the user it
    /// logged in as. Read from the scan: no decode, headers untouched.
    pub(super) fn check_user_id(&self, properties: &[u8], scan: &PropertyScan) -> AmqpResult<()> {
        match scan.get(properties, Property::UserId) {
            Some(u) if u != self.user.as_bytes() => Err(AmqpError::precondition_failed(format!(
                "user_id property set to '{}' but authenticated user was '{}'",
                String::from_utf8_lossy(u),
                self.user
            ))),
            _ => Ok(()),
        }
    }

    pub(super) fn route_and_enqueue(
        &mut self,
        vhost: &Vhost,
        exchange: &Arc<crate::broker::exchange::Exchange>,
        message: Arc<Message>,
        extra_keys: &[String],
        mandatory: bool,
        channel: u16,
    ) -> AmqpResult<Published> {
        let routing_key = utf8(&message.routing_key).map_err(|e| e.during(60, 40))?;
        if exchange.name.is_empty() && routing_key.starts_with(REPLY_TO) {
            if let Some(t) = self.broker.reply_target(routing_key) {
                let reply = OutboxItem::DirectReply { channel: t.channel, consumer_tag: t.consumer_tag, message };
                t.outbox.push(reply);
                return Ok(Published::default());
            }
        }
        let mut routed = Routed::new();
        vhost.route(exchange, &message, routing_key, &mut routed);
        for k in extra_keys {
            vhost.route(exchange, &message, k, &mut routed);
        }
        if routed.is_empty() {
            if mandatory {
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
            return Ok(Published::default());
        }
        let mut out = Published::default();
        for q in routed {
            let mut dead = DeadLetters::default();
            match q.enqueue(Arc::clone(&message), Some(&self.outbox), &mut dead) {
                Enqueued::Accepted(Some(t)) => out.tickets.add(t),
                Enqueued::Rejected => out.rejected = true,
                Enqueued::Accepted(None) | Enqueued::Gone => {}
            }
            if !dead.is_empty() {
                vhost.dead_letter(&q, dead);
            }
        }
        Ok(out)
    }
}

/// The properties with reply_to replaced, every other byte kept.
pub(super) fn with_reply_to(props: &Bytes, scan: &PropertyScan, reply_to: &str) -> AmqpResult<Bytes> {
    let broken = || AmqpError::new(ReplyCode::InternalError, "cannot rewrite reply_to");
    let value = properties::short_string(reply_to.as_bytes()).ok_or_else(broken)?;
    properties::rewrite(props, scan, &[(Property::ReplyTo, Some(&value))]).map(Bytes::from).ok_or_else(broken)
}

/// What became of one publish, for its confirm.
#[derive(Default)]
pub(super) struct Published {
    /// The store writes the confirm waits for (one per durable queue reached).
    pub tickets: TicketRange,
    /// A queue refused it (`x-overflow: reject-publish`): the confirm is a nack.
    pub rejected: bool,
}

/// Sender-selected distribution: the CC and BCC headers' keys (the long
/// strings of the first header of each name, as RabbitMQ's `header_routes`
/// reads them), and, if there was a BCC, the properties without it that
/// every consumer will see. Read and rewritten raw, one level deep: the
/// other headers keep their bytes at any depth. `headers` is well formed.
pub(super) fn sender_selected(props: &Bytes, scan: &PropertyScan) -> AmqpResult<(Option<Bytes>, Vec<String>)> {
    let Some(headers) = scan.headers(props) else { return Ok((None, Vec::new())) };
    let mut keys = Vec::new();
    let mut bcc = false;
    for name in ["CC", "BCC"] {
        let Some(e) = table::find(headers, name.as_bytes()) else { continue };
        bcc |= name == "BCC";
        let Some(items) = table::array_value(e.tag, e.value) else {
            return Err(AmqpError::precondition_failed(format!(
                "invalid message: {{unacceptable_type_in_header,\"{name}\",{}}}",
                table::type_name(e.tag)
            )));
        };
        keys.extend(
            table::items(items)
                .map_while(Result::ok)
                .filter_map(|i| table::long_string(i.tag, i.value))
                .map(|k| String::from_utf8_lossy(k).into_owned()),
        );
    }
    if !bcc {
        return Ok((None, keys));
    }
    // Every BCC goes, not only the first RabbitMQ strips: the header exists
    // so that no consumer learns who else got the message.
    let raw = properties::edit_headers(props, scan, &[Edit::Remove(b"BCC")], &[])
        .ok_or_else(|| AmqpError::new(ReplyCode::InternalError, "cannot rewrite headers"))?;
    Ok((Some(Bytes::from(raw)), keys))
}
