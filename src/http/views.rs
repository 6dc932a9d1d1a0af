//! Broker objects as RabbitMQ's management API renders them: the same field
//! names and types, so clients that read them (rabbitmqadmin, the UI, test
//! helpers) need no change.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::paging::Listed;
use super::rates::Key;
use super::Api;
use crate::broker::exchange::{Binding, Destination, Exchange};
use crate::broker::queue::{ConsumerInfo, Queue};
use crate::broker::{ChannelInfo, ConnectionInfo, User, Vhost};
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

impl Listed for ConnectionInfo {
    fn vhost(&self) -> &str {
        &self.vhost
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Listed for ChannelInfo {
    fn vhost(&self) -> &str {
        &self.vhost
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
    } else if q.is_stream() {
        "stream"
    } else {
        "classic"
    }
}

/// `{"name": n, "name_details": {"rate": r}}` pairs, RabbitMQ's
/// `message_stats` shape, from counters and their rates.
fn message_stats(fields: &[(&str, u64, f64)]) -> Value {
    let mut m = Map::new();
    for (name, count, r) in fields {
        m.insert((*name).to_owned(), json!(count));
        m.insert(format!("{name}_details"), rate(*r));
    }
    Value::Object(m)
}

pub(crate) fn queue_message_stats(api: &Api, q: &Queue) -> (Value, f64) {
    use super::rates::queue::*;
    let c = super::rates::queue_counts(q);
    let r = api.rates.of(&Key::Queue(q.vhost.clone(), q.name.clone()));
    let stats = message_stats(&[
        ("publish", c[PUBLISH], r[PUBLISH]),
        ("deliver", c[DELIVER], r[DELIVER]),
        ("deliver_no_ack", c[DELIVER_NO_ACK], r[DELIVER_NO_ACK]),
        ("get", c[GET], r[GET]),
        ("get_no_ack", c[GET_NO_ACK], r[GET_NO_ACK]),
        (
            "deliver_get",
            c[DELIVER] + c[DELIVER_NO_ACK] + c[GET] + c[GET_NO_ACK],
            r[DELIVER] + r[DELIVER_NO_ACK] + r[GET] + r[GET_NO_ACK],
        ),
        ("ack", c[ACK], r[ACK]),
        ("redeliver", c[REDELIVER], r[REDELIVER]),
    ]);
    (stats, r[MESSAGES])
}

/// The consumer that gets the messages of a single-active-consumer queue.
fn single_active_consumer_tag(q: &Queue) -> Option<String> {
    if !q.effective_args().single_active_consumer {
        return None;
    }
    q.consumer_details().into_iter().find(|c| c.active).map(|c| c.consumer_tag)
}

pub(crate) fn queue(api: &Api, q: &Queue) -> Value {
    let s = q.stats();
    let (stats, depth_rate) = queue_message_stats(api, q);
    let unacked = s.messages_unacknowledged as u64;
    json!({
        "name": q.name,
        "vhost": q.vhost,
        "durable": q.durable,
        "auto_delete": q.auto_delete,
        "exclusive": q.exclusive_owner.is_some(),
        "arguments": table_to_json(&q.arguments),
        "node": &*api.node,
        "type": queue_type(q),
        "state": "running",
        "consumers": q.consumer_count(),
        "messages": s.messages_ready + unacked,
        "messages_details": rate(depth_rate),
        "messages_ready": s.messages_ready,
        "messages_ready_details": rate(0.0),
        "messages_unacknowledged": unacked,
        "messages_unacknowledged_details": rate(0.0),
        "message_bytes": s.message_bytes,
        "message_bytes_ready": s.message_bytes_ready,
        "message_bytes_unacknowledged": s.message_bytes_unacknowledged,
        "policy": q.policy_name(),
        "operator_policy": q.operator_policy_name(),
        "effective_policy_definition": q.effective_policy_definition(),
        "exclusive_consumer_tag": Value::Null,
        "single_active_consumer_tag": single_active_consumer_tag(q),
        "recoverable_slaves": Value::Null,
        "message_stats": stats,
    })
}

pub(crate) fn exchange(api: &Api, vhost: &str, x: &Exchange) -> Value {
    let s = x.stats();
    let r = api.rates.of(&Key::Exchange(vhost.to_owned(), x.name.clone()));
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
        "message_stats": message_stats(&[("publish_in", s.publish_in, r[0]), ("publish_out", s.publish_out, r[1])]),
    })
}

