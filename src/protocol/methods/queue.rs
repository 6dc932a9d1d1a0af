//! The queue class: declare (server-named and exclusive queues, the
//! direct reply-to pseudo-queue), bind, unbind, purge and delete.

use std::sync::Arc;

use amq_protocol::protocol::{queue, AMQPClass};

use super::super::channel::Channel;
use super::super::connection::Session;
use super::super::deliveries::Undo;
use super::super::errors::short;
use super::queue_name;
use crate::broker::exchange::Destination;
use crate::broker::permissions::Resource;
use crate::broker::vhost::{generated_name, QueueDeclare};
use crate::broker::{AmqpError, AmqpResult};

impl Session {
    pub(super) fn handle_queue(&mut self, ch: &mut Channel, m: queue::AMQPMethod) -> AmqpResult<()> {
        let vhost = self.vhost()?;
        let id = ch.id.get();
        let conn = self.id;
        match m {
            queue::AMQPMethod::Declare(d) => {
                // No empty-name shortcut here: RabbitMQ looks for a queue named ''.
                let name = d.queue.as_str().to_owned();
                if d.passive && self.broker.reply_target(&name).is_some() {
                    // A live direct reply-to address answers like a queue with its consumer.
                    let ok = queue::DeclareOk { queue: short(name), message_count: 0, consumer_count: 1 };
                    self.send(id, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok)));
                    return Ok(());
                }
                // A server-named queue is named here, so that its name can be
                // authorised before it exists, as RabbitMQ does.
                let server_named = name.is_empty() && !d.passive;
                let name = if server_named { generated_name("amq.gen") } else { name };
                self.access.queue_declare(&vhost, &name, server_named, d.passive, &d.arguments)?;
                let ok = vhost.queue_declare(QueueDeclare {
                    name: &name,
                    server_named,
                    passive: d.passive,
                    durable: d.durable,
                    exclusive: d.exclusive,
                    auto_delete: d.auto_delete,
                    arguments: &d.arguments,
                    connection_id: conn,
                })?;
                if d.exclusive && !d.passive {
                    if let Ok(q) = vhost.queue(&ok.name) {
                        if !self.exclusive_queues.iter().any(|e| Arc::ptr_eq(e, &q)) {
                            self.exclusive_queues.push(q);
                        }
                    }
                }
                if ok.created {
                    match vhost.queue(&ok.name) {
                        Ok(q) if q.durable => self.undo = Undo::Queue(q),
                        _ => {}
                    }
                }
                ch.last_queue = Some(ok.name.clone());
                if !d.nowait {
                    self.send(
                        id,
                        AMQPClass::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
                            queue: short(ok.name),
                            message_count: ok.message_count,
                            consumer_count: ok.consumer_count,
                        })),
                    );
                }
            }
            queue::AMQPMethod::Bind(b) => {
                let name = queue_name(ch, &b.queue)?;
                // Another shortcut: an empty routing key with an empty queue
                // name binds with the queue's name.
                let rk = if b.routing_key.as_str().is_empty() && b.queue.as_str().is_empty() {
                    name.clone()
                } else {
                    b.routing_key.as_str().to_owned()
                };
                self.access.bind(&vhost, Resource::Queue, &name, b.exchange.as_str(), &rk)?;
                if vhost.queue_bind(&name, b.exchange.as_str(), &rk, &b.arguments, conn)? {
                    if let Ok(q) = vhost.queue(&name) {
                        self.undo = Undo::Binding {
                            source: b.exchange.as_str().to_owned(),
                            destination: Destination::Queue(q),
                            routing_key: rk.clone(),
                            arguments: b.arguments.clone(),
                        };
                    }
                }
                if !b.nowait {
                    self.send(id, AMQPClass::Queue(queue::AMQPMethod::BindOk(queue::BindOk {})));
                }
            }
            queue::AMQPMethod::Unbind(b) => {
                let name = queue_name(ch, &b.queue)?;
                self.access.bind(&vhost, Resource::Queue, &name, b.exchange.as_str(), b.routing_key.as_str())?;
                vhost.queue_unbind(&name, b.exchange.as_str(), b.routing_key.as_str(), &b.arguments, conn)?;
                self.send(id, AMQPClass::Queue(queue::AMQPMethod::UnbindOk(queue::UnbindOk {})));
            }
            queue::AMQPMethod::Purge(p) => {
                let name = queue_name(ch, &p.queue)?;
                self.access.queue_purge(&name)?;
                let n = vhost.queue_purge(&name, conn)?;
                if !p.nowait {
                    self.send(id, AMQPClass::Queue(queue::AMQPMethod::PurgeOk(queue::PurgeOk { message_count: n })));
                }
            }
            queue::AMQPMethod::Delete(d) => {
                let name = queue_name(ch, &d.queue)?;
                self.access.queue_delete(&name)?;
                let n = vhost.queue_delete(&name, d.if_unused, d.if_empty, conn)?;
                self.exclusive_queues.retain(|q| !q.is_deleted());
                if !d.nowait {
                    self.send(id, AMQPClass::Queue(queue::AMQPMethod::DeleteOk(queue::DeleteOk { message_count: n })));
                }
            }
            _ => return Err(AmqpError::command_invalid("method not valid from a client")),
        }
        Ok(())
    }
}
