//! Exchanges and their bindings.
//!
//! Bindings are read on every publish and changed rarely, so each exchange
//! keeps them in an immutable `BindingTable` behind an `ArcSwap`: a publish
//! loads the current snapshot without locking; a bind or unbind copies the
//! table, changes the copy and swaps it in (writers serialise on a mutex).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use amq_protocol::types::FieldTable;
use arc_swap::ArcSwap;
use parking_lot::Mutex;

use super::headers::{headers_match, Headers};
use super::policy::{Applied, PolicySet};
use super::queue::Queue;
use super::stats::ExchangeStats;
use super::topic::TopicPattern;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeKind {
    Direct,
    Fanout,
    Topic,
    Headers,
}

impl ExchangeKind {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "direct" => ExchangeKind::Direct,
            "fanout" => ExchangeKind::Fanout,
            "topic" => ExchangeKind::Topic,
            "headers" => ExchangeKind::Headers,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
        }
    }
}

#[derive(Clone, Debug)]
pub enum Destination {
    Queue(Arc<Queue>),
    Exchange(String),
}

impl Destination {
    fn same(&self, other: &Destination) -> bool {
        match (self, other) {
            (Destination::Queue(a), Destination::Queue(b)) => Arc::ptr_eq(a, b),
            (Destination::Exchange(a), Destination::Exchange(b)) => a == b,
            _ => false,
        }
    }
}

#[derive(Debug)]
pub struct Binding {
    pub destination: Destination,
    pub routing_key: String,
    pub arguments: FieldTable,
    /// Pre-split pattern for topic exchanges.
    topic: Option<TopicPattern>,
}

impl Binding {
    fn same_as(&self, destination: &Destination, routing_key: &str, arguments: &FieldTable) -> bool {
        self.destination.same(destination) && self.routing_key == routing_key && &self.arguments == arguments
    }
}

#[derive(Default, Clone, Debug)]
struct BindingTable {
    all: Vec<Arc<Binding>>,
    /// Direct exchanges: routing key → bindings, so a publish is one lookup.
    by_key: super::FastMap<String, Vec<Arc<Binding>>>,
}

/// An exchange's settings under its policies.
#[derive(Debug, Default)]
struct ExchangePolicy {
    /// The argument's, else the policy's.
    alternate_exchange: Option<String>,
    applied: Applied,
}

#[derive(Debug)]
pub struct Exchange {
    pub name: String,
    pub kind: ExchangeKind,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
    /// The `alternate-exchange` argument, read once.
    declared_alternate_exchange: Option<String>,
    /// What the policies that match add (see `super::policy`); swapped
    /// when they change, read only by unroutable publishes.
    policy: ArcSwap<ExchangePolicy>,
    bindings: ArcSwap<BindingTable>,
    write: Mutex<()>,
    /// publish_in / publish_out (relaxed; see `stats.rs`), on their own
    /// cache line: every publisher to this exchange writes them.
    counters: ExchangeCounters,
}

#[derive(Debug, Default)]
#[repr(align(64))]
struct ExchangeCounters {
    publish_in: AtomicU64,
    publish_out: AtomicU64,
}

/// What a message offers to routing. Its headers are indexed (raw, never
/// decoded as a whole) only if a headers exchange asks for them, and then
/// only once.
pub struct RouteInput<'a> {
    pub routing_key: &'a str,
    key_words: Option<Vec<&'a str>>,
    /// The message's raw property list.
    properties: &'a [u8],
    headers: Option<Option<Headers<'a>>>,
}

impl<'a> RouteInput<'a> {
    pub fn new(routing_key: &'a str, properties: &'a [u8]) -> Self {
        RouteInput { routing_key, key_words: None, properties, headers: None }
    }

    fn words(&mut self) -> &[&'a str] {
        let rk = self.routing_key;
        self.key_words.get_or_insert_with(|| super::topic::split_words(rk).collect())
    }

    fn headers(&mut self) -> Option<&Headers<'a>> {
        let props = self.properties;
        self.headers
            .get_or_insert_with(|| crate::wire::properties::PropertyScan::new(props).headers(props).map(Headers::new))
            .as_ref()
    }
}

impl Exchange {
    pub fn new(
        name: String,
        kind: ExchangeKind,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
    ) -> Self {
        let declared_ae = arguments.inner().get("alternate-exchange").and_then(super::headers::as_text);
        Exchange {
            name,
            kind,
            durable,
            auto_delete,
            internal,
            declared_alternate_exchange: declared_ae.clone(),
            policy: ArcSwap::from_pointee(ExchangePolicy {
                alternate_exchange: declared_ae,
                applied: Applied::default(),
            }),
            arguments,
            bindings: ArcSwap::from_pointee(BindingTable::default()),
            write: Mutex::new(()),
            counters: ExchangeCounters::default(),
        }
    }

    /// `publish_in` publishes to this exchange, of which `publish_out`
    /// reached at least one queue. Connections add theirs once per batch.
    pub fn add_publishes(&self, publish_in: u64, publish_out: u64) {
        self.counters.publish_in.fetch_add(publish_in, Ordering::Relaxed);
        if publish_out != 0 {
            self.counters.publish_out.fetch_add(publish_out, Ordering::Relaxed);
        }
    }

