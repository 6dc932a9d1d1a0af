//! The vhost's policies and operator policies, and applying them to its
//! live queues and exchanges (see `crate::broker::policy`).

use std::sync::Arc;

use super::Vhost;
use crate::broker::policy::{Policy, PolicyKind, PolicySet};

impl Vhost {
    /// The policies and operator policies as they are now.
    pub fn policy_set(&self) -> Arc<PolicySet> {
        self.policies.load_full()
    }

    /// Adds or replaces a validated policy of `kind` and applies the
    /// change everywhere. Returns the one it replaced.
    pub fn put_policy(&self, policy: Policy, kind: PolicyKind) -> Option<Arc<Policy>> {
        self.change_policies(|set| {
            let map = match kind {
                PolicyKind::User => &mut set.policies,
                PolicyKind::Operator => &mut set.operator_policies,
            };
            map.insert(policy.name.clone(), Arc::new(policy))
        })
    }

    /// Removes a policy of `kind`; returns whether there was one.
    pub fn remove_policy(&self, name: &str, kind: PolicyKind) -> bool {
        self.change_policies(|set| {
            let map = match kind {
                PolicyKind::User => &mut set.policies,
                PolicyKind::Operator => &mut set.operator_policies,
            };
            map.remove(name).is_some()
        })
    }

    fn change_policies<T>(&self, change: impl FnOnce(&mut PolicySet) -> T) -> T {
        let _w = self.policy_write.lock();
        let mut set = PolicySet::clone(&self.policies.load());
        let out = change(&mut set);
        self.policies.store(Arc::new(set));
        self.apply_policies();
        out
    }

