//! The open connections and their channels, as the management API lists
//! them (RabbitMQ's `/api/connections` and `/api/channels`), and the one
//! way to close a connection from outside it.
//!
//! Each connection task registers when its socket is accepted and holds a
//! [`Registration`], a drop guard that unregisters it however the task
//! ends; each of its channels holds a [`ChannelRegistration`] the same way.
//! The connection task is the only writer of what its entries say: the
//! handshake fills in user, vhost and the tuned limits once, and the end of
//! each batch publishes its channels' counts into atomics. Readers (the
//! HTTP side) take snapshots; nothing here is touched per message.
//!
//! No I/O here, and nothing about frames: a forced close is a reason and a
//! `Notify` the connection's driver waits on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use amq_protocol::types::FieldTable;
use bytes::Bytes;
use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::error::ReplyCode;
use super::FastHash;
use crate::ids::{ChannelId, ConnectionId};

/// Where a connection is in its life, in RabbitMQ's words (its `state`
/// field: `starting`, `tuning`, `opening`, `running`, `blocking`,
/// `blocked`, `closing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Waiting for the protocol header or start-ok.
    Starting,
    /// Waiting for tune-ok.
    Tuning,
    /// Waiting for connection.open.
    Opening,
    Running,
    /// An alarm is on; the connection has not published yet, so it is still
    /// read (RabbitMQ's `blocking`).
    Blocking,
    /// An alarm is on and the connection publishes: it is not read.
    Blocked,
    /// Closing (either side began it) or ended.
    Closing,
}

impl ConnectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Starting => "starting",
            ConnectionState::Tuning => "tuning",
            ConnectionState::Opening => "opening",
            ConnectionState::Running => "running",
            ConnectionState::Blocking => "blocking",
            ConnectionState::Blocked => "blocked",
            ConnectionState::Closing => "closing",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => ConnectionState::Starting,
            1 => ConnectionState::Tuning,
            2 => ConnectionState::Opening,
            3 => ConnectionState::Running,
            4 => ConnectionState::Blocking,
            5 => ConnectionState::Blocked,
            _ => ConnectionState::Closing,
        }
    }
}

/// One connection as `Broker::connections` lists it.
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    pub id: ConnectionId,
    /// RabbitMQ's name: `"127.0.0.1:54321 -> 127.0.0.1:5672"`.
    pub name: String,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Empty until start-ok authenticated someone.
    pub user: String,
    /// Empty until connection.open succeeded.
    pub vhost: String,
    pub state: ConnectionState,
    /// start-ok's client-properties; empty before start-ok, or if they nest
    /// deeper than the decoder allows.
    pub client_properties: FieldTable,
    /// The client's `connection_name` property (RabbitMQ's
    /// `user_provided_name`).
    pub user_provided_name: Option<String>,
    /// When the socket was accepted, unix milliseconds (the broker's clock).
    pub connected_at: u64,
    pub frame_max: u32,
    pub channel_max: u16,
    /// The negotiated heartbeat timeout, seconds (RabbitMQ's `timeout`).
    pub heartbeat: u16,
    /// Open channels.
    pub channels: u32,
    /// Bytes read from and written to the socket.
    pub recv_oct: u64,
    pub send_oct: u64,
    /// Socket reads and writes (RabbitMQ reports the socket's packet
    /// counts; these are the reads and writes that carried bytes).
    pub recv_cnt: u64,
    pub send_cnt: u64,
    /// The SASL mechanism of start-ok (`PLAIN`, `AMQPLAIN`); empty before.
    pub auth_mechanism: String,
    /// The TLS session, on the AMQPS listener.
    pub tls: Option<TlsInfo>,
}

/// A TLS connection's session as the management API shows it (RabbitMQ's
/// `ssl_protocol`, `ssl_cipher`, `peer_cert_*`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsInfo {
    /// `"tlsv1.3"`, `"tlsv1.2"`, as RabbitMQ names them.
    pub protocol: String,
    /// The IANA name: `"TLS13_AES_256_GCM_SHA384"`.
    pub cipher: String,
    /// The client certificate's subject and issuer (RabbitMQ's format),
    /// when it gave one.
    pub peer_cert_subject: Option<String>,
    pub peer_cert_issuer: Option<String>,
}

