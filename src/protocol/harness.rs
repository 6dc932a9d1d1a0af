//! A connection without a socket: bytes in, bytes out, time from the
//! broker's clock. The same `Connection` the driver runs, fed by tests and
//! the fuzz target instead of a socket; with a manual clock
//! (`Harness::manual`), `advance` runs its timers (heartbeats, the
//! handshake and close deadlines) without sleeping.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;

use super::connection::{Connection, ConnectionParams, Event};
use crate::broker::Broker;
use crate::clock::Clock;
use crate::Config;

pub struct Harness {
    conn: Connection,
    /// What the broker wrote, not yet taken.
    out: BytesMut,
    /// The connection dropped, or only drains its input now (sticky).
    ended: bool,
}

impl Harness {
    /// A fresh connection from a loopback peer (so `guest` may log in).
    /// Time is `broker`'s clock: a manual one lets `advance` move it.
    pub fn new(broker: Arc<Broker>, config: Arc<Config>) -> Harness {
        let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 40000));
        let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 5672));
        let conn = Connection::new(ConnectionParams {
            wire_clock: broker.clock().clone(),
            broker,
            config,
            peer,
            local,
            alarms: Default::default(),
            tls: None,
        });
        Harness { conn, out: BytesMut::new(), ended: false }
    }

    /// A fresh connection to an in-memory broker opened from `config`,
    /// whose clock it reads (set `config.clock` to `Clock::manual()` for
    /// `advance`).
    pub fn open(config: Config) -> Harness {
        let broker = Arc::new(Broker::open(&config).expect("an in-memory broker opens"));
        Harness::new(broker, Arc::new(config))
    }

    /// A fresh connection to an in-memory broker (guest/guest, vhost `/`,
    /// the ephemeral configuration) on a manual clock.
    pub fn manual() -> Harness {
        Harness::open(Config { clock: Clock::manual(), ..Config::ephemeral() })
    }

    /// Hands the broker bytes as if they arrived in one read, runs every
    /// frame they complete and the end of the batch, and collects output.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.ended {
            return;
        }
        let now = self.clock().now();
        self.conn.handle_bytes(&mut BytesMut::from(bytes), now);
        self.collect();
    }

    /// Everything written since the last call.
    pub fn take_output(&mut self) -> BytesMut {
        std::mem::take(&mut self.out)
    }

    /// The broker dropped the connection (perhaps waiting out a silent
    /// close before the reset) or is only draining it now.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The connection is over: a driver would close the socket now (after
    /// a close deadline, a missed heartbeat, a handshake timeout, a close-ok,
    /// or a drop). `ended` turns true earlier, when draining begins.
    pub fn closed(&self) -> bool {
        self.conn.is_ended()
    }

    /// The clock the connection reads.
    pub fn clock(&self) -> &Clock {
        self.conn.clock()
    }

    /// How long until the connection's next timer, on its clock.
    pub fn next_timeout(&self) -> Option<Duration> {
        let now = self.clock().now();
        self.conn.poll_timeout().map(|t| t.saturating_duration_since(now))
    }

    /// Moves the (manual) clock forward by `by`, stopping at each deadline
    /// on the way to run the timers due then, as a driver woken on time
    /// would, and collects what they write. Panics on a real clock.
    pub fn advance(&mut self, by: Duration) {
        let clock = self.clock().clone();
        assert!(clock.is_manual(), "Harness::advance needs a manual clock (Harness::manual)");
        let target = clock.now() + by;
        while let Some(due) = self.conn.poll_timeout().filter(|due| *due <= target) {
            let now = clock.now();
            if due > now {
                clock.advance(due - now);
            }
            self.conn.handle_timeout(clock.now());
            self.collect();
            if self.conn.poll_timeout().is_some_and(|next| next <= clock.now()) {
                // A deadline that handling did not move would wake a driver
                // again at once: a spinning connection.
                panic!("the connection's deadline did not move past {:?}", clock.now());
            }
        }
        let now = clock.now();
        if target > now {
            clock.advance(target - now);
        }
    }

    /// Hands the connection an event, as the driver does (alarms changed,
    /// shutdown, the outbox woken, the socket gone), and collects output.
    pub fn event(&mut self, event: Event) {
        let now = self.clock().now();
        self.conn.handle_event(event, now);
        self.collect();
    }

    /// Moves the connection's output to `out`, as a peer that reads at once.
    fn collect(&mut self) {
        let now = self.clock().now();
        self.conn.poll_transmit(&mut self.out, now);
        if self.conn.is_ended() || self.conn.is_draining() || self.conn.is_silently_closing() {
            self.ended = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::frame::AMQPFrame;
    use amq_protocol::protocol::{basic, channel, connection, queue, AMQPClass};
    use amq_protocol::types::{FieldTable, LongString};

    fn method(ch: u16, m: AMQPClass) -> Vec<u8> {
        let mut out = BytesMut::new();
        super::super::codec::write_method(&mut out, ch, m);
        out.to_vec()
    }

    /// The frames in `out`, decoded by amq-protocol.
    fn frames(mut out: BytesMut) -> Vec<AMQPFrame> {
        let mut v = Vec::new();
        while let Ok(Some(f)) = super::super::frame::split_frame(&mut out, u32::MAX) {
            let kind = match f.kind {
                super::super::frame::FrameKind::Method => 1,
                super::super::frame::FrameKind::Header => 2,
                super::super::frame::FrameKind::Body => 3,
                super::super::frame::FrameKind::Heartbeat => 8,
            };
            let mut raw = vec![kind];
            raw.extend_from_slice(&f.channel.to_be_bytes());
            raw.extend_from_slice(&(f.payload.len() as u32).to_be_bytes());
            raw.extend_from_slice(&f.payload);
            raw.push(0xCE);
            v.push(amq_protocol::frame::parse_frame(&raw[..]).expect("our own frame").1);
        }
        v
    }

    /// A fresh connection, and the protocol header plus a start-ok as guest.
    fn fresh() -> (Harness, Vec<u8>) {
        let broker = Arc::new(Broker::in_memory("guest", "guest", "/"));
        let h = Harness::new(broker, Arc::new(Config::ephemeral()));
        let mut hs = b"AMQP\x00\x00\x09\x01".to_vec();
        hs.extend(method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: FieldTable::default(),
                mechanism: "PLAIN".into(),
                response: LongString::from("\0guest\0guest"),
                locale: "en_US".into(),
            })),
        ));
        (h, hs)
    }

    fn open() -> Harness {
        let (mut h, mut hs) = fresh();
        hs.extend(method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: 10,
                frame_max: 131072,
                heartbeat: 0,
            })),
        ));
        let vhost = connection::Open { virtual_host: "/".into() };
        hs.extend(method(0, AMQPClass::Connection(connection::AMQPMethod::Open(vhost))));
        hs.extend(method(1, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))));
        h.feed(&hs);
        let got = frames(h.take_output());
        assert!(matches!(got.last(), Some(AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))))));
        h
    }

    fn close(ch: u16) -> Vec<u8> {
        let c = channel::Close { reply_code: 200, reply_text: "".into(), class_id: 0, method_id: 0 };
        method(ch, AMQPClass::Channel(channel::AMQPMethod::Close(c)))
    }

    #[test]
    fn crossing_channel_closes_keep_the_channel_until_our_close_is_acknowledged() {
        let mut h = open();
        // A publish to a missing exchange and the client's own close, at once.
        let publish =
            basic::Publish { exchange: "nope".into(), routing_key: "".into(), mandatory: false, immediate: false };
        let mut burst = method(1, AMQPClass::Basic(basic::AMQPMethod::Publish(publish)));
        burst.extend([2, 0, 1, 0, 0, 0, 14, 0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xCE]);
        burst.extend(close(1));
        h.feed(&burst);
        let got = frames(h.take_output());
        assert!(
            matches!(&got[..], [
            AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::Close(c))),
            AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))),
        ] if c.reply_code == 404),
            "{got:?}"
        );
        // The close-ok for the broker's close arrives now: no error, and the
        // channel number is free again.
        h.feed(&method(1, AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {}))));
        h.feed(&method(1, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))));
        let got = frames(h.take_output());
        assert!(
            matches!(&got[..], [AMQPFrame::Method(1, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_)))]),
            "{got:?}"
        );
        assert!(!h.ended());
    }

    #[test]
    fn after_close_ok_the_rest_of_the_burst_is_dropped_quietly() {
        let mut h = open();
        let c = connection::Close { reply_code: 200, reply_text: "".into(), class_id: 0, method_id: 0 };
        let mut burst = method(0, AMQPClass::Connection(connection::AMQPMethod::Close(c)));
        let declare = queue::Declare {
            queue: "q".into(),
            passive: false,
            durable: false,
            exclusive: false,
            auto_delete: false,
            nowait: false,
            arguments: FieldTable::default(),
        };
        burst.extend(method(1, AMQPClass::Queue(queue::AMQPMethod::Declare(declare))));
        h.feed(&burst);
        h.feed(&close(1));
        let got = frames(h.take_output());
        assert!(
            matches!(&got[..], [AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_)))]),
            "{got:?}"
        );
        assert!(h.ended(), "the state machine only drains now; the task half-closes and waits for EOF");
    }

    #[test]
    fn tune_ok_above_what_was_offered_drops_the_connection_silently() {
        let (mut h, hs) = fresh();
        h.feed(&hs);
        h.take_output();
        let tune = connection::TuneOk { channel_max: 2048, frame_max: 131072, heartbeat: 0 };
        h.feed(&method(0, AMQPClass::Connection(connection::AMQPMethod::TuneOk(tune))));
        assert!(h.ended());
        assert!(h.take_output().is_empty(), "RabbitMQ sends nothing before it closes");
    }

    #[test]
    fn a_failed_handshake_is_reset_after_the_silent_close_delay() {
        let mut h = Harness::manual();
        let mut bytes = b"AMQP\x00\x00\x09\x01".to_vec();
        bytes.extend(method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: FieldTable::default(),
                mechanism: "CRAM-MD5".into(),
                response: LongString::from("x"),
                locale: "en_US".into(),
            })),
        ));
        h.feed(&bytes);
        h.take_output();
        assert!(h.ended() && !h.closed(), "held, as RabbitMQ holds a failed handshake");
        assert!(!h.conn.wants_read(), "and not read meanwhile");
        h.advance(Duration::from_millis(2900));
        assert!(!h.closed());
        h.advance(Duration::from_millis(200));
        assert!(h.closed() && h.conn.wants_reset(), "then reset, as RabbitMQ's linger-0 sockets are");
        assert!(h.take_output().is_empty(), "without a word");
    }
}
