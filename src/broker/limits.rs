//! RabbitMQ's vhost limits (`max-connections`, `max-queues`) and user
//! limits (`max-connections`, `max-channels`): their values, validation and
//! JSON, and the checks with RabbitMQ 3.10's codes and texts. A negative
//! value is no limit, 0 allows none. The checks count what the registry
//! and the vhost already hold, and run only when a limit is set, so a
//! broker without limits pays one map lookup per connection.open.

use serde_json::{Map, Value};

use super::error::AmqpError;
use super::registry::ConnectionEntry;
use super::vhost::Vhost;
use super::Broker;

pub const MAX_CONNECTIONS: &str = "max-connections";
pub const MAX_QUEUES: &str = "max-queues";
pub const MAX_CHANNELS: &str = "max-channels";
pub const VHOST_LIMITS: &[&str] = &[MAX_CONNECTIONS, MAX_QUEUES];
pub const USER_LIMITS: &[&str] = &[MAX_CONNECTIONS, MAX_CHANNELS];

/// The limits set on one vhost or one user; `None` is unset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: Option<i64>,
    pub max_queues: Option<i64>,
    pub max_channels: Option<i64>,
}

impl Limits {
    fn slot(&mut self, name: &str) -> Option<&mut Option<i64>> {
        match name {
            MAX_CONNECTIONS => Some(&mut self.max_connections),
            MAX_QUEUES => Some(&mut self.max_queues),
            MAX_CHANNELS => Some(&mut self.max_channels),
            _ => None,
        }
    }

    /// Sets one limit; `allowed` is [`VHOST_LIMITS`] or [`USER_LIMITS`].
    pub fn set(&mut self, name: &str, value: &Value, allowed: &[&str]) -> Result<(), String> {
        if !allowed.contains(&name) {
            // RabbitMQ's text, Erlang terms and all; the allowed names after it.
            return Err(format!(
                "Validation failed\n\nUnrecognised terms [{{<<\"{name}\">>,{value}}}] in limits\n(allowed: {})",
                allowed.join(", ")
            ));
        }
        let n =
            value.as_i64().ok_or_else(|| format!("Validation failed\n\n{name} should be an integer, got {value}\n"))?;
        *self.slot(name).expect("allowed names have a slot") = Some(n);
        Ok(())
    }

    pub fn clear(&mut self, name: &str) {
        if let Some(s) = self.slot(name) {
            *s = None;
        }
    }

    /// Every limit in a JSON object (`{"max-connections": 10}`), as a
    /// definitions file or the management API gives them.
    pub fn from_json(v: &Value, allowed: &[&str]) -> Result<Limits, String> {
        let mut l = Limits::default();
        match v {
            Value::Null => {}
            Value::Object(m) => {
                for (k, v) in m {
                    l.set(k, v, allowed)?;
                }
            }
            other => return Err(format!("limits must be a JSON object, got {other}")),
        }
        Ok(l)
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in
            [(MAX_CONNECTIONS, self.max_connections), (MAX_QUEUES, self.max_queues), (MAX_CHANNELS, self.max_channels)]
        {
            if let Some(v) = v {
                m.insert(k.into(), v.into());
            }
        }
        Value::Object(m)
    }

    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

/// The `component` of vhost limits in the definitions' `parameters`.
pub const VHOST_LIMITS_COMPONENT: &str = "vhost-limits";

/// The `parameters` entries RabbitMQ 3.10 exports for vhost limits.
pub fn vhost_limit_parameters(vhosts: &[crate::store::definitions::VhostDef]) -> Vec<Value> {
    vhosts
        .iter()
        .filter_map(|v| {
            let value = v.limits.as_ref().filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))?;
            Some(serde_json::json!({"vhost": v.name, "component": VHOST_LIMITS_COMPONENT, "name": "limits", "value": value}))
        })
        .collect()
}

/// The limit that `current` (what exists before the new one) has reached.
pub fn reached(limit: Option<i64>, current: usize) -> Option<i64> {
    limit.filter(|&n| n >= 0 && current as u64 >= n as u64)
}

impl Broker {
    /// A user's limits (default: none).
    pub fn user_limits(&self, user: &str) -> Limits {
        self.user_limits.get(user).map(|l| *l).unwrap_or_default()
    }

