//! Where a message goes: routing through an exchange's bindings (and
//! alternate exchanges, exchange-to-exchange bindings), dead-lettering, and
//! the expiry of messages and unused queues.

use std::sync::Arc;

use smallvec::SmallVec;

use super::{Routed, Vhost};
use crate::broker::deadletter;
use crate::broker::exchange::{Destination, Exchange, RouteInput};
use crate::broker::queue::{DeadLetters, DeathReason, Queue};
use crate::message::{Message, QueuedMessage};

/// A message on its way to a dead-letter exchange.
struct DeadLetterWork {
    /// The queue it left, with that queue's DLX and routing key.
    queue: String,
    dlx: Option<String>,
    dlrk: Option<String>,
    message: QueuedMessage,
    reason: DeathReason,
}

impl DeadLetterWork {
    /// `message` left `queue` for `reason`: its ack is logged there.
    fn leaving(queue: &Queue, message: QueuedMessage, reason: DeathReason) -> Self {
        queue.log_ack(&message);
        let (dlx, dlrk) = queue.dead_letter_target();
        DeadLetterWork { queue: queue.name.clone(), dlx, dlrk, message, reason }
    }
}

impl Vhost {
    /// Finds every queue a message published to `exchange` reaches, each
    /// once, following exchange-to-exchange bindings (cycles are cut).
    pub fn route(&self, exchange: &Arc<Exchange>, message: &Message, routing_key: &str, out: &mut Routed) {
        if exchange.name.is_empty() {
            if let Some(q) = self.queues.get(routing_key) {
                if !out.iter().any(|o| Arc::ptr_eq(o, q.value())) {
                    out.push(Arc::clone(q.value()));
                }
            }
            return;
        }
        let mut input = RouteInput::new(routing_key, &message.properties);
        let mut pending: SmallVec<[Arc<Exchange>; 2]> = SmallVec::new();
        let mut visited: SmallVec<[String; 2]> = SmallVec::new();
        pending.push(Arc::clone(exchange));
        visited.push(exchange.name.clone());
        while let Some(x) = pending.pop() {
            let mut hits = 0;
            x.route(&mut input, |d| {
                hits += 1;
                match d {
                    Destination::Queue(q) => {
                        if !out.iter().any(|o| Arc::ptr_eq(o, q)) {
                            out.push(Arc::clone(q));
                        }
                    }
                    Destination::Exchange(name) => {
                        if !visited.iter().any(|v| v == name) {
                            visited.push(name.clone());
                            if let Some(next) = self.exchanges.get(name) {
                                pending.push(Arc::clone(next.value()));
                            }
                        }
                    }
                }
            });
            // An exchange that routes nowhere hands the message to its
            // alternate exchange.
            if hits == 0 {
                if let Some(ae) = x.alternate_exchange() {
                    if !visited.contains(&ae) {
                        if let Some(next) = self.exchanges.get(&ae) {
                            visited.push(ae);
                            pending.push(Arc::clone(next.value()));
                        }
                    }
                }
            }
        }
    }

    /// Dead-letters messages that left `from` (or drops them if it has no
    /// dead-letter exchange). Routing may push further messages out of
    /// target queues (their length limits); those are handled in the same
    /// loop, so there is no recursion and no queue lock is held here.
    pub fn dead_letter(&self, from: &Queue, dead: DeadLetters) {
        // In order: the first message out is the first dead-lettered.
        let mut work: std::collections::VecDeque<DeadLetterWork> =
            dead.messages.into_iter().map(|(m, r)| DeadLetterWork::leaving(from, m, r)).collect();
        // x-death's `time`: seconds, from the broker's clock.
        let now_secs = self.clock.unix_millis() / 1000;
        while let Some(DeadLetterWork { queue, dlx, dlrk, message: m, reason }) = work.pop_front() {
            let Some(dlx) = dlx else { continue };
            let Ok(x) = self.exchange(&dlx) else { continue };
            let (msg, keys, history) =
                deadletter::dead_letter_message_at(&m.message, &queue, reason, &dlx, dlrk.as_deref(), now_secs);
            let msg = Arc::new(msg);
            let mut targets = Routed::new();
            for k in &keys {
                self.route(&x, &msg, k, &mut targets);
            }
            for t in targets {
                if deadletter::is_cycle(&t.name, &history) {
                    continue;
                }
                let mut more = DeadLetters::default();
                t.enqueue(Arc::clone(&msg), None, &mut more);
                work.extend(more.messages.into_iter().map(|(m, r)| DeadLetterWork::leaving(&t, m, r)));
            }
        }
    }

