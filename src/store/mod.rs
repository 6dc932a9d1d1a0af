//! The store: the only code that touches disk for broker state.
//!
//! Layout of the data directory (see docs/STORAGE.md for the write and
//! recovery paths as numbered steps):
//!
//! ```text
//! lock                    held (flock) while a Warren uses the directory
//! clean_shutdown          present only between a clean stop and the next start
//! definitions.json        snapshot of the durable definitions (RabbitMQ's format)
//! definitions.journal     changes since the snapshot (see journal.rs)
//! queues/<sha256>/meta.json    the queue's vhost and name
//! queues/<sha256>/NNNNNNNN.seg its log segments (see segments.rs)
//! streams/<sha256>/…           a stream's segment log (see stream_log.rs, streams.rs)
//! ```
//!
//! One writer thread owns every segment file and the journal. Connection
//! tasks hand it requests through a channel and never block on disk; each
//! request gets a ticket. The writer writes everything that is waiting,
//! fsyncs each touched file and directory once (group commit), records which
//! tickets failed, then publishes how far it got ([`Progress`]) and wakes
//! whoever waits for it through the `std::task::Waker` each registered (a
//! connection's outbox, for its confirms and held replies). The store knows
//! nothing above it: no AMQP, no broker or protocol types.

pub mod definitions;
mod fsutil;
pub(crate) mod journal;
pub(crate) mod paging;
pub(crate) mod progress;
pub(crate) mod segments;
pub mod stream_log;
pub mod streams;
mod writer;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::task::Waker;
use std::thread::JoinHandle;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::message::Message;
use definitions::Definitions;
pub use fsutil::{free_bytes, sync_dir};
pub use journal::DefChange;
pub use progress::{Outcome, Progress, TicketRange};
use segments::{Record, KIND_ACK, KIND_DELIVERED};
use writer::Writer;

/// Past this many bytes queued for the writer, publishers are blocked (the
/// store's back-pressure); below [`BACKLOG_LOW`] they are let go again.
pub const BACKLOG_HIGH: u64 = 64 * 1024 * 1024;
pub const BACKLOG_LOW: u64 = 32 * 1024 * 1024;
/// See [`Health::written_steps`].
pub const WRITTEN_STEP: u64 = 4 * 1024 * 1024;
/// What a request without a body is counted as in the backlog.
const REQUEST_COST: u64 = 64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use data directory {path}")]
    Unusable { path: PathBuf, source: io::Error },
    #[error("data directory {0} is in use by another running Warren (its lock file is held); stop it or pass another --data-dir")]
    Locked(PathBuf),
}

/// What a queue's log held at start.
pub struct RecoveredQueue {
    pub vhost: String,
    pub name: String,
    /// In queue order: seq, message, whether it had been delivered before.
    pub messages: Vec<(u64, Message, bool)>,
    dir: PathBuf,
    segments: Vec<SegmentState>,
}

pub struct Recovered {
    pub definitions: Option<Definitions>,
    pub queues: Vec<RecoveredQueue>,
    /// False after a crash: every recovered message is then marked
    /// redelivered, since acks and delivery marks after the last fsync may
    /// be lost.
    pub clean_shutdown: bool,
}

#[derive(Debug, Clone)]
struct SegmentState {
    number: u64,
    /// Seqs of the message records it holds (`None`: markers only).
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    /// Message records not yet acknowledged.
    live: u64,
}

/// Requests stay small (the rare large ones boxed): every message moves
/// one through the channel and the writer's batch.
enum Request {
    Open(Box<OpenQueue>),
    Message { id: u64, seq: u64, message: Arc<Message>, waker: Option<Waker> },
    Marker { id: u64, kind: u8, seq: u64 },
    Delete { id: u64 },
    Definition(Box<DefChange>),
    Stream { id: u64, req: Box<streams::StreamRequest> },
    ResetDefinitions { defs: Box<Definitions>, done: Sender<io::Result<()>> },
    Sync { done: Sender<()> },
    Close { done: Sender<()> },
}

