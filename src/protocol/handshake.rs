//! The handshake: the protocol header, then start/start-ok (SASL, in
//! `auth.rs`), tune/tune-ok and open/open-ok, as `Phase::Header` and
//! `Phase::Handshake { step }`. Until tune-ok a frame may carry at most
//! frame-min-size octets; all of it must be done within
//! `Config::handshake_timeout` (RabbitMQ's `handshake_timeout`), once for
//! the protocol header and again for the methods after it.

use amq_protocol::protocol::{connection, AMQPClass};
use amq_protocol::types::{AMQPValue, FieldTable, LongString};

use super::auth::{self, Credentials};
use super::codec::{self, decode_method, Method};
use super::connection::{Next, Phase, Session};
use super::frame::{Frame, FrameKind};
use crate::broker::{AmqpError, AmqpResult};
use crate::wire::table;

pub(super) const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
/// The smallest frame_max the spec lets a peer negotiate.
const FRAME_MIN_SIZE: u32 = 4096;
/// The frame size limit before tune-ok, in `split_frame`'s terms (the whole
/// frame): RabbitMQ takes a payload of at most frame-min-size octets until
/// the peer has agreed to more (its check allows the 8 octets of framing on
/// top), and closes the socket without a word for a larger one. So a client
/// cannot make us buffer, or parse, more than that before it has logged in.
pub(super) const PRE_TUNE_FRAME_MAX: u32 = FRAME_MIN_SIZE + super::frame::FRAME_OVERHEAD as u32;

/// The method the handshake waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    StartOk,
    TuneOk,
    Open,
}

/// The protocol headers we speak: 0-9-1, and the 0-9 one some old clients
/// send, which RabbitMQ also takes. Anything else is answered with ours.
pub(super) fn is_supported_header(header: &[u8]) -> bool {
    header == PROTOCOL_HEADER || header == b"AMQP\x01\x01\x00\x09"
}

/// The client's advertised capabilities that change what we send.
#[derive(Default)]
pub(super) struct ClientCapabilities {
    pub consumer_cancel_notify: bool,
    pub authentication_failure_close: bool,
    pub connection_blocked: bool,
}

impl ClientCapabilities {
    /// Reads `capabilities` from start-ok's client-properties (raw, well
    /// formed) one level at a time: the rest, at whatever depth, is never
    /// decoded. Of duplicate keys the first counts, as in RabbitMQ.
    fn from_client_properties(props: &[u8]) -> Self {
        let caps = table::table_body(props)
            .ok()
            .and_then(|body| table::find(body, b"capabilities"))
            .and_then(|e| table::table_value(e.tag, e.value))
            .unwrap_or_default();
        let flag = |key: &[u8]| {
            table::find(caps, key).is_some_and(|e| e.tag == b't' && e.value.first().is_some_and(|b| *b != 0))
        };
        ClientCapabilities {
            consumer_cancel_notify: flag(b"consumer_cancel_notify"),
            authentication_failure_close: flag(b"authentication_failure_close"),
            connection_blocked: flag(b"connection.blocked"),
        }
    }
}

