//! A minimal AMQP 0-9-1 client connection for the load tool: TCP connect,
//! the handshake (PLAIN, tune-ok echoing the server's limits, heartbeats
//! off), one channel, and blocking request/reply for control methods.
//!
//! Control methods are encoded and parsed with amq-protocol: they run a few
//! times per run, never per message. Once set up, producers and consumers
//! take the socket and the leftover read buffer (`Conn::into_parts`) and run
//! their own hand-written hot loops.

use std::time::Duration;

use super::transport::Transport;
use super::wire::{self, FRAME_HEARTBEAT, FRAME_METHOD};
use super::Error;
use amq_protocol::frame::{gen_frame, AMQPFrame};
use amq_protocol::protocol::{basic, channel, confirm, connection, exchange, queue, AMQPClass};
use amq_protocol::types::{AMQPValue, FieldTable, LongString, ShortString};
use bytes::{Buf, BytesMut};

/// The channel every load-tool connection uses.
pub(crate) const CHANNEL: u16 = 1;

/// Where and as whom to connect, from an amqp:// URI.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub pass: String,
    pub vhost: String,
    /// amqps://: the TLS client config (trusting `--tls-ca`).
    pub tls: Option<std::sync::Arc<tokio_rustls::rustls::ClientConfig>>,
}

impl Target {
    /// Parses `amqp://user:pass@host:port/vhost` (vhost percent-encoded,
    /// `%2f` for `/`; RabbitMQ's URI spec), or `amqps://` with the CA to
    /// trust (and the client certificate to present) from `tls`.
    pub(crate) fn parse(uri: &str, tls: Option<TlsFiles<'_>>) -> Result<Target, Error> {
        let u: amq_protocol::uri::AMQPUri =
            uri.parse().map_err(|e| Error::Config(format!("bad --uri {uri:?}: {e}")))?;
        let tls = match (u.scheme, tls) {
            (amq_protocol::uri::AMQPScheme::AMQP, _) => None,
            (amq_protocol::uri::AMQPScheme::AMQPS, Some(files)) => {
                Some(super::transport::client_config(files.ca, files.identity)?)
            }
            (amq_protocol::uri::AMQPScheme::AMQPS, None) => {
                return Err(Error::Config(
                    "an amqps:// URI needs --tls-ca, the CA that signed the broker's certificate".into(),
                ))
            }
        };
        Ok(Target {
            host: u.authority.host,
            port: u.authority.port,
            user: u.authority.userinfo.username,
            pass: u.authority.userinfo.password,
            vhost: u.vhost,
            tls,
        })
    }
}

/// The files of `--tls-ca`, `--tls-cert` and `--tls-key`.
#[derive(Clone, Copy)]
pub(crate) struct TlsFiles<'a> {
    pub ca: &'a std::path::Path,
    pub identity: Option<(&'a std::path::Path, &'a std::path::Path)>,
}

/// A connection with channel 1 open, in its control phase.
pub(crate) struct Conn {
    pub stream: Transport,
    /// Bytes read but not yet parsed; handed on to the hot loop, since a
    /// reply can share a read with the first deliveries or confirms.
    pub rbuf: BytesMut,
    /// Negotiated largest frame, header and end octet included.
    pub frame_max: u32,
}

/// How long any one control step may take before the run gives up.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(15);

impl Conn {
    /// Connects, runs the handshake and opens channel 1.
    pub(crate) async fn open(target: &Target, name: &str) -> Result<Conn, Error> {
        tokio::time::timeout(CONTROL_TIMEOUT, Self::open_inner(target, name))
            .await
            .map_err(|_| Error::Timeout("connection handshake"))?
    }

