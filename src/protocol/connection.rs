//! One client connection as a state machine without I/O (quinn-proto's
//! shape): bytes and `now` go in through the `handle_*` calls; what to
//! write comes out through `transmit` / `poll_transmit`, and when to be
//! called again through `poll_timeout`. `driver.rs` runs one over a socket,
//! `harness.rs` over byte literals and a manual clock.
//!
//! Each call ends a batch: every complete frame the connection may run now
//! is run (channels live here: no hop per message), then held replies,
//! confirms and deliveries (`deliveries.rs`) fill the write buffer, which
//! goes out in as few writes as the socket takes.
//!
//! Phases: `Header` → `Handshake` (start-ok, tune-ok, open) → `Open` →
//! `Closing` (we sent connection.close) or `Draining` (we answered the
//! peer's close, or the stream lost its framing) → `Ended`. Each phase
//! that waits for the peer carries its deadline.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amq_protocol::protocol::{channel, connection, AMQPClass};
use bytes::BytesMut;

use super::channel::{Channel, ChannelState};
use super::codec::{self, decode_method, Method};
use super::deliveries::{Hold, Undo};
use super::errors::{decode, short, unexpected_frame};
use super::frame::{split_frame, Frame, FrameKind};
use super::handshake::{is_supported_header, ClientCapabilities, Step, PRE_TUNE_FRAME_MAX, PROTOCOL_HEADER};
use crate::broker::alarms::AlarmSet;
use crate::broker::consumer::{Outbox, OutboxItem};
use crate::broker::exchange::Exchange;
use crate::broker::permissions::Access;
use crate::broker::queue::Queue;
use crate::broker::registry::{
    CloseRequest, ConnectionEntry, ConnectionFault, ConnectionState, NewConnection, Registration,
};
use crate::broker::stats::MessageCounts;
use crate::broker::vhost::Vhost;
use crate::broker::{AmqpError, AmqpResult, Broker, FastMap, ReplyCode, Scope};
use crate::clock::Clock;
use crate::ids::{ChannelId, ConnectionId};
use crate::Config;

/// How long we wait for close-ok after sending connection.close, and how
/// long we keep reading (and dropping) what a peer sends after we answered
/// its connection.close, so its late writes do not fail before it has read
/// our close-ok (RabbitMQ waits for the peer to close first, too).
pub(super) const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Above this many buffered outgoing bytes we stop taking deliveries from the
/// outbox; consumers then run out of credit and queues hold their messages.
pub(super) const WRITE_BUFFER_CAP: usize = 256 * 1024;
/// Above this many we also stop reading the socket and handling frames:
/// whatever a peer's frames make us write (returns, get-ok, confirms,
/// replies) waits until it reads. Higher than the delivery cap, so a
/// consumer whose deliveries filled the buffer is still read (its acks are
/// what frees it) unless replies pile up on top.
pub(super) const READ_STOP: usize = 2 * WRITE_BUFFER_CAP;

pub(super) type Channels = FastMap<ChannelId, Channel>;

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for the 8-byte protocol header.
    Header {
        deadline: Instant,
    },
    /// connection.start went out; waiting for `step`.
    Handshake {
        step: Step,
        deadline: Instant,
    },
    Open,
    /// We sent connection.close; only close and close-ok matter now.
    Closing {
        deadline: Instant,
    },
    /// Our last words are queued (close-ok for the peer's close, or our
    /// close after a framing error): flush, half-close, then read and drop
    /// whatever still arrives until the peer closes or `deadline` passes.
    Draining {
        deadline: Instant,
        was: Was,
    },
    /// A handshake failed (a bad login, mechanism or tune-ok): nothing is
    /// read or sent until `deadline`, then the socket is reset. RabbitMQ's
    /// silent close: a client guessing passwords gets one try per
    /// `SILENT_CLOSE_DELAY`, and sees what RabbitMQ's clients see.
    SilentClose {
        deadline: Instant,
    },
    /// Over: what may go out is written, then the socket is closed.
    Ended,
}

