//! A classic queue: ready messages in order, its consumers, and dispatch.
//!
//! All state sits behind one short mutex per queue (never held across an
//! await). Dispatch runs in whichever task made progress possible — the
//! publisher that enqueued, the connection that acked or drained its outbox —
//! as a plain function call: no task hop per message.

mod ready;
#[cfg(test)]
mod tests;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::Waker;

use amq_protocol::types::FieldTable;
use parking_lot::Mutex;

use super::args::{Overflow, QueueArgs, QueueType};
use super::consumer::{Consumer, OutboxItem};
use super::error::{AmqpError, AmqpResult};
use super::policy::{Applied, PolicySet};
use super::stats::{Delivered, DeliveryCounters, QueueStats, Settled};
use super::stream::{Cursor, StreamState};
use super::timers::Timers;
use crate::clock::Clock;
use crate::ids::{ChannelId, ConnectionId, StoreTicket};
use crate::message::{Message, QueuedMessage};
use crate::store::paging::PagedTail;
use crate::store::QueueLog;
use ready::{mem_of, Ready};

#[derive(Debug)]
pub struct Queue {
    pub name: String,
    pub vhost: String,
    pub durable: bool,
    pub auto_delete: bool,
    /// The connection that declared an exclusive queue; only it may use it.
    pub exclusive_owner: Option<ConnectionId>,
    /// The arguments as declared (for definitions and equivalence checks).
    pub arguments: FieldTable,
    /// What they mean, parsed once. The limits, TTLs and dead-lettering in
    /// force are `QueueState::settings`: these under the policies.
    pub args: QueueArgs,
    /// The log of a durable queue when the broker has a data directory.
    log: Option<Arc<QueueLog>>,
    /// Where to page messages beyond `budget` bytes of RAM (`None`: never).
    paging: Option<(std::path::PathBuf, u64)>,
    /// What TTLs and x-expires read.
    clock: Clock,
    /// Where this queue registers its next deadline (its vhost's heap), and
    /// itself as the heap names it. Unset for a queue outside a vhost.
    timers: Option<(Arc<Timers>, Weak<Queue>)>,
    /// Deliveries, gets, acks and the unacknowledged count, written by the
    /// connections that deliver and settle (see `stats.rs`).
    counters: DeliveryCounters,
    /// Set when the queue is a stream (`x-queue-type=stream`): its log and
    /// consumers' cursors replace `ready` (see `broker/stream.rs`).
    stream: Option<StreamState>,
    state: Mutex<QueueState>,
}

/// What a queue is made of (`Queue::new`).
pub struct NewQueue {
    pub name: String,
    pub vhost: String,
    pub durable: bool,
    pub auto_delete: bool,
    pub exclusive_owner: Option<ConnectionId>,
    pub arguments: FieldTable,
    pub log: Option<Arc<QueueLog>>,
    pub clock: Clock,
}

#[derive(Debug)]
struct QueueState {
    ready: Ready,
    /// Newer messages paged to disk once `ready` outgrew the RAM budget;
    /// all of them come after everything in `ready`.
    tail: Option<PagedTail>,
    /// Sorted by priority, highest first (stable: equal priorities keep
    /// their arrival order, which single-active-consumer relies on).
    consumers: Vec<Arc<Consumer>>,
    /// Round-robin position among the consumers of the serving priority.
    next_consumer: usize,
    next_seq: u64,
    deleted: bool,
    /// For `x-expires`: when the queue was last declared, consumed or read.
    last_used: u64,
    /// The last page-out failed (logged once until one succeeds).
    paging_failed: bool,
    /// The earliest deadline this queue has in its vhost's timer heap and
    /// that has not fired yet.
    timer: Option<u64>,
    /// Messages enqueued (RabbitMQ's `publish`), counted under the lock
    /// the enqueue holds anyway.
    published: u64,
    /// Fault injection: consumers get nothing until resumed (basic.get
    /// still works).
    paused: bool,
    /// Fault injection: how many of the next publishes this queue refuses
    /// (a confirm is a nack, as under reject-publish).
    refuse_next: u32,
    /// What the queue does now: its arguments under its policies. Inside
    /// the lock every operation takes anyway, so a policy change costs the
    /// hot path nothing.
    settings: Settings,
    /// A stream's consumers' positions in its log (empty for other queues).
    cursors: Vec<Cursor>,
}

/// A queue's arguments under the policies that apply to it.
#[derive(Debug, Default)]
struct Settings {
    args: QueueArgs,
    applied: Applied,
}

/// What `remove_consumer` found.
pub struct ConsumerRemoved {
    pub consumer: Arc<Consumer>,
    /// An auto-delete queue just lost its last consumer: the caller deletes it.
    pub now_unused_auto_delete: bool,
}

/// Why messages leave a queue for its dead-letter exchange (the `reason` of
/// an x-death entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeathReason {
    Rejected,
    Expired,
    Maxlen,
}

impl DeathReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeathReason::Rejected => "rejected",
            DeathReason::Expired => "expired",
            DeathReason::Maxlen => "maxlen",
        }
    }
}

