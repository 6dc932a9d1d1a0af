//! The queue log's on-disk records and how a queue directory is read back.
//!
//! A queue's log is a sequence of segment files `00000001.seg`,
//! `00000002.seg`, … each a run of records:
//!
//! ```text
//! u32 length of (kind + body)   big-endian
//! u32 CRC-32 of (kind + body)
//! u8  kind                      1 message, 2 ack, 3 delivered
//! body
//! ```
//!
//! A message body is `u64 seq, u8 len + exchange, u8 len + routing key,
//! u32 len + properties, body bytes (the rest)`; ack and delivered are `u64 seq`.
//! No I/O beyond reading files here; writing is the writer thread's.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};

use crate::message::Message;

pub(crate) const KIND_MESSAGE: u8 = 1;
pub(crate) const KIND_ACK: u8 = 2;
pub(crate) const KIND_DELIVERED: u8 = 3;
const RECORD_HEADER: usize = 8;
/// Far above any message we accept (128 MiB body + names + properties):
/// a length beyond it means a torn or corrupt record.
const MAX_RECORD: usize = 129 * 1024 * 1024;

pub(crate) fn encode_message(buf: &mut BytesMut, seq: u64, m: &Message) {
    let len = 1 + 8 + 1 + m.exchange.len() + 1 + m.routing_key.len() + 4 + m.properties.len() + m.body.len();
    buf.reserve(RECORD_HEADER + len);
    let start = buf.len();
    buf.put_u32(len as u32);
    buf.put_u32(0);
    buf.put_u8(KIND_MESSAGE);
    buf.put_u64(seq);
    buf.put_u8(m.exchange.len() as u8);
    buf.put_slice(&m.exchange);
    buf.put_u8(m.routing_key.len() as u8);
    buf.put_slice(&m.routing_key);
    buf.put_u32(m.properties.len() as u32);
    buf.put_slice(&m.properties);
    buf.put_slice(&m.body);
    seal(buf, start);
}

pub(crate) fn encode_marker(buf: &mut BytesMut, kind: u8, seq: u64) {
    let start = buf.len();
    buf.put_u32(9);
    buf.put_u32(0);
    buf.put_u8(kind);
    buf.put_u64(seq);
    seal(buf, start);
}

fn seal(buf: &mut BytesMut, start: usize) {
    let crc = crc32fast::hash(&buf[start + RECORD_HEADER..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

/// One record read back.
#[derive(Debug)]
pub(crate) enum Record {
    Message { seq: u64, message: Message },
    Ack { seq: u64 },
    Delivered { seq: u64 },
}

/// Decodes the record at the front of `data`: `Some((record, size))`, or
/// `None` for a torn, corrupt or unknown record (the valid log ends there).
pub(crate) fn decode_record(data: &Bytes) -> Option<(Record, usize)> {
    if data.len() < RECORD_HEADER {
        return None;
    }
    let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let crc = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
    if len == 0 || len > MAX_RECORD || data.len() < RECORD_HEADER + len {
        return None;
    }
    let body = data.slice(RECORD_HEADER..RECORD_HEADER + len);
    if crc32fast::hash(&body) != crc {
        return None;
    }
    let seq = |b: &Bytes| -> Option<u64> {
        let s = b.get(1..9)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Some(u64::from_be_bytes(a))
    };
    let record = match body[0] {
        KIND_MESSAGE => {
            let seq = seq(&body)?;
            let mut at = 9;
            let short = |at: &mut usize| -> Option<Bytes> {
                let n = *body.get(*at)? as usize;
                let s = body.get(*at + 1..*at + 1 + n)?;
                let out = body.slice_ref(s);
                *at += 1 + n;
                Some(out)
            };
            let exchange = short(&mut at)?;
            let routing_key = short(&mut at)?;
            let plen = body.get(at..at + 4)?;
            let plen = u32::from_be_bytes([plen[0], plen[1], plen[2], plen[3]]) as usize;
            at += 4;
            let props = body.get(at..at + plen)?;
            let properties = body.slice_ref(props);
            at += plen;
            let payload = body.slice(at..);
            Record::Message { seq, message: Message::new(exchange, routing_key, properties, payload) }
        }
        KIND_ACK if len == 9 => Record::Ack { seq: seq(&body)? },
        KIND_DELIVERED if len == 9 => Record::Delivered { seq: seq(&body)? },
        _ => return None,
    };
    Some((record, RECORD_HEADER + len))
}

pub(crate) fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:08}.seg"))
}

/// Segment numbers present in a queue directory, ascending.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut numbers = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name.strip_suffix(".seg").and_then(|n| n.parse::<u64>().ok()) {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// Reads one segment: its records and the length of its valid prefix (the
/// file is cut there if a crash tore the tail).
pub(crate) fn read_segment(path: &Path) -> io::Result<(Vec<Record>, u64, u64)> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    let total = data.len() as u64;
    let data = Bytes::from(data);
    let mut at = 0usize;
    let mut records = Vec::new();
    while at < data.len() {
        match decode_record(&data.slice(at..)) {
            Some((r, size)) => {
                records.push(r);
                at += size;
            }
            None => break,
        }
    }
    Ok((records, at as u64, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &'static [u8]) -> Message {
        Message::new(
            Bytes::from_static(b"amq.direct"),
            Bytes::from_static(b"rk"),
            Bytes::from_static(&[0x10, 0, 2]),
            Bytes::from_static(body),
        )
    }

    #[test]
    fn records_round_trip() {
        let mut buf = BytesMut::new();
        encode_message(&mut buf, 7, &msg(b"hello"));
        encode_marker(&mut buf, KIND_ACK, 7);
        encode_marker(&mut buf, KIND_DELIVERED, 8);
        let data = buf.freeze();
        let (r, n) = decode_record(&data).unwrap();
        match r {
            Record::Message { seq, message } => {
                assert_eq!(seq, 7);
                assert_eq!(&message.body[..], b"hello");
                assert_eq!(&message.exchange[..], b"amq.direct");
                assert_eq!(&message.routing_key[..], b"rk");
                assert_eq!(&message.properties[..], &[0x10, 0, 2]);
            }
            other => panic!("{other:?}"),
        }
        let (r, m) = decode_record(&data.slice(n..)).unwrap();
        assert!(matches!(r, Record::Ack { seq: 7 }));
        let (r, _) = decode_record(&data.slice(n + m..)).unwrap();
        assert!(matches!(r, Record::Delivered { seq: 8 }));
    }

    #[test]
    fn every_torn_prefix_and_any_flipped_bit_is_rejected() {
        let mut buf = BytesMut::new();
        encode_message(&mut buf, 1, &msg(b"payload"));
        let data = buf.freeze();
        for cut in 0..data.len() {
            assert!(decode_record(&data.slice(..cut)).is_none(), "prefix {cut}");
        }
        for i in 0..data.len() {
            let mut bad = data.to_vec();
            bad[i] ^= 0x40;
            assert!(decode_record(&Bytes::from(bad)).is_none(), "flip at {i}");
        }
    }
}
