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
