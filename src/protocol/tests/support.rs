//! A small client-side DSL for driving the connection state machine through
//! [`Harness`]: frame builders for every method a client can send, content
//! and raw frames, an output decoder, handshake fixtures and assertions on
//! what the broker wrote.
//!
//! Everything here goes through the `Harness` API (bytes in, bytes out) and
//! amq-protocol's own generator and parser, never through the broker's codec,
//! so the tests hold while the connection's internals change.

use std::sync::Arc;

pub(super) use amq_protocol::frame::AMQPFrame;
use amq_protocol::frame::{gen_frame, parse_frame, AMQPContentHeader};
pub(super) use amq_protocol::protocol::basic::AMQPProperties;
pub(super) use amq_protocol::protocol::{access, basic, channel, confirm, connection, exchange, queue, tx, AMQPClass};
pub(super) use amq_protocol::types::{AMQPValue, FieldTable, LongString};

use crate::broker::Broker;
use crate::protocol::harness::Harness;
use crate::Config;

/// The 8 octets a 0-9-1 client opens with (and the broker answers an
/// unsupported header with).
pub(super) const PROTOCOL_HEADER: &[u8] = b"AMQP\x00\x00\x09\x01";

pub(super) const FRAME_METHOD: u8 = 1;
pub(super) const FRAME_HEADER: u8 = 2;
pub(super) const FRAME_BODY: u8 = 3;
pub(super) const FRAME_HEARTBEAT: u8 = 8;

// ------------------------------------------------------------------ frames

/// A method struct of amq-protocol that a client may put on the wire.
pub(super) trait ClientMethod {
    fn class(self) -> AMQPClass;
}

macro_rules! client_methods {
    ($($class:ident $module:ident [$($variant:ident),*]);* $(;)?) => {
        $($(impl ClientMethod for $module::$variant {
            fn class(self) -> AMQPClass {
                AMQPClass::$class($module::AMQPMethod::$variant(self))
            }
        })*)*
    };
}

client_methods! {
    Connection connection [StartOk, SecureOk, TuneOk, Open, Close, CloseOk, Blocked, Unblocked, UpdateSecret,
        Start, Tune, OpenOk];
    Channel channel [Open, Flow, FlowOk, Close, CloseOk, OpenOk];
    Access access [Request];
    Exchange exchange [Declare, Delete, Bind, Unbind, DeclareOk];
    Queue queue [Declare, Bind, Purge, Delete, Unbind, DeclareOk];
    Basic basic [Qos, Consume, Cancel, Publish, Get, Ack, Reject, RecoverAsync, Recover, Nack, Deliver, GetOk,
        Return, ConsumeOk];
    Confirm confirm [Select];
    Tx tx [Select, Commit, Rollback];
}

/// Encodes a frame with amq-protocol's generator.
pub(super) fn encode(frame: &AMQPFrame) -> Vec<u8> {
    cookie_factory::gen_simple(gen_frame(frame), Vec::new()).expect("amq-protocol encodes its own frames")
}

/// A method frame on channel `ch`.
pub(super) fn m(ch: u16, method: impl ClientMethod) -> Vec<u8> {
    encode(&AMQPFrame::Method(ch, method.class()))
}

/// A frame by hand: type, channel, payload, frame-end. For malformed input.
pub(super) fn raw_frame(kind: u8, ch: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 8);
    v.push(kind);
    v.extend_from_slice(&ch.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v.push(0xCE);
    v
}

/// A method frame with any class and method ids and argument bytes.
pub(super) fn raw_method(ch: u16, class_id: u16, method_id: u16, args: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(args.len() + 4);
    p.extend_from_slice(&class_id.to_be_bytes());
    p.extend_from_slice(&method_id.to_be_bytes());
    p.extend_from_slice(args);
    raw_frame(FRAME_METHOD, ch, &p)
}

/// A content header of class basic with default properties.
pub(super) fn header(ch: u16, body_size: u64) -> Vec<u8> {
    header_with(ch, body_size, AMQPProperties::default())
}

