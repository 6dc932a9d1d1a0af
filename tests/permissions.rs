//! RabbitMQ's permission model over real sockets: which configure / write /
//! read pattern each operation needs, topic permissions, and the exact
//! refusals (403 ACCESS_REFUSED, closing the channel).
//!
//! Against Warren the users come from a definitions file that the in-process
//! broker loads at start. With `WARREN_TEST_URI` set (a real RabbitMQ) the
//! same tests first create the same users with rabbitmqctl, through
//! `WARREN_TEST_RABBITMQCTL` (default: `../shared/tools/reference-rabbitmq
//! ctl <port>` beside the repository), and delete them afterwards:
//!
//! ```text
//! WARREN_TEST_URI=amqp://guest:guest@127.0.0.1:5673/%2f cargo nextest run --test permissions
//! ```
//!
//! Every expected code and text in this file passed that way against
//! RabbitMQ 3.10.8 (the shared reference node); the tests marked "Warren
//! only" exercise what a client cannot set up on RabbitMQ the same way.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use warren::broker::users::User;
use warren::store::definitions::{Definitions, PermissionDef, TopicPermissionDef, VhostDef};

const PASSWORD: &str = "perm-pw";

/// (user key, configure, write, read).
type Perm<'a> = (&'a str, &'a str, &'a str, &'a str);
/// (user key, exchange, write, read).
type TopicPerm<'a> = (&'a str, &'a str, &'a str, &'a str);

/// The users of one test, on whichever broker the tests run against.
struct World {
    b: TestBroker,
    /// User key → the unique user name created for this test.
    names: Vec<(String, String)>,
    /// rabbitmqctl, when the users live on an external RabbitMQ.
    ctl: Option<Vec<String>>,
    defs_dir: Option<PathBuf>,
}

impl World {
    async fn new(perms: &[Perm<'_>], topics: &[TopicPerm<'_>]) -> World {
        Self::with_config(perms, topics, warren::Config::ephemeral()).await
    }

