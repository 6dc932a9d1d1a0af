//! Broker objects as RabbitMQ's management API renders them: the same field
//! names and types, so clients that read them (rabbitmqadmin, the UI, test
//! helpers) need no change.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::paging::Listed;
use crate::broker::exchange::{Binding, Destination, Exchange};
use crate::broker::queue::Queue;
use crate::broker::{User, Vhost};
use crate::store::definitions::{table_to_json, PermissionDef, TopicPermissionDef};

/// A queue or exchange with the vhost it lives in (the objects themselves
/// name their vhost only as a string, or not at all).
pub(crate) struct InVhost<T> {
    pub(crate) vhost: Arc<Vhost>,
    pub(crate) item: Arc<T>,
}

impl Listed for InVhost<Queue> {
    fn vhost(&self) -> &str {
        &self.vhost.name
    }
    fn name(&self) -> &str {
        &self.item.name
    }
}

impl Listed for InVhost<Exchange> {
    fn vhost(&self) -> &str {
        &self.vhost.name
    }
    fn name(&self) -> &str {
        &self.item.name
    }
}

impl Listed for Arc<Vhost> {
    fn vhost(&self) -> &str {
        &self.name
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Listed for User {
    fn vhost(&self) -> &str {
        ""
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// Lists that are neither sorted by name nor named (bindings, permissions)
/// use the rendered JSON as their key.
pub(crate) struct Rendered(pub(crate) Value, String);

impl Rendered {
    pub(crate) fn new(v: Value) -> Self {
        let key = v.get("name").or_else(|| v.get("user")).and_then(Value::as_str).unwrap_or_default().to_owned();
        Rendered(v, key)
    }
}

impl Listed for Rendered {
    fn vhost(&self) -> &str {
        self.0.get("vhost").and_then(Value::as_str).unwrap_or_default()
    }
    fn name(&self) -> &str {
        &self.1
    }
}

/// `{"rate": r}`, RabbitMQ's `*_details`.
pub(crate) fn rate(r: f64) -> Value {
    json!({ "rate": (r * 10.0).round() / 10.0 })
}

pub(crate) fn queue_type(q: &Queue) -> &'static str {
    if q.is_quorum() {
        "quorum"
    } else {
        "classic"
    }
}

pub(crate) fn queue(node: &str, q: &Queue) -> Value {
    let ready = q.message_count() as u64;
    json!({
        "name": q.name,
        "vhost": q.vhost,
        "durable": q.durable,
        "auto_delete": q.auto_delete,
        "exclusive": q.exclusive_owner.is_some(),
        "arguments": table_to_json(&q.arguments),
        "node": node,
        "type": queue_type(q),
        "state": "running",
        "consumers": q.consumer_count(),
        "messages": ready,
        "messages_details": rate(0.0),
        "messages_ready": ready,
        "messages_ready_details": rate(0.0),
        "messages_unacknowledged": 0,
        "messages_unacknowledged_details": rate(0.0),
        "policy": q.policy_name(),
        "operator_policy": q.operator_policy_name(),
        "effective_policy_definition": q.effective_policy_definition(),
        "exclusive_consumer_tag": Value::Null,
        "single_active_consumer_tag": Value::Null,
        "recoverable_slaves": Value::Null,
        "message_stats": {},
    })
}

pub(crate) fn exchange(vhost: &str, x: &Exchange) -> Value {
    json!({
        "name": x.name,
        "vhost": vhost,
        "type": x.kind.as_str(),
        "durable": x.durable,
        "auto_delete": x.auto_delete,
        "internal": x.internal,
        "arguments": table_to_json(&x.arguments),
        "user_who_performed_action": "rmq-internal",
        "policy": x.policy_name(),
        "message_stats": {},
    })
}

/// Percent-encodes all but RFC 3986's unreserved characters, as RabbitMQ
/// builds a binding's `properties_key`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Undoes `quote` (and any other percent-encoding).
pub(crate) fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How a binding is named in a URL: the routing key alone (`~` when empty)
/// when it has no arguments, else `KEY~HASH` of the arguments. RabbitMQ's
/// hash is Erlang's `phash2`; ours differs, but a client only ever passes
/// back a key it read from a listing.
pub(crate) fn properties_key(routing_key: &str, arguments: &Map<String, Value>) -> String {
    if arguments.is_empty() {
        return if routing_key.is_empty() { "~".into() } else { quote(routing_key) };
    }
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    Value::Object(arguments.clone()).to_string().hash(&mut h);
    let hash = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, h.finish().to_be_bytes());
    format!("{}~{hash}", quote(routing_key))
}

pub(crate) fn binding(vhost: &str, source: &str, b: &Binding) -> Value {
    let (destination, destination_type) = match &b.destination {
        Destination::Queue(q) => (q.name.as_str(), "queue"),
        Destination::Exchange(x) => (x.as_str(), "exchange"),
    };
    let arguments = table_to_json(&b.arguments);
    json!({
        "source": source,
        "vhost": vhost,
        "destination": destination,
        "destination_type": destination_type,
        "routing_key": b.routing_key,
        "properties_key": properties_key(&b.routing_key, &arguments),
        "arguments": arguments,
    })
}

/// The implicit binding of a queue to the default exchange, which RabbitMQ
/// lists first among a queue's bindings.
pub(crate) fn default_binding(vhost: &str, queue: &str) -> Value {
    json!({
        "source": "",
        "vhost": vhost,
        "destination": queue,
        "destination_type": "queue",
        "routing_key": queue,
        "properties_key": quote(queue),
        "arguments": {},
    })
}

/// Every binding of a vhost, default-exchange ones included, in RabbitMQ's
/// order: by source, then destination.
pub(crate) fn vhost_bindings(v: &Vhost) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut queues = v.queues();
    queues.sort_by(|a, b| a.name.cmp(&b.name));
    out.extend(queues.iter().map(|q| default_binding(&v.name, &q.name)));
    let mut exchanges = v.exchanges();
    exchanges.sort_by(|a, b| a.name.cmp(&b.name));
    for x in exchanges.iter().filter(|x| !x.name.is_empty()) {
        let mut bs: Vec<Value> = x.bindings().iter().map(|b| binding(&v.name, &x.name, b)).collect();
        bs.sort_by(|a, b| {
            (a["destination"].as_str(), a["routing_key"].as_str())
                .cmp(&(b["destination"].as_str(), b["routing_key"].as_str()))
        });
        out.extend(bs);
    }
    out
}

pub(crate) fn tags(u: &User) -> Value {
    json!(u.tags)
}

pub(crate) fn user(u: &User) -> Value {
    let def = u.to_def();
    json!({
        "name": u.name,
        "password_hash": def.password_hash,
        "hashing_algorithm": def.hashing_algorithm,
        "tags": tags(u),
        "limits": {},
    })
}

pub(crate) fn vhost(node: &str, v: &Vhost) -> Value {
    let def = v.def();
    let description = def
        .description
        .clone()
        .or_else(|| def.metadata.as_ref()?.get("description")?.as_str().map(str::to_owned))
        .unwrap_or_default();
    let tags = def
        .tags
        .clone()
        .or_else(|| def.metadata.as_ref()?.get("tags").cloned())
        .map(|t| match t {
            Value::String(s) => json!(s.split(',').map(str::trim).filter(|t| !t.is_empty()).collect::<Vec<_>>()),
            other => other,
        })
        .unwrap_or_else(|| json!([]));
    let queues = v.queues();
    let ready: u64 = queues.iter().map(|q| q.message_count() as u64).sum();
    json!({
        "name": v.name,
        "description": description,
        "tags": tags,
        "default_queue_type": def.default_queue_type().unwrap_or("undefined"),
        "metadata": { "description": description, "tags": tags },
        "tracing": false,
        "cluster_state": { node: "running" },
        "messages": ready,
        "messages_details": rate(0.0),
        "messages_ready": ready,
        "messages_ready_details": rate(0.0),
        "messages_unacknowledged": 0,
        "messages_unacknowledged_details": rate(0.0),
    })
}

pub(crate) fn permission(p: &PermissionDef) -> Value {
    json!({ "user": p.user, "vhost": p.vhost, "configure": p.configure, "write": p.write, "read": p.read })
}

pub(crate) fn topic_permission(t: &TopicPermissionDef) -> Value {
    json!({ "user": t.user, "vhost": t.vhost, "exchange": t.exchange, "write": t.write, "read": t.read })
}