    /// RabbitMQ's exchange `message_stats`.
    pub fn stats(&self) -> ExchangeStats {
        ExchangeStats {
            publish_in: self.counters.publish_in.load(Ordering::Relaxed),
            publish_out: self.counters.publish_out.load(Ordering::Relaxed),
        }
    }

    /// Where unroutable messages go: the `alternate-exchange` argument,
    /// else the one a policy names.
    pub fn alternate_exchange(&self) -> Option<String> {
        self.policy.load().alternate_exchange.clone()
    }

    /// The name of the policy that applies, if any.
    pub fn policy_name(&self) -> Option<String> {
        self.policy.load().applied.policy.clone()
    }

    /// The name of the operator policy that applies, if any.
    pub fn operator_policy_name(&self) -> Option<String> {
        self.policy.load().applied.operator_policy.clone()
    }

    /// The policy and operator policy definitions merged.
    pub fn effective_policy_definition(&self) -> serde_json::Map<String, serde_json::Value> {
        self.policy.load().applied.definition.clone()
    }

    /// Takes the policies of `policies` that match now. The set is read
    /// under the writers' mutex, so concurrent changes apply in order.
    pub fn apply_policies(&self, policies: &ArcSwap<PolicySet>) {
        let _w = self.write.lock();
        let applied = policies.load().for_exchange(&self.name);
        let alternate_exchange = applied.alternate_exchange(self.declared_alternate_exchange.as_ref());
        self.policy.store(Arc::new(ExchangePolicy { alternate_exchange, applied }));
    }

    /// Adds a binding; binding twice is a no-op, as in RabbitMQ. Returns
    /// whether the binding is new.
    pub fn bind(&self, destination: Destination, routing_key: &str, arguments: &FieldTable) -> bool {
        let _w = self.write.lock();
        let current = self.bindings.load();
        if current.all.iter().any(|b| b.same_as(&destination, routing_key, arguments)) {
            return false;
        }
        let topic = (self.kind == ExchangeKind::Topic).then(|| TopicPattern::new(routing_key));
        let binding =
            Arc::new(Binding { destination, routing_key: routing_key.to_owned(), arguments: arguments.clone(), topic });
        let mut next = BindingTable::clone(&current);
        if self.kind == ExchangeKind::Direct {
            next.by_key.entry(routing_key.to_owned()).or_default().push(Arc::clone(&binding));
        }
        next.all.push(binding);
        self.bindings.store(Arc::new(next));
        true
    }

    /// Removes bindings matching `keep == false`; returns how many went.
    fn remove_where(&self, remove: impl Fn(&Binding) -> bool) -> usize {
        let _w = self.write.lock();
        let current = self.bindings.load();
        let before = current.all.len();
        if !current.all.iter().any(|b| remove(b)) {
            return 0;
        }
        let mut next = BindingTable::default();
        for b in current.all.iter().filter(|b| !remove(b)) {
            if self.kind == ExchangeKind::Direct {
                next.by_key.entry(b.routing_key.clone()).or_default().push(Arc::clone(b));
            }
            next.all.push(Arc::clone(b));
        }
        let removed = before - next.all.len();
        self.bindings.store(Arc::new(next));
        removed
    }

    pub fn unbind(&self, destination: &Destination, routing_key: &str, arguments: &FieldTable) -> bool {
        self.remove_where(|b| b.same_as(destination, routing_key, arguments)) > 0
    }

    pub fn unbind_queue(&self, queue: &Arc<Queue>) -> bool {
        self.remove_where(|b| matches!(&b.destination, Destination::Queue(q) if Arc::ptr_eq(q, queue))) > 0
    }

    pub fn unbind_exchange(&self, name: &str) -> bool {
        self.remove_where(|b| matches!(&b.destination, Destination::Exchange(e) if e == name)) > 0
    }

    /// The current bindings (a snapshot).
    pub fn bindings(&self) -> Vec<Arc<Binding>> {
        self.bindings.load().all.clone()
    }

    pub fn has_bindings(&self) -> bool {
        !self.bindings.load().all.is_empty()
    }

    pub fn binding_count(&self) -> usize {
        self.bindings.load().all.len()
    }

    /// Calls `hit` for every destination the message reaches through this
    /// exchange (not following exchange-to-exchange bindings: the vhost does).
    pub fn route(&self, input: &mut RouteInput<'_>, mut hit: impl FnMut(&Destination)) {
        let table = self.bindings.load();
        match self.kind {
            ExchangeKind::Direct => {
                if let Some(bs) = table.by_key.get(input.routing_key) {
                    bs.iter().for_each(|b| hit(&b.destination));
                }
            }
            ExchangeKind::Fanout => table.all.iter().for_each(|b| hit(&b.destination)),
            ExchangeKind::Topic => {
                if table.all.is_empty() {
                    return;
                }
                let words = input.words();
                for b in table.all.iter() {
                    if b.topic.as_ref().is_some_and(|t| t.matches(words)) {
                        hit(&b.destination);
                    }
                }
            }
            ExchangeKind::Headers => {
                if table.all.is_empty() {
                    return;
                }
                let headers = input.headers();
                for b in table.all.iter() {
                    if headers_match(&b.arguments, headers) {
                        hit(&b.destination);
                    }
                }
            }
        }
    }
}
