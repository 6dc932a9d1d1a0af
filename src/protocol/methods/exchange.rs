//! The exchange class: declare, delete, bind and unbind, each authorised
//! by the connection's `Access` first.

use amq_protocol::protocol::{exchange, AMQPClass};

use super::super::channel::Channel;
use super::super::connection::Session;
use super::super::deliveries::Undo;
use crate::broker::exchange::Destination;
use crate::broker::permissions::Resource;
use crate::broker::vhost::ExchangeDeclare;
use crate::broker::{AmqpError, AmqpResult};

impl Session {
    pub(super) fn handle_exchange(&mut self, ch: &mut Channel, m: exchange::AMQPMethod) -> AmqpResult<()> {
        let vhost = self.vhost()?;
        let id = ch.id.get();
        match m {
            exchange::AMQPMethod::Declare(d) => {
                let (name, kind) = (d.exchange.as_str(), d.kind.as_str());
                self.access.exchange_declare(&vhost, name, kind, d.passive, &d.arguments)?;
                let created = vhost.exchange_declare(ExchangeDeclare {
                    name: d.exchange.as_str(),
                    kind: d.kind.as_str(),
                    passive: d.passive,
                    durable: d.durable,
                    auto_delete: d.auto_delete,
                    internal: d.internal,
                    arguments: &d.arguments,
                })?;
                if created && d.durable {
                    self.undo = Undo::Exchange(d.exchange.as_str().to_owned());
                }
                if !d.nowait {
                    self.send(id, AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(exchange::DeclareOk {})));
                }
            }
            exchange::AMQPMethod::Delete(d) => {
                self.access.exchange_delete(d.exchange.as_str())?;
                vhost.exchange_delete(d.exchange.as_str(), d.if_unused)?;
                if !d.nowait {
                    self.send(id, AMQPClass::Exchange(exchange::AMQPMethod::DeleteOk(exchange::DeleteOk {})));
                }
            }
            exchange::AMQPMethod::Bind(b) => {
                let (dest, src) = (b.destination.as_str(), b.source.as_str());
                self.access.bind(&vhost, Resource::Exchange, dest, src, b.routing_key.as_str())?;
                if vhost.exchange_bind(dest, src, b.routing_key.as_str(), &b.arguments)? {
                    self.undo = Undo::Binding {
                        source: src.to_owned(),
                        destination: Destination::Exchange(dest.to_owned()),
                        routing_key: b.routing_key.as_str().to_owned(),
                        arguments: b.arguments.clone(),
                    };
                }
                if !b.nowait {
                    self.send(id, AMQPClass::Exchange(exchange::AMQPMethod::BindOk(exchange::BindOk {})));
                }
            }
            exchange::AMQPMethod::Unbind(b) => {
                let (dest, src) = (b.destination.as_str(), b.source.as_str());
                self.access.bind(&vhost, Resource::Exchange, dest, src, b.routing_key.as_str())?;
                vhost.exchange_unbind(
                    b.destination.as_str(),
                    b.source.as_str(),
                    b.routing_key.as_str(),
                    &b.arguments,
                )?;
                if !b.nowait {
                    self.send(id, AMQPClass::Exchange(exchange::AMQPMethod::UnbindOk(exchange::UnbindOk {})));
                }
            }
            _ => return Err(AmqpError::command_invalid("method not valid from a client")),
        }
        Ok(())
    }
}
