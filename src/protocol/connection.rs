//! One client connection: the only code that touches its socket.
//!
//! A single task per connection owns the socket halves, a read buffer and a
//! write buffer. Each wake-up parses every complete frame in the read buffer,
//! runs it (channels live inside this task: no hop per message), drains the
//! outbox queues filled, and writes whatever accumulated with as few `write`
//! calls as the socket allows. Reads and writes are polled together so a
//! client that stops reading cannot wedge us while it is still sending acks.
//!
//! Handshake: protocol header → start/start-ok → tune/tune-ok → open/open-ok.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amq_protocol::protocol::{access, basic, channel, confirm, connection, exchange, queue, tx, AMQPClass};
use amq_protocol::types::{AMQPValue, FieldTable, LongString, ShortString};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::channel::{BodyParts, Channel, PendingPublish, Settle, TxOp, Unacked};
use super::codec::{self, decode_content_header, decode_method, DecodeError, Method};
use super::frame::{erlang_binary, split_frame, Frame, FrameKind};
use crate::broker::alarms::AlarmSet;
use crate::broker::args::consumer_priority;
use crate::broker::consumer::{Consumer, NewConsumer, Outbox, OutboxItem};
use crate::broker::exchange::Destination;
use crate::broker::message::QueuedMessage;
use crate::broker::permissions::{Access, Resource};
use crate::broker::publish::{Accepted, Publish, Published, Sink};
use crate::broker::queue::Queue;
use crate::broker::queue::{DeadLetters, Unsettled};
use crate::broker::vhost::{generated_name, ExchangeDeclare, QueueDeclare, Vhost};
use crate::broker::{AmqpError, AmqpResult, Broker, FastMap, ReplyCode, ReplyTarget, Scope, REPLY_TO};
use crate::ids::{ChannelId, ConnectionId};
use crate::store::{Outcome, TicketRange};
use crate::wire::properties::{self, PropertyScan};
use crate::wire::table::{self, Edit};
use crate::Config;

pub(super) const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
/// RabbitMQ's handshake_timeout.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long we wait for close-ok after sending connection.close, and how
/// long we keep reading (and dropping) what a peer sends after we answered
/// its connection.close, so its late writes do not fail before it has read
/// our close-ok (RabbitMQ waits for the peer to close first, too).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Above this many buffered outgoing bytes we stop taking deliveries from the
/// outbox; consumers then run out of credit and queues hold their messages.
const WRITE_BUFFER_CAP: usize = 256 * 1024;
/// Above this many we also stop reading the socket and handling frames:
/// whatever a peer's frames make us write (returns, get-ok, confirms,
/// replies) waits until it reads. Higher than the delivery cap, so a
/// consumer whose deliveries filled the buffer is still read (its acks are
/// what frees it) unless replies pile up on top.
const READ_STOP: usize = 2 * WRITE_BUFFER_CAP;
const READ_CHUNK: usize = 64 * 1024;
/// What an idle connection's read buffer starts with.
const IDLE_READ_BUFFER: usize = 2048;
/// RabbitMQ's default max_message_size (128 MiB).
const MAX_MESSAGE_SIZE: u64 = 128 * 1024 * 1024;
/// The smallest frame_max the spec lets a peer negotiate.
const FRAME_MIN_SIZE: u32 = 4096;
/// The frame size limit before tune-ok, in `split_frame`'s terms (the whole
/// frame): RabbitMQ takes a payload of at most frame-min-size octets until
/// the peer has agreed to more (its check allows the 8 octets of framing on
/// top), and closes the socket without a word for a larger one. So a client
/// cannot make us buffer, or parse, more than that before it has logged in.
const PRE_TUNE_FRAME_MAX: u32 = FRAME_MIN_SIZE + super::frame::FRAME_OVERHEAD as u32;

/// Everything a connection needs from the server that accepted it.
#[derive(Clone)]
pub struct ConnectionContext {
    pub broker: Arc<Broker>,
    pub config: Arc<Config>,
    pub shutdown: watch::Receiver<bool>,
    /// The resource alarms: while any is on, connections that publish are blocked.
    pub alarm: watch::Receiver<AlarmSet>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitStartOk,
    AwaitTuneOk,
    AwaitOpen,
    Open,
    /// We sent connection.close; only close/close-ok matter now.
    Closing,
}

/// The client's advertised capabilities that change what we send.
#[derive(Default)]
struct ClientCapabilities {
    consumer_cancel_notify: bool,
    authentication_failure_close: bool,
    connection_blocked: bool,
}

impl ClientCapabilities {
    /// Reads `capabilities` from start-ok's client-properties (raw, well
    /// formed) one level at a time: the rest, at whatever depth, is never
    /// decoded. Of duplicate keys the first counts, as in RabbitMQ.
    fn from_client_properties(props: &[u8]) -> Self {
        let caps = table::table_body(props)
            .ok()
            .and_then(|body| table::find(body, b"capabilities"))
            .and_then(|e| table::table_value(e.tag, e.value))
            .unwrap_or_default();
        let flag = |key: &[u8]| {
            table::find(caps, key).is_some_and(|e| e.tag == b't' && e.value.first().is_some_and(|b| *b != 0))
        };
        ClientCapabilities {
            consumer_cancel_notify: flag(b"consumer_cancel_notify"),
            authentication_failure_close: flag(b"authentication_failure_close"),
            connection_blocked: flag(b"connection.blocked"),
        }
    }
}

/// Connection-wide state the channel handlers need alongside a `&mut Channel`.
pub(super) struct Session {
    id: ConnectionId,
    broker: Arc<Broker>,
    config: Arc<Config>,
    peer: SocketAddr,
    state: State,
    vhost: Option<Arc<Vhost>>,
    user: String,
    /// The user's permissions in `vhost` (none until connection.open).
    access: Access,
    frame_max: u32,
    channel_max: u16,
    heartbeat: u16,
    caps: ClientCapabilities,
    pub(super) wbuf: BytesMut,
    outbox: Arc<Outbox>,
    /// Deliveries taken from the outbox but not yet written (write buffer full).
    backlog: VecDeque<OutboxItem>,
    scratch: Vec<OutboxItem>,
    /// Queues whose consumers got credit back during this batch.
    kick: Vec<Arc<Queue>>,
    exclusive_queues: Vec<Arc<Queue>>,
    /// We answered the peer's connection.close: flush, half-close, then read
    /// and drop whatever still arrives until the peer closes or the close
    /// deadline passes.
    answered_close: bool,
    /// After a framing error: read and drop everything until the peer
    /// closes or the close deadline passes.
    discard_input: bool,
    /// A reply written but held back until the store has made the change
    /// behind it durable; no further frames are handled meanwhile.
    hold: Option<Hold>,
    /// What to take back if the change the current method made cannot be
    /// made durable (set by the method's handler).
    undo: Undo,
    /// Has published: the memory alarm blocks this connection.
    is_publisher: bool,
    /// We sent connection.blocked and owe an unblocked.
    told_blocked: bool,
    /// Drop the socket at once, saying nothing (RabbitMQ's answer to an
    /// unknown method).
    drop_now: bool,
    close_deadline: Option<Instant>,
}

/// A reply that must not reach the client before the writes behind it are
/// on disk: a declare-ok after the definition is durable, a commit-ok after
/// the transaction's persistent messages are.
struct Hold {
    /// Output before this offset may go out; from it on is the held reply.
    from: usize,
    tickets: TicketRange,
    channel: u16,
    class_id: u16,
    method_id: u16,
    undo: Undo,
}

/// Taking back a change whose record could not be written, so that memory
/// does not hold what a restart would lose. Deletions cannot be taken back;
/// the store rewrites its snapshot with them once it can write again.
#[derive(Default)]
enum Undo {
    #[default]
    Nothing,
    Exchange(String),
    Queue(Arc<Queue>),
    Binding {
        source: String,
        destination: Destination,
        routing_key: String,
        arguments: FieldTable,
    },
    /// Persistent messages of a commit are in their queues already; the
    /// client learns the commit failed.
    Commit,
}

/// What the read loop should do after a frame.
pub(super) enum Next {
    Continue,
    /// Stop now (protocol violation during the handshake, close-ok received).
    Drop,
}

/// Decodes a method frame; `Err(None)` means "drop the connection without a
/// word", as RabbitMQ does for methods it does not know.
fn decode(payload: &Bytes) -> Result<Method, Option<AmqpError>> {
    decode_method(payload).map_err(|e| decode_error(e, payload))
}