/// How long a failed handshake is held before its socket is reset
/// (RabbitMQ's `?SILENT_CLOSE_DELAY`).
pub(super) const SILENT_CLOSE_DELAY: std::time::Duration = std::time::Duration::from_secs(3);

/// The phase a connection drained from, whose other timers still run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Was {
    Handshake { deadline: Instant },
    Open,
    Closing,
}

/// Something other than bytes that the connection reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The outbox was pushed to (deliveries, cancels, direct replies), or
    /// the store resolved writes a held reply waits for.
    OutboxWoken,
    /// The resource alarms changed: publishers are blocked while any is on.
    Alarms(AlarmSet),
    /// The broker is shutting down: close with 320 CONNECTION_FORCED.
    Shutdown,
    /// Someone asked this connection to close (`Broker::close_connection`):
    /// close with 320 `CONNECTION_FORCED - <reason>`, the reason taken from
    /// the connection's registry entry.
    ForceClose,
    /// Fault injection handed the registry entry faults to apply
    /// (`ConnectionEntry::inject`).
    Faults,
    /// The socket is gone (end of stream, or a read or write failed).
    Closed,
}

/// What a new connection is given.
pub struct ConnectionParams {
    pub broker: Arc<Broker>,
    pub config: Arc<Config>,
    pub peer: SocketAddr,
    /// Our end of the socket (the connection's name shows both).
    pub local: SocketAddr,
    /// The alarms on when the connection starts.
    pub alarms: AlarmSet,
    /// What the TLS handshake told us; `None` on the plain listener.
    pub tls: Option<TlsPeer>,
    /// The clock of the socket's own timers: heartbeats, the handshake and
    /// close deadlines, a token's expiry. The server gives the real clock
    /// even when broker time is virtual (`--clock manual`), since a client's
    /// heartbeat timer runs on real time; the socket-free harness gives the
    /// broker's manual clock, so that its tests never sleep.
    pub wire_clock: Clock,
}

/// A TLS connection's session, as far as AMQP cares.
#[derive(Clone, Debug)]
pub struct TlsPeer {
    /// The listener verifies client certificates, so EXTERNAL is offered.
    pub external_offered: bool,
    /// The user name in the client's certificate (per
    /// `ssl_cert_login_from`), or why there is none.
    pub cert_login: Result<String, String>,
    /// What the management API shows of it.
    pub info: crate::broker::registry::TlsInfo,
}

/// A client connection, from its protocol header to its end.
pub struct Connection {
    session: Session,
    channels: Channels,
    /// Bytes read and not yet handled: at most a partial frame, or frames
    /// that wait for the write buffer to drain or a held reply.
    input: BytesMut,
}

