//! One producer: one connection, one channel, one task.
//!
//! The hot loop refills one write buffer with pre-encoded messages (up to
//! `HIGH_WATER` bytes, within the confirm window and the rate limit), writes
//! it with as few syscalls as the socket allows, and parses confirms from
//! the same socket in the same task. No locks, no per-message allocation.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Buf;
use tokio::io::Interest;
use tokio::sync::{mpsc, watch};

use super::conn::{Conn, Target, CHANNEL};
use super::stats::{now_ns, Counters};
use super::wire::{self, PublishTemplate, CLASS_BASIC, FRAME_METHOD};
use super::{broker_close, Error};

/// Refill once fewer than this many bytes wait to be written...
const LOW_WATER: usize = 32 * 1024;
/// ...up to this many.
const HIGH_WATER: usize = 128 * 1024;

/// What one producer publishes and how.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub id: usize,
    pub exchange: String,
    pub routing_key: String,
    /// Index into `Counters::sent_to`.
    pub queue_idx: usize,
    pub size: usize,
    pub persistent: bool,
    /// Header entries on every publish (`--headers`).
    pub headers: usize,
    /// Most unconfirmed messages in flight; 0 = no confirms.
    pub confirm: usize,
    /// This producer's share of the total rate, msgs/s; 0 = unlimited.
    pub rate: f64,
    /// How long to wait for outstanding confirms after the deadline.
    pub drain: Duration,
}

/// When to publish, sent to every producer at once.
#[derive(Debug, Clone, Copy)]
pub(super) struct Go {
    pub start: Instant,
    pub deadline: Instant,
}

/// Publisher-confirm bookkeeping: which of the in-flight sequence numbers
/// have been settled. The broker may confirm out of order and with
/// `multiple`; both are O(1) amortised per message.
#[derive(Debug, Default)]
pub(super) struct Outstanding {
    /// Sequence number (delivery tag) of `settled[0]`; tags start at 1.
    base: u64,
    settled: VecDeque<bool>,
}

impl Outstanding {
    pub(super) fn new() -> Self {
        Outstanding { base: 1, settled: VecDeque::new() }
    }

    /// In flight, counting out-of-order settled ones not yet at the front.
    pub(super) fn len(&self) -> usize {
        self.settled.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.settled.is_empty()
    }

    pub(super) fn publish(&mut self, n: usize) {
        self.settled.extend(std::iter::repeat_n(false, n));
    }

    /// Settles `tag` (and every earlier one when `multiple`); returns how
    /// many messages this newly settled.
    pub(super) fn settle(&mut self, tag: u64, multiple: bool) -> u64 {
        if tag < self.base {
            return 0;
        }
        let idx = (tag - self.base) as usize;
        if idx >= self.settled.len() {
            return 0; // a tag we never published: ignore rather than panic
        }
        let mut newly = 0;
        if multiple {
            for s in self.settled.drain(..=idx) {
                newly += !s as u64;
            }
            self.base = tag + 1;
        } else if !self.settled[idx] {
            self.settled[idx] = true;
            newly = 1;
        }
        while self.settled.front() == Some(&true) {
            self.settled.pop_front();
            self.base += 1;
        }
        newly
    }
}

/// Connects, waits for `go`, publishes until the deadline, collects
/// confirms (bounded) and closes. Failures go to `counters`.
pub(super) async fn run(
    target: Target,
    plan: Plan,
    counters: Arc<Counters>,
    ready: mpsc::Sender<bool>,
    mut go: watch::Receiver<Option<Go>>,
) {
    let setup = async {
        let mut conn = Conn::open(&target, &format!("warren-perf-producer-{}", plan.id)).await?;
        if plan.confirm > 0 {
            conn.confirm_select().await?;
        }
        Ok::<_, Error>(conn)
    };
    let mut conn = match setup.await {
        Ok(c) => c,
        Err(e) => {
            counters.error("producer setup", e);
            let _ = ready.send(false).await;
            return;
        }
    };
    let _ = ready.send(true).await;
    let Ok(go) = go.wait_for(|g| g.is_some()).await.map(|g| g.expect("checked by wait_for")) else {
        conn.close(Duration::from_secs(2)).await;
        return;
    };
    if let Err(e) = publish(&mut conn, &plan, &counters, go).await {
        counters.error(&format!("producer {}", plan.id), e);
    }
    conn.close(plan.drain.max(Duration::from_secs(2))).await;
}

