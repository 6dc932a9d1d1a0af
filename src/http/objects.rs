//! Exchanges, queues and bindings (`/api/exchanges`, `/api/queues`,
//! `/api/bindings`), with publish, get, purge and Warren's browse.
//!
//! Every change goes through the operation the AMQP front end uses, with
//! the caller's configure/write/read permissions checked as they are for a
//! channel, as RabbitMQ's API runs each call over an AMQP channel of the
//! caller's.

use std::sync::Arc;

use amq_protocol::protocol::basic::{gen_properties, AMQPProperties};
use amq_protocol::types::{FieldTable, ShortString};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::auth::Caller;
use super::paging::ListQuery;
use super::views::{self, InVhost, Rendered};
use super::{created, Api, ApiError, ApiResult, Body};
use crate::broker::exchange::Exchange;
use crate::broker::permissions::Resource;
use crate::broker::publish::{Publish, Sink};
use crate::broker::queue::{DeadLetters, Queue, Settle, Unsettled};
use crate::broker::vhost::{ExchangeDeclare, QueueDeclare};
use crate::broker::MessageCounts;
use crate::broker::{Access, Vhost};
use crate::ids::ConnectionId;
use crate::message::QueuedMessage;
use crate::store::definitions::{table_from_json, table_to_json};
use crate::store::TicketRange;
use crate::wire::percent;

/// The connection id of API calls: no AMQP connection has it (theirs start
/// at 1), so the API never owns an exclusive queue.
const API_CONNECTION: ConnectionId = ConnectionId(0);

/// The most messages one get or browse returns.
const MAX_MESSAGES: usize = 10_000;

/// The default exchange is `amq.default` in URLs.
fn exchange_name(path: &str) -> &str {
    if path == "amq.default" {
        ""
    } else {
        path
    }
}

fn visible_vhosts(api: &Api, caller: &Caller) -> Vec<Arc<Vhost>> {
    api.broker.vhosts().into_iter().filter(|v| caller.can_see(api, &v.name)).collect()
}

/// The vhost of a path that the caller may see, else 404 (as RabbitMQ
/// hides what a user has no permissions in).
fn seen_vhost(api: &Api, caller: &Caller, name: &str) -> ApiResult<Arc<Vhost>> {
    let v = api.vhost(name)?;
    if !caller.can_see(api, name) {
        return Err(ApiError::not_found());
    }
    Ok(v)
}

/// What the caller may do in the vhost, as one channel would check it.
fn access(api: &Api, caller: &Caller, v: &Vhost) -> ApiResult<Access> {
    if !api.broker.can_access_vhost(&caller.user.name, &v.name) {
        return Err(ApiError::not_authorized("Access refused."));
    }
    Ok(api.broker.access(&caller.user.name, &v.name))
}

// ------------------------------------------------------------- exchanges

fn exchanges_of(vhosts: Vec<Arc<Vhost>>) -> Vec<InVhost<Exchange>> {
    vhosts
        .into_iter()
        .flat_map(|v| v.exchanges().into_iter().map(move |x| InVhost { vhost: Arc::clone(&v), item: x }))
        .collect()
}

pub(crate) async fn exchanges(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let list = exchanges_of(visible_vhosts(&api, &caller));
    Ok(Json(q.answer(list, |x| views::exchange(&api, &x.vhost.name, &x.item))?))
}

pub(crate) async fn exchanges_in(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let v = seen_vhost(&api, &caller, &vhost)?;
    Ok(Json(q.answer(exchanges_of(vec![v]), |x| views::exchange(&api, &x.vhost.name, &x.item))?))
}

pub(crate) async fn exchange(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let v = seen_vhost(&api, &caller, &vhost)?;
    let x = v.exchange(exchange_name(&name))?;
    let mut body = views::exchange(&api, &v.name, &x);
    body["incoming"] = json!([]);
    body["outgoing"] = json!([]);
    Ok(Json(body))
}

#[derive(Deserialize)]
pub(crate) struct ExchangeBody {
    #[serde(rename = "type", default = "direct")]
    kind: String,
    #[serde(default, deserialize_with = "flexible_bool")]
    durable: bool,
    #[serde(default, deserialize_with = "flexible_bool")]
    auto_delete: bool,
    #[serde(default, deserialize_with = "flexible_bool")]
    internal: bool,
    #[serde(default)]
    arguments: Map<String, Value>,
}

