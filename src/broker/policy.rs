//! Policies and operator policies (RabbitMQ's `rabbit_policy`): named,
//! prioritised regular expressions over queue and exchange names that set
//! optional arguments from outside the application, and can be changed while
//! the queues they match are live.
//!
//! How an effective setting is found, as RabbitMQ does it:
//!
//! 1. Of the policies whose pattern matches the name (an unanchored regex
//!    search) and whose `apply-to` covers the object, the highest priority
//!    wins; the same for operator policies. RabbitMQ leaves ties to the
//!    order its table happens to list them; Warren takes the first name in
//!    byte order, so the choice is at least stable.
//! 2. The two winners merge key by key into the *effective policy
//!    definition*: a key in only one of them is taken as is; a key in both is
//!    the lower of the two for the numeric limits (`message-ttl`, `expires`,
//!    `max-length`, `max-length-bytes`, `max-in-memory-*`, `delivery-limit`)
//!    and the user policy's value otherwise.
//! 3. Against the queue's own `x-` arguments: for those numeric limits the
//!    lower of argument and effective definition applies; for everything
//!    else (`dead-letter-exchange`, `dead-letter-routing-key`, `overflow`,
//!    an exchange's `alternate-exchange`) the argument wins.
//!
//! A change re-applies to every queue and exchange of the vhost at once
//! (`Vhost::apply_policies`). A `message-ttl` applies to messages enqueued
//! from then on: like RabbitMQ, a message's expiry is fixed when it arrives.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use amq_protocol::types::FieldTable;
use regex::Regex;
use serde_json::{Map, Value};

use super::args::{Overflow, QueueArgs, QueueType};
use crate::store::definitions::PolicyDef;

/// What a policy applies to (`apply-to`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyTo {
    Queues,
    Exchanges,
    All,
    /// RabbitMQ 3.12+: queues of one type only.
    ClassicQueues,
    QuorumQueues,
    /// Matches nothing: Warren has no streams.
    Streams,
}

impl ApplyTo {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queues" => ApplyTo::Queues,
            "exchanges" => ApplyTo::Exchanges,
            "all" => ApplyTo::All,
            "classic_queues" => ApplyTo::ClassicQueues,
            "quorum_queues" => ApplyTo::QuorumQueues,
            "streams" => ApplyTo::Streams,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ApplyTo::Queues => "queues",
            ApplyTo::Exchanges => "exchanges",
            ApplyTo::All => "all",
            ApplyTo::ClassicQueues => "classic_queues",
            ApplyTo::QuorumQueues => "quorum_queues",
            ApplyTo::Streams => "streams",
        }
    }

    fn covers_queue(self, queue_type: QueueType) -> bool {
        match self {
            ApplyTo::Queues | ApplyTo::All => true,
            ApplyTo::ClassicQueues => queue_type == QueueType::Classic,
            ApplyTo::QuorumQueues => queue_type == QueueType::Quorum,
            ApplyTo::Streams => queue_type == QueueType::Stream,
            ApplyTo::Exchanges => false,
        }
    }

    fn covers_exchanges(self) -> bool {
        matches!(self, ApplyTo::Exchanges | ApplyTo::All)
    }
}

/// Which of the two kinds: they allow different keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    User,
    Operator,
}

/// A validated policy, its pattern compiled once.
#[derive(Debug)]
pub struct Policy {
    pub vhost: String,
    pub name: String,
    pub pattern: Regex,
    pub apply_to: ApplyTo,
    pub priority: i64,
    pub definition: Map<String, Value>,
}

impl Policy {
    /// Validates `def` as RabbitMQ does. The error is RabbitMQ's text
    /// without its "Validation failed" frame, e.g. `-1 is not a valid
    /// message TTL` (see `validation_failed`).
    pub fn new(def: PolicyDef, kind: PolicyKind) -> Result<Policy, String> {
        let pattern = Regex::new(&def.pattern).map_err(|e| {
            format!("pattern should be regular expression but is invalid: {}", pcre_error(&def.pattern, &e))
        })?;
        let apply_to = ApplyTo::parse(&def.apply_to).ok_or_else(|| {
            format!("apply-to '{}' unrecognised; should be 'queues', 'exchanges' or 'all'", def.apply_to)
        })?;
        validate_definition(&def.definition, kind)?;
        Ok(Policy {
            vhost: def.vhost,
            name: def.name,
            pattern,
            apply_to,
            priority: def.priority,
            definition: def.definition,
        })
    }

