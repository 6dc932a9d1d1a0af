//! Vhost and user limits (`/api/vhost-limits`, `/api/user-limits`), as
//! RabbitMQ's management API serves them: administrators only, one limit
//! per PUT (`{"value": N}`), DELETE of an unset limit is still 204.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::auth::{Caller, Level};
use super::{Api, ApiError, ApiResult, Body};
use crate::broker::limits::{Limits, USER_LIMITS, VHOST_LIMITS};

fn vhost_not_found() -> ApiError {
    ApiError { status: StatusCode::NOT_FOUND, error: "not_found", reason: "vhost_not_found".into() }
}

fn vhost_rows(api: &Api, only: Option<&str>) -> Value {
    let rows: Vec<Value> = api
        .broker
        .vhosts()
        .iter()
        .filter(|v| only.is_none_or(|o| o == v.name))
        .filter(|v| !v.limits().is_empty())
        .map(|v| json!({"vhost": v.name, "value": v.limits().to_json()}))
        .collect();
    Value::Array(rows)
}

fn user_rows(api: &Api, only: Option<&str>) -> Value {
    let rows: Vec<Value> = api
        .broker
        .all_user_limits()
        .into_iter()
        .filter(|(u, _)| only.is_none_or(|o| o == u))
        .map(|(u, l)| json!({"user": u, "value": l.to_json()}))
        .collect();
    Value::Array(rows)
}

fn value_of(body: &Value) -> ApiResult<&Value> {
    body.get("value").ok_or_else(|| ApiError::bad_request("[{key_missing,value}]"))
}

pub(crate) async fn vhost_limits(State(api): State<Api>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    Ok(Json(vhost_rows(&api, None)))
}

pub(crate) async fn vhost_limits_in(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    api.broker.vhost(&vhost).ok_or_else(vhost_not_found)?;
    Ok(Json(vhost_rows(&api, Some(&vhost))))
}

pub(crate) async fn put_vhost_limit(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    Body(body): Body<Value>,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    let v = api.broker.vhost(&vhost).ok_or_else(vhost_not_found)?;
    let mut limits = v.limits();
    limits.set(&name, value_of(&body)?, VHOST_LIMITS).map_err(ApiError::bad_request)?;
    api.broker.set_vhost_limits(&vhost, limits).map_err(|_| vhost_not_found())?;
    api.durable().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn delete_vhost_limit(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    let v = api.broker.vhost(&vhost).ok_or_else(vhost_not_found)?;
    let mut limits = v.limits();
    limits.clear(&name);
    api.broker.set_vhost_limits(&vhost, limits).map_err(|_| vhost_not_found())?;
    api.durable().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn user_limits(State(api): State<Api>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    Ok(Json(user_rows(&api, None)))
}

pub(crate) async fn user_limits_of(
    State(api): State<Api>,
    caller: Caller,
    Path(user): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    api.broker.user(&user).ok_or_else(ApiError::not_found)?;
    Ok(Json(user_rows(&api, Some(&user))))
}

pub(crate) async fn put_user_limit(
    State(api): State<Api>,
    caller: Caller,
    Path((user, name)): Path<(String, String)>,
    Body(body): Body<Value>,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    api.broker.user(&user).ok_or_else(ApiError::not_found)?;
    let mut limits: Limits = api.broker.user_limits(&user);
    limits.set(&name, value_of(&body)?, USER_LIMITS).map_err(ApiError::bad_request)?;
    api.broker.set_user_limits(&user, limits).map_err(|_| ApiError::not_found())?;
    api.durable().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn delete_user_limit(
    State(api): State<Api>,
    caller: Caller,
    Path((user, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    api.broker.user(&user).ok_or_else(ApiError::not_found)?;
    let mut limits = api.broker.user_limits(&user);
    limits.clear(&name);
    api.broker.set_user_limits(&user, limits).map_err(|_| ApiError::not_found())?;
    api.durable().await?;
    Ok(StatusCode::NO_CONTENT)
}