fn direct() -> String {
    "direct".into()
}

/// RabbitMQ's API takes `true`, `"true"` and `"false"` alike (rabbitmqadmin
/// sends strings).
fn flexible_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" || s.is_empty() => Ok(false),
        Value::Null => Ok(false),
        other => Err(serde::de::Error::custom(format!("expected a boolean, got {other}"))),
    }
}

pub(crate) async fn put_exchange(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    Body(body): Body<ExchangeBody>,
) -> ApiResult<StatusCode> {
    let v = api.vhost(&vhost)?;
    let mut access = access(&api, &caller, &v)?;
    let name = exchange_name(&name);
    let arguments = table_from_json(&body.arguments);
    access.exchange_declare(&v, name, &body.kind, false, &arguments)?;
    let new = v.exchange_declare(ExchangeDeclare {
        name,
        kind: &body.kind,
        passive: false,
        durable: body.durable,
        auto_delete: body.auto_delete,
        internal: body.internal,
        arguments: &arguments,
    })?;
    api.durable().await?;
    Ok(created(new))
}

#[derive(Deserialize, Default)]
pub(crate) struct DeleteQuery {
    #[serde(rename = "if-unused")]
    if_unused: Option<String>,
    #[serde(rename = "if-empty")]
    if_empty: Option<String>,
}

pub(crate) async fn delete_exchange(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    Query(dq): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    let v = api.vhost(&vhost)?;
    let mut access = access(&api, &caller, &v)?;
    let name = exchange_name(&name);
    v.exchange(name)?;
    access.exchange_delete(name)?;
    v.exchange_delete(name, dq.if_unused.as_deref() == Some("true"))?;
    api.durable().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn exchange_bindings_source(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let v = seen_vhost(&api, &caller, &vhost)?;
    let name = exchange_name(&name);
    let x = v.exchange(name)?;
    let list: Vec<Rendered> = if name.is_empty() {
        let mut queues = v.queues();
        queues.sort_by(|a, b| a.name.cmp(&b.name));
        queues.iter().map(|q| Rendered::new(views::default_binding(&v.name, &q.name))).collect()
    } else {
        x.bindings().iter().map(|b| Rendered::new(views::binding(&v.name, &x.name, b))).collect()
    };
    binding_answer(&q, list)
}

pub(crate) async fn exchange_bindings_destination(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let v = seen_vhost(&api, &caller, &vhost)?;
    let name = exchange_name(&name).to_owned();
    v.exchange(&name)?;
    let list = views::vhost_bindings(&v)
        .into_iter()
        .filter(|b| b["destination_type"] == "exchange" && b["destination"] == name.as_str())
        .map(Rendered::new)
        .collect();
    binding_answer(&q, list)
}

/// Bindings keep their order (by source, then destination) unless a sort
/// is asked for.
fn binding_answer(q: &ListQuery, list: Vec<Rendered>) -> ApiResult<Json<Value>> {
    Ok(Json(q.answer_in_order(list, |r| r.0.clone())?))
}

#[derive(Deserialize)]
pub(crate) struct PublishBody {
    routing_key: String,
    payload: String,
    payload_encoding: Option<String>,
    #[serde(default)]
    properties: Map<String, Value>,
}

fn short(key: &str, v: &Value) -> ApiResult<ShortString> {
    let s = v.as_str().ok_or_else(|| ApiError::bad_request(format!("property '{key}' must be a string")))?;
    if s.len() > 255 {
        return Err(ApiError::bad_request(format!("property '{key}' is longer than 255 bytes")));
    }
    Ok(s.into())
}

fn int(key: &str, v: &Value) -> ApiResult<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| ApiError::bad_request(format!("property '{key}' must be an integer")))
}

