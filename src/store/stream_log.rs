//! A stream's log: an append-only run of chunks in segment files, read by
//! any number of independent readers, trimmed only by retention.
//!
//! The file format is osiris's (RabbitMQ's stream log), so that the RabbitMQ
//! Stream protocol can later send these chunks as they are (see
//! docs/STORAGE.md, "Stream logs"):
//!
//! ```text
//! <first offset, 20 digits>.segment   "OSIL" u32 1, then chunks
//! <first offset, 20 digits>.index     "OSII" u32 1, then one 29-byte record per chunk
//! ```
//!
//! The writer side ([`StreamLog`]) is owned by one thread: it appends chunks
//! without syncing, then [`StreamLog::sync`] makes them durable and only then
//! visible to readers (the committed offset moves). Readers ([`StreamReader`])
//! share nothing with the writer but [`StreamShared`]: the segment list and
//! the committed offset. They read with positioned reads (the OS page cache
//! serves them), one chunk at a time, so a reader's memory does not depend on
//! the stream's length, and neither does the log's: the per-chunk index stays
//! on disk and is searched there.
//!
//! No AMQP here: a chunk's entries are opaque byte strings.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::RwLock;

use super::fsutil::sync_dir;

const SEGMENT_MAGIC: &[u8; 4] = b"OSIL";
const INDEX_MAGIC: &[u8; 4] = b"OSII";
const FILE_VERSION: u32 = 1;
const FILE_HEADER: u64 = 8;
/// osiris's chunk header: magic 5 and version 0 in one byte.
const CHUNK_MAGIC_VERSION: u8 = 0x50;
pub const CHUNK_HEADER: usize = 48;
const INDEX_RECORD: u64 = 29;
/// Chunk type of user data (osiris: 0 user, 1 tracking delta, 2 tracking snapshot).
pub const CHUNK_USER: u8 = 0;
/// A header claiming more data than this is corrupt (a message is at most
/// 128 MiB, and a chunk holds one oversized entry or several small ones).
const MAX_CHUNK_DATA: u32 = 256 * 1024 * 1024;
/// RabbitMQ's default `x-stream-max-segment-size-bytes`.
pub const DEFAULT_SEGMENT_SIZE: u64 = 500_000_000;

/// The fixed part of a chunk, as osiris lays it out (big-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    pub chunk_type: u8,
    pub num_entries: u16,
    pub num_records: u32,
    /// Milliseconds since the epoch, by the broker's clock; never decreasing.
    pub timestamp: i64,
    pub epoch: u64,
    pub first_offset: u64,
    pub crc: u32,
    pub data_len: u32,
    pub trailer_len: u32,
    pub bloom_len: u8,
}

impl ChunkHeader {
    fn encode(&self, out: &mut BytesMut) {
        out.put_u8(CHUNK_MAGIC_VERSION);
        out.put_u8(self.chunk_type);
        out.put_u16(self.num_entries);
        out.put_u32(self.num_records);
        out.put_i64(self.timestamp);
        out.put_u64(self.epoch);
        out.put_u64(self.first_offset);
        out.put_u32(self.crc);
        out.put_u32(self.data_len);
        out.put_u32(self.trailer_len);
        out.put_u8(self.bloom_len);
        out.put_slice(&[0, 0, 0]);
    }

    /// `None` if `b` is not a chunk header (wrong magic, absurd lengths).
    fn decode(b: &[u8; CHUNK_HEADER]) -> Option<ChunkHeader> {
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().unwrap_or_default());
        if b[0] != CHUNK_MAGIC_VERSION {
            return None;
        }
        let h = ChunkHeader {
            chunk_type: b[1],
            num_entries: u16::from_be_bytes([b[2], b[3]]),
            num_records: u32_at(4),
            timestamp: u64_at(8) as i64,
            epoch: u64_at(16),
            first_offset: u64_at(24),
            crc: u32_at(32),
            data_len: u32_at(36),
            trailer_len: u32_at(40),
            bloom_len: b[44],
        };
        (h.data_len <= MAX_CHUNK_DATA && h.trailer_len <= MAX_CHUNK_DATA).then_some(h)
    }

    /// Bytes of the whole chunk on disk.
    fn size(&self) -> u64 {
        CHUNK_HEADER as u64 + self.bloom_len as u64 + self.data_len as u64 + self.trailer_len as u64
    }

    pub fn next_offset(&self) -> u64 {
        self.first_offset + self.num_records as u64
    }
}

/// The entries of one chunk being built: osiris "simple entries", a 31-bit
/// length (top bit clear) and the bytes.
#[derive(Default)]
pub struct ChunkBuilder {
    data: BytesMut,
    entries: u16,
    bloom: Vec<u8>,
}

impl ChunkBuilder {
    /// A chunk holds at most this many entries (its header counts them in 16 bits).
    pub const MAX_ENTRIES: u16 = u16::MAX;

