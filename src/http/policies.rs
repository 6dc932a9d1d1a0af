//! Policies and operator policies (`/api/policies`, `/api/operator-policies`).
//! Policymakers manage policies in their vhosts; only administrators touch
//! operator policies, as in RabbitMQ.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::auth::{Caller, Level};
use super::paging::ListQuery;
use super::views::Rendered;
use super::{created, Api, ApiError, ApiResult, Body};
use crate::store::definitions::PolicyDef;

#[derive(Clone, Copy)]
enum Kind {
    User,
    Operator,
}

fn level(kind: Kind) -> Level {
    match kind {
        Kind::User => Level::Policymaker,
        Kind::Operator => Level::Administrator,
    }
}

fn view(p: &PolicyDef) -> Value {
    json!({
        "vhost": p.vhost, "name": p.name, "pattern": p.pattern, "apply-to": p.apply_to,
        "definition": p.definition, "priority": p.priority,
    })
}

fn all(api: &Api, kind: Kind, vhost: Option<&str>) -> Vec<PolicyDef> {
    match kind {
        Kind::User => api.broker.policies(vhost),
        Kind::Operator => api.broker.operator_policies(vhost),
    }
}

fn list(api: &Api, caller: &Caller, kind: Kind, vhost: Option<&str>, q: &ListQuery) -> ApiResult<Json<Value>> {
    caller.require(level(kind))?;
    if let Some(v) = vhost {
        api.vhost(v)?;
    }
    let items: Vec<Rendered> = all(api, kind, vhost)
        .iter()
        .filter(|p| caller.can_use(api, &p.vhost))
        .map(|p| Rendered::new(view(p)))
        .collect();
    Ok(Json(q.answer(items, |r| r.0.clone())?))
}

fn one(api: &Api, caller: &Caller, kind: Kind, vhost: &str, name: &str) -> ApiResult<Json<Value>> {
    caller.require(level(kind))?;
    if !caller.can_use(api, vhost) {
        return Err(ApiError::not_found());
    }
    let found = all(api, kind, Some(vhost)).into_iter().find(|p| p.name == name).ok_or_else(ApiError::not_found)?;
    Ok(Json(view(&found)))
}

#[derive(Deserialize)]
pub(crate) struct PolicyBody {
    pattern: Option<String>,
    #[serde(default)]
    definition: Option<Map<String, Value>>,
    #[serde(default)]
    priority: Option<Value>,
    #[serde(rename = "apply-to")]
    apply_to: Option<String>,
}

async fn put(
    api: &Api,
    caller: &Caller,
    kind: Kind,
    vhost: String,
    name: String,
    body: PolicyBody,
) -> ApiResult<StatusCode> {
    caller.require(level(kind))?;
    if api.broker.vhost(&vhost).is_none() {
        return Err(ApiError { status: StatusCode::NOT_FOUND, error: "not_found", reason: "vhost_not_found".into() });
    }
    if !caller.can_use(api, &vhost) {
        return Err(ApiError::not_authorized("Access refused."));
    }
    let missing: Vec<&str> = [("pattern", body.pattern.is_none()), ("definition", body.definition.is_none())]
        .iter()
        .filter(|(_, m)| *m)
        .map(|(k, _)| *k)
        .collect();
    if !missing.is_empty() {
        let keys: Vec<String> = missing.iter().map(|k| format!("{{key_missing,{k}}}")).collect();
        return Err(ApiError::bad_request(format!("[{}]", keys.join(","))));
    }
    let priority = match &body.priority {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| ApiError::bad_request(format!("Validation failed\n\n{v} is not a valid priority\n")))?,
    };
    let def = PolicyDef {
        vhost: vhost.clone(),
        name: name.clone(),
        pattern: body.pattern.unwrap_or_default(),
        apply_to: body.apply_to.unwrap_or_else(|| "all".into()),
        definition: body.definition.unwrap_or_default(),
        priority,
    };
    let new = !all(api, kind, Some(&vhost)).iter().any(|p| p.name == name);
    let set = match kind {
        Kind::User => api.broker.set_policy(def),
        Kind::Operator => api.broker.set_operator_policy(def),
    };
    set.map_err(|reason| {
        if reason == "vhost_not_found" {
            ApiError { status: StatusCode::NOT_FOUND, error: "not_found", reason }
        } else {
            ApiError::bad_request(reason)
        }
    })?;
    api.durable().await?;
    Ok(created(new))
}

async fn delete(api: &Api, caller: &Caller, kind: Kind, vhost: &str, name: &str) -> ApiResult<StatusCode> {
    caller.require(level(kind))?;
    if !caller.can_use(api, vhost) {
        return Err(ApiError::not_found());
    }
    let cleared = match kind {
        Kind::User => api.broker.clear_policy(vhost, name),
        Kind::Operator => api.broker.clear_operator_policy(vhost, name),
    };
    if !cleared {
        return Err(ApiError::not_found());
    }
    api.durable().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn policies(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    list(&api, &caller, Kind::User, None, &q)
}

pub(crate) async fn policies_in(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    list(&api, &caller, Kind::User, Some(&vhost), &q)
}

pub(crate) async fn policy(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    one(&api, &caller, Kind::User, &vhost, &name)
}

pub(crate) async fn put_policy(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    Body(body): Body<PolicyBody>,
) -> ApiResult<StatusCode> {
    put(&api, &caller, Kind::User, vhost, name, body).await
}

pub(crate) async fn delete_policy(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    delete(&api, &caller, Kind::User, &vhost, &name).await
}

pub(crate) async fn operator_policies(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    list(&api, &caller, Kind::Operator, None, &q)
}

pub(crate) async fn operator_policies_in(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    list(&api, &caller, Kind::Operator, Some(&vhost), &q)
}

pub(crate) async fn operator_policy(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    one(&api, &caller, Kind::Operator, &vhost, &name)
}

pub(crate) async fn put_operator_policy(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    Body(body): Body<PolicyBody>,
) -> ApiResult<StatusCode> {
    put(&api, &caller, Kind::Operator, vhost, name, body).await
}

pub(crate) async fn delete_operator_policy(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    delete(&api, &caller, Kind::Operator, &vhost, &name).await
}
