//! Shared helpers for Warren's integration tests.
//!
//! Every test gets its broker from [`broker`]: when `WARREN_TEST_URI` is set
//! (e.g. `amqp://guest:guest@127.0.0.1:5673/%2f`, a real RabbitMQ) the tests
//! run against that broker, otherwise an in-process `warren::Server` is
//! started on `Config::ephemeral()`.  Because many tests may share one
//! RabbitMQ and run in parallel, every queue/exchange name comes from
//! [`unique`].
#![allow(dead_code)]

use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_lite::StreamExt;
use lapin::{
    message::Delivery,
    options::*,
    types::{AMQPValue, FieldTable},
    BasicProperties, Channel, Connection, ConnectionProperties, Consumer,
};

pub mod certs;
pub mod http;
pub mod raw;

/// Default upper bound for any single wait in the tests.
pub const WAIT: Duration = Duration::from_secs(5);

/// A broker the tests talk to: either an external one (WARREN_TEST_URI) or an
/// in-process Warren that lives as long as this value.
pub struct TestBroker {
    uri: String,
    addr: SocketAddr,
    server: Option<warren::Server>,
}

impl TestBroker {
    /// AMQP URI with guest credentials and the default vhost.
    pub fn uri(&self) -> String {
        self.uri.clone()
    }
    /// TCP address of the broker.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// URI for other credentials / vhost (vhost is percent-encoded here).
    pub fn uri_with(&self, user: &str, pass: &str, vhost: &str) -> String {
        format!("amqp://{}:{}@{}/{}", user, pass, self.addr, vhost.replace('%', "%25").replace('/', "%2f"))
    }
    /// Whether this is the in-process Warren (not an external broker).
    pub fn is_warren(&self) -> bool {
        self.server.is_some()
    }
    /// Stop the in-process server (only for Warren; None for external brokers).
    pub fn take_server(&mut self) -> Option<warren::Server> {
        self.server.take()
    }
}

/// True when the tests run against an external broker (a real RabbitMQ).
pub fn external() -> bool {
    std::env::var("WARREN_TEST_URI").map(|v| !v.is_empty()).unwrap_or(false)
}

/// Get the broker under test.
pub async fn broker() -> TestBroker {
    broker_with(|_| {}).await
}

/// As [`broker`], with the in-process Warren's configuration changed by
/// `configure` (an external broker is used as it is).
pub async fn broker_with(configure: impl FnOnce(&mut warren::Config)) -> TestBroker {
    match std::env::var("WARREN_TEST_URI") {
        Ok(uri) if !uri.is_empty() => {
            let addr = addr_from_uri(&uri);
            TestBroker { uri, addr, server: None }
        }
        _ => {
            let mut config = warren::Config::ephemeral();
            configure(&mut config);
            let server = within(warren::Server::start(config)).await.expect("starting the in-process Warren server");
            TestBroker { uri: server.amqp_uri(), addr: server.local_addr(), server: Some(server) }
        }
    }
}

/// Like [`broker`], but an in-process Warren starts with `config` (an
/// external broker is used as it is).
pub async fn broker_with_config(config: warren::Config) -> TestBroker {
    broker_with(|c| *c = config).await
}

/// The in-process server, if this is Warren.
impl TestBroker {
    pub fn server(&self) -> Option<&warren::Server> {
        self.server.as_ref()
    }
}

/// Parse host:port out of an amqp:// URI (default port 5672).
pub fn addr_from_uri(uri: &str) -> SocketAddr {
    let rest =
        uri.strip_prefix("amqp://").unwrap_or_else(|| panic!("WARREN_TEST_URI must start with amqp://, got {uri}"));
    let authority = rest.split('/').next().unwrap();
    let hostport = authority.rsplit('@').next().unwrap();
    let hostport = if hostport.contains(':') { hostport.to_string() } else { format!("{hostport}:5672") };
    hostport
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("cannot resolve {hostport}: {e}"))
        .next()
        .expect("no address for broker host")
}

/// A name unique across processes and tests: `warren-test-<prefix>-<pid>-<n>-<nanos>`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    format!("wt-{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// Await `f` for at most [`WAIT`]; panic on timeout.
pub async fn within<F: Future>(f: F) -> F::Output {
    within_d(WAIT, f).await
}

/// Await `f` for at most `d`; panic on timeout.
pub async fn within_d<F: Future>(d: Duration, f: F) -> F::Output {
    match tokio::time::timeout(d, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {d:?}"),
    }
}

/// Open a lapin connection to the broker.
pub async fn connect(b: &TestBroker) -> Connection {
    within(Connection::connect(&b.uri(), ConnectionProperties::default())).await.expect("connect")
}

/// Open a lapin connection and a channel.
pub async fn connect_channel(b: &TestBroker) -> (Connection, Channel) {
    let c = connect(b).await;
    let ch = within(c.create_channel()).await.expect("create_channel");
    (c, ch)
}

