//! Warren's own `/api/warren/faults/...`: a broker that misbehaves on
//! purpose, so that clients' reconnect and recovery logic can be tested.
//! Administrators only, and only when the node was started with
//! `--allow-fault-injection`; otherwise 403 says how to turn it on.
//!
//! - `POST /api/warren/faults/connections/{name}/close`
//!   `{"code": 541, "reason": "..."}`: connection.close with that
//!   connection-level code (default 320) and text;
//! - `POST /api/warren/faults/connections/{name}/drop`: the socket closes
//!   with no close frame, as if the broker had died.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::Value;

use super::auth::{Caller, Level};
use super::connections::find;
use super::{Api, ApiError, ApiResult, Body};
use crate::broker::registry::CloseRequest;
use crate::broker::ReplyCode;

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

fn end(api: &Api, caller: &Caller, name: &str, how: CloseRequest) -> ApiResult<StatusCode> {
    let c = find(api, caller, name)?;
    if !api.broker.end_connection(c.id, how) {
        return Err(ApiError::not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn close_connection(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<Value>,
) -> ApiResult<StatusCode> {
    allowed(&api, &caller)?;
    let code = match body.get("code") {
        None => ReplyCode::ConnectionForced,
        Some(v) => {
            v.as_u64().and_then(|c| u16::try_from(c).ok()).and_then(ReplyCode::connection_error).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "code {v} is not a connection-level reply code (320, 501-506, 530, 540, 541)"
                ))
            })?
        }
    };
    let reason = body.get("reason").and_then(Value::as_str).unwrap_or("Closed via fault injection").to_owned();
    end(&api, &caller, &name, CloseRequest::WithCode(code, reason))
}

pub(crate) async fn drop_connection(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    allowed(&api, &caller)?;
    end(&api, &caller, &name, CloseRequest::Drop)
}
