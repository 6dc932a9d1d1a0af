//! AMQP exceptions as the routing core reports them: a reply code, RabbitMQ's
//! reply text, and whether the error closes the channel or the connection.

use std::fmt;

/// Reply codes from the AMQP 0-9-1 spec, named as the spec names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyCode {
    ContentTooLarge = 311,
    NoRoute = 312,
    NoConsumers = 313,
    ConnectionForced = 320,
    InvalidPath = 402,
    AccessRefused = 403,
    NotFound = 404,
    ResourceLocked = 405,
    PreconditionFailed = 406,
    FrameError = 501,
    SyntaxError = 502,
    CommandInvalid = 503,
    ChannelError = 504,
    UnexpectedFrame = 505,
    ResourceError = 506,
    NotAllowed = 530,
    NotImplemented = 540,
    InternalError = 541,
}

impl ReplyCode {
    /// The reply code with this number, if AMQP 0-9-1 defines one.
    pub fn from_u16(code: u16) -> Option<ReplyCode> {
        Some(match code {
            311 => ReplyCode::ContentTooLarge,
            312 => ReplyCode::NoRoute,
            313 => ReplyCode::NoConsumers,
            320 => ReplyCode::ConnectionForced,
            402 => ReplyCode::InvalidPath,
            403 => ReplyCode::AccessRefused,
            404 => ReplyCode::NotFound,
            405 => ReplyCode::ResourceLocked,
            406 => ReplyCode::PreconditionFailed,
            501 => ReplyCode::FrameError,
            502 => ReplyCode::SyntaxError,
            503 => ReplyCode::CommandInvalid,
            504 => ReplyCode::ChannelError,
            505 => ReplyCode::UnexpectedFrame,
            506 => ReplyCode::ResourceError,
            530 => ReplyCode::NotAllowed,
            540 => ReplyCode::NotImplemented,
            541 => ReplyCode::InternalError,
            _ => return None,
        })
    }

    /// The code of a connection-level (hard) error: 320, 402, 501-506,
    /// 530, 540, 541. `None` for anything else.
    pub fn connection_error(code: u16) -> Option<ReplyCode> {
        Self::from_u16(code).filter(|c| c.is_hard())
    }

    /// The code of a channel-level (soft) error: 311-313, 403-406.
    pub fn channel_error(code: u16) -> Option<ReplyCode> {
        Self::from_u16(code).filter(|c| !c.is_hard())
    }

    /// The upper-case name RabbitMQ puts in front of every reply text.
    pub fn name(self) -> &'static str {
        match self {
            ReplyCode::ContentTooLarge => "CONTENT_TOO_LARGE",
            ReplyCode::NoRoute => "NO_ROUTE",
            ReplyCode::NoConsumers => "NO_CONSUMERS",
            ReplyCode::ConnectionForced => "CONNECTION_FORCED",
            ReplyCode::InvalidPath => "INVALID_PATH",
            ReplyCode::AccessRefused => "ACCESS_REFUSED",
            ReplyCode::NotFound => "NOT_FOUND",
            ReplyCode::ResourceLocked => "RESOURCE_LOCKED",
            ReplyCode::PreconditionFailed => "PRECONDITION_FAILED",
            ReplyCode::FrameError => "FRAME_ERROR",
            ReplyCode::SyntaxError => "SYNTAX_ERROR",
            ReplyCode::CommandInvalid => "COMMAND_INVALID",
            ReplyCode::ChannelError => "CHANNEL_ERROR",
            ReplyCode::UnexpectedFrame => "UNEXPECTED_FRAME",
            ReplyCode::ResourceError => "RESOURCE_ERROR",
            ReplyCode::NotAllowed => "NOT_ALLOWED",
            ReplyCode::NotImplemented => "NOT_IMPLEMENTED",
            ReplyCode::InternalError => "INTERNAL_ERROR",
        }
    }

    /// Hard errors close the connection; soft ones only the channel (spec 1.2).
    pub fn is_hard(self) -> bool {
        (self as u16) >= 500 || self == ReplyCode::ConnectionForced || self == ReplyCode::InvalidPath
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Channel,
    Connection,
}

/// An AMQP exception: becomes channel.close or connection.close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmqpError {
    pub scope: Scope,
    pub code: ReplyCode,
    /// The full reply text, `"NOT_FOUND - no queue 'q' in vhost '/'"`.
    pub text: String,
    /// The method that failed, filled in by the channel that ran it.
    pub class_id: u16,
    pub method_id: u16,
}

impl AmqpError {
    /// An error whose scope follows from its code, with RabbitMQ's
    /// `"CODE_NAME - detail"` text.
    pub fn new(code: ReplyCode, detail: impl fmt::Display) -> Self {
        let scope = if code.is_hard() { Scope::Connection } else { Scope::Channel };
        AmqpError { scope, code, text: format!("{} - {}", code.name(), detail), class_id: 0, method_id: 0 }
    }

    pub fn not_found(detail: impl fmt::Display) -> Self {
        Self::new(ReplyCode::NotFound, detail)
    }
    pub fn precondition_failed(detail: impl fmt::Display) -> Self {
        Self::new(ReplyCode::PreconditionFailed, detail)
    }
    pub fn access_refused(detail: impl fmt::Display) -> Self {
        Self::new(ReplyCode::AccessRefused, detail)
    }
    pub fn resource_locked(detail: impl fmt::Display) -> Self {
        Self::new(ReplyCode::ResourceLocked, detail)
    }
    pub fn not_implemented(detail: impl fmt::Display) -> Self {
        Self::new(ReplyCode::NotImplemented, detail)
    }
    pub fn command_invalid(detail: impl fmt::Display) -> Self {
        Self::new(ReplyCode::CommandInvalid, detail)
    }
    pub fn channel_error(detail: impl fmt::Display) -> Self {
        Self::new(ReplyCode::ChannelError, detail)
    }
    pub fn not_allowed(detail: impl fmt::Display) -> Self {
        Self::new(ReplyCode::NotAllowed, detail)
    }

    /// Records which method failed, for the close frame's class/method ids.
    pub fn during(mut self, class_id: u16, method_id: u16) -> Self {
        if self.class_id == 0 && self.method_id == 0 {
            self.class_id = class_id;
            self.method_id = method_id;
        }
        self
    }
}

impl fmt::Display for AmqpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.text, self.code as u16)
    }
}

impl std::error::Error for AmqpError {}

pub type AmqpResult<T> = Result<T, AmqpError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_follows_the_code() {
        assert_eq!(AmqpError::not_found("no queue 'q' in vhost '/'").scope, Scope::Channel);
        assert_eq!(AmqpError::not_found("x").text, "NOT_FOUND - x");
        assert_eq!(AmqpError::not_implemented("x").scope, Scope::Connection);
        assert_eq!(AmqpError::not_allowed("x").scope, Scope::Connection);
        assert_eq!(AmqpError::resource_locked("x").scope, Scope::Channel);
    }
}