pub async fn serve(stream: TcpStream, peer: SocketAddr, ctx: ConnectionContext) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut shutdown = ctx.shutdown.clone();
    let mut alarm = ctx.alarm.clone();
    let mut alarm_open = true;

    let mut header = [0u8; 8];
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, rd.read_exact(&mut header)).await {
        Ok(Ok(_)) => {}
        _ => return,
    }
    if !is_supported_header(&header) {
        tracing::debug!(%peer, ?header, "refusing unsupported protocol header");
        let _ = wr.write_all(PROTOCOL_HEADER).await;
        let _ = wr.shutdown().await;
        return;
    }

    let mut s = Session::new(Arc::clone(&ctx.broker), ctx.config, peer);
    let mut channels: FastMap<u16, Channel> = FastMap::default();
    s.send_start();

    let mut rbuf = BytesMut::with_capacity(IDLE_READ_BUFFER);
    // Whether the last read filled all the room it had: then traffic is
    // heavy and a large buffer saves syscalls.
    let mut read_filled = false;
    let handshake_deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let mut last_read = Instant::now();
    let mut last_write = Instant::now();
    let mut shutting_down = false;
    let mut half_closed = false;

    loop {
        if (s.answered_close || s.discard_input) && s.wbuf.is_empty() && !half_closed {
            // Our last words are out; a FIN tells the peer, and we keep
            // reading until it closes too.
            let _ = wr.shutdown().await;
            half_closed = true;
        }
        let spare = rbuf.capacity() - rbuf.len();
        if read_filled && spare < READ_CHUNK / 2 {
            rbuf.reserve(READ_CHUNK);
        } else if spare < IDLE_READ_BUFFER / 2 {
            rbuf.reserve(IDLE_READ_BUFFER);
        }
        let room_before = rbuf.capacity() - rbuf.len();
        let draining = s.answered_close || s.discard_input;
        // A publisher under an alarm is not read from (RabbitMQ's
        // back-pressure); others still are, so consumers can drain. Nor is a
        // peer whose replies pile up unread, nor one whose reply waits for
        // the disk.
        let blocked = s.is_publisher && alarm.borrow().any();
        let reading = draining || (!blocked && s.wbuf.len() < READ_STOP && s.hold.is_none());
        if !reading {
            // Like RabbitMQ, a connection we do not read is not expected to
            // be heard from: its heartbeat clock starts again when we read.
            last_read = Instant::now();
        }
        let room = s.wbuf.len() < WRITE_BUFFER_CAP && s.state == State::Open;
        let writable = s.hold.as_ref().map_or(s.wbuf.len(), |h| h.from);
        let hb = s.heartbeat_interval();
        let next_tick = if s.state == State::Open {
            hb.map(|h| Instant::now().min(last_write) + h / 2)
        } else {
            Some(handshake_deadline)
        };
        let next_tick = match (next_tick, s.close_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let outbox = Arc::clone(&s.outbox);

        tokio::select! {
            changed = alarm.changed(), if alarm_open => {
                if changed.is_err() {
                    alarm_open = false;
                } else if s.state == State::Open && s.caps.connection_blocked {
                    let set = *alarm.borrow_and_update();
                    let on = set.any();
                    if on != s.told_blocked && (s.is_publisher || !on) {
                        s.told_blocked = on;
                        s.send_blocked(set);
                    }
                }
            }
            changed = shutdown.changed(), if !shutting_down => {
                shutting_down = true;
                if changed.is_ok() && s.state != State::Closing {
                    if s.state == State::Open && !draining {
                        // A held reply never goes out: the client gets the
                        // close instead of an ok that was not yet true.
                        if let Some(h) = s.hold.take() {
                            s.wbuf.truncate(h.from);
                        }
                        s.begin_close(AmqpError::new(
                            ReplyCode::ConnectionForced,
                            "broker forced connection closure with reason 'shutdown'",
                        ));
                    } else if !draining {
                        break;
                    }
                }
            }
            r = rd.read_buf(&mut rbuf), if reading => {
                match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        read_filled = n >= room_before;
                        last_read = Instant::now();
                        if let Next::Drop = s.process_frames(&mut rbuf, &mut channels) {
                            // Best effort: let the peer see any close we queued.
                            let _ = tokio::time::timeout(Duration::from_secs(1), wr.write_all(&s.wbuf)).await;
                            s.wbuf.clear();
                            break;
                        }
                    }
                }
            }
            w = wr.write(&s.wbuf[..writable]), if writable > 0 && !half_closed => {
                match w {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        bytes::Buf::advance(&mut s.wbuf, n);
                        if let Some(h) = s.hold.as_mut() {
                            h.from -= n;
                        }
                        last_write = Instant::now();
                    }
                }
            }
            _ = outbox.notified(), if room => {}
            _ = sleep_until_opt(next_tick) => {
                let now = Instant::now();
                if s.close_deadline.is_some_and(|d| now >= d) {
                    break;
                }
                if s.state != State::Open && s.state != State::Closing {
                    if now >= handshake_deadline {
                        tracing::debug!(%peer, "handshake timed out");
                        break;
                    }
                } else if let Some(h) = hb {
                    if now.duration_since(last_read) > h * 2 {
                        tracing::info!(%peer, "missed heartbeats from client, timeout: {}s", h.as_secs());
                        break;
                    }
                    if now.duration_since(last_write) >= h / 2 && s.wbuf.is_empty() {
                        codec::write_heartbeat(&mut s.wbuf);
                    }
                }
            }
        }
        if let Next::Drop = s.end_of_batch(&mut rbuf, &mut channels) {
            let _ = tokio::time::timeout(Duration::from_secs(1), wr.write_all(&s.wbuf)).await;
            s.wbuf.clear();
            break;
        }
        // A connection that starts publishing while an alarm is on learns
        // it is blocked too.
        if s.is_publisher && !s.told_blocked && s.caps.connection_blocked && s.state == State::Open {
            let set = *alarm.borrow();
            if set.any() {
                s.told_blocked = true;
                s.send_blocked(set);
            }
        }
    }

    s.cleanup(&mut channels);
    if !s.wbuf.is_empty() && !half_closed {
        let writable = s.hold.as_ref().map_or(s.wbuf.len(), |h| h.from);
        let _ = tokio::time::timeout(Duration::from_secs(1), wr.write_all(&s.wbuf[..writable])).await;
    }
    let _ = wr.shutdown().await;
    tracing::debug!(%peer, id = s.id.get(), "connection closed");
}