pub(super) fn header_with(ch: u16, body_size: u64, properties: AMQPProperties) -> Vec<u8> {
    encode(&AMQPFrame::Header(ch, AMQPContentHeader { class_id: 60, body_size, properties }))
}

/// A content header claiming another class (weight 0, no properties).
pub(super) fn header_of_class(ch: u16, class_id: u16, body_size: u64) -> Vec<u8> {
    let mut p = class_id.to_be_bytes().to_vec();
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&body_size.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    raw_frame(FRAME_HEADER, ch, &p)
}

pub(super) fn body(ch: u16, data: &[u8]) -> Vec<u8> {
    raw_frame(FRAME_BODY, ch, data)
}

pub(super) fn heartbeat() -> Vec<u8> {
    raw_frame(FRAME_HEARTBEAT, 0, &[])
}

/// basic.publish, its header and one body frame (none when `data` is empty).
pub(super) fn message(ch: u16, exchange: &str, routing_key: &str, data: &[u8]) -> Vec<u8> {
    content(ch, publish(exchange, routing_key), AMQPProperties::default(), data)
}

/// A whole publish with a chosen method and properties.
pub(super) fn content(ch: u16, publish: basic::Publish, properties: AMQPProperties, data: &[u8]) -> Vec<u8> {
    let mut v = m(ch, publish);
    v.extend(header_with(ch, data.len() as u64, properties));
    if !data.is_empty() {
        v.extend(body(ch, data));
    }
    v
}

// ---------------------------------------------------------- method values
// Each builder gives the method with RabbitMQ clients' usual defaults; tests
// change a field with struct update syntax: `queue::Declare { durable: true, ..declare("q") }`.

pub(super) fn start_ok(mechanism: &str, response: &[u8], client_properties: FieldTable) -> connection::StartOk {
    connection::StartOk {
        client_properties,
        mechanism: mechanism.into(),
        response: LongString::from(response.to_vec()),
        locale: "en_US".into(),
    }
}

pub(super) fn plain(user: &str, pass: &str) -> connection::StartOk {
    start_ok("PLAIN", format!("\0{user}\0{pass}").as_bytes(), FieldTable::default())
}

pub(super) fn plain_with(client_properties: FieldTable) -> connection::StartOk {
    start_ok("PLAIN", b"\0guest\0guest", client_properties)
}

/// Client properties with a `capabilities` table of these flags set to true.
pub(super) fn capabilities(names: &[&str]) -> FieldTable {
    let mut caps = FieldTable::default();
    for name in names {
        caps.insert((*name).into(), AMQPValue::Boolean(true));
    }
    let mut props = FieldTable::default();
    props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    props
}

pub(super) fn tune_ok(channel_max: u16, frame_max: u32, heartbeat: u16) -> connection::TuneOk {
    connection::TuneOk { channel_max, frame_max, heartbeat }
}

pub(super) fn conn_open(vhost: &str) -> connection::Open {
    connection::Open { virtual_host: vhost.into() }
}

pub(super) fn conn_close() -> connection::Close {
    connection::Close { reply_code: 200, reply_text: "Goodbye".into(), class_id: 0, method_id: 0 }
}

pub(super) fn conn_close_ok() -> connection::CloseOk {
    connection::CloseOk {}
}

pub(super) fn ch_open() -> channel::Open {
    channel::Open {}
}

pub(super) fn ch_close() -> channel::Close {
    channel::Close { reply_code: 200, reply_text: "Goodbye".into(), class_id: 0, method_id: 0 }
}

pub(super) fn ch_close_ok() -> channel::CloseOk {
    channel::CloseOk {}
}

pub(super) fn flow(active: bool) -> channel::Flow {
    channel::Flow { active }
}

pub(super) fn exchange_declare(name: &str, kind: &str) -> exchange::Declare {
    exchange::Declare {
        exchange: name.into(),
        kind: kind.into(),
        passive: false,
        durable: false,
        auto_delete: false,
        internal: false,
        nowait: false,
        arguments: FieldTable::default(),
    }
}

