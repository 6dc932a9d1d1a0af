//! The vhost in RabbitMQ's definitions format: what a definitions file or
//! the store's snapshot restores, and what export writes.

use std::sync::Arc;

use amq_protocol::types::FieldTable;

use super::Vhost;
use crate::broker::args::QueueArgs;
use crate::broker::error::{AmqpError, AmqpResult};
use crate::broker::exchange::{Destination, Exchange, ExchangeKind};
use crate::broker::queue::{NewQueue, Queue};
use crate::message::QueuedMessage;
use crate::store::definitions::{table_from_json, table_to_json, BindingDef, Definitions, ExchangeDef, QueueDef};
use crate::store::RecoveredQueue;

impl Vhost {
    pub(super) fn exchange_def(&self, x: &Exchange) -> ExchangeDef {
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

    pub(super) fn queue_def(&self, q: &Queue) -> QueueDef {
        QueueDef {
            name: q.name.clone(),
            vhost: self.name.clone(),
            durable: q.durable,
            auto_delete: q.auto_delete,
            arguments: table_to_json(&q.arguments),
        }
    }

    pub(super) fn binding_def(
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
    pub(super) fn is_durable_binding(&self, source: &Exchange, destination: &Destination) -> bool {
        source.durable
            && match destination {
                Destination::Queue(q) => q.durable,
                Destination::Exchange(e) => self.exchanges.get(e).is_some_and(|e| e.durable),
            }
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
        x.apply_policies(&self.policies);
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
        let arguments = table_from_json(&d.arguments);
        let is_stream = QueueArgs::parse(&arguments, &d.name, &self.name)
            .is_ok_and(|a| a.queue_type == crate::broker::args::QueueType::Stream);
        let stream = if is_stream { Some(self.make_stream(&d.name, &arguments)?) } else { None };
        let queue_log = match &self.store {
            Some(store) if d.durable && !is_stream => Some(store.queue_log(&self.name, &d.name, log.as_ref())),
            _ => None,
        };
        let mut q = Queue::new(NewQueue {
            name: d.name.clone(),
            vhost: self.name.clone(),
            durable: d.durable,
            auto_delete: d.auto_delete,
            exclusive_owner: None,
            arguments,
            log: queue_log,
            clock: self.clock.clone(),
        });
        match (stream, &self.store) {
            (Some(stream), _) => q = q.with_stream(stream),
            (None, Some(store)) => q = q.with_paging(store.paging_dir(&self.name, &d.name), self.queue_memory_budget),
            (None, None) => {}
        }
        // Policies first: the TTL of restored messages is the one in force.
        q.apply_policies(&self.policies);
        if let Some(log) = log {
            // TTLs restart from now: the log keeps no enqueue times.
            let now = self.clock.millis();
            let ttl = q.effective_args().message_ttl;
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
        let q = self.wrap_queue(q);
        self.queues.insert(d.name.clone(), Arc::clone(&q));
        q.arm();
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

    /// Adds this vhost's durable exchanges, queues and bindings (what the
    /// store keeps across a restart).
    pub fn export(&self, d: &mut Definitions) {
        self.export_where(d, true)
    }

    /// As `export`, with transient objects too (not exclusive queues): what
    /// RabbitMQ's definitions export holds.
    pub fn export_all(&self, d: &mut Definitions) {
        self.export_where(d, false)
    }

    fn export_where(&self, d: &mut Definitions, durable_only: bool) {
        let mut exchanges = self.exchanges();
        exchanges.sort_by(|a, b| a.name.cmp(&b.name));
        let mut queues = self.queues();
        queues.sort_by(|a, b| a.name.cmp(&b.name));
        for x in &exchanges {
            if (x.durable || !durable_only) && !x.name.is_empty() && !x.name.starts_with("amq.") {
                d.exchanges.push(self.exchange_def(x));
            }
        }
        let kept = |q: &Queue| if durable_only { q.durable } else { q.exclusive_owner.is_none() };
        d.queues.extend(queues.iter().filter(|q| kept(q)).map(|q| self.queue_def(q)));
        for x in exchanges.iter().filter(|x| x.durable || !durable_only) {
            for b in x.bindings() {
                let wanted = if durable_only {
                    self.is_durable_binding(x, &b.destination)
                } else {
                    !matches!(&b.destination, Destination::Queue(q) if q.exclusive_owner.is_some())
                };
                if wanted {
                    d.bindings.push(self.binding_def(&x.name, &b.destination, &b.routing_key, &b.arguments));
                }
            }
        }
    }
}