/// The protocol headers we speak: 0-9-1, and the 0-9 one some old clients
/// send, which RabbitMQ also takes. Anything else is answered with ours.
pub(super) fn is_supported_header(header: &[u8; 8]) -> bool {
    header == PROTOCOL_HEADER || header == b"AMQP\x01\x01\x00\x09"
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn short(s: impl Into<String>) -> ShortString {
    let mut s: String = s.into();
    if s.len() > 255 {
        let mut cut = 255;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    ShortString::from(s)
}

/// A wire short string as UTF-8, or the 502 RabbitMQ would not send but that
/// keeps us from routing on bytes we cannot name.
fn utf8(b: &Bytes) -> AmqpResult<&str> {
    std::str::from_utf8(b).map_err(|_| AmqpError::new(ReplyCode::SyntaxError, "short string is not valid UTF-8"))
}

impl Session {
    /// A connection that has received a valid protocol header and has not
    /// yet sent connection.start.
    pub(super) fn new(broker: Arc<Broker>, config: Arc<Config>, peer: SocketAddr) -> Session {
        Session {
            id: broker.next_connection_id(),
            frame_max: config.frame_max,
            channel_max: config.channel_max,
            heartbeat: 0,
            config,
            peer,
            state: State::AwaitStartOk,
            vhost: None,
            user: String::new(),
            access: broker.access("", ""),
            broker,
            caps: ClientCapabilities::default(),
            // Small at first: most connections are idle most of the time, and
            // both buffers grow when traffic asks for it.
            wbuf: BytesMut::with_capacity(1024),
            outbox: Arc::new(Outbox::default()),
            backlog: VecDeque::new(),
            scratch: Vec::new(),
            kick: Vec::new(),
            exclusive_queues: Vec::new(),
            answered_close: false,
            discard_input: false,
            hold: None,
            undo: Undo::Nothing,
            is_publisher: false,
            told_blocked: false,
            drop_now: false,
            close_deadline: None,
        }
    }

    /// How much of the write buffer may go out now (not a held reply).
    pub(super) fn writable(&self) -> usize {
        self.hold.as_ref().map_or(self.wbuf.len(), |h| h.from)
    }

    /// The connection is over for the state machine: it answered a close or
    /// hit a framing error, and only drains input now.
    pub(super) fn is_draining(&self) -> bool {
        self.answered_close || self.discard_input
    }

    fn heartbeat_interval(&self) -> Option<Duration> {
        (self.heartbeat > 0).then(|| Duration::from_secs(self.heartbeat as u64))
    }

    fn send(&mut self, channel: u16, method: AMQPClass) {
        codec::write_method(&mut self.wbuf, channel, method);
    }

    /// connection.blocked while an alarm is on, connection.unblocked after.
    fn send_blocked(&mut self, alarms: AlarmSet) {
        let m = if alarms.any() {
            connection::AMQPMethod::Blocked(connection::Blocked { reason: short(alarms.reason()) })
        } else {
            connection::AMQPMethod::Unblocked(connection::Unblocked {})
        };
        self.send(0, AMQPClass::Connection(m));
    }

    /// Answers the peer's connection.close: close-ok, then drain (see
    /// `answered_close`).
    fn answer_close(&mut self) {
        self.send(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})));
        self.answered_close = true;
        self.close_deadline = Some(Instant::now() + CLOSE_TIMEOUT);
    }

    pub(super) fn send_start(&mut self) {
        let mut caps = FieldTable::default();
        for cap in [
            "publisher_confirms",
            "exchange_exchange_bindings",
            "basic.nack",
            "consumer_cancel_notify",
            "authentication_failure_close",
            "per_consumer_qos",
            "consumer_priorities",
            "direct_reply_to",
            "connection.blocked",
        ] {
            caps.insert(cap.into(), AMQPValue::Boolean(true));
        }
        let mut props = FieldTable::default();
        let text = |s: &str| AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()));
        props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
        props.insert("product".into(), text("Warren"));
        props.insert("version".into(), text(env!("CARGO_PKG_VERSION")));
        props.insert("platform".into(), text("Rust"));
        props.insert("cluster_name".into(), text("warren@localhost"));
        props.insert("copyright".into(), text("Copyright (c) the Warren authors"));
        props.insert("information".into(), text("Licensed under the Apache License 2.0"));
        self.send(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Start(connection::Start {
                version_major: 0,
                version_minor: 9,
                server_properties: props,
                mechanisms: LongString::from(b"PLAIN AMQPLAIN".to_vec()),
                locales: LongString::from(b"en_US".to_vec()),
            })),
        );
    }

    /// Sends connection.close and waits (bounded) for close-ok.
    fn begin_close(&mut self, err: AmqpError) {
        tracing::debug!(peer = %self.peer, error = %err, "closing connection");
        self.send(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
                reply_code: err.code as u16,
                reply_text: short(err.text),
                class_id: err.class_id,
                method_id: err.method_id,
            })),
        );
        self.state = State::Closing;
        self.close_deadline = Some(Instant::now() + CLOSE_TIMEOUT);
    }

    pub(super) fn process_frames(&mut self, rbuf: &mut BytesMut, channels: &mut FastMap<u16, Channel>) -> Next {
        loop {
            if self.answered_close || self.discard_input {
                rbuf.clear();
                return Next::Continue;
            }
            if self.hold.is_some() || self.wbuf.len() >= READ_STOP {
                // The rest waits in `rbuf` until the held reply is released,
                // or the peer has read what its frames made us write: one
                // read of tiny basic.gets must not become megabytes of replies.
                return Next::Continue;
            }
            let frame_max = match self.state {
                State::AwaitStartOk | State::AwaitTuneOk => PRE_TUNE_FRAME_MAX,
                _ => self.frame_max,
            };
            let frame = match split_frame(rbuf, frame_max) {
                Ok(Some(f)) => f,
                Ok(None) => return Next::Continue,
                Err(e) => {
                    rbuf.clear();
                    if self.state == State::Closing {
                        return Next::Drop;
                    }
                    if matches!(self.state, State::Open) {
                        self.begin_close(AmqpError::new(ReplyCode::FrameError, e));
                        // The stream is no longer framed, so nothing more can
                        // be parsed; but closing the socket now would make
                        // the peer's next write fail before it reads our
                        // close. Discard input until it closes (or the close
                        // deadline passes), as RabbitMQ does.
                        self.discard_input = true;
                        return Next::Continue;
                    }
                    return Next::Drop;
                }
            };
            let result = self.handle_frame(frame, channels);
            if self.drop_now {
                return Next::Drop;
            }
            match result {
                Ok(Next::Continue) => {}
                Ok(Next::Drop) => return Next::Drop,
                Err(e) if e.scope == Scope::Connection || self.state != State::Open => {
                    if self.state == State::Open {
                        self.begin_close(e);
                    } else {
                        return Next::Drop;
                    }
                }
                Err(e) => {
                    // Channel errors are turned into channel.close inside handle_frame.
                    tracing::error!(error = %e, "channel error escaped its channel");
                }
            }
        }
    }

    fn handle_frame(&mut self, frame: Frame, channels: &mut FastMap<u16, Channel>) -> AmqpResult<Next> {
        match self.state {
            State::Closing => return Ok(self.handle_while_closing(frame)),
            State::AwaitStartOk | State::AwaitTuneOk | State::AwaitOpen => return self.handle_handshake(frame),
            State::Open => {}
        }
        if frame.kind == FrameKind::Heartbeat {
            // Heartbeats belong on channel 0; RabbitMQ closes with 505 otherwise.
            return if frame.channel == 0 { Ok(Next::Continue) } else { Err(unexpected_frame(&frame)) };
        }
        if frame.channel == 0 {
            return self.handle_connection_frame(frame, channels);
        }
        let id = frame.channel;
        if !channels.contains_key(&id) {
            return self.open_channel(frame, channels).map(|_| Next::Continue);
        }
        let Some(ch) = channels.get_mut(&id) else { return Ok(Next::Continue) };
        if ch.closing {
            // We sent channel.close: only close and close-ok count now
            // (spec 4.2.4; RabbitMQ's reader does the same). A close from
            // the peer crossed ours: answer it, and keep the channel until
            // the close-ok for ours arrives, so that close-ok lands on a
            // channel we still know.
            if frame.kind == FrameKind::Method {
                match decode_method(&frame.payload) {
                    Ok(Method::Other(AMQPClass::Channel(channel::AMQPMethod::CloseOk(_)))) => {
                        channels.remove(&id);
                    }
                    Ok(Method::Other(AMQPClass::Channel(channel::AMQPMethod::Close(_)))) => {
                        self.send(id, AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})));
                    }
                    _ => {}
                }
            }
            return Ok(Next::Continue);
        }
        let result = self.handle_channel_frame(ch, frame);
        if let Err(e) = result {
            if e.scope == Scope::Connection {
                return Err(e);
            }
            self.close_channel_with(ch, e);
        }
        if ch.closed {
            channels.remove(&id);
        }
        Ok(Next::Continue)
    }

    fn handle_while_closing(&mut self, frame: Frame) -> Next {
        if frame.kind != FrameKind::Method || frame.channel != 0 {
            return Next::Continue;
        }
        match decode_method(&frame.payload) {
            Ok(Method::Other(AMQPClass::Connection(connection::AMQPMethod::CloseOk(_)))) => Next::Drop,
            Ok(Method::Other(AMQPClass::Connection(connection::AMQPMethod::Close(_)))) => {
                self.answer_close();
                Next::Continue
            }
            _ => Next::Continue,
        }
    }

    // ------------------------------------------------------------ handshake

    fn handle_handshake(&mut self, frame: Frame) -> AmqpResult<Next> {
        if frame.kind == FrameKind::Heartbeat {
            return Ok(Next::Continue);
        }
        let method = match (frame.kind, frame.channel, decode_method(&frame.payload)) {
            (FrameKind::Method, 0, Ok(Method::StartOk(ok))) if self.state == State::AwaitStartOk => {
                return self.handle_start_ok(ok)
            }
            (FrameKind::Method, 0, Ok(Method::Other(AMQPClass::Connection(m)))) => m,
            _ => {
                tracing::debug!(peer = %self.peer, "protocol violation during handshake");
                return Ok(Next::Drop);
            }
        };
        match (self.state, method) {
            (State::AwaitTuneOk, connection::AMQPMethod::TuneOk(ok)) => self.handle_tune_ok(ok),
            (State::AwaitOpen, connection::AMQPMethod::Open(open)) => self.handle_open(open),
            (_, connection::AMQPMethod::Close(_)) => {
                self.answer_close();
                Ok(Next::Continue)
            }
            _ => Ok(Next::Drop),
        }
    }

    fn handle_start_ok(&mut self, ok: codec::StartOk) -> AmqpResult<Next> {
        self.caps = ClientCapabilities::from_client_properties(&ok.client_properties);
        let mechanism = String::from_utf8_lossy(&ok.mechanism).into_owned();
        let credentials = match &ok.mechanism[..] {
            b"PLAIN" => parse_plain(&ok.response),
            b"AMQPLAIN" => parse_amqplain(&ok.response),
            _ => {
                tracing::info!(peer = %self.peer, mechanism, "unsupported authentication mechanism");
                return Ok(Next::Drop);
            }
        };
        let from_loopback = self.peer.ip().is_loopback();
        let user = match credentials {
            Some((user, pass)) => self.broker.authenticate(&user, &pass, from_loopback).map_err(|why| (user, why)),
            None => Err((String::new(), "malformed credentials")),
        };
        match user {
            Ok(u) => {
                self.user = u.name;
                self.state = State::AwaitTuneOk;
                self.send(
                    0,
                    AMQPClass::Connection(connection::AMQPMethod::Tune(connection::Tune {
                        channel_max: self.config.channel_max,
                        frame_max: self.config.frame_max,
                        heartbeat: self.config.heartbeat,
                    })),
                );
                Ok(Next::Continue)
            }
            Err((user, why)) => {
                tracing::warn!(peer = %self.peer, user, "login refused: {why}");
                if self.caps.authentication_failure_close {
                    // Enter Open-like closing so close-ok is awaited.
                    self.begin_close(AmqpError::access_refused(format!(
                        "Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."
                    )));
                    Ok(Next::Continue)
                } else {
                    Ok(Next::Drop)
                }
            }
        }
    }

    fn handle_tune_ok(&mut self, ok: connection::TuneOk) -> AmqpResult<Next> {
        let refused = negotiation_error("frame_max", ok.frame_max, self.config.frame_max, FRAME_MIN_SIZE)
            .or_else(|| negotiation_error("channel_max", ok.channel_max.into(), self.config.channel_max.into(), 1));
        if let Some(why) = refused {
            // RabbitMQ refuses these before the connection is open by closing
            // the socket without a word, and logs why; so do we.
            tracing::warn!(peer = %self.peer, "failed to negotiate connection parameters: {why}");
            return Ok(Next::Drop);
        }
        self.frame_max = ok.frame_max;
        self.channel_max = if ok.channel_max == 0 { self.config.channel_max } else { ok.channel_max };
        self.heartbeat = ok.heartbeat;
        self.state = State::AwaitOpen;
        Ok(Next::Continue)
    }

    fn handle_open(&mut self, open: connection::Open) -> AmqpResult<Next> {
        let name = open.virtual_host.as_str();
        match self.broker.vhost(name) {
            Some(_) if !self.broker.can_access_vhost(&self.user, name) => {
                self.state = State::Open;
                Err(AmqpError::not_allowed(format!("access to vhost '{name}' refused for user '{}'", self.user))
                    .during(10, 40))
            }
            Some(v) => {
                self.access = self.broker.access(&self.user, name);
                self.vhost = Some(v);
                self.state = State::Open;
                self.send(0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(connection::OpenOk {})));
                tracing::debug!(peer = %self.peer, user = %self.user, vhost = name, "connection open");
                Ok(Next::Continue)
            }
            None => {
                self.state = State::Open;
                Err(AmqpError::not_allowed(format!("vhost {name} not found")).during(10, 40))
            }
        }
    }

    // ----------------------------------------------------------- connection

    fn handle_connection_frame(&mut self, frame: Frame, channels: &mut FastMap<u16, Channel>) -> AmqpResult<Next> {
        if frame.kind != FrameKind::Method {
            return Err(unexpected_frame(&frame));
        }
        let method = match decode(&frame.payload) {
            Ok(m) => m,
            Err(Some(e)) => return Err(e),
            Err(None) => return Ok(Next::Drop),
        };
        match method {
            Method::Other(AMQPClass::Connection(m)) => match m {
                connection::AMQPMethod::Close(_) => {
                    self.cleanup(channels);
                    self.answer_close();
                    Ok(Next::Continue)
                }
                connection::AMQPMethod::CloseOk(_) => Ok(Next::Drop),
                connection::AMQPMethod::Blocked(_) | connection::AMQPMethod::Unblocked(_) => Ok(Next::Continue),
                connection::AMQPMethod::UpdateSecret(_) => {
                    self.send(
                        0,
                        AMQPClass::Connection(connection::AMQPMethod::UpdateSecretOk(connection::UpdateSecretOk {})),
                    );
                    Ok(Next::Continue)
                }
                _ => Err(AmqpError::channel_error("unexpected method in connection state running")
                    .during_method(&frame.payload)),
            },
            _ => {
                Err(AmqpError::channel_error("unexpected method in connection state running")
                    .during_method(&frame.payload))
            }
        }
    }

    // ------------------------------------------------------------- channels

    fn open_channel(&mut self, frame: Frame, channels: &mut FastMap<u16, Channel>) -> AmqpResult<()> {
        let id = frame.channel;
        let is_open = frame.kind == FrameKind::Method
            && matches!(
                decode_method(&frame.payload),
                Ok(Method::Other(AMQPClass::Channel(channel::AMQPMethod::Open(_))))
            );
        if !is_open {
            let e = AmqpError::channel_error("expected 'channel.open'");
            return Err(if frame.kind == FrameKind::Method { e.during_method(&frame.payload) } else { e });
        }
        // RabbitMQ's channel_max caps how many channels are open, not their numbers.
        if channels.len() >= self.channel_max as usize {
            return Err(AmqpError::not_allowed(format!(
                "number of channels opened ({}) has reached the negotiated channel_max ({})",
                channels.len(),
                self.channel_max
            )));
        }
        channels.insert(id, Channel::new(id));
        self.send(id, AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {})));
        Ok(())
    }

    /// Sends channel.close for a channel error and releases the channel's
    /// deliveries and consumers at once, as RabbitMQ does.
    fn close_channel_with(&mut self, ch: &mut Channel, err: AmqpError) {
        tracing::debug!(channel = ch.id, error = %err, "closing channel");
        self.send(
            ch.id,
            AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
                reply_code: err.code as u16,
                reply_text: short(err.text),
                class_id: err.class_id,
                method_id: err.method_id,
            })),
        );
        self.release_channel(ch);
        ch.closing = true;
    }

    /// Cancels a channel's consumers and requeues its unacknowledged
    /// deliveries in their original order.
    fn release_channel(&mut self, ch: &mut Channel) {
        ch.publish = None;
        ch.tx = None;
        if let Some((_, key)) = ch.reply_consumer.take() {
            self.broker.unregister_reply_target(&key);
        }
        for (tag, consumer) in ch.consumers.drain() {
            self.remove_consumer(&consumer.queue, ch.id, &tag);
        }
        let unacked: Vec<Unacked> = ch.unacked.drain(..).collect();
        self.settle_all(unacked, Settle::Requeue);
    }

    fn remove_consumer(&mut self, queue: &Arc<Queue>, channel: u16, tag: &str) {
        if let Some(removed) = queue.remove_consumer(self.id, ChannelId(channel), tag) {
            if removed.now_unused_auto_delete {
                if let Some(v) = &self.vhost {
                    v.remove_queue(queue);
                }
            }
        }
    }

    fn settle_all(&mut self, entries: Vec<Unacked>, how: Settle) {
        let Some(v) = self.vhost.clone() else { return };
        let kick = &mut self.kick;
        v.settle(
            entries.into_iter().map(|u| {
                if !kick.iter().any(|k| Arc::ptr_eq(k, &u.queue)) {
                    kick.push(Arc::clone(&u.queue));
                }
                Unsettled { queue: u.queue, consumer: u.consumer, message: u.message }
            }),
            how,
        );
    }

    fn mark_kick(&mut self, q: &Arc<Queue>) {
        if !self.kick.iter().any(|k| Arc::ptr_eq(k, q)) {
            self.kick.push(Arc::clone(q));
        }
    }

    fn vhost(&self) -> AmqpResult<Arc<Vhost>> {
        self.vhost.clone().ok_or_else(|| AmqpError::new(ReplyCode::InternalError, "no vhost on an open connection"))
    }

    fn handle_channel_frame(&mut self, ch: &mut Channel, frame: Frame) -> AmqpResult<()> {
        match frame.kind {
            FrameKind::Heartbeat => Err(unexpected_frame(&frame)),
            FrameKind::Header => self.handle_content_header(ch, frame.payload),
            FrameKind::Body => self.handle_content_body(ch, frame.payload),
            FrameKind::Method => {
                if let Some(p) = &ch.publish {
                    let text = if p.header.is_none() {
                        "expected content header for class 60, got non content header frame instead"
                    } else {
                        "expected content body, got non content body frame instead"
                    };
                    return Err(AmqpError::new(ReplyCode::UnexpectedFrame, text));
                }
                let method = match decode(&frame.payload) {
                    Ok(m) => m,
                    Err(Some(e)) => return Err(e),
                    Err(None) => {
                        self.drop_now = true;
                        return Ok(());
                    }
                };
                let (class_id, method_id) = method_ids(&frame.payload);
                // A method that may change durable definitions replies only
                // once every definition change issued so far is on disk.
                let store = self.broker.store().filter(|_| changes_definitions(class_id, method_id)).cloned();
                let floor = store.as_ref().map(|st| st.progress().resolved());
                let mark = self.wbuf.len();
                let mut wait = TicketRange::default();
                let result = self.handle_method(ch, method, &mut wait).map_err(|e| e.during(class_id, method_id));
                if let (Ok(()), Some(st), Some(floor)) = (&result, &store, floor) {
                    let issued = st.definitions_issued();
                    if issued > floor {
                        wait.merge(TicketRange { lo: floor + 1, hi: issued });
                    }
                }
                // Only declares, binds and commits set `undo`; it is left
                // at Nothing otherwise.
                if !wait.is_empty() {
                    let undo = std::mem::take(&mut self.undo);
                    if result.is_ok() {
                        self.hold = Some(Hold { from: mark, tickets: wait, channel: ch.id, class_id, method_id, undo });
                    }
                } else if !matches!(self.undo, Undo::Nothing) {
                    self.undo = Undo::Nothing;
                }
                result
            }
        }
    }

    fn handle_content_header(&mut self, ch: &mut Channel, payload: Bytes) -> AmqpResult<()> {
        let Some(p) = ch.publish.as_mut().filter(|p| p.header.is_none()) else {
            let text = if ch.publish.is_some() {
                "expected content body, got non content body frame instead"
            } else {
                "expected method frame, got non method frame instead"
            };
            return Err(AmqpError::new(ReplyCode::UnexpectedFrame, text));
        };
        let header = decode_content_header(&payload)
            .ok_or_else(|| AmqpError::new(ReplyCode::FrameError, "malformed content header frame"))?;
        if header.class_id != codec::CLASS_BASIC {
            return Err(AmqpError::new(
                ReplyCode::UnexpectedFrame,
                format!("expected content header for class 60, got one for class {} instead", header.class_id),
            ));
        }
        if header.body_size > MAX_MESSAGE_SIZE {
            ch.publish = None;
            return Err(AmqpError::precondition_failed(format!(
                "message size {} is larger than configured max size {}",
                header.body_size, MAX_MESSAGE_SIZE
            ))
            .during(60, 40));
        }
        p.header = Some((header.body_size, header.properties));
        if header.body_size == 0 {
            return self.complete_publish(ch);
        }
        Ok(())
    }

    fn handle_content_body(&mut self, ch: &mut Channel, payload: Bytes) -> AmqpResult<()> {
        let Some(p) = ch.publish.as_mut().filter(|p| p.header.is_some()) else {
            let text = if ch.publish.is_some() {
                "expected content header for class 60, got non content header frame instead"
            } else {
                "expected method frame, got non method frame instead"
            };
            return Err(AmqpError::new(ReplyCode::UnexpectedFrame, text));
        };
        let expected = p.header.as_ref().map(|h| h.0).unwrap_or(0);
        if p.body.len() as u64 + payload.len() as u64 > expected {
            return Err(AmqpError::new(
                ReplyCode::FrameError,
                format!("content body exceeds the declared size of {expected} bytes"),
            ));
        }
        p.body.push(payload);
        if p.body.len() as u64 == expected {
            return self.complete_publish(ch);
        }
        Ok(())
    }

    /// The content of a basic.publish is complete: route it.
    fn complete_publish(&mut self, ch: &mut Channel) -> AmqpResult<()> {
        let Some(p) = ch.publish.take() else { return Ok(()) };
        let (_, properties) = p.header.unwrap_or_default();
        let vhost = self.vhost()?;
        let accepted = vhost.accept_publish(Publish {
            exchange: p.exchange,
            routing_key: p.routing_key,
            properties,
            body: p.body.into_bytes(),
            mandatory: p.mandatory,
            immediate: p.immediate,
            user: &self.user,
            access: &mut self.access,
            reply_key: ch.reply_consumer.as_ref().map(|(_, key)| key.as_str()),
        })?;
        if let Some(ops) = ch.tx.as_mut() {
            let Accepted { message, mandatory, extra_keys, .. } = accepted;
            ops.push(TxOp::Publish { message, mandatory, extra_keys });
            return Ok(());
        }
        let outcome = self.route_and_enqueue(&vhost, accepted, ch.id)?;
        if ch.confirm {
            ch.track_confirm(outcome.tickets, outcome.rejected);
        }
        Ok(())
    }

    /// Routes an accepted publish (`Vhost::enqueue_accepted`) and writes
    /// basic.return for a mandatory message that reached no queue.
    fn route_and_enqueue(&mut self, vhost: &Vhost, accepted: Accepted, channel: u16) -> AmqpResult<Published> {
        let sink = Sink { replies: self.broker.reply_targets(), waker: Some(&self.outbox) };
        let out = vhost.enqueue_accepted(accepted, &sink)?;
        if let Some(message) = &out.returned {
            codec::write_return(
                &mut self.wbuf,
                channel,
                ReplyCode::NoRoute as u16,
                "NO_ROUTE",
                &message.exchange,
                &message.routing_key,
            );
            codec::write_content(&mut self.wbuf, channel, &message.properties, &message.body, self.frame_max);
        }
        Ok(out)
    }

    /// Runs one method. `wait` collects store tickets the reply must wait
    /// for (a commit's persistent messages).
    fn handle_method(&mut self, ch: &mut Channel, method: Method, wait: &mut TicketRange) -> AmqpResult<()> {
        match method {
            Method::Publish { exchange, routing_key, mandatory, immediate } => {
                self.is_publisher = true;
                ch.publish = Some(PendingPublish {
                    exchange,
                    routing_key,
                    mandatory,
                    immediate,
                    header: None,
                    body: BodyParts::Empty,
                });
                Ok(())
            }
            Method::Ack { delivery_tag, multiple } => self.settle(ch, delivery_tag, multiple, Settle::Ack),
            Method::Nack { delivery_tag, multiple, requeue } => {
                self.settle(ch, delivery_tag, multiple, if requeue { Settle::Requeue } else { Settle::Discard })
            }
            Method::Reject { delivery_tag, requeue } => {
                self.settle(ch, delivery_tag, false, if requeue { Settle::Requeue } else { Settle::Discard })
            }
            Method::Qos { prefetch_size, prefetch_count, global } => {
                if prefetch_size != 0 {
                    return Err(AmqpError::not_implemented(format!("prefetch_size!=0 ({prefetch_size})")));
                }
                if global {
                    ch.limit.limit.store(prefetch_count as u32, std::sync::atomic::Ordering::Release);
                    // A larger window may let every queue of this channel deliver more.
                    for c in ch.consumers.values() {
                        let q = Arc::clone(&c.queue);
                        self.mark_kick(&q);
                    }
                } else {
                    ch.consumer_prefetch = prefetch_count as u32;
                }
                self.send(ch.id, AMQPClass::Basic(basic::AMQPMethod::QosOk(basic::QosOk {})));
                Ok(())
            }
            Method::Other(AMQPClass::Tx(m)) => self.handle_tx(ch, m, wait),
            Method::StartOk(_) => Err(AmqpError::command_invalid("connection method on a non-zero channel")),
            Method::Other(class) => self.handle_other(ch, class),
        }
    }

    fn settle(&mut self, ch: &mut Channel, delivery_tag: u64, multiple: bool, how: Settle) -> AmqpResult<()> {
        if let Some(ops) = ch.tx.as_mut() {
            // RabbitMQ validates the tag at commit time, not now.
            ops.push(TxOp::Settle { delivery_tag, multiple, how });
            return Ok(());
        }
        self.settle_now(ch, delivery_tag, multiple, how)
    }

    fn settle_now(&mut self, ch: &mut Channel, delivery_tag: u64, multiple: bool, how: Settle) -> AmqpResult<()> {
        let entries = ch
            .take_unacked(delivery_tag, multiple)
            .ok_or_else(|| AmqpError::precondition_failed(format!("unknown delivery tag {delivery_tag}")))?;
        self.settle_all(entries, how);
        if ch.limit.limit.load(std::sync::atomic::Ordering::Acquire) != 0 {
            for c in ch.consumers.values() {
                let q = Arc::clone(&c.queue);
                self.mark_kick(&q);
            }
        }
        Ok(())
    }

    /// Resolves RabbitMQ's shortcut: an empty queue name means the queue
    /// this channel declared last.
    fn queue_name(ch: &Channel, name: &ShortString) -> AmqpResult<String> {
        if name.as_str().is_empty() {
            ch.last_queue.clone().ok_or_else(|| AmqpError::not_found("no previously declared queue"))
        } else {
            Ok(name.as_str().to_owned())
        }
    }

    fn handle_other(&mut self, ch: &mut Channel, class: AMQPClass) -> AmqpResult<()> {
        let id = ch.id;
        match class {
            AMQPClass::Channel(m) => match m {
                channel::AMQPMethod::Open(_) => Err(AmqpError::channel_error("second 'channel.open' seen")),
                channel::AMQPMethod::Close(_) => {
                    self.release_channel(ch);
                    ch.closed = true;
                    self.send(id, AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})));
                    Ok(())
                }
                channel::AMQPMethod::CloseOk(_) => Ok(()),
                channel::AMQPMethod::Flow(f) => {
                    if !f.active {
                        return Err(AmqpError::not_implemented("active=false"));
                    }
                    self.send(id, AMQPClass::Channel(channel::AMQPMethod::FlowOk(channel::FlowOk { active: true })));
                    Ok(())
                }
                channel::AMQPMethod::FlowOk(_) => Ok(()),
                _ => Err(AmqpError::command_invalid("unexpected channel method")),
            },
            AMQPClass::Access(access::AMQPMethod::Request(_)) => {
                self.send(id, AMQPClass::Access(access::AMQPMethod::RequestOk(access::RequestOk {})));
                Ok(())
            }
            AMQPClass::Exchange(m) => self.handle_exchange(ch, m),
            AMQPClass::Queue(m) => self.handle_queue(ch, m),
            AMQPClass::Basic(m) => self.handle_basic(ch, m),
            AMQPClass::Confirm(confirm::AMQPMethod::Select(sel)) => {
                if ch.tx.is_some() {
                    return Err(AmqpError::precondition_failed("cannot switch from tx to confirm mode"));
                }
                ch.confirm = true;
                if !sel.nowait {
                    self.send(id, AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})));
                }
                Ok(())
            }
            AMQPClass::Connection(_) => Err(AmqpError::command_invalid("connection method on a non-zero channel")),
            _ => Err(AmqpError::command_invalid("method not valid from a client")),
        }
    }

    fn handle_exchange(&mut self, ch: &mut Channel, m: exchange::AMQPMethod) -> AmqpResult<()> {
        let vhost = self.vhost()?;
        let id = ch.id;
        match m {
            exchange::AMQPMethod::Declare(d) => {
                let (name, kind) = (d.exchange.as_str(), d.kind.as_str());
                self.access.exchange_declare(&vhost, name, kind, d.passive, &d.arguments)?;
                let created = vhost.exchange_declare(ExchangeDeclare {
                    name: d.exchange.as_str(),
                    kind: d.kind.as_str(),
                    passive: d.passive,
                    durable: d.durable,
                    auto_delete: d.auto_delete,
                    internal: d.internal,
                    arguments: &d.arguments,
                })?;
                if created && d.durable {
                    self.undo = Undo::Exchange(d.exchange.as_str().to_owned());
                }
                if !d.nowait {
                    self.send(id, AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(exchange::DeclareOk {})));
                }
            }
            exchange::AMQPMethod::Delete(d) => {
                self.access.exchange_delete(d.exchange.as_str())?;
                vhost.exchange_delete(d.exchange.as_str(), d.if_unused)?;
                if !d.nowait {
                    self.send(id, AMQPClass::Exchange(exchange::AMQPMethod::DeleteOk(exchange::DeleteOk {})));
                }
            }
            exchange::AMQPMethod::Bind(b) => {
                let (dest, src) = (b.destination.as_str(), b.source.as_str());
                self.access.bind(&vhost, Resource::Exchange, dest, src, b.routing_key.as_str())?;
                if vhost.exchange_bind(dest, src, b.routing_key.as_str(), &b.arguments)? {
                    self.undo = Undo::Binding {
                        source: src.to_owned(),
                        destination: Destination::Exchange(dest.to_owned()),
                        routing_key: b.routing_key.as_str().to_owned(),
                        arguments: b.arguments.clone(),
                    };
                }
                if !b.nowait {
                    self.send(id, AMQPClass::Exchange(exchange::AMQPMethod::BindOk(exchange::BindOk {})));
                }
            }
            exchange::AMQPMethod::Unbind(b) => {
                let (dest, src) = (b.destination.as_str(), b.source.as_str());
                self.access.bind(&vhost, Resource::Exchange, dest, src, b.routing_key.as_str())?;
                vhost.exchange_unbind(
                    b.destination.as_str(),
                    b.source.as_str(),
                    b.routing_key.as_str(),
                    &b.arguments,
                )?;
                if !b.nowait {
                    self.send(id, AMQPClass::Exchange(exchange::AMQPMethod::UnbindOk(exchange::UnbindOk {})));
                }
            }
            _ => return Err(AmqpError::command_invalid("method not valid from a client")),
        }
        Ok(())
    }

    fn handle_queue(&mut self, ch: &mut Channel, m: queue::AMQPMethod) -> AmqpResult<()> {
        let vhost = self.vhost()?;
        let id = ch.id;
        let conn = self.id;
        match m {
            queue::AMQPMethod::Declare(d) => {
                // No empty-name shortcut here: RabbitMQ looks for a queue named ''.
                let name = d.queue.as_str().to_owned();
                if d.passive && self.broker.reply_target(&name).is_some() {
                    // A live direct reply-to address answers like a queue with its consumer.
                    let ok = queue::DeclareOk { queue: short(name), message_count: 0, consumer_count: 1 };
                    self.send(id, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(ok)));
                    return Ok(());
                }
                // A server-named queue is named here, so that its name can be
                // authorised before it exists, as RabbitMQ does.
                let server_named = name.is_empty() && !d.passive;
                let name = if server_named { generated_name("amq.gen") } else { name };
                self.access.queue_declare(&vhost, &name, server_named, d.passive, &d.arguments)?;
                let ok = vhost.queue_declare(QueueDeclare {
                    name: &name,
                    server_named,
                    passive: d.passive,
                    durable: d.durable,
                    exclusive: d.exclusive,
                    auto_delete: d.auto_delete,
                    arguments: &d.arguments,
                    connection_id: conn,
                })?;
                if d.exclusive && !d.passive {
                    if let Ok(q) = vhost.queue(&ok.name) {
                        if !self.exclusive_queues.iter().any(|e| Arc::ptr_eq(e, &q)) {
                            self.exclusive_queues.push(q);
                        }
                    }
                }
                if ok.created {
                    match vhost.queue(&ok.name) {
                        Ok(q) if q.durable => self.undo = Undo::Queue(q),
                        _ => {}
                    }
                }
                ch.last_queue = Some(ok.name.clone());
                if !d.nowait {
                    self.send(
                        id,
                        AMQPClass::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
                            queue: short(ok.name),
                            message_count: ok.message_count,
                            consumer_count: ok.consumer_count,
                        })),
                    );
                }
            }
            queue::AMQPMethod::Bind(b) => {
                let name = Self::queue_name(ch, &b.queue)?;
                // Another shortcut: an empty routing key with an empty queue
                // name binds with the queue's name.
                let rk = if b.routing_key.as_str().is_empty() && b.queue.as_str().is_empty() {
                    name.clone()
                } else {
                    b.routing_key.as_str().to_owned()
                };
                self.access.bind(&vhost, Resource::Queue, &name, b.exchange.as_str(), &rk)?;
                if vhost.queue_bind(&name, b.exchange.as_str(), &rk, &b.arguments, conn)? {
                    if let Ok(q) = vhost.queue(&name) {
                        self.undo = Undo::Binding {
                            source: b.exchange.as_str().to_owned(),
                            destination: Destination::Queue(q),
                            routing_key: rk.clone(),
                            arguments: b.arguments.clone(),
                        };
                    }
                }
                if !b.nowait {
                    self.send(id, AMQPClass::Queue(queue::AMQPMethod::BindOk(queue::BindOk {})));
                }
            }
            queue::AMQPMethod::Unbind(b) => {
                let name = Self::queue_name(ch, &b.queue)?;
                self.access.bind(&vhost, Resource::Queue, &name, b.exchange.as_str(), b.routing_key.as_str())?;
                vhost.queue_unbind(&name, b.exchange.as_str(), b.routing_key.as_str(), &b.arguments, conn)?;
                self.send(id, AMQPClass::Queue(queue::AMQPMethod::UnbindOk(queue::UnbindOk {})));
            }
            queue::AMQPMethod::Purge(p) => {
                let name = Self::queue_name(ch, &p.queue)?;
                self.access.queue_purge(&name)?;
                let n = vhost.queue_purge(&name, conn)?;
                if !p.nowait {
                    self.send(id, AMQPClass::Queue(queue::AMQPMethod::PurgeOk(queue::PurgeOk { message_count: n })));
                }
            }
            queue::AMQPMethod::Delete(d) => {
                let name = Self::queue_name(ch, &d.queue)?;
                self.access.queue_delete(&name)?;
                let n = vhost.queue_delete(&name, d.if_unused, d.if_empty, conn)?;
                self.exclusive_queues.retain(|q| !q.is_deleted());
                if !d.nowait {
                    self.send(id, AMQPClass::Queue(queue::AMQPMethod::DeleteOk(queue::DeleteOk { message_count: n })));
                }
            }
            _ => return Err(AmqpError::command_invalid("method not valid from a client")),
        }
        Ok(())
    }

    fn handle_basic(&mut self, ch: &mut Channel, m: basic::AMQPMethod) -> AmqpResult<()> {
        let vhost = self.vhost()?;
        let id = ch.id;
        match m {
            basic::AMQPMethod::Consume(c) => {
                let tag = if c.consumer_tag.as_str().is_empty() {
                    generated_name("amq.ctag")
                } else {
                    c.consumer_tag.as_str().to_owned()
                };
                if ch.consumers.contains_key(&tag) || ch.reply_consumer.as_ref().is_some_and(|r| r.0 == tag) {
                    return Err(AmqpError::not_allowed(format!("attempt to reuse consumer tag '{tag}'")));
                }
                if c.queue.as_str() == REPLY_TO {
                    if !c.no_ack {
                        return Err(AmqpError::precondition_failed("reply consumer cannot acknowledge"));
                    }
                    if ch.reply_consumer.is_some() {
                        return Err(AmqpError::precondition_failed("reply consumer already set"));
                    }
                    let key = self.broker.register_reply_target(ReplyTarget {
                        outbox: Arc::clone(&self.outbox),
                        channel: ChannelId(id),
                        consumer_tag: tag.clone(),
                    });
                    if let Some((_, old)) = ch.reply_consumer.replace((tag.clone(), key)) {
                        self.broker.unregister_reply_target(&old);
                    }
                    if !c.nowait {
                        let ok = basic::ConsumeOk { consumer_tag: short(tag) };
                        self.send(id, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(ok)));
                    }
                    return Ok(());
                }
                let name = Self::queue_name(ch, &c.queue)?;
                self.access.queue_read(&name)?;
                let q = vhost.queue(&name)?;
                q.check_exclusive(self.id)?;
                let consumer = Arc::new(Consumer::new(NewConsumer {
                    tag: tag.clone(),
                    channel: ChannelId(id),
                    connection_id: self.id,
                    queue: Arc::clone(&q),
                    no_ack: c.no_ack,
                    exclusive: c.exclusive,
                    priority: consumer_priority(&c.arguments, &name, &vhost.name)?,
                    prefetch: ch.consumer_prefetch,
                    channel_limit: Arc::clone(&ch.limit),
                    outbox: Arc::clone(&self.outbox),
                }));
                // consume-ok must precede the first delivery: it goes into the
                // write buffer now, deliveries only when the outbox drains.
                let mark = self.wbuf.len();
                if !c.nowait {
                    self.send(
                        id,
                        AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(basic::ConsumeOk {
                            consumer_tag: short(tag.clone()),
                        })),
                    );
                }
                if let Err(e) = q.add_consumer(Arc::clone(&consumer)) {
                    self.wbuf.truncate(mark);
                    return Err(e);
                }
                ch.consumers.insert(tag, consumer);
            }
            basic::AMQPMethod::Cancel(c) => {
                let tag = c.consumer_tag.as_str();
                if let Some(consumer) = ch.consumers.remove(tag) {
                    let q = Arc::clone(&consumer.queue);
                    self.remove_consumer(&q, id, tag);
                }
                if ch.reply_consumer.as_ref().is_some_and(|r| r.0 == tag) {
                    if let Some((_, key)) = ch.reply_consumer.take() {
                        self.broker.unregister_reply_target(&key);
                    }
                }
                if !c.nowait {
                    self.send(
                        id,
                        AMQPClass::Basic(basic::AMQPMethod::CancelOk(basic::CancelOk { consumer_tag: c.consumer_tag })),
                    );
                }
            }
            basic::AMQPMethod::Get(g) => {
                let name = Self::queue_name(ch, &g.queue)?;
                self.access.queue_read(&name)?;
                let q = vhost.queue(&name)?;
                q.check_exclusive(self.id)?;
                let mut dead = DeadLetters::default();
                let got = q.get(&mut dead);
                if !dead.is_empty() {
                    vhost.dead_letter(&q, dead);
                }
                match got {
                    Some((m, remaining)) => {
                        let tag = ch.take_delivery_tag();
                        codec::write_get_ok(
                            &mut self.wbuf,
                            id,
                            tag,
                            m.redelivered,
                            &m.message.exchange,
                            &m.message.routing_key,
                            remaining,
                        );
                        let props = delivery_properties(&q, &m);
                        codec::write_content(&mut self.wbuf, id, &props, &m.message.body, self.frame_max);
                        if g.no_ack {
                            q.log_ack(&m);
                        } else {
                            q.log_delivered(&m);
                            ch.unacked.push_back(Unacked { tag, queue: q, consumer: None, message: m });
                        }
                    }
                    None => self.send(id, AMQPClass::Basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {}))),
                }
            }
            basic::AMQPMethod::Recover(r) => {
                self.recover(ch, r.requeue)?;
                self.send(id, AMQPClass::Basic(basic::AMQPMethod::RecoverOk(basic::RecoverOk {})));
            }
            basic::AMQPMethod::RecoverAsync(r) => self.recover(ch, r.requeue)?,
            _ => return Err(AmqpError::command_invalid("method not valid from a client")),
        }
        Ok(())
    }

    fn recover(&mut self, ch: &mut Channel, requeue: bool) -> AmqpResult<()> {
        if !requeue {
            return Err(AmqpError::not_implemented("requeue=false"));
        }
        let unacked: Vec<Unacked> = ch.unacked.drain(..).collect();
        self.settle_all(unacked, Settle::Requeue);
        Ok(())
    }

    fn handle_tx(&mut self, ch: &mut Channel, m: tx::AMQPMethod, wait: &mut TicketRange) -> AmqpResult<()> {
        let id = ch.id;
        match m {
            tx::AMQPMethod::Select(_) => {
                if ch.confirm {
                    return Err(AmqpError::precondition_failed("cannot switch from confirm to tx mode"));
                }
                if ch.tx.is_none() {
                    ch.tx = Some(Vec::new());
                }
                self.send(id, AMQPClass::Tx(tx::AMQPMethod::SelectOk(tx::SelectOk {})));
            }
            tx::AMQPMethod::Commit(_) => {
                let Some(ops) = ch.tx.replace(Vec::new()) else {
                    return Err(AmqpError::precondition_failed("channel is not transactional"));
                };
                let vhost = self.vhost()?;
                for op in ops {
                    match op {
                        TxOp::Publish { message, mandatory, extra_keys } => {
                            // The exchange may have gone since the publish.
                            let Ok(x) = utf8(&message.exchange).and_then(|n| vhost.exchange(n)) else { continue };
                            let accepted = Accepted { exchange: x, message, extra_keys, mandatory };
                            let outcome = self.route_and_enqueue(&vhost, accepted, id)?;
                            // RabbitMQ answers commit-ok once persistent
                            // publishes are on disk: the reply is held.
                            wait.merge(outcome.tickets);
                        }
                        TxOp::Settle { delivery_tag, multiple, how } => {
                            self.settle_now(ch, delivery_tag, multiple, how)?;
                        }
                    }
                }
                if !wait.is_empty() {
                    self.undo = Undo::Commit;
                }
                self.send(id, AMQPClass::Tx(tx::AMQPMethod::CommitOk(tx::CommitOk {})));
            }
            tx::AMQPMethod::Rollback(_) => {
                if ch.tx.replace(Vec::new()).is_none() {
                    return Err(AmqpError::precondition_failed("channel is not transactional"));
                }
                self.send(id, AMQPClass::Tx(tx::AMQPMethod::RollbackOk(tx::RollbackOk {})));
            }
            _ => return Err(AmqpError::command_invalid("method not valid from a client")),
        }
        Ok(())
    }

    // ------------------------------------------------------ end of a batch

    /// Runs after each wake-up: releases (or takes back) a held reply,
    /// confirms this batch's publishes, returns credit to queues and moves
    /// deliveries from the outbox into the write buffer.
    pub(super) fn end_of_batch(&mut self, rbuf: &mut BytesMut, channels: &mut FastMap<u16, Channel>) -> Next {
        // Frames left unprocessed while the write buffer was full.
        if !rbuf.is_empty() && self.hold.is_none() && self.wbuf.len() < READ_STOP {
            if let Next::Drop = self.process_frames(rbuf, channels) {
                return Next::Drop;
            }
        }
        while let Some(h) = &self.hold {
            let outcome = self.broker.store().map_or(Outcome::Durable, |st| {
                let outcome = st.progress().outcome(h.tickets);
                if outcome != Outcome::Pending {
                    return outcome;
                }
                // Woken (through the outbox) when the writer resolves more;
                // asked again after registering, so no wake-up is lost.
                st.wake_when_resolved(std::task::Waker::from(Arc::clone(&self.outbox)));
                st.progress().outcome(h.tickets)
            });
            match outcome {
                // Nothing else goes out meanwhile: it would land behind the
                // held reply, which may yet be taken back.
                Outcome::Pending => return Next::Continue,
                Outcome::Durable => self.hold = None,
                Outcome::Failed => {
                    if let Some(h) = self.hold.take() {
                        self.wbuf.truncate(h.from);
                        self.take_back(h);
                    }
                }
            }
            // Frames that arrived behind the held reply.
            if let Next::Drop = self.process_frames(rbuf, channels) {
                return Next::Drop;
            }
        }
        let store = self.broker.store().cloned();
        let outcome = |t: TicketRange| store.as_ref().map_or(Outcome::Durable, |st| st.progress().outcome(t));
        for ch in channels.values_mut() {
            if !ch.confirm || ch.closing || ch.publish_seq == ch.confirmed_seq {
                continue;
            }
            for (upto, nack) in ch.confirmable(outcome) {
                if upto <= ch.confirmed_seq {
                    continue;
                }
                let multiple = !nack && upto - ch.confirmed_seq > 1;
                codec::write_confirm(&mut self.wbuf, ch.id, upto, multiple, nack);
                ch.confirmed_seq = upto;
            }
        }
        if self.state != State::Open {
            return Next::Continue;
        }
        for q in std::mem::take(&mut self.kick) {
            q.dispatch();
        }
        self.write_deliveries(channels);
        Next::Continue
    }

    /// A held reply's change could not be made durable: take it back where
    /// possible and close the connection with RabbitMQ's 541 (a hard error:
    /// the client must not go on as if the change had happened).
    fn take_back(&mut self, h: Hold) {
        let what = match &h.undo {
            Undo::Nothing => "the change could not be written to disk",
            Undo::Commit => "the transaction's persistent messages could not be written to disk",
            _ => "the declaration could not be written to disk and was undone",
        };
        if let Some(v) = self.vhost.clone() {
            match h.undo {
                Undo::Nothing | Undo::Commit => {}
                Undo::Exchange(name) => v.remove_exchange(&name),
                Undo::Queue(q) => {
                    v.remove_queue(&q);
                    self.exclusive_queues.retain(|e| !Arc::ptr_eq(e, &q));
                }
                Undo::Binding { source, destination, routing_key, arguments } => {
                    let _ = match destination {
                        Destination::Queue(q) => v.queue_unbind(&q.name, &source, &routing_key, &arguments, self.id),
                        Destination::Exchange(d) => v.exchange_unbind(&d, &source, &routing_key, &arguments),
                    };
                }
            }
        }
        tracing::warn!(peer = %self.peer, channel = h.channel, "{what}; closing the connection with 541");
        self.begin_close(
            AmqpError::new(ReplyCode::InternalError, format!("{what}; check the data directory's free space"))
                .during(h.class_id, h.method_id),
        );
    }

    fn write_deliveries(&mut self, channels: &mut FastMap<u16, Channel>) {
        loop {
            if self.wbuf.len() >= WRITE_BUFFER_CAP {
                return;
            }
            if self.backlog.is_empty() {
                self.outbox.drain_into(&mut self.scratch);
                if self.scratch.is_empty() {
                    break;
                }
                self.backlog.extend(self.scratch.drain(..));
            }
            let mut touched: Vec<Arc<Queue>> = Vec::new();
            while self.wbuf.len() < WRITE_BUFFER_CAP {
                let Some(item) = self.backlog.pop_front() else { break };
                match item {
                    OutboxItem::Deliver { consumer, message } => {
                        consumer.written();
                        if !touched.iter().any(|q| Arc::ptr_eq(q, &consumer.queue)) {
                            touched.push(Arc::clone(&consumer.queue));
                        }
                        // Cancel, channel close and queue deletion all
                        // deactivate the consumer, so one flag and one
                        // channel lookup tell whether it may still receive.
                        let ch = match channels.get_mut(&consumer.channel.get()) {
                            Some(ch) if consumer.is_active() && !ch.closing => {
                                debug_assert!(ch
                                    .consumers
                                    .get(&consumer.tag)
                                    .is_some_and(|c| Arc::ptr_eq(c, &consumer)));
                                ch
                            }
                            _ => {
                                // Cancelled or closed meanwhile: back it goes, never seen.
                                consumer.settled();
                                consumer.queue.requeue([message]);
                                continue;
                            }
                        };
                        let tag = ch.take_delivery_tag();
                        codec::write_deliver(
                            &mut self.wbuf,
                            ch.id,
                            consumer.tag.as_bytes(),
                            tag,
                            message.redelivered,
                            &message.message.exchange,
                            &message.message.routing_key,
                        );
                        let props = delivery_properties(&consumer.queue, &message);
                        codec::write_content(&mut self.wbuf, ch.id, &props, &message.message.body, self.frame_max);
                        if consumer.no_ack {
                            consumer.queue.log_ack(&message);
                        } else {
                            consumer.queue.log_delivered(&message);
                            let queue = Arc::clone(&consumer.queue);
                            ch.unacked.push_back(Unacked { tag, queue, consumer: Some(consumer), message });
                        }
                    }
                    OutboxItem::DirectReply { channel: ChannelId(chid), consumer_tag, message } => {
                        let Some(ch) = channels.get_mut(&chid) else { continue };
                        if ch.closing || ch.reply_consumer.as_ref().is_none_or(|r| r.0 != consumer_tag) {
                            continue;
                        }
                        let tag = ch.take_delivery_tag();
                        codec::write_deliver(
                            &mut self.wbuf,
                            chid,
                            consumer_tag.as_bytes(),
                            tag,
                            false,
                            &message.exchange,
                            &message.routing_key,
                        );
                        codec::write_content(&mut self.wbuf, chid, &message.properties, &message.body, self.frame_max);
                    }
                    OutboxItem::Cancel { channel: ChannelId(chid), consumer_tag } => {
                        if let Some(ch) = channels.get_mut(&chid) {
                            if ch.consumers.remove(&consumer_tag).is_some()
                                && self.caps.consumer_cancel_notify
                                && !ch.closing
                            {
                                self.send(
                                    chid,
                                    AMQPClass::Basic(basic::AMQPMethod::Cancel(basic::Cancel {
                                        consumer_tag: short(consumer_tag),
                                        nowait: true,
                                    })),
                                );
                            }
                        }
                    }
                }
            }
            // Those consumers have room again.
            for q in touched {
                q.dispatch();
            }
        }
    }

    /// Releases everything the connection holds: consumers, unacknowledged
    /// and undelivered messages (requeued), exclusive queues (deleted).
    pub(super) fn cleanup(&mut self, channels: &mut FastMap<u16, Channel>) {
        let ids: Vec<u16> = channels.keys().copied().collect();
        for id in ids {
            if let Some(mut ch) = channels.remove(&id) {
                self.release_channel(&mut ch);
            }
        }
        self.outbox.drain_into(&mut self.scratch);
        self.backlog.extend(self.scratch.drain(..));
        for item in self.backlog.drain(..) {
            if let OutboxItem::Deliver { consumer, message } = item {
                consumer.written();
                consumer.settled();
                consumer.queue.requeue([message]);
            }
        }
        if let Some(v) = self.vhost.clone() {
            for q in self.exclusive_queues.drain(..) {
                v.remove_queue(&q);
            }
        }
        self.kick.clear();
    }
}