pub(super) fn exchange_delete(name: &str) -> exchange::Delete {
    exchange::Delete { exchange: name.into(), if_unused: false, nowait: false }
}

pub(super) fn exchange_bind(destination: &str, source: &str, routing_key: &str) -> exchange::Bind {
    exchange::Bind {
        destination: destination.into(),
        source: source.into(),
        routing_key: routing_key.into(),
        nowait: false,
        arguments: FieldTable::default(),
    }
}

pub(super) fn exchange_unbind(destination: &str, source: &str, routing_key: &str) -> exchange::Unbind {
    exchange::Unbind {
        destination: destination.into(),
        source: source.into(),
        routing_key: routing_key.into(),
        nowait: false,
        arguments: FieldTable::default(),
    }
}

pub(super) fn declare(name: &str) -> queue::Declare {
    queue::Declare {
        queue: name.into(),
        passive: false,
        durable: false,
        exclusive: false,
        auto_delete: false,
        nowait: false,
        arguments: FieldTable::default(),
    }
}

pub(super) fn passive(name: &str) -> queue::Declare {
    queue::Declare { passive: true, ..declare(name) }
}

pub(super) fn bind(queue: &str, exchange: &str, routing_key: &str) -> queue::Bind {
    queue::Bind {
        queue: queue.into(),
        exchange: exchange.into(),
        routing_key: routing_key.into(),
        nowait: false,
        arguments: FieldTable::default(),
    }
}

pub(super) fn unbind(queue: &str, exchange: &str, routing_key: &str) -> queue::Unbind {
    queue::Unbind {
        queue: queue.into(),
        exchange: exchange.into(),
        routing_key: routing_key.into(),
        arguments: FieldTable::default(),
    }
}

pub(super) fn purge(queue: &str) -> queue::Purge {
    queue::Purge { queue: queue.into(), nowait: false }
}

pub(super) fn delete(queue: &str) -> queue::Delete {
    queue::Delete { queue: queue.into(), if_unused: false, if_empty: false, nowait: false }
}

pub(super) fn qos(prefetch_count: u16, global: bool) -> basic::Qos {
    basic::Qos { prefetch_count, global }
}

/// basic.qos by hand, since amq-protocol's struct has no prefetch_size.
pub(super) fn qos_raw(ch: u16, prefetch_size: u32, prefetch_count: u16, global: bool) -> Vec<u8> {
    let mut args = prefetch_size.to_be_bytes().to_vec();
    args.extend_from_slice(&prefetch_count.to_be_bytes());
    args.push(global as u8);
    raw_method(ch, 60, 10, &args)
}

/// A manual-ack consumer.
pub(super) fn consume(queue: &str, tag: &str) -> basic::Consume {
    basic::Consume {
        queue: queue.into(),
        consumer_tag: tag.into(),
        no_local: false,
        no_ack: false,
        exclusive: false,
        nowait: false,
        arguments: FieldTable::default(),
    }
}

pub(super) fn cancel(tag: &str) -> basic::Cancel {
    basic::Cancel { consumer_tag: tag.into(), nowait: false }
}

pub(super) fn publish(exchange: &str, routing_key: &str) -> basic::Publish {
    basic::Publish { exchange: exchange.into(), routing_key: routing_key.into(), mandatory: false, immediate: false }
}

pub(super) fn get(queue: &str, no_ack: bool) -> basic::Get {
    basic::Get { queue: queue.into(), no_ack }
}

pub(super) fn ack(delivery_tag: u64, multiple: bool) -> basic::Ack {
    basic::Ack { delivery_tag, multiple }
}

pub(super) fn nack(delivery_tag: u64, multiple: bool, requeue: bool) -> basic::Nack {
    basic::Nack { delivery_tag, multiple, requeue }
}

pub(super) fn reject(delivery_tag: u64, requeue: bool) -> basic::Reject {
    basic::Reject { delivery_tag, requeue }
}

pub(super) fn recover(requeue: bool) -> basic::Recover {
    basic::Recover { requeue }
}

