//! Streams in the store: the broker's handle on one stream ([`StreamHandle`])
//! and the writer thread's side of it ([`StreamFiles`]).
//!
//! Messages published to a stream go to the writer like queue records, each
//! with a ticket. The writer turns every message a batch holds for one
//! stream into one chunk (one header, one CRC), appends it, fdatasyncs the
//! segment once for the batch, and only then lets readers see it and
//! resolves the tickets: a confirm means the message is on disk, and a
//! consumer never sees a message that a crash could take back.
//!
//! A stream entry is one message:
//!
//! ```text
//! u8  format                 1
//! u8  len + exchange
//! u8  len + routing key
//! u32 len + properties       the content header's flags and list, as published
//! body                       the rest
//! ```

use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::task::Waker;

use bytes::Bytes;

use super::fsutil::{sync_dir, write_atomic};
use super::stream_log::{ChunkBuilder, StreamLog, StreamShared};
use super::{Request, Store, REQUEST_COST};
use crate::message::Message;

const ENTRY_FORMAT: u8 = 1;
/// A chunk is closed past this much data (or at 65,535 entries) and the
/// batch's next messages go into another: a reader reads one chunk at a time.
const MAX_CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// Retention limits, as `x-max-length-bytes` and `x-max-age` give them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub max_bytes: Option<u64>,
    pub max_age_ms: Option<u64>,
}

/// Appends `m` to `chunk` as a stream entry.
fn encode_entry(chunk: &mut ChunkBuilder, m: &Message) {
    let ex = &m.exchange[..m.exchange.len().min(255)];
    let rk = &m.routing_key[..m.routing_key.len().min(255)];
    chunk.push_parts(&[
        &[ENTRY_FORMAT, ex.len() as u8],
        ex,
        &[rk.len() as u8],
        rk,
        &(m.properties.len() as u32).to_be_bytes(),
        &m.properties,
        &m.body,
    ]);
}

/// The message in a stream entry (sharing `chunk_data`'s memory), or `None`
/// for an entry this version does not know.
pub fn decode_entry(chunk_data: &Bytes, entry: &[u8]) -> Option<Message> {
    if *entry.first()? != ENTRY_FORMAT {
        return None;
    }
    let mut at = 1;
    let mut short = || -> Option<Bytes> {
        let n = *entry.get(at)? as usize;
        let s = entry.get(at + 1..at + 1 + n)?;
        at += 1 + n;
        Some(chunk_data.slice_ref(s))
    };
    let exchange = short()?;
    let routing_key = short()?;
    let plen = entry.get(at..at + 4)?;
    let plen = u32::from_be_bytes([plen[0], plen[1], plen[2], plen[3]]) as usize;
    at += 4;
    let properties = chunk_data.slice_ref(entry.get(at..at + plen)?);
    let body = chunk_data.slice_ref(&entry[at + plen..]);
    Some(Message::new(exchange, routing_key, properties, body))
}

/// What the writer is asked to do with a stream.
pub(super) enum StreamRequest {
    Open { dir: PathBuf, vhost: String, name: String, shared: Arc<StreamShared>, max_segment_size: u64 },
    Append { message: Arc<Message>, timestamp_ms: i64, waker: Option<Waker> },
    Retention { retention: Retention, now_ms: i64 },
    Delete,
}

/// A stream's handle on its log: appends go through the writer; reads go
/// straight to the files through [`StreamHandle::shared`].
#[derive(Debug)]
pub struct StreamHandle {
    id: u64,
    store: Arc<Store>,
    shared: Arc<StreamShared>,
}

impl std::fmt::Debug for StreamShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamShared").field("committed", &self.committed()).finish()
    }
}

impl Store {
    /// The log of a stream: created at the first batch after this call if
    /// it has no directory yet, recovered (its torn tail cut) if it has.
    /// Readers see nothing until the writer has opened it: call
    /// [`Store::sync`] after opening recovered streams at start.
    pub fn stream(self: &Arc<Self>, vhost: &str, name: &str, max_segment_size: u64) -> Arc<StreamHandle> {
        let id = self.next_queue_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self.dir.join("streams").join(super::queue_dir_name(vhost, name));
        let shared = StreamShared::new(&dir);
        let open = StreamRequest::Open {
            dir,
            vhost: vhost.to_owned(),
            name: name.to_owned(),
            shared: Arc::clone(&shared),
            max_segment_size,
        };
        self.send(REQUEST_COST, Request::Stream { id, req: Box::new(open) });
        Arc::new(StreamHandle { id, store: Arc::clone(self), shared })
    }
}