    /// Every user with a limit set, by name.
    pub fn all_user_limits(&self) -> Vec<(String, Limits)> {
        let mut v: Vec<_> = self.user_limits.iter().map(|e| (e.key().clone(), *e.value())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Replaces a user's limits and records the change with the user's
    /// definition. Fails when there is no such user.
    pub fn set_user_limits(&self, user: &str, limits: Limits) -> Result<(), String> {
        let Some(u) = self.user(user) else { return Err(format!("user '{user}' does not exist")) };
        if limits.is_empty() {
            self.user_limits.remove(user);
        } else {
            self.user_limits.insert(user.to_owned(), limits);
        }
        self.record(crate::store::DefChange::PutUser(self.user_def_with_limits(&u)));
        Ok(())
    }

    /// A user's definition with its limits, as it is recorded and exported.
    pub fn user_def_with_limits(&self, u: &super::User) -> crate::store::definitions::UserDef {
        let mut def = u.to_def();
        let limits = self.user_limits(&def.name);
        def.limits = Some(limits.to_json());
        def
    }

    /// A definitions file's user `limits` (`{}` or absent: none).
    pub(super) fn import_user_limits(&self, u: &crate::store::definitions::UserDef) -> Result<(), String> {
        let limits = match &u.limits {
            Some(v) => Limits::from_json(v, USER_LIMITS).map_err(|e| format!("limits of user '{}': {e}", u.name))?,
            None => Limits::default(),
        };
        if limits.is_empty() {
            self.user_limits.remove(&u.name);
        } else {
            self.user_limits.insert(u.name.clone(), limits);
        }
        Ok(())
    }

    /// Replaces a vhost's limits and records its definition with them.
    pub fn set_vhost_limits(&self, vhost: &str, limits: Limits) -> Result<(), String> {
        let v = self.vhost(vhost).ok_or_else(|| format!("vhost '{vhost}' does not exist"))?;
        v.set_limits(limits);
        self.record(crate::store::DefChange::PutVhost(v.def()));
        Ok(())
    }

    /// Vhost limits from definitions: a vhost's `limits` field, or a
    /// `vhost-limits` parameter as RabbitMQ 3.10 exports them.
    pub(super) fn import_vhost_limits(&self, defs: &crate::store::definitions::Definitions) -> Result<(), String> {
        let fields = defs.vhosts.iter().filter_map(|v| Some((v.name.as_str(), v.limits.as_ref()?)));
        let params = defs.parameters.iter().filter_map(|p| {
            (p.get("component")?.as_str()? == VHOST_LIMITS_COMPONENT).then_some(())?;
            Some((p.get("vhost")?.as_str()?, p.get("value")?))
        });
        for (vhost, value) in fields.chain(params) {
            let limits =
                Limits::from_json(value, VHOST_LIMITS).map_err(|e| format!("limits of vhost '{vhost}': {e}"))?;
            self.set_vhost_limits(vhost, limits)?;
        }
        Ok(())
    }

    /// Counts the open connections (and their channels) that `pick` chooses;
    /// the one asking is not open yet, so not among them.
    fn usage(&self, pick: impl Fn(&ConnectionEntry) -> bool) -> (usize, usize) {
        self.registry().usage(pick)
    }

    /// connection.open's limit checks, vhost first as RabbitMQ's reader
    /// does: 530 NOT_ALLOWED with RabbitMQ's text.
    pub fn check_connection_limits(&self, vhost: &Vhost, user: &str) -> Result<(), AmqpError> {
        let vl = vhost.limits();
        if vl.max_connections.is_some() {
            let (n, _) = self.usage(|e| e.vhost() == vhost.name);
            if let Some(limit) = reached(vl.max_connections, n) {
                return Err(AmqpError::not_allowed(format!(
                    "access to vhost '{}' refused for user '{user}': connection limit ({limit}) is reached",
                    vhost.name
                )));
            }
        }
        let ul = self.user_limits(user);
        if ul.max_connections.is_some() {
            let (n, _) = self.usage(|e| e.user() == user && !e.vhost().is_empty());
            if let Some(limit) = reached(ul.max_connections, n) {
                return Err(AmqpError::not_allowed(format!(
                    "connection refused for user '{user}': user connection limit ({limit}) is reached"
                )));
            }
        }
        Ok(())
    }

    /// channel.open's check of the user's max-channels (over all of the
    /// user's connections): 530 NOT_ALLOWED, a connection error, as RabbitMQ.
    pub fn check_channel_limit(&self, user: &str) -> Result<(), AmqpError> {
        let ul = self.user_limits(user);
        if ul.max_channels.is_none() {
            return Ok(());
        }
        let (_, n) = self.usage(|e| e.user() == user);
        match reached(ul.max_channels, n) {
            Some(limit) => Err(AmqpError::not_allowed(format!(
                "number of channels opened for user '{user}' has reached the maximum allowed user limit of ({limit})"
            ))),
            None => Ok(()),
        }
    }
}

impl Vhost {
    /// queue.declare's check before making a new queue: 406 with RabbitMQ's text.
    pub fn check_queue_limit(&self, name: &str) -> Result<(), AmqpError> {
        match reached(self.limits().max_queues, self.queue_count()) {
            Some(limit) => Err(AmqpError::precondition_failed(format!(
                "cannot declare queue '{name}': queue limit in vhost '{}' ({limit}) is reached",
                self.name
            ))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn negative_is_no_limit_and_zero_allows_none() {
        assert_eq!(reached(Some(-1), 1_000_000), None);
        assert_eq!(reached(Some(0), 0), Some(0));
        assert_eq!(reached(Some(2), 1), None);
        assert_eq!(reached(Some(2), 2), Some(2));
        assert_eq!(reached(None, 5), None);
    }

    #[test]
    fn json_round_trip_and_validation() {
        let l = Limits::from_json(&json!({"max-connections": 10, "max-queues": -1}), VHOST_LIMITS).unwrap();
        assert_eq!(l.max_connections, Some(10));
        assert_eq!(l.max_queues, Some(-1));
        assert_eq!(l.to_json(), json!({"max-connections": 10, "max-queues": -1}));
        assert!(Limits::from_json(&json!({"max-channels": 1}), VHOST_LIMITS).unwrap_err().contains("max-channels"));
        assert!(Limits::from_json(&json!({"max-queues": 1}), USER_LIMITS).is_err());
        assert!(Limits::from_json(&json!({"max-connections": "ten"}), USER_LIMITS).is_err());
        assert!(Limits::from_json(&json!([1]), USER_LIMITS).is_err());
        assert!(Limits::from_json(&Value::Null, USER_LIMITS).unwrap().is_empty());
        let mut l = l;
        l.clear(MAX_CONNECTIONS);
        l.clear(MAX_QUEUES);
        assert!(l.is_empty());
    }
}
