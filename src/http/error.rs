//! The management API's errors, with RabbitMQ's status codes and bodies
//! (`{"error": "Object Not Found", "reason": "Not Found"}`), so clients that
//! match on them (rabbitmqadmin, test helpers) behave as against RabbitMQ.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::broker::{AmqpError, ReplyCode};

#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) error: &'static str,
    pub(crate) reason: String,
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub(crate) fn not_found() -> Self {
        ApiError { status: StatusCode::NOT_FOUND, error: "Object Not Found", reason: "Not Found".into() }
    }

    pub(crate) fn bad_request(reason: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, error: "bad_request", reason: reason.into() }
    }

    /// A failed login, or a user whose tags do not allow the call (RabbitMQ
    /// answers both with 401).
    pub(crate) fn not_authorized(reason: impl Into<String>) -> Self {
        ApiError { status: StatusCode::UNAUTHORIZED, error: "not_authorized", reason: reason.into() }
    }

    pub(crate) fn internal(reason: impl Into<String>) -> Self {
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, error: "internal_server_error", reason: reason.into() }
    }

    pub(crate) fn method_not_allowed() -> Self {
        ApiError { status: StatusCode::METHOD_NOT_ALLOWED, error: "Method Not Allowed", reason: "".into() }
    }
}

/// A broker refusal, as RabbitMQ's API reports the same refusal: 404 for a
/// missing object, 400 with the AMQP text (`PRECONDITION_FAILED - ...` is
/// what RabbitMQ puts in `reason` too) for the rest.
impl From<AmqpError> for ApiError {
    fn from(e: AmqpError) -> Self {
        match e.code {
            ReplyCode::NotFound => ApiError::not_found(),
            // RabbitMQ's API words every refusal the same way.
            ReplyCode::AccessRefused => {
                ApiError { status: StatusCode::UNAUTHORIZED, error: "not_authorised", reason: "Access refused.".into() }
            }
            // RabbitMQ's API leaves out the AMQP code name in front.
            _ => {
                let text = e.text.split_once(" - ").map_or(e.text.as_str(), |(_, t)| t);
                ApiError::bad_request(text.to_owned())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            // RabbitMQ's 405 has no body.
            return self.status.into_response();
        }
        let mut res = (self.status, Json(json!({ "error": self.error, "reason": self.reason }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"RabbitMQ Management\""));
        }
        res
    }
}
