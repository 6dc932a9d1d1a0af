//! Users and vhosts as an operator changes them (the management API and
//! `warren ctl` through it): create, change, delete, each made durable like
//! every other definitions change.

use std::sync::Arc;

use super::{Broker, User, Vhost};
use crate::store::definitions::{UserDef, VhostDef};
use crate::store::DefChange;

impl Broker {
    pub fn users(&self) -> Vec<User> {
        let mut users: Vec<User> = self.users.iter().map(|u| u.value().clone()).collect();
        users.sort_by(|a, b| a.name.cmp(&b.name));
        users
    }

    pub fn user(&self, name: &str) -> Option<User> {
        self.users.get(name).map(|u| u.value().clone())
    }

    /// Creates or replaces a user (its password hash and tags). Returns
    /// whether it was new.
    pub fn put_user(&self, def: &UserDef) -> Result<bool, String> {
        let user = User::from_def(def, self.password_hashing)?;
        // A definition without `limits` (PUT /api/users) leaves them as they are.
        if def.limits.is_some() {
            self.import_user_limits(def)?;
        }
        self.record(DefChange::PutUser(self.user_def_with_limits(&user)));
        Ok(self.users.insert(def.name.clone(), user).is_none())
    }

    /// Deletes a user with its permissions; its open connections are closed
    /// (320 CONNECTION_FORCED), as RabbitMQ does.
    pub fn delete_user(&self, name: &str) -> bool {
        if self.users.remove(name).is_none() {
            return false;
        }
        self.permissions.clear_user(name);
        self.user_limits.remove(name);
        self.record(DefChange::DeleteUser { name: name.to_owned() });
        self.close_connections_of_user(name, &format!("user '{name}' is deleted"));
        true
    }

    /// Every vhost, by name.
    pub fn vhosts(&self) -> Vec<Arc<Vhost>> {
        let mut vhosts: Vec<Arc<Vhost>> = self.vhosts.iter().map(|v| Arc::clone(v.value())).collect();
        vhosts.sort_by(|a, b| a.name.cmp(&b.name));
        vhosts
    }

    /// Creates a vhost, or updates the description, tags and default queue
    /// type of one that exists. Returns whether it was new.
    pub fn put_vhost(&self, def: &VhostDef) -> bool {
        if let Some(v) = self.vhost(&def.name) {
            v.set_def(def.clone());
            self.record(DefChange::PutVhost(v.def()));
            return false;
        }
        self.add_vhost_def(def);
        true
    }

    /// Deletes a vhost with everything in it: its queues (and their
    /// messages), exchanges, bindings and permissions.
    pub fn delete_vhost(&self, name: &str) -> bool {
        let Some((_, v)) = self.vhosts.remove(name) else { return false };
        for q in v.queues() {
            v.remove_queue(&q);
        }
        self.permissions.clear_vhost(name);
        self.record(DefChange::DeleteVhost { name: name.to_owned() });
        self.close_connections_of_vhost(name, &format!("vhost '{name}' is deleted"));
        true
    }
}

impl Broker {
    /// Imports definitions into the running broker, as the management API's
    /// `POST /api/definitions` does: every object through the same
    /// operation a client or operator would use, so each change is recorded
    /// and made durable like any other. Existing objects are kept (a queue
    /// or exchange declared differently is an error, as in RabbitMQ).
    pub fn import_live(&self, defs: &crate::store::definitions::Definitions) -> Result<(), String> {
        use crate::broker::vhost::{ExchangeDeclare, QueueDeclare};
        use crate::ids::ConnectionId;
        use crate::store::definitions::table_from_json;
        for v in &defs.vhosts {
            if self.vhost(&v.name).is_none() {
                self.put_vhost(v);
            }
        }
        for u in &defs.users {
            self.put_user(u)?;
        }
        self.import_vhost_limits(defs)?;
        for p in &defs.permissions {
            self.vhost(&p.vhost).ok_or_else(|| format!("permissions in unknown vhost '{}'", p.vhost))?;
            self.set_permissions(p.clone());
        }
        for t in &defs.topic_permissions {
            self.vhost(&t.vhost).ok_or_else(|| format!("topic permissions in unknown vhost '{}'", t.vhost))?;
            self.set_topic_permissions(t.clone());
        }
        for p in &defs.policies {
            self.set_policy(p.clone()).map_err(|e| format!("policy '{}': {}", p.name, e.trim()))?;
        }
        for p in defs.parameters.iter().filter_map(crate::store::definitions::PolicyDef::from_parameter) {
            self.set_operator_policy(p.clone()).map_err(|e| format!("operator policy '{}': {}", p.name, e.trim()))?;
        }
        let vhost =
            |name: &str, what: &str| self.vhost(name).ok_or_else(|| format!("{what} in unknown vhost '{name}'"));
        for x in &defs.exchanges {
            let v = vhost(&x.vhost, &format!("exchange '{}'", x.name))?;
            v.exchange_declare(ExchangeDeclare {
                name: &x.name,
                kind: &x.kind,
                passive: false,
                durable: x.durable,
                auto_delete: x.auto_delete,
                internal: x.internal,
                arguments: &table_from_json(&x.arguments),
            })
            .map_err(|e| e.text)?;
        }
        for q in &defs.queues {
            let v = vhost(&q.vhost, &format!("queue '{}'", q.name))?;
            v.queue_declare(QueueDeclare {
                name: &q.name,
                server_named: false,
                passive: false,
                durable: q.durable,
                exclusive: false,
                auto_delete: q.auto_delete,
                arguments: &table_from_json(&q.arguments),
                connection_id: ConnectionId(0),
            })
            .map_err(|e| e.text)?;
        }
        for b in &defs.bindings {
            let v = vhost(&b.vhost, "binding")?;
            let args = table_from_json(&b.arguments);
            let bound = if b.destination_type == "exchange" {
                v.exchange_bind(&b.destination, &b.source, &b.routing_key, &args).map(|_| ())
            } else {
                v.queue_bind(&b.destination, &b.source, &b.routing_key, &args, ConnectionId(0)).map(|_| ())
            };
            bound.map_err(|e| e.text)?;
        }
        Ok(())
    }
}
