//! Fault injection: a broker that misbehaves on demand, so that clients'
//! reconnect and recovery logic can be tested. [`Server::faults`] gives the
//! Rust API; `/api/warren/faults/...` (`http/faults.rs`, administrators
//! only, and only with `--allow-fault-injection`) serves the same calls to
//! any language.
//!
//! Each fault is what a client could meet from a real broker: a close with
//! a given code, a socket that just dies, a channel error, connection.blocked,
//! a slow link, a queue that stops delivering or refuses publishes, a
//! consumer cancelled as by a queue deletion, a restart that loses transient
//! state, a memory or disk alarm.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::broker::alarms::AlarmSet;
use crate::broker::consumer::OutboxItem;
use crate::broker::queue::Queue;
use crate::broker::registry::{CloseRequest, ConnectionEntry, ConnectionFault};
use crate::broker::{Broker, ReplyCode};
use crate::clock::Clock;
use crate::Server;

/// Why a fault could not be injected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FaultError {
    #[error("no connection named '{0}' (the management API's name, or a client-provided connection_name that only one connection has)")]
    NoConnection(String),
    #[error("connection '{0}' has no open channel {1}")]
    NoChannel(String, u16),
    #[error("no queue '{1}' in vhost '{0}'")]
    NoQueue(String, String),
    #[error("no consumer '{1}' on queue '{0}'")]
    NoConsumer(String, String),
    #[error("{0} is not a connection-level reply code (320, 402, 501-506, 530, 540, 541)")]
    NotAConnectionCode(u16),
    #[error("{0} is not a channel-level reply code (311-313, 403-406)")]
    NotAChannelCode(u16),
}

/// Which resource alarm to raise or clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alarm {
    Memory,
    Disk,
}

/// What a simulated restart took away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestartReport {
    pub connections: usize,
    /// Non-durable and exclusive queues deleted.
    pub queues: usize,
    /// Non-durable exchanges deleted.
    pub exchanges: usize,
    /// Transient messages dropped from durable queues.
    pub messages: u64,
}

/// The fault injector of one running server (cheap to clone).
#[derive(Clone)]
pub struct Faults {
    broker: Arc<Broker>,
    alarms: Arc<watch::Sender<AlarmSet>>,
    /// Socket time: what "refuse connections for 300 ms" is measured on.
    clock: Clock,
    refuse_until: Arc<Mutex<Option<Instant>>>,
}

impl Server {
    /// Makes this broker misbehave on purpose (see [`Faults`]). Always
    /// available to an embedder; the HTTP endpoints need
    /// `--allow-fault-injection`.
    pub fn faults(&self) -> &Faults {
        self.fault_injector()
    }
}

impl Faults {
    pub(crate) fn new(broker: Arc<Broker>, alarms: Arc<watch::Sender<AlarmSet>>, socket_clock: Clock) -> Self {
        Faults { broker, alarms, clock: socket_clock, refuse_until: Arc::default() }
    }

    fn connection(&self, name: &str) -> Result<Arc<ConnectionEntry>, FaultError> {
        self.broker.registry().find_by_name(name).ok_or_else(|| FaultError::NoConnection(name.to_owned()))
    }

    /// connection.close with `code` (connection-level) and `reason`.
    pub fn close_connection(&self, name: &str, code: u16, reason: &str) -> Result<(), FaultError> {
        let code = ReplyCode::connection_error(code).ok_or(FaultError::NotAConnectionCode(code))?;
        self.connection(name)?.request(CloseRequest::WithCode(code, reason.to_owned()));
        Ok(())
    }

    /// The socket closes with no close frame, as when a broker dies.
    pub fn drop_connection(&self, name: &str) -> Result<(), FaultError> {
        self.connection(name)?.request(CloseRequest::Drop);
        Ok(())
    }

    /// channel.close on channel `channel` with `code` (channel-level).
    pub fn close_channel(&self, name: &str, channel: u16, code: u16, reason: &str) -> Result<(), FaultError> {
        let code = ReplyCode::channel_error(code).ok_or(FaultError::NotAChannelCode(code))?;
        let c = self.connection(name)?;
        if !c.has_channel(channel) {
            return Err(FaultError::NoChannel(name.to_owned(), channel));
        }
        c.inject(ConnectionFault::CloseChannel(channel, code, reason.to_owned()));
        Ok(())
    }

    /// Blocks the connection's publishers as an alarm would: connection.blocked
    /// with `reason` (once it publishes, as RabbitMQ tells only publishers),
    /// and its publishes are not read until [`Faults::unblock`].
    pub fn block(&self, name: &str, reason: &str) -> Result<(), FaultError> {
        self.connection(name)?.inject(ConnectionFault::Block(reason.to_owned()));
        Ok(())
    }

    /// connection.unblocked (unless an alarm still blocks it).
    pub fn unblock(&self, name: &str) -> Result<(), FaultError> {
        self.connection(name)?.inject(ConnectionFault::Unblock);
        Ok(())
    }