impl Session {
    pub(super) fn send_start(&mut self) {
        let mut caps = FieldTable::default();
        for cap in [
            "publisher_confirms",
            "exchange_exchange_bindings",
            "basic.nack",
            "consumer_cancel_notify",
            "authentication_failure_close",
            "per_consumer_qos",
            "consumer_priorities",
            "direct_reply_to",
            "connection.blocked",
        ] {
            caps.insert(cap.into(), AMQPValue::Boolean(true));
        }
        let mut props = FieldTable::default();
        let text = |s: &str| AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()));
        props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
        props.insert("product".into(), text("Warren"));
        props.insert("version".into(), text(env!("CARGO_PKG_VERSION")));
        props.insert("platform".into(), text("Rust"));
        props.insert("cluster_name".into(), text("warren@localhost"));
        props.insert("copyright".into(), text("Copyright (c) the Warren authors"));
        props.insert("information".into(), text("Licensed under the Apache License 2.0"));
        self.send(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Start(connection::Start {
                version_major: 0,
                version_minor: 9,
                server_properties: props,
                mechanisms: LongString::from(
                    if self.tls.as_ref().is_some_and(|t| t.external_offered) {
                        auth::MECHANISMS_WITH_EXTERNAL
                    } else {
                        auth::MECHANISMS
                    }
                    .to_vec(),
                ),
                locales: LongString::from(b"en_US".to_vec()),
            })),
        );
    }

    fn handshake_step(&self) -> Option<Step> {
        match self.phase {
            Phase::Handshake { step, .. } => Some(step),
            _ => None,
        }
    }

    /// The next step of the handshake, under the same deadline.
    fn set_step(&mut self, next: Step) {
        if let Phase::Handshake { step, .. } = &mut self.phase {
            *step = next;
        }
    }

    pub(super) fn handle_handshake(&mut self, frame: Frame) -> AmqpResult<Next> {
        if frame.kind == FrameKind::Heartbeat {
            return Ok(Next::Continue);
        }
        let step = self.handshake_step();
        let method = match (frame.kind, frame.channel, decode_method(&frame.payload)) {
            (FrameKind::Method, 0, Ok(Method::StartOk(ok))) if step == Some(Step::StartOk) => {
                return self.handle_start_ok(ok)
            }
            (FrameKind::Method, 0, Ok(Method::Other(AMQPClass::Connection(m)))) => m,
            _ => {
                tracing::debug!(peer = %self.peer, "protocol violation during handshake");
                return Ok(Next::Drop);
            }
        };
        match (step, method) {
            (Some(Step::TuneOk), connection::AMQPMethod::TuneOk(ok)) => self.handle_tune_ok(ok),
            (Some(Step::Open), connection::AMQPMethod::Open(open)) => self.handle_open(open),
            (_, connection::AMQPMethod::Close(_)) => {
                self.answer_close();
                Ok(Next::Continue)
            }
            _ => Ok(Next::Drop),
        }
    }

    fn handle_start_ok(&mut self, ok: codec::StartOk) -> AmqpResult<Next> {
        self.caps = ClientCapabilities::from_client_properties(&ok.client_properties);
        let mechanism = String::from_utf8_lossy(&ok.mechanism).into_owned();
        let from_loopback = self.peer.ip().is_loopback();
        let external_offered = self.tls.as_ref().is_some_and(|t| t.external_offered);
        let user = match auth::credentials(&ok.mechanism, &ok.response, external_offered) {
            Credentials::Given { user, password } => {
                self.broker.authenticate(&user, &password, from_loopback).map_err(|why| (user, why))
            }
            Credentials::External => self.external_login(from_loopback),
            Credentials::Malformed => {
                // RabbitMQ answers a response it cannot parse as a protocol
                // error, without the 403 of a wrong password.
                tracing::error!(peer = %self.peer, mechanism, "{}", refusal_log_line(&mechanism, "", "malformed credentials"));
                return Ok(Next::Drop);
            }
            Credentials::Unsupported => {
                tracing::info!(peer = %self.peer, mechanism, "unsupported authentication mechanism");
                return Ok(Next::Drop);
            }
        };
        match user {
            Ok(u) => {
                self.registration.entry().set_login(&u.name, &mechanism, ok.client_properties.clone());
                self.user = u.name;
                self.set_token(u.token);
                self.set_step(Step::TuneOk);
                self.send(
                    0,
                    AMQPClass::Connection(connection::AMQPMethod::Tune(connection::Tune {
                        channel_max: self.config.channel_max,
                        frame_max: self.config.frame_max,
                        heartbeat: self.config.heartbeat,
                    })),
                );
                Ok(Next::Continue)
            }
            Err((user, why)) => {
                tracing::error!(peer = %self.peer, user, mechanism, "{}", refusal_log_line(&mechanism, &user, &why));
                if self.caps.authentication_failure_close {
                    // Closing, so that close-ok is awaited.
                    self.begin_close(AmqpError::access_refused(format!(
                        "Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."
                    )));
                    Ok(Next::Continue)
                } else {
                    Ok(Next::Drop)
                }
            }
        }
    }

    /// EXTERNAL: the certificate's user, who must exist; no password.
    fn external_login(
        &self,
        from_loopback: bool,
    ) -> Result<crate::broker::users::User, (String, std::borrow::Cow<'static, str>)> {
        let login = match self.tls.as_ref().map(|t| &t.cert_login) {
            Some(Ok(name)) => name.clone(),
            Some(Err(why)) => {
                tracing::warn!(peer = %self.peer, "EXTERNAL login refused: {why}");
                return Err((String::new(), "no user name in the client certificate".into()));
            }
            None => return Err((String::new(), "EXTERNAL needs TLS".into())),
        };
        match self.broker.user(&login) {
            Some(u) if u.loopback_only && self.config.guest_loopback_only && !from_loopback => {
                Err((login, "user can only connect via localhost".into()))
            }
            Some(u) => Ok(u),
            None => Err((login, "the user named by the client certificate does not exist".into())),
        }
    }

    fn handle_tune_ok(&mut self, ok: connection::TuneOk) -> AmqpResult<Next> {
        let refused = negotiation_error("frame_max", ok.frame_max, self.config.frame_max, FRAME_MIN_SIZE)
            .or_else(|| negotiation_error("channel_max", ok.channel_max.into(), self.config.channel_max.into(), 1));
        if let Some(why) = refused {
            // RabbitMQ refuses these before the connection is open by closing
            // the socket without a word, and logs why; so do we.
            tracing::warn!(peer = %self.peer, "failed to negotiate connection parameters: {why}");
            return Ok(Next::Drop);
        }
        self.frame_max = ok.frame_max;
        self.channel_max = if ok.channel_max == 0 { self.config.channel_max } else { ok.channel_max };
        self.heartbeat = ok.heartbeat;
        self.registration.entry().set_tuned(self.frame_max, self.channel_max, self.heartbeat);
        self.set_step(Step::Open);
        Ok(Next::Continue)
    }

    fn handle_open(&mut self, open: connection::Open) -> AmqpResult<Next> {
        let name = open.virtual_host.as_str();
        match self.broker.vhost(name) {
            Some(_) if !self.can_open_vhost(name) => {
                self.phase = Phase::Open;
                Err(AmqpError::not_allowed(format!("access to vhost '{name}' refused for user '{}'", self.user))
                    .during(10, 40))
            }
            Some(v) => {
                if let Err(e) = self.broker.check_connection_limits(&v, &self.user) {
                    self.phase = Phase::Open;
                    return Err(e.during(10, 40));
                }
                self.access = self.access_in(name);
                self.vhost = Some(v);
                self.registration.entry().set_vhost(name);
                self.phase = Phase::Open;
                self.send(0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(connection::OpenOk {})));
                tracing::debug!(peer = %self.peer, user = %self.user, vhost = name, "connection open");
                Ok(Next::Continue)
            }
            None => {
                self.phase = Phase::Open;
                Err(AmqpError::not_allowed(format!("vhost {name} not found")).during(10, 40))
            }
        }
    }
}