/// Open a lapin connection and a channel in confirm mode.
///
/// Note: RabbitMQ's queue processes answer "stat" requests (queue.declare-ok
/// counts) with priority over deliveries, so a message published without a
/// confirm may not be counted yet. Tests that check counts publish with
/// confirms ([`publish_confirmed`]).
pub async fn connect_confirm_channel(b: &TestBroker) -> (Connection, Channel) {
    let c = connect(b).await;
    let ch = confirm_channel(&c).await;
    (c, ch)
}

/// Connection events (lapin only reports asynchronous channel errors, e.g.
/// after a basic.publish or basic.ack, as events; create the listener before
/// the error happens).
pub type Events = std::pin::Pin<Box<dyn futures_lite::Stream<Item = lapin::Event> + Send>>;

pub fn events(c: &Connection) -> Events {
    Box::pin(c.events_listener())
}

/// Wait for the next error event (a channel or connection close by the
/// broker); returned as `Err` so it can be fed to [`assert_amqp_error`].
pub async fn next_error(ev: &mut Events) -> lapin::Result<()> {
    loop {
        match within(ev.next()).await {
            Some(lapin::Event::Error(e)) => return Err(e),
            Some(_) => continue,
            None => panic!("connection events ended without an error"),
        }
    }
}

/// (reply code, reply text) of a lapin protocol error; panics on other errors.
pub fn amqp_error(e: &lapin::Error) -> (u16, String) {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(err) => (err.get_id(), err.get_message().to_string()),
        other => panic!("expected an AMQP protocol error, got {other:?}"),
    }
}

/// Unwrap a result that must be an AMQP error with this code and text.
#[track_caller]
pub fn assert_amqp_error<T: std::fmt::Debug>(r: lapin::Result<T>, code: u16, text: &str) {
    match r {
        Ok(v) => panic!("expected error {code} {text:?}, got Ok({v:?})"),
        Err(e) => {
            let (c, t) = amqp_error(&e);
            assert_eq!((c, t.as_str()), (code, text), "reply code/text");
        }
    }
}

/// Declare a transient, non-exclusive queue with this name.
pub async fn declare_queue(ch: &Channel, name: &str) -> lapin::Queue {
    within(ch.queue_declare(name.into(), QueueDeclareOptions::default(), FieldTable::default()))
        .await
        .expect("queue_declare")
}

/// Delete a queue on a fresh connection, ignoring errors (test clean-up).
pub async fn cleanup_queue(b: &TestBroker, name: &str) {
    if let Ok(Ok(c)) = tokio::time::timeout(WAIT, Connection::connect(&b.uri(), ConnectionProperties::default())).await
    {
        {
            if let Ok(Ok(ch)) = tokio::time::timeout(WAIT, c.create_channel()).await {
                let _ = tokio::time::timeout(WAIT, ch.queue_delete(name.into(), QueueDeleteOptions::default())).await;
            }
            let _ = tokio::time::timeout(WAIT, c.close(200, "OK".into())).await;
        }
    }
}

/// Delete an exchange on a fresh connection, ignoring errors.
pub async fn cleanup_exchange(b: &TestBroker, name: &str) {
    if let Ok(Ok(c)) = tokio::time::timeout(WAIT, Connection::connect(&b.uri(), ConnectionProperties::default())).await
    {
        if let Ok(Ok(ch)) = tokio::time::timeout(WAIT, c.create_channel()).await {
            let _ = tokio::time::timeout(WAIT, ch.exchange_delete(name.into(), ExchangeDeleteOptions::default())).await;
        }
        let _ = tokio::time::timeout(WAIT, c.close(200, "OK".into())).await;
    }
}

/// Publish a message and wait until it is written (no confirm).
pub async fn publish(ch: &Channel, exchange: &str, key: &str, body: &[u8]) {
    publish_props(ch, exchange, key, body, BasicProperties::default()).await
}

pub async fn publish_props(ch: &Channel, exchange: &str, key: &str, body: &[u8], props: BasicProperties) {
    within(ch.basic_publish(exchange.into(), key.into(), BasicPublishOptions::default(), body, props))
        .await
        .expect("basic_publish");
}

/// Publish on a confirm-mode channel and wait for the ack.
pub async fn publish_confirmed(ch: &Channel, exchange: &str, key: &str, body: &[u8]) {
    let confirm = within(ch.basic_publish(
        exchange.into(),
        key.into(),
        BasicPublishOptions::default(),
        body,
        BasicProperties::default(),
    ))
    .await
    .expect("basic_publish");
    let c = within(confirm).await.expect("publisher confirm");
    assert!(c.is_ack(), "publish was not acked");
}

/// A channel in confirm mode.
pub async fn confirm_channel(c: &Connection) -> Channel {
    let ch = within(c.create_channel()).await.expect("create_channel");
    within(ch.confirm_select(ConfirmSelectOptions::default())).await.expect("confirm_select");
    ch
}

