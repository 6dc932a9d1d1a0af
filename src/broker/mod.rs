//! The routing core: vhosts, exchanges, bindings, queues, consumers, users.
//!
//! Knows nothing of sockets or frame layouts. Operations take plain Rust
//! values and return [`AmqpError`] carrying RabbitMQ's reply code and text.
//! Durable definitions and persistent messages go through [`crate::store`].

pub mod admin;
pub mod alarms;
pub mod args;
pub mod consumer;
pub mod deadletter;
pub mod error;
pub mod exchange;
pub mod headers;
pub mod limits;
pub mod oauth2;
pub mod permissions;
pub mod policy;
pub mod publish;
pub mod queue;
pub mod registry;
pub mod stats;
pub mod stream;
pub mod timers;
pub mod topic;
pub mod users;
pub mod vhost;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

use crate::clock::Clock;
use crate::ids::{ChannelId, ConnectionId};
use crate::store::definitions::{Definitions, PermissionDef, PolicyDef, TopicPermissionDef, UserDef, VhostDef};
use crate::store::{DefChange, RecoveredQueue, Store, StoreError};
use crate::Config;
pub use error::{AmqpError, AmqpResult, ReplyCode, Scope};
pub use permissions::{Access, Permissions};
use policy::{Policy, PolicyKind};
pub use registry::{ChannelInfo, ConnectionInfo, ConnectionState, Registry};
use stats::MessageStats;
pub use stats::{ExchangeStats, GlobalStats, MessageCounts, QueueStats};
pub use users::{HashingAlgorithm, User};
pub use vhost::Vhost;

/// The hasher for maps looked up on every message (names, channel numbers,
/// consumer tags). SipHash showed up at ~7 % of broker CPU; foldhash is
/// several times faster and still seeded per process, so clients cannot
/// precompute colliding names.
pub type FastHash = foldhash::fast::RandomState;
pub type FastMap<K, V> = std::collections::HashMap<K, V, FastHash>;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot load definitions from {path}: {reason}")]
    Definitions { path: String, reason: String },
    #[error("OAuth 2.0 configuration: {0}")]
    OAuth2(String),
}

fn load_oauth2(config: &Config) -> Result<Option<Arc<oauth2::OAuth2>>, StartError> {
    Ok(oauth2::OAuth2::from_settings(&config.oauth2).map_err(StartError::OAuth2)?.map(Arc::new))
}

#[derive(Debug)]
pub struct Broker {
    vhosts: DashMap<String, Arc<Vhost>>,
    users: DashMap<String, User>,
    /// Users' max-connections / max-channels (`limits.rs`), kept beside
    /// the users so a user's definition and its limits change separately.
    user_limits: DashMap<String, limits::Limits>,
    /// (user, vhost) → configure/write/read and topic patterns, compiled;
    /// shared with every connection's [`Access`].
    permissions: Arc<Permissions>,
    store: Option<Arc<Store>>,
    /// In-memory mode's stream store, made at the first stream declare.
    temp_streams: Arc<stream::TempStreams>,
    next_connection_id: AtomicU64,
    /// RabbitMQ's loopback_users: guest only from loopback (the default).
    guest_loopback_only: bool,
    /// RabbitMQ's password_hashing_module: what new passwords are hashed with.
    password_hashing: HashingAlgorithm,
    /// rabbit_auth_backend_oauth2, when `auth_backends` names it.
    oauth2: Option<Arc<oauth2::OAuth2>>,
    /// Direct reply-to consumers.
    reply_to: ReplyTargets,
    clock: Clock,
    /// Message bytes one queue keeps in RAM before paging newer ones to
    /// disk (with a store); given to every vhost.
    queue_memory_budget: u64,
    /// Woken when a queue registers a deadline earlier than any other of
    /// its vhost: the timer task then sleeps less.
    timers_changed: Arc<tokio::sync::Notify>,
    /// The open connections and channels (for the management API).
    registry: Arc<Registry>,
    /// Message totals, added to by connections once per batch.
    stats: MessageStats,
}