/// The properties of an API publish, as RabbitMQ's API reads them.
fn properties_from_json(map: &Map<String, Value>) -> ApiResult<Bytes> {
    let mut p = AMQPProperties::default();
    for (k, v) in map {
        p = match k.as_str() {
            "content_type" => p.with_content_type(short(k, v)?),
            "content_encoding" => p.with_content_encoding(short(k, v)?),
            "headers" => {
                let h = v.as_object().ok_or_else(|| ApiError::bad_request("property 'headers' must be an object"))?;
                p.with_headers(table_from_json(h))
            }
            "delivery_mode" => p.with_delivery_mode(int(k, v)?.min(255) as u8),
            "priority" => p.with_priority(int(k, v)?.min(255) as u8),
            "correlation_id" => p.with_correlation_id(short(k, v)?),
            "reply_to" => p.with_reply_to(short(k, v)?),
            "expiration" => p.with_expiration(short(k, v)?),
            "message_id" => p.with_message_id(short(k, v)?),
            "timestamp" => p.with_timestamp(int(k, v)?),
            "type" => p.with_type(short(k, v)?),
            "user_id" => p.with_user_id(short(k, v)?),
            "app_id" => p.with_app_id(short(k, v)?),
            "cluster_id" => p.with_cluster_id(short(k, v)?),
            other => return Err(ApiError::bad_request(format!("unknown property '{other}'"))),
        };
    }
    cookie_factory::gen_simple(gen_properties(&p), Vec::new())
        .map(Bytes::from)
        .map_err(|e| ApiError::bad_request(format!("cannot encode the properties: {e:?}")))
}

fn properties_to_json(m: &crate::message::Message) -> Value {
    let Some(p) = m.decode_properties() else { return json!({}) };
    let mut out = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            out.insert(k.to_owned(), v);
        }
    };
    put("content_type", p.content_type().as_ref().map(|s| json!(s.as_str())));
    put("content_encoding", p.content_encoding().as_ref().map(|s| json!(s.as_str())));
    put("priority", p.priority().map(|n| json!(n)));
    put("correlation_id", p.correlation_id().as_ref().map(|s| json!(s.as_str())));
    put("reply_to", p.reply_to().as_ref().map(|s| json!(s.as_str())));
    put("expiration", p.expiration().as_ref().map(|s| json!(s.as_str())));
    put("message_id", p.message_id().as_ref().map(|s| json!(s.as_str())));
    put("timestamp", p.timestamp().map(|n| json!(n)));
    put("type", p.kind().as_ref().map(|s| json!(s.as_str())));
    put("user_id", p.user_id().as_ref().map(|s| json!(s.as_str())));
    put("app_id", p.app_id().as_ref().map(|s| json!(s.as_str())));
    put("cluster_id", p.cluster_id().as_ref().map(|s| json!(s.as_str())));
    put("delivery_mode", p.delivery_mode().map(|n| json!(n)));
    put("headers", p.headers().as_ref().map(|h: &FieldTable| Value::Object(table_to_json(h))));
    Value::Object(out)
}

/// Publishes one message as `basic.publish` on a confirm channel would:
/// the answer comes once the message is where a confirm would say it is.
/// Returns whether it reached a queue.
struct ApiPublish<'a> {
    exchange: &'a str,
    routing_key: &'a str,
    properties: Bytes,
    body: Bytes,
}

async fn publish_one(api: &Api, v: &Vhost, caller: &Caller, access: &mut Access, p: ApiPublish<'_>) -> ApiResult<bool> {
    let ApiPublish { exchange, routing_key, properties, body } = p;
    let alarms = *api.alarms.borrow();
    if alarms.any() {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: "resource_alarm",
            reason: format!("publishing is blocked: {}", alarms.reason()),
        });
    }
    let published = v.publish(
        Publish {
            exchange: Bytes::copy_from_slice(exchange.as_bytes()),
            routing_key: Bytes::copy_from_slice(routing_key.as_bytes()),
            properties,
            body,
            mandatory: false,
            immediate: false,
            user: &caller.user.name,
            access,
            reply_key: None,
        },
        &Sink { replies: api.broker.reply_targets(), waker: None },
    )?;
    let routed = !published.is_unroutable();
    // Counted as a connection counts its publishes (received, routed or
    // dropped, the exchange's in and out).
    if let Ok(x) = v.exchange(exchange) {
        x.add_publishes(1, u64::from(routed));
    }
    let counts = MessageCounts {
        received: 1,
        routed: u64::from(routed),
        unroutable_dropped: u64::from(!routed),
        ..MessageCounts::default()
    };
    api.broker.add_message_counts(Some(v), &counts);
    let tickets: TicketRange = published.tickets;
    api.written(tickets).await?;
    Ok(routed && !published.rejected)
}

