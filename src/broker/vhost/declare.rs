//! Declaring, deleting, binding and unbinding exchanges and queues, with
//! RabbitMQ's checks (reserved names, equivalence on redeclaration,
//! exclusivity) and its error texts; durable changes go to the store.

use std::sync::Arc;

use amq_protocol::types::{AMQPValue, FieldTable};

use super::names::{amqp_type_name, amqp_value_text, bool_str, generated_name};
use super::Vhost;
use crate::broker::args::{QueueArgs, QueueType};
use crate::broker::error::{AmqpError, AmqpResult};
use crate::broker::exchange::{Destination, Exchange, ExchangeKind};
use crate::broker::headers::{self, x_match};
use crate::broker::queue::{NewQueue, Queue};
use crate::ids::ConnectionId;
use crate::store::DefChange;

pub struct ExchangeDeclare<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub passive: bool,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: &'a FieldTable,
}

pub struct QueueDeclare<'a> {
    /// Empty asks for a server-generated `amq.gen-…` name.
    pub name: &'a str,
    /// `name` is one the server generated (see [`generated_name`]) for a
    /// declare without a name, so it may carry the reserved `amq.` prefix.
    pub server_named: bool,
    pub passive: bool,
    pub durable: bool,
    pub exclusive: bool,
    pub auto_delete: bool,
    pub arguments: &'a FieldTable,
    /// The declaring connection; it owns the queue if `exclusive`.
    pub connection_id: ConnectionId,
}

#[derive(Debug, PartialEq, Eq)]
pub struct QueueDeclareOk {
    pub name: String,
    pub message_count: u32,
    pub consumer_count: u32,
    /// This declare created the queue (rather than finding it).
    pub created: bool,
}

/// The queue arguments RabbitMQ compares on redeclaration.
const EQUIVALENT_QUEUE_ARGS: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-single-active-consumer",
    "x-queue-type",
    "x-queue-master-locator",
    "x-queue-leader-locator",
];

/// What a stream compares beyond `EQUIVALENT_QUEUE_ARGS`.
const STREAM_EQUIVALENT_ARGS: &[&str] = &["x-max-age", "x-stream-max-segment-size-bytes", "x-initial-cluster-size"];

fn check_args_equivalence(current: &FieldTable, received: &FieldTable, what: &str) -> AmqpResult<()> {
    check_args_equivalence_of(current, received, what, EQUIVALENT_QUEUE_ARGS)
}

fn check_args_equivalence_of(current: &FieldTable, received: &FieldTable, what: &str, keys: &[&str]) -> AmqpResult<()> {
    // A queue declared without a type is a classic queue, and compares so.
    let classic = AMQPValue::LongString("classic".into());
    for key in keys {
        let (mut cur, mut new) = (current.inner().get(*key), received.inner().get(*key));
        // RabbitMQ compares a stream's type as declared (none is none).
        let stream = AMQPValue::LongString("stream".into());
        if *key == "x-queue-type" && (cur.is_some() || new.is_some()) && cur != Some(&stream) && new != Some(&stream) {
            cur = cur.or(Some(&classic));
            new = new.or(Some(&classic));
        }
        let describe = |v: Option<&AMQPValue>| match v {
            None => "none".to_string(),
            Some(v) => format!("the value '{}' of type '{}'", amqp_value_text(v), amqp_type_name(v)),
        };
        match (cur, new) {
            (None, None) => {}
            (Some(a), Some(b)) => {
                let numeric = headers::as_number(a).is_some() && headers::as_number(b).is_some();
                let same = if numeric {
                    headers::as_number(a) == headers::as_number(b)
                } else {
                    a == b || (amqp_value_text(a) == amqp_value_text(b) && amqp_type_name(a) == amqp_type_name(b))
                };
                if !same {
                    return Err(AmqpError::precondition_failed(format!(
                        "inequivalent arg '{key}' for {what}: received '{}' but current is '{}'",
                        amqp_value_text(b),
                        amqp_value_text(a)
                    )));
                }
            }
            (a, b) => {
                return Err(AmqpError::precondition_failed(format!(
                    "inequivalent arg '{key}' for {what}: received {} but current is {}",
                    describe(b),
                    describe(a)
                )))
            }
        }
    }
    Ok(())
}

impl Vhost {
    fn default_exchange_refused() -> AmqpError {
        AmqpError::access_refused("operation not permitted on the default exchange")
    }

