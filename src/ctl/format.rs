//! rabbitmqctl's output formats for lists, computed from management API JSON:
//! tab-separated rows (with a column header line unless `-s` or
//! `--no-table-headers`) and `--formatter json`'s one-object-per-line array.
//!
//! Pure functions from `serde_json::Value` to text: no I/O, so the fixtures
//! captured from RabbitMQ test them directly.

use serde_json::Value;

/// `--formatter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Formatter {
    Table,
    Json,
}

/// How a column's value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Render {
    /// Strings raw, numbers, `true`/`false`, anything else as an Erlang term.
    Plain,
    /// A user's tags: `[administrator]`, `[management, policymaker]`.
    Tags,
    /// An AMQP field table (queue or binding arguments, client properties):
    /// `[{"x-max-length",10}]` in a table, `[["x-max-length","long",10]]` in JSON.
    Table,
}

/// One rabbitmqctl info key and where its value lives in the API's JSON.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    /// rabbitmqctl's name for it (`messages`, `channel_pid`).
    pub key: &'static str,
    /// The API field, dot-separated for nested objects (`channel_details.name`);
    /// empty for keys the API does not report (written as an empty value).
    pub path: &'static str,
    pub render: Render,
}

const fn col(key: &'static str, path: &'static str) -> Column {
    Column { key, path, render: Render::Plain }
}

const fn table(key: &'static str, path: &'static str) -> Column {
    Column { key, path, render: Render::Table }
}

/// A list verb's info keys and its default columns.
pub struct ListSpec {
    pub verb: &'static str,
    pub columns: &'static [Column],
    pub default: &'static [&'static str],
    /// rabbitmqctl's usage line for this verb (shown after argument errors).
    pub usage: &'static str,
}

impl ListSpec {
    pub fn column(&self, key: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.key == key)
    }

    /// The columns asked for (rabbitmqctl accepts `name messages` and
    /// `name,messages`), or the defaults; the unknown keys are the error.
    pub fn select(&self, asked: &[String]) -> Result<Vec<Column>, Vec<String>> {
        let keys: Vec<&str> = if asked.is_empty() {
            self.default.to_vec()
        } else {
            asked.iter().flat_map(|a| a.split(',')).map(str::trim).filter(|k| !k.is_empty()).collect()
        };
        let unknown: Vec<String> = keys.iter().filter(|k| self.column(k).is_none()).map(|k| k.to_string()).collect();
        if !unknown.is_empty() {
            return Err(unknown);
        }
        Ok(keys.iter().filter_map(|k| self.column(k).copied()).collect())
    }
}

pub static QUEUES: ListSpec = ListSpec {
    verb: "list_queues",
    columns: &[
        col("name", "name"),
        col("durable", "durable"),
        col("auto_delete", "auto_delete"),
        table("arguments", "arguments"),
        col("policy", "policy"),
        col("pid", ""),
        col("owner_pid", "owner_pid_details.name"),
        col("exclusive", "exclusive"),
        col("exclusive_consumer_pid", ""),
        col("exclusive_consumer_tag", "exclusive_consumer_tag"),
        col("messages_ready", "messages_ready"),
        col("messages_unacknowledged", "messages_unacknowledged"),
        col("messages", "messages"),
        col("messages_ready_ram", "messages_ready_ram"),
        col("messages_unacknowledged_ram", "messages_unacknowledged_ram"),
        col("messages_ram", "messages_ram"),
        col("messages_persistent", "messages_persistent"),
        col("message_bytes", "message_bytes"),
        col("message_bytes_ready", "message_bytes_ready"),
        col("message_bytes_unacknowledged", "message_bytes_unacknowledged"),
        col("message_bytes_ram", "message_bytes_ram"),
        col("message_bytes_persistent", "message_bytes_persistent"),
        col("head_message_timestamp", "head_message_timestamp"),
        col("disk_reads", "backing_queue_status.disk_reads"),
        col("disk_writes", "backing_queue_status.disk_writes"),
        col("consumers", "consumers"),
        col("consumer_utilisation", "consumer_utilisation"),
        col("consumer_capacity", "consumer_capacity"),
        col("memory", "memory"),
        col("slave_pids", "slave_nodes"),
        col("synchronised_slave_pids", "synchronised_slave_nodes"),
        col("state", "state"),
        col("type", "type"),
        col("leader", "leader"),
        col("members", "members"),
        col("online", "online"),
    ],
    default: &["name", "messages"],
    usage: "rabbitmqctl [--node <node>] [--longnames] [--quiet] list_queues [--vhost <vhost>] [--online] [--offline] [--local] [--no-table-headers] [<column>, ...] [--timeout <timeout>]",
};

