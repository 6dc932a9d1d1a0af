//! RabbitMQ's definitions JSON: the format of `GET /api/definitions`, of the
//! files `rabbitmqctl export_definitions` and the management UI export, and of
//! Warren's own `definitions.json` in the data directory. One format means a
//! file exported from RabbitMQ loads as is, and ours loads into RabbitMQ.
//!
//! Also the argument-table conversion between AMQP field tables and JSON.

use std::fs;
use std::io;
use std::path::Path;

use amq_protocol::types::{AMQPValue, DecimalValue, FieldArray, FieldTable, LongString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Definitions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rabbit_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rabbitmq_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_version: Option<String>,
    #[serde(default)]
    pub users: Vec<UserDef>,
    #[serde(default)]
    pub vhosts: Vec<VhostDef>,
    #[serde(default)]
    pub permissions: Vec<PermissionDef>,
    #[serde(default)]
    pub topic_permissions: Vec<TopicPermissionDef>,
    #[serde(default)]
    pub parameters: Vec<Value>,
    #[serde(default)]
    pub global_parameters: Vec<Value>,
    #[serde(default)]
    pub policies: Vec<PolicyDef>,
    #[serde(default)]
    pub queues: Vec<QueueDef>,
    #[serde(default)]
    pub exchanges: Vec<ExchangeDef>,
    #[serde(default)]
    pub bindings: Vec<BindingDef>,
    /// Warren's own snapshot marker: the last journal record this snapshot
    /// includes (see `store::journal`). Absent in RabbitMQ's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warren_journal_seq: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserDef {
    pub name: String,
    #[serde(default)]
    pub password_hash: String,
    /// Empty when a definitions file leaves it out: the broker's
    /// `password_hashing_module` then applies, as in RabbitMQ.
    #[serde(default)]
    pub hashing_algorithm: String,
    /// A list, as RabbitMQ 3.9+ exports it (written so); a comma-separated
    /// string in older exports (read too).
    #[serde(default)]
    pub tags: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VhostDef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Value>,
    /// RabbitMQ 3.9+: `{"description", "tags", "default_queue_type"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Also given outside `metadata` by some RabbitMQ versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_queue_type: Option<String>,
    /// Its max-connections / max-queues (`{"max-queues": 10}`). RabbitMQ
    /// 3.10 exports them as a `vhost-limits` parameter instead; both are
    /// read, and both written on export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Value>,
}

impl VhostDef {
    pub fn named(name: &str) -> Self {
        VhostDef {
            name: name.to_owned(),
            description: None,
            tags: None,
            metadata: None,
            default_queue_type: None,
            limits: None,
        }
    }

    /// The queue type a declare without `x-queue-type` gets in this vhost.
    pub fn default_queue_type(&self) -> Option<&str> {
        self.default_queue_type
            .as_deref()
            .or_else(|| self.metadata.as_ref()?.get("default_queue_type")?.as_str())
            .filter(|t| !t.is_empty())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PermissionDef {
    pub user: String,
    pub vhost: String,
    #[serde(default)]
    pub configure: String,
    #[serde(default)]
    pub write: String,
    #[serde(default)]
    pub read: String,
}

/// A topic permission: what routing keys `user` may publish with (`write`) or
/// bind with (`read`) on the topic exchange `exchange` in `vhost`. As
/// `rabbitmqctl set_topic_permissions` and `GET /api/topic-permissions` have it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopicPermissionDef {
    pub user: String,
    pub vhost: String,
    pub exchange: String,
    #[serde(default)]
    pub write: String,
    #[serde(default)]
    pub read: String,
}

/// A policy or an operator policy, with the field names of RabbitMQ's
/// `GET /api/policies` and of the definitions' `policies` list. Operator
/// policies travel in the definitions' `parameters` list instead, with
/// component `operator_policy`, as RabbitMQ exports them
/// (`to_parameter` / `from_parameter`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PolicyDef {
    /// Left out in a one-vhost export (`GET /api/definitions/{vhost}`).
    #[serde(default)]
    pub vhost: String,
    pub name: String,
    pub pattern: String,
    /// "queues", "exchanges", "all" (the default), or RabbitMQ 3.12's
    /// "classic_queues", "quorum_queues", "streams".
    #[serde(rename = "apply-to", default = "default_apply_to")]
    pub apply_to: String,
    #[serde(default)]
    pub definition: Map<String, Value>,
    /// RabbitMQ accepts any number here; a fraction is cut off.
    #[serde(default, deserialize_with = "number_as_i64")]
    pub priority: i64,
}