/// One channel as `Broker::channels` lists it.
#[derive(Clone, Debug)]
pub struct ChannelInfo {
    pub connection: ConnectionId,
    /// The connection's name (see [`ConnectionInfo::name`]).
    pub connection_name: String,
    pub number: u16,
    /// RabbitMQ's channel name: `"<connection name> (<number>)"`.
    pub name: String,
    pub user: String,
    pub vhost: String,
    pub consumer_count: u32,
    pub messages_unacknowledged: u32,
    /// Publishes of a confirm-mode channel not yet confirmed.
    pub messages_unconfirmed: u32,
    /// basic.qos global=false (the prefetch of consumers created next).
    pub prefetch_count: u32,
    /// basic.qos global=true (shared by the channel's consumers).
    pub global_prefetch_count: u32,
    pub confirm: bool,
    pub transactional: bool,
    /// `"running"` (or `"closing"` while our channel.close waits for its ok).
    pub state: &'static str,
}

/// What the handshake learns, written once per step; read by listings.
#[derive(Debug, Default)]
struct Details {
    user: String,
    vhost: String,
    auth_mechanism: String,
    /// Raw, as start-ok carried them (with the length prefix): decoded only
    /// when listed.
    client_properties: Bytes,
    frame_max: u32,
    channel_max: u16,
    heartbeat: u16,
}

/// A registered connection. The connection task writes it; listings read.
#[derive(Debug)]
pub struct ConnectionEntry {
    pub id: ConnectionId,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub name: String,
    pub connected_at: u64,
    pub tls: Option<TlsInfo>,
    details: Mutex<Details>,
    state: AtomicU8,
    recv_oct: AtomicU64,
    send_oct: AtomicU64,
    recv_cnt: AtomicU64,
    send_cnt: AtomicU64,
    /// Changed on channel open and close only.
    channels: Mutex<Vec<Arc<ChannelEntry>>>,
    /// Why someone asked this connection to close (`close_connection`,
    /// or an injected fault).
    close_reason: Mutex<Option<CloseRequest>>,
    /// Woken when `close_reason` is set; the driver waits on it.
    close_notify: Notify,
    /// Injected faults the connection has not applied yet (`inject`).
    faults: Mutex<Vec<ConnectionFault>>,
    /// Woken when `faults` gains one.
    fault_notify: Notify,
    /// Injected latency: how long the driver holds each write back, in ms.
    write_delay_ms: AtomicU64,
}

/// What an injected fault asks of a connection that stays open.
#[derive(Clone, Debug, PartialEq)]
pub enum ConnectionFault {
    /// channel.close with this channel-level code and text.
    CloseChannel(u16, ReplyCode, String),
    /// connection.blocked with this reason, and publishes not read, as
    /// under a resource alarm, until `Unblock`.
    Block(String),
    Unblock,
}

/// How a connection is asked to end.
#[derive(Clone, Debug, PartialEq)]
pub enum CloseRequest {
    /// connection.close 320 `CONNECTION_FORCED - <text>` (the management
    /// API's DELETE, a deleted user or vhost).
    Forced(String),
    /// connection.close with another connection-level code (an injected
    /// fault: 541 INTERNAL_ERROR, 530 NOT_ALLOWED, ...).
    WithCode(ReplyCode, String),
    /// The socket closes without a close frame, as if the broker had died
    /// (an injected fault).
    Drop,
}