pub(crate) async fn publish(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    Body(body): Body<PublishBody>,
) -> ApiResult<Json<Value>> {
    let v = api.vhost(&vhost)?;
    let mut access = access(&api, &caller, &v)?;
    let payload = match body.payload_encoding.as_deref() {
        Some("string") => Bytes::from(body.payload.into_bytes()),
        Some("base64") => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(body.payload.as_bytes())
                .map_err(|_| ApiError::bad_request("payload is not base64"))?,
        ),
        Some(other) => {
            return Err(ApiError::bad_request(format!("unknown payload_encoding '{other}' (string or base64)")))
        }
        None => return Err(ApiError::bad_request("[{key_missing,payload_encoding}]")),
    };
    if body.routing_key.len() > 255 {
        return Err(ApiError::bad_request("routing_key is longer than 255 bytes"));
    }
    let properties = properties_from_json(&body.properties)?;
    let name = exchange_name(&name);
    v.exchange(name)?;
    let p = ApiPublish { exchange: name, routing_key: &body.routing_key, properties, body: payload };
    let routed = publish_one(&api, &v, &caller, &mut access, p).await?;
    Ok(Json(json!({ "routed": routed })))
}

// ---------------------------------------------------------------- queues

fn queues_of(vhosts: Vec<Arc<Vhost>>) -> Vec<InVhost<Queue>> {
    vhosts
        .into_iter()
        .flat_map(|v| v.queues().into_iter().map(move |q| InVhost { vhost: Arc::clone(&v), item: q }))
        .collect()
}

pub(crate) async fn queues(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let list = queues_of(visible_vhosts(&api, &caller));
    Ok(Json(q.answer(list, |x| views::queue(&api, &x.item))?))
}

/// RabbitMQ 3.13's `/api/queues/detailed`: every queue with its consumers.
pub(crate) async fn queues_detailed(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let list = queues_of(visible_vhosts(&api, &caller));
    Ok(Json(q.answer(list, |x| detailed_queue(&api, &x.item))?))
}

fn detailed_queue(api: &Api, q: &Queue) -> Value {
    let mut body = views::queue(api, q);
    let conns = api.broker.connections();
    let consumers: Vec<Value> = q
        .consumer_details()
        .iter()
        .map(|c| views::consumer(api, q, c, conns.iter().find(|x| x.id == c.connection_id)))
        .collect();
    body["consumer_details"] = Value::Array(consumers);
    body
}

pub(crate) async fn queues_in(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let v = seen_vhost(&api, &caller, &vhost)?;
    Ok(Json(q.answer(queues_of(vec![v]), |x| views::queue(&api, &x.item))?))
}

pub(crate) async fn queue(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let v = seen_vhost(&api, &caller, &vhost)?;
    let q = v.queue(&name)?;
    let mut body = detailed_queue(&api, &q);
    body["deliveries"] = json!([]);
    body["incoming"] = json!([]);
    Ok(Json(body))
}

#[derive(Deserialize)]
pub(crate) struct QueueBody {
    #[serde(default, deserialize_with = "flexible_bool")]
    durable: bool,
    #[serde(default, deserialize_with = "flexible_bool")]
    auto_delete: bool,
    #[serde(default)]
    arguments: Map<String, Value>,
}

pub(crate) async fn put_queue(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    Body(body): Body<QueueBody>,
) -> ApiResult<StatusCode> {
    let v = api.vhost(&vhost)?;
    let mut access = access(&api, &caller, &v)?;
    let arguments = table_from_json(&body.arguments);
    access.queue_declare(&v, &name, false, false, &arguments)?;
    let ok = v.queue_declare(QueueDeclare {
        name: &name,
        server_named: false,
        passive: false,
        durable: body.durable,
        exclusive: false,
        auto_delete: body.auto_delete,
        arguments: &arguments,
        connection_id: API_CONNECTION,
    })?;
    api.durable().await?;
    Ok(created(ok.created))
}

