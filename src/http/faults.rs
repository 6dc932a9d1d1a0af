//! Warren's own `/api/warren/faults/...`: the fault injector of
//! `crate::faults` over HTTP, so that clients' reconnect and recovery
//! logic can be tested from any language. Administrators only, and only
//! when the node was started with `--allow-fault-injection`; otherwise 403
//! says how to turn it on. Every call is a POST answered 204 (`restart`: 200
//! with what it took away), with a JSON body
//! where it takes arguments; none is `{}`), 404 for an unknown connection,
//! channel, queue or consumer, 400 for a bad argument.
//!
//! - `connections/{name}/close` `{"code": 541, "reason": "..."}` (default
//!   320); `.../drop`; `.../channels/{n}/close` `{"code", "reason"}`
//!   (default 406); `.../block` `{"reason"}`; `.../unblock`;
//!   `.../latency` `{"ms": 200}`. `{name}` is the management API's name or
//!   a client-provided `connection_name`.
//! - `queues/{vhost}/{queue}/pause`, `.../resume`, `.../nack-publishes`
//!   `{"count": N}`, `.../cancel-consumers` `{"consumer_tag": "..."}`.
//! - `restart` `{"down_ms": 500}`: answered once every connection is gone,
//!   with counts of the connections, queues, exchanges and messages lost.
//! - `alarms/{memory|disk}/raise`, `.../clear`.
//!
//! `GET /api/warren/faults` says whether injection is allowed and which
//! alarms are injected.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{Caller, Level};
use super::{Api, ApiError, ApiResult, Body};
use crate::faults::{Alarm, FaultError};

fn allowed(api: &Api, caller: &Caller) -> ApiResult<()> {
    caller.require(Level::Administrator)?;
    if !api.config.allow_fault_injection {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            error: "not_authorised",
            reason: "fault injection is off: start Warren with --allow-fault-injection (tests only)".into(),
        });
    }
    Ok(())
}

fn done(r: Result<(), FaultError>) -> ApiResult<StatusCode> {
    r.map(|()| StatusCode::NO_CONTENT).map_err(|e| {
        let status = match e {
            FaultError::NotAConnectionCode(_) | FaultError::NotAChannelCode(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::NOT_FOUND,
        };
        let error = if status == StatusCode::NOT_FOUND { "Object Not Found" } else { "bad_request" };
        ApiError { status, error, reason: e.to_string() }
    })
}

pub(crate) async fn status(State(api): State<Api>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    let (memory, disk) = api.faults.injected_alarms();
    Ok(Json(json!({
        "allowed": api.config.allow_fault_injection,
        "injected_alarms": {"memory": memory, "disk": disk},
    })))
}

/// A close's code and text.
#[derive(Deserialize)]
pub(crate) struct Close {
    code: Option<u16>,
    reason: Option<String>,
}

const DEFAULT_REASON: &str = "Closed via fault injection";

pub(crate) async fn close_connection(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<Close>,
) -> ApiResult<StatusCode> {
    allowed(&api, &caller)?;
    let reason = body.reason.as_deref().unwrap_or(DEFAULT_REASON);
    done(api.faults.close_connection(&name, body.code.unwrap_or(320), reason))
}

pub(crate) async fn drop_connection(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    allowed(&api, &caller)?;
    done(api.faults.drop_connection(&name))
}

pub(crate) async fn close_channel(
    State(api): State<Api>,
    caller: Caller,
    Path((name, channel)): Path<(String, u16)>,
    Body(body): Body<Close>,
) -> ApiResult<StatusCode> {
    allowed(&api, &caller)?;
    let reason = body.reason.as_deref().unwrap_or(DEFAULT_REASON);
    done(api.faults.close_channel(&name, channel, body.code.unwrap_or(406), reason))
}

#[derive(Deserialize)]
pub(crate) struct Block {
    reason: Option<String>,
}

pub(crate) async fn block(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<Block>,
) -> ApiResult<StatusCode> {
    allowed(&api, &caller)?;
    done(api.faults.block(&name, body.reason.as_deref().unwrap_or("blocked via fault injection")))
}

pub(crate) async fn unblock(State(api): State<Api>, caller: Caller, Path(name): Path<String>) -> ApiResult<StatusCode> {
    allowed(&api, &caller)?;
    done(api.faults.unblock(&name))
}

#[derive(Deserialize)]
pub(crate) struct Latency {
    ms: u64,
}

pub(crate) async fn latency(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<Latency>,
) -> ApiResult<StatusCode> {
    allowed(&api, &caller)?;
    done(api.faults.set_write_latency(&name, Duration::from_millis(body.ms)))
}

pub(crate) async fn pause_queue(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, queue)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    allowed(&api, &caller)?;
    done(api.faults.pause_queue(&vhost, &queue))
}

pub(crate) async fn resume_queue(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, queue)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    allowed(&api, &caller)?;
    done(api.faults.resume_queue(&vhost, &queue))
}

#[derive(Deserialize)]
pub(crate) struct NackPublishes {
    count: u32,
}

pub(crate) async fn nack_publishes(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, queue)): Path<(String, String)>,
    Body(body): Body<NackPublishes>,
) -> ApiResult<StatusCode> {
    allowed(&api, &caller)?;
    done(api.faults.nack_publishes(&vhost, &queue, body.count))
}

#[derive(Deserialize)]
pub(crate) struct CancelConsumers {
    consumer_tag: Option<String>,
}

pub(crate) async fn cancel_consumers(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, queue)): Path<(String, String)>,
    Body(body): Body<CancelConsumers>,
) -> ApiResult<StatusCode> {
    allowed(&api, &caller)?;
    done(api.faults.cancel_consumers(&vhost, &queue, body.consumer_tag.as_deref()).map(|_| ()))
}

#[derive(Deserialize)]
pub(crate) struct Restart {
    down_ms: Option<u64>,
}

pub(crate) async fn restart(
    State(api): State<Api>,
    caller: Caller,
    Body(body): Body<Restart>,
) -> ApiResult<Json<Value>> {
    allowed(&api, &caller)?;
    let r = api.faults.restart(Duration::from_millis(body.down_ms.unwrap_or(0))).await;
    Ok(Json(json!({
        "connections": r.connections,
        "queues": r.queues,
        "exchanges": r.exchanges,
        "messages": r.messages,
    })))
}

fn alarm(name: &str) -> ApiResult<Alarm> {
    match name {
        "memory" => Ok(Alarm::Memory),
        "disk" => Ok(Alarm::Disk),
        _ => Err(ApiError::bad_request(format!("no alarm '{name}': memory or disk"))),
    }
}

pub(crate) async fn raise_alarm(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    allowed(&api, &caller)?;
    api.faults.raise_alarm(alarm(&name)?);
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn clear_alarm(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    allowed(&api, &caller)?;
    api.faults.clear_alarm(alarm(&name)?);
    Ok(StatusCode::NO_CONTENT)
}
