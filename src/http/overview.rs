//! `/api/overview`, `/api/whoami`, `/api/nodes`, `/api/extensions`,
//! `/api/cluster-name`.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::auth::{Caller, Level};
use super::rates::Key;
use super::views::{self, rate};
use super::{Api, ApiError, ApiResult};

/// The RabbitMQ release whose API (and definitions format) Warren speaks;
/// tools that gate features on the version read it.
pub(crate) const RABBITMQ_VERSION: &str = "3.13.0";

fn exchange_types() -> Value {
    json!([
        {"name": "direct", "description": "AMQP direct exchange, as per the AMQP specification", "enabled": true},
        {"name": "fanout", "description": "AMQP fanout exchange, as per the AMQP specification", "enabled": true},
        {"name": "headers", "description": "AMQP headers exchange, as per the AMQP specification", "enabled": true},
        {"name": "topic", "description": "AMQP topic exchange, as per the AMQP specification", "enabled": true},
    ])
}

fn listeners(api: &Api) -> Value {
    Value::Array(
        api.listeners
            .iter()
            .map(|l| {
                json!({"node": &*api.node, "protocol": l.protocol, "ip_address": l.addr.ip().to_string(),
                       "port": l.addr.port(), "socket_opts": {}})
            })
            .collect(),
    )
}

fn contexts(api: &Api) -> Value {
    Value::Array(
        api.listeners
            .iter()
            .filter(|l| l.protocol == "http")
            .map(|l| {
                json!({"node": &*api.node, "description": "RabbitMQ Management", "path": "/",
                       "ip": l.addr.ip().to_string(), "port": l.addr.port().to_string()})
            })
            .collect(),
    )
}

pub(crate) async fn overview(State(api): State<Api>, caller: Caller) -> ApiResult<Json<Value>> {
    let vhosts: Vec<_> = api.broker.vhosts().into_iter().filter(|v| caller.can_see(&api, &v.name)).collect();
    let (mut queues, mut exchanges, mut consumers, mut ready, mut unacked) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for v in &vhosts {
        for q in v.queues() {
            queues += 1;
            consumers += q.consumer_count() as u64;
            let s = q.stats();
            ready += s.messages_ready;
            unacked += s.messages_unacknowledged as u64;
        }
        exchanges += v.exchanges().len() as u64;
    }
    let (message_stats, connections, channels) = if caller.sees_all() {
        let g = api.broker.global_stats();
        let counts = [
            g.messages_received,
            g.messages_routed,
            g.messages_unroutable_dropped,
            g.messages_unroutable_returned,
            g.messages_confirmed,
            g.messages_delivered,
            g.messages_acknowledged,
            0,
        ];
        let stats = views::totals_message_stats(&counts, &api.rates.of(&Key::Global));
        (stats, api.broker.connection_count(), api.broker.channel_count())
    } else {
        // Totals over what the user may see, as RabbitMQ narrows them.
        let mine = api.broker.connections().into_iter().filter(|c| c.user == caller.user.name).count();
        let chans = api.broker.channels().into_iter().filter(|c| c.user == caller.user.name).count();
        (json!({}), mine, chans)
    };
    let churn = api.broker.global_stats();
    Ok(Json(json!({
        "management_version": RABBITMQ_VERSION,
        "rates_mode": "basic",
        "sample_retention_policies": {"global": [600, 3600, 28800, 86400], "basic": [600, 3600], "detailed": [600]},
        "exchange_types": exchange_types(),
        "product_version": env!("CARGO_PKG_VERSION"),
        "product_name": "Warren",
        "rabbitmq_version": RABBITMQ_VERSION,
        "cluster_name": &*api.node,
        "erlang_version": "none (Warren is written in Rust)",
        "erlang_full_version": "none (Warren is written in Rust)",
        "release_series_support_status": "supported",
        "disable_stats": false,
        "enable_queue_totals": false,
        "message_stats": message_stats,
        "churn_rates": {
            "connection_created": churn.connections_opened, "connection_created_details": rate(0.0),
            "connection_closed": churn.connections_closed, "connection_closed_details": rate(0.0),
            "channel_created": churn.channels_opened, "channel_created_details": rate(0.0),
            "channel_closed": churn.channels_closed, "channel_closed_details": rate(0.0),
        },
        "queue_totals": {
            "messages": ready + unacked, "messages_details": rate(0.0),
            "messages_ready": ready, "messages_ready_details": rate(0.0),
            "messages_unacknowledged": unacked, "messages_unacknowledged_details": rate(0.0),
        },
        "object_totals": {
            "channels": channels, "connections": connections, "consumers": consumers,
            "exchanges": exchanges, "queues": queues,
        },
        "statistics_db_event_queue": 0,
        "node": &*api.node,
        "listeners": listeners(&api),
        "contexts": contexts(&api),
    })))
}