/// Connection-wide state the channel handlers need alongside a `&mut Channel`.
pub(super) struct Session {
    /// The clock `now` comes from (`ConnectionParams::wire_clock`).
    pub(super) wire_clock: Clock,
    pub(super) id: ConnectionId,
    pub(super) broker: Arc<Broker>,
    pub(super) config: Arc<Config>,
    pub(super) peer: SocketAddr,
    pub(super) phase: Phase,
    /// Lists the connection in the broker's registry until dropped.
    pub(super) registration: Registration,
    /// Message counts of the current batch, added to the broker's and the
    /// vhost's totals when it ends (`leave`).
    pub(super) counts: MessageCounts,
    /// The exchange published to in this batch, with its publish_in and
    /// publish_out counts not yet added to it.
    pub(super) exchange_counts: Option<(Arc<Exchange>, u64, u64)>,
    /// A frame was handled, or a delivery or confirm written, since the
    /// channels' numbers were last published: only then are they looked at
    /// again (most calls are write completions and wake-ups that change
    /// nothing).
    pub(super) stats_dirty: bool,
    pub(super) vhost: Option<Arc<Vhost>>,
    pub(super) user: String,
    pub(super) tls: Option<TlsPeer>,
    /// The user's permissions in `vhost` (none until connection.open).
    pub(super) access: Access,
    /// The OAuth 2.0 token of a token login (`token.rs`), and when it expires.
    pub(super) token: Option<Arc<crate::broker::oauth2::Token>>,
    /// The token's `exp` in Unix milliseconds of broker time.
    pub(super) token_expires_ms: Option<u64>,
    pub(super) frame_max: u32,
    pub(super) channel_max: u16,
    pub(super) heartbeat: u16,
    pub(super) caps: ClientCapabilities,
    pub(super) wbuf: BytesMut,
    pub(super) outbox: Arc<Outbox>,
    /// Deliveries taken from the outbox but not yet written (write buffer full).
    pub(super) backlog: VecDeque<OutboxItem>,
    pub(super) scratch: Vec<OutboxItem>,
    /// Queues whose consumers got credit back during this batch.
    pub(super) kick: Vec<Arc<Queue>>,
    pub(super) exclusive_queues: Vec<Arc<Queue>>,
    /// A reply written but held back until the store has made the change
    /// behind it durable; no further frames are handled meanwhile.
    pub(super) hold: Option<Hold>,
    /// What to take back if the change the current method made cannot be
    /// made durable (set by the method's handler).
    pub(super) undo: Undo,
    /// Has published: the memory alarm blocks this connection.
    pub(super) is_publisher: bool,
    /// We sent connection.blocked and owe an unblocked.
    told_blocked: bool,
    alarms: AlarmSet,
    /// Blocked by fault injection, with this reason, as if by an alarm.
    injected_block: Option<String>,
    /// The time of the call being handled (deadlines are set from it).
    pub(super) now: Instant,
    /// When the peer was last heard from (or, while we do not read it, now:
    /// a peer we do not read is not expected to be heard from).
    last_read: Instant,
    /// When output last went out: a heartbeat is due half an interval later.
    last_write: Instant,
    /// Ended by a silent close: the socket is reset, not closed.
    reset: bool,
}

/// What the read loop should do after a frame.
pub(super) enum Next {
    Continue,
    /// Stop now (protocol violation during the handshake, close-ok received).
    Drop,
}

impl Connection {
    /// A connection whose socket was just accepted. Its timers read
    /// `params.wire_clock`.
    pub fn new(params: ConnectionParams) -> Connection {
        let now = params.wire_clock.now();
        Connection { session: Session::new(params, now), channels: Channels::default(), input: BytesMut::new() }
    }

    pub fn id(&self) -> ConnectionId {
        self.session.id
    }

    /// The clock of this connection's timers (`ConnectionParams::wire_clock`).
    pub fn clock(&self) -> &Clock {
        &self.session.wire_clock
    }

    /// Whether a move of a virtual broker clock can make a timer of this
    /// connection due: its token expires in broker time, not socket time.
    pub fn waits_on_broker_time(&self) -> bool {
        self.session.token_expires_ms.is_some() && self.session.broker.clock().is_manual()
    }