    pub fn push(&mut self, entry: &[u8]) {
        self.push_parts(&[entry]);
    }

    /// Appends one entry made of `parts` in order, without joining them first.
    pub fn push_parts(&mut self, parts: &[&[u8]]) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        debug_assert!(len < (1 << 31) && self.entries < Self::MAX_ENTRIES);
        self.data.reserve(4 + len);
        self.data.put_u32(len as u32);
        for p in parts {
            self.data.put_slice(p);
        }
        self.entries += 1;
    }

    /// Empties it for the next chunk, keeping its buffer.
    pub fn clear(&mut self) {
        self.data.clear();
        self.entries = 0;
        self.bloom.clear();
    }

    /// The chunk's filter (a Bloom filter of its messages' filter values),
    /// at most 255 bytes.
    pub fn set_bloom(&mut self, bloom: Vec<u8>) {
        debug_assert!(bloom.len() <= 255);
        self.bloom = bloom;
    }

    pub fn len(&self) -> usize {
        self.entries as usize
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    pub fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// The entries of a chunk's data, in order; `None` ends a malformed one.
pub fn entries(data: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.len() < 4 {
            return None;
        }
        let head = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        // A set top bit is an osiris sub-batch (compressed entries); we never
        // write one, and a reader that met one must not guess.
        if head & 0x8000_0000 != 0 {
            return None;
        }
        let len = head as usize;
        let entry = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        Some(entry)
    })
}

/// What the RAM knows of one segment: enough to choose the segment of an
/// offset or a timestamp and to apply retention, not its chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub first_offset: u64,
    /// The offset after its last chunk.
    pub next_offset: u64,
    pub bytes: u64,
    pub chunks: u64,
    /// Timestamp of its first and last chunk (0 while it has none).
    pub first_timestamp: i64,
    pub last_timestamp: i64,
    /// First offset of its last chunk.
    pub last_chunk_offset: u64,
}

/// Where a reader starts, as `x-stream-offset` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The first retained message.
    First,
    /// The last chunk written (all of its messages).
    Last,
    /// Only what is written from now on.
    Next,
    /// This offset (the first retained one if it is gone; next if it is in
    /// the future). Delivery skips the chunk's messages before it.
    Offset(u64),
    /// The first chunk whose timestamp (ms since the epoch) is at or after this.
    Timestamp(i64),
}

/// What the writer and the readers of one stream share.
pub struct StreamShared {
    dir: PathBuf,
    segments: RwLock<Vec<SegmentInfo>>,
    /// Offsets below this are durable and may be read.
    committed: AtomicU64,
    /// First offset of the last durable chunk.
    last_chunk: AtomicU64,
    /// Woken whenever `committed` moves: the broker's dispatcher of this
    /// stream's consumers (a `Waker`, so the store knows nothing of them).
    on_commit: parking_lot::Mutex<Option<std::task::Waker>>,
}

impl StreamShared {
    /// The shared state of a stream in `dir`, empty until a [`StreamLog`] opens it.
    pub fn new(dir: &Path) -> Arc<StreamShared> {
        Arc::new(StreamShared {
            dir: dir.to_owned(),
            segments: RwLock::new(Vec::new()),
            committed: AtomicU64::new(0),
            last_chunk: AtomicU64::new(0),
            on_commit: parking_lot::Mutex::new(None),
        })
    }