impl ConnectionEntry {
    /// A socket was read: `n` bytes.
    #[inline]
    pub fn add_recv(&self, n: usize) {
        self.recv_oct.fetch_add(n as u64, Ordering::Relaxed);
        self.recv_cnt.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` bytes were written to the socket.
    #[inline]
    pub fn add_send(&self, n: usize) {
        self.send_oct.fetch_add(n as u64, Ordering::Relaxed);
        self.send_cnt.fetch_add(1, Ordering::Relaxed);
    }

    /// start-ok authenticated `user`.
    pub fn set_login(&self, user: &str, mechanism: &str, client_properties: Bytes) {
        let mut d = self.details.lock();
        d.user = user.to_owned();
        d.auth_mechanism = mechanism.to_owned();
        d.client_properties = client_properties;
    }

    /// tune-ok settled the limits.
    pub fn set_tuned(&self, frame_max: u32, channel_max: u16, heartbeat: u16) {
        let mut d = self.details.lock();
        (d.frame_max, d.channel_max, d.heartbeat) = (frame_max, channel_max, heartbeat);
    }

    /// connection.open succeeded on `vhost`.
    pub fn set_vhost(&self, vhost: &str) {
        self.details.lock().vhost = vhost.to_owned();
    }

    /// Publishes the connection's state (cheap when unchanged).
    #[inline]
    pub fn set_state(&self, state: ConnectionState) {
        if self.state.load(Ordering::Relaxed) != state as u8 {
            self.state.store(state as u8, Ordering::Relaxed);
        }
    }

    pub fn state(&self) -> ConnectionState {
        ConnectionState::from_u8(self.state.load(Ordering::Relaxed))
    }

    pub fn user(&self) -> String {
        self.details.lock().user.clone()
    }

    pub fn vhost(&self) -> String {
        self.details.lock().vhost.clone()
    }

    /// Asks the connection to close with 320 `CONNECTION_FORCED - <reason>`.
    pub fn request_close(&self, reason: &str) {
        self.request(CloseRequest::Forced(reason.to_owned()));
    }

    /// Asks the connection to end the way `how` says.
    pub fn request(&self, how: CloseRequest) {
        *self.close_reason.lock() = Some(how);
        self.close_notify.notify_one();
    }

    /// Resolves once `request_close` was called (at once if it was already).
    pub async fn close_requested(&self) {
        self.close_notify.notified().await
    }

    /// Hands the connection a fault to apply (fault injection).
    pub fn inject(&self, fault: ConnectionFault) {
        self.faults.lock().push(fault);
        self.fault_notify.notify_one();
    }

    /// Resolves when `inject` has handed over a fault.
    pub async fn fault_injected(&self) {
        self.fault_notify.notified().await
    }

    /// The faults `inject` handed over, in order, once.
    pub fn take_faults(&self) -> Vec<ConnectionFault> {
        std::mem::take(&mut *self.faults.lock())
    }

    /// Injected latency on every write to this connection (zero: none).
    pub fn set_write_delay(&self, delay: std::time::Duration) {
        self.write_delay_ms.store(delay.as_millis().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    pub fn write_delay(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.write_delay_ms.load(Ordering::Relaxed))
    }

    /// Whether an open channel has this number.
    pub fn has_channel(&self, number: u16) -> bool {
        self.channels.lock().iter().any(|c| c.number == number)
    }

    /// The `connection_name` the client gave, if any.
    pub fn user_provided_name(&self) -> Option<String> {
        self.info().user_provided_name
    }

    /// What `request_close` / `request` asked for, once.
    pub fn take_close_request(&self) -> Option<CloseRequest> {
        self.close_reason.lock().take()
    }

    fn info(&self) -> ConnectionInfo {
        let d = self.details.lock();
        let client_properties = if d.client_properties.is_empty() {
            FieldTable::default()
        } else {
            crate::wire::table::decode_table(&d.client_properties).unwrap_or_default()
        };
        let user_provided_name = match client_properties.inner().get("connection_name") {
            Some(amq_protocol::types::AMQPValue::LongString(s)) => Some(String::from_utf8_lossy(s.as_bytes()).into()),
            Some(amq_protocol::types::AMQPValue::ShortString(s)) => Some(s.as_str().to_owned()),
            _ => None,
        };
        ConnectionInfo {
            id: self.id,
            name: self.name.clone(),
            peer: self.peer,
            local: self.local,
            user: d.user.clone(),
            vhost: d.vhost.clone(),
            state: self.state(),
            client_properties,
            user_provided_name,
            connected_at: self.connected_at,
            frame_max: d.frame_max,
            channel_max: d.channel_max,
            heartbeat: d.heartbeat,
            channels: self.channels.lock().len() as u32,
            recv_oct: self.recv_oct.load(Ordering::Relaxed),
            send_oct: self.send_oct.load(Ordering::Relaxed),
            recv_cnt: self.recv_cnt.load(Ordering::Relaxed),
            send_cnt: self.send_cnt.load(Ordering::Relaxed),
            auth_mechanism: d.auth_mechanism.clone(),
            tls: self.tls.clone(),
        }
    }
}

/// A channel's numbers, written by its connection at the end of a batch
/// (only when they changed) and read by listings.
#[derive(Debug, Default)]
pub struct ChannelEntry {
    pub number: u16,
    pub consumer_count: AtomicU32,
    pub unacked: AtomicU32,
    pub unconfirmed: AtomicU32,
    pub prefetch_count: AtomicU32,
    pub global_prefetch_count: AtomicU32,
    /// 0 plain, 1 confirm, 2 tx; 0x80 set while closing.
    pub mode: AtomicU8,
}

pub const CHANNEL_CONFIRM: u8 = 1;
pub const CHANNEL_TX: u8 = 2;
pub const CHANNEL_CLOSING: u8 = 0x80;

/// Stores `v` unless it is there already (no cache-line write then).
#[inline]
pub fn publish_u32(a: &AtomicU32, v: u32) {
    if a.load(Ordering::Relaxed) != v {
        a.store(v, Ordering::Relaxed);
    }
}

/// The open connections of a broker, with the totals opened and closed.
#[derive(Debug, Default)]
pub struct Registry {
    connections: DashMap<ConnectionId, Arc<ConnectionEntry>, FastHash>,
    open_channels: AtomicU64,
    connections_opened: AtomicU64,
    connections_closed: AtomicU64,
    channels_opened: AtomicU64,
    channels_closed: AtomicU64,
}

/// Totals since the broker started (for `Broker::global_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChurnStats {
    pub connections_opened: u64,
    pub connections_closed: u64,
    pub channels_opened: u64,
    pub channels_closed: u64,
}

/// What a connection needs to register (see `Registry::register`).
pub struct NewConnection {
    pub id: ConnectionId,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Unix milliseconds.
    pub connected_at: u64,
    pub tls: Option<TlsInfo>,
}

impl Registry {
    /// Lists a connection from now until the returned guard is dropped.
    pub fn register(self: &Arc<Self>, c: NewConnection) -> Registration {
        let entry = Arc::new(ConnectionEntry {
            id: c.id,
            peer: c.peer,
            local: c.local,
            name: format!("{} -> {}", c.peer, c.local),
            connected_at: c.connected_at,
            tls: c.tls,
            details: Mutex::default(),
            state: AtomicU8::new(ConnectionState::Starting as u8),
            recv_oct: AtomicU64::new(0),
            send_oct: AtomicU64::new(0),
            recv_cnt: AtomicU64::new(0),
            send_cnt: AtomicU64::new(0),
            channels: Mutex::default(),
            close_reason: Mutex::default(),
            close_notify: Notify::new(),
            faults: Mutex::default(),
            fault_notify: Notify::new(),
            write_delay_ms: AtomicU64::new(0),
        });
        self.connections.insert(c.id, Arc::clone(&entry));
        self.connections_opened.fetch_add(1, Ordering::Relaxed);
        Registration { registry: Arc::clone(self), entry }
    }

    pub fn get(&self, id: ConnectionId) -> Option<Arc<ConnectionEntry>> {
        self.connections.get(&id).map(|e| Arc::clone(e.value()))
    }

    fn entries(&self) -> Vec<Arc<ConnectionEntry>> {
        let mut v: Vec<_> = self.connections.iter().map(|e| Arc::clone(e.value())).collect();
        v.sort_by_key(|e| e.id);
        v
    }

    /// How many connections `pick` chooses, and their open channels; for
    /// the limits, which are checked only when set.
    pub fn usage(&self, pick: impl Fn(&ConnectionEntry) -> bool) -> (usize, usize) {
        let (mut connections, mut channels) = (0, 0);
        for e in self.connections.iter() {
            if pick(e.value()) {
                connections += 1;
                channels += e.value().channels.lock().len();
            }
        }
        (connections, channels)
    }

    /// Every registered connection, by id.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.entries().iter().map(|e| e.info()).collect()
    }

    /// Every open channel, by connection id and channel number.
    pub fn channels(&self) -> Vec<ChannelInfo> {
        let mut out = Vec::new();
        for e in self.entries() {
            let (user, vhost) = {
                let d = e.details.lock();
                (d.user.clone(), d.vhost.clone())
            };
            let mut chans: Vec<Arc<ChannelEntry>> = e.channels.lock().clone();
            chans.sort_by_key(|c| c.number);
            for c in chans {
                let mode = c.mode.load(Ordering::Relaxed);
                out.push(ChannelInfo {
                    connection: e.id,
                    connection_name: e.name.clone(),
                    number: c.number,
                    name: format!("{} ({})", e.name, c.number),
                    user: user.clone(),
                    vhost: vhost.clone(),
                    consumer_count: c.consumer_count.load(Ordering::Relaxed),
                    messages_unacknowledged: c.unacked.load(Ordering::Relaxed),
                    messages_unconfirmed: c.unconfirmed.load(Ordering::Relaxed),
                    prefetch_count: c.prefetch_count.load(Ordering::Relaxed),
                    global_prefetch_count: c.global_prefetch_count.load(Ordering::Relaxed),
                    confirm: mode & CHANNEL_CONFIRM != 0,
                    transactional: mode & CHANNEL_TX != 0,
                    state: if mode & CHANNEL_CLOSING != 0 { "closing" } else { "running" },
                });
            }
        }
        out
    }

    /// The connection the management API calls `name`, else the one whose
    /// client gave `name` as its `connection_name` (when only one did).
    pub fn find_by_name(&self, name: &str) -> Option<Arc<ConnectionEntry>> {
        let entries = self.entries();
        if let Some(e) = entries.iter().find(|e| e.name == name) {
            return Some(Arc::clone(e));
        }
        let mut named = entries.into_iter().filter(|e| e.user_provided_name().as_deref() == Some(name));
        let first = named.next()?;
        named.next().is_none().then_some(first)
    }

    /// Every registered connection's entry, by id.
    pub fn all(&self) -> Vec<Arc<ConnectionEntry>> {
        self.entries()
    }

    /// Asks one connection to end the way `how` says; false if it is gone.
    pub fn request(&self, id: ConnectionId, how: CloseRequest) -> bool {
        match self.get(id) {
            Some(e) => {
                e.request(how);
                true
            }
            None => false,
        }
    }

    /// Asks connection `id` to close; false if there is none.
    pub fn close(&self, id: ConnectionId, reason: &str) -> bool {
        match self.get(id) {
            Some(e) => {
                e.request_close(reason);
                true
            }
            None => false,
        }
    }

    /// Asks every connection that `pick` chooses to close; returns how many.
    pub fn close_where(&self, reason: &str, pick: impl Fn(&Owner) -> bool) -> usize {
        let mut n = 0;
        for e in self.entries() {
            let chosen = {
                let d = e.details.lock();
                pick(&Owner { user: &d.user, vhost: &d.vhost })
            };
            if chosen {
                e.request_close(reason);
                n += 1;
            }
        }
        n
    }

    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    pub fn channel_count(&self) -> usize {
        self.open_channels.load(Ordering::Relaxed) as usize
    }

    pub fn churn(&self) -> ChurnStats {
        ChurnStats {
            connections_opened: self.connections_opened.load(Ordering::Relaxed),
            connections_closed: self.connections_closed.load(Ordering::Relaxed),
            channels_opened: self.channels_opened.load(Ordering::Relaxed),
            channels_closed: self.channels_closed.load(Ordering::Relaxed),
        }
    }
}

/// What `Registry::close_where` shows its predicate.
pub struct Owner<'a> {
    pub user: &'a str,
    pub vhost: &'a str,
}