    pub fn to_def(&self) -> PolicyDef {
        PolicyDef {
            vhost: self.vhost.clone(),
            name: self.name.clone(),
            pattern: self.pattern.as_str().to_owned(),
            apply_to: self.apply_to.as_str().to_owned(),
            definition: self.definition.clone(),
            priority: self.priority,
        }
    }

    fn matches(&self, name: &str) -> bool {
        self.pattern.is_match(name)
    }
}

/// RabbitMQ's whole error text for a policy that does not validate (the
/// `reason` its management API answers with).
pub fn validation_failed(why: &str) -> String {
    format!("Validation failed\n\n{why}\n")
}

/// Rust's regex errors in the words of PCRE's, which RabbitMQ shows
/// (`{"missing )",1}`), for the common mistakes.
fn pcre_error(pattern: &str, e: &regex::Error) -> String {
    let text = e.to_string();
    let end = pattern.len();
    let (what, at) = if text.contains("unclosed group") {
        ("missing )".to_owned(), end)
    } else if text.contains("unopened group") {
        ("unmatched parentheses".to_owned(), pattern.find(')').unwrap_or(0))
    } else if text.contains("unclosed character class") {
        ("missing terminating ] for character class".to_owned(), end)
    } else if text.contains("repetition operator missing expression") {
        ("nothing to repeat".to_owned(), 0)
    } else {
        let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("invalid");
        (last.trim().trim_start_matches("error: ").to_owned(), 0)
    };
    format!("{{\"{what}\",{at}}}")
}

/// What each key accepts, RabbitMQ's text for a bad value, and whether an
/// operator policy may set it.
struct KeyRule {
    key: &'static str,
    valid: fn(&Value) -> bool,
    error: &'static str,
    operator: bool,
}

fn int_at_least(v: &Value, min: i64) -> bool {
    // Past i64::MAX only a u64 is left.
    v.as_i64().map_or(v.as_u64().is_some(), |n| n >= min)
}

fn non_negative(v: &Value) -> bool {
    int_at_least(v, 0)
}

fn positive(v: &Value) -> bool {
    int_at_least(v, 1)
}

fn string(v: &Value) -> bool {
    v.is_string()
}

fn anything(_: &Value) -> bool {
    true
}

const RULES: &[KeyRule] = &[
    KeyRule {
        key: "alternate-exchange",
        valid: string,
        error: "is not a valid alternate exchange name",
        operator: false,
    },
    KeyRule {
        key: "dead-letter-exchange",
        valid: string,
        error: "is not a valid dead letter exchange name",
        operator: false,
    },
    KeyRule {
        key: "dead-letter-routing-key",
        valid: string,
        error: "is not a valid dead letter routing key",
        operator: false,
    },
    KeyRule {
        key: "dead-letter-strategy",
        valid: string,
        error: "is not a valid dead letter strategy",
        operator: false,
    },
    KeyRule { key: "delivery-limit", valid: non_negative, error: "is not a valid delivery limit", operator: true },
    KeyRule { key: "expires", valid: positive, error: "is not a valid queue expiry", operator: true },
    KeyRule { key: "max-in-memory-bytes", valid: non_negative, error: "is not a valid memory limit", operator: true },
    KeyRule { key: "max-in-memory-length", valid: non_negative, error: "is not a valid memory limit", operator: true },
    KeyRule { key: "max-length", valid: non_negative, error: "is not a valid maximum length", operator: true },
    KeyRule {
        key: "max-length-bytes",
        valid: non_negative,
        error: "is not a valid maximum length in bytes",
        operator: true,
    },
    KeyRule { key: "message-ttl", valid: non_negative, error: "is not a valid message TTL", operator: true },
    KeyRule {
        key: "overflow",
        valid: |v| matches!(v.as_str(), Some("drop-head" | "reject-publish" | "reject-publish-dlx")),
        error: "is not a valid overflow value",
        operator: false,
    },
    KeyRule {
        key: "queue-mode",
        valid: |v| matches!(v.as_str(), Some("default" | "lazy")),
        error: "is not a valid queue-mode value",
        operator: false,
    },
    KeyRule {
        key: "queue-version",
        valid: |v| matches!(v.as_i64(), Some(1 | 2)),
        error: "is not a valid queue-version value",
        operator: false,
    },
    KeyRule {
        key: "ha-mode",
        valid: |v| matches!(v.as_str(), Some("all" | "exactly" | "nodes")),
        error: "is not a valid ha-mode value",
        operator: false,
    },
    // Accepted and ignored: mirroring, locators and stream settings mean
    // nothing to a single Warren node.
    KeyRule { key: "ha-params", valid: anything, error: "", operator: false },
    KeyRule { key: "ha-sync-mode", valid: anything, error: "", operator: false },
    KeyRule { key: "ha-sync-batch-size", valid: anything, error: "", operator: false },
    KeyRule { key: "ha-promote-on-shutdown", valid: anything, error: "", operator: false },
    KeyRule { key: "ha-promote-on-failure", valid: anything, error: "", operator: false },
    KeyRule { key: "queue-master-locator", valid: anything, error: "", operator: false },
    KeyRule { key: "queue-leader-locator", valid: anything, error: "", operator: false },
    KeyRule { key: "max-age", valid: anything, error: "", operator: false },
    KeyRule { key: "stream-max-segment-size-bytes", valid: anything, error: "", operator: false },
];