/// Where replies to one direct reply-to consumer go.
#[derive(Clone, Debug)]
pub struct ReplyTarget {
    pub outbox: Arc<consumer::Outbox>,
    pub channel: ChannelId,
    pub consumer_tag: String,
}

/// The pseudo-queue RabbitMQ offers for RPC replies without a reply queue.
pub const REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// Direct reply-to consumers by the key in their
/// `amq.rabbitmq.reply-to.<key>` address (broker-wide, as in RabbitMQ).
#[derive(Debug, Default)]
pub struct ReplyTargets(DashMap<String, ReplyTarget>);

impl ReplyTargets {
    /// Adds a consumer; returns the key of its address.
    pub fn register(&self, target: ReplyTarget) -> String {
        let name = vhost::generated_name("k");
        let key = name.trim_start_matches("k-").to_owned();
        self.0.insert(key.clone(), target);
        key
    }

    pub fn unregister(&self, key: &str) {
        self.0.remove(key);
    }

    /// The consumer behind an `amq.rabbitmq.reply-to.<key>` name.
    pub fn get(&self, name: &str) -> Option<ReplyTarget> {
        let key = name.strip_prefix(REPLY_TO)?.strip_prefix('.')?;
        self.0.get(key).map(|t| t.clone())
    }
}

