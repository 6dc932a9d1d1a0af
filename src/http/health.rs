//! Health checks (`/api/health/checks/*`) and `/api/aliveness-test`, as
//! container health checks and load balancers call them: 200 with
//! `{"status":"ok"}`, or 503 with `{"status":"failed", "reason": ...}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::auth::{Caller, Level};
use super::{objects, Api, ApiError, ApiResult};

type Check = (StatusCode, Json<Value>);

fn ok(extra: Value) -> Check {
    let mut body = json!({ "status": "ok" });
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    (StatusCode::OK, Json(body))
}

fn failed(body: Value) -> Check {
    (StatusCode::SERVICE_UNAVAILABLE, Json(body))
}

pub(crate) async fn alarms(State(api): State<Api>, caller: Caller) -> ApiResult<Check> {
    caller.require(Level::Management)?;
    let a = *api.alarms.borrow();
    let mut on = Vec::new();
    if a.memory_on() {
        on.push(json!({"node": &*api.node, "resource": "memory"}));
    }
    if a.disk_on() || a.store_backlog {
        on.push(json!({"node": &*api.node, "resource": "disk"}));
    }
    if on.is_empty() {
        return Ok(ok(json!({})));
    }
    Ok(failed(json!({"status": "failed", "reason": "There are alarms in effect in the cluster", "alarms": on})))
}

pub(crate) async fn virtual_hosts(caller: Caller) -> ApiResult<Check> {
    caller.require(Level::Management)?;
    // A vhost runs as long as it exists: there is no per-vhost process
    // that could be down.
    Ok(ok(json!({})))
}

pub(crate) async fn port_listener(
    State(api): State<Api>,
    caller: Caller,
    Path(port): Path<String>,
) -> ApiResult<Check> {
    caller.require(Level::Management)?;
    let Ok(port) = port.parse::<u16>() else {
        return Err(ApiError::bad_request(format!("Invalid port: {port}")));
    };
    if api.listeners.iter().any(|l| l.addr.port() == port) {
        return Ok(ok(json!({ "port": port })));
    }
    let ports: Vec<u16> = api.listeners.iter().map(|l| l.addr.port()).collect();
    Ok(failed(json!({"status": "failed", "reason": "No active listener", "missing": port, "ports": ports})))
}

pub(crate) async fn protocol_listener(
    State(api): State<Api>,
    caller: Caller,
    Path(protocol): Path<String>,
) -> ApiResult<Check> {
    caller.require(Level::Management)?;
    let wanted = protocol.to_ascii_lowercase();
    let aliases: &[&str] = match wanted.as_str() {
        "amqp" | "amqp091" | "amqp0.9.1" | "amqp0-9-1" => &["amqp"],
        "amqps" | "amqp/ssl" => &["amqp/ssl"],
        "http" | "management" => &["http"],
        "https" => &["https"],
        "prometheus" | "http/prometheus" => &["http/prometheus"],
        "https/prometheus" => &["https/prometheus"],
        _ => &[],
    };
    if api.listeners.iter().any(|l| aliases.contains(&l.protocol)) {
        return Ok(ok(json!({ "protocol": protocol })));
    }
    let protocols: Vec<&str> = api.listeners.iter().map(|l| l.protocol).collect();
    Ok(failed(json!({"status": "failed", "reason": "No active listener", "missing": protocol, "protocols": protocols})))
}

pub(crate) async fn is_in_service(caller: Caller) -> ApiResult<Check> {
    caller.require(Level::Management)?;
    Ok(ok(json!({})))
}

/// `/api/healthchecks/node/{node}`: this node is up; any other is unknown.
pub(crate) async fn node_check(State(api): State<Api>, caller: Caller, Path(node): Path<String>) -> ApiResult<Check> {
    caller.require(Level::Management)?;
    if node != *api.node {
        return Err(ApiError::not_found());
    }
    Ok(ok(json!({})))
}

/// One node and no replicas to lose: never critical.
pub(crate) async fn not_quorum_critical(caller: Caller) -> ApiResult<Check> {
    caller.require(Level::Management)?;
    Ok(ok(json!({})))
}

/// Fails when a listener's certificate expires within the given time (or
/// has expired), listing each, as rabbitmq-diagnostics
/// check_certificate_expiration does.
pub(crate) async fn certificates(
    State(api): State<Api>,
    caller: Caller,
    Path((within, unit)): Path<(String, String)>,
) -> ApiResult<Check> {
    caller.require(Level::Management)?;
    let n: u64 = within.parse().map_err(|_| ApiError::bad_request(format!("'{within}' is not a number")))?;
    let days: u64 = match unit.as_str() {
        "days" => 1,
        "weeks" => 7,
        "months" => 30,
        "years" => 365,
        _ => return Err(ApiError::bad_request(format!("unknown unit '{unit}': use days, weeks, months or years"))),
    };
    let horizon = std::time::SystemTime::now() + std::time::Duration::from_secs(n.saturating_mul(days * 86_400));
    let c = &api.config;
    let tls_listeners = [
        ("amqp/ssl", c.tls.as_ref()),
        ("https", c.management_tls.as_ref().map(|t| &t.1)),
        ("https/prometheus", c.prometheus_tls.as_ref().map(|t| &t.1)),
    ];
    let mut expiring = Vec::new();
    for (protocol, settings) in tls_listeners {
        let Some(settings) = settings else { continue };
        let port = api.listeners.iter().find(|l| l.protocol == protocol).map(|l| l.addr.port());
        // The files as they are now: a renewed certificate counts once reloaded.
        match crate::tls::expires(&settings.cert) {
            Ok(at) if at > horizon => {}
            Ok(at) => expiring.push(json!({
                "node": &*api.node, "protocol": protocol, "port": port,
                "certfile": settings.cert.display().to_string(),
                "cacertfile": settings.ca.as_ref().map(|p| p.display().to_string()),
                "certfile_expires_on": crate::tls::rfc3339(at),
            })),
            Err(e) => expiring.push(json!({
                "node": &*api.node, "protocol": protocol, "port": port,
                "certfile": settings.cert.display().to_string(), "error": e.to_string(),
            })),
        }
    }
    if expiring.is_empty() {
        return Ok(ok(json!({})));
    }
    Ok(failed(json!({"status": "failed", "reason": "Certificates expiring", "expired": expiring})))
}

/// RabbitMQ's aliveness test: declares the queue `aliveness-test` in the
/// vhost, publishes a message to it and gets it back.
pub(crate) async fn aliveness(State(api): State<Api>, caller: Caller, Path(vhost): Path<String>) -> ApiResult<Check> {
    let v = api.vhost(&vhost)?;
    if !caller.can_use(&api, &vhost) {
        return Err(ApiError::not_authorized("Access refused."));
    }
    let mut access = api.broker.access(&caller.user.name, &vhost);
    let alive = objects::round_trip(&api, &v, &caller, &mut access, "aliveness-test", b"test_message").await;
    match alive {
        Ok(true) => Ok(ok(json!({}))),
        Ok(false) => Ok(failed(json!({"status": "failed", "reason": "the test message did not come back"}))),
        Err(e) => Ok(failed(json!({"status": "failed", "reason": e.reason}))),
    }
}