/// A connection's place in the registry: dropping it unregisters the
/// connection (and anything its channels left).
#[derive(Debug)]
pub struct Registration {
    registry: Arc<Registry>,
    entry: Arc<ConnectionEntry>,
}

impl Registration {
    pub fn entry(&self) -> &Arc<ConnectionEntry> {
        &self.entry
    }

    /// Lists channel `id` until the returned guard is dropped.
    pub fn add_channel(&self, id: ChannelId) -> ChannelRegistration {
        let ch = Arc::new(ChannelEntry { number: id.get(), ..ChannelEntry::default() });
        self.entry.channels.lock().push(Arc::clone(&ch));
        self.registry.open_channels.fetch_add(1, Ordering::Relaxed);
        self.registry.channels_opened.fetch_add(1, Ordering::Relaxed);
        ChannelRegistration { registry: Arc::clone(&self.registry), connection: Arc::clone(&self.entry), entry: ch }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.connections.remove(&self.entry.id);
        self.registry.connections_closed.fetch_add(1, Ordering::Relaxed);
    }
}

/// A channel's place in its connection's entry; dropping it removes it.
#[derive(Debug)]
pub struct ChannelRegistration {
    registry: Arc<Registry>,
    connection: Arc<ConnectionEntry>,
    entry: Arc<ChannelEntry>,
}

