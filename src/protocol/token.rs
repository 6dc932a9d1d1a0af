//! A connection that logged in with an OAuth 2.0 token: its permissions
//! come from the token's scopes, `connection.update-secret` swaps in a new
//! token, and the connection is closed when the token it holds expires
//! (on the broker's clock, so tests can move time). The checks themselves
//! are `Broker::verify_token` and `Permissions::token_access`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use amq_protocol::protocol::{connection, AMQPClass};

use super::connection::Session;
use crate::broker::oauth2::Token;
use crate::broker::{AmqpError, AmqpResult};

impl Session {
    /// Takes the token a login came with (`None` for a password login).
    pub(super) fn set_token(&mut self, token: Option<Arc<Token>>) {
        self.token_expires_ms = token.as_ref().and_then(|t| t.expires_at).map(|exp| exp.saturating_mul(1000));
        self.token = token;
    }

    /// When the token expires, as an instant of the connection's clock: what
    /// is left of it in broker time, from now. Broker time is the virtual
    /// clock under `--clock manual`, so a test expires a token by moving
    /// that clock (the driver looks again whenever it moves).
    pub(super) fn token_deadline(&self) -> Option<Instant> {
        let exp = self.token_expires_ms?;
        Some(self.now + Duration::from_millis(exp.saturating_sub(self.broker.clock().unix_millis())))
    }

    /// connection.open's vhost check: the token's scopes, else the table.
    pub(super) fn can_open_vhost(&self, vhost: &str) -> bool {
        match &self.token {
            Some(t) => t.can_access_vhost(vhost),
            None => self.broker.can_access_vhost(&self.user, vhost),
        }
    }

    /// The permission checker for `vhost`.
    pub(super) fn access_in(&self, vhost: &str) -> crate::broker::Access {
        match &self.token {
            Some(t) => self.broker.permissions().token_access(t, vhost),
            None => self.broker.access(&self.user, vhost),
        }
    }

    /// connection.update-secret. With a token login the new secret must be
    /// a valid token: it replaces the permissions and the expiry; a refused
    /// one closes the connection with RabbitMQ's 530 (rabbit_reader). A
    /// password login has nothing to refresh and is acknowledged.
    pub(super) fn handle_update_secret(&mut self, m: connection::UpdateSecret) -> AmqpResult<()> {
        if self.token.is_some() {
            let secret = String::from_utf8_lossy(m.new_secret.as_bytes());
            match self.broker.verify_token(&secret) {
                Ok(token) => {
                    let token = Arc::new(token);
                    if let Some(v) = &self.vhost {
                        let vhost = v.name.clone();
                        self.access = self.broker.permissions().token_access(&token, &vhost);
                    }
                    self.set_token(Some(token));
                    tracing::info!(peer = %self.peer, user = %self.user, "user '{}' updated secret, reason: {}", self.user, m.reason.as_str());
                }
                Err(why) => {
                    tracing::error!(peer = %self.peer, user = %self.user, "Secret update was refused for user '{}': {why}", self.user);
                    return Err(AmqpError::not_allowed("New secret was refused by one of the backends").during(10, 70));
                }
            }
        }
        let ok = connection::UpdateSecretOk {};
        self.send(0, AMQPClass::Connection(connection::AMQPMethod::UpdateSecretOk(ok)));
        Ok(())
    }

    /// The token's `exp` has passed: RabbitMQ closes the connection.
    pub(super) fn token_expired(&mut self, now: Instant) -> bool {
        if self.token_deadline().is_none_or(|d| now < d) {
            return false;
        }
        self.token_expires_ms = None;
        tracing::info!(peer = %self.peer, user = %self.user, "closing connection: its OAuth 2.0 token expired");
        self.force_close("credential expired");
        true
    }
}
