//! A minimal raw AMQP 0-9-1 client over tokio TCP, for protocol-level tests
//! that a real client library would never produce (bad headers, oversized
//! frames, missing heartbeats, ...).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use amq_protocol::frame::{gen_frame, parse_frame, AMQPFrame, WriteContext};
use amq_protocol::protocol::{basic, channel, connection, AMQPClass};
use amq_protocol::types::{FieldTable, LongString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{within, WAIT};

/// The 8 bytes a client sends first.
pub const PROTOCOL_HEADER: &[u8] = b"AMQP\x00\x00\x09\x01";

/// Frame type octets.
pub const FRAME_METHOD: u8 = 1;
pub const FRAME_HEADER: u8 = 2;
pub const FRAME_BODY: u8 = 3;
pub const FRAME_HEARTBEAT: u8 = 8;
pub const FRAME_END: u8 = 0xCE;

/// Serialize a frame with amq-protocol's generator.
pub fn encode(frame: &AMQPFrame) -> Vec<u8> {
    let ctx = gen_frame(frame)(WriteContext::from(Vec::new())).expect("gen_frame");
    ctx.write
}

/// Build a frame by hand: type, channel, payload, frame-end.
pub fn raw_frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 8);
    v.push(kind);
    v.extend_from_slice(&channel.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v.push(FRAME_END);
    v
}

/// A method frame with arbitrary class/method ids and argument bytes.
pub fn raw_method(channel: u16, class_id: u16, method_id: u16, args: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&class_id.to_be_bytes());
    p.extend_from_slice(&method_id.to_be_bytes());
    p.extend_from_slice(args);
    raw_frame(FRAME_METHOD, channel, &p)
}

/// What a read from the broker produced.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Read {
    Frame(AMQPFrame),
    /// The peer closed the socket (EOF or reset).
    Closed,
}

/// A raw connection.
pub struct RawConn {
    pub stream: TcpStream,
}

/// Details of a connection.close / channel.close received from the broker.
#[derive(Debug, Clone, PartialEq)]
pub struct Close {
    pub channel: u16,
    pub reply_code: u16,
    pub reply_text: String,
    pub class_id: u16,
    pub method_id: u16,
}

impl RawConn {
    pub async fn connect(addr: SocketAddr) -> RawConn {
        let stream = within(TcpStream::connect(addr)).await.expect("tcp connect");
        stream.set_nodelay(true).unwrap();
        RawConn { stream }
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        within(self.stream.write_all(bytes)).await.expect("write");
    }