async fn publish(conn: &mut Conn, plan: &Plan, counters: &Counters, go: Go) -> Result<(), Error> {
    let template = PublishTemplate::new(
        CHANNEL,
        &plan.exchange,
        &plan.routing_key,
        plan.size,
        plan.persistent,
        plan.headers,
        conn.frame_max,
    );
    let mut wbuf: Vec<u8> = Vec::with_capacity(HIGH_WATER + template.len());
    let mut written = 0usize;
    let mut published = 0u64;
    let mut outstanding = Outstanding::new();
    let mut blocked = false;
    let drain_deadline = go.deadline + plan.drain;
    let sent_to = &counters.sent_to[plan.queue_idx];
    loop {
        let now = Instant::now();
        let publishing = now < go.deadline && !blocked;
        let mut next_due = None;
        if publishing && wbuf.len() - written < LOW_WATER {
            if written > 0 {
                wbuf.drain(..written);
                written = 0;
            }
            let mut n = if wbuf.is_empty() {
                (HIGH_WATER / template.len()).max(1)
            } else {
                (HIGH_WATER - wbuf.len()) / template.len()
            };
            if plan.confirm > 0 {
                n = n.min(plan.confirm.saturating_sub(outstanding.len()));
            }
            if plan.rate > 0.0 {
                let since = now.saturating_duration_since(go.start).as_secs_f64();
                let due = (since * plan.rate) as u64 + 1;
                n = n.min(due.saturating_sub(published) as usize);
                if n == 0 {
                    next_due = Some(go.start + Duration::from_secs_f64(published as f64 / plan.rate));
                }
            }
            if n > 0 {
                template.append(&mut wbuf, n, now_ns());
                published += n as u64;
                if plan.confirm > 0 {
                    outstanding.publish(n);
                }
                counters.sent.fetch_add(n as u64, Relaxed);
                sent_to.fetch_add(n as u64, Relaxed);
            }
        }
        let pending = written < wbuf.len();
        if !publishing && !pending && outstanding.is_empty() {
            return Ok(());
        }
        if now >= drain_deadline {
            if !outstanding.is_empty() {
                return Err(Error::Protocol(format!("{} messages never confirmed", outstanding.len())));
            }
            return Err(Error::Timeout("flushing the last publishes"));
        }
        let wake = if publishing { next_due.unwrap_or(go.deadline).min(go.deadline) } else { drain_deadline };
        let interest = if pending { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
        let ready = tokio::select! {
            r = conn.stream.ready(interest) => r?,
            _ = tokio::time::sleep_until(wake.into()) => continue,
        };
        if ready.is_writable() && pending {
            match conn.stream.try_write(&wbuf[written..]) {
                Ok(n) => {
                    written += n;
                    if written == wbuf.len() {
                        wbuf.clear();
                        written = 0;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
        if ready.is_readable() {
            conn.rbuf.reserve(64 * 1024);
            match conn.stream.try_read_buf(&mut conn.rbuf) {
                Ok(0) => return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into())),
                Ok(_) => {
                    let (confirmed, nacked) = read_confirms(conn, &mut outstanding, &mut blocked)?;
                    if confirmed > 0 {
                        counters.confirmed.fetch_add(confirmed, Relaxed);
                    }
                    if nacked > 0 {
                        counters.nacked.fetch_add(nacked, Relaxed);
                        counters.error("publish", format!("{nacked} messages nacked by the broker"));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Parses every complete frame in the read buffer: confirms, flow control
/// and closes. Returns (confirmed, nacked).
fn read_confirms(conn: &mut Conn, outstanding: &mut Outstanding, blocked: &mut bool) -> Result<(u64, u64), Error> {
    let (mut confirmed, mut nacked) = (0, 0);
    let mut pos = 0;
    while let Some((f, n)) = wire::next_frame(&conn.rbuf[pos..], conn.frame_max)? {
        pos += n;
        if f.kind != FRAME_METHOD {
            continue;
        }
        match wire::method_id(f.payload) {
            Some((CLASS_BASIC, wire::METHOD_BASIC_ACK)) => {
                let (tag, multiple) = wire::confirm_tag(f.payload).ok_or(Error::Protocol("short basic.ack".into()))?;
                confirmed += outstanding.settle(tag, multiple);
            }
            Some((CLASS_BASIC, wire::METHOD_BASIC_NACK)) => {
                let (tag, multiple) = wire::confirm_tag(f.payload).ok_or(Error::Protocol("short basic.nack".into()))?;
                nacked += outstanding.settle(tag, multiple);
            }
            Some((wire::CLASS_CONNECTION, wire::METHOD_CONNECTION_BLOCKED)) => *blocked = true,
            Some((wire::CLASS_CONNECTION, wire::METHOD_CONNECTION_UNBLOCKED)) => *blocked = false,
            Some((CLASS_BASIC, wire::METHOD_BASIC_RETURN)) => {}
            Some(_) => {
                if let Some(e) = broker_close(f.payload) {
                    return Err(e);
                }
            }
            None => return Err(Error::Protocol("short method frame".into())),
        }
    }
    conn.rbuf.advance(pos);
    Ok((confirmed, nacked))
}

#[cfg(test)]
mod tests {
    use super::Outstanding;

    #[test]
    fn outstanding_settles_in_and_out_of_order() {
        let mut o = Outstanding::new();
        o.publish(5);
        assert_eq!(o.settle(2, false), 1);
        assert_eq!(o.len(), 5, "tag 1 still in flight holds the front");
        assert_eq!(o.settle(1, false), 1);
        assert_eq!(o.len(), 3);
        assert_eq!(o.settle(4, true), 2, "3 and 4; 1 and 2 were settled already");
        assert_eq!(o.len(), 1);
        assert_eq!(o.settle(4, true), 0, "repeat is harmless");
        assert_eq!(o.settle(99, false), 0, "unknown tag ignored");
        assert_eq!(o.settle(5, false), 1);
        assert!(o.is_empty());
    }

    #[test]
    fn multiple_counts_only_unsettled() {
        let mut o = Outstanding::new();
        o.publish(10);
        assert_eq!(o.settle(7, false), 1);
        assert_eq!(o.settle(10, true), 9);
        assert!(o.is_empty());
    }
}
