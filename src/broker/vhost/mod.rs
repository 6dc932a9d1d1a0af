//! A virtual host: its exchanges and queues, and the operations the wire
//! front end (and later the HTTP API) performs on them. Every operation takes
//! plain Rust values and returns RabbitMQ's error on failure.
//!
//! By job: this file holds the registry (the vhost's maps and lookups);
//! `declare` declares, deletes, binds and unbinds with RabbitMQ's checks and
//! errors; `route` finds where a message goes and dead-letters; `definitions`
//! restores from and exports to the definitions format; `names` generates
//! server names and prints values as RabbitMQ's error texts do. basic.publish's
//! rules are in `super::publish`.

mod declare;
mod definitions;
mod names;
mod policies;
mod route;
mod settle;

#[cfg(test)]
mod expiry_tests;

use crate::broker::stats::{MessageCounts, MessageStats};
use std::sync::Arc;

use amq_protocol::types::FieldTable;
use arc_swap::ArcSwap;
use dashmap::DashMap;
use smallvec::SmallVec;

use super::error::{AmqpError, AmqpResult};
use super::exchange::{Exchange, ExchangeKind};
use super::policy::PolicySet;
use super::queue::Queue;
use super::timers::Timers;
use crate::clock::Clock;
use crate::store::definitions::VhostDef;
use crate::store::{DefChange, Store};

pub use declare::{ExchangeDeclare, QueueDeclare, QueueDeclareOk};
pub use names::{amqp_type_name, amqp_value_text, generated_name};

pub type Routed = SmallVec<[Arc<Queue>; 4]>;

#[derive(Debug)]
pub struct Vhost {
    pub name: String,
    /// As defined (description, tags, metadata such as default_queue_type);
    /// the management API may change it while the vhost runs.
    def: parking_lot::RwLock<VhostDef>,
    /// Its max-connections / max-queues, parsed once when set; `def.limits`
    /// is their JSON for the store and exports.
    limits: parking_lot::RwLock<crate::broker::limits::Limits>,
    exchanges: DashMap<String, Arc<Exchange>, super::FastHash>,
    queues: DashMap<String, Arc<Queue>, super::FastHash>,
    /// Where durable queues keep their logs and durable definitions are
    /// recorded; `None` in memory.
    store: Option<Arc<Store>>,
    /// What TTLs, x-expires and x-death times read (the broker's).
    clock: Clock,
    /// The queues' next deadlines (head expiry, x-expires).
    timers: Arc<Timers>,
    /// Message bytes each of its queues keeps in RAM before paging newer
    /// ones to the store's page files.
    queue_memory_budget: u64,
    /// Policies and operator policies (`super::policy`): read when a queue
    /// or exchange is made, and under each one's own lock when they change.
    policies: ArcSwap<PolicySet>,
    /// Serialises policy changes (load, change, store, re-apply).
    policy_write: parking_lot::Mutex<()>,
    /// This vhost's message totals, added to by its connections once per batch.
    stats: MessageStats,
    /// Where streams go without a store (`--in-memory`): the broker's.
    temp_streams: Arc<super::stream::TempStreams>,
}

impl Vhost {
    /// Adds a connection's counts of one batch (see `stats.rs`).
    pub fn add_message_counts(&self, c: &MessageCounts) {
        self.stats.add(c);
    }

    /// This vhost's message totals (RabbitMQ's per-vhost `message_stats`).
    pub fn message_stats(&self) -> MessageCounts {
        self.stats.snapshot()
    }

    /// A vhost on the process clock (for tests and tools).
    pub fn new(name: &str, store: Option<Arc<Store>>) -> Self {
        Self::with_def(VhostDef::named(name), store, Clock::real(), Arc::default())
    }

    /// Sets the RAM budget of the queues it will hold (`Config::queue_memory_budget`).
    pub fn with_queue_memory_budget(mut self, bytes: u64) -> Self {
        self.queue_memory_budget = bytes;
        self
    }

    /// Shares the broker's temporary stream store (in-memory mode).
    pub fn with_temp_streams(mut self, t: Arc<super::stream::TempStreams>) -> Self {
        self.temp_streams = t;
        self
    }

    /// The store a stream's log goes to: the data directory's, or the
    /// in-memory mode's temporary one.
    fn stream_store(&self) -> AmqpResult<Arc<Store>> {
        match &self.store {
            Some(s) => Ok(Arc::clone(s)),
            None => self.temp_streams.store().map_err(|e| {
                tracing::error!("cannot make a directory for streams: {e}");
                AmqpError::new(super::error::ReplyCode::InternalError, format!("cannot store streams: {e}"))
            }),
        }
    }

