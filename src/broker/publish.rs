//! basic.publish's rules, as RabbitMQ applies them, once a message's content
//! is complete: write permission, the property list checked whole, the
//! expiration, sender-selected distribution (CC/BCC, BCC stripped), direct
//! reply-to (the caller's address rewritten; replies delivered straight to
//! the waiting consumer), the validated user_id, internal exchanges, topic
//! permission; then routing (alternate exchanges, exchange-to-exchange
//! bindings), enqueueing (with what overflow and TTL push out dead-lettered)
//! and, for a mandatory message that reached no queue, its return.
//!
//! Two steps, because a transaction checks at publish time and routes at
//! commit: [`Vhost::accept_publish`] checks and builds the one
//! `Arc<Message>`; [`Vhost::enqueue_accepted`] routes and enqueues it.
//! [`Vhost::publish`] does both. Nothing here decodes a property table: the
//! raw bytes are read and edited through `crate::wire`.

use std::sync::Arc;

use bytes::Bytes;

use super::args::parse_expiration;
use super::consumer::{Outbox, OutboxItem};
use super::error::{AmqpError, AmqpResult, ReplyCode};
use super::exchange::Exchange;
use super::permissions::Access;
use super::queue::{DeadLetters, Enqueued};
use super::vhost::{Routed, Vhost};
use super::{ReplyTargets, REPLY_TO};
use crate::message::Message;
use crate::store::TicketRange;
use crate::wire::properties::{self, Property, PropertyScan, FLAG_HEADERS};
use crate::wire::table::{self, Edit};

/// basic.publish with its content, as the channel assembled it.
pub struct Publish<'a> {
    pub exchange: Bytes,
    pub routing_key: Bytes,
    /// The content header's property list, as received.
    pub properties: Bytes,
    pub body: Bytes,
    pub mandatory: bool,
    pub immediate: bool,
    /// The user the connection logged in as: a user_id must name it.
    pub user: &'a str,
    /// The connection's permissions (write on the exchange, topic write).
    pub access: &'a mut Access,
    /// The key of the publishing channel's direct reply-to consumer, if it
    /// has one: a reply_to of `amq.rabbitmq.reply-to` becomes its address.
    pub reply_key: Option<&'a str>,
}

/// A publish that passed every check: what to route, now or at tx.commit.
#[derive(Debug)]
pub struct Accepted {
    pub exchange: Arc<Exchange>,
    pub message: Arc<Message>,
    /// Routing keys from the CC and BCC headers, routed besides the
    /// message's own.
    pub extra_keys: Vec<String>,
    pub mandatory: bool,
}

/// Where a publish's side effects go beyond the queues.
pub struct Sink<'a> {
    /// Direct reply-to consumers (a publish to `amq.rabbitmq.reply-to.<key>`).
    pub replies: &'a ReplyTargets,
    /// Woken when the persistent message is on disk (the publisher's
    /// outbox, so its confirm goes out).
    pub waker: Option<&'a Arc<Outbox>>,
}

/// What became of one publish.
#[derive(Debug, Default)]
pub struct Published {
    /// The queues it was routed to (each once); empty when it was
    /// unroutable or went to a direct reply-to consumer.
    pub queues: Routed,
    /// The store writes a confirm (or a tx.commit-ok) must wait for: one
    /// per durable queue that logged it.
    pub tickets: TicketRange,
    /// A queue refused it (`x-overflow: reject-publish`): a confirm is a nack.
    pub rejected: bool,
    /// Mandatory and routed nowhere: the publisher gets it back
    /// (basic.return 312 NO_ROUTE).
    pub returned: Option<Arc<Message>>,
    /// It went straight to a direct reply-to consumer.
    pub direct_reply: bool,
}

impl Published {
    /// Routed to no queue (and not a direct reply).
    pub fn is_unroutable(&self) -> bool {
        self.queues.is_empty() && !self.direct_reply
    }
}

/// A wire short string as UTF-8, or the 502 RabbitMQ would not send but that
/// keeps us from routing on bytes we cannot name.
fn utf8(b: &[u8]) -> AmqpResult<&str> {
    std::str::from_utf8(b).map_err(|_| AmqpError::new(ReplyCode::SyntaxError, "short string is not valid UTF-8"))
}

/// The error as raised by basic.publish (class 60, method 40).
fn during_publish(e: AmqpError) -> AmqpError {
    e.during(60, 40)
}