    async fn with_config(perms: &[Perm<'_>], topics: &[TopicPerm<'_>], config: warren::Config) -> World {
        let names: Vec<(String, String)> = perms.iter().map(|p| (p.0.to_owned(), unique(p.0))).collect();
        let name = |key: &str| names.iter().find(|(k, _)| k == key).map(|(_, n)| n.clone()).expect("user key");
        if external() {
            let b = broker().await;
            let ctl = rabbitmqctl(&b);
            for (key, c, w, r) in perms {
                let n = name(key);
                run(&ctl, &["add_user", &n, PASSWORD]);
                run(&ctl, &["set_permissions", "-p", "/", &n, c, w, r]);
            }
            for (key, x, w, r) in topics {
                run(&ctl, &["set_topic_permissions", "-p", "/", &name(key), x, w, r]);
            }
            return World { b, names, ctl: Some(ctl), defs_dir: None };
        }
        let defs = Definitions {
            users: perms.iter().map(|p| User::new(&name(p.0), PASSWORD, &[]).to_def()).collect(),
            vhosts: vec![VhostDef::named("/")],
            permissions: perms
                .iter()
                .map(|(key, c, w, r)| PermissionDef {
                    user: name(key),
                    vhost: "/".into(),
                    configure: c.to_string(),
                    write: w.to_string(),
                    read: r.to_string(),
                })
                .collect(),
            topic_permissions: topics
                .iter()
                .map(|(key, x, w, r)| TopicPermissionDef {
                    user: name(key),
                    vhost: "/".into(),
                    exchange: x.to_string(),
                    write: w.to_string(),
                    read: r.to_string(),
                })
                .collect(),
            ..Definitions::default()
        };
        let dir = std::env::temp_dir().join(unique("perm-defs"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("definitions.json");
        defs.save(&file).unwrap();
        let b = broker_with_config(warren::Config { definitions: Some(file), ..config }).await;
        World { b, names, ctl: None, defs_dir: Some(dir) }
    }

    fn user(&self, key: &str) -> &str {
        self.names.iter().find(|(k, _)| k == key).map(|(_, n)| n.as_str()).expect("user key")
    }

    /// A connection and channel as this user.
    async fn connect(&self, key: &str) -> (Connection, Channel) {
        let uri = self.b.uri_with(self.user(key), PASSWORD, "/");
        let c = within(Connection::connect(&uri, ConnectionProperties::default())).await.expect("connect");
        let ch = within(c.create_channel()).await.expect("create_channel");
        (c, ch)
    }

    /// A connection and channel as guest (all permissions), for set-up.
    async fn admin(&self) -> (Connection, Channel) {
        connect_channel(&self.b).await
    }

    /// RabbitMQ's refusal text for this user.
    fn refused(&self, kind: &str, name: &str, key: &str) -> String {
        format!("ACCESS_REFUSED - access to {kind} '{name}' in vhost '/' refused for user '{}'", self.user(key))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(ctl) = &self.ctl {
            for (_, n) in &self.names {
                let _ = ctl_command(ctl, &["delete_user", n]).output();
            }
        }
        if let Some(dir) = &self.defs_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn rabbitmqctl(b: &TestBroker) -> Vec<String> {
    match std::env::var("WARREN_TEST_RABBITMQCTL") {
        Ok(v) if !v.trim().is_empty() => v.split_whitespace().map(String::from).collect(),
        _ => {
            let tool = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/reference-rabbitmq");
            vec![tool.display().to_string(), "ctl".into(), b.addr().port().to_string()]
        }
    }
}

fn ctl_command(ctl: &[String], args: &[&str]) -> Command {
    let mut c = Command::new(&ctl[0]);
    c.args(&ctl[1..]).args(args);
    c
}

fn run(ctl: &[String], args: &[&str]) {
    let out = ctl_command(ctl, args).output().unwrap_or_else(|e| panic!("{ctl:?}: {e}"));
    assert!(out.status.success(), "rabbitmqctl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

// --------------------------------------------------------------- helpers

const NONE: (&str, &str, &str) = ("^$", "^$", "^$");
const ALL: (&str, &str, &str) = (".*", ".*", ".*");

fn perm<'a>(key: &'a str, p: (&'a str, &'a str, &'a str)) -> Perm<'a> {
    (key, p.0, p.1, p.2)
}

async fn exchange_declare(ch: &Channel, name: &str, kind: ExchangeKind, args: FieldTable) -> lapin::Result<()> {
    within(ch.exchange_declare(name.into(), kind, ExchangeDeclareOptions::default(), args)).await
}

async fn queue_declare(ch: &Channel, name: &str, args: FieldTable) -> lapin::Result<lapin::Queue> {
    within(ch.queue_declare(name.into(), QueueDeclareOptions::default(), args)).await
}

async fn passive_queue(ch: &Channel, name: &str) -> lapin::Result<lapin::Queue> {
    let opts = QueueDeclareOptions { passive: true, ..Default::default() };
    within(ch.queue_declare(name.into(), opts, FieldTable::default())).await
}

async fn queue_bind(ch: &Channel, q: &str, x: &str, key: &str) -> lapin::Result<()> {
    within(ch.queue_bind(q.into(), x.into(), key.into(), QueueBindOptions::default(), FieldTable::default())).await
}

async fn queue_unbind(ch: &Channel, q: &str, x: &str, key: &str) -> lapin::Result<()> {
    within(ch.queue_unbind(q.into(), x.into(), key.into(), FieldTable::default())).await
}

async fn consume(ch: &Channel, q: &str, no_ack: bool) -> lapin::Result<lapin::Consumer> {
    let opts = BasicConsumeOptions { no_ack, ..Default::default() };
    within(ch.basic_consume(q.into(), "".into(), opts, FieldTable::default())).await
}

/// Publishes and returns the error the broker closes the channel with.
async fn publish_refused(c: &Connection, ch: &Channel, exchange: &str, key: &str) -> lapin::Result<()> {
    let mut ev = events(c);
    publish(ch, exchange, key, b"m").await;
    next_error(&mut ev).await
}

/// Declares a queue as guest (set-up) and returns its name.
async fn admin_queue(w: &World, prefix: &str) -> String {
    let (_c, ch) = w.admin().await;
    let q = unique(prefix);
    declare_queue(&ch, &q).await;
    q
}

async fn admin_exchange(w: &World, name: &str, kind: ExchangeKind) {
    let (_c, ch) = w.admin().await;
    exchange_declare(&ch, name, kind, FieldTable::default()).await.expect("exchange_declare as guest");
}

// ----------------------------------------------------------------- tests

#[tokio::test]
async fn exchange_declare_needs_configure_on_the_exchange() {
    let w = World::new(&[perm("none", NONE), perm("all", ALL), ("app", r"^app\.", r"^app\.", r"^app\.")], &[]).await;
    let x = unique("x");
    let app_x = format!("app.{x}");

    let (_c, ch) = w.connect("none").await;
    let r = exchange_declare(&ch, &x, ExchangeKind::Direct, FieldTable::default()).await;
    assert_amqp_error(r, 403, &w.refused("exchange", &x, "none"));

    let (_c, ch) = w.connect("all").await;
    exchange_declare(&ch, &x, ExchangeKind::Direct, FieldTable::default()).await.unwrap();

    // A redeclaration needs configure too.
    let (_c, ch) = w.connect("none").await;
    let r = exchange_declare(&ch, &x, ExchangeKind::Direct, FieldTable::default()).await;
    assert_amqp_error(r, 403, &w.refused("exchange", &x, "none"));

    // A partial pattern: only names under `app.`.
    let (_c, ch) = w.connect("app").await;
    exchange_declare(&ch, &app_x, ExchangeKind::Fanout, FieldTable::default()).await.unwrap();
    let r = exchange_declare(&ch, &x, ExchangeKind::Direct, FieldTable::default()).await;
    assert_amqp_error(r, 403, &w.refused("exchange", &x, "app"));

    // A passive declare needs nothing.
    let (_c, ch) = w.connect("none").await;
    let opts = ExchangeDeclareOptions { passive: true, ..Default::default() };
    within(ch.exchange_declare(x.as_str().into(), ExchangeKind::Direct, opts, FieldTable::default())).await.unwrap();

    // Refusals that come before the permission check keep their own texts...
    let r = exchange_declare(&ch, "", ExchangeKind::Direct, FieldTable::default()).await;
    assert_amqp_error(r, 403, "ACCESS_REFUSED - operation not permitted on the default exchange");
    let (_c, ch) = w.connect("none").await;
    let r = exchange_declare(&ch, &x, ExchangeKind::Custom("nonsense".into()), FieldTable::default()).await;
    assert_amqp_error(r, 503, "COMMAND_INVALID - unknown exchange type 'nonsense'");
    // ...while the reserved prefix of a new exchange is looked at after it.
    let (_c, ch) = w.connect("none").await;
    let r = exchange_declare(&ch, "amq.perm-test", ExchangeKind::Direct, FieldTable::default()).await;
    assert_amqp_error(r, 403, &w.refused("exchange", "amq.perm-test", "none"));
    let (_c, ch) = w.connect("all").await;
    let r = exchange_declare(&ch, "amq.perm-test", ExchangeKind::Direct, FieldTable::default()).await;
    assert_amqp_error(r, 403, "ACCESS_REFUSED - exchange name 'amq.perm-test' contains reserved prefix 'amq.*'");

    cleanup_exchange(&w.b, &x).await;
    cleanup_exchange(&w.b, &app_x).await;
}

#[tokio::test]
async fn a_new_exchange_with_an_alternate_exchange_needs_read_on_it_and_write_on_the_ae() {
    let w = World::new(&[("noread", ".*", ".*", "^$"), ("nowrite", ".*", "^$", ".*"), ("all", ".*", ".*", ".*")], &[])
        .await;
    let (x, ae) = (unique("x"), unique("ae"));
    let args = table(&[("alternate-exchange", ls(&ae))]);

    let (_c, ch) = w.connect("noread").await;
    let r = exchange_declare(&ch, &x, ExchangeKind::Direct, args.clone()).await;
    assert_amqp_error(r, 403, &w.refused("exchange", &x, "noread"));

    let (_c, ch) = w.connect("nowrite").await;
    let r = exchange_declare(&ch, &x, ExchangeKind::Direct, args.clone()).await;
    assert_amqp_error(r, 403, &w.refused("exchange", &ae, "nowrite"));

    // Without the argument, configure is enough.
    let (_c, ch) = w.connect("noread").await;
    let plain = unique("x-plain");
    exchange_declare(&ch, &plain, ExchangeKind::Direct, FieldTable::default()).await.unwrap();

    // Only a new exchange is checked: redeclaring an existing one is not.
    let (_c, ch) = w.connect("all").await;
    exchange_declare(&ch, &x, ExchangeKind::Direct, args.clone()).await.unwrap();
    let (_c, ch) = w.connect("noread").await;
    exchange_declare(&ch, &x, ExchangeKind::Direct, args).await.unwrap();

    cleanup_exchange(&w.b, &x).await;
    cleanup_exchange(&w.b, &plain).await;
}

#[tokio::test]
async fn exchange_delete_needs_configure_on_the_exchange() {
    let w = World::new(&[perm("none", NONE), ("reader", "^$", ".*", ".*"), perm("all", ALL)], &[]).await;
    let x = unique("x");
    admin_exchange(&w, &x, ExchangeKind::Direct).await;

    for key in ["none", "reader"] {
        let (_c, ch) = w.connect(key).await;
        let r = within(ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())).await;
        assert_amqp_error(r, 403, &w.refused("exchange", &x, key));
    }
    // Checked before the exchange is looked up: a missing one is refused too.
    let (_c, ch) = w.connect("none").await;
    let missing = unique("x-missing");
    let r = within(ch.exchange_delete(missing.as_str().into(), ExchangeDeleteOptions::default())).await;
    assert_amqp_error(r, 403, &w.refused("exchange", &missing, "none"));

    // System exchanges are refused before permissions are looked at.
    let (_c, ch) = w.connect("none").await;
    let r = within(ch.exchange_delete("amq.direct".into(), ExchangeDeleteOptions::default())).await;
    assert_amqp_error(r, 403, "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed");

    let (c, ch) = w.connect("all").await;
    within(ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())).await.unwrap();
    assert!(!exchange_exists(&c, &x).await);
}

#[tokio::test]
async fn queue_declare_needs_configure_and_a_passive_declare_nothing() {
    let w = World::new(&[perm("none", NONE), perm("all", ALL), ("app", r"^app\.", r"^app\.", r"^app\.")], &[]).await;
    let q = unique("q");
    let app_q = format!("app.{q}");

    let (_c, ch) = w.connect("none").await;
    assert_amqp_error(queue_declare(&ch, &q, FieldTable::default()).await, 403, &w.refused("queue", &q, "none"));

    let (_c, ch) = w.connect("all").await;
    queue_declare(&ch, &q, FieldTable::default()).await.unwrap();

    let (_c, ch) = w.connect("none").await;
    assert_amqp_error(queue_declare(&ch, &q, FieldTable::default()).await, 403, &w.refused("queue", &q, "none"));
    let (_c, ch) = w.connect("none").await;
    assert_eq!(passive_queue(&ch, &q).await.unwrap().message_count(), 0);

    let (_c, ch) = w.connect("app").await;
    queue_declare(&ch, &app_q, FieldTable::default()).await.unwrap();
    assert_amqp_error(queue_declare(&ch, &q, FieldTable::default()).await, 403, &w.refused("queue", &q, "app"));

    // The reserved prefix is refused before permissions are looked at.
    let (_c, ch) = w.connect("none").await;
    assert_amqp_error(
        queue_declare(&ch, "amq.perm-test", FieldTable::default()).await,
        403,
        "ACCESS_REFUSED - queue name 'amq.perm-test' contains reserved prefix 'amq.*'",
    );

    cleanup_queue(&w.b, &q).await;
    cleanup_queue(&w.b, &app_q).await;
}

#[tokio::test]
async fn a_server_named_queue_is_checked_under_its_generated_name() {
    let w = World::new(&[perm("none", NONE), ("gen", r"^amq\.gen-", "^$", "^$")], &[]).await;

    let (_c, ch) = w.connect("none").await;
    let e = queue_declare(&ch, "", FieldTable::default()).await.unwrap_err();
    let (code, text) = amqp_error(&e);
    assert_eq!(code, 403);
    let rest = text.strip_prefix("ACCESS_REFUSED - access to queue 'amq.gen-").unwrap_or_else(|| panic!("{text}"));
    let suffix = format!("' in vhost '/' refused for user '{}'", w.user("none"));
    let generated = rest.strip_suffix(&suffix).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(generated.len(), 22, "amq.gen- and 22 characters: {text}");

    let (_c, ch) = w.connect("gen").await;
    let q = queue_declare(&ch, "", FieldTable::default()).await.unwrap();
    assert!(q.name().as_str().starts_with("amq.gen-"), "{}", q.name());
    // Without read it cannot consume from its own queue.
    let r = consume(&ch, q.name().as_str(), true).await;
    assert_amqp_error(r, 403, &w.refused("queue", q.name().as_str(), "gen"));
    cleanup_queue(&w.b, q.name().as_str()).await;
}

#[tokio::test]
async fn a_new_queue_with_a_dead_letter_exchange_needs_read_on_it_and_write_on_the_dlx() {
    let w = World::new(&[("noread", ".*", ".*", "^$"), ("nowrite", ".*", "^$", ".*")], &[]).await;
    let q = unique("q");
    let dlx = unique("dlx");

    let (_c, ch) = w.connect("noread").await;
    let r = queue_declare(&ch, &q, table(&[("x-dead-letter-exchange", ls(&dlx))])).await;
    assert_amqp_error(r, 403, &w.refused("queue", &q, "noread"));

    let (_c, ch) = w.connect("nowrite").await;
    let r = queue_declare(&ch, &q, table(&[("x-dead-letter-exchange", ls(&dlx))])).await;
    assert_amqp_error(r, 403, &w.refused("exchange", &dlx, "nowrite"));
    // The default exchange as DLX is checked as amq.default.
    let (_c, ch) = w.connect("nowrite").await;
    let r = queue_declare(&ch, &q, table(&[("x-dead-letter-exchange", ls(""))])).await;
    assert_amqp_error(r, 403, &w.refused("exchange", "amq.default", "nowrite"));

    let (_c, ch) = w.connect("noread").await;
    queue_declare(&ch, &q, FieldTable::default()).await.unwrap();
    cleanup_queue(&w.b, &q).await;
}

#[tokio::test]
async fn queue_delete_needs_configure_on_the_queue() {
    let w = World::new(&[perm("none", NONE), ("reader", "^$", ".*", ".*"), perm("all", ALL)], &[]).await;
    let q = admin_queue(&w, "q").await;

    for key in ["none", "reader"] {
        let (_c, ch) = w.connect(key).await;
        let r = within(ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default())).await;
        assert_amqp_error(r, 403, &w.refused("queue", &q, key));
    }
    let (_c, ch) = w.connect("none").await;
    let missing = unique("q-missing");
    let r = within(ch.queue_delete(missing.as_str().into(), QueueDeleteOptions::default())).await;
    assert_amqp_error(r, 403, &w.refused("queue", &missing, "none"));

    let (c, ch) = w.connect("all").await;
    within(ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default())).await.unwrap();
    assert!(!queue_exists(&c, &q).await);
}

#[tokio::test]
async fn queue_purge_needs_read_not_configure() {
    // RabbitMQ's guide and rabbit_channel agree: purge takes messages out, so read.
    let w = World::new(&[("configurer", ".*", ".*", "^$"), ("reader", "^$", "^$", ".*")], &[]).await;
    let q = admin_queue(&w, "q").await;
    {
        let (_c, ch) = connect_confirm_channel(&w.b).await;
        publish_confirmed(&ch, "", &q, b"one").await;
    }

    let (_c, ch) = w.connect("configurer").await;
    let r = within(ch.queue_purge(q.as_str().into(), QueuePurgeOptions::default())).await;
    assert_amqp_error(r, 403, &w.refused("queue", &q, "configurer"));

    let (_c, ch) = w.connect("reader").await;
    assert_eq!(within(ch.queue_purge(q.as_str().into(), QueuePurgeOptions::default())).await.unwrap(), 1);
    cleanup_queue(&w.b, &q).await;
}

#[tokio::test]
async fn queue_bind_and_unbind_need_write_on_the_queue_and_read_on_the_exchange() {
    let w =
        World::new(&[("nowrite", ".*", "^$", ".*"), ("noread", ".*", ".*", "^$"), ("binder", "^$", ".*", ".*")], &[])
            .await;
    let q = admin_queue(&w, "q").await;
    let x = unique("x");
    admin_exchange(&w, &x, ExchangeKind::Direct).await;

    let (_c, ch) = w.connect("nowrite").await;
    assert_amqp_error(queue_bind(&ch, &q, &x, "k").await, 403, &w.refused("queue", &q, "nowrite"));
    let (_c, ch) = w.connect("noread").await;
    assert_amqp_error(queue_bind(&ch, &q, &x, "k").await, 403, &w.refused("exchange", &x, "noread"));

    let (_c, ch) = w.connect("binder").await;
    queue_bind(&ch, &q, &x, "k").await.unwrap();

    let (_c, ch) = w.connect("nowrite").await;
    assert_amqp_error(queue_unbind(&ch, &q, &x, "k").await, 403, &w.refused("queue", &q, "nowrite"));
    let (_c, ch) = w.connect("noread").await;
    assert_amqp_error(queue_unbind(&ch, &q, &x, "k").await, 403, &w.refused("exchange", &x, "noread"));
    let (_c, ch) = w.connect("binder").await;
    queue_unbind(&ch, &q, &x, "k").await.unwrap();

    // The destination is checked before the default exchange is refused.
    let (_c, ch) = w.connect("nowrite").await;
    assert_amqp_error(queue_bind(&ch, &q, "", "k").await, 403, &w.refused("queue", &q, "nowrite"));
    let (_c, ch) = w.connect("binder").await;
    assert_amqp_error(
        queue_bind(&ch, &q, "", "k").await,
        403,
        "ACCESS_REFUSED - operation not permitted on the default exchange",
    );

    cleanup_queue(&w.b, &q).await;
    cleanup_exchange(&w.b, &x).await;
}

#[tokio::test]
async fn exchange_bind_and_unbind_need_write_on_the_destination_and_read_on_the_source() {
    let w =
        World::new(&[("nowrite", ".*", "^$", ".*"), ("noread", ".*", ".*", "^$"), ("binder", "^$", ".*", ".*")], &[])
            .await;
    let (dest, src) = (unique("x-dest"), unique("x-src"));
    admin_exchange(&w, &dest, ExchangeKind::Fanout).await;
    admin_exchange(&w, &src, ExchangeKind::Fanout).await;
    let bind = |ch: Channel, unbind: bool| {
        let (d, s) = (dest.clone(), src.clone());
        async move {
            if unbind {
                let o = ExchangeUnbindOptions::default();
                within(ch.exchange_unbind(d.as_str().into(), s.as_str().into(), "".into(), o, FieldTable::default()))
                    .await
            } else {
                let o = ExchangeBindOptions::default();
                within(ch.exchange_bind(d.as_str().into(), s.as_str().into(), "".into(), o, FieldTable::default()))
                    .await
            }
        }
    };

    for unbind in [false, true] {
        let (_c, ch) = w.connect("nowrite").await;
        assert_amqp_error(bind(ch, unbind).await, 403, &w.refused("exchange", &dest, "nowrite"));
        let (_c, ch) = w.connect("noread").await;
        assert_amqp_error(bind(ch, unbind).await, 403, &w.refused("exchange", &src, "noread"));
        let (_c, ch) = w.connect("binder").await;
        bind(ch, unbind).await.unwrap();
    }
    cleanup_exchange(&w.b, &dest).await;
    cleanup_exchange(&w.b, &src).await;
}

#[tokio::test]
async fn basic_publish_needs_write_on_the_exchange_and_the_default_exchange_is_amq_default() {
    let w = World::new(&[("reader", ".*", "^$", ".*"), ("writer", "^$", ".*", "^$")], &[]).await;
    let q = admin_queue(&w, "q").await;
    let x = unique("x");
    admin_exchange(&w, &x, ExchangeKind::Fanout).await;

    let (c, ch) = w.connect("reader").await;
    assert_amqp_error(publish_refused(&c, &ch, &x, "k").await, 403, &w.refused("exchange", &x, "reader"));
    let (c, ch) = w.connect("reader").await;
    assert_amqp_error(publish_refused(&c, &ch, "", &q).await, 403, &w.refused("exchange", "amq.default", "reader"));
    // Write is checked before the exchange is looked up: 403, not 404.
    let (c, ch) = w.connect("reader").await;
    let missing = unique("x-missing");
    assert_amqp_error(publish_refused(&c, &ch, &missing, "k").await, 403, &w.refused("exchange", &missing, "reader"));

    let (c, ch) = w.connect("writer").await;
    let confirm = confirm_channel(&c).await;
    publish_confirmed(&confirm, "", &q, b"to the default exchange").await;
    drop(ch);
    let (_c, admin) = w.admin().await;
    assert_eq!(drain(&admin, &q).await, ["to the default exchange"]);

    cleanup_queue(&w.b, &q).await;
    cleanup_exchange(&w.b, &x).await;
}

#[tokio::test]
async fn basic_get_needs_read_on_the_queue() {
    let w = World::new(&[("writer", ".*", ".*", "^$"), ("reader", "^$", "^$", ".*")], &[]).await;
    let q = admin_queue(&w, "q").await;
    {
        let (_c, ch) = connect_confirm_channel(&w.b).await;
        publish_confirmed(&ch, "", &q, b"one").await;
    }
    let (_c, ch) = w.connect("writer").await;
    let r = within(ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })).await;
    assert_amqp_error(r.map(|m| m.is_some()), 403, &w.refused("queue", &q, "writer"));

    let (_c, ch) = w.connect("reader").await;
    assert_eq!(get_body(&ch, &q).await.as_deref(), Some(&b"one"[..]));
    cleanup_queue(&w.b, &q).await;
}

#[tokio::test]
async fn basic_consume_needs_read_on_the_queue() {
    let w = World::new(&[("writer", ".*", ".*", "^$"), ("reader", "^$", "^$", ".*")], &[]).await;
    let q = admin_queue(&w, "q").await;

    let (_c, ch) = w.connect("writer").await;
    assert_amqp_error(consume(&ch, &q, true).await.map(|_| ()), 403, &w.refused("queue", &q, "writer"));

    let (_c, ch) = w.connect("reader").await;
    let mut consumer = consume(&ch, &q, true).await.unwrap();
    {
        let (_c, admin) = connect_confirm_channel(&w.b).await;
        publish_confirmed(&admin, "", &q, b"hello").await;
    }
    assert_eq!(next_delivery(&mut consumer).await.data, b"hello");
    cleanup_queue(&w.b, &q).await;
}

#[tokio::test]
async fn direct_reply_to_needs_only_write_on_the_default_exchange() {
    let w = World::new(&[("rpc", "^$", r"^amq\.default$", "^$")], &[]).await;
    let requests = admin_queue(&w, "requests").await;

    // Consuming from the pseudo-queue checks nothing.
    let (_c, ch) = w.connect("rpc").await;
    let mut replies = consume(&ch, "amq.rabbitmq.reply-to", true).await.unwrap();
    let props = BasicProperties::default().with_reply_to("amq.rabbitmq.reply-to".into());
    publish_props(&ch, "", &requests, b"ping", props).await;

    let (_c, admin) = w.admin().await;
    let mut server = consume(&admin, &requests, true).await.unwrap();
    let request = next_delivery(&mut server).await;
    let reply_to = request.properties.reply_to().clone().expect("reply_to").to_string();
    assert!(reply_to.starts_with("amq.rabbitmq.reply-to."), "{reply_to}");
    publish(&admin, "", &reply_to, b"pong").await;
    assert_eq!(next_delivery(&mut replies).await.data, b"pong");
    cleanup_queue(&w.b, &requests).await;
}

/// Every operation above, for a user with no patterns (`^$`, and `""`, its
/// synonym) and for one with `.*`.
#[tokio::test]
async fn a_user_with_empty_patterns_can_do_nothing_and_one_with_dot_star_everything() {
    let w = World::new(&[perm("none", NONE), ("blank", "", "", ""), perm("all", ALL)], &[]).await;
    let q = admin_queue(&w, "q").await;
    let x = unique("x");
    admin_exchange(&w, &x, ExchangeKind::Fanout).await;

    for key in ["none", "blank"] {
        let refused_q = w.refused("queue", &q, key);
        let refused_x = w.refused("exchange", &x, key);
        let fresh = unique("fresh");
        // Each refusal closes the channel: a fresh connection for each.
        macro_rules! refused {
            ($text:expr, |$ch:ident| $body:expr) => {{
                let (_c, $ch) = w.connect(key).await;
                assert_amqp_error($body, 403, $text);
            }};
        }
        let fresh_x = w.refused("exchange", &fresh, key);
        refused!(&fresh_x, |ch| exchange_declare(&ch, &fresh, ExchangeKind::Direct, FieldTable::default()).await);
        refused!(&refused_x, |ch| within(ch.exchange_delete(x.as_str().into(), Default::default())).await);
        refused!(&refused_q, |ch| queue_declare(&ch, &q, FieldTable::default()).await.map(|_| ()));
        refused!(&refused_q, |ch| within(ch.queue_delete(q.as_str().into(), Default::default())).await.map(|_| ()));
        refused!(&refused_q, |ch| within(ch.queue_purge(q.as_str().into(), Default::default())).await.map(|_| ()));
        refused!(&refused_q, |ch| queue_bind(&ch, &q, &x, "").await);
        refused!(&refused_q, |ch| queue_unbind(&ch, &q, &x, "").await);
        refused!(&refused_q, |ch| within(ch.basic_get(q.as_str().into(), Default::default())).await.map(|_| ()));
        refused!(&refused_q, |ch| consume(&ch, &q, true).await.map(|_| ()));
        let (c, ch) = w.connect(key).await;
        assert_amqp_error(publish_refused(&c, &ch, &x, "").await, 403, &refused_x);
    }

    // `.*`: the same operations succeed.
    let (c, ch) = w.connect("all").await;
    let own_x = unique("x-own");
    exchange_declare(&ch, &own_x, ExchangeKind::Fanout, FieldTable::default()).await.unwrap();
    queue_declare(&ch, &q, FieldTable::default()).await.unwrap();
    queue_bind(&ch, &q, &own_x, "").await.unwrap();
    let confirm = confirm_channel(&c).await;
    publish_confirmed(&confirm, &own_x, "", b"one").await;
    publish_confirmed(&confirm, &own_x, "", b"two").await;
    assert_eq!(get_body(&ch, &q).await.as_deref(), Some(&b"one"[..]));
    let mut consumer = consume(&ch, &q, true).await.unwrap();
    assert_eq!(next_delivery(&mut consumer).await.data, b"two");
    within(ch.basic_cancel(consumer.tag(), BasicCancelOptions::default())).await.unwrap();
    within(ch.queue_purge(q.as_str().into(), QueuePurgeOptions::default())).await.unwrap();
    queue_unbind(&ch, &q, &own_x, "").await.unwrap();
    within(ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default())).await.unwrap();
    within(ch.exchange_delete(own_x.as_str().into(), ExchangeDeleteOptions::default())).await.unwrap();
    within(ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())).await.unwrap();
}

