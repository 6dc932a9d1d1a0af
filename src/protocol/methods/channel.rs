//! The channel class: channel.open on a new channel number, close, flow;
//! and releasing what a channel holds when it closes.

use amq_protocol::protocol::{channel, AMQPClass};

use crate::broker::{AmqpError, AmqpResult};
use crate::ids::ChannelId;
use crate::protocol::channel::{Channel, ChannelMode, ChannelState, Settle, Unacked};
use crate::protocol::codec::{decode_method, Method};
use crate::protocol::connection::{Channels, Session};
use crate::protocol::frame::{Frame, FrameKind};

impl Session {
    /// A frame on a channel number not in use: only channel.open may come.
    pub(in crate::protocol) fn open_channel(&mut self, frame: Frame, channels: &mut Channels) -> AmqpResult<()> {
        let id = ChannelId(frame.channel);
        let is_open = frame.kind == FrameKind::Method
            && matches!(
                decode_method(&frame.payload),
                Ok(Method::Other(AMQPClass::Channel(channel::AMQPMethod::Open(_))))
            );
        if !is_open {
            let e = AmqpError::channel_error("expected 'channel.open'");
            return Err(if frame.kind == FrameKind::Method { e.during_method(&frame.payload) } else { e });
        }
        // RabbitMQ's channel_max caps how many channels are open, not their numbers.
        if channels.len() >= self.channel_max as usize {
            return Err(AmqpError::not_allowed(format!(
                "number of channels opened ({}) has reached the negotiated channel_max ({})",
                channels.len(),
                self.channel_max
            )));
        }
        self.broker.check_channel_limit(&self.user)?;
        channels.insert(id, Channel::new(id, self.registration.add_channel(id)));
        self.send(id.get(), AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {})));
        Ok(())
    }

    pub(super) fn handle_channel(&mut self, ch: &mut Channel, m: channel::AMQPMethod) -> AmqpResult<()> {
        let id = ch.id.get();
        match m {
            channel::AMQPMethod::Open(_) => Err(AmqpError::channel_error("second 'channel.open' seen")),
            channel::AMQPMethod::Close(_) => {
                self.release_channel(ch);
                ch.state = ChannelState::Closed;
                self.send(id, AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})));
                Ok(())
            }
            channel::AMQPMethod::CloseOk(_) => Ok(()),
            channel::AMQPMethod::Flow(f) => {
                if !f.active {
                    return Err(AmqpError::not_implemented("active=false"));
                }
                self.send(id, AMQPClass::Channel(channel::AMQPMethod::FlowOk(channel::FlowOk { active: true })));
                Ok(())
            }
            channel::AMQPMethod::FlowOk(_) => Ok(()),
            _ => Err(AmqpError::command_invalid("unexpected channel method")),
        }
    }

    /// Cancels a channel's consumers and requeues its unacknowledged
    /// deliveries in their original order.
    pub(in crate::protocol) fn release_channel(&mut self, ch: &mut Channel) {
        ch.content = crate::protocol::content::Content::Idle;
        if let ChannelMode::Tx(_) = ch.mode {
            ch.mode = ChannelMode::Plain;
        }
        if let Some((_, key)) = ch.reply_consumer.take() {
            self.broker.unregister_reply_target(&key);
        }
        for (tag, consumer) in ch.consumers.drain() {
            self.remove_consumer(&consumer.queue, ch.id, &tag);
        }
        let unacked: Vec<Unacked> = ch.unacked.drain(..).collect();
        self.settle_all(unacked, Settle::Requeue);
    }
}