/// RabbitMQ's check of a tune-ok value (rabbit_reader's
/// validate_negotiated_integer_value): at least `min` unless 0, and, when
/// we set a maximum, neither above it nor 0 ("no limit"). The text is the
/// one RabbitMQ logs.
fn negotiation_error(field: &str, client: u32, server: u32, min: u32) -> Option<String> {
    if client != 0 && client < min {
        return Some(format!("negotiated {field} = {client} is lower than the minimum allowed value ({min})"));
    }
    if server != 0 && (client == 0 || client > server) {
        let detail = if field == "channel_max" && client == 0 { " (no limit)" } else { "" };
        return Some(format!(
            "negotiated {field} = {client}{detail} is higher than the maximum allowed value ({server})"
        ));
    }
    None
}

/// The methods whose reply must wait until the definition changes made so
/// far are durable: declare, delete, bind and unbind of exchanges and queues.
fn changes_definitions(class_id: u16, method_id: u16) -> bool {
    matches!((class_id, method_id), (40, 10 | 20 | 30 | 40) | (50, 10 | 20 | 40 | 50))
}

/// RabbitMQ closes with 501 "cannot decode <<args>>" for malformed method
/// arguments. An unknown class or method it does not answer at all: the
/// socket is dropped (`None`).
fn decode_error(e: DecodeError, payload: &Bytes) -> Option<AmqpError> {
    match e {
        DecodeError::UnknownMethod { .. } => None,
        // RabbitMQ decodes tables of any depth; we refuse past
        // MAX_DECODE_DEPTH, as a channel error so that the connection and
        // its other channels carry on (a connection-class method can only
        // fail its connection).
        DecodeError::TooDeep { class_id, method_id, key } => {
            let mut err = AmqpError::precondition_failed(format!(
                "field table argument '{key}' nested deeper than {} levels",
                table::MAX_DECODE_DEPTH
            ))
            .during(class_id, method_id);
            if class_id == 10 {
                err.scope = Scope::Connection;
            }
            Some(err)
        }
        DecodeError::Malformed { class_id, method_id } => {
            let args = payload.get(4..).unwrap_or_default();
            Some(
                AmqpError::new(ReplyCode::FrameError, format!("cannot decode {}", erlang_binary(args)))
                    .during(class_id, method_id),
            )
        }
    }
}