fn default_apply_to() -> String {
    "all".into()
}

fn number_as_i64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = serde_json::Number::deserialize(d)?;
    v.as_i64()
        .or_else(|| v.as_f64().map(|f| f as i64))
        .ok_or_else(|| serde::de::Error::custom(format!("priority {v} is out of range")))
}

/// The `component` of an operator policy in the definitions' `parameters`.
pub const OPERATOR_POLICY_COMPONENT: &str = "operator_policy";

impl PolicyDef {
    /// An operator policy as a runtime parameter, as RabbitMQ exports it:
    /// `{"vhost", "component": "operator_policy", "name", "value":
    /// {"pattern", "definition", "priority", "apply-to"}}`.
    pub fn to_parameter(&self) -> Value {
        serde_json::json!({
            "vhost": self.vhost,
            "component": OPERATOR_POLICY_COMPONENT,
            "name": self.name,
            "value": {
                "pattern": self.pattern,
                "definition": self.definition,
                "priority": self.priority,
                "apply-to": self.apply_to,
            },
        })
    }

    /// The operator policy in a `parameters` entry; `None` for another
    /// component (or an entry that is not an operator policy's shape).
    pub fn from_parameter(p: &Value) -> Option<PolicyDef> {
        if p.get("component")?.as_str()? != OPERATOR_POLICY_COMPONENT {
            return None;
        }
        let mut value = p.get("value")?.as_object()?.clone();
        value.insert("vhost".into(), p.get("vhost")?.clone());
        value.insert("name".into(), p.get("name")?.clone());
        serde_json::from_value(Value::Object(value)).ok()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QueueDef {
    pub name: String,
    /// Left out in a one-vhost export (`GET /api/definitions/{vhost}`).
    #[serde(default)]
    pub vhost: String,
    #[serde(default)]
    pub durable: bool,
    #[serde(default)]
    pub auto_delete: bool,
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExchangeDef {
    pub name: String,
    /// Left out in a one-vhost export (`GET /api/definitions/{vhost}`).
    #[serde(default)]
    pub vhost: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub durable: bool,
    #[serde(default)]
    pub auto_delete: bool,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BindingDef {
    pub source: String,
    /// Left out in a one-vhost export (`GET /api/definitions/{vhost}`).
    #[serde(default)]
    pub vhost: String,
    pub destination: String,
    /// "queue" or "exchange".
    pub destination_type: String,
    #[serde(default)]
    pub routing_key: String,
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

impl Definitions {
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn load(path: &Path) -> io::Result<Self> {
        let text = fs::read_to_string(path)?;
        Self::from_json(&text).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{}: not a definitions file: {e}", path.display()))
        })
    }

    /// Writes atomically: temp file, fsync, rename, fsync of the directory.
    /// A crash leaves either the old file or the new one, never a mix.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        super::fsutil::write_atomic(path, &json)
    }
}

/// JSON as RabbitMQ writes arguments → an AMQP field table. Integers become
/// signed 64-bit ("long"), as RabbitMQ does when it loads definitions.
pub fn table_from_json(map: &Map<String, Value>) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in map {
        if k.len() <= 255 {
            t.insert(k.as_str().into(), value_from_json(v));
        }
    }
    t
}

fn value_from_json(v: &Value) -> AMQPValue {
    match v {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => AMQPValue::LongLongInt(i),
            (None, Some(f)) => AMQPValue::Double(f),
            _ => AMQPValue::Void,
        },
        Value::String(s) => AMQPValue::LongString(LongString::from(s.as_bytes().to_vec())),
        Value::Array(a) => AMQPValue::FieldArray(FieldArray::from(a.iter().map(value_from_json).collect::<Vec<_>>())),
        Value::Object(m) => AMQPValue::FieldTable(table_from_json(m)),
    }
}

pub fn table_to_json(t: &FieldTable) -> Map<String, Value> {
    t.inner().iter().map(|(k, v)| (k.as_str().to_owned(), value_to_json(v))).collect()
}

