//! The writer thread: the one owner of every queue log file and of the
//! definitions journal.
//!
//! It takes every request waiting as one batch, encodes each queue's records
//! into one buffer, writes each buffer with one `write`, fdatasyncs each file
//! that got a message record, fsyncs each directory that got a new entry,
//! and only then resolves the batch's tickets (group commit). A queue whose
//! write or sync failed has its tickets marked failed first — their confirms
//! become nacks — and its file is cut back to where the batch began, so a
//! torn record cannot hide the records written after it.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use bytes::BytesMut;

use super::fsutil::{sync_dir, write_atomic};
use super::journal::{DefChange, Journal};
use super::segments::{self, KIND_ACK};
use super::streams::{StreamFiles, StreamRequest};
use super::{Envelope, OpenQueue, Request, SegmentState, Shared, BACKLOG_LOW};

/// A segment is closed and a new one started past this size, so that fully
/// acknowledged segments can be deleted whole. Each new segment costs a
/// file creation, the old one's sync and a directory fsync: at 16 MiB that
/// took a tenth off persistent throughput.
pub(super) const SEGMENT_SIZE: u64 = 64 * 1024 * 1024;
/// Requests taken into one batch at most, and bytes (the batch is encoded
/// into buffers before it is written, so this bounds the writer's memory).
const MAX_BATCH: usize = 4096;
const MAX_BATCH_BYTES: u64 = 8 * 1024 * 1024;
/// A queue's encode buffer is given back past this size instead of kept.
const KEEP_BUFFER: usize = 1024 * 1024;

/// The segment records are appended to.
struct Active {
    file: File,
    /// Bytes written by completed batches; a failed batch is cut back here.
    good_len: u64,
}

/// The writer's view of one queue's files.
pub(super) struct QueueFiles {
    dir: PathBuf,
    vhost: String,
    name: String,
    /// A queue declared in this run: a directory already holding its name is
    /// a leftover of a deleted namesake, and its segments are not ours.
    fresh: bool,
    /// The directory and its meta.json exist and their names are durable.
    dir_ready: bool,
    segments: VecDeque<SegmentState>,
    active: Option<Active>,
    /// Records encoded in this batch, written at its end.
    pending: BytesMut,
    /// This batch put a message record in `pending` (which then needs an fdatasync).
    has_messages: bool,
    /// A file was created or removed here in this batch: fsync the directory.
    dir_dirty: bool,
    /// Tickets of this batch's records, failed together if the batch fails.
    tickets: Vec<u64>,
    /// The first error of this batch; later records of the batch are not written.
    failed: Option<io::Error>,
}

impl QueueFiles {
    pub(super) fn new(dir: PathBuf, vhost: String, name: String, recovered: Option<Vec<SegmentState>>) -> Self {
        let fresh = recovered.is_none();
        QueueFiles {
            dir,
            vhost,
            name,
            fresh,
            dir_ready: !fresh,
            segments: recovered.unwrap_or_default().into(),
            active: None,
            pending: BytesMut::new(),
            has_messages: false,
            dir_dirty: false,
            tickets: Vec::new(),
            failed: None,
        }
    }

    fn next_number(&self) -> u64 {
        self.segments.back().map(|s| s.number + 1).unwrap_or(1)
    }