pub static EXCHANGES: ListSpec = ListSpec {
    verb: "list_exchanges",
    columns: &[
        col("name", "name"),
        col("type", "type"),
        col("durable", "durable"),
        col("auto_delete", "auto_delete"),
        col("internal", "internal"),
        table("arguments", "arguments"),
        col("policy", "policy"),
        col("user_who_performed_action", "user_who_performed_action"),
    ],
    default: &["name", "type"],
    usage: "rabbitmqctl [--node <node>] [--longnames] [--quiet] list_exchanges [--vhost <vhost>] [--no-table-headers] [<column> ...] [--timeout <timeout>]",
};

pub static BINDINGS: ListSpec = ListSpec {
    verb: "list_bindings",
    columns: &[
        col("source_name", "source"),
        // The API has no source type: a binding's source is always an exchange.
        col("source_kind", "#exchange"),
        col("destination_name", "destination"),
        col("destination_kind", "destination_type"),
        col("routing_key", "routing_key"),
        table("arguments", "arguments"),
    ],
    default: &["source_name", "source_kind", "destination_name", "destination_kind", "routing_key", "arguments"],
    usage: "rabbitmqctl [--node <node>] [--longnames] [--quiet] list_bindings [--vhost <vhost>] [--no-table-headers] [<column> ...] [--timeout <timeout>]",
};

pub static CONNECTIONS: ListSpec = ListSpec {
    verb: "list_connections",
    columns: &[
        // The API has no Erlang pids; a connection's name identifies it
        // (and is what close_connection takes).
        col("pid", "name"),
        col("name", "name"),
        col("port", "port"),
        col("host", "host"),
        col("peer_port", "peer_port"),
        col("peer_host", "peer_host"),
        col("ssl", "ssl"),
        col("ssl_protocol", "ssl_protocol"),
        col("ssl_key_exchange", "ssl_key_exchange"),
        col("ssl_cipher", "ssl_cipher"),
        col("ssl_hash", "ssl_hash"),
        col("peer_cert_subject", "peer_cert_subject"),
        col("peer_cert_issuer", "peer_cert_issuer"),
        col("peer_cert_validity", "peer_cert_validity"),
        col("state", "state"),
        col("channels", "channels"),
        col("protocol", "protocol"),
        col("auth_mechanism", "auth_mechanism"),
        col("user", "user"),
        col("vhost", "vhost"),
        col("timeout", "timeout"),
        col("frame_max", "frame_max"),
        col("channel_max", "channel_max"),
        table("client_properties", "client_properties"),
        col("recv_oct", "recv_oct"),
        col("recv_cnt", "recv_cnt"),
        col("send_oct", "send_oct"),
        col("send_cnt", "send_cnt"),
        col("send_pend", "send_pend"),
        col("connected_at", "connected_at"),
        col("user_provided_name", "user_provided_name"),
    ],
    default: &["user", "peer_host", "peer_port", "state"],
    usage: "rabbitmqctl [--node <node>] [--longnames] [--quiet] list_connections [--no-table-headers] [<column> ...] [--timeout <timeout>]",
};

pub static CHANNELS: ListSpec = ListSpec {
    verb: "list_channels",
    columns: &[
        // No pids over HTTP: the channel's name ("peer -> local (n)") stands in.
        col("pid", "name"),
        col("connection", "connection_details.name"),
        col("name", "name"),
        col("number", "number"),
        col("user", "user"),
        col("vhost", "vhost"),
        col("transactional", "transactional"),
        col("confirm", "confirm"),
        col("consumer_count", "consumer_count"),
        col("messages_unacknowledged", "messages_unacknowledged"),
        col("messages_uncommitted", "messages_uncommitted"),
        col("acks_uncommitted", "acks_uncommitted"),
        col("messages_unconfirmed", "messages_unconfirmed"),
        col("prefetch_count", "prefetch_count"),
        col("global_prefetch_count", "global_prefetch_count"),
        col("state", "state"),
    ],
    default: &["pid", "user", "consumer_count", "messages_unacknowledged"],
    usage: "rabbitmqctl [--node <node>] [--longnames] [--quiet] list_channels [--no-table-headers] [<column> ...] [--timeout <timeout>]",
};

pub static CONSUMERS: ListSpec = ListSpec {
    verb: "list_consumers",
    columns: &[
        col("queue_name", "queue.name"),
        col("channel_pid", "channel_details.name"),
        col("consumer_tag", "consumer_tag"),
        col("ack_required", "ack_required"),
        col("prefetch_count", "prefetch_count"),
        col("active", "active"),
        col("activity_status", "activity_status"),
        table("arguments", "arguments"),
        col("exclusive", "exclusive"),
    ],
    default: &["queue_name", "channel_pid", "consumer_tag", "ack_required", "prefetch_count", "active", "arguments"],
    usage: "rabbitmqctl [--node <node>] [--longnames] [--quiet] list_consumers [--vhost <vhost>] [--no-table-headers] [<column> ...] [--timeout <timeout>]",
};

