//! The tx class: select, commit (the deferred publishes and settlements
//! run now; commit-ok waits for their persistent messages) and rollback.

use amq_protocol::protocol::{tx, AMQPClass};

use crate::broker::publish::Accepted;
use crate::broker::{AmqpError, AmqpResult};
use crate::protocol::channel::{Channel, ChannelMode, TxOp};
use crate::protocol::connection::Session;
use crate::protocol::deliveries::Undo;
use crate::protocol::errors::utf8;
use crate::store::TicketRange;

impl Session {
    pub(super) fn handle_tx(&mut self, ch: &mut Channel, m: tx::AMQPMethod, wait: &mut TicketRange) -> AmqpResult<()> {
        let id = ch.id.get();
        match m {
            tx::AMQPMethod::Select(_) => {
                match ch.mode {
                    ChannelMode::Confirm(_) => {
                        return Err(AmqpError::precondition_failed("cannot switch from confirm to tx mode"))
                    }
                    ChannelMode::Plain => ch.mode = ChannelMode::Tx(Vec::new()),
                    ChannelMode::Tx(_) => {}
                }
                self.send(id, AMQPClass::Tx(tx::AMQPMethod::SelectOk(tx::SelectOk {})));
            }
            tx::AMQPMethod::Commit(_) => {
                let ChannelMode::Tx(ops) = &mut ch.mode else {
                    return Err(AmqpError::precondition_failed("channel is not transactional"));
                };
                let ops = std::mem::take(ops);
                let vhost = self.vhost()?;
                for op in ops {
                    match op {
                        TxOp::Publish { message, mandatory, extra_keys } => {
                            // The exchange may have gone since the publish.
                            let Ok(x) = utf8(&message.exchange).and_then(|n| vhost.exchange(n)) else { continue };
                            let accepted = Accepted { exchange: x, message, extra_keys, mandatory };
                            let outcome = self.route_and_enqueue(&vhost, accepted, id)?;
                            // RabbitMQ answers commit-ok once persistent
                            // publishes are on disk: the reply is held.
                            wait.merge(outcome.tickets);
                        }
                        TxOp::Settle { delivery_tag, multiple, how } => {
                            self.settle_now(ch, delivery_tag, multiple, how)?;
                        }
                    }
                }
                if !wait.is_empty() {
                    self.undo = Undo::Commit;
                }
                self.send(id, AMQPClass::Tx(tx::AMQPMethod::CommitOk(tx::CommitOk {})));
            }
            tx::AMQPMethod::Rollback(_) => {
                let ChannelMode::Tx(ops) = &mut ch.mode else {
                    return Err(AmqpError::precondition_failed("channel is not transactional"));
                };
                ops.clear();
                self.send(id, AMQPClass::Tx(tx::AMQPMethod::RollbackOk(tx::RollbackOk {})));
            }
            _ => return Err(AmqpError::command_invalid("method not valid from a client")),
        }
        Ok(())
    }
}