    /// Where deliveries for this connection are pushed; the driver waits on
    /// its `Notify` and reports `Event::OutboxWoken`.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.session.outbox
    }

    /// This connection's entry in the broker's registry: the driver counts
    /// socket bytes into it and waits on its close request.
    pub fn registry_entry(&self) -> &Arc<ConnectionEntry> {
        self.session.registration.entry()
    }

    /// The read buffer to read into (followed by `handle_read`), and what
    /// may be written now: disjoint borrows, so one `select!` can poll both.
    pub fn io(&mut self) -> (&mut BytesMut, &[u8]) {
        let n = self.session.writable();
        (&mut self.input, &self.session.wbuf[..n])
    }

    /// `data` arrived: it is taken (without a copy when nothing older is
    /// waiting), and handled as `handle_read` does.
    pub fn handle_bytes(&mut self, data: &mut BytesMut, now: Instant) {
        self.input.unsplit(data.split());
        self.handle_read(now);
    }

    /// Bytes were read into the buffer `io` lent: runs every complete frame
    /// that may run now and ends the batch.
    pub fn handle_read(&mut self, now: Instant) {
        if self.enter(now) {
            return;
        }
        self.session.last_read = now;
        if let Phase::Header { .. } = self.session.phase {
            if self.input.len() < PROTOCOL_HEADER.len() {
                return self.leave();
            }
            let header = self.input.split_to(PROTOCOL_HEADER.len());
            if !is_supported_header(&header) {
                tracing::debug!(peer = %self.session.peer, ?header, "refusing unsupported protocol header");
                self.session.wbuf.extend_from_slice(PROTOCOL_HEADER);
                self.session.phase = Phase::Ended;
                return self.leave();
            }
            self.session.send_start();
            self.session.phase =
                Phase::Handshake { step: Step::StartOk, deadline: now + self.session.config.handshake_timeout };
        }
        if let Next::Drop = self.session.process_frames(&mut self.input, &mut self.channels) {
            self.session.drop_connection();
            return self.leave();
        }
        self.end_batch();
    }

    pub fn handle_event(&mut self, event: Event, now: Instant) {
        if self.enter(now) {
            return;
        }
        let s = &mut self.session;
        match event {
            Event::OutboxWoken => {}
            Event::Alarms(set) => {
                s.alarms = set;
                s.blocking_changed();
            }
            Event::Faults => {
                for fault in s.registration.entry().take_faults() {
                    match fault {
                        ConnectionFault::CloseChannel(number, code, text) => {
                            if let Some(ch) = self.channels.get_mut(&ChannelId(number)) {
                                if ch.state == ChannelState::Open {
                                    s.close_channel_with(ch, AmqpError::new(code, text));
                                }
                            }
                        }
                        ConnectionFault::Block(reason) => {
                            s.injected_block = Some(reason);
                            s.blocking_changed();
                        }
                        ConnectionFault::Unblock => {
                            s.injected_block = None;
                            s.blocking_changed();
                        }
                    }
                }
            }
            Event::Shutdown => s.force_close("broker forced connection closure with reason 'shutdown'"),
            Event::ForceClose => match s.registration.entry().take_close_request() {
                Some(CloseRequest::WithCode(code, text)) => s.close_with(code, &text),
                Some(CloseRequest::Drop) => s.drop_now(),
                Some(CloseRequest::Forced(reason)) => s.force_close(&reason),
                None => s.force_close("Closed via management plugin"),
            },
            Event::Closed => s.phase = Phase::Ended,
        }
        self.end_batch();
    }

    /// What may be written now: everything but a held reply.
    pub fn transmit(&self) -> &[u8] {
        &self.session.wbuf[..self.session.writable()]
    }

    /// The first `n` bytes of `transmit` went out.
    pub fn handle_written(&mut self, n: usize, now: Instant) {
        if self.enter(now) {
            return;
        }
        self.session.advance_written(n);
        self.end_batch();
    }

    /// Moves what may be written now to the end of `out`, as to a peer that
    /// reads at once (the harness and the fuzz target). Ends no batch.
    pub fn poll_transmit(&mut self, out: &mut BytesMut, now: Instant) {
        let n = self.session.writable();
        if n > 0 {
            self.session.now = now;
            out.unsplit(self.session.wbuf.split_to(n));
            if let Some(h) = self.session.hold.as_mut() {
                h.from -= n;
            }
            self.session.last_write = now;
        }
    }

    /// When `handle_timeout` is next due: a heartbeat to send or missed,
    /// the handshake or the close deadline. `None`: no timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }

    /// Runs the timers due at `now` (nothing if none is).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.enter(now) {
            return;
        }
        if self.session.poll_timeout().is_some_and(|due| now >= due) {
            self.session.on_timeout(now);
        }
        self.end_batch();
    }

    /// Whether to read the socket now: not while a publisher is blocked by
    /// an alarm, nor while replies pile up unread or one waits for the disk.
    pub fn wants_read(&self) -> bool {
        self.session.wants_read()
    }

    /// Whether an outbox wake-up would let deliveries be written now.
    pub fn wants_deliveries(&self) -> bool {
        self.session.wbuf.len() < WRITE_BUFFER_CAP && self.session.state_open()
    }

    /// Our last words are out: time to half-close the socket (and keep
    /// reading until the peer closes).
    pub fn wants_half_close(&self) -> bool {
        self.is_draining() && self.session.wbuf.is_empty()
    }

    /// The connection answered a close or hit a framing error, and only
    /// drains input now.
    pub fn is_draining(&self) -> bool {
        self.session.is_draining()
    }

    /// The connection is over: write `transmit`, then close the socket.
    pub fn is_ended(&self) -> bool {
        self.session.phase == Phase::Ended
    }

    /// A failed handshake waits out the silent close: nothing more is read
    /// or sent, and the socket is reset at its deadline.
    pub fn is_silently_closing(&self) -> bool {
        matches!(self.session.phase, Phase::SilentClose { .. })
    }

    /// Over after a silent close: reset the socket (RabbitMQ's sockets
    /// linger 0) instead of closing it.
    pub fn wants_reset(&self) -> bool {
        self.is_ended() && self.session.reset
    }

    /// The start of every call. True if the connection is over already.
    fn enter(&mut self, now: Instant) -> bool {
        if self.is_ended() {
            return true;
        }
        self.session.now = now;
        self.session.refresh_read_clock();
        false
    }

    /// The end of a batch, then `leave`.
    fn end_batch(&mut self) {
        if !self.is_ended() {
            if let Next::Drop = self.session.end_of_batch(&mut self.input, &mut self.channels) {
                self.session.drop_connection();
            }
        }
        let s = &mut self.session;
        // A connection that starts publishing while an alarm is on learns
        // it is blocked too.
        if s.phase != Phase::Ended
            && s.is_publisher
            && !s.told_blocked
            && s.caps.connection_blocked
            && s.state_open()
            && s.blocking()
        {
            s.told_blocked = true;
            s.send_blocked();
        }
        self.leave();
    }

    /// The end of every call: an ended connection lets go of everything
    /// at once (a driver may still spend a second writing its last words).
    fn leave(&mut self) {
        if self.is_ended() {
            self.input.clear();
            self.session.cleanup(&mut self.channels);
        } else {
            self.session.refresh_read_clock();
        }
        self.session.publish_stats(&self.channels);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.session.cleanup(&mut self.channels);
    }
}