    /// Holds every write to the connection back by `delay` (zero: none).
    pub fn set_write_latency(&self, name: &str, delay: Duration) -> Result<(), FaultError> {
        self.connection(name)?.set_write_delay(delay);
        Ok(())
    }

    fn queue(&self, vhost: &str, queue: &str) -> Result<Arc<Queue>, FaultError> {
        let missing = || FaultError::NoQueue(vhost.to_owned(), queue.to_owned());
        self.broker.vhost(vhost).ok_or_else(missing)?.queue(queue).map_err(|_| missing())
    }

    /// Consumers of the queue get nothing until [`Faults::resume_queue`];
    /// publishes are still taken, and basic.get still works.
    pub fn pause_queue(&self, vhost: &str, queue: &str) -> Result<(), FaultError> {
        self.queue(vhost, queue)?.set_paused(true);
        Ok(())
    }

    pub fn resume_queue(&self, vhost: &str, queue: &str) -> Result<(), FaultError> {
        self.queue(vhost, queue)?.set_paused(false);
        Ok(())
    }

    /// The queue refuses its next `count` publishes, as reject-publish
    /// refuses them: a publisher in confirm mode gets basic.nack.
    pub fn nack_publishes(&self, vhost: &str, queue: &str, count: u32) -> Result<(), FaultError> {
        self.queue(vhost, queue)?.refuse_next_publishes(count);
        Ok(())
    }

    /// Cancels the queue's consumers (only `consumer_tag`'s, when given),
    /// each told with basic.cancel as when a queue is deleted. Returns how
    /// many were cancelled.
    pub fn cancel_consumers(&self, vhost: &str, queue: &str, consumer_tag: Option<&str>) -> Result<usize, FaultError> {
        let q = self.queue(vhost, queue)?;
        let (cancelled, unused_auto_delete) = q.cancel_consumers(consumer_tag);
        if let (Some(tag), true) = (consumer_tag, cancelled.is_empty()) {
            return Err(FaultError::NoConsumer(queue.to_owned(), tag.to_owned()));
        }
        for c in &cancelled {
            c.outbox.push(OutboxItem::Cancel { channel: c.channel, consumer_tag: c.tag.clone() });
        }
        if unused_auto_delete {
            if let Some(v) = self.broker.vhost(vhost) {
                v.remove_queue(&q);
            }
        }
        Ok(cancelled.len())
    }

    /// A broker restart as clients see one: every connection's socket
    /// closes with no close frame, new connections are refused for `down`,
    /// and what a restart loses is gone (non-durable and exclusive queues,
    /// non-durable exchanges, transient messages) while durable definitions
    /// and persistent messages stay. Returns once the connections have
    /// ended (at most a few seconds).
    pub async fn restart(&self, down: Duration) -> RestartReport {
        *self.refuse_until.lock() = Some(self.clock.now() + down);
        let registry = self.broker.registry();
        let mut report = RestartReport::default();
        for c in registry.all() {
            c.request(CloseRequest::Drop);
            report.connections += 1;
        }
        // Their unacknowledged messages go back to their queues as they
        // end; only then is what is transient among them dropped.
        let ended = async {
            while !registry.all().is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), ended).await;
        for v in self.broker.vhosts() {
            for q in v.queues() {
                if !q.durable || q.exclusive_owner.is_some() {
                    v.remove_queue(&q);
                    report.queues += 1;
                } else {
                    report.messages += u64::from(q.drop_transient());
                }
            }
            for x in v.exchanges() {
                if !x.durable {
                    v.remove_exchange(&x.name);
                    report.exchanges += 1;
                }
            }
        }
        report
    }

    /// Whether a simulated restart still refuses new connections.
    pub(crate) fn refusing_connections(&self) -> bool {
        let mut until = self.refuse_until.lock();
        match *until {
            Some(t) if self.clock.now() < t => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    /// Raises an alarm as if memory or disk ran short: publishers are
    /// blocked (connection.blocked) until [`Faults::clear_alarm`], whatever
    /// the monitors measure meanwhile.
    pub fn raise_alarm(&self, alarm: Alarm) {
        self.set_alarm(alarm, true);
    }

    /// Clears an alarm [`Faults::raise_alarm`] raised (one the monitors
    /// measure stays until the condition goes).
    pub fn clear_alarm(&self, alarm: Alarm) {
        self.set_alarm(alarm, false);
    }

    fn set_alarm(&self, alarm: Alarm, on: bool) {
        self.alarms.send_if_modified(|a| {
            let field = match alarm {
                Alarm::Memory => &mut a.injected_memory,
                Alarm::Disk => &mut a.injected_disk,
            };
            std::mem::replace(field, on) != on
        });
    }

    /// The alarms injected now: (memory, disk).
    pub fn injected_alarms(&self) -> (bool, bool) {
        let a = *self.alarms.borrow();
        (a.injected_memory, a.injected_disk)
    }
}
