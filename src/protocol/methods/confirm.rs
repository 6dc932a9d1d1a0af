//! The confirm class: confirm.select puts a channel in confirm mode.

use amq_protocol::protocol::{confirm, AMQPClass};

use crate::broker::{AmqpError, AmqpResult};
use crate::protocol::channel::{Channel, ChannelMode, Confirms};
use crate::protocol::connection::Session;

impl Session {
    pub(super) fn handle_confirm(&mut self, ch: &mut Channel, m: confirm::AMQPMethod) -> AmqpResult<()> {
        let confirm::AMQPMethod::Select(sel) = m else {
            return Err(AmqpError::command_invalid("method not valid from a client"));
        };
        match ch.mode {
            ChannelMode::Tx(_) => return Err(AmqpError::precondition_failed("cannot switch from tx to confirm mode")),
            ChannelMode::Plain => ch.mode = ChannelMode::Confirm(Confirms::default()),
            ChannelMode::Confirm(_) => {}
        }
        if !sel.nowait {
            let ok = confirm::SelectOk {};
            self.send(ch.id.get(), AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(ok)));
        }
        Ok(())
    }
}