    /// Declares an exchange; returns whether this call created it.
    pub fn exchange_declare(&self, d: ExchangeDeclare<'_>) -> AmqpResult<bool> {
        if d.passive {
            if d.name.is_empty() {
                return Err(Self::default_exchange_refused());
            }
            return self.exchange(d.name).map(|_| false);
        }
        let kind = ExchangeKind::parse(d.kind)
            .ok_or_else(|| AmqpError::command_invalid(format!("unknown exchange type '{}'", d.kind)))?;
        if d.name.is_empty() {
            return Err(Self::default_exchange_refused());
        }
        let existing = match self.exchanges.entry(d.name.to_owned()) {
            dashmap::Entry::Occupied(e) => Arc::clone(e.get()),
            dashmap::Entry::Vacant(v) => {
                if d.name.starts_with("amq.") {
                    return Err(AmqpError::access_refused(format!(
                        "exchange name '{}' contains reserved prefix 'amq.*'",
                        d.name
                    )));
                }
                let x = Arc::new(Exchange::new(
                    d.name.to_owned(),
                    kind,
                    d.durable,
                    d.auto_delete,
                    d.internal,
                    d.arguments.clone(),
                ));
                // Before it is visible: a policy change meanwhile waits for
                // this shard, then applies again.
                x.apply_policies(&self.policies);
                v.insert(Arc::clone(&x));
                if d.durable {
                    self.record(|| DefChange::PutExchange(self.exchange_def(&x)));
                }
                return Ok(true);
            }
        };
        let inequivalent = |arg: &str, received: &str, current: &str| {
            AmqpError::precondition_failed(format!(
                "inequivalent arg '{}' for exchange '{}' in vhost '{}': received '{}' but current is '{}'",
                arg, d.name, self.name, received, current
            ))
        };
        if existing.kind != kind {
            return Err(inequivalent("type", kind.as_str(), existing.kind.as_str()));
        }
        if existing.durable != d.durable {
            return Err(inequivalent("durable", bool_str(d.durable), bool_str(existing.durable)));
        }
        if existing.auto_delete != d.auto_delete {
            return Err(inequivalent("auto_delete", bool_str(d.auto_delete), bool_str(existing.auto_delete)));
        }
        if existing.internal != d.internal {
            return Err(inequivalent("internal", bool_str(d.internal), bool_str(existing.internal)));
        }
        // Of the arguments, RabbitMQ compares only alternate-exchange.
        let ae = |t: &FieldTable| t.inner().get("alternate-exchange").map(amqp_value_text);
        if let (Some(cur), Some(new)) = (ae(&existing.arguments), ae(d.arguments)) {
            if cur != new {
                return Err(inequivalent("alternate-exchange", &new, &cur));
            }
        }
        Ok(false)
    }

    pub fn exchange_delete(&self, name: &str, if_unused: bool) -> AmqpResult<()> {
        if name.is_empty() {
            return Err(Self::default_exchange_refused());
        }
        if name.starts_with("amq.") {
            return Err(AmqpError::access_refused(format!(
                "deletion of system exchange '{}' in vhost '{}' not allowed",
                name, self.name
            )));
        }
        let Some(x) = self.exchanges.get(name).map(|e| Arc::clone(e.value())) else {
            // It may still be on disk, if recording its deletion failed.
            self.record(|| DefChange::DeleteExchange { vhost: self.name.clone(), name: name.to_owned() });
            return Ok(());
        };
        if if_unused && x.has_bindings() {
            return Err(AmqpError::precondition_failed(format!("exchange '{}' in vhost '{}' in use", name, self.name)));
        }
        self.remove_exchange(name);
        Ok(())
    }

    /// Removes an exchange and every binding that names it as destination.
    pub fn remove_exchange(&self, name: &str) {
        let Some((_, x)) = self.exchanges.remove(name) else { return };
        if x.durable {
            self.record(|| DefChange::DeleteExchange { vhost: self.name.clone(), name: name.to_owned() });
        }
        for x in self.exchanges() {
            if x.unbind_exchange(name) {
                self.maybe_auto_delete_exchange(&x);
            }
        }
    }

    /// RabbitMQ deletes an auto-delete exchange when its last binding goes.
    fn maybe_auto_delete_exchange(&self, x: &Arc<Exchange>) {
        if x.auto_delete && !x.has_bindings() {
            self.remove_exchange(&x.name);
        }
    }

