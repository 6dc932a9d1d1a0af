//! Errors on the wire: frame and decode errors as RabbitMQ reports them,
//! and every `AmqpError` turned into the close it calls for, channel.close
//! for a channel-scope error and connection.close for a connection-scope
//! one (DESIGN.md's three layers).

use amq_protocol::protocol::{channel, connection, AMQPClass};
use amq_protocol::types::ShortString;
use bytes::Bytes;

use super::channel::{Channel, ChannelState};
use super::codec::{decode_method, DecodeError, Method};
use super::connection::{Phase, Session, CLOSE_TIMEOUT};
use super::frame::{erlang_binary, Frame, FrameKind};
use crate::broker::{AmqpError, AmqpResult, ReplyCode, Scope};
use crate::wire::table;

impl Session {
    /// Sends connection.close and waits (bounded) for close-ok.
    pub(super) fn begin_close(&mut self, err: AmqpError) {
        tracing::debug!(peer = %self.peer, error = %err, "closing connection");
        self.send(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
                reply_code: err.code as u16,
                reply_text: short(err.text),
                class_id: err.class_id,
                method_id: err.method_id,
            })),
        );
        self.phase = Phase::Closing { deadline: self.now + CLOSE_TIMEOUT };
    }

    /// Sends channel.close for a channel error and releases the channel's
    /// deliveries and consumers at once, as RabbitMQ does.
    pub(super) fn close_channel_with(&mut self, ch: &mut Channel, err: AmqpError) {
        tracing::debug!(channel = %ch.id, error = %err, "closing channel");
        self.send(
            ch.id.get(),
            AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
                reply_code: err.code as u16,
                reply_text: short(err.text),
                class_id: err.class_id,
                method_id: err.method_id,
            })),
        );
        self.release_channel(ch);
        ch.state = ChannelState::Closing;
    }
}

/// Decodes a method frame; `Err(None)` means "drop the connection without a
/// word", as RabbitMQ does for methods it does not know.
pub(super) fn decode(payload: &Bytes) -> Result<Method, Option<AmqpError>> {
    decode_method(payload).map_err(|e| decode_error(e, payload))
}

pub(super) fn short(s: impl Into<String>) -> ShortString {
    let mut s: String = s.into();
    if s.len() > 255 {
        let mut cut = 255;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    ShortString::from(s)
}

/// A wire short string as UTF-8, or the 502 RabbitMQ would not send but that
/// keeps us from routing on bytes we cannot name.
pub(super) fn utf8(b: &Bytes) -> AmqpResult<&str> {
    std::str::from_utf8(b).map_err(|_| AmqpError::new(ReplyCode::SyntaxError, "short string is not valid UTF-8"))
}

/// RabbitMQ closes with 501 "cannot decode <<args>>" for malformed method
/// arguments. An unknown class or method it does not answer at all: the
/// socket is dropped (`None`).
fn decode_error(e: DecodeError, payload: &Bytes) -> Option<AmqpError> {
    match e {
        DecodeError::UnknownMethod { .. } => None,
        // RabbitMQ decodes tables of any depth; we refuse past
        // MAX_DECODE_DEPTH, as a channel error so that the connection and
        // its other channels carry on (a connection-class method can only
        // fail its connection).
        DecodeError::TooDeep { class_id, method_id, key } => {
            let mut err = AmqpError::precondition_failed(format!(
                "field table argument '{key}' nested deeper than {} levels",
                table::MAX_DECODE_DEPTH
            ))
            .during(class_id, method_id);
            if class_id == 10 {
                err.scope = Scope::Connection;
            }
            Some(err)
        }
        DecodeError::Malformed { class_id, method_id } => {
            let args = payload.get(4..).unwrap_or_default();
            Some(
                AmqpError::new(ReplyCode::FrameError, format!("cannot decode {}", erlang_binary(args)))
                    .during(class_id, method_id),
            )
        }
    }
}

/// RabbitMQ's 505 for a frame that makes no sense where it arrived.
pub(super) fn unexpected_frame(frame: &Frame) -> AmqpError {
    let kind = match frame.kind {
        FrameKind::Method => 1,
        FrameKind::Header => 2,
        FrameKind::Body => 3,
        FrameKind::Heartbeat => 8,
    };
    let which = if frame.payload.len() > 16 { "first" } else { "all" };
    let snippet = &frame.payload[..frame.payload.len().min(16)];
    AmqpError::new(ReplyCode::UnexpectedFrame, format!("type {kind}, {which} octets = {}", erlang_binary(snippet)))
}

impl AmqpError {
    pub(super) fn during_method(self, payload: &Bytes) -> Self {
        let (c, m) = method_ids(payload);
        self.during(c, m)
    }
}

pub(super) fn method_ids(payload: &Bytes) -> (u16, u16) {
    if payload.len() < 4 {
        return (0, 0);
    }
    (u16::from_be_bytes([payload[0], payload[1]]), u16::from_be_bytes([payload[2], payload[3]]))
}