impl Session {
    fn new(params: ConnectionParams, now: Instant) -> Session {
        let ConnectionParams { broker, config, peer, local, alarms, tls, wire_clock } = params;
        let id = broker.next_connection_id();
        let handshake_deadline = now + config.handshake_timeout;
        let registration = broker.registry().register(NewConnection {
            id,
            peer,
            local,
            connected_at: broker.clock().unix_millis(),
            tls: tls.as_ref().map(|t| t.info.clone()),
        });
        Session {
            id,
            registration,
            counts: MessageCounts::default(),
            exchange_counts: None,
            stats_dirty: false,
            frame_max: config.frame_max,
            channel_max: config.channel_max,
            heartbeat: 0,
            config,
            peer,
            phase: Phase::Header { deadline: handshake_deadline },
            tls,
            vhost: None,
            user: String::new(),
            access: broker.access("", ""),
            token: None,
            token_expires_ms: None,
            wire_clock,
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
            hold: None,
            undo: Undo::Nothing,
            is_publisher: false,
            told_blocked: false,
            injected_block: None,
            alarms,
            now,
            last_read: now,
            last_write: now,
            reset: false,
        }
    }

    /// Closes with 320 CONNECTION_FORCED (broker shutdown, or a close asked
    /// for through the registry); a connection not open yet just ends.
    pub(super) fn force_close(&mut self, reason: &str) {
        self.close_with(ReplyCode::ConnectionForced, reason);
    }

    /// Ends at once with nothing more written, not even a close frame: the
    /// socket just closes, as when a broker dies (an injected fault).
    pub(super) fn drop_now(&mut self) {
        self.hold = None;
        self.wbuf.clear();
        self.phase = Phase::Ended;
    }

    /// As `force_close`, with another connection-level code.
    pub(super) fn close_with(&mut self, code: ReplyCode, reason: &str) {
        match self.phase {
            Phase::Open => {
                // A held reply never goes out: the client gets the
                // close instead of an ok that was not yet true.
                if let Some(h) = self.hold.take() {
                    self.wbuf.truncate(h.from);
                }
                self.begin_close(AmqpError::new(code, reason));
            }
            Phase::Header { .. } | Phase::Handshake { .. } | Phase::SilentClose { .. } => self.phase = Phase::Ended,
            Phase::Closing { .. } | Phase::Draining { .. } | Phase::Ended => {}
        }
    }