pub(super) fn confirm_select() -> confirm::Select {
    confirm::Select { nowait: false }
}

pub(super) fn tx_select() -> tx::Select {
    tx::Select {}
}

pub(super) fn tx_commit() -> tx::Commit {
    tx::Commit {}
}

pub(super) fn tx_rollback() -> tx::Rollback {
    tx::Rollback {}
}

// ----------------------------------------------------------------- output

/// Decodes everything the broker wrote; panics on a malformed or partial frame.
pub(super) fn decode(mut out: &[u8]) -> Vec<AMQPFrame> {
    let mut v = Vec::new();
    while !out.is_empty() {
        match parse_frame(out) {
            Ok((rest, f)) => {
                v.push(f);
                out = rest;
            }
            Err(e) => panic!("the broker wrote a frame amq-protocol cannot parse ({e:?}): {out:?}"),
        }
    }
    v
}

/// A frame as `"<channel> <class>.<method>"`, `"<channel> header"`,
/// `"<channel> body"` or `"heartbeat"`, for comparing frame order.
pub(super) fn name(f: &AMQPFrame) -> String {
    match f {
        AMQPFrame::Method(ch, class) => {
            // `Channel(CloseOk(CloseOk { .. }))` → `channel.close-ok`.
            let debug = format!("{class:?}");
            let mut parts = debug.split('(');
            let (class, method) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            format!("{ch} {}.{}", kebab(class), kebab(method))
        }
        AMQPFrame::Header(ch, _) => format!("{ch} header"),
        AMQPFrame::Body(ch, _) => format!("{ch} body"),
        AMQPFrame::Heartbeat => "heartbeat".into(),
        AMQPFrame::InvalidHeartbeat(ch) => format!("{ch} heartbeat"),
        AMQPFrame::ProtocolHeader(v) => format!("protocol header {v:?}"),
    }
}

fn kebab(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

pub(super) fn names(frames: &[AMQPFrame]) -> Vec<String> {
    frames.iter().map(name).collect()
}

/// The frames are exactly these, in this order (see [`name`]).
#[track_caller]
pub(super) fn assert_names(frames: &[AMQPFrame], expected: &[&str]) {
    assert_eq!(names(frames), expected, "frames: {frames:#?}");
}

/// A channel.close or connection.close as the broker sent it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Closed {
    pub channel: u16,
    pub code: u16,
    pub text: String,
    pub class_id: u16,
    pub method_id: u16,
}

impl Closed {
    pub(super) fn of(f: &AMQPFrame) -> Option<Closed> {
        let closed = |channel, code, text: &str, class_id, method_id| Closed {
            channel,
            code,
            text: text.to_owned(),
            class_id,
            method_id,
        };
        match f {
            AMQPFrame::Method(ch, AMQPClass::Channel(channel::AMQPMethod::Close(c))) => {
                Some(closed(*ch, c.reply_code, c.reply_text.as_str(), c.class_id, c.method_id))
            }
            AMQPFrame::Method(ch, AMQPClass::Connection(connection::AMQPMethod::Close(c))) => {
                Some(closed(*ch, c.reply_code, c.reply_text.as_str(), c.class_id, c.method_id))
            }
            _ => None,
        }
    }
}

/// `f` is channel.close on `ch` with this code, text and failing method.
#[track_caller]
pub(super) fn assert_channel_close(f: &AMQPFrame, ch: u16, code: u16, text: &str, ids: (u16, u16)) {
    assert_eq!(name(f), format!("{ch} channel.close"), "{f:?}");
    let want = Closed { channel: ch, code, text: text.into(), class_id: ids.0, method_id: ids.1 };
    assert_eq!(Closed::of(f), Some(want));
}

/// `f` is connection.close with this code, text and failing method.
#[track_caller]
pub(super) fn assert_connection_close(f: &AMQPFrame, code: u16, text: &str, ids: (u16, u16)) {
    assert_eq!(name(f), "0 connection.close", "{f:?}");
    let want = Closed { channel: 0, code, text: text.into(), class_id: ids.0, method_id: ids.1 };
    assert_eq!(Closed::of(f), Some(want));
}

