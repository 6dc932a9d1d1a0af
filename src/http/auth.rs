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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::broker::alarms::AlarmSet;
    use crate::broker::Broker;

    fn api() -> Api {
        let broker = Arc::new(Broker::in_memory("guest", "guest", "/"));
        let (tx, alarms) = tokio::sync::watch::channel(AlarmSet::default());
        let faults = crate::faults::Faults::new(Arc::clone(&broker), Arc::new(tx), crate::clock::Clock::real());
        Api::new(broker, Arc::new(crate::Config::ephemeral()), alarms, Vec::new(), faults)
    }

    fn request_from(peer: &str, user: &str, pass: &str) -> Parts {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let (mut parts, ()) = axum::http::Request::builder()
            .uri("/api/overview")
            .header(header::AUTHORIZATION, format!("Basic {basic}"))
            .body(())
            .unwrap()
            .into_parts();
        parts.extensions.insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        parts
    }

    #[tokio::test]
    async fn guest_logs_in_over_http_from_loopback_only() {
        let api = api();
        let mut local = request_from("127.0.0.1:40000", "guest", "guest");
        assert!(Caller::from_request_parts(&mut local, &api).await.is_ok());
        let mut remote = request_from("192.0.2.7:40000", "guest", "guest");
        let refused = Caller::from_request_parts(&mut remote, &api).await.unwrap_err();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        // Another administrator may log in from anywhere.
        api.broker.put_user(&crate::broker::User::new("ops", "pw", &["administrator"]).to_def()).unwrap();
        let mut ops = request_from("192.0.2.7:40000", "ops", "pw");
        assert!(Caller::from_request_parts(&mut ops, &api).await.is_ok());
    }

    #[test]
    fn tags_set_the_level_as_in_rabbitmq() {
        for (tags, levels) in [
            (&["management"][..], [true, false, false, false]),
            (&["policymaker"][..], [true, true, false, false]),
            (&["monitoring"][..], [true, false, true, false]),
            (&["administrator"][..], [true, true, true, true]),
        ] {
            let caller = Caller { user: crate::broker::User::new("u", "pw", tags) };
            let got = [Level::Management, Level::Policymaker, Level::Monitoring, Level::Administrator]
                .map(|l| caller.require(l).is_ok());
            assert_eq!(got, levels, "{tags:?}");
        }
        let nobody = Caller { user: crate::broker::User::new("n", "pw", &[]) };
        assert_eq!(nobody.require(Level::Management).unwrap_err().reason, "Not management user");
    }
}