/// The line RabbitMQ logs for a refused login (rabbit_reader's auth_fail
/// with rabbit_auth_backend_internal's reasons), so log searches written
/// for RabbitMQ find it: `PLAIN login refused: user 'u' - invalid
/// credentials`. An unknown user and a wrong password read the same, as
/// there. Never the password: a malformed response is not quoted either
/// (RabbitMQ's `response ~p invalid` would quote it).
fn refusal_log_line(mechanism: &str, user: &str, why: &str) -> String {
    let detail = match why {
        "user can only connect via localhost" => format!("user '{user}' can only connect via localhost"),
        "malformed credentials" => "malformed credentials (the response did not parse)".to_owned(),
        w if w.starts_with("Authentication using an OAuth 2") => w.to_owned(),
        _ => format!("user '{user}' - invalid credentials"),
    };
    format!("{mechanism} login refused: {detail}")
}

/// RabbitMQ's check of a tune-ok value (rabbit_reader's
/// validate_negotiated_integer_value): at least `min` unless 0, and, when
/// we set a maximum, neither above it nor 0 ("no limit"). The text is the
/// one RabbitMQ logs.
fn negotiation_error(field: &str, client: u32, server: u32, min: u32) -> Option<String> {
    if client != 0 && client < min {
        return Some(format!("negotiated {field} = {client} is lower than the minimum allowed value ({min})"));
    }
    if server != 0 && (client == 0 || client > server) {
        let detail = if field == "channel_max" && client == 0 { " (no limit)" } else { "" };
        return Some(format!(
            "negotiated {field} = {client}{detail} is higher than the maximum allowed value ({server})"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_logins_are_logged_in_rabbitmqs_words() {
        // As RabbitMQ 3.10.8 logs them for a wrong password and an unknown user.
        assert_eq!(
            refusal_log_line("PLAIN", "guest", "invalid credentials"),
            "PLAIN login refused: user 'guest' - invalid credentials"
        );
        assert_eq!(
            refusal_log_line("PLAIN", "nosuch", "unknown user"),
            "PLAIN login refused: user 'nosuch' - invalid credentials"
        );
        assert_eq!(
            refusal_log_line("AMQPLAIN", "guest", "user can only connect via localhost"),
            "AMQPLAIN login refused: user 'guest' can only connect via localhost"
        );
        // A refused token says why (never the token itself: the reason
        // names claims and keys only).
        let why = "Authentication using an OAuth 2/JWT token failed: token expired at 10 (validated at 11)";
        assert_eq!(refusal_log_line("PLAIN", "svc", why), format!("PLAIN login refused: {why}"));
    }

    #[test]
    fn tune_ok_values_are_checked_as_rabbitmq_checks_them() {
        // Texts as RabbitMQ 3.10 logs them for the same tune-ok values.
        assert_eq!(
            negotiation_error("channel_max", 2048, 2047, 1).as_deref(),
            Some("negotiated channel_max = 2048 is higher than the maximum allowed value (2047)")
        );
        assert_eq!(
            negotiation_error("channel_max", 0, 2047, 1).as_deref(),
            Some("negotiated channel_max = 0 (no limit) is higher than the maximum allowed value (2047)")
        );
        assert_eq!(
            negotiation_error("frame_max", 0, 131072, 4096).as_deref(),
            Some("negotiated frame_max = 0 is higher than the maximum allowed value (131072)")
        );
        assert_eq!(
            negotiation_error("frame_max", 4095, 131072, 4096).as_deref(),
            Some("negotiated frame_max = 4095 is lower than the minimum allowed value (4096)")
        );
        assert_eq!(negotiation_error("frame_max", 4096, 131072, 4096), None);
        assert_eq!(negotiation_error("channel_max", 1, 2047, 1), None);
        assert_eq!(negotiation_error("channel_max", 0, 0, 1), None, "no server limit: 0 is fine");
    }
}
