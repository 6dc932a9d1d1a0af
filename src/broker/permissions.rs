//! RabbitMQ's authorisation model: which configure / write / read patterns a
//! user holds in a vhost, the topic permissions on routing keys, and which of
//! them each AMQP method needs (RabbitMQ's access-control guide; the rules
//! and their order follow `rabbit_channel` and `rabbit_auth_backend_internal`
//! of RabbitMQ 3.10).
//!
//! Owns the grants, compiled when they are set and never per operation, and
//! a generation counter bumped by every change. Each connection holds an
//! [`Access`]: its user's grant in its vhost, re-read only when the
//! generation moved, so a change made at runtime (the management API) takes
//! effect on the next operation of every open connection.
//!
//! No I/O and no frames here: methods come in as names and plain values.
//!
//! | operation | needs |
//! | --- | --- |
//! | exchange.declare | configure on the exchange; a new exchange with `alternate-exchange` also read on it and write on the AE; passive: nothing |
//! | exchange.delete | configure on the exchange |
//! | queue.declare | configure on the queue (a server-named one too, under its `amq.gen-…` name); a new queue with `x-dead-letter-exchange` also read on it and write on the DLX; passive: nothing |
//! | queue.delete | configure on the queue |
//! | queue.purge | read on the queue |
//! | queue.bind / unbind, exchange.bind / unbind | write on the destination, read on the source; topic read on the binding key if the source is a topic exchange |
//! | basic.publish | write on the exchange; topic write on the routing key if it is a topic exchange |
//! | basic.get, basic.consume | read on the queue (not for direct reply-to) |
//!
//! The default exchange is named `amq.default` in checks and texts. A check
//! that RabbitMQ makes *after* a cheaper refusal (the default exchange, the
//! reserved `amq.` prefix, an unknown exchange type) is skipped when that
//! refusal applies: the vhost then answers with it, in RabbitMQ's order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use amq_protocol::types::FieldTable;
use dashmap::DashMap;
use regex::bytes::{Regex, RegexBuilder};

use super::exchange::{Exchange, ExchangeKind};
use super::headers::as_text;
use super::vhost::Vhost;
use super::{AmqpError, AmqpResult, FastMap};
use crate::store::definitions::{PermissionDef, TopicPermissionDef};

/// The three kinds of access RabbitMQ distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Create, delete or change a resource.
    Configure,
    /// Put messages in (publish to an exchange, bind to a destination).
    Write,
    /// Take messages out (get, consume, purge, bind from a source).
    Read,
}

impl Permission {
    fn as_str(self) -> &'static str {
        match self {
            Permission::Configure => "configure",
            Permission::Write => "write",
            Permission::Read => "read",
        }
    }
}

/// What a permission is checked on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Queue,
    Exchange,
}

impl Resource {
    fn as_str(self) -> &'static str {
        match self {
            Resource::Queue => "queue",
            Resource::Exchange => "exchange",
        }
    }
}

/// RabbitMQ checks the default exchange under this name.
pub const DEFAULT_EXCHANGE: &str = "amq.default";

/// One permission regex, compiled.
#[derive(Clone, Debug)]
enum Pattern {
    /// `.*`: every name. The common grant, checked without a regex.
    All,
    /// `""` (RabbitMQ reads it as `^$`) or `^$`: only the empty name, which
    /// no checked resource has; so nothing.
    Empty,
    Regex(Regex),
    /// Did not compile: denies everything. Logged once, when it was set.
    Invalid,
}

impl Pattern {
    /// Compiles a pattern as Erlang's `re:run` on a binary reads it: on bytes,
    /// without Unicode classes (`\w`, `.` and case folding are ASCII/bytes),
    /// and as an unanchored search, so `app` matches `my-app-1`.
    fn compile(source: &str, what: impl FnOnce() -> String) -> Pattern {
        match source {
            ".*" => Pattern::All,
            "" | "^$" => Pattern::Empty,
            _ => match RegexBuilder::new(source).unicode(false).build() {
                Ok(re) => Pattern::Regex(re),
                Err(e) => {
                    let what = what();
                    tracing::warn!(
                        "{what}: pattern '{source}' does not compile, so it grants nothing: {}",
                        e.to_string().lines().last().unwrap_or_default()
                    );
                    Pattern::Invalid
                }
            },
        }
    }

    fn is_all(&self) -> bool {
        matches!(self, Pattern::All)
    }

