//! One consumer: one connection, one channel, one task.
//!
//! The hot loop reads as much as the socket has into one buffer, walks every
//! complete frame in place (deliver → header → body), records latency with
//! one clock reading per read, and answers with acks batched into one write.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::Buf;
use hdrhistogram::Histogram;
use tokio::io::Interest;
use tokio::sync::{mpsc, watch};

use super::conn::{Conn, Target, CHANNEL};
use super::stats::{now_ns, Counters};
use super::wire::{self, CLASS_BASIC, FRAME_BODY, FRAME_HEADER, FRAME_METHOD, TIMESTAMP_LEN};
use super::{broker_close, Error};

/// Bytes asked of each read.
const READ_SIZE: usize = 256 * 1024;

/// What one consumer reads and how it acknowledges.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub id: usize,
    pub queue: String,
    pub autoack: bool,
    /// basic.qos prefetch count for manual acks; 0 = none sent.
    pub prefetch: u16,
    /// Ack with multiple=true every N messages; 0 or 1 = one ack each.
    pub multi_ack_every: u64,
}

/// Latency histogram in microseconds, 1 µs to 1 h, 3 significant digits.
pub(super) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Where the frame walk is inside the current message.
#[derive(Debug, Clone, Copy)]
enum Content {
    Idle,
    Header { tag: u64 },
    Body { tag: u64, remaining: u64, first: bool },
}

/// Per-connection state of the frame walk and the ack batching.
struct Reader {
    content: Content,
    autoack: bool,
    every: u64,
    unacked: u64,
    last_tag: u64,
    hist: Histogram<u64>,
}

impl Reader {
    /// Walks every complete frame of `buf`; returns the bytes consumed and
    /// the messages completed. Acks go into `acks`.
    fn walk(
        &mut self,
        buf: &[u8],
        frame_max: u32,
        now: u64,
        latency_from: u64,
        acks: &mut Vec<u8>,
    ) -> Result<(usize, u64), Error> {
        let (mut pos, mut done) = (0, 0);
        while let Some((f, n)) = wire::next_frame(&buf[pos..], frame_max)? {
            pos += n;
            let completed = match (f.kind, self.content) {
                (FRAME_METHOD, _) => {
                    match wire::method_id(f.payload) {
                        Some((CLASS_BASIC, wire::METHOD_BASIC_DELIVER)) => {
                            let tag =
                                wire::deliver_tag(f.payload).ok_or(Error::Protocol("short basic.deliver".into()))?;
                            self.content = Content::Header { tag };
                        }
                        Some((CLASS_BASIC, wire::METHOD_BASIC_CANCEL)) => {
                            return Err(Error::Protocol("the broker cancelled the consumer".into()))
                        }
                        Some(_) => {
                            if let Some(e) = broker_close(f.payload) {
                                return Err(e);
                            }
                        }
                        None => return Err(Error::Protocol("short method frame".into())),
                    }
                    None
                }
                (FRAME_HEADER, Content::Header { tag }) => {
                    let size =
                        wire::header_body_size(f.payload).ok_or(Error::Protocol("short content header".into()))?;
                    if size == 0 {
                        Some(tag)
                    } else {
                        self.content = Content::Body { tag, remaining: size, first: true };
                        None
                    }
                }
                (FRAME_BODY, Content::Body { tag, remaining, first }) => {
                    if first && f.payload.len() >= TIMESTAMP_LEN {
                        let mut stamp = [0u8; TIMESTAMP_LEN];
                        stamp.copy_from_slice(&f.payload[..TIMESTAMP_LEN]);
                        let sent = u64::from_le_bytes(stamp);
                        if sent >= latency_from && now >= sent {
                            self.hist.saturating_record((now - sent) / 1000);
                        }
                    }
                    let remaining = remaining.saturating_sub(f.payload.len() as u64);
                    if remaining == 0 {
                        Some(tag)
                    } else {
                        self.content = Content::Body { tag, remaining, first: false };
                        None
                    }
                }
                (FRAME_HEADER | FRAME_BODY, _) => {
                    return Err(Error::Protocol("content frame outside a delivery".into()))
                }
                _ => None, // heartbeat
            };
            if let Some(tag) = completed {
                self.content = Content::Idle;
                done += 1;
                if !self.autoack {
                    self.unacked += 1;
                    self.last_tag = tag;
                    if self.unacked >= self.every {
                        wire::put_ack(acks, CHANNEL, tag, self.every > 1);
                        self.unacked = 0;
                    }
                }
            }
        }
        Ok((pos, done))
    }
}

/// Connects, consumes until `stop`, acks what is left and closes. Returns
/// the latency histogram; failures go to `counters`.
pub(super) async fn run(
    target: Target,
    plan: Plan,
    counters: Arc<Counters>,
    ready: mpsc::Sender<bool>,
    latency_from: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> Histogram<u64> {
    let mut reader = Reader {
        content: Content::Idle,
        autoack: plan.autoack,
        every: plan.multi_ack_every.max(1),
        unacked: 0,
        last_tag: 0,
        hist: new_histogram(),
    };
    let setup = async {
        let mut conn = Conn::open(&target, &format!("warren-perf-consumer-{}", plan.id)).await?;
        if !plan.autoack && plan.prefetch > 0 {
            conn.basic_qos(plan.prefetch).await?;
        }
        conn.basic_consume(&plan.queue, &format!("warren-perf-c{}", plan.id), plan.autoack).await?;
        Ok::<_, Error>(conn)
    };
    let mut conn = match setup.await {
        Ok(c) => c,
        Err(e) => {
            counters.error("consumer setup", e);
            let _ = ready.send(false).await;
            return reader.hist;
        }
    };
    let _ = ready.send(true).await;
    let mut acks: Vec<u8> = Vec::with_capacity(64 * 1024);
    if let Err(e) = consume(&mut conn, &mut reader, &counters, &latency_from, &mut stop, &mut acks).await {
        counters.error(&format!("consumer {}", plan.id), e);
    } else if reader.unacked > 0 {
        wire::put_ack(&mut acks, CHANNEL, reader.last_tag, true);
    }
    if !acks.is_empty() {
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.stream.write_all(&acks)).await;
    }
    conn.close(Duration::from_secs(2)).await;
    reader.hist
}