    /// The log of stream `name` (`arguments` already validated), its
    /// retention applied now.
    fn make_stream(&self, name: &str, arguments: &FieldTable) -> AmqpResult<super::stream::StreamState> {
        let args = super::args::StreamArgs::parse(arguments, name, &self.name)?;
        let store = self.stream_store()?;
        let segment =
            args.max_segment_size.filter(|n| *n > 0).unwrap_or(crate::store::stream_log::DEFAULT_SEGMENT_SIZE);
        let stream = super::stream::StreamState::new(store.stream(&self.name, name, segment), args);
        let retention = stream.retention();
        if retention.max_bytes.is_some() || retention.max_age_ms.is_some() {
            stream.handle.apply_retention(retention, self.clock.unix_millis() as i64);
        }
        Ok(stream)
    }

    /// `wake` is the broker's: woken when a queue registers a deadline
    /// earlier than any other of this vhost.
    pub fn with_def(def: VhostDef, store: Option<Arc<Store>>, clock: Clock, wake: Arc<tokio::sync::Notify>) -> Self {
        // A definitions file was validated on import (`Broker::add_vhost_def`);
        // a journal holds only limits that were valid when set.
        let limits = def
            .limits
            .as_ref()
            .and_then(|l| crate::broker::limits::Limits::from_json(l, crate::broker::limits::VHOST_LIMITS).ok())
            .unwrap_or_default();
        let v = Vhost {
            name: def.name.clone(),
            def: parking_lot::RwLock::new(def),
            limits: parking_lot::RwLock::new(limits),
            exchanges: DashMap::default(),
            queues: DashMap::default(),
            store,
            clock,
            timers: Arc::new(Timers::new(wake)),
            queue_memory_budget: u64::MAX,
            policies: ArcSwap::default(),
            policy_write: parking_lot::Mutex::new(()),
            stats: MessageStats::default(),
            temp_streams: Arc::default(),
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

    fn no_exchange(&self, name: &str) -> AmqpError {
        AmqpError::not_found(format!("no exchange '{}' in vhost '{}'", name, self.name))
    }

    fn no_queue(&self, name: &str) -> AmqpError {
        AmqpError::not_found(format!("no queue '{}' in vhost '{}'", name, self.name))
    }

    /// Its definition: description, tags, default queue type.
    pub fn def(&self) -> VhostDef {
        self.def.read().clone()
    }

    /// Replaces its description, tags and metadata (the name stays).
    pub fn set_def(&self, def: VhostDef) {
        let mut d = self.def.write();
        // Limits have their own API (`set_limits`), as in RabbitMQ.
        let limits = d.limits.take();
        *d = VhostDef { name: self.name.clone(), limits, ..def };
    }

    pub fn limits(&self) -> crate::broker::limits::Limits {
        *self.limits.read()
    }

    /// Replaces its limits; the caller records `def()` with the store.
    pub fn set_limits(&self, limits: crate::broker::limits::Limits) {
        let mut d = self.def.write();
        d.limits = (!limits.is_empty()).then(|| limits.to_json());
        *self.limits.write() = limits;
    }

    /// How many queues it has (the max-queues check).
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// The clock this vhost's queues read.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Puts a new queue in its `Arc`, registered with this vhost's timers.
    /// The caller inserts it and then calls `Queue::arm`.
    fn wrap_queue(&self, q: Queue) -> Arc<Queue> {
        Arc::new_cyclic(|me| q.with_timers(Arc::clone(&self.timers), me.clone()))
    }

    /// The earliest deadline of any queue (on the clock's `millis` scale).
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.next()
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
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use crate::ids::ConnectionId;
    use crate::message::Message;
    use bytes::Bytes;

    pub(crate) fn declare_q(v: &Vhost, name: &str) {
        declare_q_with(v, name, &FieldTable::default());
    }

    /// A plain (non-durable, non-exclusive) queue with `arguments`.
    pub(crate) fn declare_q_with(v: &Vhost, name: &str, arguments: &FieldTable) {
        v.queue_declare(QueueDeclare {
            name,
            server_named: false,
            passive: false,
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments,
            connection_id: ConnectionId(1),
        })
        .unwrap();
    }

    pub(crate) fn declare_x(v: &Vhost, name: &str, kind: &str) -> AmqpResult<()> {
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

    pub(crate) fn routed(v: &Vhost, x: &str, rk: &str) -> Vec<String> {
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
}