#[tokio::test]
async fn topic_permissions_restrict_publish_and_bind_routing_keys_with_variables() {
    let x = unique("topic");
    let other = unique("topic-other");
    // Write: keys starting with the user's own name; read (bindings): keys
    // starting with the vhost's name, here "/".
    let w = World::new(&[perm("t", ALL)], &[("t", &x, r"^{username}\.", r"^{vhost}r\.")]).await;
    let me = w.user("t").to_owned();
    admin_exchange(&w, &x, ExchangeKind::Topic).await;
    admin_exchange(&w, &other, ExchangeKind::Topic).await;
    let q = admin_queue(&w, "q").await;
    {
        let (_c, admin) = w.admin().await;
        queue_bind(&admin, &q, &x, "#").await.unwrap();
        queue_bind(&admin, &q, &other, "#").await.unwrap();
    }

    let (c, ch) = w.connect("t").await;
    let confirm = confirm_channel(&c).await;
    publish_confirmed(&confirm, &x, &format!("{me}.created"), b"mine").await;
    // A topic exchange without topic permissions is not restricted.
    publish_confirmed(&confirm, &other, "anything", b"elsewhere").await;
    let (_c, admin) = w.admin().await;
    assert_eq!(drain(&admin, &q).await, ["mine", "elsewhere"]);

    let text = |key: &str| {
        format!("ACCESS_REFUSED - access to topic '{key}' in exchange '{x}' in vhost '/' refused for user '{me}'")
    };
    assert_amqp_error(publish_refused(&c, &ch, &x, "someone.created").await, 403, &text("someone.created"));

    // Bindings: the binding key against the read pattern.
    let (_c, ch) = w.connect("t").await;
    queue_bind(&ch, &q, &x, "/r.orders").await.unwrap();
    assert_amqp_error(queue_bind(&ch, &q, &x, "orders.#").await, 403, &text("orders.#"));
    let (_c, ch) = w.connect("t").await;
    assert_amqp_error(queue_unbind(&ch, &q, &x, "#").await, 403, &text("#"));
    let (_c, ch) = w.connect("t").await;
    let o = ExchangeBindOptions::default();
    let r = within(ch.exchange_bind(other.as_str().into(), x.as_str().into(), "x.y".into(), o, FieldTable::default()))
        .await;
    assert_amqp_error(r, 403, &text("x.y"));

    cleanup_queue(&w.b, &q).await;
    cleanup_exchange(&w.b, &x).await;
    cleanup_exchange(&w.b, &other).await;
}