    fn matches(&self, name: &[u8]) -> bool {
        match self {
            Pattern::All => true,
            Pattern::Empty => name.is_empty(),
            Pattern::Regex(re) => re.is_match(name),
            Pattern::Invalid => false,
        }
    }
}

/// A `set_permissions` grant, compiled.
#[derive(Clone, Debug)]
struct Resources {
    def: PermissionDef,
    configure: Pattern,
    write: Pattern,
    read: Pattern,
}

impl Resources {
    fn new(def: PermissionDef) -> Self {
        let compile = |p: Permission, source: &str| {
            Pattern::compile(source, || {
                format!("{} permission of user '{}' in vhost '{}'", p.as_str(), def.user, def.vhost)
            })
        };
        Resources {
            configure: compile(Permission::Configure, &def.configure),
            write: compile(Permission::Write, &def.write),
            read: compile(Permission::Read, &def.read),
            def,
        }
    }

    fn pattern(&self, p: Permission) -> &Pattern {
        match p {
            Permission::Configure => &self.configure,
            Permission::Write => &self.write,
            Permission::Read => &self.read,
        }
    }
}

/// A `set_topic_permissions` grant on one exchange, compiled after the
/// variables are expanded.
#[derive(Clone, Debug)]
struct Topic {
    def: TopicPermissionDef,
    write: Pattern,
    read: Pattern,
}

impl Topic {
    fn new(def: TopicPermissionDef) -> Self {
        let compile = |p: Permission, source: &str| {
            let expanded = expand_variables(source, &def.user, &def.vhost);
            Pattern::compile(&expanded, || {
                format!(
                    "topic {} permission of user '{}' on exchange '{}' in vhost '{}'",
                    p.as_str(),
                    def.user,
                    def.exchange,
                    def.vhost
                )
            })
        };
        Topic { write: compile(Permission::Write, &def.write), read: compile(Permission::Read, &def.read), def }
    }
}

/// RabbitMQ's variable expansion in topic patterns. For AMQP 0-9-1 the
/// variables are `{username}` and `{vhost}` (`{client_id}` exists for MQTT
/// only), substituted as text, not escaped, in that order, as
/// `rabbit_auth_backend_internal:expand_topic_permission` does. Both are
/// fixed for a grant, so expansion happens once, before compiling.
fn expand_variables(pattern: &str, user: &str, vhost: &str) -> String {
    pattern.replace("{username}", user).replace("{vhost}", vhost)
}

/// An OAuth 2.0 token's topic grants in one vhost (its scopes with a
/// routing-key segment): pairs of exchange-name and routing-key patterns,
/// compiled from the plugin's wildcards.
#[derive(Clone, Debug, Default)]
struct ScopeTopics {
    write: Vec<(Pattern, Pattern)>,
    read: Vec<(Pattern, Pattern)>,
}

impl ScopeTopics {
    fn new(token: &super::oauth2::Token, vhost: &str) -> Self {
        let compile = |p: Permission| {
            let what = |part: &str| {
                format!("topic {} scope of token user '{}' in vhost '{}' ({part})", p.as_str(), token.username, vhost)
            };
            token
                .topic_patterns(p, vhost)
                .iter()
                .map(|(x, rk)| (Pattern::compile(x, || what("exchange")), Pattern::compile(rk, || what("routing key"))))
                .collect()
        };
        ScopeTopics { write: compile(Permission::Write), read: compile(Permission::Read) }
    }

    /// One scope names both the exchange and the routing key
    /// (`rabbit_oauth2_scope:topic_access`).
    fn allows(&self, p: Permission, exchange: &[u8], routing_key: &[u8]) -> bool {
        let pairs = if p == Permission::Write { &self.write } else { &self.read };
        pairs.iter().any(|(x, rk)| x.matches(exchange) && rk.matches(routing_key))
    }
}

/// Everything one user holds in one vhost.
#[derive(Clone, Debug, Default)]
pub struct Grant {
    /// `None`: no `set_permissions` for this vhost, so no access to it
    /// (topic permissions alone grant none).
    resources: Option<Resources>,
    /// By exchange name. An exchange without an entry is not restricted.
    topics: FastMap<String, Topic>,
    /// A token's grant: topic access comes from its scopes instead of
    /// `topics`, and a topic exchange no scope names allows no key (the
    /// oauth2 plugin has no "unrestricted" default).
    scope_topics: Option<ScopeTopics>,
}

impl Grant {
    fn allows(&self, p: Permission, name: &[u8]) -> bool {
        self.resources.as_ref().is_some_and(|r| r.pattern(p).matches(name))
    }
}