/// A queue log the writer is to keep: `recovered` holds the segments a
/// recovered queue already has; `None` for a queue declared in this run.
struct OpenQueue {
    id: u64,
    dir: PathBuf,
    vhost: String,
    name: String,
    recovered: Option<Vec<SegmentState>>,
}

/// A request with its ticket and what it weighs in the backlog.
struct Envelope {
    ticket: u64,
    cost: u64,
    req: Request,
}

/// What the store tells the broker about itself, for its alarms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// More than [`BACKLOG_HIGH`] bytes wait for the writer.
    pub backlog_full: bool,
    /// Writes that failed so far (a full disk, an I/O error): a rise means
    /// a fresh failure.
    pub failed_writes: u64,
    /// Bumped every [`WRITTEN_STEP`] bytes written: the disk monitor checks
    /// free space then too, so a fast publisher cannot outrun its timer.
    pub written_steps: u64,
}

/// State the senders and the writer thread share.
struct Shared {
    progress: Progress,
    /// Whoever holds a reply until more tickets are resolved (a connection,
    /// through its outbox); woken (and forgotten) after the next batch.
    waiting: Mutex<Vec<Waker>>,
    /// Bytes queued for the writer and not yet written.
    backlog: AtomicU64,
    /// Mirrors `health.backlog_full` so senders test it without a lock.
    backlog_full: AtomicBool,
    health: watch::Sender<Health>,
}

pub struct Store {
    dir: PathBuf,
    /// Holds the directory's flock until the store closes.
    lock: Mutex<Option<File>>,
    /// The ticket counter lives under the same lock as the sender so tickets
    /// reach the writer in increasing order.
    sender: Mutex<(u64, Sender<Envelope>)>,
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    next_queue_id: AtomicU64,
    /// The last ticket given to a definitions change.
    definitions_issued: AtomicU64,
    /// Off while start-up imports what is already on disk: the snapshot
    /// written at the end of start-up covers it.
    recording: AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish()
    }
}

fn unusable(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Unusable { path: path.to_owned(), source }
}