/// Messages that left a queue and go to its dead-letter exchange (or are
/// dropped, without one). The caller routes them once the queue lock is
/// released, since they may come back to this very queue.
#[derive(Default)]
pub struct DeadLetters {
    pub messages: Vec<(QueuedMessage, DeathReason)>,
}

impl DeadLetters {
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

/// What settles an unacknowledged delivery: basic.ack; basic.nack or
/// basic.reject with requeue (and channel close, recover); without requeue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settle {
    Ack,
    Requeue,
    /// Dead-lettered (reason `rejected`), or dropped without a DLX.
    Discard,
}

/// A delivery the client has not settled yet, as the broker needs it to
/// settle it.
pub struct Unsettled {
    pub queue: Arc<Queue>,
    /// `None` for basic.get deliveries, which no consumer credit covers.
    pub consumer: Option<Arc<Consumer>>,
    pub message: QueuedMessage,
}

/// The result of offering a message to a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Accepted; `Some(ticket)` when it went to the log and a confirm must
    /// wait for `Store::synced` to pass the ticket.
    Accepted(Option<StoreTicket>),
    /// Refused by `x-overflow: reject-publish(-dlx)`: a confirm is a nack.
    Rejected,
    /// The queue was deleted meanwhile; the message is dropped.
    Gone,
}

impl Queue {
    pub fn new(q: NewQueue) -> Self {
        let NewQueue { name, vhost, durable, auto_delete, exclusive_owner, arguments, log, clock } = q;
        // Arguments were validated by the declare that got us here; a
        // definitions file with bad ones gets the defaults.
        let args = QueueArgs::parse(&arguments, &name, &vhost).unwrap_or_default();
        let levels = args.max_priority.map(|p| p as usize + 1).unwrap_or(1);
        let last_used = clock.millis();
        let settings = Settings { args: args.clone(), applied: Applied::default() };
        Queue {
            name,
            vhost,
            durable,
            auto_delete,
            exclusive_owner,
            arguments,
            args,
            log,
            paging: None,
            clock,
            timers: None,
            counters: DeliveryCounters::default(),
            stream: None,
            state: Mutex::new(QueueState {
                ready: Ready::new(levels),
                tail: None,
                consumers: Vec::new(),
                next_consumer: 0,
                next_seq: 0,
                deleted: false,
                paused: false,
                refuse_next: 0,
                last_used,
                paging_failed: false,
                timer: None,
                settings,
                published: 0,
                cursors: Vec::new(),
            }),
        }
    }

    /// Puts the queue in `timers` (as `me`, the `Weak` of the `Arc` it is
    /// about to go into: see `Arc::new_cyclic`).
    pub fn with_timers(mut self, timers: Arc<Timers>, me: Weak<Queue>) -> Self {
        self.timers = Some((timers, me));
        self
    }

    /// Registers the queue's first deadline (its x-expires, or the expiry of
    /// restored messages), once it is in its `Arc`.
    pub fn arm(&self) {
        let mut st = self.state.lock();
        self.reschedule(&mut st);
    }

