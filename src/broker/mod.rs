//! The routing core: vhosts, exchanges, bindings, queues, consumers.
//!
//! Knows nothing of sockets or frame layouts. Operations take plain Rust
//! values and return [`AmqpError`] carrying RabbitMQ's reply code and text.

pub mod consumer;
pub mod error;
pub mod exchange;
pub mod headers;
pub mod message;
pub mod queue;
pub mod topic;
pub mod vhost;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

pub use error::{AmqpError, AmqpResult, ReplyCode, Scope};
pub use vhost::Vhost;

/// One user the broker accepts. Issue-tracked: users, tags and permissions
/// beyond the default user arrive with the management API.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub password: String,
    /// RabbitMQ's `loopback_users`: guest may only log in from loopback.
    pub loopback_only: bool,
}

#[derive(Debug)]
pub struct Broker {
    vhosts: DashMap<String, Arc<Vhost>>,
    users: DashMap<String, User>,
    next_connection_id: AtomicU64,
}

impl Broker {
    pub fn new(default_user: &str, default_pass: &str, default_vhost: &str) -> Self {
        let b = Broker { vhosts: DashMap::new(), users: DashMap::new(), next_connection_id: AtomicU64::new(1) };
        b.vhosts.insert(default_vhost.to_owned(), Arc::new(Vhost::new(default_vhost)));
        b.users.insert(
            default_user.to_owned(),
            User {
                name: default_user.to_owned(),
                password: default_pass.to_owned(),
                loopback_only: default_user == "guest",
            },
        );
        b
    }

    pub fn vhost(&self, name: &str) -> Option<Arc<Vhost>> {
        self.vhosts.get(name).map(|v| Arc::clone(v.value()))
    }

    /// Checks a login. `from_loopback` is whether the peer address is local.
    pub fn authenticate(&self, user: &str, password: &str, from_loopback: bool) -> Result<User, &'static str> {
        let u = self.users.get(user).map(|u| u.clone()).ok_or("unknown user")?;
        if u.password != password {
            return Err("invalid credentials");
        }
        if u.loopback_only && !from_loopback {
            return Err("user can only connect via localhost");
        }
        Ok(u)
    }

    pub fn next_connection_id(&self) -> u64 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }
}
