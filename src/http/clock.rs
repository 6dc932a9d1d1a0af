//! Warren's own `/api/warren/clock`: the virtual clock of `--clock manual`.
//! GET reads it (any management user); POST `{"advance_ms": N}` moves it
//! (administrators only) and answers once what became due has run: TTL
//! expiry, dead-lettering, x-expires. On the real clock a POST is refused
//! with a hint, since real time cannot be moved.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use std::time::Duration;

use super::auth::{Caller, Level};
use super::{Api, ApiError, ApiResult, Body};

fn reading(api: &Api) -> Value {
    let clock = api.broker.clock();
    json!({
        "mode": if clock.is_manual() { "manual" } else { "real" },
        // Wall time as the broker sees it: what x-death's `time` records.
        "now_ms": clock.unix_millis(),
        // Time on the clock's own scale since it started.
        "elapsed_ms": clock.millis(),
    })
}

pub(crate) async fn get_clock(State(api): State<Api>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Level::Management)?;
    Ok(Json(reading(&api)))
}

pub(crate) async fn advance_clock(
    State(api): State<Api>,
    caller: Caller,
    Body(body): Body<Value>,
) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    let ms = body
        .get("advance_ms")
        .and_then(Value::as_u64)
        .ok_or_else(|| ApiError::bad_request("expected {\"advance_ms\": N}, N a whole number of milliseconds"))?;
    if !api.broker.advance(Duration::from_millis(ms)) {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            error: "bad_request",
            reason: "the broker runs on the real clock, which cannot be moved; start it with --clock manual \
                     (or WARREN_CLOCK=manual)"
                .into(),
        });
    }
    Ok(Json(reading(&api)))
}