    /// The end of every call: what the registry shows of this connection
    /// and its channels (each stored only if it changed), and the batch's
    /// message counts added to the totals.
    fn publish_stats(&mut self, channels: &Channels) {
        let state = match self.phase {
            Phase::Header { .. } | Phase::Handshake { step: Step::StartOk, .. } => ConnectionState::Starting,
            Phase::Handshake { step: Step::TuneOk, .. } => ConnectionState::Tuning,
            Phase::Handshake { step: Step::Open, .. } => ConnectionState::Opening,
            Phase::Open if self.blocking() && self.is_publisher => ConnectionState::Blocked,
            Phase::Open if self.blocking() => ConnectionState::Blocking,
            Phase::Open => ConnectionState::Running,
            Phase::Closing { .. } | Phase::Draining { .. } | Phase::SilentClose { .. } | Phase::Ended => {
                ConnectionState::Closing
            }
        };
        self.registration.entry().set_state(state);
        self.flush_exchange_counts();
        if !self.counts.is_zero() {
            let counts = std::mem::take(&mut self.counts);
            self.broker.add_message_counts(self.vhost.as_deref(), &counts);
        }
        if std::mem::take(&mut self.stats_dirty) {
            for ch in channels.values() {
                ch.publish_stats();
            }
        }
    }

    /// How much of the write buffer may go out now (not a held reply).
    pub(super) fn writable(&self) -> usize {
        self.hold.as_ref().map_or(self.wbuf.len(), |h| h.from)
    }

    fn advance_written(&mut self, n: usize) {
        bytes::Buf::advance(&mut self.wbuf, n);
        if let Some(h) = self.hold.as_mut() {
            h.from -= n;
        }
        self.last_write = self.now;
    }

    pub(super) fn is_draining(&self) -> bool {
        matches!(self.phase, Phase::Draining { .. })
    }

    /// Ends the connection: at once, or after a silent close if the
    /// handshake failed (a frame or login the handshake refused).
    pub(super) fn drop_connection(&mut self) {
        self.phase = match self.phase {
            Phase::Header { .. } | Phase::Handshake { .. } => {
                Phase::SilentClose { deadline: self.now + SILENT_CLOSE_DELAY }
            }
            Phase::SilentClose { deadline } => Phase::SilentClose { deadline },
            _ => Phase::Ended,
        };
    }