pub static USERS: ListSpec = ListSpec {
    verb: "list_users",
    columns: &[col("user", "name"), Column { key: "tags", path: "tags", render: Render::Tags }],
    default: &["user", "tags"],
    usage: "rabbitmqctl [--node <node>] [--longnames] [--quiet] list_users [--no-table-headers] [--timeout <timeout>]",
};

pub static VHOSTS: ListSpec = ListSpec {
    verb: "list_vhosts",
    columns: &[
        col("name", "name"),
        col("description", "description"),
        Column { key: "tags", path: "tags", render: Render::Tags },
        col("tracing", "tracing"),
        col("cluster_state", "cluster_state"),
        col("default_queue_type", "default_queue_type"),
        table("metadata", "metadata"),
    ],
    default: &["name"],
    usage: "rabbitmqctl [--node <node>] [--longnames] [--quiet] list_vhosts [--no-table-headers] [<column> ...] [--timeout <timeout>]",
};

pub static PERMISSIONS: ListSpec = ListSpec {
    verb: "list_permissions",
    columns: &[col("user", "user"), col("configure", "configure"), col("write", "write"), col("read", "read")],
    default: &["user", "configure", "write", "read"],
    usage: "rabbitmqctl [--node <node>] [--longnames] [--quiet] list_permissions [--vhost <vhost>] [--no-table-headers] [--timeout <timeout>]",
};

pub static USER_PERMISSIONS: ListSpec = ListSpec {
    verb: "list_user_permissions",
    columns: &[col("vhost", "vhost"), col("configure", "configure"), col("write", "write"), col("read", "read")],
    default: &["vhost", "configure", "write", "read"],
    usage: "rabbitmqctl [--node <node>] [--longnames] [--quiet] list_user_permissions [--no-table-headers] <username> [--timeout <timeout>]",
};

pub static POLICIES: ListSpec = ListSpec {
    verb: "list_policies",
    columns: &[
        col("vhost", "vhost"),
        col("name", "name"),
        col("pattern", "pattern"),
        col("apply-to", "apply-to"),
        Column { key: "definition", path: "definition", render: Render::Plain },
        col("priority", "priority"),
    ],
    default: &["vhost", "name", "pattern", "apply-to", "definition", "priority"],
    usage: "rabbitmqctl [--node <node>] [--longnames] [--quiet] list_policies [--vhost <vhost>] [--no-table-headers] [--timeout <timeout>]",
};

/// The value at a dotted path; a path starting with `#` is a constant.
fn lookup<'a>(item: &'a Value, path: &str) -> Option<std::borrow::Cow<'a, Value>> {
    if let Some(constant) = path.strip_prefix('#') {
        return Some(std::borrow::Cow::Owned(Value::String(constant.to_owned())));
    }
    if path.is_empty() {
        return None;
    }
    let mut v = item;
    for part in path.split('.') {
        v = v.get(part)?;
    }
    Some(std::borrow::Cow::Borrowed(v))
}

/// A value in rabbitmqctl's tab-separated output.
pub fn text(v: &Value, render: Render) -> String {
    match (v, render) {
        (Value::Null, _) => String::new(),
        (Value::String(s), _) => s.clone(),
        (Value::Array(items), Render::Tags) => {
            let tags: Vec<String> = items.iter().map(|t| text(t, Render::Plain)).collect();
            format!("[{}]", tags.join(", "))
        }
        // Before 3.9 tags were one comma-separated string.
        (Value::Bool(b), _) => b.to_string(),
        (Value::Number(n), _) => n.to_string(),
        // A policy definition is shown as JSON.
        (Value::Object(_), Render::Plain) => v.to_string(),
        (Value::Array(_) | Value::Object(_), _) => erlang_term(v),
    }
}

/// An API value as the Erlang term rabbitmqctl prints (field tables are
/// lists of `{"key",value}` tuples; strings are quoted binaries).
pub fn erlang_term(v: &Value) -> String {
    match v {
        Value::Null => "undefined".to_owned(),
        Value::String(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => format!("[{}]", items.iter().map(erlang_term).collect::<Vec<_>>().join(",")),
        Value::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{{{},{}}}", erlang_term(&Value::String(k.clone())), erlang_term(v)))
                .collect();
            format!("[{}]", entries.join(","))
        }
    }
}