/// Checks a definition key by key (in key order, as RabbitMQ's sorted
/// proplist goes); keys no rule knows are reported together after that.
fn validate_definition(definition: &Map<String, Value>, kind: PolicyKind) -> Result<(), String> {
    if definition.is_empty() {
        return Err("no policy provided".into());
    }
    let mut unknown = Vec::new();
    for (k, v) in definition {
        match RULES.iter().find(|r| r.key == k && (kind == PolicyKind::User || r.operator)) {
            Some(rule) if !(rule.valid)(v) => return Err(format!("{} {}", erlang_term(v), rule.error)),
            Some(_) => {}
            None => unknown.push(format!("{{{},{}}}", erlang_term(&Value::String(k.clone())), erlang_term(v))),
        }
    }
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!("[{}] are not recognised policy settings", unknown.join(",")))
    }
}

/// A JSON value as Erlang's `~p` prints what RabbitMQ decoded it into.
fn erlang_term(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let mut out = String::from("<<\"");
            for c in s.chars() {
                match c {
                    '"' | '\\' => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out.push_str("\">>");
            out
        }
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(erlang_term).collect::<Vec<_>>().join(",")),
        Value::Object(m) => {
            let mut out = String::from("#{");
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{} => {}", erlang_term(&Value::String(k.clone())), erlang_term(v));
            }
            out.push('}');
            out
        }
    }
}

/// The numeric keys where the lower value wins (operator policy against
/// policy, and effective definition against queue argument).
const LOWER_WINS: &[&str] = &[
    "message-ttl",
    "expires",
    "max-length",
    "max-length-bytes",
    "max-in-memory-length",
    "max-in-memory-bytes",
    "delivery-limit",
];

/// The policies and operator policies of one vhost, by name.
#[derive(Debug, Default, Clone)]
pub struct PolicySet {
    pub policies: BTreeMap<String, Arc<Policy>>,
    pub operator_policies: BTreeMap<String, Arc<Policy>>,
}

/// Highest priority first; among equals the first name (the maps iterate
/// in name order).
fn winner(all: &BTreeMap<String, Arc<Policy>>, applies: impl Fn(&Policy) -> bool) -> Option<&Arc<Policy>> {
    let mut best: Option<&Arc<Policy>> = None;
    for p in all.values().filter(|p| applies(p)) {
        if best.is_none_or(|b| p.priority > b.priority) {
            best = Some(p);
        }
    }
    best
}

impl PolicySet {
    /// The policy and operator policy a queue gets.
    pub fn for_queue(&self, name: &str, queue_type: QueueType) -> Applied {
        let applies = |p: &Policy| p.apply_to.covers_queue(queue_type) && p.matches(name);
        Applied::merge(winner(&self.policies, applies), winner(&self.operator_policies, applies))
    }

    /// The policy and operator policy an exchange gets.
    pub fn for_exchange(&self, name: &str) -> Applied {
        let applies = |p: &Policy| p.apply_to.covers_exchanges() && p.matches(name);
        Applied::merge(winner(&self.policies, applies), winner(&self.operator_policies, applies))
    }
}

/// The policies that apply to one object and what they add up to.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Applied {
    pub policy: Option<String>,
    pub operator_policy: Option<String>,
    /// RabbitMQ's `effective_policy_definition`: both definitions merged.
    pub definition: Map<String, Value>,
}

