//! Vhosts, users, permissions and topic permissions
//! (`/api/vhosts`, `/api/users`, `/api/permissions`, `/api/topic-permissions`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{Caller, Level};
use super::paging::ListQuery;
use super::views::{self, Rendered};
use super::{created, Api, ApiError, ApiResult, Body};
use crate::store::definitions::{PermissionDef, TopicPermissionDef, UserDef, VhostDef};

pub(crate) async fn vhosts(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let visible: Vec<_> = api.broker.vhosts().into_iter().filter(|v| caller.can_see(&api, &v.name)).collect();
    Ok(Json(q.answer(visible, |v| views::vhost(&api, v))?))
}

pub(crate) async fn vhost(State(api): State<Api>, caller: Caller, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let v = api.vhost(&name)?;
    if !caller.can_see(&api, &name) {
        return Err(ApiError::not_found());
    }
    Ok(Json(views::vhost(&api, &v)))
}

#[derive(Deserialize, Default)]
pub(crate) struct VhostBody {
    description: Option<String>,
    tags: Option<Value>,
    default_queue_type: Option<String>,
}

pub(crate) async fn put_vhost(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<VhostBody>,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    let tags = match body.tags {
        Some(Value::String(s)) => {
            Some(json!(s.split(',').map(str::trim).filter(|t| !t.is_empty()).collect::<Vec<_>>()))
        }
        other => other,
    };
    let description = body.description.unwrap_or_default();
    let def = VhostDef {
        name: name.clone(),
        metadata: Some(json!({ "description": description, "tags": tags.clone().unwrap_or_else(|| json!([])) })),
        description: Some(description),
        tags,
        default_queue_type: body.default_queue_type.filter(|t| !t.is_empty() && t != "undefined"),
        // PUT /api/vhosts does not change limits (`Vhost::set_def` keeps them).
        limits: None,
    };
    let new = api.broker.put_vhost(&def);
    if new {
        // RabbitMQ gives whoever creates a vhost over HTTP full permissions
        // in it, so the next call (declaring a queue there) works.
        api.broker.set_permissions(PermissionDef {
            user: caller.user.name.clone(),
            vhost: name,
            configure: ".*".into(),
            write: ".*".into(),
            read: ".*".into(),
        });
    }
    api.durable().await?;
    Ok(created(new))
}

pub(crate) async fn delete_vhost(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    if !api.broker.delete_vhost(&name) {
        return Err(ApiError::not_found());
    }
    api.durable().await?;
    Ok(StatusCode::NO_CONTENT)
}

fn permission_list(api: &Api, caller: &Caller, keep: impl Fn(&PermissionDef) -> bool) -> Vec<Rendered> {
    let (perms, _) = api.broker.permissions().export();
    perms
        .iter()
        .filter(|p| keep(p) && (caller.is_admin() || p.user == caller.user.name))
        .map(|p| Rendered::new(views::permission(p)))
        .collect()
}

fn topic_permission_list(api: &Api, caller: &Caller, keep: impl Fn(&TopicPermissionDef) -> bool) -> Vec<Rendered> {
    let (_, topics) = api.broker.permissions().export();
    topics
        .iter()
        .filter(|t| keep(t) && (caller.is_admin() || t.user == caller.user.name))
        .map(|t| Rendered::new(views::topic_permission(t)))
        .collect()
}

fn listed(q: &ListQuery, items: Vec<Rendered>) -> ApiResult<Json<Value>> {
    Ok(Json(q.answer(items, |r| r.0.clone())?))
}

pub(crate) async fn vhost_permissions(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    api.vhost(&vhost)?;
    listed(&q, permission_list(&api, &caller, |p| p.vhost == vhost))
}

pub(crate) async fn vhost_topic_permissions(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    api.vhost(&vhost)?;
    listed(&q, topic_permission_list(&api, &caller, |t| t.vhost == vhost))
}

pub(crate) async fn users(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    Ok(Json(q.answer(api.broker.users(), |u| views::user_with_limits(&api, u))?))
}