/// Every grant of the broker, and the generation that tells connections
/// to re-read theirs.
#[derive(Debug, Default)]
pub struct Permissions {
    grants: DashMap<(String, String), Arc<Grant>>,
    /// Bumped after every change, once the new grant is in `grants`.
    generation: AtomicU64,
}

impl Permissions {
    /// Sets (replaces) a user's configure/write/read patterns in a vhost,
    /// as `rabbitmqctl set_permissions` and a definitions import do.
    pub fn set(&self, def: PermissionDef) {
        let key = (def.user.clone(), def.vhost.clone());
        let resources = Resources::new(def);
        self.update(key, |g| g.resources = Some(resources));
    }

    /// `rabbitmqctl clear_permissions`: the user loses the vhost.
    pub fn clear(&self, user: &str, vhost: &str) {
        self.update((user.to_owned(), vhost.to_owned()), |g| g.resources = None);
    }

    /// Sets (replaces) a user's topic permission on one exchange.
    pub fn set_topic(&self, def: TopicPermissionDef) {
        let key = (def.user.clone(), def.vhost.clone());
        let topic = Topic::new(def);
        self.update(key, |g| {
            g.topics.insert(topic.def.exchange.clone(), topic);
        });
    }

    /// `rabbitmqctl clear_topic_permissions`: one exchange, or all of them.
    pub fn clear_topic(&self, user: &str, vhost: &str, exchange: Option<&str>) {
        self.update((user.to_owned(), vhost.to_owned()), |g| match exchange {
            Some(x) => {
                g.topics.remove(x);
            }
            None => g.topics.clear(),
        });
    }