/// basic.get with no-ack; returns the body, or None on get-empty.
pub async fn get_body(ch: &Channel, queue: &str) -> Option<Vec<u8>> {
    within(ch.basic_get(queue.into(), BasicGetOptions { no_ack: true }))
        .await
        .expect("basic_get")
        .map(|m| m.delivery.data)
}

/// Drain a queue with basic.get (no-ack) and return the bodies as strings.
pub async fn drain(ch: &Channel, queue: &str) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(b) = get_body(ch, queue).await {
        out.push(String::from_utf8(b).unwrap());
    }
    out
}

/// Next delivery of a consumer, waiting at most [`WAIT`].
pub async fn next_delivery(consumer: &mut Consumer) -> Delivery {
    within(consumer.next()).await.expect("consumer stream ended").expect("delivery error")
}

/// Assert that the consumer receives nothing within `ms` milliseconds.
pub async fn assert_no_delivery(consumer: &mut Consumer, ms: u64) {
    if let Ok(d) = tokio::time::timeout(Duration::from_millis(ms), consumer.next()).await {
        panic!("expected no delivery, got {:?}", d.map(|r| r.map(|d| String::from_utf8_lossy(&d.data).into_owned())));
    }
}

/// Poll `check` (every 20 ms) until it returns true, for at most [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("condition never became true: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Does a queue exist? (passive declare on a throwaway channel)
pub async fn queue_exists(c: &Connection, name: &str) -> bool {
    let ch = within(c.create_channel()).await.expect("create_channel");
    let r = within(ch.queue_declare(
        name.into(),
        QueueDeclareOptions { passive: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await;
    match r {
        Ok(_) => {
            let _ = within(ch.close(200, "OK".into())).await;
            true
        }
        Err(e) => {
            assert_eq!(amqp_error(&e).0, 404, "passive declare: {e:?}");
            false
        }
    }
}

/// Does an exchange exist? (passive declare on a throwaway channel)
pub async fn exchange_exists(c: &Connection, name: &str) -> bool {
    let ch = within(c.create_channel()).await.expect("create_channel");
    let r = within(ch.exchange_declare(
        name.into(),
        lapin::ExchangeKind::Direct,
        ExchangeDeclareOptions { passive: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await;
    match r {
        Ok(_) => {
            let _ = within(ch.close(200, "OK".into())).await;
            true
        }
        Err(e) => {
            assert_eq!(amqp_error(&e).0, 404, "passive declare: {e:?}");
            false
        }
    }
}

/// Message count of a queue via passive declare.
pub async fn message_count(ch: &Channel, name: &str) -> u32 {
    within(ch.queue_declare(
        name.into(),
        QueueDeclareOptions { passive: true, ..Default::default() },
        FieldTable::default(),
    ))
    .await
    .expect("passive queue_declare")
    .message_count()
}

/// A field table from pairs (queue and binding arguments, headers).
pub fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

/// A long-string field value.
pub fn ls(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

/// Declare a (non-durable) queue with these arguments.
pub async fn declare_args(ch: &Channel, name: &str, pairs: &[(&str, AMQPValue)]) {
    within(ch.queue_declare(name.into(), QueueDeclareOptions::default(), table(pairs))).await.expect("queue_declare");
}

/// Publish with properties on a confirm channel and require the ack.
pub async fn publish_confirmed_props(ch: &Channel, exchange: &str, key: &str, body: &[u8], props: BasicProperties) {
    let conf = within(ch.basic_publish(exchange.into(), key.into(), BasicPublishOptions::default(), body, props))
        .await
        .expect("basic_publish");
    assert!(within(conf).await.expect("confirm").is_ack(), "publish was not acked");
}

/// The broker under test, with an in-process Warren on a manual clock: its
/// TTLs and x-expires, and here its heartbeats and other socket timers too,
/// move only when [`let_pass`] says.
pub async fn broker_on_manual_clock() -> TestBroker {
    broker_with(|c| {
        c.clock = warren::clock::Clock::manual();
        c.socket_clock = c.clock.clone();
    })
    .await
}

/// Lets `ms` of broker time pass. An in-process Warren on a manual clock
/// moves its clock and runs every deadline that fell due before this
/// returns: no sleep, nothing racy. An external broker (or a real clock)
/// gets that long in real time, plus a margin for its timers.
pub async fn let_pass(b: &TestBroker, ms: u64) {
    match b.server() {
        Some(s) if s.broker().advance(Duration::from_millis(ms)) => {}
        _ => tokio::time::sleep(Duration::from_millis(ms + 250)).await,
    }
}

/// Whether time in `b` moves only through [`let_pass`] (so "not yet" can be
/// checked to the millisecond).
pub fn on_manual_clock(b: &TestBroker) -> bool {
    b.server().is_some_and(|s| s.broker().clock().is_manual())
}