/// The directory name of a queue's log: SHA-256 of vhost and name, so no two
/// queues a client can name share a directory (a 64-bit hash of client-chosen
/// names can be made to collide). The names themselves are in meta.json,
/// checked before the directory is used.
fn queue_dir_name(vhost: &str, name: &str) -> String {
    let digest = Sha256::new().chain_update(vhost).chain_update([0u8]).chain_update(name).finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Opens (creating if needed) and locks the data directory, then reads
    /// back definitions and every queue log.
    pub fn open(dir: &Path) -> Result<(Arc<Store>, Recovered), StoreError> {
        let existed = dir.join("queues").exists();
        fs::create_dir_all(dir.join("queues")).map_err(unusable(dir))?;
        if !existed {
            sync_dir(dir).and_then(|_| dir.parent().map_or(Ok(()), sync_dir)).map_err(unusable(dir))?;
        }
        let lock_path = dir.join("lock");
        let lock =
            OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(unusable(dir))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(StoreError::Locked(dir.to_owned())),
            Err(fs::TryLockError::Error(e)) => return Err(unusable(dir)(e)),
        }
        // Prove we can write here before anything depends on it.
        let probe = dir.join(".write-probe");
        File::create(&probe).and_then(|mut f| f.write_all(b"ok")).map_err(unusable(dir))?;
        let _ = fs::remove_file(&probe);

        // Page files are scratch; what must survive is in the queue logs.
        let _ = fs::remove_dir_all(dir.join("paging"));
        let clean_marker = dir.join("clean_shutdown");
        let clean_shutdown = clean_marker.exists();
        if clean_shutdown {
            // Durably gone before anything else happens: a crash in this run
            // must not look like a clean stop at the next start.
            fs::remove_file(&clean_marker).map_err(unusable(dir))?;
            sync_dir(dir).map_err(unusable(dir))?;
        }
        let (journal, definitions) = journal::Journal::recover(dir).map_err(unusable(dir))?;
        let mut queues = Vec::new();
        for entry in fs::read_dir(dir.join("queues")).map_err(unusable(dir))? {
            let path = entry.map_err(unusable(dir))?.path();
            if !path.is_dir() {
                continue;
            }
            match recover_queue(&path) {
                Ok(Some(q)) => queues.push(q),
                Ok(None) => {
                    // Created, then cut off before meta.json was durable: it
                    // never held a confirmed message.
                    tracing::warn!(dir = %path.display(), "queue directory without meta.json; removing");
                    let _ = fs::remove_dir_all(&path);
                }
                Err(e) => return Err(unusable(&path)(e)),
            }
        }

        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            progress: Progress::default(),
            waiting: Mutex::new(Vec::new()),
            backlog: AtomicU64::new(0),
            backlog_full: AtomicBool::new(false),
            health: watch::Sender::new(Health::default()),
        });
        let writer_shared = Arc::clone(&shared);
        let writer_dir = dir.to_owned();
        let writer = std::thread::Builder::new()
            .name("warren-store".into())
            .spawn(move || Writer::new(writer_dir, writer_shared, journal).run(rx))
            .map_err(unusable(dir))?;
        let store = Arc::new(Store {
            dir: dir.to_owned(),
            lock: Mutex::new(Some(lock)),
            sender: Mutex::new((0, tx)),
            shared,
            writer: Mutex::new(Some(writer)),
            next_queue_id: AtomicU64::new(1),
            definitions_issued: AtomicU64::new(0),
            recording: AtomicBool::new(false),
        });
        Ok((store, Recovered { definitions, queues, clean_shutdown }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A fresh directory for one queue's page files (see `paging.rs`;
    /// nothing is created until the first page-out). When to page is the
    /// queue's decision, not the store's.
    pub fn paging_dir(&self, vhost: &str, name: &str) -> PathBuf {
        self.dir.join("paging").join(format!(
            "{}-{}",
            &queue_dir_name(vhost, name)[..16],
            self.next_queue_id.fetch_add(1, Ordering::Relaxed)
        ))
    }

    fn send(&self, cost: u64, req: Request) -> u64 {
        // Counted before the send, so the writer's subtraction never comes first.
        let queued = self.shared.backlog.fetch_add(cost, Ordering::AcqRel) + cost;
        if queued > BACKLOG_HIGH && !self.shared.backlog_full.swap(true, Ordering::AcqRel) {
            self.shared.health.send_modify(|h| h.backlog_full = true);
        }
        let mut s = self.sender.lock();
        s.0 += 1;
        let ticket = s.0;
        // The writer only stops when the store closes; a send after that is
        // a shutdown race and the record is moot.
        let _ = s.1.send(Envelope { ticket, cost, req });
        ticket
    }

    /// The log of a new durable queue, or of a recovered one (`recovered`
    /// carries its directory and segment state). Nothing touches the disk
    /// until the first record: a queue that never holds a persistent
    /// message never gets a directory.
    pub fn queue_log(self: &Arc<Self>, vhost: &str, name: &str, recovered: Option<&RecoveredQueue>) -> Arc<QueueLog> {
        let id = self.next_queue_id.fetch_add(1, Ordering::Relaxed);
        let (dir, recovered) = match recovered {
            Some(r) => (r.dir.clone(), Some(r.segments.clone())),
            None => (self.dir.join("queues").join(queue_dir_name(vhost, name)), None),
        };
        let open = OpenQueue { id, dir, vhost: vhost.to_owned(), name: name.to_owned(), recovered };
        self.send(REQUEST_COST, Request::Open(Box::new(open)));
        Arc::new(QueueLog { id, store: Arc::clone(self) })
    }

    /// Removes the log of a queue that is in no definition (deleted before
    /// a crash could record it).
    pub fn discard_recovered(&self, q: RecoveredQueue) {
        let _ = fs::remove_dir_all(&q.dir);
    }

    /// How far the writer got, and which tickets failed.
    pub fn progress(&self) -> &Progress {
        &self.shared.progress
    }

    /// Wakes `waker` once the writer has resolved more tickets (after its
    /// next batch), from the writer thread: waking must be quick and must
    /// not block. Register, then check the outcome again: a batch that ended
    /// in between is then seen, so no wake-up is lost. Registering a waker
    /// that `will_wake` the same task as one already waiting adds nothing.
    pub fn wake_when_resolved(&self, waker: Waker) {
        let mut waiting = self.shared.waiting.lock();
        if !waiting.iter().any(|w| w.will_wake(&waker)) {
            waiting.push(waker);
        }
    }

    pub fn health(&self) -> watch::Receiver<Health> {
        self.shared.health.subscribe()
    }

    /// Records a change to the durable definitions; its ticket resolves once
    /// the change is on disk. During start-up's import, nothing is recorded.
    pub fn record(&self, change: DefChange) -> u64 {
        if !self.recording.load(Ordering::Acquire) {
            return 0;
        }
        let ticket = self.send(REQUEST_COST, Request::Definition(Box::new(change)));
        self.definitions_issued.fetch_max(ticket, Ordering::AcqRel);
        ticket
    }

    /// The last ticket given to a definitions change.
    pub fn definitions_issued(&self) -> u64 {
        self.definitions_issued.load(Ordering::Acquire)
    }

    /// Replaces the durable definitions with `defs` (a snapshot), waits until
    /// it is on disk, and starts recording changes. Called once start-up has
    /// imported everything.
    pub fn reset_definitions(&self, defs: Definitions) -> io::Result<()> {
        let (done, wait) = mpsc::channel();
        self.send(REQUEST_COST, Request::ResetDefinitions { defs: Box::new(defs), done });
        self.recording.store(true, Ordering::Release);
        wait.recv().map_err(|_| io::Error::other("the store writer stopped"))?
    }

    /// Waits until everything sent so far has been written (or failed).
    /// Blocks: for start-up, shutdown and tests, never a connection task.
    pub fn sync(&self) {
        let (done, wait) = mpsc::channel();
        self.send(REQUEST_COST, Request::Sync { done });
        let _ = wait.recv();
    }

    /// Flushes, marks the shutdown clean and stops the writer.
    pub fn close(&self) {
        let Some(handle) = self.writer.lock().take() else { return };
        let (done, wait) = mpsc::channel();
        self.send(REQUEST_COST, Request::Close { done });
        let _ = wait.recv();
        let _ = handle.join();
        // Releasing the lock lets the next Warren (or this process, restarted
        // in a test) open the directory even while stray handles linger.
        self.lock.lock().take();
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

/// A durable queue's handle on its log.
#[derive(Debug)]
pub struct QueueLog {
    id: u64,
    store: Arc<Store>,
}

impl QueueLog {
    /// Appends a message; returns the ticket whose outcome says whether the
    /// record reached the disk. `waker` is woken (from the writer thread,
    /// once per batch however many of its messages the batch held) when the
    /// ticket is resolved. A waker made from an `Arc` (`Waker::from`) costs
    /// one reference count per message, no allocation.
    pub fn append_message(&self, seq: u64, message: &Arc<Message>, waker: Option<Waker>) -> u64 {
        let cost = (message.body.len() + message.properties.len() + message.routing_key.len()) as u64 + REQUEST_COST;
        self.store.send(cost, Request::Message { id: self.id, seq, message: Arc::clone(message), waker })
    }

    pub fn append_ack(&self, seq: u64) {
        self.store.send(REQUEST_COST, Request::Marker { id: self.id, kind: KIND_ACK, seq });
    }

    pub fn append_delivered(&self, seq: u64) {
        self.store.send(REQUEST_COST, Request::Marker { id: self.id, kind: KIND_DELIVERED, seq });
    }

    /// The queue was deleted: its directory goes.
    pub fn delete(&self) {
        self.store.send(REQUEST_COST, Request::Delete { id: self.id });
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}

fn recover_queue(dir: &Path) -> io::Result<Option<RecoveredQueue>> {
    let meta_path = dir.join("meta.json");
    let Ok(meta) = fs::read_to_string(&meta_path) else { return Ok(None) };
    let meta: serde_json::Value =
        serde_json::from_str(&meta).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let (Some(vhost), Some(name)) = (meta["vhost"].as_str(), meta["name"].as_str()) else {
        return Ok(None);
    };
    let numbers = segments::list_segments(dir)?;
    let mut messages: std::collections::BTreeMap<u64, (Message, bool, usize)> = Default::default();
    let mut segs: Vec<SegmentState> = Vec::new();
    for (i, &number) in numbers.iter().enumerate() {
        let path = segments::segment_path(dir, number);
        let (records, valid, total) = segments::read_segment(&path)?;
        if valid < total {
            tracing::warn!(
                segment = %path.display(),
                "dropping {} bytes of torn or corrupt records at the end",
                total - valid
            );
            if i + 1 == numbers.len() {
                let f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(valid)?;
                f.sync_all()?;
            }
        }
        let mut seg = SegmentState { number, first_seq: None, last_seq: None, live: 0 };
        for r in records {
            match r {
                Record::Message { seq, message } => {
                    seg.first_seq.get_or_insert(seq);
                    seg.last_seq = Some(seq);
                    messages.insert(seq, (message, false, segs.len()));
                }
                Record::Ack { seq } => {
                    messages.remove(&seq);
                }
                Record::Delivered { seq } => {
                    if let Some(m) = messages.get_mut(&seq) {
                        m.1 = true;
                    }
                }
            }
        }
        segs.push(seg);
    }
    for (_, (_, _, seg)) in messages.iter() {
        segs[*seg].live += 1;
    }
    Ok(Some(RecoveredQueue {
        vhost: vhost.to_owned(),
        name: name.to_owned(),
        messages: messages.into_iter().map(|(seq, (m, delivered, _))| (seq, m, delivered)).collect(),
        dir: dir.to_owned(),
        segments: segs,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("warren-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn msg(body: &str) -> Arc<Message> {
        Arc::new(Message::new(
            Bytes::new(),
            Bytes::from_static(b"q"),
            Bytes::from_static(&[0x10, 0, 2]),
            Bytes::copy_from_slice(body.as_bytes()),
        ))
    }

    #[test]
    fn messages_acks_and_delivery_marks_survive_a_restart() {
        let dir = tmpdir("restart");
        {
            let (store, rec) = Store::open(&dir).unwrap();
            assert!(rec.queues.is_empty());
            let log = store.queue_log("/", "q", None);
            let mut tickets = TicketRange::default();
            for i in 0..5 {
                tickets.add(log.append_message(i, &msg(&format!("m{i}")), None));
            }
            log.append_ack(1);
            log.append_delivered(3);
            store.sync();
            assert_eq!(store.progress().outcome(tickets), Outcome::Durable);
            store.close();
        }
        let (store, rec) = Store::open(&dir).unwrap();
        assert!(rec.clean_shutdown);
        assert_eq!(rec.queues.len(), 1);
        let q = &rec.queues[0];
        assert_eq!((q.vhost.as_str(), q.name.as_str()), ("/", "q"));
        assert_eq!(q.dir.file_name().unwrap().to_str().unwrap(), queue_dir_name("/", "q"));
        let got: Vec<(u64, String, bool)> =
            q.messages.iter().map(|(s, m, d)| (*s, String::from_utf8(m.body.to_vec()).unwrap(), *d)).collect();
        assert_eq!(
            got,
            vec![(0, "m0".into(), false), (2, "m2".into(), false), (3, "m3".into(), true), (4, "m4".into(), false)]
        );
        drop(store);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Counts its wake-ups, as a connection's outbox would take them.
    #[derive(Default)]
    struct Count(AtomicU64);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn waiters_are_woken_through_their_waker_once_per_batch() {
        let dir = tmpdir("wake");
        let (store, _) = Store::open(&dir).unwrap();
        let log = store.queue_log("/", "q", None);
        let publisher = Arc::new(Count::default());
        let t = log.append_message(0, &msg("m"), Some(Waker::from(Arc::clone(&publisher))));
        store.sync();
        assert_eq!(store.progress().outcome(TicketRange { lo: t, hi: t }), Outcome::Durable);
        assert!(publisher.0.load(Ordering::SeqCst) >= 1, "the publisher's waker ran once its message was written");

        // A held reply registers; registering the same waker twice is one wake-up.
        let holder = Arc::new(Count::default());
        store.wake_when_resolved(Waker::from(Arc::clone(&holder)));
        store.wake_when_resolved(Waker::from(Arc::clone(&holder)));
        assert_eq!(holder.0.load(Ordering::SeqCst), 0);
        store.sync();
        assert_eq!(holder.0.load(Ordering::SeqCst), 1);
        // Forgotten once woken.
        store.sync();
        assert_eq!(holder.0.load(Ordering::SeqCst), 1);
        drop(store);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_second_open_is_refused_while_locked() {
        let dir = tmpdir("lock");
        let (store, _) = Store::open(&dir).unwrap();
        assert!(matches!(Store::open(&dir), Err(StoreError::Locked(_))));
        drop(store);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn directory_names_do_not_collide_and_foreign_directories_are_refused() {
        assert_ne!(queue_dir_name("/", "a\0b"), queue_dir_name("/a", "b"));
        assert_eq!(queue_dir_name("/", "q").len(), 64);
        let dir = tmpdir("foreign");
        let (store, _) = Store::open(&dir).unwrap();
        // Another queue's directory where this one's should be: its records
        // must fail (nack), not mix into the other queue's log.
        let qdir = dir.join("queues").join(queue_dir_name("/", "mine"));
        fs::create_dir_all(&qdir).unwrap();
        fs::write(qdir.join("meta.json"), r#"{"vhost":"/","name":"theirs"}"#).unwrap();
        let log = store.queue_log("/", "mine", None);
        let t = log.append_message(0, &msg("x"), None);
        store.sync();
        assert_eq!(store.progress().outcome(TicketRange { lo: t, hi: t }), Outcome::Failed);
        assert!(segments::list_segments(&qdir).unwrap().is_empty());
        drop(store);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_is_a_failed_ticket_and_later_writes_still_recover() {
        let dir = tmpdir("fail");
        {
            let (store, _) = Store::open(&dir).unwrap();
            let good = store.queue_log("/", "good", None);
            let t1 = good.append_message(0, &msg("before"), None);
            // A queue whose directory cannot be created (a file is in the way).
            let bad_dir = dir.join("queues").join(queue_dir_name("/", "bad"));
            fs::write(&bad_dir, b"not a directory").unwrap();
            let bad = store.queue_log("/", "bad", None);
            let t2 = bad.append_message(0, &msg("lost"), None);
            let t3 = good.append_message(1, &msg("after"), None);
            store.sync();
            let p = store.progress();
            assert_eq!(p.outcome(TicketRange { lo: t1, hi: t1 }), Outcome::Durable);
            assert_eq!(p.outcome(TicketRange { lo: t2, hi: t2 }), Outcome::Failed);
            assert_eq!(p.outcome(TicketRange { lo: t3, hi: t3 }), Outcome::Durable);
            fs::remove_file(&bad_dir).unwrap();
            store.close();
        }
        let (_store, rec) = Store::open(&dir).unwrap();
        let good = rec.queues.iter().find(|q| q.name == "good").unwrap();
        assert_eq!(good.messages.len(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn acked_head_segments_are_reclaimed() {
        let dir = tmpdir("reclaim");
        let (store, _) = Store::open(&dir).unwrap();
        let log = store.queue_log("/", "q", None);
        // Two segments' worth: the first fills past SEGMENT_SIZE.
        let big = Arc::new(Message::new(
            Bytes::new(),
            Bytes::from_static(b"q"),
            Bytes::from_static(&[0x10, 0, 2]),
            Bytes::from(vec![7u8; (writer::SEGMENT_SIZE / 2) as usize]),
        ));
        for seq in 0..3 {
            log.append_message(seq, &big, None);
            store.sync();
        }
        let qdir = dir.join("queues").join(queue_dir_name("/", "q"));
        assert_eq!(segments::list_segments(&qdir).unwrap(), vec![1, 2]);
        log.append_ack(0);
        log.append_ack(1);
        store.sync();
        assert_eq!(segments::list_segments(&qdir).unwrap(), vec![2]);
        drop(store);
        fs::remove_dir_all(&dir).unwrap();
    }
}