/// The properties a delivery carries: the publisher's bytes, except that a
/// quorum queue sets `x-delivery-count` as RabbitMQ's do (in place if the
/// publisher sent one, else appended: `rabbit_basic:add_header`). Every
/// other header keeps its bytes, at any depth.
fn delivery_properties(q: &Queue, m: &QueuedMessage) -> Bytes {
    let props = &m.message.properties;
    if !q.is_quorum() {
        return props.clone();
    }
    let scan = PropertyScan::new(props);
    let mut count = Vec::with_capacity(9);
    table::put_long(&mut count, m.delivery_count as i64);
    match properties::edit_headers(props, &scan, &[Edit::Set(b"x-delivery-count", &count)], &[]) {
        Some(edited) => Bytes::from(edited),
        None => props.clone(),
    }
}

/// RabbitMQ's 505 for a frame that makes no sense where it arrived.
fn unexpected_frame(frame: &Frame) -> AmqpError {
    let kind = match frame.kind {
        FrameKind::Method => 1,
        FrameKind::Header => 2,
        FrameKind::Body => 3,
        FrameKind::Heartbeat => 8,
    };
    let which = if frame.payload.len() > 16 { "first" } else { "all" };
    let snippet = &frame.payload[..frame.payload.len().min(16)];
    AmqpError::new(ReplyCode::UnexpectedFrame, format!("type {kind}, {which} octets = {}", erlang_binary(snippet)))
}