pub(crate) async fn users_without_permissions(State(api): State<Api>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    let (perms, _) = api.broker.permissions().export();
    let lonely: Vec<Value> = api
        .broker
        .users()
        .iter()
        .filter(|u| !perms.iter().any(|p| p.user == u.name))
        .map(|u| views::user_with_limits(&api, u))
        .collect();
    Ok(Json(Value::Array(lonely)))
}

#[derive(Deserialize)]
pub(crate) struct BulkDelete {
    users: Vec<String>,
}

pub(crate) async fn bulk_delete_users(
    State(api): State<Api>,
    caller: Caller,
    Body(body): Body<BulkDelete>,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    for u in &body.users {
        api.broker.delete_user(u);
    }
    api.durable().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn user(State(api): State<Api>, caller: Caller, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    let u = api.broker.user(&name).ok_or_else(ApiError::not_found)?;
    Ok(Json(views::user_with_limits(&api, &u)))
}

#[derive(Deserialize, Default)]
pub(crate) struct UserBody {
    password: Option<String>,
    password_hash: Option<String>,
    hashing_algorithm: Option<String>,
    tags: Option<Value>,
}

pub(crate) async fn put_user(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<UserBody>,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    let Some(tags) = body.tags else { return Err(ApiError::bad_request("tags_not_present")) };
    let tags: Vec<String> = match tags {
        Value::String(s) => s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect(),
        Value::Array(a) => a.iter().filter_map(|t| t.as_str().map(String::from)).collect(),
        _ => return Err(ApiError::bad_request("tags must be a string or a list of strings")),
    };
    let tag_refs: Vec<&str> = tags.iter().map(String::as_str).collect();
    // As rabbit_mgmt_wm_users: a hash without `hashing_algorithm` (and a
    // new user without a password) gets the node's password_hashing_module.
    let node_algorithm = || api.broker.password_hashing().as_str().to_owned();
    let mut def = match (&body.password, &body.password_hash) {
        (Some(p), _) => api.broker.new_user(&name, p, &tag_refs).to_def(),
        (None, Some(hash)) => {
            if base64::Engine::decode(&base64::engine::general_purpose::STANDARD, hash).is_err() {
                return Err(ApiError::bad_request(format!("password_hash is not base64: '{hash}'")));
            }
            UserDef {
                name: name.clone(),
                password_hash: hash.clone(),
                hashing_algorithm: body.hashing_algorithm.clone().unwrap_or_else(node_algorithm),
                tags: Value::Null,
                limits: None,
            }
        }
        // No password given: an existing user keeps its own; a new one has
        // none and cannot log in with a password (as in RabbitMQ).
        (None, None) => match api.broker.user(&name) {
            Some(u) => u.to_def(),
            None => UserDef {
                name: name.clone(),
                password_hash: String::new(),
                hashing_algorithm: node_algorithm(),
                tags: Value::Null,
                limits: None,
            },
        },
    };
    def.tags = Value::String(tags.join(","));
    let new = api.broker.put_user(&def).map_err(ApiError::bad_request)?;
    api.durable().await?;
    Ok(created(new))
}

pub(crate) async fn delete_user(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    if !api.broker.delete_user(&name) {
        return Err(ApiError::not_found());
    }
    api.durable().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn user_permissions(
    State(api): State<Api>,
    caller: Caller,
    Path(user): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    api.broker.user(&user).ok_or_else(ApiError::not_found)?;
    listed(&q, permission_list(&api, &caller, |p| p.user == user))
}

pub(crate) async fn user_topic_permissions(
    State(api): State<Api>,
    caller: Caller,
    Path(user): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    api.broker.user(&user).ok_or_else(ApiError::not_found)?;
    listed(&q, topic_permission_list(&api, &caller, |t| t.user == user))
}

pub(crate) async fn permissions(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    listed(&q, permission_list(&api, &caller, |_| true))
}

pub(crate) async fn permission(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, user)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    let (perms, _) = api.broker.permissions().export();
    let p = perms.iter().find(|p| p.vhost == vhost && p.user == user).ok_or_else(ApiError::not_found)?;
    Ok(Json(views::permission(p)))
}

#[derive(Deserialize)]
pub(crate) struct PermissionBody {
    configure: Option<String>,
    write: Option<String>,
    read: Option<String>,
}

/// A pattern RabbitMQ would refuse: it compiles each one at PUT.
fn check_pattern(p: &str) -> ApiResult<()> {
    regex::Regex::new(p)
        .map(|_| ())
        .map_err(|e| ApiError::bad_request(format!("invalid regular expression '{p}': {e}")))
}

fn vhost_and_user(api: &Api, vhost: &str, user: &str) -> ApiResult<()> {
    if api.broker.vhost(vhost).is_none() || api.broker.user(user).is_none() {
        return Err(ApiError::bad_request("vhost_or_user_not_found"));
    }
    Ok(())
}

pub(crate) async fn put_permission(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, user)): Path<(String, String)>,
    Body(body): Body<PermissionBody>,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    vhost_and_user(&api, &vhost, &user)?;
    let missing: Vec<&str> = [("configure", &body.configure), ("write", &body.write), ("read", &body.read)]
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| *k)
        .collect();
    if !missing.is_empty() {
        let keys: Vec<String> = missing.iter().map(|k| format!("{{key_missing,{k}}}")).collect();
        return Err(ApiError::bad_request(format!("[{}]", keys.join(","))));
    }
    let def = PermissionDef {
        user: user.clone(),
        vhost: vhost.clone(),
        configure: body.configure.unwrap_or_default(),
        write: body.write.unwrap_or_default(),
        read: body.read.unwrap_or_default(),
    };
    for p in [&def.configure, &def.write, &def.read] {
        check_pattern(p)?;
    }
    let (perms, _) = api.broker.permissions().export();
    let new = !perms.iter().any(|p| p.vhost == vhost && p.user == user);
    api.broker.set_permissions(def);
    api.durable().await?;
    Ok(created(new))
}