impl Store {
    /// Removes the logs of streams that `keep(vhost, name)` refuses (and
    /// directories naming none), as recovery drops the logs of queues no
    /// definition names. Call at start, before any such stream is declared.
    pub fn remove_streams_except(&self, keep: impl Fn(&str, &str) -> bool) {
        let Ok(dirs) = fs::read_dir(self.dir.join("streams")) else { return };
        for d in dirs.flatten() {
            let meta = fs::read_to_string(d.path().join("meta.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .unwrap_or_default();
            if let (Some(vhost), Some(name)) = (meta["vhost"].as_str(), meta["name"].as_str()) {
                if keep(vhost, name) {
                    continue;
                }
                tracing::warn!(%vhost, stream = %name, "discarding the log of a stream that is no longer defined");
            }
            if let Err(e) = fs::remove_dir_all(d.path()) {
                tracing::warn!(dir = %d.path().display(), "cannot remove an undefined stream's log: {e}");
            }
        }
    }
}

impl StreamHandle {
    pub fn shared(&self) -> &Arc<StreamShared> {
        &self.shared
    }

    /// Appends a message; the ticket's outcome says whether it is on disk
    /// (and from then on readers see it). `timestamp_ms` is broker time,
    /// the chunk's timestamp for `x-max-age` and timestamp offsets.
    pub fn append(&self, message: &Arc<Message>, timestamp_ms: i64, waker: Option<Waker>) -> u64 {
        let cost = (message.body.len() + message.properties.len() + message.routing_key.len()) as u64 + REQUEST_COST;
        let req = StreamRequest::Append { message: Arc::clone(message), timestamp_ms, waker };
        self.store.send(cost, Request::Stream { id: self.id, req: Box::new(req) })
    }

    /// Sets the retention limits and applies them now (`now_ms`, broker
    /// time). The writer applies them again whenever a segment fills.
    pub fn apply_retention(&self, retention: Retention, now_ms: i64) {
        let req = StreamRequest::Retention { retention, now_ms };
        self.store.send(REQUEST_COST, Request::Stream { id: self.id, req: Box::new(req) });
    }

    /// The stream was deleted: its directory goes.
    pub fn delete(&self) {
        self.store.send(REQUEST_COST, Request::Stream { id: self.id, req: Box::new(StreamRequest::Delete) });
    }
}

/// The writer's side of one stream.
pub(super) struct StreamFiles {
    dir: PathBuf,
    vhost: String,
    name: String,
    log: Result<StreamLog, String>,
    pending: ChunkBuilder,
    /// Chunks of this batch already built (the batch overflowed one).
    full: Vec<(ChunkBuilder, i64)>,
    timestamp_ms: i64,
    retention: Retention,
    retention_due: bool,
    now_ms: i64,
    /// Tickets of this batch's messages, failed together if it fails.
    pub(super) tickets: Vec<u64>,
}

impl StreamFiles {
    pub(super) fn open(
        dir: PathBuf,
        vhost: String,
        name: String,
        shared: Arc<StreamShared>,
        max_segment_size: u64,
    ) -> StreamFiles {
        let log =
            open_dir(&dir, &vhost, &name).and_then(|()| StreamLog::open_shared(shared, max_segment_size)).map_err(
                |e| format!("cannot open the log of stream '{name}' in vhost '{vhost}' at {}: {e}", dir.display()),
            );
        if let Err(e) = &log {
            tracing::error!("{e}");
        }
        StreamFiles {
            dir,
            vhost,
            name,
            log,
            pending: ChunkBuilder::default(),
            full: Vec::new(),
            timestamp_ms: 0,
            retention: Retention::default(),
            retention_due: false,
            now_ms: 0,
            tickets: Vec::new(),
        }
    }

    pub(super) fn append(&mut self, ticket: u64, message: &Message, timestamp_ms: i64) {
        if self.pending.len() == ChunkBuilder::MAX_ENTRIES as usize || self.pending.data_len() >= MAX_CHUNK_BYTES {
            let full = std::mem::take(&mut self.pending);
            self.full.push((full, self.timestamp_ms));
        }
        encode_entry(&mut self.pending, message);
        self.timestamp_ms = self.timestamp_ms.max(timestamp_ms);
        self.now_ms = self.now_ms.max(timestamp_ms);
        self.tickets.push(ticket);
    }

    pub(super) fn set_retention(&mut self, retention: Retention, now_ms: i64) {
        self.retention = retention;
        self.now_ms = self.now_ms.max(now_ms);
        self.retention_due = true;
    }

    pub(super) fn has_work(&self) -> bool {
        !self.pending.is_empty() || self.retention_due
    }

    /// Writes this batch's chunks, syncs once, then applies retention.
    pub(super) fn finish_batch(&mut self) -> io::Result<()> {
        let result = self.write_chunks();
        self.pending.clear();
        self.full.clear();
        self.timestamp_ms = 0;
        result?;
        if self.retention_due || self.log.as_ref().is_ok_and(|l| l.shared().segments().len() > 1) {
            self.retention_due = false;
            if let Ok(log) = &mut self.log {
                let r = self.retention;
                if r.max_bytes.is_some() || r.max_age_ms.is_some() {
                    let removed = log.apply_retention(self.now_ms, r.max_bytes, r.max_age_ms)?;
                    if removed > 0 {
                        tracing::debug!(stream = %self.name, vhost = %self.vhost, "retention removed {removed} segments");
                    }
                }
            }
        }
        Ok(())
    }

    fn write_chunks(&mut self) -> io::Result<()> {
        let log = self.log.as_mut().map_err(|e| io::Error::other(e.clone()))?;
        if self.pending.is_empty() && self.full.is_empty() {
            return Ok(());
        }
        for (chunk, ts) in &self.full {
            log.append(chunk, *ts)?;
        }
        if !self.pending.is_empty() {
            log.append(&self.pending, self.timestamp_ms)?;
        }
        log.sync()
    }

    pub(super) fn describe(&self) -> String {
        format!("writing the log of stream '{}' in vhost '{}'", self.name, self.vhost)
    }

    pub(super) fn remove(self) {
        drop(self.log);
        if self.dir.exists() {
            if let Err(e) = fs::remove_dir_all(&self.dir) {
                tracing::warn!(dir = %self.dir.display(), "cannot remove a deleted stream's log: {e}");
            }
        }
    }
}

/// Creates the stream's directory with its meta.json (durably) on first
/// use, and refuses a directory that names another stream.
fn open_dir(dir: &std::path::Path, vhost: &str, name: &str) -> io::Result<()> {
    let meta = dir.join("meta.json");
    match fs::read_to_string(&meta) {
        Ok(text) => {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            if v["vhost"].as_str() != Some(vhost) || v["name"].as_str() != Some(name) {
                return Err(io::Error::other(format!(
                    "the directory belongs to stream '{}' in vhost '{}'",
                    v["name"].as_str().unwrap_or("?"),
                    v["vhost"].as_str().unwrap_or("?")
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = dir.parent().unwrap_or(dir);
            let new_parent = !parent.exists();
            fs::create_dir_all(dir)?;
            if new_parent {
                if let Some(root) = parent.parent() {
                    sync_dir(root)?;
                }
            }
            let body = serde_json::json!({"vhost": vhost, "name": name, "type": "stream"}).to_string();
            write_atomic(&meta, body.as_bytes())?;
            sync_dir(parent)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::super::stream_log::{entries, StartAt, StreamReader};
    use super::super::TicketRange;
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("warren-streams-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn msg(i: usize) -> Arc<Message> {
        Arc::new(Message::new(
            Bytes::from_static(b"amq.direct"),
            Bytes::from(format!("rk.{i}")),
            Bytes::from_static(&[0x10, 0x00, 0x02]),
            Bytes::from(format!("body {i}")),
        ))
    }

    fn read(shared: &Arc<StreamShared>, at: StartAt) -> (Vec<String>, usize) {
        let (mut r, _) = StreamReader::new(Arc::clone(shared), at).unwrap();
        let (mut bodies, mut chunks) = (Vec::new(), 0);
        while let Some(c) = r.next_chunk().unwrap() {
            chunks += 1;
            for e in entries(&c.data) {
                let m = decode_entry(&c.data, e).unwrap();
                assert_eq!(&m.exchange[..], b"amq.direct");
                assert_eq!(&m.properties[..], &[0x10, 0x00, 0x02]);
                bodies.push(String::from_utf8(m.body.to_vec()).unwrap());
            }
        }
        (bodies, chunks)
    }

    #[test]
    fn a_batch_of_publishes_is_one_chunk_resolved_after_it_is_durable_and_survives_a_restart() {
        let dir = tmpdir("batch");
        {
            let (store, _) = Store::open(&dir).unwrap();
            let s = store.stream("/", "events", super::super::stream_log::DEFAULT_SEGMENT_SIZE);
            let tickets: Vec<u64> = (0..100).map(|i| s.append(&msg(i), 1_000, None)).collect();
            store.sync();
            for t in &tickets {
                assert_eq!(store.progress().outcome(TicketRange { lo: *t, hi: *t }), super::super::Outcome::Durable);
            }
            let (bodies, _) = read(s.shared(), StartAt::First);
            assert_eq!(bodies.len(), 100);
            assert_eq!(bodies[99], "body 99");
            store.close();
        }
        let (store, _) = Store::open(&dir).unwrap();
        let s = store.stream("/", "events", super::super::stream_log::DEFAULT_SEGMENT_SIZE);
        store.sync();
        assert_eq!(s.shared().committed(), 100, "offsets stable across restarts");
        s.append(&msg(100), 2_000, None);
        store.sync();
        let (bodies, _) = read(s.shared(), StartAt::Offset(100));
        assert_eq!(bodies, vec!["body 100"]);
        assert_eq!(read(s.shared(), StartAt::First).0.len(), 101);
        s.delete();
        store.sync();
        assert!(!dir.join("streams").join(super::super::queue_dir_name("/", "events")).exists());
        store.close();
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_chunk_per_batch_split_only_past_the_chunk_size() {
        let dir = tmpdir("chunks");
        let shared = StreamShared::new(&dir);
        let mut files = StreamFiles::open(dir.clone(), "/".into(), "s".into(), Arc::clone(&shared), 1 << 30);
        for i in 0..1000 {
            files.append(i + 1, &msg(i as usize), 5);
        }
        files.finish_batch().unwrap();
        let (bodies, chunks) = read(&shared, StartAt::First);
        assert_eq!((bodies.len(), chunks), (1000, 1), "a batch is one chunk");
        let big = Message::new(Bytes::new(), Bytes::new(), Bytes::new(), Bytes::from(vec![0u8; 1 << 20]));
        for t in 0..10 {
            files.append(2000 + t, &big, 6);
        }
        files.finish_batch().unwrap();
        let (mut r, _) = StreamReader::new(Arc::clone(&shared), StartAt::Offset(1000)).unwrap();
        let mut sizes = Vec::new();
        while let Some(c) = r.next_chunk().unwrap() {
            sizes.push(c.header.num_records);
        }
        assert_eq!(sizes, vec![4, 4, 2], "a chunk is closed once it holds {MAX_CHUNK_BYTES} bytes");
        files.remove();
        assert!(!dir.exists());
    }

    #[test]
    fn retention_by_bytes_and_by_age_through_the_store() {
        let dir = tmpdir("retention");
        let (store, _) = Store::open(&dir).unwrap();
        let s = store.stream("v", "logs", 16 * 1024);
        let big = Arc::new(Message::new(Bytes::new(), Bytes::new(), Bytes::new(), Bytes::from(vec![9u8; 4000])));
        for i in 0..30 {
            s.append(&big, i * 1000, None);
            store.sync();
        }
        let before = s.shared().bytes();
        s.apply_retention(Retention { max_bytes: Some(40 * 1024), max_age_ms: None }, 30_000);
        store.sync();
        assert!(s.shared().bytes() <= 40 * 1024 && s.shared().bytes() < before, "{}", s.shared().bytes());
        let first = s.shared().first_offset();
        assert!(first > 0);
        // Set once, applied again as segments fill.
        for i in 30..60 {
            s.append(&big, i * 1000, None);
            store.sync();
        }
        assert!(s.shared().bytes() <= 40 * 1024 + 16 * 1024);
        assert!(s.shared().first_offset() > first);
        s.apply_retention(Retention { max_bytes: None, max_age_ms: Some(1) }, 1_000_000);
        store.sync();
        assert_eq!(s.shared().segments().len(), 1, "only the active segment is left");
        assert_eq!(s.shared().committed(), 60, "offsets never move back");
        store.close();
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_directory_naming_another_stream_fails_its_appends() {
        let dir = tmpdir("foreign");
        let (store, _) = Store::open(&dir).unwrap();
        let sdir = dir.join("streams").join(super::super::queue_dir_name("/", "mine"));
        fs::create_dir_all(&sdir).unwrap();
        fs::write(sdir.join("meta.json"), r#"{"vhost": "/", "name": "theirs"}"#).unwrap();
        let s = store.stream("/", "mine", 1 << 20);
        let t = s.append(&msg(0), 0, None);
        store.sync();
        assert_eq!(store.progress().outcome(TicketRange { lo: t, hi: t }), super::super::Outcome::Failed);
        assert_eq!(s.shared().committed(), 0);
        store.close();
        let _ = fs::remove_dir_all(&dir);
    }
}
