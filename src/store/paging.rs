//! A queue's paged tail on disk: page files that messages are appended to
//! in order and read back from in order. Only the disk mechanics live here;
//! the queue (`broker/queue.rs`) does the RAM accounting: its budget, what
//! a message costs in RAM, when to page out and how much to read back.
//!
//! Page files are scratch space, not durability: they are not fsynced and
//! the whole paging directory is cleared at start (persistent messages are
//! recovered from the queue log). A page file is deleted as soon as it has
//! been read back completely.
//!
//! Record: `u32 len, u64 seq, u8 flags (1 persisted, 2 redelivered),
//! u64 expires_at + 1 (0: none), u32 delivery_count, u8 + exchange,
//! u8 + routing key, u32 + properties, body`.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::message::{Message, QueuedMessage};

/// Page files are cut at this size so read-back space is reclaimed early.
const PAGE_FILE_SIZE: u64 = 64 * 1024 * 1024;
/// How much is read from a page file at a time.
const READ_CHUNK: usize = 1024 * 1024;

struct PageFile {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
    written: u64,
    read_pos: u64,
}

pub(crate) struct PagedTail {
    dir: PathBuf,
    next_number: u64,
    files: VecDeque<PageFile>,
    /// Messages on disk.
    pub count: u64,
    /// Their body bytes (for x-max-length-bytes).
    pub bytes: u64,
}

impl std::fmt::Debug for PagedTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagedTail").field("dir", &self.dir).field("count", &self.count).finish()
    }
}

fn encode(buf: &mut BytesMut, m: &QueuedMessage) {
    let msg = &m.message;
    let len =
        8 + 1 + 8 + 4 + 1 + msg.exchange.len() + 1 + msg.routing_key.len() + 4 + msg.properties.len() + msg.body.len();
    buf.reserve(4 + len);
    buf.put_u32(len as u32);
    buf.put_u64(m.seq);
    buf.put_u8(m.persisted as u8 | (m.redelivered as u8) << 1);
    buf.put_u64(m.expires_at.map(|t| t + 1).unwrap_or(0));
    buf.put_u32(m.delivery_count);
    buf.put_u8(msg.exchange.len() as u8);
    buf.put_slice(&msg.exchange);
    buf.put_u8(msg.routing_key.len() as u8);
    buf.put_slice(&msg.routing_key);
    buf.put_u32(msg.properties.len() as u32);
    buf.put_slice(&msg.properties);
    buf.put_slice(&msg.body);
}

/// Decodes one record from the front of `data`; `None` if incomplete.
fn decode(data: &Bytes) -> Option<(QueuedMessage, usize)> {
    let len = u32::from_be_bytes(data.get(0..4)?.try_into().ok()?) as usize;
    let rec = data.get(4..4 + len)?;
    let rec = data.slice_ref(rec);
    let u64_at = |at: usize| -> Option<u64> { Some(u64::from_be_bytes(rec.get(at..at + 8)?.try_into().ok()?)) };
    let seq = u64_at(0)?;
    let flags = *rec.get(8)?;
    let expires = u64_at(9)?;
    let delivery_count = u32::from_be_bytes(rec.get(17..21)?.try_into().ok()?);
    let mut at = 21;
    let mut short = || -> Option<Bytes> {
        let n = *rec.get(at)? as usize;
        let s = rec.slice(at + 1..at + 1 + n);
        at += 1 + n;
        Some(s)
    };
    let exchange = short()?;
    let routing_key = short()?;
    let plen = u32::from_be_bytes(rec.get(at..at + 4)?.try_into().ok()?) as usize;
    at += 4;
    let properties = rec.slice(at..at + plen);
    let body = rec.slice(at + plen..);
    // Copies, so the read chunk is not pinned by whichever message lives longest.
    let message = Message::new(
        Bytes::copy_from_slice(&exchange),
        Bytes::copy_from_slice(&routing_key),
        Bytes::copy_from_slice(&properties),
        Bytes::copy_from_slice(&body),
    );
    let m = QueuedMessage {
        seq,
        message: Arc::new(message),
        persisted: flags & 1 != 0,
        redelivered: flags & 2 != 0,
        expires_at: expires.checked_sub(1),
        delivery_count,
    };
    Some((m, 4 + len))
}