fn value_to_json(v: &AMQPValue) -> Value {
    match v {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(i) => Value::from(*i),
        AMQPValue::ShortShortUInt(i) => Value::from(*i),
        AMQPValue::ShortInt(i) => Value::from(*i),
        AMQPValue::ShortUInt(i) => Value::from(*i),
        AMQPValue::LongInt(i) => Value::from(*i),
        AMQPValue::LongUInt(i) => Value::from(*i),
        AMQPValue::LongLongInt(i) => Value::from(*i),
        AMQPValue::Timestamp(i) => Value::from(*i),
        AMQPValue::Float(f) => Value::from(*f as f64),
        AMQPValue::Double(f) => Value::from(*f),
        AMQPValue::DecimalValue(DecimalValue { scale, value }) => {
            Value::from(*value as f64 / 10f64.powi(*scale as i32))
        }
        AMQPValue::ShortString(s) => Value::String(s.as_str().to_owned()),
        AMQPValue::LongString(s) => Value::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ByteArray(b) => Value::String(String::from_utf8_lossy(b.as_slice()).into_owned()),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(value_to_json).collect()),
        AMQPValue::FieldTable(t) => Value::Object(table_to_json(t)),
        AMQPValue::Void => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of a file exported from RabbitMQ 3.10's management UI.
    const RABBITMQ_EXPORT: &str = r#"{
      "rabbit_version": "3.10.8", "rabbitmq_version": "3.10.8",
      "product_name": "RabbitMQ", "product_version": "3.10.8",
      "users": [{"name": "guest", "password_hash": "pGtcLUm2a1S41/5pNcc0wJ7b+QdCcfYRRoUxPpiQqFWYUhAE",
                 "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": "administrator", "limits": {}}],
      "vhosts": [{"name": "/"}],
      "permissions": [{"user": "guest", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}],
      "topic_permissions": [{"user": "guest", "vhost": "/", "exchange": "amq.topic",
                             "write": "^{username}\\.", "read": ".*"}],
      "parameters": [], "global_parameters": [{"name": "cluster_name", "value": "rabbit@host"}],
      "policies": [],
      "queues": [{"name": "orders", "vhost": "/", "durable": true, "auto_delete": false,
                  "arguments": {"x-queue-type": "classic", "x-max-length": 1000}}],
      "exchanges": [{"name": "events", "vhost": "/", "type": "topic", "durable": true, "auto_delete": false,
                     "internal": false, "arguments": {}}],
      "bindings": [{"source": "events", "vhost": "/", "destination": "orders", "destination_type": "queue",
                    "routing_key": "order.#", "arguments": {}}]
    }"#;

    #[test]
    fn loads_a_rabbitmq_export_and_round_trips() {
        let d = Definitions::from_json(RABBITMQ_EXPORT).unwrap();
        assert_eq!(d.queues[0].name, "orders");
        assert_eq!(d.exchanges[0].kind, "topic");
        assert_eq!(d.bindings[0].routing_key, "order.#");
        assert_eq!(d.topic_permissions[0].exchange, "amq.topic");
        assert_eq!(d.topic_permissions[0].write, "^{username}\\.");
        let args = table_from_json(&d.queues[0].arguments);
        assert_eq!(args.inner().get("x-max-length"), Some(&AMQPValue::LongLongInt(1000)));
        assert_eq!(table_to_json(&args), d.queues[0].arguments);
        let again = Definitions::from_json(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(again, d);
    }

    #[test]
    fn policies_and_operator_policies_in_rabbitmq_shape() {
        // As RabbitMQ 3.10's GET /api/definitions writes them.
        let d = Definitions::from_json(
            r#"{"policies": [{"vhost": "/", "name": "p1", "pattern": "^op", "apply-to": "queues",
                              "definition": {"max-length": 10}, "priority": 3}],
                "parameters": [{"value": {"pattern": "^op", "definition": {"max-length": 5},
                                          "priority": 0, "apply-to": "all"},
                                "vhost": "/", "component": "operator_policy", "name": "op1"}]}"#,
        )
        .unwrap();
        assert_eq!(d.policies[0].apply_to, "queues");
        assert_eq!(d.policies[0].priority, 3);
        let op = PolicyDef::from_parameter(&d.parameters[0]).unwrap();
        assert_eq!((op.vhost.as_str(), op.name.as_str(), op.apply_to.as_str()), ("/", "op1", "all"));
        assert_eq!(op.to_parameter(), d.parameters[0]);
        let p: PolicyDef = serde_json::from_str(r#"{"vhost":"/","name":"n","pattern":".*","priority":1.5}"#).unwrap();
        assert_eq!((p.priority, p.apply_to.as_str()), (1, "all"));
    }

    #[test]
    fn save_is_atomic_and_readable() {
        let dir = std::env::temp_dir().join(format!("warren-defs-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("definitions.json");
        let d = Definitions::from_json(RABBITMQ_EXPORT).unwrap();
        d.save(&path).unwrap();
        assert_eq!(Definitions::load(&path).unwrap(), d);
        assert!(!path.with_extension("json.tmp").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
