//! Connections, channels and consumers (`/api/connections`, `/api/channels`,
//! `/api/consumers`), from the broker's registry of open connections, and
//! closing a connection (`DELETE /api/connections/{name}` with `X-Reason`).
//!
//! Management users see their own connections; monitoring users and
//! administrators see all, as in RabbitMQ.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::Value;

use super::auth::Caller;
use super::paging::ListQuery;
use super::views::{self, Rendered};
use super::{Api, ApiError, ApiResult};
use crate::broker::{ChannelInfo, ConnectionInfo};

/// RabbitMQ's reason when the request gives none.
const DEFAULT_REASON: &str = "Closed via management plugin";

/// The `X-Reason` of a close, as UTF-8 (not just the visible ASCII
/// `to_str` takes: RabbitMQ passes the header's bytes through to the reply
/// text), bounded because it goes into a short string of connection.close.
fn reason(headers: &HeaderMap) -> String {
    let given = headers.get("x-reason").and_then(|v| std::str::from_utf8(v.as_bytes()).ok()).filter(|r| !r.is_empty());
    given.unwrap_or(DEFAULT_REASON).chars().take(200).collect()
}

fn visible_connections(api: &Api, caller: &Caller) -> Vec<ConnectionInfo> {
    api.broker.connections().into_iter().filter(|c| caller.sees_all() || c.user == caller.user.name).collect()
}

fn visible_channels(api: &Api, caller: &Caller) -> Vec<ChannelInfo> {
    api.broker.channels().into_iter().filter(|c| caller.sees_all() || c.user == caller.user.name).collect()
}

fn render_channels(api: &Api, q: &ListQuery, list: Vec<ChannelInfo>) -> ApiResult<Json<Value>> {
    let conns = api.broker.connections();
    Ok(Json(q.answer(list, |ch| views::channel(api, ch, conns.iter().find(|c| c.id == ch.connection)))?))
}

pub(crate) async fn connections(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let list = visible_connections(&api, &caller);
    Ok(Json(q.answer(list, |c| views::connection(&api, c))?))
}

pub(crate) async fn vhost_connections(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    api.vhost(&vhost)?;
    let list = visible_connections(&api, &caller).into_iter().filter(|c| c.vhost == vhost).collect();
    Ok(Json(q.answer(list, |c| views::connection(&api, c))?))
}

pub(super) fn find(api: &Api, caller: &Caller, name: &str) -> ApiResult<ConnectionInfo> {
    visible_connections(api, caller).into_iter().find(|c| c.name == name).ok_or_else(ApiError::not_found)
}

pub(crate) async fn connection(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(views::connection(&api, &find(&api, &caller, &name)?)))
}

/// Closes the connection with 320 CONNECTION_FORCED and the `X-Reason`
/// text, as RabbitMQ's API does. Administrators close any connection,
/// others their own.
pub(crate) async fn close(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let c = find(&api, &caller, &name)?;
    if !caller.is_admin() && c.user != caller.user.name {
        return Err(ApiError::not_authorized("Access refused."));
    }
    let reason = reason(&headers);
    if !api.broker.close_connection(c.id, &reason) {
        return Err(ApiError::not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// RabbitMQ 3.13's `/api/connections/username/{user}`: a user's
/// connections (administrators, or the user itself).
pub(crate) async fn user_connections(
    State(api): State<Api>,
    caller: Caller,
    Path(user): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    if !caller.sees_all() && caller.user.name != user {
        return Err(ApiError::not_authorized("Access refused."));
    }
    let list: Vec<ConnectionInfo> = api.broker.connections().into_iter().filter(|c| c.user == user).collect();
    Ok(Json(q.answer(list, |c| views::connection(&api, c))?))
}

/// Closes every connection of a user, with the `X-Reason` text.
pub(crate) async fn close_user_connections(
    State(api): State<Api>,
    caller: Caller,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    if !caller.is_admin() && caller.user.name != user {
        return Err(ApiError::not_authorized("Access refused."));
    }
    let reason = reason(&headers);
    api.broker.close_connections_of_user(&user, &reason);
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn connection_channels(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let c = find(&api, &caller, &name)?;
    let list = visible_channels(&api, &caller).into_iter().filter(|ch| ch.connection == c.id).collect();
    render_channels(&api, &q, list)
}

pub(crate) async fn channels(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    render_channels(&api, &q, visible_channels(&api, &caller))
}

pub(crate) async fn vhost_channels(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    api.vhost(&vhost)?;
    let list = visible_channels(&api, &caller).into_iter().filter(|c| c.vhost == vhost).collect();
    render_channels(&api, &q, list)
}

pub(crate) async fn channel(
    State(api): State<Api>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let ch = visible_channels(&api, &caller).into_iter().find(|c| c.name == name).ok_or_else(ApiError::not_found)?;
    let conns = api.broker.connections();
    Ok(Json(views::channel(&api, &ch, conns.iter().find(|c| c.id == ch.connection))))
}

fn consumer_list(api: &Api, caller: &Caller, vhost: Option<&str>) -> Vec<Rendered> {
    let conns = api.broker.connections();
    let mut out = Vec::new();
    for v in api.broker.vhosts() {
        if vhost.is_some_and(|want| want != v.name) || !caller.can_see(api, &v.name) {
            continue;
        }
        for q in v.queues() {
            for c in q.consumer_details() {
                let conn = conns.iter().find(|x| x.id == c.connection_id);
                if caller.sees_all() || conn.is_some_and(|x| x.user == caller.user.name) {
                    out.push(Rendered::new(views::consumer(api, &q, &c, conn)));
                }
            }
        }
    }
    out
}

pub(crate) async fn consumers(
    State(api): State<Api>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    Ok(Json(q.answer_in_order(consumer_list(&api, &caller, None), |r| r.0.clone())?))
}

pub(crate) async fn consumers_in(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    api.vhost(&vhost)?;
    Ok(Json(q.answer_in_order(consumer_list(&api, &caller, Some(&vhost)), |r| r.0.clone())?))
}