/// The `message_stats` of a vhost or of the whole broker.
pub(crate) fn totals_message_stats(counts: &[u64; super::rates::N], r: &[f64; super::rates::N]) -> Value {
    use super::rates::totals::*;
    message_stats(&[
        ("publish", counts[RECEIVED], r[RECEIVED]),
        ("confirm", counts[CONFIRMED], r[CONFIRMED]),
        ("deliver_get", counts[DELIVERED], r[DELIVERED]),
        ("ack", counts[ACKNOWLEDGED], r[ACKNOWLEDGED]),
        ("drop_unroutable", counts[DROPPED], r[DROPPED]),
        ("return_unroutable", counts[RETURNED], r[RETURNED]),
    ])
}

fn client_properties(c: &ConnectionInfo) -> Value {
    Value::Object(table_to_json(&c.client_properties))
}

pub(crate) fn connection(api: &Api, c: &ConnectionInfo) -> Value {
    let r = api.rates.of(&Key::Connection(c.id));
    json!({
        "name": c.name,
        "node": &*api.node,
        "type": "network",
        "protocol": "AMQP 0-9-1",
        "state": c.state.as_str(),
        "user": c.user,
        "vhost": c.vhost,
        "user_who_performed_action": c.user,
        "user_provided_name": c.user_provided_name,
        "client_properties": client_properties(c),
        "connected_at": c.connected_at,
        "host": c.local.ip().to_string(),
        "port": c.local.port(),
        "peer_host": c.peer.ip().to_string(),
        "peer_port": c.peer.port(),
        "auth_mechanism": c.auth_mechanism,
        "channels": c.channels,
        "channel_max": c.channel_max,
        "frame_max": c.frame_max,
        "timeout": c.heartbeat,
        "recv_oct": c.recv_oct,
        "recv_oct_details": rate(r[0]),
        "send_oct": c.send_oct,
        "send_oct_details": rate(r[1]),
        "recv_cnt": c.recv_cnt,
        "send_cnt": c.send_cnt,
        "send_pend": 0,
        "ssl": c.tls.is_some(),
        "ssl_protocol": c.tls.as_ref().map(|t| t.protocol.as_str()),
        "ssl_key_exchange": c.tls.as_ref().map(|t| cipher_parts(&t.cipher).0),
        "ssl_cipher": c.tls.as_ref().map(|t| cipher_parts(&t.cipher).1),
        "ssl_hash": c.tls.as_ref().map(|t| cipher_parts(&t.cipher).2),
        "peer_cert_subject": c.tls.as_ref().and_then(|t| t.peer_cert_subject.as_deref()),
        "peer_cert_issuer": c.tls.as_ref().and_then(|t| t.peer_cert_issuer.as_deref()),
        "peer_cert_validity": Value::Null,
    })
}

/// A cipher suite's IANA name as RabbitMQ's three fields:
/// `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256` is key exchange `ecdhe_rsa`,
/// cipher `aes_128_gcm`, hash `sha256`; TLS 1.3 suites have key exchange
/// `any`.
fn cipher_parts(iana: &str) -> (String, String, String) {
    let lower = iana.to_ascii_lowercase();
    let (kx, rest) = match lower.strip_prefix("tls13_") {
        Some(rest) => ("any".to_owned(), rest.to_owned()),
        None => {
            let body = lower.strip_prefix("tls_").unwrap_or(&lower);
            match body.split_once("_with_") {
                Some((kx, rest)) => (kx.to_owned(), rest.to_owned()),
                None => (String::new(), body.to_owned()),
            }
        }
    };
    match rest.rsplit_once('_') {
        Some((cipher, hash)) if hash.starts_with("sha") => (kx, cipher.to_owned(), hash.to_owned()),
        _ => (kx, rest, String::new()),
    }
}