    fn check_bindable_source(&self, name: &str) -> AmqpResult<Arc<Exchange>> {
        if name.is_empty() {
            return Err(Self::default_exchange_refused());
        }
        self.exchange(name)
    }

    fn check_binding_args(x: &Exchange, arguments: &FieldTable) -> AmqpResult<()> {
        if x.kind == ExchangeKind::Headers && x_match(arguments).is_none() {
            let got = match arguments.inner().get("x-match") {
                Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                Some(AMQPValue::ShortString(s)) => s.as_str().to_owned(),
                Some(other) => format!("{other:?}"),
                None => String::new(),
            };
            return Err(AmqpError::precondition_failed(format!(
                "Invalid x-match field value <<\"{got}\">>; expected all, any, all-with-x, or any-with-x"
            )));
        }
        Ok(())
    }

    pub fn exchange_bind(
        &self,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: &FieldTable,
    ) -> AmqpResult<bool> {
        if destination.is_empty() {
            return Err(Self::default_exchange_refused());
        }
        let src = self.check_bindable_source(source)?;
        self.exchange(destination)?;
        Self::check_binding_args(&src, arguments)?;
        let dest = Destination::Exchange(destination.to_owned());
        let created = src.bind(dest.clone(), routing_key, arguments);
        if created && self.is_durable_binding(&src, &dest) {
            self.record(|| DefChange::PutBinding(self.binding_def(source, &dest, routing_key, arguments)));
        }
        Ok(created)
    }

    pub fn exchange_unbind(
        &self,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: &FieldTable,
    ) -> AmqpResult<()> {
        // Like RabbitMQ, unbinding what does not exist (binding, source or
        // destination) succeeds; only the default exchange is refused.
        if destination.is_empty() || source.is_empty() {
            return Err(Self::default_exchange_refused());
        }
        let Ok(src) = self.exchange(source) else { return Ok(()) };
        let dest = Destination::Exchange(destination.to_owned());
        let durable = self.is_durable_binding(&src, &dest);
        if src.unbind(&dest, routing_key, arguments) {
            if durable {
                self.record(|| DefChange::DeleteBinding(self.binding_def(source, &dest, routing_key, arguments)));
            }
            self.maybe_auto_delete_exchange(&src);
        }
        Ok(())
    }