impl Applied {
    fn merge(policy: Option<&Arc<Policy>>, op: Option<&Arc<Policy>>) -> Applied {
        let mut definition = policy.map(|p| p.definition.clone()).unwrap_or_default();
        if let Some(op) = op {
            for (k, v) in &op.definition {
                let merged = match definition.get(k) {
                    Some(mine) if LOWER_WINS.contains(&k.as_str()) => lower(mine, v).clone(),
                    Some(mine) => mine.clone(),
                    None => v.clone(),
                };
                definition.insert(k.clone(), merged);
            }
        }
        Applied { policy: policy.map(|p| p.name.clone()), operator_policy: op.map(|p| p.name.clone()), definition }
    }

    fn number(&self, key: &str) -> Option<u64> {
        self.definition.get(key).and_then(Value::as_u64)
    }

    fn text(&self, key: &str) -> Option<String> {
        self.definition.get(key).and_then(Value::as_str).map(str::to_owned)
    }

    /// What a queue with `declared` arguments (as given in `arguments`)
    /// does under this: the lower limit, the argument's DLX and overflow.
    pub fn queue_args(&self, declared: &QueueArgs, arguments: &FieldTable) -> QueueArgs {
        let min = |arg: Option<u64>, key: &str| match (arg, self.number(key)) {
            (Some(a), Some(p)) => Some(a.min(p)),
            (a, p) => a.or(p),
        };
        let mut out = declared.clone();
        out.message_ttl = min(declared.message_ttl, "message-ttl");
        out.expires = min(declared.expires, "expires");
        out.max_length = min(declared.max_length, "max-length");
        out.max_length_bytes = min(declared.max_length_bytes, "max-length-bytes");
        if declared.dead_letter_exchange.is_none() {
            out.dead_letter_exchange = self.text("dead-letter-exchange");
        }
        if declared.dead_letter_routing_key.is_none() {
            out.dead_letter_routing_key = self.text("dead-letter-routing-key");
        }
        if !arguments.inner().contains_key("x-overflow") {
            out.overflow = match self.text("overflow").as_deref() {
                Some("reject-publish") => Overflow::RejectPublish,
                Some("reject-publish-dlx") => Overflow::RejectPublishDlx,
                _ => Overflow::DropHead,
            };
        }
        out
    }

    /// An exchange's alternate exchange: its argument, else the policy's.
    pub fn alternate_exchange(&self, declared: Option<&String>) -> Option<String> {
        declared.cloned().or_else(|| self.text("alternate-exchange"))
    }
}