    /// Re-applies the policies to every queue and exchange, as RabbitMQ
    /// does on each change: limits trim queues at once (dead-lettering
    /// what they push out), a new DLX or alternate exchange takes effect
    /// with the next message.
    fn apply_policies(&self) {
        for x in self.exchanges() {
            x.apply_policies(&self.policies);
        }
        for q in self.queues() {
            let dead = q.apply_policies(&self.policies);
            if !dead.is_empty() {
                self.dead_letter(&q, dead);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use amq_protocol::types::{AMQPValue, FieldTable};
    use bytes::Bytes;
    use serde_json::json;

    use super::super::tests_support::{declare_q, declare_q_with, declare_x, routed};
    use super::*;
    use crate::broker::queue::DeadLetters;
    use crate::clock::Clock;
    use crate::message::Message;
    use crate::store::definitions::{PolicyDef, VhostDef};

    fn vhost() -> (Vhost, Clock) {
        let clock = Clock::manual();
        (Vhost::with_def(VhostDef::named("/"), None, clock.clone(), Arc::default()), clock)
    }

    fn policy(name: &str, pattern: &str, priority: i64, definition: serde_json::Value, kind: PolicyKind) -> Policy {
        let def = PolicyDef {
            vhost: "/".into(),
            name: name.into(),
            pattern: pattern.into(),
            apply_to: "all".into(),
            definition: definition.as_object().unwrap().clone(),
            priority,
        };
        Policy::new(def, kind).unwrap()
    }

    fn put(v: &Vhost, q: &str, body: &'static str) {
        let props = Bytes::from_static(&[0, 0]);
        let m = Message::new(
            Bytes::new(),
            Bytes::copy_from_slice(q.as_bytes()),
            props,
            Bytes::from_static(body.as_bytes()),
        );
        let q = v.queue(q).unwrap();
        let mut dead = DeadLetters::default();
        q.enqueue(Arc::new(m), None, &mut dead);
        if !dead.is_empty() {
            v.dead_letter(&q, dead);
        }
    }

    fn count(v: &Vhost, q: &str) -> u32 {
        v.queue(q).unwrap().message_count()
    }

    #[test]
    fn a_new_limit_trims_live_queues_and_dead_letters_the_head() {
        let (v, _) = vhost();
        declare_q(&v, "dlq");
        declare_q(&v, "work");
        declare_x(&v, "dlx", "fanout").unwrap();
        v.queue_bind("dlq", "dlx", "", &FieldTable::default(), crate::ids::ConnectionId(1)).unwrap();
        for b in ["m1", "m2", "m3", "m4", "m5"] {
            put(&v, "work", b);
        }
        let p = policy("limit", "^work$", 0, json!({"max-length": 2, "dead-letter-exchange": "dlx"}), PolicyKind::User);
        v.put_policy(p, PolicyKind::User);
        assert_eq!(count(&v, "work"), 2);
        assert_eq!(count(&v, "dlq"), 3, "the three oldest were dead-lettered");
        let q = v.queue("work").unwrap();
        assert_eq!(q.policy_name().as_deref(), Some("limit"));
        assert_eq!(q.effective_args().max_length, Some(2));
        assert!(v.remove_policy("limit", PolicyKind::User));
        assert!(!v.remove_policy("limit", PolicyKind::User));
        assert_eq!(q.policy_name(), None);
        for b in ["m6", "m7", "m8"] {
            put(&v, "work", b);
        }
        assert_eq!(count(&v, "work"), 5, "no limit once the policy is gone");
    }

    #[test]
    fn operator_policy_and_argument_take_the_lower_limit() {
        let (v, _) = vhost();
        let mut args = FieldTable::default();
        args.insert("x-max-length".into(), AMQPValue::LongInt(3));
        declare_q_with(&v, "argq", &args);
        declare_q(&v, "plain");
        v.put_policy(policy("p", ".*", 0, json!({"max-length": 10}), PolicyKind::User), PolicyKind::User);
        v.put_policy(policy("o", ".*", 0, json!({"max-length": 5}), PolicyKind::Operator), PolicyKind::Operator);
        for _ in 0..8 {
            put(&v, "argq", "m");
            put(&v, "plain", "m");
        }
        assert_eq!(count(&v, "argq"), 3, "the argument is lower");
        assert_eq!(count(&v, "plain"), 5, "the operator policy is lower");
        let q = v.queue("plain").unwrap();
        assert_eq!(q.operator_policy_name().as_deref(), Some("o"));
        assert_eq!(serde_json::Value::Object(q.effective_policy_definition()), json!({"max-length": 5}));
    }

    #[test]
    fn policies_reach_queues_declared_later_and_ttl_applies_to_new_messages() {
        let (v, clock) = vhost();
        v.put_policy(
            policy("ttl", "^t", 0, json!({"message-ttl": 100, "expires": 1000}), PolicyKind::User),
            PolicyKind::User,
        );
        declare_q(&v, "t1");
        put(&v, "t1", "m");
        clock.advance(Duration::from_millis(101));
        v.run_due(clock.millis());
        assert_eq!(count(&v, "t1"), 0);
        clock.advance(Duration::from_millis(1000));
        v.run_due(clock.millis());
        assert!(v.queue("t1").is_err(), "expires from the policy deletes the unused queue");
    }

    #[test]
    fn reject_publish_by_policy_refuses_new_messages_but_trims_nothing() {
        let (v, _) = vhost();
        declare_q(&v, "full");
        for b in ["m1", "m2", "m3"] {
            put(&v, "full", b);
        }
        let p = policy("cap", "^full$", 0, json!({"max-length": 1, "overflow": "reject-publish"}), PolicyKind::User);
        v.put_policy(p, PolicyKind::User);
        assert_eq!(count(&v, "full"), 3, "RabbitMQ drops the head only under drop-head");
        let m = Message::new(Bytes::new(), Bytes::from_static(b"full"), Bytes::from_static(&[0, 0]), Bytes::new());
        let outcome = v.queue("full").unwrap().enqueue(Arc::new(m), None, &mut DeadLetters::default());
        assert_eq!(outcome, crate::broker::queue::Enqueued::Rejected);
        // Back to drop-head (the default): the queue is trimmed now.
        let p = policy("cap", "^full$", 0, json!({"max-length": 1}), PolicyKind::User);
        v.put_policy(p, PolicyKind::User);
        assert_eq!(count(&v, "full"), 1);
    }

    #[test]
    fn an_expires_policy_counts_from_when_it_applies() {
        let (v, clock) = vhost();
        declare_q(&v, "idle");
        clock.advance(Duration::from_millis(10_000));
        v.run_due(clock.millis());
        v.put_policy(policy("exp", "^idle$", 0, json!({"expires": 500}), PolicyKind::User), PolicyKind::User);
        assert!(v.queue("idle").is_ok(), "idle for longer than 500 ms, but the policy is new");
        clock.advance(Duration::from_millis(500));
        v.run_due(clock.millis());
        assert!(v.queue("idle").is_err());
    }

    #[test]
    fn alternate_exchange_by_policy_and_argument_wins() {
        let (v, _) = vhost();
        declare_q(&v, "ae-q");
        declare_x(&v, "ae", "fanout").unwrap();
        declare_x(&v, "main", "direct").unwrap();
        v.queue_bind("ae-q", "ae", "", &FieldTable::default(), crate::ids::ConnectionId(1)).unwrap();
        assert!(routed(&v, "main", "nowhere").is_empty());
        v.put_policy(
            policy("ae", "^main$", 0, json!({"alternate-exchange": "ae"}), PolicyKind::User),
            PolicyKind::User,
        );
        assert_eq!(routed(&v, "main", "nowhere"), ["ae-q"]);
        assert_eq!(v.exchange("main").unwrap().policy_name().as_deref(), Some("ae"));
        v.remove_policy("ae", PolicyKind::User);
        assert!(routed(&v, "main", "nowhere").is_empty());
    }
}