impl Vhost {
    /// Checks and routes one publish (see the module doc).
    pub fn publish(&self, p: Publish<'_>, sink: &Sink<'_>) -> AmqpResult<Published> {
        let accepted = self.accept_publish(p)?;
        let exchange = Arc::clone(&accepted.exchange);
        let out = self.enqueue_accepted(accepted, sink)?;
        exchange.add_publishes(1, !out.queues.is_empty() as u64);
        Ok(out)
    }

    /// Every check basic.publish makes before routing, in RabbitMQ's order,
    /// and the message as consumers will see it.
    // Inlined into the connection's one hot call site, so the `Publish` and
    // `Accepted` structs are built in place instead of copied (callgrind:
    // the split into accept/enqueue cost ~180 instructions a publish).
    #[inline]
    pub fn accept_publish(&self, p: Publish<'_>) -> AmqpResult<Accepted> {
        if p.immediate {
            return Err(during_publish(AmqpError::not_implemented("immediate=true")));
        }
        p.access.basic_publish(&p.exchange).map_err(during_publish)?;
        // Every byte of the property list is checked (the headers at any
        // depth, iteratively), as RabbitMQ decodes it: consumers never see
        // a list they cannot parse.
        let mut properties = p.properties;
        let mut scan = PropertyScan::new(&properties);
        if scan.check(&properties).is_err() {
            return Err(undecodable_properties());
        }
        if let Some(exp) = scan.get(&properties, Property::Expiration) {
            parse_expiration(&String::from_utf8_lossy(exp)).map_err(during_publish)?;
        }
        // CC and BCC add routing keys; BCC must not reach any consumer.
        let (rewritten, extra_keys) = if scan.flags & FLAG_HEADERS != 0 {
            sender_selected(&properties, &scan).map_err(during_publish)?
        } else {
            (None, Vec::new())
        };
        if let Some(rewritten) = rewritten {
            // Offsets from the scan hold only for the bytes it scanned.
            properties = rewritten;
            scan = PropertyScan::new(&properties);
        }
        if scan.get(&properties, Property::ReplyTo) == Some(REPLY_TO.as_bytes()) {
            // Direct reply-to: the caller's address becomes its own consumer's.
            let Some(key) = p.reply_key else {
                return Err(during_publish(AmqpError::precondition_failed("fast reply consumer does not exist")));
            };
            properties = with_reply_to(&properties, &scan, &format!("{REPLY_TO}.{key}")).map_err(during_publish)?;
            scan = PropertyScan::new(&properties);
        }
        check_user_id(&properties, &scan, p.user).map_err(during_publish)?;
        let message = Arc::new(Message::scanned(p.exchange, p.routing_key, properties, p.body, &scan));
        let exchange_name = utf8(&message.exchange).map_err(during_publish)?;
        let exchange = self.exchange(exchange_name).map_err(during_publish)?;
        if exchange.internal {
            return Err(during_publish(AmqpError::access_refused(format!(
                "cannot publish to internal exchange '{}' in vhost '{}'",
                exchange_name, self.name
            ))));
        }
        p.access.basic_publish_topic(&exchange, &message.routing_key).map_err(during_publish)?;
        Ok(Accepted { exchange, message, extra_keys, mandatory: p.mandatory })
    }

    /// Routes an accepted message and offers it to every queue it reaches;
    /// what those queues push out (overflow, TTL) is dead-lettered here.
    #[inline]
    /// The caller counts the publish on the exchange (`Exchange::add_publishes`;
    /// a connection does once per batch).
    pub fn enqueue_accepted(&self, a: Accepted, sink: &Sink<'_>) -> AmqpResult<Published> {
        let Accepted { exchange, message, extra_keys, mandatory } = a;
        let routing_key = utf8(&message.routing_key).map_err(during_publish)?;
        if exchange.name.is_empty() && routing_key.starts_with(REPLY_TO) {
            if let Some(t) = sink.replies.get(routing_key) {
                let reply = OutboxItem::DirectReply { channel: t.channel, consumer_tag: t.consumer_tag, message };
                t.outbox.push(reply);
                return Ok(Published { direct_reply: true, ..Published::default() });
            }
        }
        let mut out = Published::default();
        self.route(&exchange, &message, routing_key, &mut out.queues);
        for k in &extra_keys {
            self.route(&exchange, &message, k, &mut out.queues);
        }
        if out.queues.is_empty() {
            if mandatory {
                out.returned = Some(message);
            }
            return Ok(out);
        }
        for q in &out.queues {
            let mut dead = DeadLetters::default();
            match q.enqueue(Arc::clone(&message), sink.waker, &mut dead) {
                Enqueued::Accepted(Some(t)) => out.tickets.add(t.get()),
                Enqueued::Rejected => out.rejected = true,
                Enqueued::Accepted(None) | Enqueued::Gone => {}
            }
            if !dead.is_empty() {
                self.dead_letter(q, dead);
            }
        }
        Ok(out)
    }
}