    /// When the queue must next be looked at: the earliest head expiry, or
    /// the end of its x-expires while it has no consumers.
    fn next_deadline(&self, st: &QueueState) -> Option<u64> {
        let head = st.ready.head_expiry();
        let unused = match st.settings.args.expires {
            Some(e) if st.consumers.is_empty() && !st.deleted => Some(st.last_used.saturating_add(e)),
            _ => None,
        };
        match (head, unused) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Registers the next deadline if it is earlier than the one already in
    /// the heap (a later one is found when that one fires).
    fn reschedule(&self, st: &mut QueueState) {
        let Some((timers, me)) = &self.timers else { return };
        // A stream has no TTLs and no x-expires (a policy's are ignored).
        if self.stream.is_some() {
            return;
        }
        if st.ready.expiring == 0 && st.settings.args.expires.is_none() {
            return;
        }
        if let Some(at) = self.next_deadline(st) {
            if st.timer.is_none_or(|t| at < t) {
                st.timer = Some(at);
                timers.schedule(at, me.clone());
            }
        }
    }

    /// A deadline this queue registered (`at`) is due: expires head
    /// messages into `dead`, hands what is left to waiting consumers, and
    /// registers the next deadline. Returns whether the queue has been
    /// unused past its x-expires (the caller deletes it).
    pub fn on_timer(&self, at: u64, now: u64, dead: &mut DeadLetters) -> bool {
        let mut st = self.state.lock();
        if st.deleted {
            return false;
        }
        if st.timer == Some(at) {
            st.timer = None;
        }
        self.expire_locked(&mut st, now, dead);
        let unused =
            st.settings.args.expires.is_some_and(|e| st.consumers.is_empty() && now.saturating_sub(st.last_used) >= e);
        if unused {
            return true;
        }
        self.dispatch_locked(&mut st, now);
        false
    }

    /// Lets the queue page to `dir` beyond `budget` bytes of RAM. Priority
    /// queues stay in memory (their levels would each need a tail).
    pub fn with_paging(mut self, dir: std::path::PathBuf, budget: u64) -> Self {
        if self.args.max_priority.is_none() {
            self.paging = Some((dir, budget));
        }
        self
    }

    /// Keeps a message: in RAM, or at the end of the paged tail when the
    /// budget is spent (or a tail exists: order must hold).
    fn store_ready(&self, st: &mut QueueState, m: QueuedMessage) {
        if let Some((dir, budget)) = &self.paging {
            if st.tail.as_ref().is_some_and(|t| !t.is_empty()) || st.ready.mem >= *budget {
                let tail = st.tail.get_or_insert_with(|| PagedTail::new(dir.clone()));
                match tail.push(&m) {
                    Ok(()) => {
                        if std::mem::take(&mut st.paging_failed) {
                            tracing::info!(queue = %self.name, "paging to disk works again");
                        }
                        return;
                    }
                    // Once per episode: a full disk fails every page-out.
                    Err(e) if !st.paging_failed => {
                        st.paging_failed = true;
                        tracing::error!(queue = %self.name, "paging failed, keeping messages in RAM until it works again: {e}");
                    }
                    Err(_) => {}
                }
            }
        }
        st.ready.push_back(m);
    }

    /// Brings paged messages back once the head has room for them.
    fn refill(&self, st: &mut QueueState) {
        let Some((_, budget)) = &self.paging else { return };
        let Some(tail) = st.tail.as_mut().filter(|t| !t.is_empty()) else { return };
        if st.ready.mem > budget / 2 {
            return;
        }
        // Up to half the budget's worth (at least one message).
        let (ready, mut taken) = (&mut st.ready, 0);
        if let Err(e) = tail.pop_batch(|m| {
            taken += mem_of(&m);
            ready.push_back(m);
            taken < budget / 2
        }) {
            tracing::error!(queue = %self.name, "reading paged messages failed: {e}");
        }
    }

    fn total_len(st: &QueueState) -> u64 {
        st.ready.len as u64 + st.tail.as_ref().map(|t| t.count).unwrap_or(0)
    }

    pub fn is_quorum(&self) -> bool {
        self.args.queue_type == QueueType::Quorum
    }

    /// Makes the queue a stream over `stream`'s log.
    pub fn with_stream(mut self, stream: StreamState) -> Self {
        self.stream = Some(stream);
        self
    }

    /// The stream this queue is, if it is one.
    pub fn stream(&self) -> Option<&StreamState> {
        self.stream.as_ref()
    }

    pub fn is_stream(&self) -> bool {
        self.stream.is_some()
    }

    /// RabbitMQ's 540 for an operation a stream does not have
    /// (`basic.get`, `queue.purge`, …): `what` names it.
    pub fn stream_not_implemented(&self, what: &str) -> AmqpError {
        AmqpError::not_implemented(format!(
            "{what} not supported by stream queues queue '{}' in vhost '{}'",
            self.name, self.vhost
        ))
    }

    /// Loads messages read back from the log at start, in queue order.
    pub fn restore(&self, messages: impl IntoIterator<Item = QueuedMessage>) {
        let mut st = self.state.lock();
        for m in messages {
            st.next_seq = st.next_seq.max(m.seq + 1);
            self.store_ready(&mut st, m);
        }
    }

    /// Records that a persisted message left the queue for good.
    pub fn log_ack(&self, m: &QueuedMessage) {
        if let (true, Some(log)) = (m.persisted, &self.log) {
            log.append_ack(m.seq);
        }
    }

    /// Records that a persisted message reached a client, so a restart
    /// redelivers it with redelivered=true.
    pub fn log_delivered(&self, m: &QueuedMessage) {
        if let (true, false, Some(log)) = (m.persisted, m.redelivered, &self.log) {
            log.append_delivered(m.seq);
        }
    }

    /// 405 unless `connection_id` may use this queue.
    pub fn check_exclusive(&self, connection_id: ConnectionId) -> AmqpResult<()> {
        match self.exclusive_owner {
            Some(owner) if owner != connection_id => Err(AmqpError::resource_locked(format!(
                "cannot obtain exclusive access to locked queue '{}' in vhost '{}'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.",
                self.name, self.vhost
            ))),
            _ => Ok(()),
        }
    }

    fn over_limit(&self, st: &QueueState, extra_len: u64, extra_bytes: u64) -> bool {
        let tail_bytes = st.tail.as_ref().map(|t| t.bytes).unwrap_or(0);
        let args = &st.settings.args;
        args.max_length.is_some_and(|m| Self::total_len(st) + extra_len > m)
            || args.max_length_bytes.is_some_and(|m| st.ready.bytes + tail_bytes + extra_bytes > m)
    }

    /// Offers a message. A persistent message in a durable queue is first
    /// handed to the log (under the queue lock, so its record is queued for
    /// the writer before any consumer can ack it); `waker` is woken when it
    /// is on disk. Messages pushed out (overflow, TTL) land in `dead`.
    pub fn enqueue(
        &self,
        message: Arc<Message>,
        waker: Option<&Arc<super::consumer::Outbox>>,
        dead: &mut DeadLetters,
    ) -> Enqueued {
        let now = self.clock.millis();
        let mut st = self.state.lock();
        if st.deleted {
            return Enqueued::Gone;
        }
        if let Some(stream) = &self.stream {
            // Every message is written, persistent or not; its confirm
            // waits for the ticket; consumers see it once it is committed
            // (the writer wakes the dispatcher). `expiration` is ignored.
            let waker = waker.map(|o| Waker::from(Arc::clone(o)));
            let ticket = stream.handle.append(&message, self.clock.unix_millis() as i64, waker);
            st.published += 1;
            return Enqueued::Accepted(Some(StoreTicket(ticket)));
        }
        self.expire_locked(&mut st, now, dead);
        if st.refuse_next > 0 {
            st.refuse_next -= 1;
            return Enqueued::Rejected;
        }
        let overflow = st.settings.args.overflow;
        let reject = matches!(overflow, Overflow::RejectPublish | Overflow::RejectPublishDlx);
        if reject && self.over_limit(&st, 1, message.body.len() as u64) {
            if overflow == Overflow::RejectPublishDlx {
                let seq = st.next_seq;
                st.next_seq += 1;
                let m = QueuedMessage {
                    seq,
                    message,
                    redelivered: false,
                    persisted: false,
                    expires_at: None,
                    delivery_count: 0,
                };
                dead.messages.push((m, DeathReason::Maxlen));
            }
            return Enqueued::Rejected;
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        let ttl = match (st.settings.args.message_ttl, message.expiration) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let ticket = match (&self.log, message.persistent) {
            (Some(log), true) => {
                Some(StoreTicket(log.append_message(seq, &message, waker.map(|o| Waker::from(Arc::clone(o))))))
            }
            _ => None,
        };
        let m = QueuedMessage {
            seq,
            message,
            redelivered: false,
            persisted: ticket.is_some(),
            expires_at: ttl.map(|t| now + t),
            delivery_count: 0,
        };
        self.store_ready(&mut st, m);
        st.published += 1;
        if !reject {
            self.drop_head_locked(&mut st, dead);
        }
        // The same instant as the TTL above: a TTL of 0 must not look expired.
        self.dispatch_locked(&mut st, now);
        // A TTL of 0 means "deliver now or never".
        if ttl == Some(0) {
            self.expire_locked(&mut st, now, dead);
        }
        Enqueued::Accepted(ticket)
    }

    /// drop-head: the oldest go until the queue is within its limits.
    fn drop_head_locked(&self, st: &mut QueueState, dead: &mut DeadLetters) {
        while self.over_limit(st, 0, 0) {
            if st.ready.len == 0 {
                self.refill(st);
            }
            match st.ready.pop_front() {
                Some(m) => dead.messages.push((m, DeathReason::Maxlen)),
                None => break,
            }
        }
    }

    /// Takes the policies of `policies` that match now (read under the
    /// queue lock, so concurrent changes apply in order). Lower limits
    /// under drop-head trim the queue at once, into the returned dead
    /// letters (RabbitMQ's `maybe_drop_head`); reject-publish refuses only
    /// new messages. A new `expires` counts from now. A `message-ttl`
    /// applies to messages that arrive from now on.
    pub fn apply_policies(&self, policies: &arc_swap::ArcSwap<PolicySet>) -> DeadLetters {
        let mut dead = DeadLetters::default();
        let mut st = self.state.lock();
        if st.deleted {
            return dead;
        }
        let applied = policies.load().for_queue(&self.name, self.args.queue_type);
        if applied == st.settings.applied {
            return dead;
        }
        let args = applied.queue_args(&self.args, &self.arguments);
        let now = self.clock.millis();
        if args.expires != st.settings.args.expires {
            st.last_used = now;
        }
        st.settings = Settings { args, applied };
        if let Some(stream) = &self.stream {
            // A stream takes `max-length-bytes` (the lower wins, as merged
            // above) and `max-age` (its argument wins) from policies.
            let policy_age = st.settings.applied.definition.get("max-age").and_then(|v| v.as_str());
            let retention = crate::store::streams::Retention {
                max_bytes: st.settings.args.max_length_bytes,
                max_age_ms: stream.args.max_age_ms.or_else(|| policy_age.and_then(super::args::parse_interval_ms)),
            };
            stream.handle.apply_retention(retention, self.clock.unix_millis() as i64);
            return dead;
        }
        if st.settings.args.overflow == Overflow::DropHead {
            self.drop_head_locked(&mut st, &mut dead);
        }
        self.dispatch_locked(&mut st, now);
        dead
    }

    /// The arguments in force: as declared, under the policies.
    pub fn effective_args(&self) -> QueueArgs {
        self.state.lock().settings.args.clone()
    }

    /// Where dead letters go now: exchange and routing key.
    pub fn dead_letter_target(&self) -> (Option<String>, Option<String>) {
        let st = self.state.lock();
        (st.settings.args.dead_letter_exchange.clone(), st.settings.args.dead_letter_routing_key.clone())
    }

    /// The name of the policy that applies, if any.
    pub fn policy_name(&self) -> Option<String> {
        self.state.lock().settings.applied.policy.clone()
    }

    /// The name of the operator policy that applies, if any.
    pub fn operator_policy_name(&self) -> Option<String> {
        self.state.lock().settings.applied.operator_policy.clone()
    }

    /// RabbitMQ's `effective_policy_definition`: the policy's and the
    /// operator policy's definitions merged (not the queue's arguments).
    pub fn effective_policy_definition(&self) -> serde_json::Map<String, serde_json::Value> {
        self.state.lock().settings.applied.definition.clone()
    }

    fn expire_locked(&self, st: &mut QueueState, now: u64, dead: &mut DeadLetters) {
        let mut expired = Vec::new();
        st.ready.take_expired(now, &mut expired);
        dead.messages.extend(expired.into_iter().map(|m| (m, DeathReason::Expired)));
    }

    /// Counts as use for `x-expires` (declare, get, consume).
    pub fn touch(&self) {
        self.state.lock().last_used = self.clock.millis();
    }

    /// Puts messages back at their original positions, marked redelivered
    /// when they had reached a client.
    pub fn requeue(&self, messages: impl IntoIterator<Item = QueuedMessage>) {
        let mut st = self.state.lock();
        if st.deleted {
            return;
        }
        for m in messages {
            st.ready.insert_by_seq(m);
        }
        self.dispatch_locked(&mut st, self.clock.millis());
    }

    /// Settles deliveries this queue made (their consumer credit is the
    /// caller's: see `Vhost::settle`). An ack is logged; a requeue puts the
    /// messages back at their positions, redelivered, under one lock; a
    /// discard hands them to `dead` as rejected (the dead-lettering logs
    /// their acks).
    pub fn settle(&self, messages: Vec<QueuedMessage>, how: Settle, dead: &mut DeadLetters) {
        if self.stream.is_some() {
            // Nothing leaves or returns to a log: settling only gave credit back.
            return;
        }
        match how {
            Settle::Ack => messages.iter().for_each(|m| self.log_ack(m)),
            Settle::Requeue => self.requeue(messages.into_iter().map(|mut m| {
                m.redelivered = true;
                m.delivery_count += 1;
                m
            })),
            Settle::Discard => dead.messages.extend(messages.into_iter().map(|m| (m, DeathReason::Rejected))),
        }
    }

    /// Hands ready messages to consumers with credit.
    pub fn dispatch(&self) {
        let mut st = self.state.lock();
        self.dispatch_locked(&mut st, self.clock.millis());
    }

    /// Dispatches, then registers the next deadline: what it took from the
    /// head may have uncovered an expiring message.
    fn dispatch_locked(&self, st: &mut QueueState, now: u64) {
        if self.stream.is_some() {
            Self::dispatch_stream(st);
            return;
        }
        self.dispatch_heads(st, now);
        self.reschedule(st);
    }

    /// The highest-priority consumers with credit get messages, round-robin
    /// among equals; with single-active-consumer only the first one does.
    fn dispatch_heads(&self, st: &mut QueueState, now: u64) {
        while !st.consumers.is_empty() && !st.paused {
            if st.ready.len == 0 {
                self.refill(st);
                if st.ready.len == 0 {
                    return;
                }
            }
            let Some(idx) = Self::pick_consumer(st, &self.args) else { return };
            let Some(message) = st.ready.pop_front() else { return };
            // Strictly past: a TTL of 0 still reaches a waiting consumer.
            if message.expires_at.is_some_and(|t| t < now) {
                // Credit was taken for a message that just expired: give it
                // back; its deadline dead-letters what remains at the head.
                st.consumers[idx].written();
                st.consumers[idx].settled();
                st.ready.insert_by_seq(message);
                return;
            }
            let consumer = Arc::clone(&st.consumers[idx]);
            let outbox = Arc::clone(&consumer.outbox);
            outbox.push(OutboxItem::Deliver { consumer, message });
        }
        self.refill(st);
    }

    /// Each consumer of a stream reads on from its own cursor while it has
    /// credit; a cancelled consumer's cursor goes.
    fn dispatch_stream(st: &mut QueueState) {
        if st.paused {
            return;
        }
        st.cursors.retain(|c| c.consumer.is_active());
        for cursor in &mut st.cursors {
            while cursor.peek().is_some() {
                if !cursor.consumer.try_take() {
                    break;
                }
                let Some((offset, message)) = cursor.pop() else { break };
                let m = QueuedMessage {
                    seq: offset,
                    message,
                    redelivered: false,
                    persisted: false,
                    expires_at: None,
                    delivery_count: 0,
                };
                let consumer = Arc::clone(&cursor.consumer);
                let outbox = Arc::clone(&consumer.outbox);
                outbox.push(OutboxItem::Deliver { consumer, message: m });
            }
        }
    }

    /// A stream consumer's checks (RabbitMQ's texts) and its cursor.
    fn add_stream_consumer(
        &self,
        st: &mut QueueState,
        stream: &StreamState,
        consumer: &Arc<Consumer>,
    ) -> AmqpResult<()> {
        if consumer.no_ack {
            return Err(self.stream_not_implemented("automatic acknowledgement"));
        }
        if consumer.prefetch == 0 {
            return Err(AmqpError::precondition_failed(format!(
                "consumer prefetch count is not set for 'queue '{}' in vhost '{}''",
                self.name, self.vhost
            )));
        }
        if consumer.arguments.inner().contains_key("x-priority") {
            return Err(AmqpError::precondition_failed(format!(
                "invalid arg 'x-priority' for queue '{}' in vhost '{}' of queue type rabbit_stream_queue",
                self.name, self.vhost
            )));
        }
        let at =
            super::stream::start_at(&consumer.arguments, &self.name, &self.vhost, self.clock.unix_millis() as i64)?;
        let cursor = Cursor::new(Arc::clone(consumer), stream, at).map_err(|e| {
            tracing::error!(queue = %self.name, vhost = %self.vhost, "cannot open a stream reader: {e}");
            AmqpError::new(super::error::ReplyCode::InternalError, format!("cannot read stream '{}': {e}", self.name))
        })?;
        st.cursors.push(cursor);
        self.start_dispatcher(stream);
        Ok(())
    }

    /// Starts the task that dispatches after each commit of the stream's
    /// log (once; it ends when the queue goes). Outside a runtime (unit
    /// tests) there is none: callers dispatch.
    fn start_dispatcher(&self, stream: &StreamState) {
        let Some((_, me)) = &self.timers else { return };
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        if stream.dispatcher.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = me.clone();
        let notify = Arc::clone(&stream.notify);
        rt.spawn(async move {
            loop {
                notify.notified().await;
                let Some(q) = me.upgrade() else { return };
                if q.is_deleted() {
                    return;
                }
                q.dispatch();
            }
        });
    }

    fn pick_consumer(st: &mut QueueState, args: &QueueArgs) -> Option<usize> {
        if args.single_active_consumer {
            return st.consumers[0].try_take().then_some(0);
        }
        let mut start = 0;
        while start < st.consumers.len() {
            let priority = st.consumers[start].priority;
            let end = start + st.consumers[start..].iter().take_while(|c| c.priority == priority).count();
            let n = end - start;
            let first = st.next_consumer % n;
            for i in 0..n {
                let idx = start + (first + i) % n;
                if st.consumers[idx].try_take() {
                    st.next_consumer = (first + i + 1) % n;
                    return Some(idx);
                }
            }
            start = end;
        }
        None
    }

    /// basic.get: the head message and how many remain after it.
    pub fn get(&self, dead: &mut DeadLetters) -> Option<(QueuedMessage, u32)> {
        let now = self.clock.millis();
        let mut st = self.state.lock();
        st.last_used = now;
        self.refill(&mut st);
        self.expire_locked(&mut st, now, dead);
        let m = st.ready.pop_front()?;
        // The count leaves out what expired behind the message just taken.
        self.refill(&mut st);
        self.expire_locked(&mut st, now, dead);
        self.reschedule(&mut st);
        Some((m, Self::total_len(&st) as u32))
    }

    /// Copies of up to `count` ready messages from position `offset`, in
    /// the order consumers would get them, leaving the queue as it was (no
    /// redelivered flag, no reordering): the management API's browse.
    /// Messages paged out to disk beyond the RAM budget are not included.
    pub fn peek(&self, offset: usize, count: usize) -> Vec<QueuedMessage> {
        let st = self.state.lock();
        st.ready.levels.iter().rev().flat_map(|l| l.iter()).skip(offset).take(count).cloned().collect()
    }

    /// Bytes of the ready messages' bodies.
    pub fn ready_bytes(&self) -> u64 {
        self.state.lock().ready.bytes
    }

    pub fn add_consumer(&self, consumer: Arc<Consumer>) -> AmqpResult<()> {
        let mut st = self.state.lock();
        if st.deleted {
            return Err(AmqpError::not_found(format!("no queue '{}' in vhost '{}'", self.name, self.vhost)));
        }
        if let Some(stream) = &self.stream {
            self.add_stream_consumer(&mut st, stream, &consumer)?;
        } else if consumer.arguments.inner().contains_key("x-stream-offset") {
            let kind = if self.is_quorum() { "rabbit_quorum_queue" } else { "rabbit_classic_queue" };
            return Err(AmqpError::precondition_failed(format!(
                "invalid arg 'x-stream-offset' for queue '{}' in vhost '{}' of queue type {kind}",
                self.name, self.vhost
            )));
        }
        if st.consumers.iter().any(|c| c.exclusive) || (consumer.exclusive && !st.consumers.is_empty()) {
            return Err(AmqpError::access_refused(format!(
                "queue '{}' in vhost '{}' in exclusive use",
                self.name, self.vhost
            )));
        }
        let at = st.consumers.partition_point(|c| c.priority >= consumer.priority);
        st.consumers.insert(at, consumer);
        st.last_used = self.clock.millis();
        self.dispatch_locked(&mut st, self.clock.millis());
        Ok(())
    }

    pub fn remove_consumer(
        &self,
        connection_id: ConnectionId,
        channel: ChannelId,
        tag: &str,
    ) -> Option<ConsumerRemoved> {
        let mut st = self.state.lock();
        let idx = st
            .consumers
            .iter()
            .position(|c| c.connection_id == connection_id && c.channel == channel && c.tag == tag)?;
        let consumer = st.consumers.remove(idx);
        consumer.deactivate();
        st.last_used = self.clock.millis();
        // With single-active-consumer the next in line takes over now.
        self.dispatch_locked(&mut st, self.clock.millis());
        Some(ConsumerRemoved {
            consumer,
            now_unused_auto_delete: self.auto_delete && st.consumers.is_empty() && !st.deleted,
        })
    }

    /// Ready messages (a stream's declare-ok and delete-ok say 0, as
    /// RabbitMQ's do; `stats` counts its log).
    pub fn message_count(&self) -> u32 {
        if self.stream.is_some() {
            return 0;
        }
        Self::total_len(&self.state.lock()) as u32
    }

    pub fn consumer_count(&self) -> u32 {
        self.state.lock().consumers.len() as u32
    }

    /// Removes every ready message (not the unacknowledged ones, as RabbitMQ).
    pub fn purge(&self) -> u32 {
        let mut st = self.state.lock();
        let all = st.ready.drain();
        for m in &all {
            self.log_ack(m);
        }
        let mut n = all.len() as u32;
        if let Some(tail) = st.tail.as_mut() {
            tail.clear(|m| {
                self.log_ack(&m);
                n += 1;
            });
        }
        n
    }

    /// Fault injection: stops (`true`) or resumes deliveries to consumers.
    pub fn set_paused(&self, paused: bool) {
        let mut st = self.state.lock();
        st.paused = paused;
        self.dispatch_locked(&mut st, self.clock.millis());
    }

    /// Fault injection: the next `n` publishes are refused (nacked).
    pub fn refuse_next_publishes(&self, n: u32) {
        self.state.lock().refuse_next = n;
    }

    /// Fault injection: removes the consumers with `tag` (every one
    /// without), for the caller to tell them with basic.cancel as a queue
    /// deletion does. The second value says whether an auto-delete queue
    /// just lost its last consumer.
    pub fn cancel_consumers(&self, tag: Option<&str>) -> (Vec<Arc<Consumer>>, bool) {
        let mut st = self.state.lock();
        let (gone, kept) = std::mem::take(&mut st.consumers).into_iter().partition(|c| tag.is_none_or(|t| c.tag == t));
        st.consumers = kept;
        let gone: Vec<Arc<Consumer>> = gone;
        for c in &gone {
            c.deactivate();
        }
        if !gone.is_empty() {
            st.last_used = self.clock.millis();
            self.dispatch_locked(&mut st, self.clock.millis());
        }
        let unused = self.auto_delete && !gone.is_empty() && st.consumers.is_empty() && !st.deleted;
        (gone, unused)
    }

    /// A broker restart as fault injection simulates it: transient messages
    /// are lost; persistent ones stay, in order. Returns how many went.
    pub fn drop_transient(&self) -> u32 {
        let mut st = self.state.lock();
        let mut all = st.ready.drain();
        if let Some(tail) = st.tail.as_mut() {
            tail.clear(|m| all.push(m));
        }
        let before = all.len();
        all.retain(|m| m.message.persistent);
        let dropped = (before - all.len()) as u32;
        for m in all {
            self.store_ready(&mut st, m);
        }
        self.reschedule(&mut st);
        dropped
    }

    /// Marks the queue deleted and returns its ready count and the consumers
    /// that must be told (basic.cancel).
    pub fn mark_deleted(&self) -> (u32, Vec<Arc<Consumer>>) {
        let mut st = self.state.lock();
        st.deleted = true;
        let mut n = st.ready.drain().len() as u32;
        if let Some(mut tail) = st.tail.take() {
            tail.clear(|_| n += 1);
        }
        if let Some(log) = &self.log {
            log.delete();
        }
        if let Some(stream) = &self.stream {
            stream.handle.delete();
            st.cursors.clear();
            // Its dispatcher sees the queue deleted and ends.
            stream.notify.notify_one();
        }
        let consumers = std::mem::take(&mut st.consumers);
        for c in &consumers {
            c.deactivate();
        }
        (n, consumers)
    }

    pub fn is_deleted(&self) -> bool {
        self.state.lock().deleted
    }

    /// A consumer's connection wrote a delivery of `m` (`no_ack`: the
    /// consumer does not ack). Relaxed atomics: the counts are totals that
    /// readers sample, ordered by nothing.
    pub fn on_delivered(&self, no_ack: bool, m: &QueuedMessage) {
        let mut d = Delivered::default();
        d.count(no_ack, m);
        self.add_delivered(&d);
    }

    /// What a connection wrote from this queue in one batch (its
    /// deliveries counted with `Delivered::count`).
    pub fn add_delivered(&self, d: &Delivered) {
        let c = &self.counters;
        let add = |a: &std::sync::atomic::AtomicU64, v: u64| {
            if v != 0 {
                a.fetch_add(v, Ordering::Relaxed);
            }
        };
        add(&c.deliver_no_ack, d.deliver_no_ack);
        add(&c.redeliver, d.redeliver);
        if d.deliver != 0 {
            c.deliver.fetch_add(d.deliver, Ordering::Relaxed);
            c.unacked.fetch_add(d.deliver as u32, Ordering::Relaxed);
            c.unacked_bytes.fetch_add(d.unacked_bytes, Ordering::Relaxed);
        }
    }

    /// basic.get handed out `m`.
    pub fn on_got(&self, no_ack: bool, m: &QueuedMessage) {
        let c = &self.counters;
        if no_ack {
            c.get_no_ack.fetch_add(1, Ordering::Relaxed);
        } else {
            c.get.fetch_add(1, Ordering::Relaxed);
            self.count_unacked(m);
        }
        if m.redelivered {
            c.redeliver.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[inline]
    fn count_unacked(&self, m: &QueuedMessage) {
        self.counters.unacked.fetch_add(1, Ordering::Relaxed);
        self.counters.unacked_bytes.fetch_add(m.message.body.len() as u64, Ordering::Relaxed);
    }

    /// An unacknowledged delivery of `m` (from `on_delivered` or `on_got`
    /// without no_ack) was settled: acked (`ack`), requeued or rejected.
    pub fn on_settled(&self, m: &QueuedMessage, ack: bool) {
        self.add_settled(&Settled { count: 1, bytes: m.message.body.len() as u64, acked: ack as u64 });
    }

    /// Unacknowledged deliveries of this queue settled at once.
    pub fn add_settled(&self, s: &Settled) {
        let c = &self.counters;
        c.unacked.fetch_sub(s.count, Ordering::Relaxed);
        c.unacked_bytes.fetch_sub(s.bytes, Ordering::Relaxed);
        if s.acked != 0 {
            c.ack.fetch_add(s.acked, Ordering::Relaxed);
        }
    }

    /// Messages delivered with manual ack (or got without no_ack) and not
    /// yet acked, rejected or requeued (RabbitMQ's
    /// `messages_unacknowledged`).
    pub fn unacked_count(&self) -> u32 {
        self.counters.unacked.load(Ordering::Relaxed)
    }

    /// RabbitMQ's `message_stats` of this queue and its byte totals (body
    /// bytes, as RabbitMQ counts `message_bytes`).
    pub fn stats(&self) -> QueueStats {
        let (publish, ready, ready_bytes) = {
            let st = self.state.lock();
            let tail_bytes = st.tail.as_ref().map(|t| t.bytes).unwrap_or(0);
            match &self.stream {
                Some(stream) => (st.published, stream.message_count(), stream.handle.shared().bytes()),
                None => (st.published, Self::total_len(&st), st.ready.bytes + tail_bytes),
            }
        };
        let c = &self.counters;
        let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let unacked_bytes = l(&c.unacked_bytes);
        QueueStats {
            publish,
            deliver: l(&c.deliver),
            deliver_no_ack: l(&c.deliver_no_ack),
            get: l(&c.get),
            get_no_ack: l(&c.get_no_ack),
            ack: l(&c.ack),
            redeliver: l(&c.redeliver),
            message_bytes: ready_bytes + unacked_bytes,
            message_bytes_ready: ready_bytes,
            message_bytes_unacknowledged: unacked_bytes,
            messages_ready: ready,
            messages_unacknowledged: c.unacked.load(Ordering::Relaxed),
        }
    }

    /// The consumers, in the order they are served (highest priority first).
    pub fn consumer_details(&self) -> Vec<ConsumerInfo> {
        let st = self.state.lock();
        st.consumers
            .iter()
            .enumerate()
            .map(|(i, c)| ConsumerInfo {
                consumer_tag: c.tag.clone(),
                connection_id: c.connection_id,
                channel: c.channel,
                ack_required: !c.no_ack,
                prefetch_count: c.prefetch,
                exclusive: c.exclusive,
                priority: c.priority,
                arguments: c.arguments.clone(),
                // With single-active-consumer only the first one receives.
                active: c.is_active() && (!self.args.single_active_consumer || i == 0),
            })
            .collect()
    }
}

/// One consumer as `Queue::consumer_details` lists it (RabbitMQ's
/// `consumer_details`).
#[derive(Clone, Debug, PartialEq)]
pub struct ConsumerInfo {
    pub consumer_tag: String,
    pub connection_id: ConnectionId,
    pub channel: ChannelId,
    pub ack_required: bool,
    /// The per-consumer prefetch (0: none).
    pub prefetch_count: u32,
    pub exclusive: bool,
    /// `x-priority` (0 without it).
    pub priority: i32,
    pub arguments: FieldTable,
    /// Receives messages now (false for the waiting ones of a
    /// single-active-consumer queue).
    pub active: bool,
}