impl AmqpError {
    fn during_method(self, payload: &Bytes) -> Self {
        let (c, m) = method_ids(payload);
        self.during(c, m)
    }
}

fn method_ids(payload: &Bytes) -> (u16, u16) {
    if payload.len() < 4 {
        return (0, 0);
    }
    (u16::from_be_bytes([payload[0], payload[1]]), u16::from_be_bytes([payload[2], payload[3]]))
}

/// PLAIN: `authzid \0 user \0 password`.
fn parse_plain(response: &[u8]) -> Option<(String, String)> {
    let mut parts = response.split(|b| *b == 0);
    let _authzid = parts.next()?;
    let user = parts.next()?;
    let pass = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    Some((String::from_utf8(user.to_vec()).ok()?, String::from_utf8(pass.to_vec()).ok()?))
}

/// AMQPLAIN: a field table without its length prefix, holding LOGIN and
/// PASSWORD as long strings (the first of each, as RabbitMQ reads them).
/// Walked iteratively and read one level deep: it arrives before login.
fn parse_amqplain(response: &[u8]) -> Option<(String, String)> {
    let mut login = None;
    let mut password = None;
    for entry in table::entries(response) {
        let e = entry.ok()?;
        table::walk_value(e.tag, e.value, usize::MAX).ok()?;
        let slot = match e.key {
            b"LOGIN" => &mut login,
            b"PASSWORD" => &mut password,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(table::long_string(e.tag, e.value));
        }
    }
    let text = |v: Option<Option<&[u8]>>| String::from_utf8(v??.to_vec()).ok();
    Some((text(login)?, text(password)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tune_ok_values_are_checked_as_rabbitmq_checks_them() {
        // Texts as RabbitMQ 3.10 logs them for the same tune-ok values.
        assert_eq!(
            negotiation_error("channel_max", 2048, 2047, 1).as_deref(),
            Some("negotiated channel_max = 2048 is higher than the maximum allowed value (2047)")
        );
        assert_eq!(
            negotiation_error("channel_max", 0, 2047, 1).as_deref(),
            Some("negotiated channel_max = 0 (no limit) is higher than the maximum allowed value (2047)")
        );
        assert_eq!(
            negotiation_error("frame_max", 0, 131072, 4096).as_deref(),
            Some("negotiated frame_max = 0 is higher than the maximum allowed value (131072)")
        );
        assert_eq!(
            negotiation_error("frame_max", 4095, 131072, 4096).as_deref(),
            Some("negotiated frame_max = 4095 is lower than the minimum allowed value (4096)")
        );
        assert_eq!(negotiation_error("frame_max", 4096, 131072, 4096), None);
        assert_eq!(negotiation_error("channel_max", 1, 2047, 1), None);
        assert_eq!(negotiation_error("channel_max", 0, 0, 1), None, "no server limit: 0 is fine");
    }

    #[test]
    fn plain_and_amqplain_credentials() {
        assert_eq!(parse_plain(b"\0guest\0guest"), Some(("guest".into(), "guest".into())));
        assert_eq!(parse_plain(b"guest"), None);
        assert_eq!(parse_plain(b"\0a\0b\0c"), None);
        // LOGIN (S) "guest", PASSWORD (S) "pw"
        let mut t = Vec::new();
        for (k, v) in [("LOGIN", "guest"), ("PASSWORD", "pw")] {
            t.push(k.len() as u8);
            t.extend_from_slice(k.as_bytes());
            t.push(b'S');
            t.extend_from_slice(&(v.len() as u32).to_be_bytes());
            t.extend_from_slice(v.as_bytes());
        }
        assert_eq!(parse_amqplain(&t), Some(("guest".into(), "pw".into())));
        assert_eq!(parse_amqplain(&t[..5]), None);
        // Read one level deep, the first of duplicates, at any nesting,
        // on a small stack: it arrives before login.
        let mut deep = t.clone();
        deep.extend_from_slice(b"\x05LOGINS\x00\x00\x00\x01x\x04deepF");
        deep.extend(crate::wire::table::tests_support::nested_tables(100_000));
        let got = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || parse_amqplain(&deep))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(got, Some(("guest".into(), "pw".into())));
        let mut bad = t.clone();
        bad.extend_from_slice(b"\x01kF\x00\x00\x00\x03\x01jZ");
        assert_eq!(parse_amqplain(&bad), None, "a malformed nested value");
    }
}