/// An AMQP field table as `--formatter json` shows it: `[[key, type, value]]`.
fn typed_table(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Array(
            map.iter()
                .map(|(k, v)| {
                    let (kind, value) = typed_value(v);
                    Value::Array(vec![Value::String(k.clone()), Value::String(kind.to_owned()), value])
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn typed_value(v: &Value) -> (&'static str, Value) {
    match v {
        Value::String(_) => ("longstr", v.clone()),
        Value::Bool(_) => ("bool", v.clone()),
        Value::Number(n) if n.is_f64() => ("double", v.clone()),
        Value::Number(_) => ("long", v.clone()),
        Value::Object(_) => ("table", typed_table(v)),
        Value::Array(items) => (
            "array",
            Value::Array(
                items
                    .iter()
                    .map(|i| {
                        let (kind, value) = typed_value(i);
                        Value::Array(vec![Value::String(kind.to_owned()), value])
                    })
                    .collect(),
            ),
        ),
        Value::Null => ("void", Value::Null),
    }
}

/// One cell, in the output format.
fn cell(item: &Value, column: &Column, formatter: Formatter) -> String {
    let value = lookup(item, column.path);
    let value = value.as_deref().unwrap_or(&Value::Null);
    match formatter {
        Formatter::Table => text(value, column.render),
        Formatter::Json => match column.render {
            Render::Table => typed_table(value).to_string(),
            Render::Tags => match value {
                // Tags as one string (old API) become a list, as rabbitmqctl shows them.
                Value::String(s) => {
                    Value::Array(s.split(',').filter(|t| !t.is_empty()).map(|t| Value::String(t.to_owned())).collect())
                        .to_string()
                }
                other => other.to_string(),
            },
            Render::Plain => value.to_string(),
        },
    }
}

/// The rows of a list verb, in rabbitmqctl's format: tab-separated with an
/// optional header line, or the JSON array with one object per line (keys
/// in the order asked for, which is why it is written by hand).
pub fn rows(items: &[Value], columns: &[Column], formatter: Formatter, headers: bool) -> String {
    let mut out = String::new();
    match formatter {
        Formatter::Table => {
            if headers && !items.is_empty() {
                out.push_str(&columns.iter().map(|c| c.key).collect::<Vec<_>>().join("\t"));
                out.push('\n');
            }
            for item in items {
                let cells: Vec<String> = columns.iter().map(|c| cell(item, c, formatter)).collect();
                out.push_str(&cells.join("\t"));
                out.push('\n');
            }
        }
        Formatter::Json => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let fields: Vec<String> = columns
                    .iter()
                    .map(|c| format!("{}:{}", Value::String(c.key.to_owned()), cell(item, c, formatter)))
                    .collect();
                out.push('{');
                out.push_str(&fields.join(","));
                out.push_str("}\n");
            }
            out.push_str("]\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_render_as_rabbitmqctl_shows_them() {
        assert_eq!(text(&json!("a/b"), Render::Plain), "a/b");
        assert_eq!(text(&json!(true), Render::Plain), "true");
        assert_eq!(text(&json!(null), Render::Plain), "");
        assert_eq!(text(&json!({"x-max-length": 10}), Render::Table), r#"[{"x-max-length",10}]"#);
        assert_eq!(text(&json!({}), Render::Table), "[]");
        assert_eq!(text(&json!(["management", "policymaker"]), Render::Tags), "[management, policymaker]");
        assert_eq!(text(&json!({"message-ttl": 60000}), Render::Plain), r#"{"message-ttl":60000}"#);
        assert_eq!(
            text(&json!({"capabilities": {"basic.nack": true}, "product": "x"}), Render::Table),
            r#"[{"capabilities",[{"basic.nack",true}]},{"product","x"}]"#
        );
    }

    #[test]
    fn json_tables_are_typed() {
        assert_eq!(typed_table(&json!({"x-max-length": 10})).to_string(), r#"[["x-max-length","long",10]]"#);
        assert_eq!(typed_table(&json!({})).to_string(), "[]");
        assert_eq!(
            typed_table(&json!({"a": "s", "b": 1.5})).to_string(),
            r#"[["a","longstr","s"],["b","double",1.5]]"#
        );
    }

    #[test]
    fn unknown_columns_are_reported() {
        let asked = vec!["name".to_owned(), "nosuchcol".to_owned()];
        assert_eq!(QUEUES.select(&asked).unwrap_err(), vec!["nosuchcol".to_owned()]);
        let asked = vec!["name,messages".to_owned()];
        assert_eq!(QUEUES.select(&asked).unwrap().len(), 2);
        assert_eq!(QUEUES.select(&[]).unwrap().iter().map(|c| c.key).collect::<Vec<_>>(), ["name", "messages"]);
    }

    #[test]
    fn empty_lists() {
        let cols = QUEUES.select(&[]).unwrap();
        assert_eq!(rows(&[], &cols, Formatter::Table, true), "");
        assert_eq!(rows(&[], &cols, Formatter::Json, true), "[\n]\n");
    }
}
