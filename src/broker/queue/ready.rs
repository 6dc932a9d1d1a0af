//! A queue's ready messages: one FIFO per priority level, with the counts
//! the queue reports and pages by (length, body bytes, estimated RAM) and
//! how many carry an expiry.

use std::collections::VecDeque;

use crate::message::QueuedMessage;

/// Ready messages, one FIFO per priority level (one level unless the queue
/// has `x-max-priority`). Higher levels are served first.
#[derive(Debug, Default)]
pub(super) struct Ready {
    pub(super) levels: Vec<VecDeque<QueuedMessage>>,
    pub(super) len: usize,
    pub(super) bytes: u64,
    /// Estimated RAM of the messages held, against the paging budget.
    pub(super) mem: u64,
    /// How many of them have an expiry (so a queue without any skips the
    /// deadline bookkeeping).
    pub(super) expiring: usize,
}

/// What a message costs in RAM, against the queue's paging budget: its
/// bytes plus [`MESSAGE_OVERHEAD`], not body bytes alone, or a refill of tiny
/// messages would be millions of them.
pub(super) fn mem_of(m: &QueuedMessage) -> u64 {
    let msg = &m.message;
    (msg.body.len() + msg.properties.len() + msg.routing_key.len() + msg.exchange.len()) as u64 + MESSAGE_OVERHEAD
}

/// Estimated bookkeeping per message in RAM (structs, Arc, deque slot).
const MESSAGE_OVERHEAD: u64 = 200;

impl Ready {
    pub(super) fn new(levels: usize) -> Self {
        Ready { levels: (0..levels.max(1)).map(|_| VecDeque::new()).collect(), len: 0, bytes: 0, mem: 0, expiring: 0 }
    }

    pub(super) fn level_of(&self, m: &QueuedMessage) -> usize {
        (m.message.priority as usize).min(self.levels.len() - 1)
    }

    pub(super) fn push_back(&mut self, m: QueuedMessage) {
        let l = self.level_of(&m);
        self.len += 1;
        self.bytes += m.message.body.len() as u64;
        self.mem += mem_of(&m);
        self.expiring += m.expires_at.is_some() as usize;
        self.levels[l].push_back(m);
    }

    /// Back at its original position within its level.
    pub(super) fn insert_by_seq(&mut self, m: QueuedMessage) {
        let l = self.level_of(&m);
        self.len += 1;
        self.bytes += m.message.body.len() as u64;
        self.mem += mem_of(&m);
        self.expiring += m.expires_at.is_some() as usize;
        let level = &mut self.levels[l];
        let at = level.partition_point(|r| r.seq < m.seq);
        level.insert(at, m);
    }

    pub(super) fn pop_front(&mut self) -> Option<QueuedMessage> {
        let m = self.levels.iter_mut().rev().find_map(|l| l.pop_front())?;
        self.len -= 1;
        self.bytes -= m.message.body.len() as u64;
        self.mem -= mem_of(&m);
        self.expiring -= m.expires_at.is_some() as usize;
        Some(m)
    }

    /// Takes expired messages from the head of every level (RabbitMQ only
    /// expires messages when they reach the head).
    pub(super) fn take_expired(&mut self, now: u64, out: &mut Vec<QueuedMessage>) {
        for level in self.levels.iter_mut() {
            while level.front().is_some_and(|m| m.expires_at.is_some_and(|t| t <= now)) {
                if let Some(m) = level.pop_front() {
                    self.len -= 1;
                    self.bytes -= m.message.body.len() as u64;
                    self.mem -= mem_of(&m);
                    self.expiring -= 1;
                    out.push(m);
                }
            }
        }
    }

    /// The earliest expiry among the level heads (RabbitMQ expires only at
    /// the head).
    pub(super) fn head_expiry(&self) -> Option<u64> {
        if self.expiring == 0 {
            return None;
        }
        self.levels.iter().filter_map(|l| l.front().and_then(|m| m.expires_at)).min()
    }

    pub(super) fn drain(&mut self) -> Vec<QueuedMessage> {
        self.len = 0;
        self.bytes = 0;
        self.mem = 0;
        self.expiring = 0;
        self.levels.iter_mut().flat_map(|l| l.drain(..)).collect()
    }
}
