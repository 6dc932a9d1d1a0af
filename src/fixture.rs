//! One-line test fixtures: [`ServerBuilder`] (from [`Server::builder`]) and
//! the inspection helpers a test reaches for next (`Server::queue`,
//! `wait_until_consumers`, `wait_until_messages`). Built on the same broker
//! operations as the management API; nothing here is reachable from a
//! client.

use std::io::{Error, ErrorKind};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::broker::queue::Queue;
use crate::clock::Clock;
use crate::store::definitions::{PermissionDef, VhostDef};
use crate::{Config, Server};

/// How a test broker is made: `warren::Server::builder().in_memory()
/// .user("u", "p").vhost("v").clock_manual().start().await?`. It starts
/// from [`Config::ephemeral`] (127.0.0.1, a free port, in memory, no HTTP
/// listeners, guest/guest on `/`).
#[derive(Debug)]
pub struct ServerBuilder {
    config: Config,
    users: Vec<(String, String)>,
    vhosts: Vec<String>,
}

impl Server {
    /// A [`ServerBuilder`] for a test broker.
    pub fn builder() -> ServerBuilder {
        ServerBuilder { config: Config::ephemeral(), users: Vec::new(), vhosts: Vec::new() }
    }
}

impl ServerBuilder {
    /// Messages and definitions in memory only (the default).
    pub fn in_memory(mut self) -> Self {
        self.config.data_dir = None;
        self
    }

    /// Messages and definitions in `dir`, which survives the server.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.data_dir = Some(dir.into());
        self
    }

    /// A user with this password, tagged administrator, with every
    /// permission (`.*`) on `/` and on each vhost of [`ServerBuilder::vhost`].
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push((name.to_owned(), password.to_owned()));
        self
    }

    /// A vhost; guest and every builder user get every permission on it.
    pub fn vhost(mut self, name: &str) -> Self {
        self.vhosts.push(name.to_owned());
        self
    }

    /// Broker time stands still until the test moves it
    /// ([`Server::advance`], `server.clock().advance(..)`); socket timers
    /// (heartbeats) stay on real time.
    pub fn clock_manual(mut self) -> Self {
        self.config.clock = Clock::manual();
        self
    }

    /// The management API on a free port ([`Server::management_addr`]).
    pub fn management(mut self) -> Self {
        self.config.management_port = Some(0);
        self
    }

    /// Anything else, on the configuration itself.
    pub fn configure(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self
    }

    /// Starts the server and creates the vhosts and users.
    pub async fn start(self) -> std::io::Result<Server> {
        let mut vhosts = vec![self.config.default_vhost.clone()];
        vhosts.extend(self.vhosts.iter().cloned());
        let mut users: Vec<String> = self.users.iter().map(|(name, _)| name.clone()).collect();
        users.push(self.config.default_user.clone());
        let server = Server::start(self.config).await?;
        let broker = server.broker();
        for vhost in &self.vhosts {
            broker.put_vhost(&VhostDef::named(vhost));
        }
        for (name, password) in &self.users {
            let user = broker.new_user(name, password, &["administrator"]);
            broker.put_user(&user.to_def()).map_err(Error::other)?;
        }
        for user in &users {
            for vhost in &vhosts {
                broker.set_permissions(PermissionDef {
                    user: user.clone(),
                    vhost: vhost.clone(),
                    configure: ".*".into(),
                    write: ".*".into(),
                    read: ".*".into(),
                });
            }
        }
        Ok(server)
    }
}

impl Server {
    /// A queue, to look at (`message_count()`, `consumer_count()`); an
    /// error naming the vhost or queue that does not exist.
    pub fn queue(&self, vhost: &str, name: &str) -> std::io::Result<Arc<Queue>> {
        let v =
            self.broker().vhost(vhost).ok_or_else(|| Error::new(ErrorKind::NotFound, format!("no vhost '{vhost}'")))?;
        v.queue(name).map_err(|_| Error::new(ErrorKind::NotFound, format!("no queue '{name}' in vhost '{vhost}'")))
    }

    /// Waits until `queue` has at least `n` consumers (a client's
    /// basic.consume is asynchronous); a `TimedOut` error after `within`.
    pub async fn wait_until_consumers(
        &self,
        vhost: &str,
        queue: &str,
        n: u32,
        within: Duration,
    ) -> std::io::Result<()> {
        self.wait_until(vhost, queue, within, &format!("{n} consumers"), |q| q.consumer_count() >= n).await
    }

    /// Waits until `queue` holds exactly `n` messages ready for delivery.
    pub async fn wait_until_messages(&self, vhost: &str, queue: &str, n: u32, within: Duration) -> std::io::Result<()> {
        self.wait_until(vhost, queue, within, &format!("{n} messages"), |q| q.message_count() == n).await
    }

    async fn wait_until(
        &self,
        vhost: &str,
        queue: &str,
        within: Duration,
        what: &str,
        done: impl Fn(&Queue) -> bool,
    ) -> std::io::Result<()> {
        // Real time: this waits for clients, not for broker time.
        let deadline = Instant::now() + within;
        loop {
            if let Ok(q) = self.queue(vhost, queue) {
                if done(&q) {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::TimedOut,
                    format!("queue '{queue}' in vhost '{vhost}' did not reach {what} within {within:?}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}