    /// Open, or drained from open: deliveries, credit and alarm notices
    /// still run, as they did before the close.
    pub(super) fn state_open(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::Draining { was: Was::Open, .. })
    }

    fn wants_read(&self) -> bool {
        if matches!(self.phase, Phase::Ended | Phase::SilentClose { .. }) {
            return false;
        }
        // A publisher under an alarm is not read from (RabbitMQ's
        // back-pressure); others still are, so consumers can drain. Nor is a
        // peer whose replies pile up unread, nor one whose reply waits for
        // the disk.
        let blocked = self.is_publisher && self.blocking();
        self.is_draining() || (!blocked && self.wbuf.len() < READ_STOP && self.hold.is_none())
    }

    /// Like RabbitMQ, a connection we do not read is not expected to be
    /// heard from: its heartbeat clock starts again when we read.
    fn refresh_read_clock(&mut self) {
        if !self.wants_read() {
            self.last_read = self.now;
        }
    }

    fn heartbeat_interval(&self) -> Option<Duration> {
        (self.heartbeat > 0).then(|| Duration::from_secs(self.heartbeat as u64))
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let earliest = |a: Instant, b: Option<Instant>| Some(b.map_or(a, |b| a.min(b)));
        match self.phase {
            Phase::Header { deadline } | Phase::Handshake { deadline, .. } | Phase::SilentClose { deadline } => {
                Some(deadline)
            }
            Phase::Open => match (self.heartbeat_deadline(false), self.token_deadline()) {
                (Some(h), t) => earliest(h, t),
                (None, t) => t,
            },
            Phase::Closing { deadline } => earliest(deadline, self.heartbeat_deadline(true)),
            Phase::Draining { deadline, was } => match was {
                Was::Handshake { deadline: handshake } => Some(deadline.min(handshake)),
                Was::Open => earliest(deadline, self.heartbeat_deadline(false)),
                Was::Closing => earliest(deadline, self.heartbeat_deadline(true)),
            },
            Phase::Ended => None,
        }
    }

    /// When the heartbeat rules next act: a heartbeat goes out once we have
    /// written nothing for half the interval (if nothing else waits to be
    /// written), and a peer silent for more than two intervals is dropped.
    /// While open, both are looked at when a heartbeat is due; while
    /// closing, at any time.
    fn heartbeat_deadline(&self, any_time: bool) -> Option<Instant> {
        let h = self.heartbeat_interval()?;
        let send = self.last_write + h / 2;
        let missed = self.last_read + h * 2 + Duration::from_nanos(1);
        let idle = self.wbuf.is_empty();
        Some(match (any_time, idle) {
            (false, true) => send,
            (false, false) => send.max(missed),
            (true, true) => send.min(missed),
            (true, false) => missed,
        })
    }

    /// A timer is due at `now`.
    fn on_timeout(&mut self, now: Instant) {
        let (close_deadline, handshake_deadline) = match self.phase {
            Phase::Header { deadline } | Phase::Handshake { deadline, .. } => (None, Some(deadline)),
            Phase::Closing { deadline } => (Some(deadline), None),
            Phase::Draining { deadline, was: Was::Handshake { deadline: handshake } } => {
                (Some(deadline), Some(handshake))
            }
            Phase::Draining { deadline, .. } => (Some(deadline), None),
            Phase::Open => (None, None),
            Phase::SilentClose { deadline } => {
                if now >= deadline {
                    self.phase = Phase::Ended;
                    self.reset = true;
                }
                return;
            }
            Phase::Ended => return,
        };
        if close_deadline.is_some_and(|d| now >= d) {
            self.phase = Phase::Ended;
            return;
        }
        if matches!(self.phase, Phase::Open) && self.token_expired(now) {
            return;
        }
        if let Some(deadline) = handshake_deadline {
            if now >= deadline {
                tracing::debug!(peer = %self.peer, "handshake timed out");
                self.phase = Phase::Ended;
            }
            return;
        }
        if let Some(h) = self.heartbeat_interval() {
            if now.duration_since(self.last_read) > h * 2 {
                tracing::info!(peer = %self.peer, "missed heartbeats from client, timeout: {}s", h.as_secs());
                self.phase = Phase::Ended;
                return;
            }
            if now.duration_since(self.last_write) >= h / 2 && self.wbuf.is_empty() {
                codec::write_heartbeat(&mut self.wbuf);
            }
        }
    }

    pub(super) fn send(&mut self, channel: u16, method: AMQPClass) {
        codec::write_method(&mut self.wbuf, channel, method);
    }

    /// Publishers are blocked while an alarm is on or fault injection says so.
    fn blocking(&self) -> bool {
        self.alarms.any() || self.injected_block.is_some()
    }

    /// Tells a publisher it is blocked or unblocked now, if that changed.
    fn blocking_changed(&mut self) {
        if self.state_open() && self.caps.connection_blocked {
            let on = self.blocking();
            if on != self.told_blocked && (self.is_publisher || !on) {
                self.told_blocked = on;
                self.send_blocked();
            }
        }
    }

    /// connection.blocked while an alarm is on, connection.unblocked after.
    fn send_blocked(&mut self) {
        let m = if self.alarms.any() {
            connection::AMQPMethod::Blocked(connection::Blocked { reason: short(self.alarms.reason()) })
        } else if let Some(reason) = &self.injected_block {
            connection::AMQPMethod::Blocked(connection::Blocked { reason: short(reason.as_str()) })
        } else {
            connection::AMQPMethod::Unblocked(connection::Unblocked {})
        };
        self.send(0, AMQPClass::Connection(m));
    }

    /// Answers the peer's connection.close: close-ok, then drain.
    pub(super) fn answer_close(&mut self) {
        self.send(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})));
        let was = match self.phase {
            Phase::Handshake { deadline, .. } => Was::Handshake { deadline },
            Phase::Closing { .. } => Was::Closing,
            _ => Was::Open,
        };
        self.phase = Phase::Draining { deadline: self.now + CLOSE_TIMEOUT, was };
    }

    pub(super) fn vhost(&self) -> AmqpResult<Arc<Vhost>> {
        self.vhost.clone().ok_or_else(|| AmqpError::new(ReplyCode::InternalError, "no vhost on an open connection"))
    }

    pub(super) fn process_frames(&mut self, rbuf: &mut BytesMut, channels: &mut Channels) -> Next {
        loop {
            if self.is_draining() {
                rbuf.clear();
                return Next::Continue;
            }
            if self.hold.is_some() || self.wbuf.len() >= READ_STOP {
                // The rest waits in `rbuf` until the held reply is released,
                // or the peer has read what its frames made us write: one
                // read of tiny basic.gets must not become megabytes of replies.
                return Next::Continue;
            }
            let frame_max = match self.phase {
                Phase::Handshake { step: Step::StartOk | Step::TuneOk, .. } => PRE_TUNE_FRAME_MAX,
                _ => self.frame_max,
            };
            let frame = match split_frame(rbuf, frame_max) {
                Ok(Some(f)) => f,
                Ok(None) => return Next::Continue,
                Err(e) => {
                    rbuf.clear();
                    if self.phase != Phase::Open {
                        return Next::Drop;
                    }
                    self.begin_close(AmqpError::new(ReplyCode::FrameError, e));
                    // The stream is no longer framed, so nothing more can
                    // be parsed; but closing the socket now would make
                    // the peer's next write fail before it reads our
                    // close. Discard input until it closes (or the close
                    // deadline passes), as RabbitMQ does.
                    if let Phase::Closing { deadline } = self.phase {
                        self.phase = Phase::Draining { deadline, was: Was::Closing };
                    }
                    return Next::Continue;
                }
            };
            self.stats_dirty = true;
            let result = self.handle_frame(frame, channels);
            if self.phase == Phase::Ended {
                return Next::Drop;
            }
            match result {
                Ok(Next::Continue) => {}
                Ok(Next::Drop) => return Next::Drop,
                Err(e) if e.scope == Scope::Connection || self.phase != Phase::Open => {
                    if self.phase == Phase::Open {
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

    fn handle_frame(&mut self, frame: Frame, channels: &mut Channels) -> AmqpResult<Next> {
        match self.phase {
            Phase::Closing { .. } => return Ok(self.handle_while_closing(frame)),
            Phase::Handshake { .. } => return self.handle_handshake(frame),
            Phase::Open => {}
            Phase::Header { .. } | Phase::Draining { .. } | Phase::SilentClose { .. } | Phase::Ended => {
                return Ok(Next::Continue)
            }
        }
        if frame.kind == FrameKind::Heartbeat {
            // Heartbeats belong on channel 0; RabbitMQ closes with 505 otherwise.
            return if frame.channel == 0 { Ok(Next::Continue) } else { Err(unexpected_frame(&frame)) };
        }
        if frame.channel == 0 {
            return self.handle_connection_frame(frame, channels);
        }
        let id = ChannelId(frame.channel);
        let Some(ch) = channels.get_mut(&id) else {
            return self.open_channel(frame, channels).map(|_| Next::Continue);
        };
        if ch.is_closing() {
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
                        let ok = channel::CloseOk {};
                        self.send(id.get(), AMQPClass::Channel(channel::AMQPMethod::CloseOk(ok)));
                    }
                    _ => {}
                }
            }
            return Ok(Next::Continue);
        }
        if let Err(e) = self.handle_channel_frame(ch, frame) {
            if e.scope == Scope::Connection {
                return Err(e);
            }
            self.close_channel_with(ch, e);
        }
        if ch.state == ChannelState::Closed {
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

    fn handle_connection_frame(&mut self, frame: Frame, channels: &mut Channels) -> AmqpResult<Next> {
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
                connection::AMQPMethod::UpdateSecret(m) => {
                    self.handle_update_secret(m)?;
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
}
