//! `GET/POST /api/definitions` and `/api/definitions/{vhost}`: RabbitMQ's
//! definitions format, the same file `rabbitmqctl export_definitions` and
//! RabbitMQ's UI write.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;

use super::auth::{Caller, Level};
use super::{Api, ApiError, ApiResult, Body};
use crate::store::definitions::Definitions;

fn to_json(d: &Definitions) -> ApiResult<Json<Value>> {
    let mut v = serde_json::to_value(d).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(m) = v.as_object_mut() {
        // Ours, not RabbitMQ's: the journal position of a snapshot.
        m.remove("warren_journal_seq");
    }
    Ok(Json(v))
}

pub(crate) async fn export_all(State(api): State<Api>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    to_json(&api.broker.export_all_definitions())
}

pub(crate) async fn export_vhost(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    api.vhost(&vhost)?;
    let all = api.broker.export_all_definitions();
    // RabbitMQ's per-vhost export: no users, vhosts or permissions.
    let d = Definitions {
        rabbit_version: all.rabbit_version,
        rabbitmq_version: all.rabbitmq_version,
        product_name: all.product_name,
        product_version: all.product_version,
        queues: all.queues.into_iter().filter(|q| q.vhost == vhost).collect(),
        exchanges: all.exchanges.into_iter().filter(|x| x.vhost == vhost).collect(),
        bindings: all.bindings.into_iter().filter(|b| b.vhost == vhost).collect(),
        policies: all.policies.into_iter().filter(|p| p.vhost == vhost).collect(),
        parameters: all
            .parameters
            .into_iter()
            .filter(|p| p.get("vhost").and_then(Value::as_str) == Some(vhost.as_str()))
            .collect(),
        ..Definitions::default()
    };
    let mut v = to_json(&d)?;
    if let Some(m) = v.0.as_object_mut() {
        for key in ["users", "vhosts", "permissions", "topic_permissions", "global_parameters"] {
            m.remove(key);
        }
        // Every object is in the vhost of the URL: RabbitMQ leaves out the
        // field (but keeps it on policies).
        for part in ["queues", "exchanges", "bindings"] {
            if let Some(Value::Array(items)) = m.get_mut(part) {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    item.remove("vhost");
                }
            }
        }
    }
    Ok(v)
}

fn parse(body: Value) -> ApiResult<Definitions> {
    serde_json::from_value(body).map_err(|e| ApiError::bad_request(format!("invalid definitions: {e}")))
}

pub(crate) async fn import_all(
    State(api): State<Api>,
    caller: Caller,
    Body(body): Body<Value>,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    let defs = parse(body)?;
    api.broker.import_live(&defs).map_err(ApiError::bad_request)?;
    api.durable().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Imports into one vhost whatever vhost the file names.
pub(crate) async fn import_vhost(
    State(api): State<Api>,
    caller: Caller,
    Path(vhost): Path<String>,
    Body(body): Body<Value>,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    api.vhost(&vhost)?;
    let mut defs = parse(body)?;
    let d = Definitions {
        queues: defs
            .queues
            .drain(..)
            .map(|mut q| {
                q.vhost.clone_from(&vhost);
                q
            })
            .collect(),
        exchanges: defs
            .exchanges
            .drain(..)
            .map(|mut x| {
                x.vhost.clone_from(&vhost);
                x
            })
            .collect(),
        bindings: defs
            .bindings
            .drain(..)
            .map(|mut b| {
                b.vhost.clone_from(&vhost);
                b
            })
            .collect(),
        ..Definitions::default()
    };
    api.broker.import_live(&d).map_err(ApiError::bad_request)?;
    api.durable().await?;
    Ok(StatusCode::NO_CONTENT)
}
