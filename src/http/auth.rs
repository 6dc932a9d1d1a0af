//! HTTP basic auth against the broker's users, and RabbitMQ's management
//! tags: what each tag lets a user see and do.
//!
//! | tag           | may                                                        |
//! |---------------|------------------------------------------------------------|
//! | (none)        | nothing over HTTP ("Not management user")                  |
//! | management    | its vhosts' objects, its own connections                   |
//! | policymaker   | management, and policies in its vhosts                     |
//! | monitoring    | management, and everything read-only (nodes, all conns)   |
//! | administrator | everything                                                 |

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::error::ApiError;
use super::Api;
use crate::broker::User;

/// The authenticated user of one request.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub(crate) user: User,
}

/// The levels a management endpoint asks for, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Management,
    Policymaker,
    Monitoring,
    Administrator,
}

impl Caller {
    fn has(&self, tag: &str) -> bool {
        self.user.tags.iter().any(|t| t == tag)
    }

    pub(crate) fn is_admin(&self) -> bool {
        self.has("administrator")
    }

    /// Monitoring users (and administrators) see every vhost's objects and
    /// every connection, read-only.
    pub(crate) fn sees_all(&self) -> bool {
        self.is_admin() || self.has("monitoring")
    }

    fn level_ok(&self, level: Level) -> bool {
        match level {
            Level::Management => {
                self.is_admin() || ["management", "policymaker", "monitoring"].iter().any(|t| self.has(t))
            }
            Level::Policymaker => self.is_admin() || self.has("policymaker"),
            Level::Monitoring => self.sees_all(),
            Level::Administrator => self.is_admin(),
        }
    }

    /// RabbitMQ answers a user without the tag with 401 and this wording.
    pub(crate) fn require(&self, level: Level) -> Result<(), ApiError> {
        if self.level_ok(level) {
            return Ok(());
        }
        let reason = match level {
            Level::Management => "Not management user",
            Level::Policymaker => "Not policymaker user",
            Level::Monitoring => "Not monitor user",
            Level::Administrator => "Not administrator user",
        };
        Err(ApiError { status: StatusCode::UNAUTHORIZED, error: "not_authorised", reason: reason.into() })
    }

    /// Whether the caller may see objects of `vhost`: monitoring and
    /// administrators see all, others the vhosts they have permissions in.
    pub(crate) fn can_see(&self, api: &Api, vhost: &str) -> bool {
        self.sees_all() || api.broker.can_access_vhost(&self.user.name, vhost)
    }

    /// As `can_see`, for changes: administrators change anything, others
    /// only where they have permissions (RabbitMQ then checks the
    /// configure/write/read patterns).
    pub(crate) fn can_use(&self, api: &Api, vhost: &str) -> bool {
        self.is_admin() || api.broker.can_access_vhost(&self.user.name, vhost)
    }
}

/// A request without credentials: RabbitMQ's 401 with an empty body, so a
/// browser asks for a password.
struct Challenge;

impl IntoResponse for Challenge {
    fn into_response(self) -> Response {
        (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Basic realm=\"RabbitMQ Management\"")]).into_response()
    }
}

fn credentials(parts: &Parts) -> Option<(String, String)> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

impl FromRequestParts<Api> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        let Some((name, pass)) = credentials(parts) else {
            return Err(Challenge.into_response());
        };
        let from_loopback =
            parts.extensions.get::<ConnectInfo<SocketAddr>>().is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback());
        let user = api
            .broker
            .authenticate(&name, &pass, from_loopback)
            .map_err(|_| ApiError::not_authorized("Login failed").into_response())?;
        let caller = Caller { user };
        caller.require(Level::Management).map_err(IntoResponse::into_response)?;
        Ok(caller)
    }
}
