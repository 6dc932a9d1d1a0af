//! Frames on an open channel: content frames go to content assembly, method
//! frames to their class's handler (one file per class). A method that may
//! change durable definitions gets its reply held until they are on disk.

mod basic;
mod channel;
mod confirm;
mod exchange;
mod queue;
mod tx;

use amq_protocol::protocol::{access, AMQPClass};
use amq_protocol::types::ShortString;

use super::channel::Channel;
use super::codec::Method;
use super::connection::{Phase, Session};
use super::content::PublishMethod;
use super::deliveries::{Hold, Undo};
use super::errors::{decode, method_ids, unexpected_frame};
use super::frame::{Frame, FrameKind};
use crate::broker::{AmqpError, AmqpResult};
use crate::store::TicketRange;

impl Session {
    pub(super) fn handle_channel_frame(&mut self, ch: &mut Channel, frame: Frame) -> AmqpResult<()> {
        match frame.kind {
            FrameKind::Heartbeat => Err(unexpected_frame(&frame)),
            FrameKind::Header => self.handle_content_header(ch, frame.payload),
            FrameKind::Body => self.handle_content_body(ch, frame.payload),
            FrameKind::Method => {
                if let Some(e) = ch.content.method_unexpected() {
                    return Err(e);
                }
                let method = match decode(&frame.payload) {
                    Ok(m) => m,
                    Err(Some(e)) => return Err(e),
                    Err(None) => {
                        // Dropped at once, without a word (RabbitMQ's answer
                        // to a method it does not know).
                        self.phase = Phase::Ended;
                        return Ok(());
                    }
                };
                let (class_id, method_id) = method_ids(&frame.payload);
                // A method that may change durable definitions replies only
                // once every definition change issued so far is on disk.
                let store = self.broker.store().filter(|_| changes_definitions(class_id, method_id)).cloned();
                let floor = store.as_ref().map(|st| st.progress().resolved());
                let mark = self.wbuf.len();
                let mut wait = TicketRange::default();
                let result = self.handle_method(ch, method, &mut wait).map_err(|e| e.during(class_id, method_id));
                if let (Ok(()), Some(st), Some(floor)) = (&result, &store, floor) {
                    let issued = st.definitions_issued();
                    if issued > floor {
                        wait.merge(TicketRange { lo: floor + 1, hi: issued });
                    }
                }
                // Only declares, binds and commits set `undo`; it is left
                // at Nothing otherwise.
                if !wait.is_empty() {
                    let undo = std::mem::take(&mut self.undo);
                    if result.is_ok() {
                        self.hold = Some(Hold { from: mark, tickets: wait, channel: ch.id, class_id, method_id, undo });
                    }
                } else if !matches!(self.undo, Undo::Nothing) {
                    self.undo = Undo::Nothing;
                }
                result
            }
        }
    }

    /// Runs one method. `wait` collects store tickets the reply must wait
    /// for (a commit's persistent messages).
    fn handle_method(&mut self, ch: &mut Channel, method: Method, wait: &mut TicketRange) -> AmqpResult<()> {
        match method {
            Method::Publish { exchange, routing_key, mandatory, immediate } => {
                self.basic_publish(ch, PublishMethod { exchange, routing_key, mandatory, immediate });
                Ok(())
            }
            Method::Ack { delivery_tag, multiple } => self.basic_ack(ch, delivery_tag, multiple),
            Method::Nack { delivery_tag, multiple, requeue } => self.basic_nack(ch, delivery_tag, multiple, requeue),
            Method::Reject { delivery_tag, requeue } => self.basic_reject(ch, delivery_tag, requeue),
            Method::Qos { prefetch_size, prefetch_count, global } => {
                self.basic_qos(ch, prefetch_size, prefetch_count, global)
            }
            Method::Other(AMQPClass::Tx(m)) => self.handle_tx(ch, m, wait),
            Method::StartOk(_) => Err(AmqpError::command_invalid("connection method on a non-zero channel")),
            Method::Other(class) => self.handle_other(ch, class),
        }
    }

    fn handle_other(&mut self, ch: &mut Channel, class: AMQPClass) -> AmqpResult<()> {
        match class {
            AMQPClass::Channel(m) => self.handle_channel(ch, m),
            AMQPClass::Access(access::AMQPMethod::Request(_)) => {
                let ok = access::RequestOk {};
                self.send(ch.id.get(), AMQPClass::Access(access::AMQPMethod::RequestOk(ok)));
                Ok(())
            }
            AMQPClass::Exchange(m) => self.handle_exchange(ch, m),
            AMQPClass::Queue(m) => self.handle_queue(ch, m),
            AMQPClass::Basic(m) => self.handle_basic(ch, m),
            AMQPClass::Confirm(m) => self.handle_confirm(ch, m),
            AMQPClass::Connection(_) => Err(AmqpError::command_invalid("connection method on a non-zero channel")),
            _ => Err(AmqpError::command_invalid("method not valid from a client")),
        }
    }
}

/// Resolves RabbitMQ's shortcut: an empty queue name means the queue
/// this channel declared last.
fn queue_name(ch: &Channel, name: &ShortString) -> AmqpResult<String> {
    if name.as_str().is_empty() {
        ch.last_queue.clone().ok_or_else(|| AmqpError::not_found("no previously declared queue"))
    } else {
        Ok(name.as_str().to_owned())
    }
}

/// The methods whose reply must wait until the definition changes made so
/// far are durable: declare, delete, bind and unbind of exchanges and queues.
fn changes_definitions(class_id: u16, method_id: u16) -> bool {
    matches!((class_id, method_id), (40, 10 | 20 | 30 | 40) | (50, 10 | 20 | 40 | 50))
}