impl Broker {
    /// The clock every timer and TTL of this broker reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn register_reply_target(&self, target: ReplyTarget) -> String {
        self.reply_to.register(target)
    }

    pub fn unregister_reply_target(&self, key: &str) {
        self.reply_to.unregister(key)
    }

    /// The consumer behind an `amq.rabbitmq.reply-to.<key>` name.
    pub fn reply_target(&self, name: &str) -> Option<ReplyTarget> {
        self.reply_to.get(name)
    }

    /// Every direct reply-to consumer (where a publish's replies go).
    pub fn reply_targets(&self) -> &ReplyTargets {
        &self.reply_to
    }
    /// A broker that keeps nothing on disk, with one user and one vhost.
    pub fn in_memory(default_user: &str, default_pass: &str, default_vhost: &str) -> Self {
        Self::in_memory_with(default_user, default_pass, default_vhost, Clock::real())
    }

    /// As `in_memory`, reading `clock`.
    pub fn in_memory_with(default_user: &str, default_pass: &str, default_vhost: &str, clock: Clock) -> Self {
        let b = Broker::empty(None, clock);
        b.add_vhost(default_vhost);
        b.add_default_user(default_user, default_pass, default_vhost);
        b
    }

    fn empty(store: Option<Arc<Store>>, clock: Clock) -> Self {
        Broker {
            vhosts: DashMap::new(),
            users: DashMap::new(),
            user_limits: DashMap::new(),
            permissions: Arc::new(Permissions::default()),
            store,
            next_connection_id: AtomicU64::new(1),
            guest_loopback_only: true,
            password_hashing: HashingAlgorithm::default(),
            oauth2: None,
            reply_to: ReplyTargets::default(),
            clock,
            timers_changed: Arc::default(),
            queue_memory_budget: u64::MAX,
            registry: Arc::default(),
            stats: MessageStats::default(),
            temp_streams: Arc::default(),
        }
    }

    /// Opens the data directory (unless in-memory), restores definitions and
    /// messages, then imports `config.definitions` if given.
    pub fn open(config: &Config) -> Result<Broker, StartError> {
        let Some(dir) = &config.data_dir else {
            let mut b = Broker::empty(None, config.clock.clone());
            b.guest_loopback_only = config.guest_loopback_only;
            b.password_hashing = config.password_hashing;
            b.oauth2 = load_oauth2(config)?;
            b.add_vhost(&config.default_vhost);
            b.add_default_user(&config.default_user, &config.default_pass, &config.default_vhost);
            if let Some(path) = &config.definitions {
                b.import_file(path, &mut HashMap::new(), true)?;
            }
            return Ok(b);
        };
        let (store, recovered) = Store::open(dir)?;
        let mut b = Broker::empty(Some(Arc::clone(&store)), config.clock.clone());
        b.guest_loopback_only = config.guest_loopback_only;
        b.password_hashing = config.password_hashing;
        b.oauth2 = load_oauth2(config)?;
        b.queue_memory_budget = config.queue_memory_budget;
        let mut logs: HashMap<(String, String), RecoveredQueue> =
            recovered.queues.into_iter().map(|q| ((q.vhost.clone(), q.name.clone()), q)).collect();
        let clean = recovered.clean_shutdown;
        let mut fresh = true;
        if let Some(defs) = recovered.definitions {
            fresh = false;
            b.import(&defs, &mut logs, clean).map_err(|reason| StartError::Definitions {
                path: dir.join("definitions.json").display().to_string(),
                reason,
            })?;
        }
        if let Some(path) = &config.definitions {
            fresh &= !b.import_file(path, &mut logs, clean)?;
        }
        if fresh {
            // RabbitMQ creates its default vhost and user only on a fresh
            // node, never over definitions it already has.
            b.add_vhost(&config.default_vhost);
            b.add_default_user(&config.default_user, &config.default_pass, &config.default_vhost);
        }
        for (_, q) in logs.drain() {
            tracing::warn!(vhost = %q.vhost, queue = %q.name, "discarding the log of a queue that is no longer defined");
            store.discard_recovered(q);
        }
        store.remove_streams_except(|vhost, name| {
            b.vhosts.get(vhost).and_then(|v| v.queue(name).ok()).is_some_and(|q| q.is_stream())
        });
        // The recovered streams' logs are opened by the writer: once it has,
        // `next` and `last` resolve against them.
        store.sync();
        let restored: usize = b.vhosts.iter().flat_map(|v| v.queues()).map(|q| q.message_count() as usize).sum();
        tracing::info!(
            data_dir = %dir.display(),
            clean_shutdown = clean,
            "restored {} vhosts, {} messages",
            b.vhosts.len(),
            restored
        );
        // What was recovered and imported becomes the new snapshot; changes
        // from here on go to the journal.
        if let Err(e) = store.reset_definitions(b.export_definitions()) {
            tracing::error!(
                "cannot write definitions to {}: {e}; they are written again with the next change",
                dir.display()
            );
        }
        Ok(b)
    }

    /// Imports a definitions file; returns whether it defined users (so the
    /// default user is not added on top).
    fn import_file(
        &self,
        path: &std::path::Path,
        logs: &mut HashMap<(String, String), RecoveredQueue>,
        clean: bool,
    ) -> Result<bool, StartError> {
        let err = |reason: String| StartError::Definitions { path: path.display().to_string(), reason };
        let defs = Definitions::load(path).map_err(|e| err(e.to_string()))?;
        self.import(&defs, logs, clean).map_err(err)?;
        tracing::info!(file = %path.display(), "imported definitions");
        Ok(!defs.users.is_empty())
    }

    /// Applies definitions: vhosts, users, permissions, exchanges, queues
    /// (with their recovered messages), bindings. Existing objects are kept.
    pub fn import(
        &self,
        defs: &Definitions,
        logs: &mut HashMap<(String, String), RecoveredQueue>,
        clean: bool,
    ) -> Result<(), String> {
        for v in &defs.vhosts {
            self.add_vhost_def(v);
        }
        for u in &defs.users {
            self.users.insert(u.name.clone(), User::from_def(u, self.password_hashing)?);
            self.import_user_limits(u)?;
        }
        self.import_vhost_limits(defs)?;
        for p in &defs.permissions {
            self.permissions.set(p.clone());
        }
        for t in &defs.topic_permissions {
            self.permissions.set_topic(t.clone());
        }
        // Policies before the queues and exchanges they shape. One that does
        // not validate (a PCRE-only pattern, say) is skipped, not fatal.
        let operator = defs.parameters.iter().filter_map(PolicyDef::from_parameter).map(|p| (p, PolicyKind::Operator));
        for (p, kind) in defs.policies.iter().cloned().map(|p| (p, PolicyKind::User)).chain(operator) {
            let (vhost, name) = (p.vhost.clone(), p.name.clone());
            if let Err(e) = self.put_policy(p, kind) {
                tracing::warn!(%vhost, policy = %name, "skipping a policy from the definitions: {}", e.trim());
            }
        }
        for x in &defs.exchanges {
            let v =
                self.vhost(&x.vhost).ok_or_else(|| format!("exchange '{}' in unknown vhost '{}'", x.name, x.vhost))?;
            v.restore_exchange(x).map_err(|e| e.text)?;
        }
        for q in &defs.queues {
            let v = self.vhost(&q.vhost).ok_or_else(|| format!("queue '{}' in unknown vhost '{}'", q.name, q.vhost))?;
            let log = logs.remove(&(q.vhost.clone(), q.name.clone()));
            v.restore_queue(q, log, clean).map_err(|e| e.text)?;
        }
        for b in &defs.bindings {
            let v = self.vhost(&b.vhost).ok_or_else(|| format!("binding in unknown vhost '{}'", b.vhost))?;
            v.restore_binding(b).map_err(|e| e.text)?;
        }
        Ok(())
    }

    fn add_vhost(&self, name: &str) {
        self.add_vhost_def(&VhostDef::named(name));
    }

    /// Adds a vhost unless it exists (its description, tags and default
    /// queue type come from `def`).
    fn add_vhost_def(&self, def: &VhostDef) {
        if !self.vhosts.contains_key(&def.name) {
            self.vhosts.insert(
                def.name.clone(),
                Arc::new(
                    Vhost::with_def(
                        def.clone(),
                        self.store.clone(),
                        self.clock.clone(),
                        Arc::clone(&self.timers_changed),
                    )
                    .with_queue_memory_budget(self.queue_memory_budget)
                    .with_temp_streams(Arc::clone(&self.temp_streams)),
                ),
            );
            self.record(DefChange::PutVhost(def.clone()));
        }
    }

    fn record(&self, change: DefChange) {
        if let Some(store) = &self.store {
            store.record(change);
        }
    }

    /// The configured `password_hashing_module`: the algorithm of new
    /// passwords, and of a hash given without one (RabbitMQ's
    /// `rabbit_password:hashing_mod()`).
    pub fn password_hashing(&self) -> HashingAlgorithm {
        self.password_hashing
    }

    /// A user whose password gets the configured `password_hashing_module`.
    pub fn new_user(&self, name: &str, password: &str, tags: &[&str]) -> User {
        User::with_algorithm(name, password, tags, self.password_hashing)
    }

    fn add_default_user(&self, user: &str, pass: &str, vhost: &str) {
        let u = self.new_user(user, pass, &["administrator"]);
        self.record(DefChange::PutUser(u.to_def()));
        self.users.insert(user.to_owned(), u);
        let p = PermissionDef {
            user: user.to_owned(),
            vhost: vhost.to_owned(),
            configure: ".*".into(),
            write: ".*".into(),
            read: ".*".into(),
        };
        self.record(DefChange::PutPermission(p.clone()));
        self.permissions.set(p);
    }

    pub fn vhost(&self, name: &str) -> Option<Arc<Vhost>> {
        self.vhosts.get(name).map(|v| Arc::clone(v.value()))
    }

    /// Checks a login. `from_loopback` is whether the peer address is local.
    /// With the oauth2 backend on, the password is tried as a token first
    /// (any user name), then, if `auth_backends` also names `internal`,
    /// as a password.
    pub fn authenticate(
        &self,
        user: &str,
        password: &str,
        from_loopback: bool,
    ) -> Result<User, std::borrow::Cow<'static, str>> {
        let Some(oauth2) = &self.oauth2 else { return self.authenticate_internal(user, password, from_loopback) };
        let token_refusal = match self.verify_token(password) {
            Ok(token) => {
                let tags: Vec<&str> = token.tags.iter().map(String::as_str).collect();
                let mut u = User::new(&token.username, "", &tags);
                u.loopback_only = false;
                u.token = Some(Arc::new(token));
                return Ok(u);
            }
            Err(why) if !oauth2.internal => return Err(why.into()),
            Err(why) => why,
        };
        self.authenticate_internal(user, password, from_loopback).map_err(|internal| {
            // A password shaped like a JWT (three dot-separated parts) was
            // meant as one: its refusal is the one worth logging.
            if password.split('.').count() == 3 {
                token_refusal.into()
            } else {
                internal
            }
        })
    }

    fn authenticate_internal(
        &self,
        user: &str,
        password: &str,
        from_loopback: bool,
    ) -> Result<User, std::borrow::Cow<'static, str>> {
        let Some(u) = self.users.get(user).map(|u| u.clone()) else {
            // As long as a wrong password takes: timing must not tell which users exist.
            User::check_password_of_unknown_user(password);
            return Err("unknown user".into());
        };
        if !u.check_password(password) {
            return Err("invalid credentials".into());
        }
        if u.loopback_only && self.guest_loopback_only && !from_loopback {
            return Err("user can only connect via localhost".into());
        }
        Ok(u)
    }

    /// Checks an OAuth 2.0 token against the configured keys at the clock's
    /// now; the error is the line RabbitMQ's oauth2 backend logs.
    pub fn verify_token(&self, token: &str) -> Result<oauth2::Token, String> {
        let Some(oauth2) = &self.oauth2 else { return Err("the oauth2 backend is not enabled".into()) };
        oauth2
            .verify(token, self.clock.unix_millis() / 1000)
            .map_err(|e| format!("Authentication using an OAuth 2/JWT token failed: {e}"))
    }

    pub fn can_access_vhost(&self, user: &str, vhost: &str) -> bool {
        self.permissions.can_access_vhost(user, vhost)
    }

    /// The grants; changes through it reach open connections at their next
    /// operation.
    pub fn permissions(&self) -> &Arc<Permissions> {
        &self.permissions
    }

    /// `rabbitmqctl set_permissions`: takes effect on open connections at
    /// their next operation, and is written with the definitions.
    pub fn set_permissions(&self, def: PermissionDef) {
        self.record(DefChange::PutPermission(def.clone()));
        self.permissions.set(def);
    }

    /// `rabbitmqctl clear_permissions`.
    pub fn clear_permissions(&self, user: &str, vhost: &str) {
        self.permissions.clear(user, vhost);
        self.record(DefChange::DeletePermission { user: user.to_owned(), vhost: vhost.to_owned() });
    }

    /// `rabbitmqctl set_topic_permissions`.
    pub fn set_topic_permissions(&self, def: TopicPermissionDef) {
        self.record(DefChange::PutTopicPermission(def.clone()));
        self.permissions.set_topic(def);
    }

    /// `rabbitmqctl clear_topic_permissions` (one exchange, or all).
    pub fn clear_topic_permissions(&self, user: &str, vhost: &str, exchange: Option<&str>) {
        self.permissions.clear_topic(user, vhost, exchange);
        self.record(DefChange::DeleteTopicPermission {
            user: user.to_owned(),
            vhost: vhost.to_owned(),
            exchange: exchange.map(str::to_owned),
        });
    }

    /// `rabbitmqctl set_policy` / `PUT /api/policies/{vhost}/{name}`:
    /// validates as RabbitMQ does, applies to live queues and exchanges at
    /// once and is written with the definitions. The error is RabbitMQ's
    /// `reason` text (`"Validation failed\n\n-1 is not a valid message
    /// TTL\n"`, a 400), or `"vhost_not_found"` (a 404).
    pub fn set_policy(&self, def: PolicyDef) -> Result<(), String> {
        self.put_policy(def, PolicyKind::User)
    }

    /// `rabbitmqctl clear_policy`: false if there was no such policy.
    pub fn clear_policy(&self, vhost: &str, name: &str) -> bool {
        self.remove_policy(vhost, name, PolicyKind::User)
    }

    /// The policies of one vhost, or of all, ordered by vhost and name.
    pub fn policies(&self, vhost: Option<&str>) -> Vec<PolicyDef> {
        self.list_policies(vhost, PolicyKind::User)
    }

    /// `rabbitmqctl set_operator_policy`: as `set_policy`, with only the
    /// limits RabbitMQ lets an operator policy set.
    pub fn set_operator_policy(&self, def: PolicyDef) -> Result<(), String> {
        self.put_policy(def, PolicyKind::Operator)
    }

    /// `rabbitmqctl clear_operator_policy`.
    pub fn clear_operator_policy(&self, vhost: &str, name: &str) -> bool {
        self.remove_policy(vhost, name, PolicyKind::Operator)
    }

    /// The operator policies of one vhost, or of all.
    pub fn operator_policies(&self, vhost: Option<&str>) -> Vec<PolicyDef> {
        self.list_policies(vhost, PolicyKind::Operator)
    }

    fn put_policy(&self, def: PolicyDef, kind: PolicyKind) -> Result<(), String> {
        let v = self.vhost(&def.vhost).ok_or_else(|| "vhost_not_found".to_owned())?;
        let policy = Policy::new(def, kind).map_err(|why| policy::validation_failed(&why))?;
        let stored = policy.to_def();
        self.record(match kind {
            PolicyKind::User => DefChange::PutPolicy(stored),
            PolicyKind::Operator => DefChange::PutOperatorPolicy(stored),
        });
        v.put_policy(policy, kind);
        Ok(())
    }

    fn remove_policy(&self, vhost: &str, name: &str, kind: PolicyKind) -> bool {
        let Some(v) = self.vhost(vhost) else { return false };
        if !v.remove_policy(name, kind) {
            return false;
        }
        let (vhost, name) = (vhost.to_owned(), name.to_owned());
        self.record(match kind {
            PolicyKind::User => DefChange::DeletePolicy { vhost, name },
            PolicyKind::Operator => DefChange::DeleteOperatorPolicy { vhost, name },
        });
        true
    }

    fn list_policies(&self, vhost: Option<&str>, kind: PolicyKind) -> Vec<PolicyDef> {
        let mut vhosts: Vec<Arc<Vhost>> = match vhost {
            Some(name) => self.vhost(name).into_iter().collect(),
            None => self.vhosts.iter().map(|v| Arc::clone(v.value())).collect(),
        };
        vhosts.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = Vec::new();
        for v in vhosts {
            let set = v.policy_set();
            let map = match kind {
                PolicyKind::User => &set.policies,
                PolicyKind::Operator => &set.operator_policies,
            };
            out.extend(map.values().map(|p| p.to_def()));
        }
        out
    }

    /// What `user` may do in `vhost`, for one connection.
    pub fn access(&self, user: &str, vhost: &str) -> Access {
        self.permissions.access(user, vhost)
    }

    /// The registry connections register with (`protocol/` does, when a
    /// socket is accepted).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Every open connection, from accept to end, by id.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.registry.connections()
    }

    /// Every open channel of every connection.
    pub fn channels(&self) -> Vec<ChannelInfo> {
        self.registry.channels()
    }

    /// Makes connection `id` send connection.close 320 `CONNECTION_FORCED -
    /// <reason>` (what RabbitMQ sends when the management API closes a
    /// connection) and end. False if there is no such connection.
    pub fn close_connection(&self, id: ConnectionId, reason: &str) -> bool {
        self.registry.close(id, reason)
    }

    /// Ends a connection the way `how` says (fault injection: any
    /// connection-level code, or a socket dropped without a close frame).
    pub fn end_connection(&self, id: ConnectionId, how: registry::CloseRequest) -> bool {
        self.registry.request(id, how)
    }

    /// Closes every connection open on `vhost` (it is being deleted);
    /// returns how many were asked to close.
    pub fn close_connections_of_vhost(&self, vhost: &str, reason: &str) -> usize {
        self.registry.close_where(reason, |c| c.vhost == vhost)
    }

    /// Closes every connection of `user` (it is being deleted).
    pub fn close_connections_of_user(&self, user: &str, reason: &str) -> usize {
        self.registry.close_where(reason, |c| c.user == user)
    }

    pub fn connection_count(&self) -> usize {
        self.registry.connection_count()
    }

    pub fn channel_count(&self) -> usize {
        self.registry.channel_count()
    }

    /// Adds a connection's counts of one batch to the broker's totals and
    /// its vhost's.
    pub fn add_message_counts(&self, vhost: Option<&Vhost>, c: &MessageCounts) {
        self.stats.add(c);
        if let Some(v) = vhost {
            v.add_message_counts(c);
        }
    }

    /// Broker-wide message totals and connection/channel churn.
    pub fn global_stats(&self) -> GlobalStats {
        GlobalStats::from_counts(self.stats.snapshot(), self.registry.churn())
    }

    pub fn next_connection_id(&self) -> ConnectionId {
        ConnectionId(self.next_connection_id.fetch_add(1, Ordering::Relaxed))
    }

    /// The store whose tickets publishes wait on: the data directory's, or
    /// in memory the temporary one streams made (none before).
    pub fn ticket_store(&self) -> Option<&Arc<Store>> {
        self.store.as_ref().or_else(|| self.temp_streams.current())
    }

    pub fn store(&self) -> Option<&Arc<Store>> {
        self.store.as_ref()
    }

    /// Everything durable, in RabbitMQ's definitions format (what the
    /// store snapshots).
    pub fn export_definitions(&self) -> Definitions {
        self.export_where(true)
    }

    /// Every definition, transient queues and exchanges included (not
    /// exclusive queues), as RabbitMQ's `GET /api/definitions` exports.
    pub fn export_all_definitions(&self) -> Definitions {
        self.export_where(false)
    }

    fn export_where(&self, durable_only: bool) -> Definitions {
        let mut d = Definitions {
            rabbit_version: Some("3.13.0".into()),
            product_name: Some("Warren".into()),
            product_version: Some(env!("CARGO_PKG_VERSION").into()),
            ..Definitions::default()
        };
        let mut vhosts: Vec<Arc<Vhost>> = self.vhosts.iter().map(|v| Arc::clone(v.value())).collect();
        vhosts.sort_by(|a, b| a.name.cmp(&b.name));
        for v in vhosts {
            d.vhosts.push(v.def());
            if durable_only {
                v.export(&mut d);
            } else {
                v.export_all(&mut d);
            }
        }
        let mut users: Vec<UserDef> = self.users.iter().map(|u| self.user_def_with_limits(&u)).collect();
        users.sort_by(|a, b| a.name.cmp(&b.name));
        d.users = users;
        (d.permissions, d.topic_permissions) = self.permissions.export();
        d.policies = self.policies(None);
        d.parameters = self.operator_policies(None).iter().map(PolicyDef::to_parameter).collect();
        d.parameters.extend(limits::vhost_limit_parameters(&d.vhosts));
        d
    }

    /// Runs every queue deadline that is due by the broker's clock, in every
    /// vhost (see `Vhost::run_due`): message expiry and x-expires.
    pub fn run_due(&self) {
        let now = self.clock.millis();
        let vhosts: Vec<Arc<Vhost>> = self.vhosts.iter().map(|v| Arc::clone(v.value())).collect();
        for v in vhosts {
            v.run_due(now);
        }
    }

    /// The earliest queue deadline of any vhost (the clock's `millis`).
    pub fn next_deadline(&self) -> Option<u64> {
        self.vhosts.iter().filter_map(|v| v.next_deadline()).min()
    }

    /// Resolves when a deadline earlier than the others was registered.
    pub async fn deadlines_changed(&self) {
        self.timers_changed.notified().await
    }

    /// Moves a manual clock forward and runs what became due, so a test
    /// sees expiry as soon as this returns. False (and nothing moves) on the
    /// real clock.
    pub fn advance(&self, by: std::time::Duration) -> bool {
        if !self.clock.advance(by) {
            return false;
        }
        self.run_due();
        true
    }

    /// Flushes and closes the store (marking the shutdown clean).
    pub fn close(&self) {
        if let Some(s) = &self.store {
            s.close();
        }
        self.temp_streams.close();
    }
}