    /// Like send_bytes but tolerates the broker having closed the socket.
    pub async fn try_send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        within(self.stream.write_all(bytes)).await
    }

    pub async fn send(&mut self, frame: &AMQPFrame) {
        let bytes = encode(frame);
        self.send_bytes(&bytes).await
    }

    pub async fn send_method(&mut self, channel: u16, method: AMQPClass) {
        self.send(&AMQPFrame::Method(channel, method)).await
    }

    /// Read raw bytes until EOF or `d` elapses (returns what was read, and whether EOF was seen).
    pub async fn read_until_eof(&mut self, d: Duration) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + d;
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => return (out, false),
                Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
                Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Read one frame, waiting at most `d`. Err(()) on timeout.
    pub async fn recv_timeout(&mut self, d: Duration) -> Result<Read, ()> {
        match tokio::time::timeout(d, self.recv_inner()).await {
            Ok(r) => Ok(r),
            Err(_) => Err(()),
        }
    }

    /// Read one frame, waiting at most [`WAIT`]; panics on timeout.
    pub async fn recv(&mut self) -> Read {
        self.recv_timeout(WAIT).await.expect("timed out waiting for a frame")
    }

    /// Read one frame; panics on EOF or timeout.
    pub async fn recv_frame(&mut self) -> AMQPFrame {
        match self.recv().await {
            Read::Frame(f) => f,
            Read::Closed => panic!("connection closed by broker while waiting for a frame"),
        }
    }

    /// Next non-heartbeat frame.
    pub async fn recv_non_heartbeat(&mut self) -> AMQPFrame {
        loop {
            match self.recv_frame().await {
                AMQPFrame::Heartbeat => continue,
                f => return f,
            }
        }
    }

    async fn recv_inner(&mut self) -> Read {
        let mut head = [0u8; 7];
        if self.stream.read_exact(&mut head).await.is_err() {
            return Read::Closed;
        }
        let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
        let mut rest = vec![0u8; size + 1];
        if self.stream.read_exact(&mut rest).await.is_err() {
            return Read::Closed;
        }
        assert_eq!(rest[size], FRAME_END, "frame does not end with 0xCE");
        let mut all = head.to_vec();
        all.extend_from_slice(&rest);
        match parse_frame(all.as_slice()) {
            Ok((_, f)) => Read::Frame(f),
            Err(e) => panic!("cannot parse frame from broker {all:?}: {e:?}"),
        }
    }

    /// Send the protocol header and read connection.start.
    pub async fn start(&mut self) -> connection::Start {
        self.send_bytes(PROTOCOL_HEADER).await;
        match self.recv_frame().await {
            AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(s))) => s,
            f => panic!("expected connection.start, got {f:?}"),
        }
    }

    /// Send start-ok (PLAIN guest/guest) and read connection.tune.
    pub async fn start_ok(&mut self, user: &str, pass: &str) -> connection::Tune {
        let response = format!("\0{user}\0{pass}");
        self.send_method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: FieldTable::default(),
                mechanism: "PLAIN".into(),
                response: LongString::from(response),
                locale: "en_US".into(),
            })),
        )
        .await;
        match self.recv_frame().await {
            AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Tune(t))) => t,
            f => panic!("expected connection.tune, got {f:?}"),
        }
    }

    pub async fn tune_ok(&mut self, channel_max: u16, frame_max: u32, heartbeat: u16) {
        self.send_method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max,
                frame_max,
                heartbeat,
            })),
        )
        .await;
    }

    /// Send connection.open for `vhost` and read open-ok.
    pub async fn open(&mut self, vhost: &str) {
        self.send_method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open { virtual_host: vhost.into() })),
        )
        .await;
        match self.recv_non_heartbeat().await {
            AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))) => {}
            f => panic!("expected connection.open-ok, got {f:?}"),
        }
    }

    /// Full handshake as guest on vhost "/", with the given heartbeat and
    /// frame_max (0 = accept the server's). Returns (start, tune).
    pub async fn handshake(
        addr: SocketAddr,
        heartbeat: u16,
        frame_max: u32,
    ) -> (RawConn, connection::Start, connection::Tune) {
        let mut c = RawConn::connect(addr).await;
        let start = c.start().await;
        let tune = c.start_ok("guest", "guest").await;
        let fm = if frame_max == 0 { tune.frame_max } else { frame_max };
        c.tune_ok(tune.channel_max, fm, heartbeat).await;
        c.open("/").await;
        (c, start, tune)
    }

    pub async fn open_channel(&mut self, ch: u16) {
        self.send_method(ch, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))).await;
        match self.recv_non_heartbeat().await {
            AMQPFrame::Method(c, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))) if c == ch => {}
            f => panic!("expected channel.open-ok on {ch}, got {f:?}"),
        }
    }

    /// Send basic.publish (method frame only).
    pub async fn send_publish(&mut self, ch: u16, exchange: &str, key: &str) {
        self.send_method(
            ch,
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: exchange.into(),
                routing_key: key.into(),
                mandatory: false,
                immediate: false,
            })),
        )
        .await;
    }

    /// A content header frame (class basic) with default properties.
    pub fn header_frame(ch: u16, body_size: u64) -> Vec<u8> {
        encode(&AMQPFrame::Header(
            ch,
            amq_protocol::frame::AMQPContentHeader {
                class_id: 60,
                body_size,
                properties: basic::AMQPProperties::default(),
            },
        ))
    }

    /// Wait for a connection.close from the broker (skipping heartbeats and
    /// other frames), reply close-ok, and return its details.
    pub async fn expect_connection_close(&mut self) -> Close {
        loop {
            match self.recv().await {
                Read::Closed => panic!("socket closed without connection.close"),
                Read::Frame(AMQPFrame::Method(ch, AMQPClass::Connection(connection::AMQPMethod::Close(c)))) => {
                    let _ = self
                        .try_send_bytes(&encode(&AMQPFrame::Method(
                            0,
                            AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})),
                        )))
                        .await;
                    return Close {
                        channel: ch,
                        reply_code: c.reply_code,
                        reply_text: c.reply_text.to_string(),
                        class_id: c.class_id,
                        method_id: c.method_id,
                    };
                }
                Read::Frame(_) => continue,
            }
        }
    }

    /// Wait for a channel.close from the broker, reply close-ok, return details.
    pub async fn expect_channel_close(&mut self) -> Close {
        loop {
            match self.recv().await {
                Read::Closed => panic!("socket closed without channel.close"),
                Read::Frame(AMQPFrame::Method(ch, AMQPClass::Channel(channel::AMQPMethod::Close(c)))) => {
                    self.send_method(ch, AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {}))).await;
                    return Close {
                        channel: ch,
                        reply_code: c.reply_code,
                        reply_text: c.reply_text.to_string(),
                        class_id: c.class_id,
                        method_id: c.method_id,
                    };
                }
                Read::Frame(AMQPFrame::Method(_, AMQPClass::Connection(connection::AMQPMethod::Close(c)))) => {
                    panic!("expected channel.close, got connection.close {c:?}")
                }
                Read::Frame(_) => continue,
            }
        }
    }

    /// Assert that the broker closes the socket within `d` (any frames before are ignored).
    pub async fn expect_eof(&mut self, d: Duration) {
        let (_, eof) = self.read_until_eof(d).await;
        assert!(eof, "broker did not close the socket within {d:?}");
    }
}