    pub fn queue_declare(&self, d: QueueDeclare<'_>) -> AmqpResult<QueueDeclareOk> {
        if d.passive {
            let q = self.queue(d.name)?;
            q.check_exclusive(d.connection_id)?;
            q.touch();
            return Ok(QueueDeclareOk {
                name: q.name.clone(),
                message_count: q.message_count(),
                consumer_count: q.consumer_count(),
                created: false,
            });
        }
        let name = if d.name.is_empty() {
            generated_name("amq.gen")
        } else {
            if d.name.starts_with("amq.") && !d.server_named {
                return Err(AmqpError::access_refused(format!(
                    "queue name '{}' contains reserved prefix 'amq.*'",
                    d.name
                )));
            }
            d.name.to_owned()
        };
        // The vhost's default queue type, as RabbitMQ 3.10 applies it: to a
        // declare without x-queue-type of a durable, non-exclusive,
        // non-auto-delete queue, and written into its arguments.
        let augmented;
        let mut d = d;
        if let Some(kind) = self.def.read().default_queue_type().map(str::to_owned) {
            if d.durable && !d.exclusive && !d.auto_delete && !d.arguments.contains_key("x-queue-type") {
                let mut a = d.arguments.clone();
                a.insert("x-queue-type".into(), AMQPValue::LongString(kind.into()));
                augmented = a;
                d.arguments = &augmented;
            }
        }
        let args = QueueArgs::parse(d.arguments, &name, &self.name)?;
        let is_stream = args.queue_type == QueueType::Stream;
        if is_stream && (d.server_named || d.name.is_empty()) {
            return Err(AmqpError::precondition_failed(
                "Cannot declare a server-named queue for type rabbit_stream_queue",
            ));
        }
        // RabbitMQ never makes an exclusive queue durable.
        let durable = d.durable && !d.exclusive;
        let owner = d.exclusive.then_some(d.connection_id);
        // Before `entry`, which holds a shard lock that counting would wait on.
        if !self.queues.contains_key(&name) {
            self.check_queue_limit(&name)?;
        }
        let q = match self.queues.entry(name.clone()) {
            dashmap::Entry::Occupied(e) => Arc::clone(e.get()),
            dashmap::Entry::Vacant(v) => {
                args.check_quorum_properties(d.durable, d.exclusive, d.auto_delete, &name, &self.name)?;
                let stream = if is_stream { Some(self.make_stream(&name, d.arguments)?) } else { None };
                let log = match (&self.store, durable, is_stream) {
                    (Some(store), true, false) => Some(store.queue_log(&self.name, &name, None)),
                    _ => None,
                };
                let mut q = Queue::new(NewQueue {
                    name: name.clone(),
                    vhost: self.name.clone(),
                    durable,
                    auto_delete: d.auto_delete,
                    exclusive_owner: owner,
                    arguments: d.arguments.clone(),
                    log,
                    clock: self.clock.clone(),
                });
                match (stream, &self.store) {
                    (Some(stream), _) => q = q.with_stream(stream),
                    (None, Some(store)) => {
                        q = q.with_paging(store.paging_dir(&self.name, &name), self.queue_memory_budget)
                    }
                    (None, None) => {}
                }
                let q = self.wrap_queue(q);
                // Before it is visible: a policy change meanwhile waits for
                // this shard, then applies again. A new queue has nothing
                // to dead-letter.
                q.apply_policies(&self.policies);
                v.insert(Arc::clone(&q));
                q.arm();
                if durable {
                    self.record(|| DefChange::PutQueue(self.queue_def(&q)));
                }
                // Every queue is bound to the default exchange by its name;
                // that binding is implicit (routing looks the queue up).
                return Ok(QueueDeclareOk { name, message_count: 0, consumer_count: 0, created: true });
            }
        };
        // Redeclaration: exclusivity must match exactly ("strict" in RabbitMQ).
        if q.exclusive_owner != owner {
            return Err(AmqpError::resource_locked(format!(
                "cannot obtain exclusive access to locked queue '{}' in vhost '{}'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.",
                name, self.name
            )));
        }
        let inequivalent = |arg: &str, received: bool, current: bool| {
            AmqpError::precondition_failed(format!(
                "inequivalent arg '{}' for queue '{}' in vhost '{}': received '{}' but current is '{}'",
                arg,
                name,
                self.name,
                bool_str(received),
                bool_str(current)
            ))
        };
        if q.durable != durable {
            return Err(inequivalent("durable", durable, q.durable));
        }
        if q.auto_delete != d.auto_delete {
            return Err(inequivalent("auto_delete", d.auto_delete, q.auto_delete));
        }
        let what = format!("queue '{}' in vhost '{}'", name, self.name);
        check_args_equivalence(&q.arguments, d.arguments, &what)?;
        if q.is_stream() {
            check_args_equivalence_of(&q.arguments, d.arguments, &what, STREAM_EQUIVALENT_ARGS)?;
        }
        q.touch();
        Ok(QueueDeclareOk {
            name,
            message_count: q.message_count(),
            consumer_count: q.consumer_count(),
            created: false,
        })
    }

    pub fn queue_bind(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: &FieldTable,
        connection_id: ConnectionId,
    ) -> AmqpResult<bool> {
        let x = self.check_bindable_source(exchange)?;
        let q = self.queue(queue)?;
        q.check_exclusive(connection_id)?;
        Self::check_binding_args(&x, arguments)?;
        let dest = Destination::Queue(q);
        let created = x.bind(dest.clone(), routing_key, arguments);
        if created && self.is_durable_binding(&x, &dest) {
            self.record(|| DefChange::PutBinding(self.binding_def(exchange, &dest, routing_key, arguments)));
        }
        Ok(created)
    }

    pub fn queue_unbind(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: &FieldTable,
        connection_id: ConnectionId,
    ) -> AmqpResult<()> {
        if exchange.is_empty() {
            return Err(Self::default_exchange_refused());
        }
        let (Ok(x), Ok(q)) = (self.exchange(exchange), self.queue(queue)) else { return Ok(()) };
        q.check_exclusive(connection_id)?;
        let dest = Destination::Queue(q);
        let durable = self.is_durable_binding(&x, &dest);
        if x.unbind(&dest, routing_key, arguments) {
            if durable {
                self.record(|| DefChange::DeleteBinding(self.binding_def(exchange, &dest, routing_key, arguments)));
            }
            self.maybe_auto_delete_exchange(&x);
        }
        Ok(())
    }