pub(crate) fn channel(api: &Api, ch: &ChannelInfo, peer: Option<&ConnectionInfo>) -> Value {
    json!({
        "name": ch.name,
        "node": &*api.node,
        "number": ch.number,
        "user": ch.user,
        "user_who_performed_action": ch.user,
        "vhost": ch.vhost,
        "state": ch.state,
        "connection_details": {
            "name": ch.connection_name,
            "peer_host": peer.map(|c| c.peer.ip().to_string()),
            "peer_port": peer.map(|c| c.peer.port()),
        },
        "consumer_count": ch.consumer_count,
        "messages_unacknowledged": ch.messages_unacknowledged,
        "messages_unconfirmed": ch.messages_unconfirmed,
        "messages_uncommitted": 0,
        "acks_uncommitted": 0,
        "pending_raft_commands": 0,
        "prefetch_count": ch.prefetch_count,
        "global_prefetch_count": ch.global_prefetch_count,
        "confirm": ch.confirm,
        "transactional": ch.transactional,
    })
}

/// A consumer as `/api/consumers` and a queue's `consumer_details` show it.
pub(crate) fn consumer(api: &Api, q: &Queue, c: &ConsumerInfo, conn: Option<&ConnectionInfo>) -> Value {
    let connection_name = conn.map(|c| c.name.clone()).unwrap_or_default();
    json!({
        "consumer_tag": c.consumer_tag,
        "queue": { "name": q.name, "vhost": q.vhost },
        "ack_required": c.ack_required,
        "prefetch_count": c.prefetch_count,
        "exclusive": c.exclusive,
        "active": c.active,
        "activity_status": if c.active { "up" } else { "waiting" },
        "arguments": table_to_json(&c.arguments),
        "consumer_timeout": Value::Null,
        "priority": c.priority,
        "channel_details": {
            "name": format!("{connection_name} ({})", c.channel.0),
            "number": c.channel.0,
            "connection_name": connection_name,
            "node": &*api.node,
            "peer_host": conn.map(|c| c.peer.ip().to_string()),
            "peer_port": conn.map(|c| c.peer.port()),
            "user": conn.map(|c| c.user.clone()),
        },
    })
}

/// Percent-encodes all but RFC 3986's unreserved characters, as RabbitMQ
/// builds a binding's `properties_key` (`wire::percent::decode` undoes it).
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

/// A user as `/api/users` shows it, with its limits.
pub(crate) fn user_with_limits(api: &Api, u: &User) -> Value {
    let mut v = user(u);
    v["limits"] = api.broker.user_limits(&u.name).to_json();
    v
}

pub(crate) fn vhost(api: &Api, v: &Vhost) -> Value {
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
    let (mut ready, mut unacked) = (0u64, 0u64);
    for q in v.queues() {
        let s = q.stats();
        ready += s.messages_ready;
        unacked += s.messages_unacknowledged as u64;
    }
    let counts = super::rates::totals_counts(&v.message_stats());
    let r = api.rates.of(&Key::Vhost(v.name.clone()));
    let (mut recv, mut send) = (0u64, 0u64);
    for c in api.broker.connections().iter().filter(|c| c.vhost == v.name) {
        recv += c.recv_oct;
        send += c.send_oct;
    }
    json!({
        "name": v.name,
        "description": description,
        "tags": tags,
        "default_queue_type": def.default_queue_type().unwrap_or("undefined"),
        "metadata": { "description": description, "tags": tags },
        "tracing": false,
        "cluster_state": { &*api.node: "running" },
        "messages": ready + unacked,
        "messages_details": rate(0.0),
        "messages_ready": ready,
        "messages_ready_details": rate(0.0),
        "messages_unacknowledged": unacked,
        "messages_unacknowledged_details": rate(0.0),
        "message_stats": totals_message_stats(&counts, &r),
        "recv_oct": recv,
        "recv_oct_details": rate(0.0),
        "send_oct": send,
        "send_oct_details": rate(0.0),
    })
}

pub(crate) fn permission(p: &PermissionDef) -> Value {
    json!({ "user": p.user, "vhost": p.vhost, "configure": p.configure, "write": p.write, "read": p.read })
}

pub(crate) fn topic_permission(t: &TopicPermissionDef) -> Value {
    json!({ "user": t.user, "vhost": t.vhost, "exchange": t.exchange, "write": t.write, "read": t.read })
}