    /// Drops every grant of a user (the user was deleted).
    pub fn clear_user(&self, user: &str) {
        self.grants.retain(|(u, _), _| u != user);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Drops every grant in a vhost (the vhost was deleted).
    pub fn clear_vhost(&self, vhost: &str) {
        self.grants.retain(|(_, v), _| v != vhost);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Copy-on-write under the map's shard lock, so concurrent changes to
    /// one grant cannot lose each other; then the generation moves.
    fn update(&self, key: (String, String), change: impl FnOnce(&mut Grant)) {
        match self.grants.entry(key) {
            dashmap::Entry::Occupied(mut e) => {
                // A compiled regex clones cheaply (it is reference-counted).
                let mut g = Grant::clone(e.get());
                change(&mut g);
                if g.resources.is_none() && g.topics.is_empty() {
                    e.remove();
                } else {
                    e.insert(Arc::new(g));
                }
            }
            dashmap::Entry::Vacant(v) => {
                let mut g = Grant::default();
                change(&mut g);
                if g.resources.is_some() || !g.topics.is_empty() {
                    v.insert(Arc::new(g));
                }
            }
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// RabbitMQ's vhost access: any `set_permissions` grant there.
    pub fn can_access_vhost(&self, user: &str, vhost: &str) -> bool {
        self.lookup(user, vhost).is_some_and(|g| g.resources.is_some())
    }

    fn lookup(&self, user: &str, vhost: &str) -> Option<Arc<Grant>> {
        // Allocates the key; this runs at connection.open and after a
        // change, never per operation.
        self.grants.get(&(user.to_owned(), vhost.to_owned())).map(|g| Arc::clone(g.value()))
    }

    /// The grants as definitions, sorted by user and vhost (and exchange).
    pub fn export(&self) -> (Vec<PermissionDef>, Vec<TopicPermissionDef>) {
        let mut perms = Vec::new();
        let mut topics = Vec::new();
        for g in self.grants.iter() {
            perms.extend(g.resources.as_ref().map(|r| r.def.clone()));
            topics.extend(g.topics.values().map(|t| t.def.clone()));
        }
        perms.sort_by(|a, b| (&a.user, &a.vhost).cmp(&(&b.user, &b.vhost)));
        topics.sort_by(|a, b| (&a.user, &a.vhost, &a.exchange).cmp(&(&b.user, &b.vhost, &b.exchange)));
        (perms, topics)
    }

    /// The checker for one connection of `user` in `vhost`.
    pub fn access(self: &Arc<Self>, user: &str, vhost: &str) -> Access {
        let generation = self.generation.load(Ordering::Acquire);
        let grant = self.lookup(user, vhost);
        Access {
            write_all: write_all(&grant),
            grant,
            table: Arc::clone(self),
            user: user.to_owned(),
            vhost: vhost.to_owned(),
            generation,
            last_write: None,
            from_token: false,
        }
    }

    /// The checker for a connection whose rights are its OAuth 2.0 token's
    /// scopes: one grant compiled from them for this vhost, never re-read
    /// from the table (update-secret replaces the whole `Access`).
    pub fn token_access(self: &Arc<Self>, token: &super::oauth2::Token, vhost: &str) -> Access {
        let def = PermissionDef {
            user: token.username.clone(),
            vhost: vhost.to_owned(),
            configure: token.pattern(Permission::Configure, vhost),
            write: token.pattern(Permission::Write, vhost),
            read: token.pattern(Permission::Read, vhost),
        };
        let grant = Some(Arc::new(Grant {
            resources: Some(Resources::new(def)),
            topics: FastMap::default(),
            scope_topics: Some(ScopeTopics::new(token, vhost)),
        }));
        Access {
            write_all: write_all(&grant),
            grant,
            table: Arc::clone(self),
            user: token.username.clone(),
            vhost: vhost.to_owned(),
            generation: 0,
            last_write: None,
            from_token: true,
        }
    }
}

fn write_all(grant: &Option<Arc<Grant>>) -> bool {
    grant.as_ref().and_then(|g| g.resources.as_ref()).is_some_and(|r| r.write.is_all())
}

/// One connection's view of its user's grant in its vhost. Lives in the
/// connection task; a check costs one atomic load plus the match. A publish
/// costs the load and a flag test when the write pattern is `.*`, or the
/// load and a name comparison when it goes where the last one went.
#[derive(Debug)]
pub struct Access {
    table: Arc<Permissions>,
    user: String,
    vhost: String,
    /// The table's generation when `grant` was read.
    generation: u64,
    grant: Option<Arc<Grant>>,
    /// The grant's write pattern is `.*`: a publish needs no match.
    write_all: bool,
    /// The exchange name the last allowed publish wrote to (RabbitMQ keeps
    /// a small per-channel cache of decisions too). Cleared on any change.
    last_write: Option<Vec<u8>>,
    /// The grant came from a token's scopes: changes to the table do not
    /// touch it.
    from_token: bool,
}

impl Access {
    /// Re-reads the grant if any grant changed since it was read.
    fn refresh(&mut self) {
        let now = self.table.generation.load(Ordering::Acquire);
        if now != self.generation && !self.from_token {
            self.generation = now;
            self.grant = self.table.lookup(&self.user, &self.vhost);
            self.write_all = write_all(&self.grant);
            self.last_write = None;
        }
    }

    /// Checks one permission on one resource, with RabbitMQ's refusal:
    /// `403 ACCESS_REFUSED - access to queue 'q' in vhost '/' refused for user 'u'`.
    pub fn check(&mut self, p: Permission, kind: Resource, name: &[u8]) -> AmqpResult<()> {
        self.refresh();
        self.check_current(p, kind, name)
    }

    fn check_current(&self, p: Permission, kind: Resource, name: &[u8]) -> AmqpResult<()> {
        let name = if kind == Resource::Exchange && name.is_empty() { DEFAULT_EXCHANGE.as_bytes() } else { name };
        if self.grant.as_ref().is_some_and(|g| g.allows(p, name)) {
            return Ok(());
        }
        Err(AmqpError::access_refused(format!(
            "access to {} '{}' in vhost '{}' refused for user '{}'",
            kind.as_str(),
            String::from_utf8_lossy(name),
            self.vhost,
            self.user
        )))
    }

    /// A topic permission on a topic exchange: the routing key (of a publish,
    /// or the binding key of a bind) against the exchange's pattern. No
    /// topic permission for that exchange allows every key; for a token,
    /// one of its scopes must name the exchange and the key.
    fn check_topic(&mut self, p: Permission, exchange: &Exchange, routing_key: &[u8]) -> AmqpResult<()> {
        if exchange.kind != ExchangeKind::Topic {
            return Ok(());
        }
        self.refresh();
        let Some(grant) = self.grant.as_ref() else { return Ok(()) };
        let allowed = match (&grant.scope_topics, grant.topics.get(&exchange.name)) {
            (Some(scopes), _) => scopes.allows(p, exchange.name.as_bytes(), routing_key),
            (None, None) => true,
            (None, Some(topic)) => {
                let pattern = if p == Permission::Write { &topic.write } else { &topic.read };
                pattern.matches(routing_key)
            }
        };
        if allowed {
            return Ok(());
        }
        Err(AmqpError::access_refused(format!(
            "access to topic '{}' in exchange '{}' in vhost '{}' refused for user '{}'",
            String::from_utf8_lossy(routing_key),
            exchange.name,
            self.vhost,
            self.user
        )))
    }

    // ------------------------------------------------ one call per method

    /// exchange.declare. Passive declares need nothing; an unknown type or
    /// the default exchange is refused by the vhost before this would be.
    pub fn exchange_declare(
        &mut self,
        vhost: &Vhost,
        name: &str,
        kind: &str,
        passive: bool,
        arguments: &FieldTable,
    ) -> AmqpResult<()> {
        if passive || name.is_empty() || ExchangeKind::parse(kind).is_none() {
            return Ok(());
        }
        self.check(Permission::Configure, Resource::Exchange, name.as_bytes())?;
        // The alternate exchange is authorised when the exchange is created
        // (not for a redeclaration, nor for a reserved name the vhost refuses).
        if name.starts_with("amq.") || vhost.exchange(name).is_ok() {
            return Ok(());
        }
        if let Some(ae) = text_arg(arguments, "alternate-exchange") {
            self.check(Permission::Read, Resource::Exchange, name.as_bytes())?;
            self.check(Permission::Write, Resource::Exchange, ae.as_bytes())?;
        }
        Ok(())
    }

    /// exchange.delete. The default and `amq.*` exchanges are refused by the
    /// vhost first.
    pub fn exchange_delete(&mut self, name: &str) -> AmqpResult<()> {
        if name.is_empty() || name.starts_with("amq.") {
            return Ok(());
        }
        self.check(Permission::Configure, Resource::Exchange, name.as_bytes())
    }

    /// queue.declare, with the name the queue will have: for a server-named
    /// queue (`server_named`) the `amq.gen-…` name generated for it.
    pub fn queue_declare(
        &mut self,
        vhost: &Vhost,
        name: &str,
        server_named: bool,
        passive: bool,
        arguments: &FieldTable,
    ) -> AmqpResult<()> {
        // A client-chosen `amq.` name is refused first (direct reply-to
        // names too: RabbitMQ checks nothing for those).
        if passive || (!server_named && name.starts_with("amq.")) {
            return Ok(());
        }
        self.check(Permission::Configure, Resource::Queue, name.as_bytes())?;
        if vhost.queue(name).is_ok() {
            return Ok(());
        }
        if let Some(dlx) = text_arg(arguments, "x-dead-letter-exchange") {
            self.check(Permission::Read, Resource::Queue, name.as_bytes())?;
            self.check(Permission::Write, Resource::Exchange, dlx.as_bytes())?;
        }
        Ok(())
    }

    /// queue.delete.
    pub fn queue_delete(&mut self, name: &str) -> AmqpResult<()> {
        self.check(Permission::Configure, Resource::Queue, name.as_bytes())
    }

    /// queue.purge: read, as RabbitMQ checks it (its guide's table agrees).
    pub fn queue_purge(&mut self, name: &str) -> AmqpResult<()> {
        self.check(Permission::Read, Resource::Queue, name.as_bytes())
    }

    /// basic.get and basic.consume (direct reply-to consumes check nothing).
    pub fn queue_read(&mut self, name: &str) -> AmqpResult<()> {
        self.check(Permission::Read, Resource::Queue, name.as_bytes())
    }

    /// queue.bind / queue.unbind / exchange.bind / exchange.unbind: write on
    /// the destination, read on the source, then the topic read permission
    /// on the binding key if the source is a topic exchange.
    pub fn bind(
        &mut self,
        vhost: &Vhost,
        destination: Resource,
        destination_name: &str,
        source: &str,
        routing_key: &str,
    ) -> AmqpResult<()> {
        self.check(Permission::Write, destination, destination_name.as_bytes())?;
        if source.is_empty() || (destination == Resource::Exchange && destination_name.is_empty()) {
            // "operation not permitted on the default exchange", from the vhost.
            return Ok(());
        }
        self.check_current(Permission::Read, Resource::Exchange, source.as_bytes())?;
        match vhost.exchange(source) {
            Ok(x) => self.check_topic(Permission::Read, &x, routing_key.as_bytes()),
            Err(_) => Ok(()),
        }
    }

    /// basic.publish, before the exchange is looked up: write on it. The
    /// common cases are inlined into the publish path; the rest is not.
    #[inline]
    pub fn basic_publish(&mut self, exchange: &[u8]) -> AmqpResult<()> {
        let current = self.table.generation.load(Ordering::Acquire) == self.generation;
        if current && (self.write_all || self.last_write.as_deref() == Some(exchange)) {
            return Ok(());
        }
        self.basic_publish_check(exchange)
    }

    #[inline(never)]
    fn basic_publish_check(&mut self, exchange: &[u8]) -> AmqpResult<()> {
        self.refresh();
        self.check_current(Permission::Write, Resource::Exchange, exchange)?;
        let last = self.last_write.get_or_insert_with(Vec::new);
        last.clear();
        last.extend_from_slice(exchange);
        Ok(())
    }

    /// basic.publish, once the exchange is known (and not internal): the
    /// topic write permission on the routing key.
    #[inline]
    pub fn basic_publish_topic(&mut self, exchange: &Exchange, routing_key: &[u8]) -> AmqpResult<()> {
        if exchange.kind != ExchangeKind::Topic {
            return Ok(());
        }
        self.check_topic(Permission::Write, exchange, routing_key)
    }
}

/// A string argument (an exchange name in `alternate-exchange` or
/// `x-dead-letter-exchange`).
fn text_arg(arguments: &FieldTable, key: &str) -> Option<String> {
    arguments.inner().get(key).and_then(as_text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::types::AMQPValue;

    fn grant(user: &str, configure: &str, write: &str, read: &str) -> PermissionDef {
        PermissionDef {
            user: user.into(),
            vhost: "/".into(),
            configure: configure.into(),
            write: write.into(),
            read: read.into(),
        }
    }

    fn topic(user: &str, exchange: &str, write: &str, read: &str) -> TopicPermissionDef {
        TopicPermissionDef {
            user: user.into(),
            vhost: "/".into(),
            exchange: exchange.into(),
            write: write.into(),
            read: read.into(),
        }
    }

    fn table() -> Arc<Permissions> {
        Arc::new(Permissions::default())
    }

    fn topic_exchange(name: &str) -> Exchange {
        Exchange::new(name.into(), ExchangeKind::Topic, false, false, false, FieldTable::default())
    }

    #[test]
    fn patterns_are_unanchored_searches_on_bytes() {
        let p = |s: &str| Pattern::compile(s, || "test".into());
        assert!(p("app").matches(b"my-app-1"), "unanchored, like re:run");
        assert!(!p("^app").matches(b"my-app-1"));
        assert!(p(r"^app\.").matches(b"app.orders"));
        assert!(!p(r"^app\.").matches(b"appxorders"));
        assert!(p(".*").matches(b"anything"));
        assert!(p(".*").matches(b""));
        // "" is RabbitMQ's synonym for "^$": nothing a resource is named.
        assert!(!p("").matches(b"q"));
        assert!(!p("^$").matches(b"q"));
        // Without Unicode classes, as PCRE without the unicode flag: \w is ASCII...
        assert!(!p(r"^\w+$").matches("é".as_bytes()));
        // ...but a non-ASCII literal still matches its UTF-8 bytes.
        assert!(p("^é").matches("été".as_bytes()));
        assert!(p("(?i)^APP").matches(b"app"));
        // Names need not be UTF-8 to be checked.
        assert!(p("^a").matches(b"a\xff"));
    }

    #[test]
    fn a_pattern_that_does_not_compile_grants_nothing() {
        let p = Pattern::compile("^(unclosed", || "test".into());
        assert!(matches!(p, Pattern::Invalid));
        assert!(!p.matches(b"unclosed"));
        // PCRE syntax the regex crate lacks (look-around) is refused the same way.
        assert!(!Pattern::compile("^(?!amq\\.).*", || "test".into()).matches(b"q"));
    }

    #[test]
    fn checks_each_permission_with_rabbitmqs_text() {
        let t = table();
        t.set(grant("u", r"^app\.", "^w$", "^r$"));
        let mut a = t.access("u", "/");
        assert!(a.check(Permission::Configure, Resource::Queue, b"app.q").is_ok());
        let e = a.check(Permission::Configure, Resource::Queue, b"q").unwrap_err();
        assert_eq!(e.text, "ACCESS_REFUSED - access to queue 'q' in vhost '/' refused for user 'u'");
        assert_eq!(e.code as u16, 403);
        assert_eq!(e.scope, super::super::Scope::Channel);
        assert!(a.check(Permission::Write, Resource::Exchange, b"w").is_ok());
        assert!(a.check(Permission::Read, Resource::Exchange, b"w").is_err());
        assert!(a.check(Permission::Read, Resource::Queue, b"r").is_ok());
    }

    #[test]
    fn the_default_exchange_is_amq_default() {
        let t = table();
        t.set(grant("u", "", r"^amq\.default$", ""));
        let mut a = t.access("u", "/");
        assert!(a.basic_publish(b"").is_ok());
        t.set(grant("u", "", "^$", ""));
        let e = a.basic_publish(b"").unwrap_err();
        assert_eq!(e.text, "ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/' refused for user 'u'");
    }

    #[test]
    fn a_user_without_a_grant_has_no_vhost_and_can_do_nothing() {
        let t = table();
        t.set_topic(topic("u", "amq.topic", ".*", ".*"));
        assert!(!t.can_access_vhost("u", "/"), "topic permissions alone give no vhost access");
        let mut a = t.access("u", "/");
        assert!(a.check(Permission::Read, Resource::Queue, b"q").is_err());
        t.set(grant("u", ".*", ".*", ".*"));
        assert!(t.can_access_vhost("u", "/"));
        assert!(!t.can_access_vhost("u", "other"));
        assert!(a.check(Permission::Read, Resource::Queue, b"q").is_ok());
    }

    #[test]
    fn changes_reach_open_accesses_and_clear_the_publish_cache() {
        let t = table();
        t.set(grant("u", ".*", "^x$", ".*"));
        let mut a = t.access("u", "/");
        assert!(a.basic_publish(b"x").is_ok());
        assert!(a.basic_publish(b"x").is_ok(), "cached");
        t.set(grant("u", ".*", "^y$", ".*"));
        assert!(a.basic_publish(b"x").is_err(), "the cache did not survive the change");
        assert!(a.basic_publish(b"y").is_ok());
        t.clear("u", "/");
        assert!(a.basic_publish(b"y").is_err());
        assert!(!t.can_access_vhost("u", "/"));
        // Another user's change leaves this grant as it was.
        t.set(grant("u", ".*", ".*", ".*"));
        t.set(grant("other", "", "", ""));
        assert!(a.basic_publish(b"y").is_ok());
    }

    #[test]
    fn topic_permissions_expand_variables_and_apply_to_topic_exchanges_only() {
        let t = table();
        t.set(grant("alice", ".*", ".*", ".*"));
        t.set_topic(topic("alice", "events", r"^{username}\.{vhost}\.", r"^r\."));
        let mut a = t.access("alice", "/");
        let x = topic_exchange("events");
        assert!(a.basic_publish_topic(&x, b"alice./.created").is_ok());
        let e = a.basic_publish_topic(&x, b"bob./.created").unwrap_err();
        assert_eq!(
            e.text,
            "ACCESS_REFUSED - access to topic 'bob./.created' in exchange 'events' in vhost '/' refused for user 'alice'"
        );
        // Read is the binding side.
        assert!(a.check_topic(Permission::Read, &x, b"r.1").is_ok());
        assert!(a.check_topic(Permission::Read, &x, b"alice./.x").is_err());
        // Another topic exchange without a topic permission: unrestricted.
        assert!(a.basic_publish_topic(&topic_exchange("other"), b"anything").is_ok());
        // A direct exchange of the same name is not subject to topic permissions.
        let direct = Exchange::new("events".into(), ExchangeKind::Direct, false, false, false, FieldTable::default());
        assert!(a.basic_publish_topic(&direct, b"bob").is_ok());
        t.clear_topic("alice", "/", Some("events"));
        assert!(a.basic_publish_topic(&x, b"bob./.created").is_ok());
    }

    fn token(scopes: &str) -> super::super::oauth2::Token {
        let raw: Vec<String> = scopes.split_whitespace().map(String::from).collect();
        let (scopes, tags) = super::super::oauth2::parse_scopes("rabbitmq", &raw);
        super::super::oauth2::Token { username: "svc".into(), expires_at: None, scopes, tags }
    }

    #[test]
    fn a_tokens_topic_access_comes_from_its_routing_key_scopes() {
        let t = table();
        let tok = token(
            "rabbitmq.write:*/* rabbitmq.read:*/* rabbitmq.configure:*/* \
             rabbitmq.write:%2F/events/orders.* rabbitmq.read:%2F/events/*.eu",
        );
        let mut a = t.token_access(&tok, "/");
        let x = topic_exchange("events");
        assert!(a.basic_publish_topic(&x, b"orders.created").is_ok());
        let e = a.basic_publish_topic(&x, b"invoices.created").unwrap_err();
        assert_eq!(
            e.text,
            "ACCESS_REFUSED - access to topic 'invoices.created' in exchange 'events' in vhost '/' refused for user 'svc'"
        );
        assert_eq!(e.code as u16, 403);
        assert!(a.check_topic(Permission::Read, &x, b"orders.eu").is_ok());
        assert!(a.check_topic(Permission::Read, &x, b"orders.us").is_err());
        assert!(a.check_topic(Permission::Read, &x, b"orders.created").is_err(), "write scopes do not grant read");
        // Unlike a password user's, a topic exchange no scope names allows
        // nothing: `write:*/*` has no routing-key segment.
        assert!(a.basic_publish_topic(&topic_exchange("other"), b"orders.created").is_err());
        let direct = Exchange::new("events".into(), ExchangeKind::Direct, false, false, false, FieldTable::default());
        assert!(a.basic_publish_topic(&direct, b"anything").is_ok(), "only topic exchanges");
        // The scopes are per vhost, and the table's topic permissions do not apply.
        t.set_topic(topic("svc", "events", ".*", ".*"));
        assert!(a.basic_publish_topic(&x, b"invoices.created").is_err());
        let mut other = t.token_access(&tok, "other");
        assert!(other.basic_publish_topic(&x, b"orders.created").is_err());
        let mut any = t.token_access(&token("rabbitmq.write:*/*/* rabbitmq.read:*/*/*"), "vh");
        assert!(any.basic_publish_topic(&x, b"").is_ok() && any.check_topic(Permission::Read, &x, b"#").is_ok());
    }

    #[test]
    fn the_username_is_substituted_as_text_not_escaped() {
        assert_eq!(expand_variables(r"^{username}\.", "a.b", "/"), r"^a.b\.");
        assert_eq!(expand_variables("{vhost}-{username}-{client_id}", "u", "v"), "v-u-{client_id}");
    }

    #[test]
    fn export_round_trips_the_definitions() {
        let t = table();
        t.set(grant("b", ".*", "", "^r"));
        t.set(grant("a", "^$", "^$", "^$"));
        t.set_topic(topic("a", "x2", "w", "r"));
        t.set_topic(topic("a", "x1", "w", ""));
        t.set_topic(topic("a", "x1", "w1", "")); // replaces
        let (perms, topics) = t.export();
        assert_eq!(perms.iter().map(|p| p.user.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(perms[1].read, "^r");
        assert_eq!(
            topics.iter().map(|p| (p.exchange.as_str(), p.write.as_str())).collect::<Vec<_>>(),
            [("x1", "w1"), ("x2", "w")]
        );
        t.clear_topic("a", "/", None);
        t.clear("b", "/");
        let (perms, topics) = t.export();
        assert_eq!(perms.len(), 1);
        assert!(topics.is_empty());
    }

    #[test]
    fn declares_check_alternate_and_dead_letter_exchanges_only_when_new() {
        let v = Vhost::new("/", None);
        let t = table();
        t.set(grant("u", ".*", "^ae$", "^x$"));
        let mut a = t.access("u", "/");
        let mut args = FieldTable::default();
        args.insert("alternate-exchange".into(), AMQPValue::LongString("ae".into()));
        assert!(a.exchange_declare(&v, "x", "direct", false, &args).is_ok());
        let e = a.exchange_declare(&v, "y", "direct", false, &args).unwrap_err();
        assert_eq!(e.text, "ACCESS_REFUSED - access to exchange 'y' in vhost '/' refused for user 'u'");
        let mut dlx = FieldTable::default();
        dlx.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("".into()));
        let e = a.queue_declare(&v, "y", false, false, &dlx).unwrap_err();
        assert_eq!(e.text, "ACCESS_REFUSED - access to queue 'y' in vhost '/' refused for user 'u'", "read on it");
        let e = a.queue_declare(&v, "x", false, false, &dlx).unwrap_err();
        assert_eq!(
            e.text, "ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/' refused for user 'u'",
            "write on the DLX"
        );
        assert!(a.queue_declare(&v, "x", false, false, &FieldTable::default()).is_ok());
        // Passive declares and names the vhost refuses first are not checked here.
        assert!(a.queue_declare(&v, "nope", false, true, &dlx).is_ok());
        assert!(a.queue_declare(&v, "amq.q", false, false, &dlx).is_ok());
        assert!(a.exchange_declare(&v, "", "direct", false, &args).is_ok());
        assert!(a.exchange_declare(&v, "z", "nonsense", false, &args).is_ok());
        assert!(a.exchange_delete("amq.direct").is_ok());
    }
}
