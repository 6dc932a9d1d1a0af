//! A connection without a socket: bytes in, bytes out. The same state
//! machine the connection task drives (`Session`), fed by tests and the fuzz
//! target instead of a socket. Timers (heartbeats, handshake and close
//! deadlines) are the task's and are not driven here.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::BytesMut;

use super::channel::Channel;
use super::connection::{is_supported_header, Next, Session, PROTOCOL_HEADER};
use crate::broker::{Broker, FastMap};
use crate::Config;

pub struct Harness {
    session: Session,
    channels: FastMap<u16, Channel>,
    /// The protocol header while it is incomplete.
    header: Vec<u8>,
    started: bool,
    rbuf: BytesMut,
    /// What the broker wrote, not yet taken.
    out: BytesMut,
    ended: bool,
}

impl Harness {
    /// A fresh connection from a loopback peer (so `guest` may log in).
    pub fn new(broker: Arc<Broker>, config: Arc<Config>) -> Harness {
        let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 40000));
        Harness {
            session: Session::new(broker, config, peer),
            channels: FastMap::default(),
            header: Vec::with_capacity(8),
            started: false,
            rbuf: BytesMut::new(),
            out: BytesMut::new(),
            ended: false,
        }
    }

    /// Hands the broker bytes as if they arrived in one read, runs every
    /// frame they complete and the end of the batch, and collects output.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        if self.ended {
            return;
        }
        if !self.started {
            let need = 8 - self.header.len();
            let (head, rest) = bytes.split_at(need.min(bytes.len()));
            self.header.extend_from_slice(head);
            bytes = rest;
            let Ok(header) = <[u8; 8]>::try_from(&self.header[..]) else { return };
            if !is_supported_header(&header) {
                self.out.extend_from_slice(PROTOCOL_HEADER);
                self.ended = true;
                return;
            }
            self.started = true;
            self.session.send_start();
        }
        self.rbuf.extend_from_slice(bytes);
        let s = &mut self.session;
        if let Next::Drop = s.process_frames(&mut self.rbuf, &mut self.channels) {
            self.ended = true;
        } else if let Next::Drop = s.end_of_batch(&mut self.rbuf, &mut self.channels) {
            self.ended = true;
        }
        let n = if self.ended { s.wbuf.len() } else { s.writable() };
        self.out.extend_from_slice(&s.wbuf.split_to(n));
        if s.is_draining() {
            self.ended = true;
        }
    }

    /// Everything written since the last call.
    pub fn take_output(&mut self) -> BytesMut {
        std::mem::take(&mut self.out)
    }

    /// The broker dropped the connection or is only draining it now.
    pub fn ended(&self) -> bool {
        self.ended
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.session.cleanup(&mut self.channels);
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
}