pub(crate) async fn cluster_name(State(api): State<Api>, _caller: Caller) -> Json<Value> {
    Json(json!({ "name": &*api.node }))
}

pub(crate) async fn whoami(caller: Caller) -> Json<Value> {
    Json(json!({ "name": caller.user.name, "tags": caller.user.tags }))
}

/// The management UI's plugins: none beyond the UI itself.
pub(crate) async fn extensions(_caller: Caller) -> Json<Value> {
    Json(json!([]))
}

fn node_json(api: &Api) -> Value {
    let alarms = *api.alarms.borrow();
    let mem_used = crate::server::resident_bytes().unwrap_or(0);
    let (disk_free, db_dir) = match api.broker.store() {
        Some(s) => (crate::store::free_bytes(s.dir()).unwrap_or(0), s.dir().display().to_string()),
        None => (0, String::new()),
    };
    json!({
        "name": &*api.node,
        "type": "disc",
        "running": true,
        "os_pid": std::process::id().to_string(),
        "uptime": api.started.elapsed().as_millis() as u64,
        "mem_used": mem_used,
        "mem_used_details": rate(0.0),
        "mem_limit": api.config.memory_limit().unwrap_or(0),
        "mem_alarm": alarms.memory_on(),
        "mem_calculation_strategy": "rss",
        "disk_free": disk_free,
        "disk_free_details": rate(0.0),
        "disk_free_limit": api.config.disk_free_limit.bytes(),
        "disk_free_alarm": alarms.disk_on(),
        "processors": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "rates_mode": "basic",
        "db_dir": db_dir,
        "exchange_types": exchange_types(),
        "auth_mechanisms": [
            {"name": "PLAIN", "description": "SASL PLAIN authentication mechanism", "enabled": true},
            {"name": "AMQPLAIN", "description": "QPid AMQPLAIN mechanism", "enabled": true},
        ],
        // "rabbit" too: clients (rabbitmq_http_client, rabbitmqadmin v2) read
        // a node's RabbitMQ version from that application's entry.
        "applications": [
            {"name": "rabbit", "description": "RabbitMQ", "version": RABBITMQ_VERSION},
            {"name": "warren", "description": "Warren", "version": env!("CARGO_PKG_VERSION")},
        ],
        "enabled_plugins": ["rabbitmq_management", "rabbitmq_prometheus"],
        "partitions": [],
        "cluster_links": [],
        "contexts": contexts(api),
        "listeners": listeners(api),
        "being_drained": false,
        "net_ticktime": 60,
        "run_queue": 0,
        "fd_used": open_fds(),
        "fd_total": fd_limit(),
        "sockets_used": 0,
        "sockets_total": fd_limit(),
        "proc_used": 0,
        "proc_total": 0,
    })
}

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0)
}

fn fd_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

pub(crate) async fn nodes(State(api): State<Api>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Level::Monitoring)?;
    Ok(Json(json!([node_json(&api)])))
}

pub(crate) async fn node(State(api): State<Api>, caller: Caller, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    caller.require(Level::Monitoring)?;
    if name != *api.node {
        return Err(ApiError::not_found());
    }
    Ok(Json(node_json(&api)))
}