async fn consume(
    conn: &mut Conn,
    reader: &mut Reader,
    counters: &Counters,
    latency_from: &AtomicU64,
    stop: &mut watch::Receiver<bool>,
    acks: &mut Vec<u8>,
) -> Result<(), Error> {
    // Deliveries may have arrived with consume-ok: walk them first.
    let mut fresh = !conn.rbuf.is_empty();
    loop {
        if fresh {
            let (used, done) = reader.walk(&conn.rbuf, conn.frame_max, now_ns(), latency_from.load(Relaxed), acks)?;
            conn.rbuf.advance(used);
            if done > 0 {
                counters.received.fetch_add(done, Relaxed);
            }
            fresh = false;
        }
        // Acks are small: write them at once; the socket is nearly always
        // writable, and waiting would hold back the broker's prefetch window.
        if !acks.is_empty() {
            match conn.stream.try_write(acks) {
                Ok(n) => drop(acks.drain(..n)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
        let interest = if acks.is_empty() { Interest::READABLE } else { Interest::READABLE | Interest::WRITABLE };
        let ready = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return Ok(()),
            r = conn.stream.ready(interest) => r?,
        };
        if ready.is_readable() {
            conn.rbuf.reserve(READ_SIZE);
            match conn.stream.try_read_buf(&mut conn.rbuf) {
                Ok(0) => return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into())),
                Ok(_) => fresh = true,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perf::wire::PublishTemplate;

    /// Turns publish frames into what a broker would deliver, by swapping
    /// the method frame for a basic.deliver.
    fn deliveries(count: usize, size: usize, frame_max: u32) -> Vec<u8> {
        use amq_protocol::frame::{gen_frame, AMQPFrame};
        use amq_protocol::protocol::{basic, AMQPClass};
        let t = PublishTemplate::new(CHANNEL, "", "q", size, false, 0, frame_max);
        let mut one = Vec::new();
        t.append(&mut one, 1, 1_000);
        let (_, publish_len) = wire::next_frame(&one, frame_max).unwrap().unwrap();
        let mut out = Vec::new();
        for i in 0..count {
            let deliver = AMQPFrame::Method(
                CHANNEL,
                AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
                    consumer_tag: "c".into(),
                    delivery_tag: i as u64 + 1,
                    redelivered: false,
                    exchange: "".into(),
                    routing_key: "q".into(),
                })),
            );
            out.extend(cookie_factory::gen_simple(gen_frame(&deliver), Vec::new()).unwrap());
            out.extend_from_slice(&one[publish_len..]);
        }
        out
    }

    fn reader(autoack: bool, every: u64) -> Reader {
        Reader { content: Content::Idle, autoack, every, unacked: 0, last_tag: 0, hist: new_histogram() }
    }

    #[test]
    fn walks_deliveries_split_anywhere_and_acks() {
        let stream = deliveries(3, 10_000, 4096);
        // Every cut through the first message's frames, then a stride.
        for cut in (0..200).chain((200..stream.len()).step_by(97)) {
            let mut r = reader(false, 1);
            let mut acks = Vec::new();
            let (used, first) = r.walk(&stream[..cut], 4096, 3_000, 0, &mut acks).unwrap();
            let (rest, second) = r.walk(&stream[used..], 4096, 3_000, 0, &mut acks).unwrap();
            assert_eq!((used + rest, first + second), (stream.len(), 3), "cut {cut}");
            let mut tags = Vec::new();
            let mut a = &acks[..];
            while let Some((f, n)) = wire::next_frame(a, 4096).unwrap() {
                tags.push(wire::confirm_tag(f.payload).unwrap());
                a = &a[n..];
            }
            assert_eq!(tags, vec![(1, false), (2, false), (3, false)]);
            assert_eq!(r.hist.len(), 3);
            assert_eq!(r.hist.max(), 2, "3000 ns - 1000 ns = 2 µs");
        }
    }

    #[test]
    fn multi_ack_and_autoack() {
        let stream = deliveries(5, 16, 131072);
        let mut r = reader(false, 2);
        let mut acks = Vec::new();
        assert_eq!(r.walk(&stream, 131072, 0, u64::MAX, &mut acks).unwrap(), (stream.len(), 5));
        assert_eq!(acks.len(), 2 * 21);
        assert_eq!((r.unacked, r.last_tag), (1, 5));
        assert_eq!(r.hist.len(), 0, "messages sent before latency_from are not recorded");
        let mut r = reader(true, 1);
        let mut acks = Vec::new();
        assert_eq!(r.walk(&stream, 131072, 0, 0, &mut acks).unwrap().1, 5);
        assert!(acks.is_empty());
    }

    #[test]
    fn content_without_deliver_is_an_error() {
        let stream = deliveries(1, 16, 131072);
        let (_, deliver_len) = wire::next_frame(&stream, 131072).unwrap().unwrap();
        let mut acks = Vec::new();
        assert!(reader(true, 1).walk(&stream[deliver_len..], 131072, 0, 0, &mut acks).is_err());
    }
}