/// RabbitMQ's validated user_id: a publish may only claim the user it
/// logged in as. Read from the scan: no decode, headers untouched.
fn check_user_id(properties: &[u8], scan: &PropertyScan, user: &str) -> AmqpResult<()> {
    match scan.get(properties, Property::UserId) {
        Some(u) if u != user.as_bytes() => Err(AmqpError::precondition_failed(format!(
            "user_id property set to '{}' but authenticated user was '{}'",
            String::from_utf8_lossy(u),
            user
        ))),
        _ => Ok(()),
    }
}

/// The properties with reply_to replaced, every other byte kept.
fn with_reply_to(props: &Bytes, scan: &PropertyScan, reply_to: &str) -> AmqpResult<Bytes> {
    let broken = || AmqpError::new(ReplyCode::InternalError, "cannot rewrite reply_to");
    let value = properties::short_string(reply_to.as_bytes()).ok_or_else(broken)?;
    properties::rewrite(props, scan, &[(Property::ReplyTo, Some(&value))]).map(Bytes::from).ok_or_else(broken)
}

/// RabbitMQ's answer to a publish whose properties it cannot decode: its
/// channel process fails, and the connection closes with a bare
/// `INTERNAL_ERROR` (no detail, class and method 0).
fn undecodable_properties() -> AmqpError {
    let mut e = AmqpError::new(ReplyCode::InternalError, "");
    e.text = ReplyCode::InternalError.name().to_owned();
    e
}