    /// Creates the queue directory and meta.json on first use, durably, and
    /// refuses a directory that belongs to another queue.
    fn ensure_dir(&mut self) -> io::Result<()> {
        if self.dir_ready {
            return Ok(());
        }
        let meta = self.dir.join("meta.json");
        match fs::read_to_string(&meta) {
            Ok(text) => {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                if v["vhost"].as_str() != Some(&self.vhost) || v["name"].as_str() != Some(&self.name) {
                    return Err(io::Error::other(format!(
                        "queue directory {} belongs to queue '{}' in vhost '{}', not to '{}' in '{}'",
                        self.dir.display(),
                        v["name"].as_str().unwrap_or("?"),
                        v["vhost"].as_str().unwrap_or("?"),
                        self.name,
                        self.vhost
                    )));
                }
                if self.fresh {
                    let stale = segments::list_segments(&self.dir)?;
                    if !stale.is_empty() {
                        tracing::warn!(dir = %self.dir.display(), "removing {} segments of a deleted queue of the same name", stale.len());
                        for n in stale {
                            fs::remove_file(segments::segment_path(&self.dir, n))?;
                        }
                        sync_dir(&self.dir)?;
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(&self.dir)?;
                let json = serde_json::json!({ "vhost": self.vhost, "name": self.name });
                write_atomic(&meta, json.to_string().as_bytes())?;
                if let Some(parent) = self.dir.parent() {
                    sync_dir(parent)?;
                }
            }
            Err(e) => return Err(e),
        }
        self.dir_ready = true;
        Ok(())
    }

    /// Makes sure records can be appended: a directory, and an active segment
    /// with room. A full segment is written out and synced before the next
    /// one starts, since its tail may hold this batch's messages.
    fn prepare(&mut self) -> io::Result<()> {
        let full = self.active.as_ref().is_some_and(|a| a.good_len + self.pending.len() as u64 >= SEGMENT_SIZE);
        if self.active.is_some() && !full {
            return Ok(());
        }
        self.ensure_dir()?;
        if let Some(mut a) = self.active.take() {
            if !self.pending.is_empty() {
                a.file.write_all(&self.pending)?;
                a.file.sync_data()?;
                self.pending.clear();
            }
        }
        let number = self.next_number();
        let file = OpenOptions::new().create(true).append(true).open(segments::segment_path(&self.dir, number))?;
        self.segments.push_back(SegmentState { number, first_seq: None, last_seq: None, live: 0 });
        self.active = Some(Active { file, good_len: 0 });
        self.dir_dirty = true;
        Ok(())
    }

    fn append_message(&mut self, ticket: u64, seq: u64, message: &crate::message::Message) {
        self.tickets.push(ticket);
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self.prepare() {
            self.failed = Some(e);
            return;
        }
        segments::encode_message(&mut self.pending, seq, message);
        self.has_messages = true;
        if let Some(seg) = self.segments.back_mut() {
            seg.first_seq.get_or_insert(seq);
            seg.last_seq = Some(seq);
            seg.live += 1;
        }
    }

    fn append_marker(&mut self, ticket: u64, kind: u8, seq: u64) {
        self.tickets.push(ticket);
        if kind == KIND_ACK {
            self.ack(seq);
        }
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self.prepare() {
            self.failed = Some(e);
            return;
        }
        segments::encode_marker(&mut self.pending, kind, seq);
    }

    fn ack(&mut self, seq: u64) {
        if let Some(seg) = self
            .segments
            .iter_mut()
            .find(|s| matches!((s.first_seq, s.last_seq), (Some(a), Some(b)) if a <= seq && seq <= b))
        {
            seg.live = seg.live.saturating_sub(1);
        }
    }

    fn write_out(&mut self) -> io::Result<()> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if let Some(a) = self.active.as_mut() {
            if !self.pending.is_empty() {
                a.file.write_all(&self.pending)?;
                // Markers alone need no fsync of their own: losing one in a
                // crash only redelivers (marked redelivered) a message.
                if self.has_messages {
                    a.file.sync_data()?;
                }
                a.good_len += self.pending.len() as u64;
            }
        }
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    /// Writes and syncs what this batch encoded. On failure the file is cut
    /// back to where the batch began (or dropped, if even that fails: the next
    /// record starts a new segment) and the error is returned; the caller
    /// fails `tickets`.
    fn finish_batch(&mut self) -> io::Result<()> {
        let result = self.write_out();
        if result.is_err() {
            if let Some(a) = &self.active {
                if a.file.set_len(a.good_len).and_then(|_| a.file.sync_data()).is_err() {
                    self.active = None;
                }
            }
        } else {
            self.reclaim();
        }
        if self.pending.capacity() > KEEP_BUFFER {
            self.pending = BytesMut::new();
        } else {
            self.pending.clear();
        }
        self.has_messages = false;
        result
    }

    /// Deletes fully acknowledged segments from the head. Only from the head:
    /// a later segment may hold the ack records of earlier messages. The
    /// removal is made durable at once, or an old segment could come back
    /// after a power cut without the acks that a removed later one held.
    fn reclaim(&mut self) {
        let mut removed = false;
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.live == 0) {
            if let Some(s) = self.segments.pop_front() {
                removed |= fs::remove_file(segments::segment_path(&self.dir, s.number)).is_ok();
            }
        }
        if removed {
            if let Err(e) = sync_dir(&self.dir) {
                tracing::warn!(dir = %self.dir.display(), "cannot sync the directory after removing segments: {e}");
            }
        }
    }

    /// Flushes and fully syncs the active segment (clean shutdown).
    fn close(&mut self) {
        if let Some(a) = &self.active {
            let _ = a.file.sync_all();
        }
    }
}

/// Logs a failing store once per episode, not once per write.
#[derive(Default)]
struct Episode {
    /// Failures in the current episode.
    failures: u64,
    /// Failures ever, for the store's health.
    total: u64,
}

impl Episode {
    fn failed(&mut self, what: &str, err: &io::Error) {
        self.total += 1;
        if self.failures == 0 {
            tracing::error!(
                "{what} failed: {err}; the affected publishes are nacked and durable declares refused \
                 until writes succeed again (further errors are counted, not logged)"
            );
        }
        self.failures += 1;
    }

    fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!("store writes succeed again after {} failed writes", self.failures);
            self.failures = 0;
        }
    }
}

pub(super) struct Writer {
    dir: PathBuf,
    shared: Arc<Shared>,
    queues: HashMap<u64, QueueFiles>,
    streams: HashMap<u64, StreamFiles>,
    journal: Journal,
    episode: Episode,
    /// Bytes written since the last `written_steps` bump.
    written: u64,
}

impl Writer {
    pub(super) fn new(dir: PathBuf, shared: Arc<Shared>, journal: Journal) -> Self {
        Writer {
            dir,
            shared,
            queues: HashMap::new(),
            streams: HashMap::new(),
            journal,
            episode: Episode::default(),
            written: 0,
        }
    }

    pub(super) fn run(mut self, rx: Receiver<Envelope>) {
        let mut batch = Vec::new();
        loop {
            // A snapshot owed after a failed definitions write is retried
            // even when nothing else arrives.
            let first = if self.journal.needs_snapshot {
                match rx.recv_timeout(Duration::from_secs(1)) {
                    Ok(r) => Some(r),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                }
            } else {
                match rx.recv() {
                    Ok(r) => Some(r),
                    Err(_) => return,
                }
            };
            let mut bytes = first.as_ref().map_or(0, |e| e.cost);
            batch.extend(first);
            // Group commit: everything already waiting joins this fsync.
            while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(r) => {
                        bytes += r.cost;
                        batch.push(r);
                    }
                    Err(_) => break,
                }
            }
            if self.write_batch(&mut batch) {
                return;
            }
        }
    }

    /// Returns true when the store is closing.
    fn write_batch(&mut self, batch: &mut Vec<Envelope>) -> bool {
        let mut max_ticket = 0;
        let mut cost = 0;
        let mut wakers: Vec<Waker> = Vec::new();
        let mut replies = Vec::new();
        let mut closing = false;
        let mut changes: Vec<DefChange> = Vec::new();
        let mut change_tickets: Vec<u64> = Vec::new();
        let mut failed: Vec<u64> = Vec::new();
        for env in batch.drain(..) {
            max_ticket = max_ticket.max(env.ticket);
            cost += env.cost;
            match env.req {
                Request::Open(open) => {
                    let OpenQueue { id, dir, vhost, name, recovered } = *open;
                    self.queues.insert(id, QueueFiles::new(dir, vhost, name, recovered));
                }
                Request::Message { id, seq, message, waker } => {
                    if let Some(w) = waker {
                        if !wakers.iter().any(|x| x.will_wake(&w)) {
                            wakers.push(w);
                        }
                    }
                    // A queue deleted meanwhile took the message with it.
                    if let Some(q) = self.queues.get_mut(&id) {
                        q.append_message(env.ticket, seq, &message);
                    }
                }
                Request::Marker { id, kind, seq } => {
                    if let Some(q) = self.queues.get_mut(&id) {
                        q.append_marker(env.ticket, kind, seq);
                    }
                }
                Request::Delete { id } => {
                    if let Some(q) = self.queues.remove(&id) {
                        if q.dir.exists() {
                            if let Err(e) = fs::remove_dir_all(&q.dir) {
                                tracing::warn!(dir = %q.dir.display(), "cannot remove a deleted queue's log: {e}");
                            }
                        }
                    }
                }
                Request::Stream { id, req } => match *req {
                    StreamRequest::Open { dir, vhost, name, shared, max_segment_size } => {
                        self.streams.insert(id, StreamFiles::open(dir, vhost, name, shared, max_segment_size));
                    }
                    StreamRequest::Append { message, timestamp_ms, waker } => {
                        if let Some(w) = waker {
                            if !wakers.iter().any(|x| x.will_wake(&w)) {
                                wakers.push(w);
                            }
                        }
                        if let Some(s) = self.streams.get_mut(&id) {
                            s.append(env.ticket, &message, timestamp_ms);
                        }
                    }
                    StreamRequest::Retention { retention, now_ms } => {
                        if let Some(s) = self.streams.get_mut(&id) {
                            s.set_retention(retention, now_ms);
                        }
                    }
                    StreamRequest::Delete => {
                        // Appends of this batch before the delete go with it.
                        if let Some(s) = self.streams.remove(&id) {
                            s.remove();
                        }
                    }
                },
                Request::Definition(change) => {
                    changes.push(*change);
                    change_tickets.push(env.ticket);
                }
                Request::ResetDefinitions { defs, done } => {
                    // Changes sent before the reset are part of what it holds.
                    changes.clear();
                    let _ = done.send(self.journal.reset(*defs));
                }
                Request::Sync { done } => replies.push(done),
                Request::Close { done } => {
                    replies.push(done);
                    closing = true;
                }
            }
        }
        if !changes.is_empty() || self.journal.needs_snapshot {
            match self.journal.commit(&changes) {
                Ok(()) => self.episode.succeeded(),
                Err(e) => {
                    self.episode.failed("writing definitions", &e);
                    failed.extend_from_slice(&change_tickets);
                }
            }
        }
        for q in self.queues.values_mut() {
            if q.pending.is_empty() && !q.dir_dirty && q.failed.is_none() {
                q.tickets.clear();
                continue;
            }
            match q.finish_batch() {
                Ok(()) => self.episode.succeeded(),
                Err(e) => {
                    self.episode.failed(&format!("writing the log of queue '{}' in vhost '{}'", q.name, q.vhost), &e);
                    failed.extend_from_slice(&q.tickets);
                }
            }
            q.tickets.clear();
        }
        for s in self.streams.values_mut() {
            if !s.has_work() {
                continue;
            }
            match s.finish_batch() {
                Ok(()) => self.episode.succeeded(),
                Err(e) => {
                    self.episode.failed(&s.describe(), &e);
                    failed.extend_from_slice(&s.tickets);
                }
            }
            s.tickets.clear();
        }
        if closing {
            for q in self.queues.values_mut() {
                q.close();
            }
            let marker = self.dir.join("clean_shutdown");
            if File::create(&marker).and_then(|f| f.sync_all()).is_ok() {
                let _ = sync_dir(&self.dir);
            }
        }
        self.publish(max_ticket, cost, failed);
        for w in wakers {
            w.wake();
        }
        for r in replies {
            let _ = r.send(());
        }
        closing
    }

    /// Failures first, then the resolved mark: whoever sees a ticket
    /// resolved also sees whether it failed.
    fn publish(&mut self, max_ticket: u64, cost: u64, mut failed: Vec<u64>) {
        let shared = &self.shared;
        failed.sort_unstable();
        let mut run: Option<(u64, u64)> = None;
        for t in failed {
            run = match run {
                Some((lo, hi)) if t <= hi + 1 => Some((lo, hi.max(t))),
                Some((lo, hi)) => {
                    shared.progress.fail(lo, hi);
                    Some((t, t))
                }
                None => Some((t, t)),
            };
        }
        if let Some((lo, hi)) = run {
            shared.progress.fail(lo, hi);
        }
        shared.progress.resolve(max_ticket);
        // Taken out first: no waker runs under the lock.
        let waiting = std::mem::take(&mut *shared.waiting.lock());
        for w in waiting {
            w.wake();
        }
        let left = shared.backlog.fetch_sub(cost, Ordering::AcqRel).saturating_sub(cost);
        let failed_writes = self.episode.total;
        self.written += cost;
        let step = self.written >= super::WRITTEN_STEP;
        if step {
            self.written = 0;
        }
        let backlog_cleared = left < BACKLOG_LOW && shared.backlog_full.swap(false, Ordering::AcqRel);
        shared.health.send_if_modified(|h| {
            let mut changed = false;
            if backlog_cleared && h.backlog_full {
                h.backlog_full = false;
                changed = true;
            }
            if h.failed_writes != failed_writes {
                h.failed_writes = failed_writes;
                changed = true;
            }
            if step {
                h.written_steps += 1;
                changed = true;
            }
            changed
        });
    }
}