// ------------------------------------------------------------ Warren only

/// A grant changed at runtime (what the management API will do) reaches
/// connections that are already open, at their next operation.
#[tokio::test]
async fn a_permission_change_reaches_open_connections() {
    if external() {
        return; // RabbitMQ caches decisions per channel; this is Warren's stronger rule.
    }
    let w = World::new(&[perm("u", NONE)], &[]).await;
    let server = w.b.server().unwrap();
    let q = unique("q");
    let (c, ch) = w.connect("u").await;
    assert_amqp_error(queue_declare(&ch, &q, FieldTable::default()).await, 403, &w.refused("queue", &q, "u"));

    let def = |p: (&str, &str, &str)| PermissionDef {
        user: w.user("u").into(),
        vhost: "/".into(),
        configure: p.0.into(),
        write: p.1.into(),
        read: p.2.into(),
    };
    server.broker().set_permissions(def(ALL));
    let ch = within(c.create_channel()).await.unwrap();
    queue_declare(&ch, &q, FieldTable::default()).await.unwrap();

    server.broker().clear_permissions(w.user("u"), "/");
    assert_amqp_error(queue_declare(&ch, &q, FieldTable::default()).await, 403, &w.refused("queue", &q, "u"));
}

/// A pattern the regex engine cannot compile grants nothing (RabbitMQ's
/// rabbitmqctl refuses to set one; a definitions file can still hold one).
#[tokio::test]
async fn a_pattern_that_does_not_compile_grants_nothing() {
    if external() {
        return;
    }
    let w = World::new(&[("u", "^(unclosed", ".*", ".*")], &[]).await;
    let (_c, ch) = w.connect("u").await;
    let r = queue_declare(&ch, "unclosed", FieldTable::default()).await;
    assert_amqp_error(r, 403, &w.refused("queue", "unclosed", "u"));
}

/// Topic permissions load from a definitions file and are written back to
/// the data directory's definitions.json.
#[tokio::test]
async fn topic_permissions_round_trip_through_definitions() {
    if external() {
        return;
    }
    let data = std::env::temp_dir().join(unique("perm-data"));
    let config = warren::Config { data_dir: Some(data.clone()), ..warren::Config::ephemeral() };
    let w = World::with_config(&[perm("t", ALL)], &[("t", "amq.topic", r"^{username}\.", "^r$")], config).await;
    let saved = Definitions::load(&data.join("definitions.json")).unwrap();
    let t = saved.topic_permissions.iter().find(|t| t.user == w.user("t")).expect("topic permission saved");
    assert_eq!((t.exchange.as_str(), t.write.as_str(), t.read.as_str()), ("amq.topic", r"^{username}\.", "^r$"));
    assert!(saved.permissions.iter().any(|p| p.user == w.user("t") && p.configure == ".*"));
    drop(w);
    let _ = std::fs::remove_dir_all(&data);
}