    async fn open_inner(target: &Target, name: &str) -> Result<Conn, Error> {
        let stream = Transport::connect(&target.host, target.port, target.tls.as_ref()).await?;
        let mut c = Conn { stream, rbuf: BytesMut::with_capacity(64 * 1024), frame_max: 131072 };
        c.stream.write_all(b"AMQP\x00\x00\x09\x01").await?;
        match c.read_method(0).await? {
            AMQPClass::Connection(connection::AMQPMethod::Start(s)) => {
                let mechs = String::from_utf8_lossy(s.mechanisms.as_bytes()).into_owned();
                if !mechs.split(' ').any(|m| m == "PLAIN") {
                    return Err(Error::Protocol(format!("broker does not offer PLAIN (offers {mechs})")));
                }
            }
            other => return Err(unexpected("connection.start", &other)),
        }
        let mut response = Vec::with_capacity(target.user.len() + target.pass.len() + 2);
        response.push(0);
        response.extend_from_slice(target.user.as_bytes());
        response.push(0);
        response.extend_from_slice(target.pass.as_bytes());
        c.send(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: client_properties(name),
                mechanism: "PLAIN".into(),
                response: LongString::from(response),
                locale: "en_US".into(),
            })),
        )
        .await?;
        let tune = match c.read_method(0).await {
            Ok(AMQPClass::Connection(connection::AMQPMethod::Tune(t))) => t,
            Ok(other) => return Err(unexpected("connection.tune", &other)),
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(Error::Protocol("broker closed the socket after start-ok: bad credentials?".into()))
            }
            Err(e) => return Err(e),
        };
        // Echo the server's limits (0 means "no limit": keep 0 on the wire,
        // cap our own buffering at 1 MiB frames).
        c.frame_max = if tune.frame_max == 0 { 1 << 20 } else { tune.frame_max };
        c.send(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: tune.channel_max,
                frame_max: tune.frame_max,
                heartbeat: 0,
            })),
        )
        .await?;
        c.rpc(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                virtual_host: short(&target.vhost)?,
            })),
        )
        .await?;
        c.rpc(CHANNEL, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))).await?;
        Ok(c)
    }

    /// Writes one control method.
    pub(crate) async fn send(&mut self, channel: u16, method: AMQPClass) -> Result<(), Error> {
        let frame = AMQPFrame::Method(channel, method);
        let bytes = cookie_factory::gen_simple(gen_frame(&frame), Vec::with_capacity(128))
            .map_err(|e| Error::Protocol(format!("cannot encode {frame:?}: {e:?}")))?;
        self.stream.write_all(&bytes).await?;
        Ok(())
    }

    /// Sends a method and returns the next method the broker sends on that
    /// channel (its reply), or the broker's close as an error.
    pub(crate) async fn rpc(&mut self, channel: u16, method: AMQPClass) -> Result<AMQPClass, Error> {
        self.send(channel, method).await?;
        tokio::time::timeout(CONTROL_TIMEOUT, self.read_method(channel))
            .await
            .map_err(|_| Error::Timeout("a control method reply"))?
    }

    /// Reads frames until a method on `channel` arrives; heartbeats and
    /// stray content frames are skipped. channel.close and connection.close
    /// are answered and returned as `Error::Closed`.
    async fn read_method(&mut self, channel: u16) -> Result<AMQPClass, Error> {
        loop {
            while let Some((frame, len)) = wire::next_frame(&self.rbuf, self.frame_max)? {
                let (kind, ch) = (frame.kind, frame.channel);
                let parsed = if kind == FRAME_METHOD {
                    Some(
                        amq_protocol::protocol::parse_class(frame.payload)
                            .map(|(_, class)| class)
                            .map_err(|e| Error::Protocol(format!("cannot parse a method: {e:?}")))?,
                    )
                } else {
                    None
                };
                self.rbuf.advance(len);
                let Some(class) = parsed else {
                    debug_assert!(kind != FRAME_HEARTBEAT || ch == 0);
                    continue;
                };
                match class {
                    AMQPClass::Connection(connection::AMQPMethod::Close(c)) => {
                        let _ = self
                            .send(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})))
                            .await;
                        return Err(Error::Closed { code: c.reply_code, text: c.reply_text.to_string() });
                    }
                    AMQPClass::Channel(channel::AMQPMethod::Close(c)) => {
                        let _ =
                            self.send(ch, AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {}))).await;
                        return Err(Error::Closed { code: c.reply_code, text: c.reply_text.to_string() });
                    }
                    AMQPClass::Connection(connection::AMQPMethod::Blocked(_))
                    | AMQPClass::Connection(connection::AMQPMethod::Unblocked(_)) => continue,
                    class if ch == channel => return Ok(class),
                    _ => continue,
                }
            }
            self.rbuf.reserve(64 * 1024);
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    /// Sends connection.close and waits up to `wait` for close-ok, skipping
    /// whatever deliveries or confirms are still in flight. A producer must
    /// wait for it: a broker that throttles its reader (RabbitMQ's credit
    /// flow) may not yet have read the last publishes, and they are lost if
    /// the socket goes away first.
    pub(crate) async fn close(mut self, wait: Duration) {
        let close = AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
            reply_code: 200,
            reply_text: "bye".into(),
            class_id: 0,
            method_id: 0,
        }));
        let _ = tokio::time::timeout(wait, async {
            self.send(0, close).await?;
            loop {
                if let AMQPClass::Connection(connection::AMQPMethod::CloseOk(_)) = self.read_method(0).await? {
                    return Ok::<(), Error>(());
                }
            }
        })
        .await;
    }

    // ------------------------------------------------------------ control methods

    pub(crate) async fn exchange_declare(&mut self, name: &str, kind: &str, durable: bool) -> Result<(), Error> {
        self.rpc(
            CHANNEL,
            AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
                exchange: short(name)?,
                kind: short(kind)?,
                passive: false,
                durable,
                auto_delete: false,
                internal: false,
                nowait: false,
                arguments: FieldTable::default(),
            })),
        )
        .await
        .map(drop)
    }

    pub(crate) async fn exchange_delete(&mut self, name: &str) -> Result<(), Error> {
        self.rpc(
            CHANNEL,
            AMQPClass::Exchange(exchange::AMQPMethod::Delete(exchange::Delete {
                exchange: short(name)?,
                if_unused: false,
                nowait: false,
            })),
        )
        .await
        .map(drop)
    }

    /// Declares a classic queue; `expires_ms` > 0 adds x-expires as a safety
    /// net so a run that dies leaves nothing behind for long.
    pub(crate) async fn queue_declare(&mut self, name: &str, durable: bool, expires_ms: u32) -> Result<(), Error> {
        let mut arguments = FieldTable::default();
        if expires_ms > 0 {
            arguments.insert("x-expires".into(), AMQPValue::LongInt(expires_ms.min(i32::MAX as u32) as i32));
        }
        self.rpc(
            CHANNEL,
            AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
                queue: short(name)?,
                passive: false,
                durable,
                exclusive: false,
                auto_delete: false,
                nowait: false,
                arguments,
            })),
        )
        .await
        .map(drop)
    }

    pub(crate) async fn queue_bind(&mut self, queue: &str, exchange: &str, routing_key: &str) -> Result<(), Error> {
        self.rpc(
            CHANNEL,
            AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
                queue: short(queue)?,
                exchange: short(exchange)?,
                routing_key: short(routing_key)?,
                nowait: false,
                arguments: FieldTable::default(),
            })),
        )
        .await
        .map(drop)
    }

    pub(crate) async fn queue_delete(&mut self, name: &str) -> Result<(), Error> {
        self.rpc(
            CHANNEL,
            AMQPClass::Queue(queue::AMQPMethod::Delete(queue::Delete {
                queue: short(name)?,
                if_unused: false,
                if_empty: false,
                nowait: false,
            })),
        )
        .await
        .map(drop)
    }

    pub(crate) async fn basic_qos(&mut self, prefetch_count: u16) -> Result<(), Error> {
        self.rpc(CHANNEL, AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos { prefetch_count, global: false })))
            .await
            .map(drop)
    }

    pub(crate) async fn basic_consume(&mut self, queue: &str, tag: &str, no_ack: bool) -> Result<(), Error> {
        match self
            .rpc(
                CHANNEL,
                AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
                    queue: short(queue)?,
                    consumer_tag: short(tag)?,
                    no_local: false,
                    no_ack,
                    exclusive: false,
                    nowait: false,
                    arguments: FieldTable::default(),
                })),
            )
            .await?
        {
            AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_)) => Ok(()),
            other => Err(unexpected("basic.consume-ok", &other)),
        }
    }

    pub(crate) async fn confirm_select(&mut self) -> Result<(), Error> {
        self.rpc(CHANNEL, AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select { nowait: false })))
            .await
            .map(drop)
    }
}

fn short(s: &str) -> Result<ShortString, Error> {
    ShortString::try_new(s).map_err(|_| Error::Config(format!("name longer than 255 bytes: {s:?}")))
}

fn unexpected(wanted: &str, got: &AMQPClass) -> Error {
    Error::Protocol(format!("expected {wanted}, got {got:?}"))
}

fn client_properties(name: &str) -> FieldTable {
    let mut caps = FieldTable::default();
    for cap in ["publisher_confirms", "basic.nack", "consumer_cancel_notify", "connection.blocked"] {
        caps.insert(cap.into(), AMQPValue::Boolean(true));
    }
    let mut props = FieldTable::default();
    let text = |s: &str| AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()));
    props.insert("product".into(), text("Warren perf"));
    props.insert("version".into(), text(env!("CARGO_PKG_VERSION")));
    props.insert("platform".into(), text("Rust"));
    props.insert("connection_name".into(), text(name));
    props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    props
}