/// A message the broker sent: basic.deliver, get-ok or return, with its content.
#[derive(Debug, Clone)]
pub(super) struct Delivered {
    /// The channel the message came on.
    pub channel: u16,
    pub method: basic::AMQPMethod,
    pub properties: AMQPProperties,
    pub body: Vec<u8>,
}

impl Delivered {
    pub(super) fn tag(&self) -> u64 {
        match &self.method {
            basic::AMQPMethod::Deliver(d) => d.delivery_tag,
            basic::AMQPMethod::GetOk(g) => g.delivery_tag,
            m => panic!("no delivery tag on {m:?}"),
        }
    }

    pub(super) fn redelivered(&self) -> bool {
        match &self.method {
            basic::AMQPMethod::Deliver(d) => d.redelivered,
            basic::AMQPMethod::GetOk(g) => g.redelivered,
            m => panic!("no redelivered flag on {m:?}"),
        }
    }

    pub(super) fn consumer_tag(&self) -> &str {
        match &self.method {
            basic::AMQPMethod::Deliver(d) => d.consumer_tag.as_str(),
            m => panic!("no consumer tag on {m:?}"),
        }
    }
}

/// The messages in `frames`, each with its header and body frames joined;
/// panics if a message's content is incomplete or out of place.
#[track_caller]
pub(super) fn messages(frames: &[AMQPFrame]) -> Vec<Delivered> {
    let mut out = Vec::new();
    let mut it = frames.iter().peekable();
    while let Some(f) = it.next() {
        let AMQPFrame::Method(ch, AMQPClass::Basic(method)) = f else { continue };
        if !matches!(method, basic::AMQPMethod::Deliver(_) | basic::AMQPMethod::GetOk(_) | basic::AMQPMethod::Return(_))
        {
            continue;
        }
        let Some(AMQPFrame::Header(hch, h)) = it.next() else { panic!("no content header after {f:?}") };
        assert_eq!(hch, ch, "header on another channel");
        let mut data = Vec::new();
        while (data.len() as u64) < h.body_size {
            match it.next() {
                Some(AMQPFrame::Body(bch, part)) if bch == ch => data.extend_from_slice(part),
                other => panic!("expected body on {ch}, got {other:?}"),
            }
        }
        assert_eq!(data.len() as u64, h.body_size, "body size");
        out.push(Delivered { channel: *ch, method: method.clone(), properties: h.properties.clone(), body: data });
    }
    out
}

/// The bodies of the messages in `frames`, as text.
pub(super) fn bodies(frames: &[AMQPFrame]) -> Vec<String> {
    messages(frames).iter().map(|d| String::from_utf8_lossy(&d.body).into_owned()).collect()
}

// --------------------------------------------------------------- fixtures

/// An in-memory broker with guest/guest on vhost "/".
pub(super) fn broker() -> Arc<Broker> {
    Arc::new(Broker::in_memory("guest", "guest", "/"))
}

/// One client connection driven through a [`Harness`].
pub(super) struct Client {
    pub h: Harness,
}

impl Client {
    /// A connection that has sent nothing yet.
    pub(super) fn new(broker: &Arc<Broker>) -> Client {
        Client::with_config(broker, Config::ephemeral())
    }

    pub(super) fn with_config(broker: &Arc<Broker>, config: Config) -> Client {
        Client { h: Harness::new(Arc::clone(broker), Arc::new(config)) }
    }

    /// Sent the protocol header and got connection.start.
    pub(super) fn started(broker: &Arc<Broker>) -> Client {
        let mut c = Client::new(broker);
        let got = c.round(PROTOCOL_HEADER);
        assert_names(&got, &["0 connection.start"]);
        c
    }

    /// Logged in as guest and got connection.tune.
    pub(super) fn tuned(broker: &Arc<Broker>) -> Client {
        Client::tuned_with(broker, plain("guest", "guest"))
    }