fn lower<'a>(a: &'a Value, b: &'a Value) -> &'a Value {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if y < x => b,
        _ => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::types::AMQPValue;
    use serde_json::json;

    fn def(name: &str, pattern: &str, apply_to: &str, priority: i64, definition: Value) -> PolicyDef {
        PolicyDef {
            vhost: "/".into(),
            name: name.into(),
            pattern: pattern.into(),
            apply_to: apply_to.into(),
            definition: definition.as_object().unwrap().clone(),
            priority,
        }
    }

    fn user(name: &str, pattern: &str, priority: i64, definition: Value) -> Arc<Policy> {
        Arc::new(Policy::new(def(name, pattern, "all", priority, definition), PolicyKind::User).unwrap())
    }

    fn err(definition: Value, kind: PolicyKind) -> String {
        Policy::new(def("p", ".*", "all", 0, definition), kind).unwrap_err()
    }

    #[test]
    fn rabbitmq_validation_texts() {
        let u = PolicyKind::User;
        let bad_regex = Policy::new(def("p", "(", "all", 0, json!({"message-ttl": 1})), u).unwrap_err();
        assert_eq!(bad_regex, "pattern should be regular expression but is invalid: {\"missing )\",1}");
        let bad_apply = Policy::new(def("p", ".*", "foo", 0, json!({"max-length": 1})), u).unwrap_err();
        assert_eq!(bad_apply, "apply-to 'foo' unrecognised; should be 'queues', 'exchanges' or 'all'");
        assert_eq!(err(json!({}), u), "no policy provided");
        assert_eq!(err(json!({"foo": 1}), u), "[{<<\"foo\">>,1}] are not recognised policy settings");
        assert_eq!(
            err(json!({"zz": 1, "aa": "b", "message-ttl": 1}), u),
            "[{<<\"aa\">>,<<\"b\">>},{<<\"zz\">>,1}] are not recognised policy settings"
        );
        assert_eq!(err(json!({"message-ttl": "a"}), u), "<<\"a\">> is not a valid message TTL");
        assert_eq!(err(json!({"message-ttl": -1}), u), "-1 is not a valid message TTL");
        assert_eq!(err(json!({"message-ttl": 1.0}), u), "1.0 is not a valid message TTL");
        assert_eq!(err(json!({"message-ttl": true}), u), "true is not a valid message TTL");
        assert_eq!(err(json!({"message-ttl": {"a": 1}}), u), "#{<<\"a\">> => 1} is not a valid message TTL");
        assert_eq!(err(json!({"message-ttl": [1, "a"]}), u), "[1,<<\"a\">>] is not a valid message TTL");
        assert_eq!(err(json!({"max-length": -1, "message-ttl": -1}), u), "-1 is not a valid maximum length");
        assert_eq!(err(json!({"max-length-bytes": -1}), u), "-1 is not a valid maximum length in bytes");
        assert_eq!(err(json!({"expires": 0}), u), "0 is not a valid queue expiry");
        assert_eq!(err(json!({"overflow": "x"}), u), "<<\"x\">> is not a valid overflow value");
        assert_eq!(err(json!({"dead-letter-exchange": 1}), u), "1 is not a valid dead letter exchange name");
        assert_eq!(err(json!({"dead-letter-routing-key": 1}), u), "1 is not a valid dead letter routing key");
        assert_eq!(err(json!({"alternate-exchange": 1}), u), "1 is not a valid alternate exchange name");
        assert_eq!(err(json!({"delivery-limit": -1}), u), "-1 is not a valid delivery limit");
        assert_eq!(err(json!({"queue-mode": "x"}), u), "<<\"x\">> is not a valid queue-mode value");
        assert_eq!(err(json!({"queue-version": 3}), u), "3 is not a valid queue-version value");
        assert_eq!(err(json!({"ha-mode": "bogus"}), u), "<<\"bogus\">> is not a valid ha-mode value");
        // Accepted (and ignored): a routing key without a DLX, a huge TTL,
        // mirroring and queue-mode settings.
        let ok = json!({"dead-letter-routing-key": "k", "message-ttl": 4294967296u64, "queue-mode": "lazy",
                        "ha-mode": "all", "queue-version": 2, "delivery-limit": 3});
        Policy::new(def("p", ".*", "all", 0, ok), u).unwrap();
        for apply_to in ["queues", "exchanges", "all", "classic_queues", "quorum_queues", "streams"] {
            Policy::new(def("p", ".*", apply_to, 0, json!({"max-length": 1})), u).unwrap();
        }
    }

    #[test]
    fn operator_policies_take_only_limits() {
        let o = PolicyKind::Operator;
        assert_eq!(
            err(json!({"dead-letter-exchange": "x"}), o),
            "[{<<\"dead-letter-exchange\">>,<<\"x\">>}] are not recognised policy settings"
        );
        assert_eq!(
            err(json!({"overflow": "reject-publish"}), o),
            "[{<<\"overflow\">>,<<\"reject-publish\">>}] are not recognised policy settings"
        );
        assert_eq!(err(json!({"message-ttl": -1}), o), "-1 is not a valid message TTL");
        let ok =
            json!({"expires": 1000, "max-length-bytes": 10, "delivery-limit": 3, "max-length": 5, "message-ttl": 1});
        Policy::new(def("o", ".*", "all", 0, ok), o).unwrap();
    }

    #[test]
    fn highest_priority_wins_and_ties_go_to_the_first_name() {
        let mut set = PolicySet::default();
        set.policies.insert("low".into(), user("low", "^a", 1, json!({"max-length": 1})));
        set.policies.insert("high".into(), user("high", "a", 5, json!({"max-length": 2})));
        set.policies.insert("other".into(), user("other", "^b", 9, json!({"max-length": 3})));
        assert_eq!(set.for_queue("abc", QueueType::Classic).policy.as_deref(), Some("high"));
        assert_eq!(set.for_queue("xa", QueueType::Classic).policy.as_deref(), Some("high"), "unanchored search");
        assert_eq!(set.for_queue("zzz", QueueType::Classic), Applied::default());
        set.policies.insert("b-tie".into(), user("b-tie", "a", 5, json!({"max-length": 4})));
        set.policies.insert("a-tie".into(), user("a-tie", "a", 5, json!({"max-length": 5})));
        assert_eq!(set.for_queue("abc", QueueType::Classic).policy.as_deref(), Some("a-tie"));
    }

    #[test]
    fn apply_to_selects_queues_exchanges_and_queue_types() {
        let mut set = PolicySet::default();
        let p = |name: &str, apply_to: &str, prio: i64| {
            Arc::new(Policy::new(def(name, ".*", apply_to, prio, json!({"max-length": 1})), PolicyKind::User).unwrap())
        };
        set.policies.insert("x".into(), p("x", "exchanges", 9));
        set.policies.insert("q".into(), p("q", "queues", 1));
        set.policies.insert("quorum".into(), p("quorum", "quorum_queues", 5));
        set.policies.insert("streams".into(), p("streams", "streams", 8));
        assert_eq!(set.for_exchange("e").policy.as_deref(), Some("x"));
        assert_eq!(set.for_queue("c", QueueType::Classic).policy.as_deref(), Some("q"));
        assert_eq!(set.for_queue("r", QueueType::Quorum).policy.as_deref(), Some("quorum"));
    }

    #[test]
    fn operator_policy_merges_by_the_lower_limit() {
        // As RabbitMQ 3.10 shows it: policy {max-length 10, dlx}, operator
        // policy {max-length 5, message-ttl 1000}.
        let mut set = PolicySet::default();
        set.policies
            .insert("p1".into(), user("p1", "^op", 3, json!({"max-length": 10, "dead-letter-exchange": "dlx"})));
        let op = Policy::new(
            def("op1", "^op", "all", 0, json!({"max-length": 5, "message-ttl": 1000})),
            PolicyKind::Operator,
        )
        .unwrap();
        set.operator_policies.insert("op1".into(), Arc::new(op));
        let a = set.for_queue("opq", QueueType::Classic);
        assert_eq!(a.policy.as_deref(), Some("p1"));
        assert_eq!(a.operator_policy.as_deref(), Some("op1"));
        assert_eq!(
            Value::Object(a.definition.clone()),
            json!({"dead-letter-exchange": "dlx", "max-length": 5, "message-ttl": 1000})
        );
        // An operator policy alone applies as it is.
        set.policies.clear();
        assert_eq!(
            Value::Object(set.for_queue("opq", QueueType::Classic).definition),
            json!({"max-length": 5, "message-ttl": 1000})
        );
    }

    #[test]
    fn queue_arguments_against_the_effective_definition() {
        let a = Applied {
            policy: Some("p".into()),
            operator_policy: None,
            definition: json!({"max-length": 5, "message-ttl": 100, "dead-letter-exchange": "pdlx",
                               "dead-letter-routing-key": "prk", "overflow": "reject-publish", "expires": 50})
            .as_object()
            .unwrap()
            .clone(),
        };
        // No arguments: the policy's values.
        let none = FieldTable::default();
        let eff = a.queue_args(&QueueArgs::default(), &none);
        assert_eq!((eff.max_length, eff.message_ttl, eff.expires), (Some(5), Some(100), Some(50)));
        assert_eq!(eff.dead_letter_exchange.as_deref(), Some("pdlx"));
        assert_eq!(eff.dead_letter_routing_key.as_deref(), Some("prk"));
        assert_eq!(eff.overflow, Overflow::RejectPublish);
        // Arguments: the lower limit; the argument's DLX and overflow.
        let mut args = FieldTable::default();
        args.insert("x-max-length".into(), AMQPValue::LongInt(3));
        args.insert("x-message-ttl".into(), AMQPValue::LongInt(1000));
        args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("qdlx".into()));
        args.insert("x-overflow".into(), AMQPValue::LongString("drop-head".into()));
        let declared = QueueArgs::parse(&args, "q", "/").unwrap();
        let eff = a.queue_args(&declared, &args);
        assert_eq!((eff.max_length, eff.message_ttl), (Some(3), Some(100)));
        assert_eq!(eff.dead_letter_exchange.as_deref(), Some("qdlx"));
        assert_eq!(eff.dead_letter_routing_key.as_deref(), Some("prk"));
        assert_eq!(eff.overflow, Overflow::DropHead);
        // Nothing applies: the arguments as declared.
        assert_eq!(Applied::default().queue_args(&declared, &args), declared);
    }

    #[test]
    fn alternate_exchange_argument_wins() {
        let a = Applied {
            definition: json!({"alternate-exchange": "pae"}).as_object().unwrap().clone(),
            ..Default::default()
        };
        assert_eq!(a.alternate_exchange(None).as_deref(), Some("pae"));
        assert_eq!(a.alternate_exchange(Some(&"xae".to_owned())).as_deref(), Some("xae"));
    }
}