impl PagedTail {
    pub(crate) fn new(dir: PathBuf) -> Self {
        PagedTail { dir, next_number: 1, files: VecDeque::new(), count: 0, bytes: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub(crate) fn push(&mut self, m: &QueuedMessage) -> io::Result<()> {
        let need_new = self.files.back().is_none_or(|f| f.writer.is_none() || f.written >= PAGE_FILE_SIZE);
        if need_new {
            if let Some(last) = self.files.back_mut() {
                if let Some(mut w) = last.writer.take() {
                    w.flush()?;
                }
            }
            fs::create_dir_all(&self.dir)?;
            let path = self.dir.join(format!("{:08}.page", self.next_number));
            self.next_number += 1;
            let file = OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path)?;
            self.files.push_back(PageFile {
                path,
                writer: Some(BufWriter::with_capacity(256 * 1024, file)),
                written: 0,
                read_pos: 0,
            });
        }
        let mut buf = BytesMut::new();
        encode(&mut buf, m);
        let Some(f) = self.files.back_mut() else { return Err(io::Error::other("no page file")) };
        if let Some(w) = f.writer.as_mut() {
            w.write_all(&buf)?;
        }
        f.written += buf.len() as u64;
        self.count += 1;
        self.bytes += m.message.body.len() as u64;
        Ok(())
    }

    /// Reads messages back in order and hands each to `more`, which says
    /// whether to go on; it stops after the first `false` (so at least one
    /// message comes back) or when the tail is empty.
    pub(crate) fn pop_batch(&mut self, mut more: impl FnMut(QueuedMessage) -> bool) -> io::Result<()> {
        let mut going = true;
        while self.count > 0 && going {
            let Some(f) = self.files.front_mut() else { break };
            if let Some(w) = f.writer.as_mut() {
                w.flush()?;
            }
            if f.read_pos >= f.written {
                if f.writer.is_some() {
                    break; // everything written was read
                }
                let done = self.files.pop_front();
                if let Some(d) = done {
                    let _ = fs::remove_file(&d.path);
                }
                continue;
            }
            let mut file = File::open(&f.path)?;
            file.seek(SeekFrom::Start(f.read_pos))?;
            let want = ((f.written - f.read_pos) as usize).min(READ_CHUNK.max(1));
            let mut chunk = vec![0u8; want];
            file.read_exact(&mut chunk)?;
            let mut data = Bytes::from(chunk);
            let mut progressed = false;
            while let Some((m, size)) = decode(&data) {
                progressed = true;
                f.read_pos += size as u64;
                self.count -= 1;
                self.bytes -= m.message.body.len() as u64;
                going = more(m);
                data = data.slice(size..);
                if !going {
                    break;
                }
            }
            if !progressed {
                // A record larger than the chunk: read exactly it.
                let len = u32::from_be_bytes(data.get(0..4).and_then(|b| b.try_into().ok()).unwrap_or([0; 4]));
                let mut whole = vec![0u8; 4 + len as usize];
                file.seek(SeekFrom::Start(f.read_pos))?;
                file.read_exact(&mut whole)?;
                let Some((m, size)) = decode(&Bytes::from(whole)) else {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "corrupt page file"));
                };
                f.read_pos += size as u64;
                self.count -= 1;
                self.bytes -= m.message.body.len() as u64;
                going = more(m);
            }
        }
        Ok(())
    }

    /// Drops everything on disk (purge, delete).
    pub(crate) fn clear(&mut self, mut each: impl FnMut(QueuedMessage)) {
        let _ = self.pop_batch(|m| {
            each(m);
            true
        });
        for f in self.files.drain(..) {
            let _ = fs::remove_file(&f.path);
        }
        self.count = 0;
        self.bytes = 0;
    }
}

impl Drop for PagedTail {
    fn drop(&mut self) {
        for f in self.files.drain(..) {
            let _ = fs::remove_file(&f.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_out_and_back_in_order() {
        let dir = std::env::temp_dir().join(format!("warren-paging-{}", std::process::id()));
        let mut t = PagedTail::new(dir.clone());
        for i in 0..10_000u64 {
            let m = Message::new(
                Bytes::new(),
                Bytes::from_static(b"q"),
                Bytes::from_static(&[0, 0]),
                Bytes::from(format!("m{i}")),
            );
            let qm = QueuedMessage {
                seq: i,
                message: Arc::new(m),
                redelivered: i % 2 == 0,
                persisted: false,
                expires_at: (i % 3 == 0).then_some(i),
                delivery_count: 0,
            };
            t.push(&qm).unwrap();
        }
        let mut got = Vec::new();
        let mut batches = 0;
        while !t.is_empty() {
            let mut n = 0;
            t.pop_batch(|m| {
                got.push(m);
                n += 1;
                n < 100
            })
            .unwrap();
            assert_eq!(n, 100);
            batches += 1;
        }
        assert_eq!(batches, 100);
        assert_eq!(got.len(), 10_000);
        for (i, m) in got.iter().enumerate() {
            assert_eq!(m.seq, i as u64);
            assert_eq!(m.message.body, Bytes::from(format!("m{i}")));
            assert_eq!(m.redelivered, i % 2 == 0);
            assert_eq!(m.expires_at, (i % 3 == 0).then_some(i as u64));
        }
        drop(t);
        let _ = fs::remove_dir_all(&dir);
    }
}