    /// Logged in with this start-ok and got connection.tune.
    pub(super) fn tuned_with(broker: &Arc<Broker>, ok: connection::StartOk) -> Client {
        let mut c = Client::started(broker);
        let got = c.round(&m(0, ok));
        assert_names(&got, &["0 connection.tune"]);
        c
    }

    /// An open connection with channel 1, whose client advertised these
    /// capabilities in its client-properties.
    pub(super) fn open_with_capabilities(broker: &Arc<Broker>, caps: &[&str]) -> Client {
        let mut c = Client::tuned_with(broker, plain_with(capabilities(caps)));
        let mut hs = m(0, tune_ok(2047, 131072, 0));
        hs.extend(m(0, conn_open("/")));
        assert_names(&c.round(&hs), &["0 connection.open-ok"]);
        c.open_channel(1);
        c
    }

    /// Through connection.open-ok on "/", with these tune-ok values.
    pub(super) fn handshake(broker: &Arc<Broker>, channel_max: u16, frame_max: u32) -> Client {
        let mut c = Client::tuned(broker);
        let mut hs = m(0, tune_ok(channel_max, frame_max, 0));
        hs.extend(m(0, conn_open("/")));
        let got = c.round(&hs);
        assert_names(&got, &["0 connection.open-ok"]);
        c
    }

    /// An open connection (the broker's limits accepted) with channel 1 open.
    pub(super) fn open(broker: &Arc<Broker>) -> Client {
        let mut c = Client::handshake(broker, 2047, 131072);
        c.open_channel(1);
        c
    }

    /// Hands the broker `bytes` as one read.
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        self.h.feed(bytes);
    }

    /// The raw bytes written since the last take.
    pub(super) fn raw_output(&mut self) -> Vec<u8> {
        self.h.take_output().to_vec()
    }

    /// The frames written since the last take.
    pub(super) fn output(&mut self) -> Vec<AMQPFrame> {
        decode(&self.h.take_output())
    }

    /// Feeds `bytes` and returns what the broker wrote in answer.
    pub(super) fn round(&mut self, bytes: &[u8]) -> Vec<AMQPFrame> {
        self.feed(bytes);
        self.output()
    }

    /// Lets the connection run without input (drains deliveries that other
    /// connections caused) and returns what it wrote.
    pub(super) fn poll(&mut self) -> Vec<AMQPFrame> {
        self.round(&[])
    }

    pub(super) fn ended(&self) -> bool {
        self.h.ended()
    }

    #[track_caller]
    pub(super) fn open_channel(&mut self, ch: u16) {
        let got = self.round(&m(ch, ch_open()));
        assert_names(&got, &[&format!("{ch} channel.open-ok")]);
    }

    /// Declares a plain queue, asserting declare-ok with its name.
    #[track_caller]
    pub(super) fn declare_queue(&mut self, ch: u16, name: &str) {
        self.expect_declare_ok(&m(ch, declare(name)), name, 0, 0);
    }

    /// Feeds `bytes` and asserts a single queue.declare-ok with these counts.
    #[track_caller]
    pub(super) fn expect_declare_ok(&mut self, bytes: &[u8], name: &str, messages: u32, consumers: u32) {
        let got = self.round(bytes);
        match &got[..] {
            [AMQPFrame::Method(_, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok)))] => {
                assert_eq!((ok.queue.as_str(), ok.message_count, ok.consumer_count), (name, messages, consumers))
            }
            _ => panic!("expected queue.declare-ok, got {got:#?}"),
        }
    }

    /// Feeds `bytes`, asserts exactly one channel.close with these details,
    /// answers close-ok and asserts the channel is free and the connection
    /// carries on.
    #[track_caller]
    pub(super) fn expect_channel_error(&mut self, bytes: &[u8], ch: u16, code: u16, text: &str, ids: (u16, u16)) {
        let got = self.round(bytes);
        assert_eq!(got.len(), 1, "one channel.close: {got:#?}");
        assert_channel_close(&got[0], ch, code, text, ids);
        assert!(!self.ended(), "a channel error keeps the connection");
        assert!(self.round(&m(ch, ch_close_ok())).is_empty());
        self.open_channel(ch);
    }

    /// Feeds `bytes`, asserts exactly one connection.close with these
    /// details, answers close-ok and asserts the connection is over.
    #[track_caller]
    pub(super) fn expect_connection_error(&mut self, bytes: &[u8], code: u16, text: &str, ids: (u16, u16)) {
        let got = self.round(bytes);
        assert_eq!(got.len(), 1, "one connection.close: {got:#?}");
        assert_connection_close(&got[0], code, text, ids);
        assert!(self.round(&m(0, conn_close_ok())).is_empty(), "nothing after close-ok");
        assert!(self.ended(), "close-ok ends the connection");
    }

    /// As [`Client::expect_connection_error`], for the cases whose class and
    /// method ids differ from RabbitMQ's today: code and text are checked
    /// here, the ids by the ignored test in `rabbitmq_differences` that
    /// records what RabbitMQ sends.
    #[track_caller]
    pub(super) fn expect_connection_error_ids_aside(&mut self, bytes: &[u8], code: u16, text: &str) {
        let got = self.round(bytes);
        assert_eq!(got.len(), 1, "one connection.close: {got:#?}");
        let closed = Closed::of(&got[0]).unwrap_or_else(|| panic!("expected connection.close, got {got:?}"));
        assert_eq!((closed.channel, closed.code, closed.text.as_str()), (0, code, text));
        assert!(self.round(&m(0, conn_close_ok())).is_empty(), "nothing after close-ok");
        assert!(self.ended(), "close-ok ends the connection");
    }

    /// Feeds `bytes` and asserts that the broker drops the connection
    /// without writing a single byte (RabbitMQ's answer to handshake errors
    /// and unknown methods).
    #[track_caller]
    pub(super) fn expect_silent_drop(&mut self, bytes: &[u8]) {
        self.feed(bytes);
        assert_eq!(self.raw_output(), Vec::<u8>::new(), "nothing is written before the drop");
        assert!(self.ended(), "the connection is dropped");
    }
}