pub(crate) async fn delete_queue(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    Query(dq): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    let v = api.vhost(&vhost)?;
    let mut access = access(&api, &caller, &v)?;
    let q = v.queue(&name)?;
    access.queue_delete(&name)?;
    let if_unused = dq.if_unused.as_deref() == Some("true");
    let if_empty = dq.if_empty.as_deref() == Some("true");
    if q.exclusive_owner.is_some() {
        // An exclusive queue belongs to its connection; the operator may
        // still delete it, as in RabbitMQ's UI.
        check_unused_empty(&q, &v, if_unused, if_empty)?;
        v.remove_queue(&q);
    } else {
        v.queue_delete(&name, if_unused, if_empty, API_CONNECTION)?;
    }
    api.durable().await?;
    Ok(StatusCode::NO_CONTENT)
}

fn check_unused_empty(q: &Queue, v: &Vhost, if_unused: bool, if_empty: bool) -> ApiResult<()> {
    if if_unused && q.consumer_count() > 0 {
        return Err(ApiError::bad_request(format!("queue '{}' in vhost '{}' in use", q.name, v.name)));
    }
    if if_empty && q.message_count() > 0 {
        return Err(ApiError::bad_request(format!("queue '{}' in vhost '{}' not empty", q.name, v.name)));
    }
    Ok(())
}

pub(crate) async fn queue_bindings(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let v = seen_vhost(&api, &caller, &vhost)?;
    v.queue(&name)?;
    let list = views::vhost_bindings(&v)
        .into_iter()
        .filter(|b| b["destination_type"] == "queue" && b["destination"] == name.as_str())
        .map(Rendered::new)
        .collect();
    binding_answer(&q, list)
}

pub(crate) async fn purge(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let v = api.vhost(&vhost)?;
    let mut access = access(&api, &caller, &v)?;
    let q = v.queue(&name)?;
    access.queue_purge(&name)?;
    q.purge();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub(crate) struct GetBody {
    count: Option<Value>,
    ackmode: String,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    truncate: Option<Value>,
}

/// A message as RabbitMQ's API returns it from get (and Warren's browse).
fn message_json(m: &QueuedMessage, encoding: &str, truncate: Option<usize>) -> Value {
    let msg = &m.message;
    let body = &msg.body[..truncate.map_or(msg.body.len(), |t| t.min(msg.body.len()))];
    let (payload, payload_encoding) = match (encoding, std::str::from_utf8(body)) {
        ("auto", Ok(text)) => (text.to_owned(), "string"),
        _ => (base64::engine::general_purpose::STANDARD.encode(body), "base64"),
    };
    json!({
        "payload_bytes": msg.body.len(),
        "redelivered": m.redelivered,
        "exchange": String::from_utf8_lossy(&msg.exchange),
        "routing_key": String::from_utf8_lossy(&msg.routing_key),
        "properties": properties_to_json(msg),
        "payload": payload,
        "payload_encoding": payload_encoding,
    })
}

fn number(v: &Option<Value>, what: &str) -> ApiResult<Option<usize>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .map(|n| Some(n as usize))
            .ok_or_else(|| ApiError::bad_request(format!("{what} must be a number"))),
    }
}

pub(crate) async fn get_messages(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    Body(body): Body<GetBody>,
) -> ApiResult<Json<Value>> {
    let v = api.vhost(&vhost)?;
    let mut access = access(&api, &caller, &v)?;
    let q = v.queue(&name)?;
    access.queue_read(&name)?;
    q.check_exclusive(API_CONNECTION)?;
    let how = match body.ackmode.as_str() {
        "ack_requeue_true" | "reject_requeue_true" => Settle::Requeue,
        "ack_requeue_false" => Settle::Ack,
        "reject_requeue_false" => Settle::Discard,
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown ackmode '{other}' (ack_requeue_true, ack_requeue_false, reject_requeue_true, reject_requeue_false)"
            )))
        }
    };
    let encoding = match body.encoding.as_deref() {
        None | Some("auto") => "auto",
        Some("base64") => "base64",
        Some(other) => return Err(ApiError::bad_request(format!("unknown encoding '{other}' (auto or base64)"))),
    };
    let count = number(&body.count, "count")?.unwrap_or(1).min(MAX_MESSAGES);
    let truncate = number(&body.truncate, "truncate")?;
    let (taken, remaining) = take(&v, &q, count);
    let mut out = Vec::with_capacity(taken.len());
    for (m, left) in taken.iter().zip(remaining) {
        let mut j = message_json(m, encoding, truncate);
        j["message_count"] = json!(left);
        out.push(j);
    }
    // All are taken before any goes back, as RabbitMQ's API does (its
    // channel closes after the gets): a requeued message is not got twice.
    settle(&v, &q, taken, how);
    Ok(Json(Value::Array(out)))
}