    pub fn queue_purge(&self, queue: &str, connection_id: ConnectionId) -> AmqpResult<u32> {
        let q = self.queue(queue)?;
        q.check_exclusive(connection_id)?;
        if q.is_stream() {
            return Err(q.stream_not_implemented("queue.purge"));
        }
        Ok(q.purge())
    }

    /// Deletes a queue (a missing one is fine: RabbitMQ answers delete-ok 0).
    pub fn queue_delete(
        &self,
        queue: &str,
        if_unused: bool,
        if_empty: bool,
        connection_id: ConnectionId,
    ) -> AmqpResult<u32> {
        let Ok(q) = self.queue(queue) else {
            // It may still be on disk, if recording its deletion failed.
            self.record(|| DefChange::DeleteQueue { vhost: self.name.clone(), name: queue.to_owned() });
            return Ok(0);
        };
        q.check_exclusive(connection_id)?;
        if if_unused && q.consumer_count() > 0 {
            return Err(AmqpError::precondition_failed(format!("queue '{}' in vhost '{}' in use", queue, self.name)));
        }
        if if_empty && q.message_count() > 0 {
            return Err(AmqpError::precondition_failed(format!(
                "queue '{}' in vhost '{}' not empty",
                queue, self.name
            )));
        }
        Ok(self.remove_queue(&q))
    }

    /// Removes a queue, its bindings, and tells its consumers (basic.cancel).
    pub fn remove_queue(&self, q: &Arc<Queue>) -> u32 {
        let removed = self.queues.remove_if(&q.name, |_, v| Arc::ptr_eq(v, q)).is_some();
        if removed && q.durable {
            self.record(|| DefChange::DeleteQueue { vhost: self.name.clone(), name: q.name.clone() });
        }
        let (count, consumers) = q.mark_deleted();
        for c in consumers {
            c.outbox
                .push(crate::broker::consumer::OutboxItem::Cancel { channel: c.channel, consumer_tag: c.tag.clone() });
        }
        for x in self.exchanges() {
            if x.unbind_queue(q) {
                self.maybe_auto_delete_exchange(&x);
            }
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::*;
    use super::*;

    #[test]
    fn declare_errors_match_rabbitmq() {
        let v = Vhost::new("/", None);
        declare_x(&v, "x", "direct").unwrap();
        assert_eq!(
            declare_x(&v, "x", "fanout").unwrap_err().text,
            "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'x' in vhost '/': received 'fanout' but current is 'direct'"
        );
        assert_eq!(
            declare_x(&v, "amq.foo", "direct").unwrap_err().text,
            "ACCESS_REFUSED - exchange name 'amq.foo' contains reserved prefix 'amq.*'"
        );
        // Existing amq.* exchanges may be redeclared; they are durable.
        assert!(declare_x(&v, "amq.direct", "direct").unwrap_err().text.contains("inequivalent arg 'durable'"));
        assert_eq!(declare_x(&v, "y", "nope").unwrap_err().code as u16, 503);
        assert_eq!(v.queue("q").unwrap_err().text, "NOT_FOUND - no queue 'q' in vhost '/'");
        declare_q(&v, "q");
        let err = v
            .queue_declare(QueueDeclare {
                name: "q",
                server_named: false,
                passive: false,
                durable: true,
                exclusive: false,
                auto_delete: false,
                arguments: &FieldTable::default(),
                connection_id: ConnectionId(1),
            })
            .unwrap_err();
        assert_eq!(
            err.text,
            "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q' in vhost '/': received 'true' but current is 'false'"
        );
    }

    #[test]
    fn auto_delete_exchange_goes_with_its_last_binding() {
        let v = Vhost::new("/", None);
        declare_q(&v, "q");
        v.exchange_declare(ExchangeDeclare {
            name: "ad",
            kind: "fanout",
            passive: false,
            durable: false,
            auto_delete: true,
            internal: false,
            arguments: &FieldTable::default(),
        })
        .unwrap();
        v.queue_bind("q", "ad", "", &FieldTable::default(), ConnectionId(1)).unwrap();
        v.queue_delete("q", false, false, ConnectionId(1)).unwrap();
        assert!(v.exchange("ad").is_err());
    }
}