pub(crate) async fn delete_permission(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    let (perms, _) = api.broker.permissions().export();
    if !perms.iter().any(|p| p.vhost == vhost && p.user == user) {
        return Err(ApiError::not_found());
    }
    api.broker.clear_permissions(&user, &vhost);
    api.durable().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn topic_permissions(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    listed(&q, topic_permission_list(&api, &caller, |_| true))
}

pub(crate) async fn topic_permission(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, user)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    let (_, topics) = api.broker.permissions().export();
    let found: Vec<Value> =
        topics.iter().filter(|t| t.vhost == vhost && t.user == user).map(views::topic_permission).collect();
    if found.is_empty() {
        return Err(ApiError::not_found());
    }
    Ok(Json(Value::Array(found)))
}

#[derive(Deserialize)]
pub(crate) struct TopicPermissionBody {
    exchange: Option<String>,
    write: Option<String>,
    read: Option<String>,
}

pub(crate) async fn put_topic_permission(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, user)): Path<(String, String)>,
    Body(body): Body<TopicPermissionBody>,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    vhost_and_user(&api, &vhost, &user)?;
    let Some(exchange) = body.exchange else { return Err(ApiError::bad_request("[{key_missing,exchange}]")) };
    let def = TopicPermissionDef {
        user: user.clone(),
        vhost: vhost.clone(),
        exchange,
        write: body.write.unwrap_or_default(),
        read: body.read.unwrap_or_default(),
    };
    check_pattern(&def.write)?;
    check_pattern(&def.read)?;
    let (_, topics) = api.broker.permissions().export();
    let new = !topics.iter().any(|t| t.vhost == vhost && t.user == user && t.exchange == def.exchange);
    api.broker.set_topic_permissions(def);
    api.durable().await?;
    Ok(created(new))
}

pub(crate) async fn delete_topic_permission(
    State(api): State<Api>,
    caller: Caller,
    Path((vhost, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    let (_, topics) = api.broker.permissions().export();
    if !topics.iter().any(|t| t.vhost == vhost && t.user == user) {
        return Err(ApiError::not_found());
    }
    api.broker.clear_topic_permissions(&user, &vhost, None);
    api.durable().await?;
    Ok(StatusCode::NO_CONTENT)
}