    /// Sets what is woken after each move of the committed offset.
    pub fn set_on_commit(&self, waker: std::task::Waker) {
        *self.on_commit.lock() = Some(waker);
    }

    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// The first retained offset.
    pub fn first_offset(&self) -> u64 {
        self.segments.read().first().map(|s| s.first_offset).unwrap_or_else(|| self.committed())
    }

    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.segments.read().clone()
    }

    /// Bytes on disk of the retained segments.
    pub fn bytes(&self) -> u64 {
        self.segments.read().iter().map(|s| s.bytes).sum()
    }

    /// The offset a reader starting at `at` reads first.
    pub fn resolve(&self, at: StartAt) -> io::Result<u64> {
        let committed = self.committed();
        let first = self.first_offset();
        Ok(match at {
            StartAt::First => first,
            StartAt::Next => committed,
            StartAt::Last => {
                if committed == first {
                    committed
                } else {
                    self.last_chunk.load(Ordering::Acquire).max(first)
                }
            }
            StartAt::Offset(o) => o.clamp(first, committed),
            StartAt::Timestamp(ts) => self.offset_at_timestamp(ts)?.unwrap_or(committed).max(first),
        })
    }

    /// First offset of the first chunk with a timestamp at or after `ts`.
    fn offset_at_timestamp(&self, ts: i64) -> io::Result<Option<u64>> {
        let Some(seg) = self.segments.read().iter().find(|s| s.chunks > 0 && s.last_timestamp >= ts).cloned() else {
            return Ok(None);
        };
        if seg.first_timestamp >= ts {
            return Ok(Some(seg.first_offset));
        }
        let index = File::open(index_path(&self.dir, seg.first_offset))?;
        let n = seg.chunks.min(index.metadata()?.len().saturating_sub(FILE_HEADER) / INDEX_RECORD);
        // Chunk timestamps never decrease: the first at or after `ts`.
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if read_index_record(&index, mid)?.timestamp >= ts {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(Some(if lo < n { read_index_record(&index, lo)?.first_offset } else { seg.next_offset }))
    }

    /// The chunk holding `offset`: its segment and its position in the file.
    fn locate(&self, offset: u64) -> io::Result<Option<(u64, u64)>> {
        let seg = {
            let segments = self.segments.read();
            match segments.iter().rev().find(|s| s.first_offset <= offset) {
                Some(s) => s.clone(),
                None => return Ok(None),
            }
        };
        if seg.chunks == 0 || offset >= seg.next_offset {
            return Ok(None);
        }
        let index = File::open(index_path(&self.dir, seg.first_offset))?;
        let n = seg.chunks.min(index.metadata()?.len().saturating_sub(FILE_HEADER) / INDEX_RECORD);
        // The last chunk whose first offset is at or below `offset`.
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if read_index_record(&index, mid)?.first_offset <= offset {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == 0 {
            return Ok(None);
        }
        Ok(Some((seg.first_offset, read_index_record(&index, lo - 1)?.file_pos)))
    }
}

#[derive(Debug, Clone, Copy)]
struct IndexRecord {
    first_offset: u64,
    timestamp: i64,
    file_pos: u64,
}

fn read_index_record(index: &File, i: u64) -> io::Result<IndexRecord> {
    let mut b = [0u8; INDEX_RECORD as usize];
    index.read_exact_at(&mut b, FILE_HEADER + i * INDEX_RECORD)?;
    Ok(IndexRecord {
        first_offset: u64::from_be_bytes(b[0..8].try_into().unwrap_or_default()),
        timestamp: i64::from_be_bytes(b[8..16].try_into().unwrap_or_default()),
        file_pos: u32::from_be_bytes(b[24..28].try_into().unwrap_or_default()) as u64,
    })
}

fn encode_index_record(out: &mut Vec<u8>, h: &ChunkHeader, file_pos: u64) {
    out.extend_from_slice(&h.first_offset.to_be_bytes());
    out.extend_from_slice(&h.timestamp.to_be_bytes());
    out.extend_from_slice(&h.epoch.to_be_bytes());
    out.extend_from_slice(&(file_pos as u32).to_be_bytes());
    out.push(h.chunk_type);
}

pub fn segment_path(dir: &Path, first_offset: u64) -> PathBuf {
    dir.join(format!("{first_offset:020}.segment"))
}

fn index_path(dir: &Path, first_offset: u64) -> PathBuf {
    dir.join(format!("{first_offset:020}.index"))
}

fn file_header(magic: &[u8; 4]) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(magic);
    h[4..].copy_from_slice(&FILE_VERSION.to_be_bytes());
    h
}

/// The segment's valid chunks, scanned from the start: their headers and
/// positions, and where the valid data ends. A chunk that is torn (short),
/// corrupt (CRC) or out of sequence ends the scan.
fn scan_segment(file: &File, first_offset: u64) -> io::Result<(Vec<(ChunkHeader, u64)>, u64)> {
    let len = file.metadata()?.len();
    let mut head = [0u8; 8];
    if len < FILE_HEADER || file.read_exact_at(&mut head, 0).is_err() || head != file_header(SEGMENT_MAGIC) {
        return Ok((Vec::new(), 0));
    }
    let mut chunks = Vec::new();
    let (mut pos, mut expected) = (FILE_HEADER, first_offset);
    let mut data = Vec::new();
    loop {
        let mut hb = [0u8; CHUNK_HEADER];
        if pos + CHUNK_HEADER as u64 > len || file.read_exact_at(&mut hb, pos).is_err() {
            break;
        }
        let Some(h) = ChunkHeader::decode(&hb) else { break };
        if h.first_offset != expected || pos + h.size() > len {
            break;
        }
        data.resize(h.data_len as usize, 0);
        file.read_exact_at(&mut data, pos + CHUNK_HEADER as u64 + h.bloom_len as u64)?;
        if crc32fast::hash(&data) != h.crc {
            break;
        }
        chunks.push((h, pos));
        expected = h.next_offset();
        pos += h.size();
    }
    Ok((chunks, pos))
}

/// The writer's handle on one stream's files. One thread owns it.
pub struct StreamLog {
    shared: Arc<StreamShared>,
    max_segment_size: u64,
    active: File,
    active_index: File,
    active_first: u64,
    /// Bytes of the active segment written by successful appends; a failed
    /// one is cut back here.
    good_len: u64,
    next_offset: u64,
    last_chunk: u64,
    last_timestamp: i64,
    /// Written since the last sync: the active segment, and a new directory entry.
    unsynced: bool,
    dir_dirty: bool,
}