impl ChannelRegistration {
    #[inline]
    pub fn entry(&self) -> &ChannelEntry {
        &self.entry
    }
}

impl Drop for ChannelRegistration {
    fn drop(&mut self) {
        self.connection.channels.lock().retain(|c| !Arc::ptr_eq(c, &self.entry));
        self.registry.open_channels.fetch_sub(1, Ordering::Relaxed);
        self.registry.channels_closed.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(reg: &Arc<Registry>, id: u64) -> Registration {
        reg.register(NewConnection {
            id: ConnectionId(id),
            peer: "127.0.0.1:54321".parse().unwrap(),
            local: "127.0.0.1:5672".parse().unwrap(),
            connected_at: 7,
            tls: None,
        })
    }

    #[test]
    fn guards_unregister_connections_and_channels() {
        let reg = Arc::new(Registry::default());
        let a = new(&reg, 1);
        let b = new(&reg, 2);
        a.entry().set_login("guest", "PLAIN", Bytes::new());
        a.entry().set_vhost("/");
        let c1 = a.add_channel(ChannelId(1));
        let c2 = a.add_channel(ChannelId(2));
        c2.entry().mode.store(CHANNEL_CONFIRM, Ordering::Relaxed);
        assert_eq!((reg.connection_count(), reg.channel_count()), (2, 2));
        let conns = reg.connections();
        assert_eq!(conns[0].name, "127.0.0.1:54321 -> 127.0.0.1:5672");
        assert_eq!(
            (conns[0].channels, conns[0].user.as_str(), conns[0].state),
            (2, "guest", ConnectionState::Starting)
        );
        let chans = reg.channels();
        assert_eq!(chans.iter().map(|c| (c.number, c.confirm)).collect::<Vec<_>>(), [(1, false), (2, true)]);
        assert_eq!(chans[0].vhost, "/");
        drop(c1);
        assert_eq!(reg.channel_count(), 1);
        assert_eq!(reg.close_where("bye", |d| d.user == "guest"), 1);
        assert_eq!(a.entry().take_close_request(), Some(CloseRequest::Forced("bye".into())));
        drop(c2);
        drop(a);
        assert!(!reg.close(ConnectionId(1), "gone"));
        assert!(reg.close(ConnectionId(2), "x"));
        drop(b);
        assert_eq!((reg.connection_count(), reg.channel_count()), (0, 0));
        let churn = reg.churn();
        assert_eq!((churn.connections_opened, churn.connections_closed), (2, 2));
        assert_eq!((churn.channels_opened, churn.channels_closed), (2, 2));
    }
}