/// Settles what `take` took, as a channel settles its unacknowledged
/// deliveries (counts, requeue order, dead-lettering).
fn settle(v: &Vhost, q: &Arc<Queue>, taken: Vec<QueuedMessage>, how: Settle) {
    v.settle(taken.into_iter().map(|message| Unsettled { queue: Arc::clone(q), consumer: None, message }), how);
}

/// Takes up to `count` messages with the count left after each (each a
/// basic.get without no_ack, to be settled).
fn take(v: &Vhost, q: &Queue, count: usize) -> (Vec<QueuedMessage>, Vec<u32>) {
    let (mut taken, mut remaining) = (Vec::new(), Vec::new());
    while taken.len() < count {
        let mut dead = DeadLetters::default();
        let got = q.get(&mut dead);
        if !dead.is_empty() {
            v.dead_letter(q, dead);
        }
        let Some((m, left)) = got else { break };
        q.log_delivered(&m);
        q.on_got(false, &m);
        taken.push(m);
        remaining.push(left);
    }
    (taken, remaining)
}

#[derive(Deserialize, Default)]
pub(crate) struct PeekQuery {
    offset: Option<usize>,
    count: Option<usize>,
    encoding: Option<String>,
    truncate: Option<usize>,
}

/// Warren's browse: `GET /api/queues/{vhost}/{name}/messages?offset=&count=`
/// shows ready messages without taking them.
pub(crate) async fn peek(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    Query(pq): Query<PeekQuery>,
) -> ApiResult<Json<Value>> {
    let v = api.vhost(&vhost)?;
    let mut access = access(&api, &caller, &v)?;
    let q = v.queue(&name)?;
    access.queue_read(&name)?;
    let offset = pq.offset.unwrap_or(0);
    let count = pq.count.unwrap_or(20).min(MAX_MESSAGES);
    let encoding = if pq.encoding.as_deref() == Some("base64") { "base64" } else { "auto" };
    let list: Vec<Value> = q
        .peek(offset, count)
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut j = message_json(m, encoding, pq.truncate);
            j["position"] = json!(offset + i);
            j
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

/// Declares `queue`, publishes `payload` to it and gets it back (the
/// aliveness test). True when the same payload came back.
pub(crate) async fn round_trip(
    api: &Api,
    v: &Vhost,
    caller: &Caller,
    access: &mut Access,
    queue: &str,
    payload: &'static [u8],
) -> ApiResult<bool> {
    let none = FieldTable::default();
    access.queue_declare(v, queue, false, false, &none)?;
    v.queue_declare(QueueDeclare {
        name: queue,
        server_named: false,
        passive: false,
        durable: false,
        exclusive: false,
        auto_delete: false,
        arguments: &none,
        connection_id: API_CONNECTION,
    })?;
    let properties = properties_from_json(&Map::new())?;
    let p = ApiPublish { exchange: "", routing_key: queue, properties, body: Bytes::from_static(payload) };
    publish_one(api, v, caller, access, p).await?;
    access.queue_read(queue)?;
    let q = v.queue(queue)?;
    let (taken, _) = take(v, &q, 1);
    let back = taken.first().is_some_and(|m| &m.message.body[..] == payload);
    settle(v, &q, taken, Settle::Ack);
    Ok(back)
}

// -------------------------------------------------------------- bindings

pub(crate) async fn bindings(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let list = visible_vhosts(&api, &caller).iter().flat_map(|v| views::vhost_bindings(v)).map(Rendered::new).collect();
    binding_answer(&q, list)
}

pub(crate) async fn bindings_in(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let v = seen_vhost(&api, &caller, &vhost)?;
    binding_answer(&q, views::vhost_bindings(&v).into_iter().map(Rendered::new).collect())
}

/// `e/{source}/q/{queue}` or `e/{source}/e/{exchange}`.
fn destination_kind(kind: &str) -> ApiResult<Resource> {
    match kind {
        "q" => Ok(Resource::Queue),
        "e" => Ok(Resource::Exchange),
        _ => Err(ApiError::not_found()),
    }
}

fn between(v: &Vhost, source: &str, kind: Resource, destination: &str) -> ApiResult<Vec<Value>> {
    let source = exchange_name(source);
    v.exchange(source)?;
    let wanted = match kind {
        Resource::Queue => {
            v.queue(destination)?;
            "queue"
        }
        Resource::Exchange => {
            v.exchange(exchange_name(destination))?;
            "exchange"
        }
    };
    Ok(views::vhost_bindings(v)
        .into_iter()
        .filter(|b| b["source"] == source && b["destination_type"] == wanted && b["destination"] == destination)
        .collect())
}

pub(crate) async fn binding_list(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, source, kind, destination)): Path<(String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    let v = seen_vhost(&api, &caller, &vhost)?;
    Ok(Json(Value::Array(between(&v, &source, destination_kind(&kind)?, &destination)?)))
}