/// An open connection with channel 1 on a fresh broker.
pub(super) fn open() -> (Arc<Broker>, Client) {
    let b = broker();
    let c = Client::open(&b);
    (b, c)
}

// ------------------------------------------------- the DSL's own checks
// The assertions above must fail on wrong output, or every test built on
// them could pass vacuously.

#[test]
#[should_panic(expected = "assertion `left == right` failed")]
fn assert_channel_close_fails_on_another_code() {
    let (_b, mut c) = open();
    let got = c.round(&m(1, passive("missing")));
    assert_channel_close(&got[0], 1, 406, "NOT_FOUND - no queue 'missing' in vhost '/'", (50, 10));
}

#[test]
#[should_panic(expected = "assertion `left == right` failed")]
fn expect_connection_error_fails_on_another_text() {
    let (_b, mut c) = open();
    c.expect_connection_error(&m(1, ch_open()), 504, "CHANNEL_ERROR - something else", (20, 10));
}

#[test]
#[should_panic(expected = "nothing is written before the drop")]
fn expect_silent_drop_fails_when_the_broker_answers() {
    let (_b, mut c) = open();
    c.expect_silent_drop(&m(1, declare("q")));
}

#[test]
#[should_panic(expected = "no content header after")]
fn messages_fails_on_a_delivery_without_content() {
    let deliver = basic::Deliver {
        consumer_tag: "c".into(),
        delivery_tag: 1,
        redelivered: false,
        exchange: "".into(),
        routing_key: "q".into(),
    };
    messages(&[AMQPFrame::Method(1, deliver.class())]);
}

#[test]
fn names_spell_methods_as_the_spec_does() {
    let frames = decode(&[m(1, basic::RecoverAsync { requeue: true }), m(0, conn_close_ok()), heartbeat()].concat());
    assert_eq!(names(&frames), ["1 basic.recover-async", "0 connection.close-ok", "heartbeat"]);
}