/// Sender-selected distribution: the CC and BCC headers' keys (the long
/// strings of the first header of each name, as RabbitMQ's `header_routes`
/// reads them), and, if there was a BCC, the properties without it that
/// every consumer will see. Read and rewritten raw, one level deep: the
/// other headers keep their bytes at any depth. `headers` is well formed.
fn sender_selected(props: &Bytes, scan: &PropertyScan) -> AmqpResult<(Option<Bytes>, Vec<String>)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::permissions::Permissions;
    use crate::broker::vhost::ExchangeDeclare;
    use crate::broker::{ReplyTarget, ReplyTargets};
    use crate::ids::ChannelId;
    use crate::ids::ConnectionId;
    use crate::store::definitions::PermissionDef;
    use amq_protocol::protocol::basic::{gen_properties, AMQPProperties};
    use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, ShortString};

    fn raw(p: &AMQPProperties) -> Bytes {
        Bytes::from(cookie_factory::gen_simple(gen_properties(p), Vec::new()).unwrap())
    }

    fn access() -> Access {
        let perms = Arc::new(Permissions::default());
        perms.set(PermissionDef {
            user: "guest".into(),
            vhost: "/".into(),
            configure: ".*".into(),
            write: ".*".into(),
            read: ".*".into(),
        });
        perms.access("guest", "/")
    }

    fn queue(v: &Vhost, name: &str, args: FieldTable) {
        crate::broker::vhost::tests_support::declare_q_with(v, name, &args);
    }

    fn exchange(v: &Vhost, name: &str, kind: &str, args: FieldTable) {
        v.exchange_declare(ExchangeDeclare {
            name,
            kind,
            passive: false,
            durable: false,
            auto_delete: false,
            internal: false,
            arguments: &args,
        })
        .unwrap();
    }

    fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in entries {
            t.insert((*k).into(), v.clone());
        }
        t
    }

    fn text(s: &str) -> AMQPValue {
        AMQPValue::LongString(s.into())
    }

    struct Publisher {
        access: Access,
        replies: ReplyTargets,
        reply_key: Option<String>,
    }

    impl Publisher {
        fn new() -> Self {
            Publisher { access: access(), replies: ReplyTargets::default(), reply_key: None }
        }

        fn publish(&mut self, v: &Vhost, x: &str, rk: &str, props: &AMQPProperties) -> AmqpResult<Published> {
            self.publish_with(v, x, rk, props, false)
        }

        fn publish_with(
            &mut self,
            v: &Vhost,
            x: &str,
            rk: &str,
            props: &AMQPProperties,
            mandatory: bool,
        ) -> AmqpResult<Published> {
            let p = Publish {
                exchange: Bytes::copy_from_slice(x.as_bytes()),
                routing_key: Bytes::copy_from_slice(rk.as_bytes()),
                properties: raw(props),
                body: Bytes::from_static(b"body"),
                mandatory,
                immediate: false,
                user: "guest",
                access: &mut self.access,
                reply_key: self.reply_key.as_deref(),
            };
            v.publish(p, &Sink { replies: &self.replies, waker: None })
        }
    }

    fn names(p: &Published) -> Vec<String> {
        let mut n: Vec<String> = p.queues.iter().map(|q| q.name.clone()).collect();
        n.sort();
        n
    }

    fn count(v: &Vhost, q: &str) -> u32 {
        v.queue(q).unwrap().message_count()
    }

    fn head(v: &Vhost, q: &str) -> Arc<Message> {
        v.queue(q).unwrap().get(&mut DeadLetters::default()).unwrap().0.message
    }

    #[test]
    fn routes_to_every_bound_queue_once() {
        let v = Vhost::new("/", None);
        queue(&v, "a", FieldTable::default());
        queue(&v, "b", FieldTable::default());
        let none = FieldTable::default();
        v.queue_bind("a", "amq.topic", "k.*", &none, ConnectionId(1)).unwrap();
        v.queue_bind("a", "amq.topic", "#", &none, ConnectionId(1)).unwrap();
        v.queue_bind("b", "amq.topic", "k.x", &none, ConnectionId(1)).unwrap();
        let mut p = Publisher::new();
        let out = p.publish(&v, "amq.topic", "k.x", &AMQPProperties::default()).unwrap();
        assert_eq!(names(&out), ["a", "b"]);
        assert!(out.returned.is_none() && !out.rejected && out.tickets.is_empty());
        assert_eq!((count(&v, "a"), count(&v, "b")), (1, 1));
        // The default exchange routes by queue name.
        let out = p.publish(&v, "", "b", &AMQPProperties::default()).unwrap();
        assert_eq!(names(&out), ["b"]);
        // Unknown exchange: RabbitMQ's 404, raised by basic.publish.
        let err = p.publish(&v, "nope", "k", &AMQPProperties::default()).unwrap_err();
        assert_eq!(err.text, "NOT_FOUND - no exchange 'nope' in vhost '/'");
        assert_eq!((err.class_id, err.method_id), (60, 40));
        // Internal exchanges take no publishes.
        let err = p.publish(&v, "amq.rabbitmq.trace", "k", &AMQPProperties::default()).unwrap_err();
        assert_eq!(err.text, "ACCESS_REFUSED - cannot publish to internal exchange 'amq.rabbitmq.trace' in vhost '/'");
    }

    #[test]
    fn a_user_id_must_name_the_authenticated_user() {
        let v = Vhost::new("/", None);
        queue(&v, "q", FieldTable::default());
        let mut p = Publisher::new();
        let other = AMQPProperties::default().with_user_id(ShortString::from("mallory"));
        let err = p.publish(&v, "", "q", &other).unwrap_err();
        assert_eq!(err.code as u16, 406);
        assert_eq!(
            err.text,
            "PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated user was 'guest'"
        );
        assert_eq!((err.class_id, err.method_id), (60, 40));
        assert_eq!(count(&v, "q"), 0);
        let own = AMQPProperties::default().with_user_id(ShortString::from("guest"));
        assert_eq!(names(&p.publish(&v, "", "q", &own).unwrap()), ["q"]);
    }

    #[test]
    fn cc_and_bcc_add_routing_keys_and_bcc_is_stripped() {
        let v = Vhost::new("/", None);
        for q in ["main", "cc", "bcc"] {
            queue(&v, q, FieldTable::default());
            v.queue_bind(q, "amq.direct", q, &FieldTable::default(), ConnectionId(1)).unwrap();
        }
        let headers = table(&[
            ("CC", AMQPValue::FieldArray(FieldArray::from(vec![text("cc")]))),
            ("BCC", AMQPValue::FieldArray(FieldArray::from(vec![text("bcc")]))),
            ("other", text("kept")),
        ]);
        let mut p = Publisher::new();
        let props = AMQPProperties::default().with_headers(headers);
        let out = p.publish(&v, "amq.direct", "main", &props).unwrap();
        assert_eq!(names(&out), ["bcc", "cc", "main"]);
        let seen = head(&v, "bcc").decode_properties().unwrap();
        let h = seen.headers().as_ref().unwrap();
        assert!(h.inner().contains_key("CC") && h.inner().contains_key("other"));
        assert!(!h.inner().contains_key("BCC"), "BCC reached a consumer");
        // CC that is not an array: RabbitMQ's 406.
        let bad = AMQPProperties::default().with_headers(table(&[("CC", text("cc"))]));
        assert_eq!(
            p.publish(&v, "amq.direct", "main", &bad).unwrap_err().text,
            "PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,\"CC\",longstr}"
        );
    }

    #[test]
    fn direct_reply_to_rewrites_the_address_and_delivers_replies() {
        let v = Vhost::new("/", None);
        queue(&v, "rpc", FieldTable::default());
        let mut p = Publisher::new();
        let ask = AMQPProperties::default().with_reply_to(ShortString::from(REPLY_TO));
        let err = p.publish(&v, "", "rpc", &ask).unwrap_err();
        assert_eq!(err.text, "PRECONDITION_FAILED - fast reply consumer does not exist");
        // With a reply consumer, the request carries its address.
        let outbox = Arc::new(Outbox::default());
        let key = p.replies.register(ReplyTarget {
            outbox: Arc::clone(&outbox),
            channel: ChannelId(3),
            consumer_tag: "amq.ctag-r".into(),
        });
        p.reply_key = Some(key.clone());
        p.publish(&v, "", "rpc", &ask).unwrap();
        let address = format!("{REPLY_TO}.{key}");
        let seen = head(&v, "rpc").decode_properties().unwrap();
        assert_eq!(seen.reply_to().as_ref().map(|s| s.as_str()), Some(address.as_str()));
        // The reply goes straight to that consumer, through no queue.
        let out = p.publish(&v, "", &address, &AMQPProperties::default()).unwrap();
        assert!(out.direct_reply && out.queues.is_empty() && !out.is_unroutable());
        let mut items = Vec::new();
        outbox.drain_into(&mut items);
        assert!(
            matches!(&items[..], [OutboxItem::DirectReply { channel: ChannelId(3), consumer_tag, .. }] if consumer_tag == "amq.ctag-r")
        );
        // A reply to a consumer that is gone is simply unroutable.
        p.replies.unregister(&key);
        assert!(p.publish(&v, "", &address, &AMQPProperties::default()).unwrap().is_unroutable());
    }

    #[test]
    fn exchanges_and_queues_count_publishes_in_and_out() {
        let v = Vhost::new("/", None);
        queue(&v, "a", FieldTable::default());
        v.queue_bind("a", "amq.direct", "k", &FieldTable::default(), ConnectionId(1)).unwrap();
        let mut p = Publisher::new();
        for rk in ["k", "k", "none"] {
            p.publish(&v, "amq.direct", rk, &AMQPProperties::default()).unwrap();
        }
        p.publish(&v, "", "a", &AMQPProperties::default()).unwrap();
        let direct = v.exchange("amq.direct").unwrap().stats();
        assert_eq!((direct.publish_in, direct.publish_out), (3, 2));
        let default = v.exchange("").unwrap().stats();
        assert_eq!((default.publish_in, default.publish_out), (1, 1));
        let q = v.queue("a").unwrap().stats();
        assert_eq!((q.publish, q.messages_ready, q.message_bytes_ready), (3, 3, 12));
    }

    #[test]
    fn a_mandatory_message_routed_nowhere_comes_back() {
        let v = Vhost::new("/", None);
        let mut p = Publisher::new();
        let out = p.publish_with(&v, "amq.direct", "none", &AMQPProperties::default(), true).unwrap();
        assert!(out.is_unroutable());
        assert_eq!(out.returned.as_ref().map(|m| &m.routing_key[..]), Some(&b"none"[..]));
        let out = p.publish_with(&v, "amq.direct", "none", &AMQPProperties::default(), false).unwrap();
        assert!(out.is_unroutable() && out.returned.is_none());
    }

    #[test]
    fn an_unroutable_message_goes_to_the_alternate_exchange() {
        let v = Vhost::new("/", None);
        exchange(&v, "ae", "fanout", FieldTable::default());
        exchange(&v, "main", "direct", table(&[("alternate-exchange", text("ae"))]));
        queue(&v, "routed", FieldTable::default());
        queue(&v, "stray", FieldTable::default());
        v.queue_bind("routed", "main", "k", &FieldTable::default(), ConnectionId(1)).unwrap();
        v.queue_bind("stray", "ae", "", &FieldTable::default(), ConnectionId(1)).unwrap();
        let mut p = Publisher::new();
        assert_eq!(names(&p.publish_with(&v, "main", "k", &AMQPProperties::default(), true).unwrap()), ["routed"]);
        let out = p.publish_with(&v, "main", "other", &AMQPProperties::default(), true).unwrap();
        assert_eq!(names(&out), ["stray"]);
        assert!(out.returned.is_none(), "reached a queue through the AE: not returned");
    }

    #[test]
    fn what_a_full_queue_pushes_out_is_dead_lettered() {
        let v = Vhost::new("/", None);
        queue(&v, "dlq", FieldTable::default());
        let args = table(&[
            ("x-max-length", AMQPValue::LongInt(1)),
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text("dlq")),
        ]);
        queue(&v, "small", args);
        let mut p = Publisher::new();
        for _ in 0..3 {
            assert_eq!(names(&p.publish(&v, "", "small", &AMQPProperties::default()).unwrap()), ["small"]);
        }
        assert_eq!((count(&v, "small"), count(&v, "dlq")), (1, 2));
        let dead = head(&v, "dlq").decode_properties().unwrap();
        let death = dead.headers().as_ref().unwrap().inner().get("x-death").cloned();
        assert!(matches!(death, Some(AMQPValue::FieldArray(_))));
        // reject-publish refuses instead: a confirm would be a nack.
        let args = table(&[("x-max-length", AMQPValue::LongInt(0)), ("x-overflow", text("reject-publish"))]);
        queue(&v, "full", args);
        let out = p.publish(&v, "", "full", &AMQPProperties::default()).unwrap();
        assert!(out.rejected);
        // A TTL of 0 with no consumer dead-letters at once.
        let args = table(&[
            ("x-message-ttl", AMQPValue::LongInt(0)),
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text("dlq")),
        ]);
        queue(&v, "now-or-never", args);
        p.publish(&v, "", "now-or-never", &AMQPProperties::default()).unwrap();
        assert_eq!((count(&v, "now-or-never"), count(&v, "dlq")), (0, 2));
    }

    #[test]
    fn bad_properties_and_expiration_are_refused_as_rabbitmq_does() {
        let v = Vhost::new("/", None);
        queue(&v, "q", FieldTable::default());
        let mut p = Publisher::new();
        let bad = AMQPProperties::default().with_expiration("soon".into());
        let err = p.publish(&v, "", "q", &bad).unwrap_err();
        assert_eq!(err.code as u16, 406);
        // A property list that does not decode: a bare 541.
        let mut access = access();
        let replies = ReplyTargets::default();
        let err = v
            .publish(
                Publish {
                    exchange: Bytes::new(),
                    routing_key: Bytes::from_static(b"q"),
                    properties: Bytes::from_static(&[0x20, 0x00, 0x05]),
                    body: Bytes::new(),
                    mandatory: false,
                    immediate: false,
                    user: "guest",
                    access: &mut access,
                    reply_key: None,
                },
                &Sink { replies: &replies, waker: None },
            )
            .unwrap_err();
        assert_eq!((err.code as u16, err.text.as_str(), err.class_id), (541, "INTERNAL_ERROR", 0));
        let err = v
            .publish(
                Publish {
                    exchange: Bytes::new(),
                    routing_key: Bytes::from_static(b"q"),
                    properties: raw(&AMQPProperties::default()),
                    body: Bytes::new(),
                    mandatory: false,
                    immediate: true,
                    user: "guest",
                    access: &mut access,
                    reply_key: None,
                },
                &Sink { replies: &replies, waker: None },
            )
            .unwrap_err();
        assert_eq!(err.text, "NOT_IMPLEMENTED - immediate=true");
    }
}