#[derive(Deserialize, Default)]
pub(crate) struct BindBody {
    #[serde(default)]
    routing_key: String,
    #[serde(default)]
    arguments: Map<String, Value>,
}

pub(crate) async fn bind(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, source, kind, destination)): Path<(String, String, String, String)>,
    Body(body): Body<BindBody>,
) -> ApiResult<(StatusCode, [(axum::http::HeaderName, String); 1])> {
    let v = api.vhost(&vhost)?;
    let mut access = access(&api, &caller, &v)?;
    let kind = destination_kind(&kind)?;
    let source = exchange_name(&source);
    let arguments = table_from_json(&body.arguments);
    access.bind(&v, kind, &destination, source, &body.routing_key)?;
    match kind {
        Resource::Queue => {
            v.queue_bind(&destination, source, &body.routing_key, &arguments, API_CONNECTION)?;
        }
        Resource::Exchange => {
            v.exchange_bind(&destination, source, &body.routing_key, &arguments)?;
        }
    }
    api.durable().await?;
    let key = views::properties_key(&body.routing_key, &body.arguments);
    // RabbitMQ answers 201 with where the new binding lives.
    let kind = if kind == Resource::Queue { "q" } else { "e" };
    let location = format!(
        "../../../../{}/e/{}/{kind}/{}/{key}",
        url(&vhost),
        url(if source.is_empty() { "amq.default" } else { source }),
        url(&destination)
    );
    Ok((StatusCode::CREATED, [(axum::http::header::LOCATION, location)]))
}

fn url(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn find_binding(
    v: &Vhost,
    source: &str,
    kind: Resource,
    destination: &str,
    props: &str,
) -> ApiResult<(Value, FieldTable)> {
    let found = between(v, source, kind, destination)?
        .into_iter()
        // Clients send the key encoded once more (rabbitmqadmin), or not
        // (some test helpers): either names the binding.
        .find(|b| b["properties_key"].as_str().is_some_and(|k| k == props || percent::decode(k) == props))
        .ok_or_else(ApiError::not_found)?;
    let arguments = found["arguments"].as_object().map(table_from_json).unwrap_or_default();
    Ok((found, arguments))
}

pub(crate) async fn binding(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, source, kind, destination, props)): Path<(String, String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    let v = seen_vhost(&api, &caller, &vhost)?;
    let (found, _) = find_binding(&v, &source, destination_kind(&kind)?, &destination, &props)?;
    Ok(Json(found))
}

pub(crate) async fn unbind(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, source, kind, destination, props)): Path<(String, String, String, String, String)>,
) -> ApiResult<StatusCode> {
    let v = api.vhost(&vhost)?;
    let mut access = access(&api, &caller, &v)?;
    let kind = destination_kind(&kind)?;
    let (found, arguments) = find_binding(&v, &source, kind, &destination, &props)?;
    let routing_key = found["routing_key"].as_str().unwrap_or_default().to_owned();
    let source = exchange_name(&source);
    access.bind(&v, kind, &destination, source, &routing_key)?;
    match kind {
        Resource::Queue => v.queue_unbind(&destination, source, &routing_key, &arguments, API_CONNECTION)?,
        Resource::Exchange => v.exchange_unbind(&destination, source, &routing_key, &arguments)?,
    }
    api.durable().await?;
    Ok(StatusCode::NO_CONTENT)
}
