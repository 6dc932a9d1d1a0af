//! A virtual host: its exchanges and queues, and the operations the wire
//! front end (and later the HTTP API) performs on them. Every operation takes
//! plain Rust values and returns RabbitMQ's error on failure.

use std::sync::Arc;

use amq_protocol::types::{AMQPValue, FieldTable};
use dashmap::DashMap;
use smallvec::SmallVec;

use super::args::QueueArgs;
use super::deadletter;
use super::error::{AmqpError, AmqpResult};
use super::exchange::{Destination, Exchange, ExchangeKind, RouteInput};
use super::headers::x_match;
use super::message::{Message, QueuedMessage};
use super::queue::{DeadLetters, DeathReason, Queue};
use crate::store::definitions::{
    table_from_json, table_to_json, BindingDef, Definitions, ExchangeDef, QueueDef, VhostDef,
};
use crate::store::{DefChange, RecoveredQueue, Store};

pub type Routed = SmallVec<[Arc<Queue>; 4]>;

/// A message on its way to a dead-letter exchange: the queue it left, that
/// queue's DLX and routing key, the message and why.
type DeadLetterWork = (String, Option<String>, Option<String>, QueuedMessage, DeathReason);

#[derive(Debug)]
pub struct Vhost {
    pub name: String,
    /// As defined (description, tags, metadata such as default_queue_type).
    pub def: VhostDef,
    exchanges: DashMap<String, Arc<Exchange>, super::FastHash>,
    queues: DashMap<String, Arc<Queue>, super::FastHash>,
    /// Where durable queues keep their logs and durable definitions are
    /// recorded; `None` in memory.
    store: Option<Arc<Store>>,
    /// Message bytes each of its queues keeps in RAM before paging newer
    /// ones to the store's page files.
    queue_memory_budget: u64,
}

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
    pub connection_id: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub struct QueueDeclareOk {
    pub name: String,
    pub message_count: u32,
    pub consumer_count: u32,
    /// This declare created the queue (rather than finding it).
    pub created: bool,
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
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

/// RabbitMQ's name for a field value's type, as its error texts print it.
pub fn amqp_type_name(v: &AMQPValue) -> &'static str {
    match v {
        AMQPValue::Boolean(_) => "bool",
        AMQPValue::ShortShortInt(_) => "byte",
        AMQPValue::ShortShortUInt(_) => "unsignedbyte",
        AMQPValue::ShortInt(_) => "short",
        AMQPValue::ShortUInt(_) => "unsignedshort",
        AMQPValue::LongInt(_) => "signedint",
        AMQPValue::LongUInt(_) => "unsignedint",
        AMQPValue::LongLongInt(_) => "long",
        AMQPValue::Float(_) => "float",
        AMQPValue::Double(_) => "double",
        AMQPValue::DecimalValue(_) => "decimal",
        AMQPValue::ShortString(_) => "shortstr",
        AMQPValue::LongString(_) => "longstr",
        AMQPValue::FieldArray(_) => "array",
        AMQPValue::Timestamp(_) => "timestamp",
        AMQPValue::FieldTable(_) => "table",
        AMQPValue::ByteArray(_) => "binary",
        AMQPValue::Void => "void",
    }
}

/// A field value printed as RabbitMQ prints it in error texts.
pub fn amqp_value_text(v: &AMQPValue) -> String {
    match v {
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        other => match super::headers::as_number(other) {
            Some(n) => n.to_string(),
            None => format!("{other:?}"),
        },
    }
}