impl StreamLog {
    /// Opens (or creates) the stream log in `dir`. The last segment is
    /// scanned chunk by chunk: a torn or corrupt tail is cut off, and its
    /// index is rewritten to match what remains.
    pub fn open(dir: &Path, max_segment_size: u64) -> io::Result<StreamLog> {
        StreamLog::open_shared(StreamShared::new(dir), max_segment_size)
    }

    /// As [`StreamLog::open`], filling in `shared`, which readers may
    /// already hold (they see nothing until it is open).
    pub fn open_shared(shared: Arc<StreamShared>, max_segment_size: u64) -> io::Result<StreamLog> {
        let dir = shared.dir.clone();
        let dir = dir.as_path();
        fs::create_dir_all(dir)?;
        let mut firsts: Vec<u64> = fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".segment")?.parse().ok())
            .collect();
        firsts.sort_unstable();
        let mut segments = Vec::with_capacity(firsts.len().max(1));
        for (i, &first) in firsts.iter().enumerate() {
            let last = i + 1 == firsts.len();
            segments.push(if last { None } else { Some(sealed_info(dir, first, firsts[i + 1])?) });
        }
        let log = match firsts.last() {
            Some(&first) => {
                let (active, active_index, info) = recover_tail(dir, first)?;
                let mut infos: Vec<SegmentInfo> = segments.into_iter().flatten().collect();
                infos.push(info.clone());
                *shared.segments.write() = infos;
                let last_timestamp = shared.segments.read().iter().map(|s| s.last_timestamp).max().unwrap_or(0);
                StreamLog {
                    shared,
                    max_segment_size,
                    active,
                    active_index,
                    active_first: first,
                    good_len: info.bytes,
                    next_offset: info.next_offset,
                    last_chunk: info.last_chunk_offset,
                    last_timestamp,
                    unsynced: false,
                    dir_dirty: false,
                }
            }
            None => {
                let (active, active_index) = create_segment(dir, 0)?;
                *shared.segments.write() = vec![empty_info(0)];
                sync_dir(dir)?;
                StreamLog {
                    shared,
                    max_segment_size,
                    active,
                    active_index,
                    active_first: 0,
                    good_len: FILE_HEADER,
                    next_offset: 0,
                    last_chunk: 0,
                    last_timestamp: 0,
                    unsynced: false,
                    dir_dirty: false,
                }
            }
        };
        log.publish();
        Ok(log)
    }

    pub fn shared(&self) -> &Arc<StreamShared> {
        &self.shared
    }

    /// The offset the next appended message gets.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// Appends `chunk` (not yet durable, nor visible to readers: see
    /// [`StreamLog::sync`]) and returns its first offset. `timestamp` is
    /// raised to the previous chunk's if the clock went back, so that
    /// timestamps never decrease. A failed write leaves the log as it was.
    pub fn append(&mut self, chunk: &ChunkBuilder, timestamp: i64) -> io::Result<u64> {
        let header = ChunkHeader {
            chunk_type: CHUNK_USER,
            num_entries: chunk.entries,
            num_records: chunk.entries as u32,
            timestamp: timestamp.max(self.last_timestamp),
            epoch: 0,
            first_offset: self.next_offset,
            crc: crc32fast::hash(&chunk.data),
            data_len: chunk.data.len() as u32,
            trailer_len: 0,
            bloom_len: chunk.bloom.len() as u8,
        };
        if self.good_len > FILE_HEADER && self.good_len + header.size() > self.max_segment_size {
            self.roll()?;
        }
        let mut bytes = BytesMut::with_capacity(header.size() as usize);
        header.encode(&mut bytes);
        bytes.put_slice(&chunk.bloom);
        bytes.put_slice(&chunk.data);
        let pos = self.good_len;
        let mut index = Vec::with_capacity(INDEX_RECORD as usize);
        encode_index_record(&mut index, &header, pos);
        let written = self.active.write_all_at(&bytes, pos).and_then(|()| self.append_index(&index));
        if let Err(e) = written {
            let _ = self.active.set_len(pos);
            return Err(e);
        }
        self.good_len += header.size();
        self.next_offset = header.next_offset();
        self.last_chunk = header.first_offset;
        self.last_timestamp = header.timestamp;
        self.unsynced = true;
        let mut segments = self.shared.segments.write();
        if let Some(s) = segments.last_mut() {
            if s.chunks == 0 {
                s.first_timestamp = header.timestamp;
            }
            s.chunks += 1;
            s.bytes = self.good_len;
            s.next_offset = self.next_offset;
            s.last_timestamp = header.timestamp;
            s.last_chunk_offset = header.first_offset;
        }
        Ok(header.first_offset)
    }

    fn append_index(&mut self, record: &[u8]) -> io::Result<()> {
        let at = self.active_index.metadata()?.len();
        // A record torn by an earlier failure is overwritten: keep the
        // index a whole number of records.
        let at = FILE_HEADER + (at.saturating_sub(FILE_HEADER) / INDEX_RECORD) * INDEX_RECORD;
        self.active_index.write_all_at(record, at)
    }

    /// Makes every appended chunk durable, then lets readers see it.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.unsynced {
            self.active.sync_data()?;
            self.unsynced = false;
        }
        if self.dir_dirty {
            sync_dir(&self.shared.dir)?;
            self.dir_dirty = false;
        }
        self.publish();
        Ok(())
    }

    fn publish(&self) {
        self.shared.last_chunk.store(self.last_chunk, Ordering::Release);
        let before = self.shared.committed.swap(self.next_offset, Ordering::AcqRel);
        if before != self.next_offset {
            // Cloned out first: no waker runs under the lock.
            let waker = self.shared.on_commit.lock().clone();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    /// Seals the active segment (its data and index durable) and starts
    /// the next, named by the next offset.
    fn roll(&mut self) -> io::Result<()> {
        self.active.sync_data()?;
        self.active_index.sync_data()?;
        let (file, index) = create_segment(&self.shared.dir, self.next_offset)?;
        self.active = file;
        self.active_index = index;
        self.active_first = self.next_offset;
        self.good_len = FILE_HEADER;
        self.unsynced = false;
        self.dir_dirty = true;
        self.shared.segments.write().push(empty_info(self.next_offset));
        Ok(())
    }

    /// Removes whole segments, oldest first, while the retained bytes exceed
    /// `max_bytes` or a segment's newest chunk is older than `max_age_ms`
    /// before `now_ms`. The active segment always stays, as in RabbitMQ.
    /// Returns how many were removed.
    pub fn apply_retention(
        &mut self,
        now_ms: i64,
        max_bytes: Option<u64>,
        max_age_ms: Option<u64>,
    ) -> io::Result<usize> {
        let mut removed = 0;
        loop {
            let victim = {
                let segments = self.shared.segments.read();
                if segments.len() < 2 {
                    break;
                }
                let total: u64 = segments.iter().map(|s| s.bytes).sum();
                let oldest = &segments[0];
                let too_big = max_bytes.is_some_and(|m| total > m);
                let too_old = max_age_ms.is_some_and(|age| oldest.last_timestamp < now_ms.saturating_sub(age as i64));
                if !(too_big || too_old) {
                    break;
                }
                oldest.first_offset
            };
            // Out of the list first: a reader looking for it from now on
            // starts at the next one. One that has it open keeps reading it.
            self.shared.segments.write().remove(0);
            fs::remove_file(segment_path(&self.shared.dir, victim))?;
            let _ = fs::remove_file(index_path(&self.shared.dir, victim));
            removed += 1;
        }
        if removed > 0 {
            sync_dir(&self.shared.dir)?;
        }
        Ok(removed)
    }
}

fn empty_info(first_offset: u64) -> SegmentInfo {
    SegmentInfo {
        first_offset,
        next_offset: first_offset,
        bytes: FILE_HEADER,
        chunks: 0,
        first_timestamp: 0,
        last_timestamp: 0,
        last_chunk_offset: first_offset,
    }
}

fn create_segment(dir: &Path, first_offset: u64) -> io::Result<(File, File)> {
    let open = |p: PathBuf, magic| -> io::Result<File> {
        let mut f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(p)?;
        f.write_all(&file_header(magic))?;
        Ok(f)
    };
    Ok((open(segment_path(dir, first_offset), SEGMENT_MAGIC)?, open(index_path(dir, first_offset), INDEX_MAGIC)?))
}

/// A sealed segment's summary, from its index (synced when it was sealed);
/// one whose index is missing or short is scanned instead.
fn sealed_info(dir: &Path, first: u64, next_first: u64) -> io::Result<SegmentInfo> {
    let seg = File::open(segment_path(dir, first))?;
    let bytes = seg.metadata()?.len();
    let from_index = (|| -> io::Result<Option<SegmentInfo>> {
        let index = File::open(index_path(dir, first))?;
        let n = index.metadata()?.len().saturating_sub(FILE_HEADER) / INDEX_RECORD;
        if n == 0 {
            return Ok(None);
        }
        let (a, z) = (read_index_record(&index, 0)?, read_index_record(&index, n - 1)?);
        Ok(Some(SegmentInfo {
            first_offset: first,
            next_offset: next_first,
            bytes,
            chunks: n,
            first_timestamp: a.timestamp,
            last_timestamp: z.timestamp,
            last_chunk_offset: z.first_offset,
        }))
    })();
    if let Ok(Some(info)) = from_index {
        return Ok(info);
    }
    let (chunks, _) = scan_segment(&seg, first)?;
    Ok(info_from_scan(first, &chunks, bytes))
}

fn info_from_scan(first: u64, chunks: &[(ChunkHeader, u64)], bytes: u64) -> SegmentInfo {
    let mut info = empty_info(first);
    info.bytes = bytes;
    if let (Some((a, _)), Some((z, _))) = (chunks.first(), chunks.last()) {
        info.chunks = chunks.len() as u64;
        info.first_timestamp = a.timestamp;
        info.last_timestamp = z.timestamp;
        info.last_chunk_offset = z.first_offset;
        info.next_offset = z.next_offset();
    }
    info
}

/// Opens the last segment for appending: scans it, cuts off a torn tail
/// (durably), and rewrites its index from the scan.
fn recover_tail(dir: &Path, first: u64) -> io::Result<(File, File, SegmentInfo)> {
    let seg = OpenOptions::new().read(true).write(true).open(segment_path(dir, first))?;
    let (chunks, valid_end) = scan_segment(&seg, first)?;
    if valid_end < FILE_HEADER {
        seg.set_len(0)?;
        seg.write_all_at(&file_header(SEGMENT_MAGIC), 0)?;
    } else if seg.metadata()?.len() > valid_end {
        tracing::warn!(
            segment = %segment_path(dir, first).display(),
            "stream log: cutting a torn or corrupt tail at byte {valid_end}"
        );
        seg.set_len(valid_end)?;
    }
    seg.sync_data()?;
    let mut index_bytes = file_header(INDEX_MAGIC).to_vec();
    for (h, pos) in &chunks {
        encode_index_record(&mut index_bytes, h, *pos);
    }
    let index = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(index_path(dir, first))?;
    index.write_all_at(&index_bytes, 0)?;
    index.sync_data()?;
    let bytes = valid_end.max(FILE_HEADER);
    Ok((seg, index, info_from_scan(first, &chunks, bytes)))
}

/// One chunk read back: its header and its data (the entries; see [`entries`]).
#[derive(Debug, Clone)]
pub struct Chunk {
    pub header: ChunkHeader,
    pub bloom: Bytes,
    pub data: Bytes,
}

/// An independent reader of one stream, from a start position on. It holds
/// one open segment file and one chunk at a time.
pub struct StreamReader {
    shared: Arc<StreamShared>,
    /// The offset of the next chunk to read.
    next: u64,
    /// The open segment (its first offset) and the position of the next chunk in it.
    open: Option<(u64, File, u64)>,
}

impl StreamReader {
    /// A reader positioned at `at`; also returns the offset of the first
    /// message it is to deliver (chunks are read whole: messages of the
    /// first chunk before that offset are the caller's to skip).
    pub fn new(shared: Arc<StreamShared>, at: StartAt) -> io::Result<(StreamReader, u64)> {
        let start = shared.resolve(at)?;
        let mut reader = StreamReader { shared, next: start, open: None };
        reader.seek(start)?;
        Ok((reader, start))
    }

    /// The offset the next chunk read starts at (or the chunk that holds it).
    pub fn position(&self) -> u64 {
        self.next
    }

    fn seek(&mut self, offset: u64) -> io::Result<()> {
        self.open = None;
        if let Some((seg_first, pos)) = self.shared.locate(offset)? {
            let file = File::open(segment_path(&self.shared.dir, seg_first))?;
            self.open = Some((seg_first, file, pos));
            let mut hb = [0u8; CHUNK_HEADER];
            if let Some((_, f, pos)) = &self.open {
                f.read_exact_at(&mut hb, *pos)?;
                if let Some(h) = ChunkHeader::decode(&hb) {
                    self.next = h.first_offset;
                    return Ok(());
                }
            }
            return Err(io::Error::new(io::ErrorKind::InvalidData, "stream index points at no chunk"));
        }
        self.next = offset;
        Ok(())
    }

    /// The next durable chunk, or `None` if the reader has read everything
    /// committed so far. A reader that fell behind retention jumps to the
    /// first retained chunk (the returned chunk's offset says where it is).
    pub fn next_chunk(&mut self) -> io::Result<Option<Chunk>> {
        loop {
            if self.next >= self.shared.committed() {
                return Ok(None);
            }
            let first = self.shared.first_offset();
            if self.next < first && self.open.is_none() {
                self.seek(first)?;
                continue;
            }
            let Some((seg_first, file, pos)) = &mut self.open else {
                self.seek(self.next)?;
                if self.open.is_none() {
                    // Committed but not locatable: a new segment's info
                    // lags its first chunk for an instant; try again later.
                    return Ok(None);
                }
                continue;
            };
            let mut hb = [0u8; CHUNK_HEADER];
            match file.read_exact_at(&mut hb, *pos) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    // The end of a sealed segment: on to the one after it.
                    let done = *seg_first;
                    self.open = None;
                    if self.shared.segments.read().iter().all(|s| s.first_offset <= done) {
                        return Ok(None);
                    }
                    continue;
                }
                Err(e) => return Err(e),
            }
            let header = ChunkHeader::decode(&hb)
                .filter(|h| h.first_offset == self.next)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "stream chunk out of sequence"))?;
            let mut body = vec![0u8; header.bloom_len as usize + header.data_len as usize];
            file.read_exact_at(&mut body, *pos + CHUNK_HEADER as u64)?;
            let mut body = Bytes::from(body);
            let data = body.split_off(header.bloom_len as usize);
            if crc32fast::hash(&data) != header.crc {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "stream chunk CRC mismatch"));
            }
            *pos += header.size();
            self.next = header.next_offset();
            return Ok(Some(Chunk { header, bloom: body, data }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("warren-stream-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn chunk_of(msgs: &[&[u8]]) -> ChunkBuilder {
        let mut b = ChunkBuilder::default();
        for m in msgs {
            b.push(m);
        }
        b
    }

    fn read_all(shared: &Arc<StreamShared>, at: StartAt) -> (u64, Vec<(u64, Vec<u8>)>) {
        let (mut r, start) = StreamReader::new(Arc::clone(shared), at).unwrap();
        let mut out = Vec::new();
        while let Some(c) = r.next_chunk().unwrap() {
            for (i, e) in entries(&c.data).enumerate() {
                out.push((c.header.first_offset + i as u64, e.to_vec()));
            }
        }
        (start, out)
    }

    #[test]
    fn chunks_are_visible_only_once_synced_and_offsets_count_messages() {
        let dir = tmpdir("visible");
        let mut log = StreamLog::open(&dir, DEFAULT_SEGMENT_SIZE).unwrap();
        assert_eq!(log.append(&chunk_of(&[b"a", b"b", b"c"]), 10).unwrap(), 0);
        assert_eq!(read_all(log.shared(), StartAt::First).1, vec![], "not durable yet");
        log.sync().unwrap();
        assert_eq!(log.append(&chunk_of(&[b"d"]), 20).unwrap(), 3);
        log.sync().unwrap();
        let (start, all) = read_all(log.shared(), StartAt::First);
        assert_eq!(start, 0);
        assert_eq!(all, vec![(0, b"a".to_vec()), (1, b"b".to_vec()), (2, b"c".to_vec()), (3, b"d".to_vec())]);
        assert_eq!(read_all(log.shared(), StartAt::Last).1, vec![(3, b"d".to_vec())]);
        assert_eq!(read_all(log.shared(), StartAt::Next), (4, vec![]));
        // Offset 1 is inside the first chunk: the reader returns that chunk
        // and says where delivery starts.
        let (start, got) = read_all(log.shared(), StartAt::Offset(1));
        assert_eq!((start, got.len()), (1, 4));
        assert_eq!(read_all(log.shared(), StartAt::Offset(99)).0, 4, "a future offset is next");
        assert_eq!(read_all(log.shared(), StartAt::Timestamp(15)).1, vec![(3, b"d".to_vec())]);
        assert_eq!(read_all(log.shared(), StartAt::Timestamp(0)).1.len(), 4);
        assert_eq!(read_all(log.shared(), StartAt::Timestamp(21)).0, 4);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn segments_roll_and_offsets_and_timestamps_survive_a_reopen() {
        let dir = tmpdir("roll");
        let body = [7u8; 1000];
        {
            let mut log = StreamLog::open(&dir, 8 * 1024).unwrap();
            for i in 0..50 {
                log.append(&chunk_of(&[&body, &body]), 1000 + i).unwrap();
                log.sync().unwrap();
            }
            assert!(log.shared().segments().len() >= 10, "{:?}", log.shared().segments().len());
        }
        let log = StreamLog::open(&dir, 8 * 1024).unwrap();
        assert_eq!(log.next_offset(), 100);
        let (_, all) = read_all(log.shared(), StartAt::First);
        assert_eq!(all.len(), 100);
        assert!(all.iter().enumerate().all(|(i, (o, b))| *o == i as u64 && b[..] == body[..]));
        // Chunk 30 (offsets 60, 61) has timestamp 1030, in some middle segment.
        assert_eq!(read_all(log.shared(), StartAt::Timestamp(1030)).0, 60);
        assert_eq!(read_all(log.shared(), StartAt::Offset(61)).0, 61);
        assert_eq!(read_all(log.shared(), StartAt::Offset(61)).1[0].0, 60, "whole chunks");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_or_corrupt_tail_is_cut_off_at_open_and_appends_continue() {
        let dir = tmpdir("torn");
        let path;
        {
            let mut log = StreamLog::open(&dir, DEFAULT_SEGMENT_SIZE).unwrap();
            log.append(&chunk_of(&[b"kept-1", b"kept-2"]), 1).unwrap();
            log.sync().unwrap();
            log.append(&chunk_of(&[b"torn"]), 2).unwrap();
            log.sync().unwrap();
            path = segment_path(&dir, 0);
        }
        // Tear the last chunk: every length short of whole must be cut.
        let full = fs::metadata(&path).unwrap().len();
        for cut in [1, 5, CHUNK_HEADER as u64 + 2] {
            let f = OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(full - cut).unwrap();
            drop(f);
            let log = StreamLog::open(&dir, DEFAULT_SEGMENT_SIZE).unwrap();
            assert_eq!(log.next_offset(), 2, "cut {cut}");
            assert_eq!(read_all(log.shared(), StartAt::First).1.len(), 2);
            drop(log);
            // Put a whole second chunk back for the next round.
            let mut log = StreamLog::open(&dir, DEFAULT_SEGMENT_SIZE).unwrap();
            log.append(&chunk_of(&[b"torn"]), 2).unwrap();
            log.sync().unwrap();
        }
        // A flipped bit in the last chunk's data fails its CRC.
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let mut log = StreamLog::open(&dir, DEFAULT_SEGMENT_SIZE).unwrap();
        assert_eq!(log.next_offset(), 2);
        assert_eq!(log.append(&chunk_of(&[b"after"]), 3).unwrap(), 2);
        log.sync().unwrap();
        let got: Vec<_> = read_all(log.shared(), StartAt::First).1.into_iter().map(|(_, b)| b).collect();
        assert_eq!(got, vec![b"kept-1".to_vec(), b"kept-2".to_vec(), b"after".to_vec()]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn retention_removes_whole_old_segments_and_readers_move_to_the_first_kept() {
        let dir = tmpdir("retention");
        let body = [1u8; 1000];
        let mut log = StreamLog::open(&dir, 4 * 1024).unwrap();
        for i in 0..40 {
            log.append(&chunk_of(&[&body]), i * 1000).unwrap();
            log.sync().unwrap();
        }
        let (mut early, _) = StreamReader::new(Arc::clone(log.shared()), StartAt::First).unwrap();
        let before = log.shared().segments().len();
        assert_eq!(log.apply_retention(40_000, Some(u64::MAX), None).unwrap(), 0);
        let removed = log.apply_retention(40_000, Some(12 * 1024), None).unwrap();
        assert!(removed > 0 && log.shared().bytes() <= 12 * 1024, "{removed}, {}", log.shared().bytes());
        assert_eq!(log.shared().segments().len(), before - removed);
        let first = log.shared().first_offset();
        assert!(first > 0);
        // A new reader at `first` or at a removed offset starts at the first kept.
        assert_eq!(read_all(log.shared(), StartAt::First).1[0].0, first);
        assert_eq!(read_all(log.shared(), StartAt::Offset(0)).0, first);
        // Offsets never move: the kept messages keep theirs.
        assert_eq!(read_all(log.shared(), StartAt::First).1.last().unwrap().0, 39);
        // A reader positioned before the cut reads on (it holds its file) and
        // ends at the same last offset.
        let mut last = 0;
        while let Some(c) = early.next_chunk().unwrap() {
            last = c.header.next_offset();
        }
        assert_eq!(last, 40);
        // By age: segments whose newest chunk is older than 5 s before t=40 s.
        log.apply_retention(40_000, None, Some(5_000)).unwrap();
        assert!(log.shared().segments()[0].last_timestamp >= 35_000);
        // The active segment stays even when everything is too old.
        log.apply_retention(1_000_000, None, Some(1)).unwrap();
        assert_eq!(log.shared().segments().len(), 1);
        assert_eq!(log.next_offset(), 40);
        drop(log);
        let log = StreamLog::open(&dir, 4 * 1024).unwrap();
        assert_eq!((log.shared().first_offset(), log.next_offset()), (log.shared().segments()[0].first_offset, 40));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_timestamp_never_goes_back_and_entries_stop_at_garbage() {
        let dir = tmpdir("ts");
        let mut log = StreamLog::open(&dir, DEFAULT_SEGMENT_SIZE).unwrap();
        log.append(&chunk_of(&[b"x"]), 500).unwrap();
        log.append(&chunk_of(&[b"y"]), 100).unwrap();
        log.sync().unwrap();
        let (mut r, _) = StreamReader::new(Arc::clone(log.shared()), StartAt::First).unwrap();
        let a = r.next_chunk().unwrap().unwrap();
        let b = r.next_chunk().unwrap().unwrap();
        assert_eq!((a.header.timestamp, b.header.timestamp), (500, 500));
        assert!(r.next_chunk().unwrap().is_none());
        let garbage = [0u8, 0, 0, 2, b'o', b'k', 0, 0, 0, 9, b'x'];
        assert_eq!(entries(&garbage).collect::<Vec<_>>(), vec![&b"ok"[..]]);
        assert_eq!(entries(&[0x80, 0, 0, 1, 1]).count(), 0, "a sub-batch is not guessed at");
        let _ = fs::remove_dir_all(&dir);
    }
}
