//! Content assembly: basic.publish, then its content header, then body
//! frames until the declared size, one `Content` state per channel. A
//! complete message goes through the publish rules (`publish.rs`).

use bytes::{Bytes, BytesMut};

use super::channel::{Channel, ChannelMode, TxOp};
use super::codec::{self, decode_content_header};
use super::connection::Session;
use crate::broker::publish::{Accepted, Publish};
use crate::broker::{AmqpError, AmqpResult, ReplyCode};

/// Where a channel is in receiving a message's content.
pub(crate) enum Content {
    /// No publish in progress: a method frame is expected.
    Idle,
    /// basic.publish arrived; its content header is expected.
    Header(PublishMethod),
    /// The header arrived; body frames are expected until `size` octets.
    Body { publish: PublishMethod, size: u64, properties: Bytes, body: BodyParts },
}

/// The basic.publish whose content is arriving.
pub(crate) struct PublishMethod {
    pub exchange: Bytes,
    pub routing_key: Bytes,
    pub mandatory: bool,
    pub immediate: bool,
}

/// Body frames so far. A single-frame body stays a zero-copy slice.
pub(crate) enum BodyParts {
    Empty,
    One(Bytes),
    Many(BytesMut),
}

impl BodyParts {
    pub(super) fn len(&self) -> usize {
        match self {
            BodyParts::Empty => 0,
            BodyParts::One(b) => b.len(),
            BodyParts::Many(b) => b.len(),
        }
    }

    pub(super) fn push(&mut self, part: Bytes) {
        *self = match std::mem::replace(self, BodyParts::Empty) {
            BodyParts::Empty => BodyParts::One(part),
            BodyParts::One(first) => {
                let mut all = BytesMut::with_capacity(first.len() + part.len());
                all.extend_from_slice(&first);
                all.extend_from_slice(&part);
                BodyParts::Many(all)
            }
            BodyParts::Many(mut all) => {
                all.extend_from_slice(&part);
                BodyParts::Many(all)
            }
        }
    }

    pub(super) fn into_bytes(self) -> Bytes {
        match self {
            BodyParts::Empty => Bytes::new(),
            BodyParts::One(b) => b,
            BodyParts::Many(b) => b.freeze(),
        }
    }
}

impl Content {
    /// RabbitMQ's 505 for a method frame while content is expected.
    pub(super) fn method_unexpected(&self) -> Option<AmqpError> {
        let text = match self {
            Content::Idle => return None,
            Content::Header(_) => "expected content header for class 60, got non content header frame instead",
            Content::Body { .. } => "expected content body, got non content body frame instead",
        };
        Some(AmqpError::new(ReplyCode::UnexpectedFrame, text))
    }
}

impl Session {
    pub(super) fn handle_content_header(&mut self, ch: &mut Channel, payload: Bytes) -> AmqpResult<()> {
        let publish = match std::mem::replace(&mut ch.content, Content::Idle) {
            Content::Header(p) => p,
            other => {
                let text = if matches!(other, Content::Idle) {
                    "expected method frame, got non method frame instead"
                } else {
                    "expected content body, got non content body frame instead"
                };
                ch.content = other;
                return Err(AmqpError::new(ReplyCode::UnexpectedFrame, text));
            }
        };
        // Every error below closes the channel or the connection, so the
        // publish is not put back.
        let header = decode_content_header(&payload)
            .ok_or_else(|| AmqpError::new(ReplyCode::FrameError, "malformed content header frame"))?;
        if header.class_id != codec::CLASS_BASIC {
            return Err(AmqpError::new(
                ReplyCode::UnexpectedFrame,
                format!("expected content header for class 60, got one for class {} instead", header.class_id),
            ));
        }
        // Checked on the announced size, before any body frame is buffered:
        // one comparison per publish.
        let max = self.config.max_message_size;
        if header.body_size > max {
            return Err(AmqpError::precondition_failed(format!(
                "message size {} is larger than configured max size {}",
                header.body_size, max
            ))
            .during(60, 40));
        }
        let size = header.body_size;
        ch.content = Content::Body { publish, size, properties: header.properties, body: BodyParts::Empty };
        if size == 0 {
            return self.complete_publish(ch);
        }
        Ok(())
    }

    pub(super) fn handle_content_body(&mut self, ch: &mut Channel, payload: Bytes) -> AmqpResult<()> {
        let (size, body) = match &mut ch.content {
            Content::Body { size, body, .. } => (*size, body),
            other => {
                let text = if matches!(other, Content::Idle) {
                    "expected method frame, got non method frame instead"
                } else {
                    "expected content header for class 60, got non content header frame instead"
                };
                return Err(AmqpError::new(ReplyCode::UnexpectedFrame, text));
            }
        };
        if body.len() as u64 + payload.len() as u64 > size {
            return Err(AmqpError::new(
                ReplyCode::FrameError,
                format!("content body exceeds the declared size of {size} bytes"),
            ));
        }
        body.push(payload);
        if body.len() as u64 == size {
            return self.complete_publish(ch);
        }
        Ok(())
    }

    /// The content of a basic.publish is complete: route it.
    fn complete_publish(&mut self, ch: &mut Channel) -> AmqpResult<()> {
        let Content::Body { publish: p, properties, body, .. } = std::mem::replace(&mut ch.content, Content::Idle)
        else {
            return Ok(());
        };
        let vhost = self.vhost()?;
        let accepted = vhost.accept_publish(Publish {
            exchange: p.exchange,
            routing_key: p.routing_key,
            properties,
            body: body.into_bytes(),
            mandatory: p.mandatory,
            immediate: p.immediate,
            user: &self.user,
            access: &mut self.access,
            reply_key: ch.reply_consumer.as_ref().map(|(_, key)| key.as_str()),
        })?;
        if let ChannelMode::Tx(ops) = &mut ch.mode {
            let Accepted { message, mandatory, extra_keys, .. } = accepted;
            ops.push(TxOp::Publish { message, mandatory, extra_keys });
            return Ok(());
        }
        let outcome = self.route_and_enqueue(&vhost, accepted, ch.id.get())?;
        if let ChannelMode::Confirm(confirms) = &mut ch.mode {
            confirms.track(outcome.tickets, outcome.rejected);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_parts_join_without_copying_a_single_frame() {
        let mut b = BodyParts::Empty;
        let part = Bytes::from_static(b"abc");
        b.push(part.clone());
        assert!(matches!(&b, BodyParts::One(x) if x.as_ptr() == part.as_ptr()));
        b.push(Bytes::from_static(b"def"));
        assert_eq!(b.len(), 6);
        assert_eq!(&b.into_bytes()[..], b"abcdef");
    }
}