fn check_args_equivalence(current: &FieldTable, received: &FieldTable, what: &str) -> AmqpResult<()> {
    // A queue declared without a type is a classic queue, and compares so.
    let classic = AMQPValue::LongString("classic".into());
    for key in EQUIVALENT_QUEUE_ARGS {
        let (mut cur, mut new) = (current.inner().get(*key), received.inner().get(*key));
        if *key == "x-queue-type" && (cur.is_some() || new.is_some()) {
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
                let numeric = super::headers::as_number(a).is_some() && super::headers::as_number(b).is_some();
                let same = if numeric {
                    super::headers::as_number(a) == super::headers::as_number(b)
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

/// Generates RabbitMQ-style names: `amq.gen-` / `amq.ctag-` plus 22 url-safe
/// base64 characters of randomness.
pub fn generated_name(prefix: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    let mut s = String::with_capacity(prefix.len() + 23);
    s.push_str(prefix);
    s.push('-');
    for _ in 0..22 {
        s.push(ALPHABET[rng.random_range(0..64)] as char);
    }
    s
}

impl Vhost {
    pub fn new(name: &str, store: Option<Arc<Store>>) -> Self {
        Self::with_def(VhostDef::named(name), store)
    }

    /// Sets the RAM budget of the queues it will hold (`Config::queue_memory_budget`).
    pub fn with_queue_memory_budget(mut self, bytes: u64) -> Self {
        self.queue_memory_budget = bytes;
        self
    }

    pub fn with_def(def: VhostDef, store: Option<Arc<Store>>) -> Self {
        let v = Vhost {
            name: def.name.clone(),
            def,
            exchanges: DashMap::default(),
            queues: DashMap::default(),
            store,
            queue_memory_budget: u64::MAX,
        };
        let none = FieldTable::default();
        for (xname, kind, internal) in [
            ("", ExchangeKind::Direct, false),
            ("amq.direct", ExchangeKind::Direct, false),
            ("amq.fanout", ExchangeKind::Fanout, false),
            ("amq.topic", ExchangeKind::Topic, false),
            ("amq.headers", ExchangeKind::Headers, false),
            ("amq.match", ExchangeKind::Headers, false),
            ("amq.rabbitmq.trace", ExchangeKind::Topic, true),
        ] {
            v.exchanges.insert(
                xname.to_owned(),
                Arc::new(Exchange::new(xname.to_owned(), kind, true, false, internal, none.clone())),
            );
        }
        v
    }

    /// Hands a change of the durable definitions to the store, which makes
    /// it durable before the connection that caused it replies.
    fn record(&self, change: impl FnOnce() -> DefChange) {
        if let Some(store) = &self.store {
            store.record(change());
        }
    }

    fn exchange_def(&self, x: &Exchange) -> ExchangeDef {
        ExchangeDef {
            name: x.name.clone(),
            vhost: self.name.clone(),
            kind: x.kind.as_str().into(),
            durable: x.durable,
            auto_delete: x.auto_delete,
            internal: x.internal,
            arguments: table_to_json(&x.arguments),
        }
    }

    fn queue_def(&self, q: &Queue) -> QueueDef {
        QueueDef {
            name: q.name.clone(),
            vhost: self.name.clone(),
            durable: q.durable,
            auto_delete: q.auto_delete,
            arguments: table_to_json(&q.arguments),
        }
    }

    fn binding_def(
        &self,
        source: &str,
        destination: &Destination,
        routing_key: &str,
        arguments: &FieldTable,
    ) -> BindingDef {
        let (destination, destination_type) = match destination {
            Destination::Queue(q) => (q.name.clone(), "queue"),
            Destination::Exchange(e) => (e.clone(), "exchange"),
        };
        BindingDef {
            source: source.to_owned(),
            vhost: self.name.clone(),
            destination,
            destination_type: destination_type.into(),
            routing_key: routing_key.to_owned(),
            arguments: table_to_json(arguments),
        }
    }

    /// Whether a binding belongs in the durable definitions: RabbitMQ keeps
    /// a binding across restarts only when both its ends are durable.
    fn is_durable_binding(&self, source: &Exchange, destination: &Destination) -> bool {
        source.durable
            && match destination {
                Destination::Queue(q) => q.durable,
                Destination::Exchange(e) => self.exchanges.get(e).is_some_and(|e| e.durable),
            }
    }

    fn no_exchange(&self, name: &str) -> AmqpError {
        AmqpError::not_found(format!("no exchange '{}' in vhost '{}'", name, self.name))
    }

    fn no_queue(&self, name: &str) -> AmqpError {
        AmqpError::not_found(format!("no queue '{}' in vhost '{}'", name, self.name))
    }

    fn default_exchange_refused() -> AmqpError {
        AmqpError::access_refused("operation not permitted on the default exchange")
    }

    pub fn exchange(&self, name: &str) -> AmqpResult<Arc<Exchange>> {
        self.exchanges.get(name).map(|e| Arc::clone(e.value())).ok_or_else(|| self.no_exchange(name))
    }

    pub fn queue(&self, name: &str) -> AmqpResult<Arc<Queue>> {
        self.queues.get(name).map(|q| Arc::clone(q.value())).ok_or_else(|| self.no_queue(name))
    }

    pub fn exchanges(&self) -> Vec<Arc<Exchange>> {
        self.exchanges.iter().map(|e| Arc::clone(e.value())).collect()
    }

    pub fn queues(&self) -> Vec<Arc<Queue>> {
        self.queues.iter().map(|q| Arc::clone(q.value())).collect()
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
        if let Some(kind) = self.def.default_queue_type() {
            if d.durable && !d.exclusive && !d.auto_delete && !d.arguments.contains_key("x-queue-type") {
                let mut a = d.arguments.clone();
                a.insert("x-queue-type".into(), AMQPValue::LongString(kind.into()));
                augmented = a;
                d.arguments = &augmented;
            }
        }
        let args = QueueArgs::parse(d.arguments, &name, &self.name)?;
        // RabbitMQ never makes an exclusive queue durable.
        let durable = d.durable && !d.exclusive;
        let owner = d.exclusive.then_some(d.connection_id);
        let q = match self.queues.entry(name.clone()) {
            dashmap::Entry::Occupied(e) => Arc::clone(e.get()),
            dashmap::Entry::Vacant(v) => {
                args.check_quorum_properties(d.durable, d.exclusive, d.auto_delete, &name, &self.name)?;
                let log = match (&self.store, durable) {
                    (Some(store), true) => Some(store.queue_log(&self.name, &name, None)),
                    _ => None,
                };
                let mut q = Queue::new(
                    name.clone(),
                    self.name.clone(),
                    durable,
                    d.auto_delete,
                    owner,
                    d.arguments.clone(),
                    log,
                );
                if let Some(store) = &self.store {
                    q = q.with_paging(store.paging_dir(&self.name, &name), self.queue_memory_budget);
                }
                let q = Arc::new(q);
                v.insert(Arc::clone(&q));
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
        check_args_equivalence(&q.arguments, d.arguments, &format!("queue '{}' in vhost '{}'", name, self.name))?;
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
        connection_id: u64,
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
        connection_id: u64,
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

    pub fn queue_purge(&self, queue: &str, connection_id: u64) -> AmqpResult<u32> {
        let q = self.queue(queue)?;
        q.check_exclusive(connection_id)?;
        Ok(q.purge())
    }

    /// Deletes a queue (a missing one is fine: RabbitMQ answers delete-ok 0).
    pub fn queue_delete(&self, queue: &str, if_unused: bool, if_empty: bool, connection_id: u64) -> AmqpResult<u32> {
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
            c.outbox.push(super::consumer::OutboxItem::Cancel { channel: c.channel, consumer_tag: c.tag.clone() });
        }
        for x in self.exchanges() {
            if x.unbind_queue(q) {
                self.maybe_auto_delete_exchange(&x);
            }
        }
        count
    }

    /// Recreates a durable exchange from definitions (an existing one stays).
    pub fn restore_exchange(&self, d: &ExchangeDef) -> AmqpResult<()> {
        if self.exchanges.contains_key(&d.name) {
            return Ok(());
        }
        let kind = ExchangeKind::parse(&d.kind)
            .ok_or_else(|| AmqpError::command_invalid(format!("unknown exchange type '{}'", d.kind)))?;
        let x =
            Exchange::new(d.name.clone(), kind, d.durable, d.auto_delete, d.internal, table_from_json(&d.arguments));
        self.exchanges.insert(d.name.clone(), Arc::new(x));
        Ok(())
    }

    /// Recreates a queue from definitions with the messages its log held.
    /// After a crash every recovered message is marked redelivered: acks and
    /// delivery marks written after the last fsync may be lost.
    pub fn restore_queue(&self, d: &QueueDef, log: Option<RecoveredQueue>, clean: bool) -> AmqpResult<()> {
        if self.queues.contains_key(&d.name) {
            if let (Some(store), Some(log)) = (&self.store, log) {
                store.discard_recovered(log);
            }
            return Ok(());
        }
        let queue_log = match &self.store {
            Some(store) if d.durable => Some(store.queue_log(&self.name, &d.name, log.as_ref())),
            _ => None,
        };
        let mut q = Queue::new(
            d.name.clone(),
            self.name.clone(),
            d.durable,
            d.auto_delete,
            None,
            table_from_json(&d.arguments),
            queue_log,
        );
        if let Some(store) = &self.store {
            q = q.with_paging(store.paging_dir(&self.name, &d.name), self.queue_memory_budget);
        }
        if let Some(log) = log {
            // TTLs restart from now: the log keeps no enqueue times.
            let now = super::message::clock::now_ms();
            let ttl = q.args.message_ttl;
            q.restore(log.messages.into_iter().map(|(seq, m, delivered)| {
                let t = match (ttl, m.expiration) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                QueuedMessage {
                    seq,
                    message: Arc::new(m),
                    redelivered: delivered || !clean,
                    persisted: true,
                    expires_at: t.map(|t| now + t),
                    delivery_count: 0,
                }
            }));
        }
        self.queues.insert(d.name.clone(), Arc::new(q));
        Ok(())
    }

    pub fn restore_binding(&self, b: &BindingDef) -> AmqpResult<()> {
        let args = table_from_json(&b.arguments);
        let src = self.exchange(&b.source)?;
        let dest = if b.destination_type == "exchange" {
            self.exchange(&b.destination)?;
            Destination::Exchange(b.destination.clone())
        } else {
            Destination::Queue(self.queue(&b.destination)?)
        };
        src.bind(dest, &b.routing_key, &args);
        Ok(())
    }

    /// Adds this vhost's durable exchanges, queues and bindings.
    pub fn export(&self, d: &mut Definitions) {
        let mut exchanges = self.exchanges();
        exchanges.sort_by(|a, b| a.name.cmp(&b.name));
        let mut queues = self.queues();
        queues.sort_by(|a, b| a.name.cmp(&b.name));
        for x in &exchanges {
            if x.durable && !x.name.is_empty() && !x.name.starts_with("amq.") {
                d.exchanges.push(self.exchange_def(x));
            }
        }
        d.queues.extend(queues.iter().filter(|q| q.durable).map(|q| self.queue_def(q)));
        for x in exchanges.iter().filter(|x| x.durable) {
            for b in x.bindings() {
                if self.is_durable_binding(x, &b.destination) {
                    d.bindings.push(self.binding_def(&x.name, &b.destination, &b.routing_key, &b.arguments));
                }
            }
        }
    }

    /// Finds every queue a message published to `exchange` reaches, each
    /// once, following exchange-to-exchange bindings (cycles are cut).
    pub fn route(&self, exchange: &Arc<Exchange>, message: &Message, routing_key: &str, out: &mut Routed) {
        if exchange.name.is_empty() {
            if let Some(q) = self.queues.get(routing_key) {
                if !out.iter().any(|o| Arc::ptr_eq(o, q.value())) {
                    out.push(Arc::clone(q.value()));
                }
            }
            return;
        }
        let mut input = RouteInput::new(routing_key, &message.properties);
        let mut pending: SmallVec<[Arc<Exchange>; 2]> = SmallVec::new();
        let mut visited: SmallVec<[String; 2]> = SmallVec::new();
        pending.push(Arc::clone(exchange));
        visited.push(exchange.name.clone());
        while let Some(x) = pending.pop() {
            let mut hits = 0;
            x.route(&mut input, |d| {
                hits += 1;
                match d {
                    Destination::Queue(q) => {
                        if !out.iter().any(|o| Arc::ptr_eq(o, q)) {
                            out.push(Arc::clone(q));
                        }
                    }
                    Destination::Exchange(name) => {
                        if !visited.iter().any(|v| v == name) {
                            visited.push(name.clone());
                            if let Some(next) = self.exchanges.get(name) {
                                pending.push(Arc::clone(next.value()));
                            }
                        }
                    }
                }
            });
            // An exchange that routes nowhere hands the message to its
            // alternate exchange.
            if hits == 0 {
                if let Some(ae) = x.alternate_exchange.clone() {
                    if !visited.contains(&ae) {
                        if let Some(next) = self.exchanges.get(&ae) {
                            visited.push(ae);
                            pending.push(Arc::clone(next.value()));
                        }
                    }
                }
            }
        }
    }

    /// Dead-letters messages that left `from` (or drops them if it has no
    /// dead-letter exchange). Routing may push further messages out of
    /// target queues (their length limits); those are handled in the same
    /// loop, so there is no recursion and no queue lock is held here.
    pub fn dead_letter(&self, from: &Queue, dead: DeadLetters) {
        // In order: the first message out is the first dead-lettered.
        let mut work: std::collections::VecDeque<DeadLetterWork> = dead
            .messages
            .into_iter()
            .map(|(m, r)| {
                from.log_ack(&m);
                (
                    from.name.clone(),
                    from.args.dead_letter_exchange.clone(),
                    from.args.dead_letter_routing_key.clone(),
                    m,
                    r,
                )
            })
            .collect();
        while let Some((queue, dlx, dlrk, m, reason)) = work.pop_front() {
            let Some(dlx) = dlx else { continue };
            let Ok(x) = self.exchange(&dlx) else { continue };
            let (msg, keys, history) =
                deadletter::dead_letter_message(&m.message, &queue, reason, &dlx, dlrk.as_deref());
            let msg = Arc::new(msg);
            let mut targets = Routed::new();
            for k in &keys {
                self.route(&x, &msg, k, &mut targets);
            }
            for t in targets {
                if deadletter::is_cycle(&t.name, &history) {
                    continue;
                }
                let mut more = DeadLetters::default();
                t.enqueue(Arc::clone(&msg), None, &mut more);
                for (m, r) in more.messages {
                    t.log_ack(&m);
                    work.push_back((
                        t.name.clone(),
                        t.args.dead_letter_exchange.clone(),
                        t.args.dead_letter_routing_key.clone(),
                        m,
                        r,
                    ));
                }
            }
        }
    }

    /// The periodic sweep: expires messages at queue heads (dead-lettering
    /// them) and deletes queues unused past their `x-expires`.
    pub fn sweep(&self) {
        for q in self.queues() {
            if !q.has_timers() {
                continue;
            }
            let mut dead = DeadLetters::default();
            q.expire(&mut dead);
            if !dead.is_empty() {
                self.dead_letter(&q, dead);
            }
            if q.is_expired_unused() {
                self.remove_queue(&q);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn declare_q(v: &Vhost, name: &str) {
        v.queue_declare(QueueDeclare {
            name,
            server_named: false,
            passive: false,
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments: &FieldTable::default(),
            connection_id: 1,
        })
        .unwrap();
    }

    fn declare_x(v: &Vhost, name: &str, kind: &str) -> AmqpResult<()> {
        v.exchange_declare(ExchangeDeclare {
            name,
            kind,
            passive: false,
            durable: false,
            auto_delete: false,
            internal: false,
            arguments: &FieldTable::default(),
        })
        .map(|_| ())
    }

    fn routed(v: &Vhost, x: &str, rk: &str) -> Vec<String> {
        let msg = Message::new(
            Bytes::copy_from_slice(x.as_bytes()),
            Bytes::copy_from_slice(rk.as_bytes()),
            Bytes::from_static(&[0, 0]),
            Bytes::new(),
        );
        let mut out = Routed::new();
        v.route(&v.exchange(x).unwrap(), &msg, rk, &mut out);
        let mut names: Vec<String> = out.iter().map(|q| q.name.clone()).collect();
        names.sort();
        names
    }

    #[test]
    fn direct_fanout_topic_and_default() {
        let v = Vhost::new("/", None);
        for q in ["q1", "q2", "q3"] {
            declare_q(&v, q);
        }
        let none = FieldTable::default();
        v.queue_bind("q1", "amq.direct", "k", &none, 1).unwrap();
        v.queue_bind("q2", "amq.direct", "k", &none, 1).unwrap();
        v.queue_bind("q2", "amq.direct", "k", &none, 1).unwrap(); // twice: still one binding
        v.queue_bind("q1", "amq.fanout", "", &none, 1).unwrap();
        v.queue_bind("q3", "amq.fanout", "ignored", &none, 1).unwrap();
        v.queue_bind("q1", "amq.topic", "a.*", &none, 1).unwrap();
        v.queue_bind("q1", "amq.topic", "#", &none, 1).unwrap();
        v.queue_bind("q2", "amq.topic", "a.#.b", &none, 1).unwrap();
        assert_eq!(routed(&v, "amq.direct", "k"), ["q1", "q2"]);
        assert!(routed(&v, "amq.direct", "other").is_empty());
        assert_eq!(routed(&v, "amq.fanout", "x"), ["q1", "q3"]);
        assert_eq!(routed(&v, "amq.topic", "a.x.b"), ["q1", "q2"]);
        assert_eq!(routed(&v, "", "q3"), ["q3"]);
        assert!(routed(&v, "", "nope").is_empty());
        v.queue_unbind("q2", "amq.direct", "k", &none, 1).unwrap();
        assert_eq!(routed(&v, "amq.direct", "k"), ["q1"]);
    }

    #[test]
    fn exchange_to_exchange_with_a_cycle() {
        let v = Vhost::new("/", None);
        declare_q(&v, "q");
        declare_x(&v, "a", "fanout").unwrap();
        declare_x(&v, "b", "fanout").unwrap();
        let none = FieldTable::default();
        v.exchange_bind("b", "a", "", &none).unwrap();
        v.exchange_bind("a", "b", "", &none).unwrap();
        v.queue_bind("q", "b", "", &none, 1).unwrap();
        assert_eq!(routed(&v, "a", "x"), ["q"]);
        v.exchange_delete("b", false).unwrap();
        assert!(routed(&v, "a", "x").is_empty());
    }

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
                connection_id: 1,
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
        v.queue_bind("q", "ad", "", &FieldTable::default(), 1).unwrap();
        v.queue_delete("q", false, false, 1).unwrap();
        assert!(v.exchange("ad").is_err());
    }
}