    /// Runs every queue deadline due at `now` (the clock's `millis`):
    /// expires head messages (dead-lettering them) and deletes queues
    /// unused past their `x-expires`. Touches only the queues that are due.
    pub fn run_due(&self, now: u64) {
        while let Some((at, q)) = self.timers.pop_due(now) {
            let Some(q) = q.upgrade() else { continue };
            let mut dead = DeadLetters::default();
            let unused = q.on_timer(at, now, &mut dead);
            if !dead.is_empty() {
                self.dead_letter(&q, dead);
            }
            if unused {
                self.remove_queue(&q);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::*;
    use super::*;
    use crate::ids::ConnectionId;
    use amq_protocol::types::FieldTable;

    #[test]
    fn direct_fanout_topic_and_default() {
        let v = Vhost::new("/", None);
        for q in ["q1", "q2", "q3"] {
            declare_q(&v, q);
        }
        let none = FieldTable::default();
        v.queue_bind("q1", "amq.direct", "k", &none, ConnectionId(1)).unwrap();
        v.queue_bind("q2", "amq.direct", "k", &none, ConnectionId(1)).unwrap();
        v.queue_bind("q2", "amq.direct", "k", &none, ConnectionId(1)).unwrap(); // twice: still one binding
        v.queue_bind("q1", "amq.fanout", "", &none, ConnectionId(1)).unwrap();
        v.queue_bind("q3", "amq.fanout", "ignored", &none, ConnectionId(1)).unwrap();
        v.queue_bind("q1", "amq.topic", "a.*", &none, ConnectionId(1)).unwrap();
        v.queue_bind("q1", "amq.topic", "#", &none, ConnectionId(1)).unwrap();
        v.queue_bind("q2", "amq.topic", "a.#.b", &none, ConnectionId(1)).unwrap();
        assert_eq!(routed(&v, "amq.direct", "k"), ["q1", "q2"]);
        assert!(routed(&v, "amq.direct", "other").is_empty());
        assert_eq!(routed(&v, "amq.fanout", "x"), ["q1", "q3"]);
        assert_eq!(routed(&v, "amq.topic", "a.x.b"), ["q1", "q2"]);
        assert_eq!(routed(&v, "", "q3"), ["q3"]);
        assert!(routed(&v, "", "nope").is_empty());
        v.queue_unbind("q2", "amq.direct", "k", &none, ConnectionId(1)).unwrap();
        assert_eq!(routed(&v, "amq.direct", "k"), ["q1"]);
    }

    #[test]
    fn exchange_to_exchange_with_a_cycle() {
        let v = Vhost::new("/", None);
        declare_q(&v, "q");
        declare_x(&v, "a", "fanout").unwrap();
        declare_x(&v, "b", "fanout").unwrap();
        let none = FieldTable::default();
        v.exchange_bind("b", "a", "", &none).unwrap();
        v.exchange_bind("a", "b", "", &none).unwrap();
        v.queue_bind("q", "b", "", &none, ConnectionId(1)).unwrap();
        assert_eq!(routed(&v, "a", "x"), ["q"]);
        v.exchange_delete("b", false).unwrap();
        assert!(routed(&v, "a", "x").is_empty());
    }
}
